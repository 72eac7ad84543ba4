// Every way a connection can end in-band while channel data is being delivered must end in
// 'error' and 'disconnected' events with the documented code, never in an exception out of a
// socket callback (which would kill the embedding process). The server is the in-memory
// TestServer behind a real TCP socket, so it can put data and the fatal packet in one write.

import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { SSHReverseTunnel, type DisconnectedEvent, type ErrorEvent } from '../../ts/index.js';
import { PASSWORD } from '../helpers/peer.js';
import { channelData, disconnect, forwardedOpen, startScriptedServer, type Script, type ScriptedServer } from '../helpers/scripted-server.js';
import { Writer } from '../../ts/protocol/wire.js';
import { MSG } from '../../ts/protocol/messages.js';
import { listen, receiveHashed, type Received } from '../helpers/streams.js';

const uncaught: unknown[] = [];
const onUncaught = (error: unknown) => uncaught.push(error);

let server: ScriptedServer | undefined;
let sink: Awaited<ReturnType<typeof listen>> | undefined;
afterEach(async () => {
  process.off('uncaughtException', onUncaught);
  await server?.close();
  await sink?.close();
  server = sink = undefined;
});

/**
 * Runs a tunnel in local forwarding mode against a scripted server that opens one channel as
 * soon as the forwarding is granted, then does `onConfirmed`. Resolves with the tunnel's
 * events and what the local target received before the connection ended.
 */
