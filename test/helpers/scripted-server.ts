// The in-memory TestServer behind a real TCP listener on loopback, so the whole tunnel (socket,
// driver, session, local forwarders) meets a server that misbehaves on cue. Each connection
// gets its own TestServer; `script` decides what it sends once the client's forwarding is up.

import * as net from 'node:net';
import { MSG } from '../../ts/protocol/messages.js';
import { Reader, Writer } from '../../ts/protocol/wire.js';
import type { KeyObject } from 'node:crypto';
import { randomEd25519Key, TestServer, type ServerHooks } from './peer.js';

const once = (key: KeyObject) => () => key;

export interface ScriptedConnection {
  server: TestServer;
  /** Sends everything the server has queued, in one write. */
  flush(): void;
  socket: net.Socket;
}

export interface Script {
  /** Hooks for each connection's TestServer (compression, say); the host key comes from startScriptedServer. */
  serverHooks?: ServerHooks;
  /**
   * Answers a tcpip-forward for `port` with the port granted, or null to refuse it (default:
   * port 0 gets 5555, any other port is granted as asked).
   */
  grant?(port: number, c: ScriptedConnection): number | null;
  /** The client's tcpip-forward was granted (port 5555 for port 0); the reply is queued. */
  forwardingGranted?(c: ScriptedConnection): void;
  /** The client confirmed a channel we opened: its id on the client side. */
  channelConfirmed?(c: ScriptedConnection, clientChannel: number): void;
  /** The client opened a channel (direct-tcpip, say) with id `clientChannel`: answer it (queue the messages). */
  channelOpen?(c: ScriptedConnection, clientChannel: number): void;
}

export interface ScriptedServer {
  port: number;
  connections: ScriptedConnection[];
  close(): Promise<void>;
}

/** A CHANNEL_OPEN for a forwarded-tcpip connection to `port` (5555: the port the TestServer grants for port 0). */
export function forwardedOpen(sender: number, port = 5555, window = 1 << 20, maxPacket = 32768): Uint8Array {
  return new Writer().byte(MSG.CHANNEL_OPEN).string('forwarded-tcpip').uint32(sender).uint32(window).uint32(maxPacket).string('127.0.0.1').uint32(port).string('10.0.0.9').uint32(40000).finish();
}

export function channelData(recipient: number, data: Uint8Array): Uint8Array {
  return new Writer(data.length + 16).byte(MSG.CHANNEL_DATA).uint32(recipient).string(data).finish();
}

export function disconnect(reason: number, description: string): Uint8Array {
  return new Writer().byte(MSG.DISCONNECT).uint32(reason).string(description).string('').finish();
}

/** Serves `script` on 127.0.0.1:port (0: any); every connection shows the same host key unless `hostKey` says otherwise. */
export async function startScriptedServer(script: Script, port = 0, hostKey: () => KeyObject = once(randomEd25519Key())): Promise<ScriptedServer> {
  const connections: ScriptedConnection[] = [];
  const listener = net.createServer((socket) => {
    const server = new TestServer({ ...script.serverHooks, hostKey: hostKey() });
    const connection: ScriptedConnection = {
      server,
      socket,
      flush: () => {
        const out = server.out.splice(0);
        if (out.length > 0 && !socket.destroyed) socket.write(Buffer.concat(out));
      },
    };
    connections.push(connection);
    const defaultHandler = server.onConnection;
    server.onConnection = (payload) => {
      const request = payload[0] === MSG.GLOBAL_REQUEST ? new Reader(payload, 1) : null;
      const name = request?.utf8();
      if (request && name === 'tcpip-forward' && script.grant) {
        request.boolean();
        request.utf8();
        const granted = script.grant(request.uint32(), connection);
        server.send(granted === null ? new Uint8Array([MSG.REQUEST_FAILURE]) : new Writer().byte(MSG.REQUEST_SUCCESS).uint32(granted).finish());
        if (granted !== null) script.forwardingGranted?.(connection);
        return;
      }
      if (payload[0] === MSG.CHANNEL_OPEN && script.channelOpen) {
        const open = new Reader(payload, 1);
        open.utf8(); // channel type
        script.channelOpen(connection, open.uint32());
        return;
      }
      defaultHandler(payload);
      if (name === 'tcpip-forward') script.forwardingGranted?.(connection);
      if (payload[0] === MSG.CHANNEL_OPEN_CONFIRMATION) script.channelConfirmed?.(connection, new Reader(payload, 5).uint32());
    };
    socket.on('data', (chunk) => {
      try {
        server.receive(chunk);
      } catch {
        socket.destroy(); // the client's bytes no longer make sense to us: drop it
        return;
      }
      connection.flush();
    });
    socket.on('error', () => undefined);
    server.start();
    connection.flush();
  });
  await new Promise<void>((resolve) => listener.listen(port, '127.0.0.1', resolve));
  return {
    port: (listener.address() as net.AddressInfo).port,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.socket.destroy();
        listener.close(() => resolve());
      }),
  };
}
