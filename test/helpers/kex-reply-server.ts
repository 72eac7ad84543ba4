// A loopback server that plays only the clear-text start of SSH (RFC 4253 §4.2 version lines,
// §6 packets without encryption, §7.1 KEXINIT) and answers the client's SSH_MSG_KEX_ECDH_INIT
// with whatever reply the test builds: for checking how the client treats a malformed key
// exchange reply from a server it has not authenticated yet. Records what the client sent back.

import * as net from 'node:net';
import { KexInit, MSG } from '../../ts/protocol/messages.js';
import { Reader, Writer } from '../../ts/protocol/wire.js';
import { kexInit } from './peer.js';

export interface KexReplyServer {
  port: number;
  /** Payloads the client sent, in order (KEXINIT, KEX_ECDH_INIT, then a DISCONNECT if it sends one). */
  received: Uint8Array[];
  /** Resolves when the client has closed its side of the connection. */
  closed: Promise<void>;
  close(): Promise<void>;
}

function packet(payload: Uint8Array): Buffer {
  // Padding to a multiple of 8 with at least 4 bytes (RFC 4253 §6); no MAC before NEWKEYS.
  let padding = 8 - ((5 + payload.length) % 8);
  if (padding < 4) padding += 8;
  return Buffer.from(
    new Writer(payload.length + 32)
      .uint32(1 + payload.length + padding)
      .byte(padding)
      .raw(payload)
      .raw(new Uint8Array(padding))
      .finish(),
  );
}

/**
 * Serves one connection: offers `kex` only, and answers the client's KEX_ECDH_INIT with
 * `reply(clientInit)` as the server's public value, a made-up host key and signature.
 */
export function startKexReplyServer(kex: string, reply: (clientPublic: Uint8Array) => Uint8Array): Promise<KexReplyServer> {
  const received: Uint8Array[] = [];
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });
  const server = net.createServer((socket) => {
    let buffer = Buffer.alloc(0);
    let versionSeen = false;
    socket.on('error', () => undefined);
    socket.on('close', () => markClosed());
    socket.write('SSH-2.0-revtun_test_kex_reply\r\n');
    socket.write(packet(KexInit.encode(kexInit({ kexAlgorithms: [kex] }))));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!versionSeen) {
        const end = buffer.indexOf('\r\n');
        if (end < 0) return;
        versionSeen = true;
        buffer = buffer.subarray(end + 2);
      }
      while (buffer.length >= 4 && buffer.length >= 4 + buffer.readUInt32BE(0)) {
        const length = buffer.readUInt32BE(0);
        const body = buffer.subarray(4, 4 + length);
        buffer = buffer.subarray(4 + length);
        const payload = body.subarray(1, body.length - body[0]!);
        received.push(Uint8Array.from(payload));
        if (payload[0] === MSG.KEXDH_INIT) {
          const clientPublic = new Reader(payload.subarray(1)).string();
          const hostKey = new Writer().string('ssh-ed25519').string(new Uint8Array(32)).finish();
          const signature = new Writer().string('ssh-ed25519').string(new Uint8Array(64)).finish();
          socket.write(packet(new Writer(4096).byte(MSG.KEXDH_REPLY).string(hostKey).string(reply(clientPublic)).string(signature).finish()));
        }
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        received,
        closed,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