async function runAgainst(onConfirmed: Script['channelConfirmed'], config: string[] = []) {
  uncaught.length = 0;
  process.on('uncaughtException', onUncaught);
  let received: Promise<Received> = Promise.resolve({ bytes: 0, sha256: '' });
  sink = await listen((socket) => {
    received = receiveHashed(socket);
  });
  server = await startScriptedServer({
    forwardingGranted: (c) => c.server.send(forwardedOpen(7)),
    channelConfirmed: onConfirmed,
  });
  const tunnel = new SSHReverseTunnel();
  tunnel.sshUser = 'u';
  tunnel.sshPassword = PASSWORD;
  tunnel.config('SSHAcceptAnyServerHostKey=True');
  tunnel.config('AutoReconnect=0');
  for (const c of config) tunnel.config(c);
  const errors: ErrorEvent[] = [];
  tunnel.on('error', (e) => errors.push(e));
  const disconnected = new Promise<DisconnectedEvent>((resolve) => tunnel.on('disconnected', resolve));
  await tunnel.sshLogon('127.0.0.1', server.port);
  await tunnel.requestForwarding('', 0, '127.0.0.1', sink.port);
  const ended = await disconnected;
  const local = await received; // the target's connection is ended cleanly, not left open
  expect(uncaught).toEqual([]);
  expect(tunnel.connected).toBe(false);
  return { ended, errors, local, tunnel };
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe('a connection that ends while channel data is being delivered', () => {
  it('a server DISCONNECT in the same read as 64 KiB of data: 1001, and the data reaches the target (was an uncaught 212)', async () => {
    const payload = Buffer.alloc(64 * 1024, 0x5a);
    const { ended, errors, local } = await runAgainst((c, channel) => {
      c.server.send(channelData(channel, payload.subarray(0, 32 * 1024)));
      c.server.send(channelData(channel, payload.subarray(32 * 1024)));
      c.server.send(disconnect(2, 'protocol error'));
      c.flush();
    });
    expect(ended.statusCode).toBe(1001);
    expect(errors.map((e) => e.errorCode)).toEqual([1001]);
    expect(local).toEqual({ bytes: payload.length, sha256: sha256(payload) });
  });

  it('a normal server DISCONNECT ("by application") after data is status 0 "OK" with no error event (was 1001 and an error), and the data still arrives', async () => {
    const payload = Buffer.alloc(48 * 1024, 0x33);
    const { ended, errors, local } = await runAgainst((c, channel) => {
      c.server.send(channelData(channel, payload.subarray(0, 24 * 1024)));
      c.server.send(channelData(channel, payload.subarray(24 * 1024)));
      c.server.send(disconnect(11, 'going away'));
      c.flush();
    });
    expect(ended).toEqual({ statusCode: 0, description: 'OK' });
    expect(errors).toEqual([]);
    expect(local).toEqual({ bytes: payload.length, sha256: sha256(payload) });
  });

  it('data beyond the granted window: 1022 and a clean close (was an uncaught 212)', async () => {
    const { ended, errors, local } = await runAgainst(
      (c, channel) => {
        c.server.send(channelData(channel, Buffer.alloc(32 * 1024, 1)));
        c.server.send(channelData(channel, Buffer.alloc(1, 2))); // one byte past the window
        c.flush();
      },
      ['MaxWindowSize=32768'],
    );
    expect(ended.statusCode).toBe(1022);
    expect(errors.map((e) => e.errorCode)).toEqual([1022]);
    expect(local.bytes).toBe(32 * 1024);
  });

  it('one flipped bit in a packet after data: 1015 and a clean close (was an uncaught 212)', async () => {
    const { ended, errors, local } = await runAgainst((c, channel) => {
      c.server.send(channelData(channel, Buffer.alloc(16 * 1024, 3)));
      const damaged = c.server.transport.framePayload(channelData(channel, Buffer.alloc(100, 4)));
      damaged[damaged.length - 20]! ^= 0x01;
      c.server.sendRaw(damaged);
      c.flush();
    });
    expect(ended.statusCode).toBe(1015);
    expect(errors.map((e) => e.errorCode)).toEqual([1015]);
    expect(local.bytes).toBe(16 * 1024);
  });
});

describe('a channel that ends while its data still waits for a slow local target', () => {
  it('data, EOF and CLOSE in one write: the target still gets every byte (the close destroyed the socket while it was flushing)', async () => {
    uncaught.length = 0;
    process.on('uncaughtException', onUncaught);
    const payload = Buffer.alloc(8 * 1024 * 1024, 0x33); // more than the kernel's socket buffers hold
    let target: import('node:net').Socket | null = null;
    let received: Promise<Received> = Promise.resolve({ bytes: 0, sha256: '' });
    const targetConnected = new Promise<void>((resolve) => {
      void listen((socket) => {
        socket.pause(); // reads nothing until the channel is gone on revtun's side
        target = socket;
        received = receiveHashed(socket);
        socket.pause();
        resolve();
      }).then((l) => (sink = l));
    });
    server = await startScriptedServer({
      forwardingGranted: (c) => c.server.send(forwardedOpen(7)),
      channelConfirmed: (c, channel) => {
        for (let at = 0; at < payload.length; at += 32 * 1024) c.server.send(channelData(channel, payload.subarray(at, at + 32 * 1024)));
        c.server.send(new Writer().byte(MSG.CHANNEL_EOF).uint32(channel).finish());
        c.server.send(new Writer().byte(MSG.CHANNEL_CLOSE).uint32(channel).finish());
        c.flush();
      },
    });
    while (!sink) await new Promise<void>((resolve) => setImmediate(resolve));
    const tunnel = new SSHReverseTunnel();
    tunnel.sshUser = 'u';
    tunnel.sshPassword = PASSWORD;
    tunnel.config('SSHAcceptAnyServerHostKey=True');
    tunnel.config('MaxWindowSize=8388608');
    const closed = new Promise<void>((resolve) => tunnel.on('sshChannelClosed', () => resolve()));
    await tunnel.sshLogon('127.0.0.1', server.port);
    await tunnel.requestForwarding('', 0, '127.0.0.1', sink.port);
    await targetConnected;
    await closed; // revtun has had the data, the EOF and the CLOSE
    target!.resume();
    expect(await received).toEqual({ bytes: payload.length, sha256: sha256(payload) });
    expect(uncaught).toEqual([]);
    tunnel.reset();
  });
});
