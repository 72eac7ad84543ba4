// Payload compression (RFC 4253 §6.2): the per-direction zlib streams on their own, then the
// client core against the in-memory server with "zlib" (from NEWKEYS) and "zlib@openssh.com"
// (from USERAUTH_SUCCESS), across re-exchanges, and with a peer that sends a bomb or garbage.

import * as zlib from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Writer } from '../../../ts/protocol/wire.js';
import { MSG } from '../../../ts/protocol/messages.js';
import { PayloadDeflater, PayloadInflater } from '../../../ts/protocol/compression.js';
import { SshError } from '../../../ts/protocol/errors.js';
import { PASSWORD, Pair, TestServer, clientOptions } from '../../helpers/peer.js';
import { forwardedOpen } from '../../helpers/scripted-server.js';
import type { ClientEvent } from '../../../ts/protocol/client.js';

const text = (n: number, seed = 0) => {
  const words = ['forward', 'channel', 'window', 'packet', 'tunnel', 'remote', 'listen', 'accept', 'socket', 'stream'];
  let s = '';
  for (let i = seed; s.length < n; i++) s += words[(i * 7 + (i >> 2)) % words.length] + (i % 11 === 0 ? '\n' : ' ');
  return new TextEncoder().encode(s.slice(0, n));
};

function deflate(deflater: PayloadDeflater, payload: Uint8Array): Uint8Array {
  deflater.input(payload.length).set(payload);
  return deflater.compress(payload.length).slice();
}

function codeOf(f: () => unknown): number | undefined {
  try {
    f();
  } catch (error) {
    if (error instanceof SshError) return error.code;
    throw error;
  }
  return undefined;
}

describe('the zlib streams', () => {
  it('one stream across packets: each packet inflates whole from its own bytes, later ones refer back to earlier ones', () => {
    const deflater = new PayloadDeflater();
    const inflater = new PayloadInflater(256 * 1024);
    const payloads = [text(5000), text(5000), randomBytes(3000), text(1), text(32768, 3), new Uint8Array(1)];
    const packed = payloads.map((p) => deflate(deflater, p));
    payloads.forEach((p, i) => {
      expect(Buffer.from(inflater.inflate(packed[i]!))).toEqual(Buffer.from(p));
    });
    // The second copy of the same text is mostly a back reference into the first packet.
    expect(packed[1]!.length).toBeLessThan(packed[0]!.length / 4);
  });

  it('the partial flush at each packet end is zlib-compatible: C zlib reads the concatenated packets', () => {
    const deflater = new PayloadDeflater();
    const payloads = Array.from({ length: 20 }, (_, i) => (i % 3 === 2 ? randomBytes(700 + i) : text(100 * i + 1, i)));
    const packed = Buffer.concat(payloads.map((p) => deflate(deflater, p)));
    const plain = zlib.inflateSync(packed, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(plain).toEqual(Buffer.concat(payloads));
  });

  it('packets C zlib deflated with a partial flush each (what OpenSSH sends) inflate one by one', async () => {
    const payloads = [text(4000), randomBytes(500), text(4000, 5), new Uint8Array(1)];
    const deflate = zlib.createDeflate({ level: 6 });
    const inflater = new PayloadInflater(256 * 1024);
    let pending: Buffer[] = [];
    deflate.on('data', (c: Buffer) => pending.push(c));
    for (const p of payloads) {
      deflate.write(p);
      await new Promise<void>((resolve) => deflate.flush(zlib.constants.Z_PARTIAL_FLUSH, () => resolve()));
      const packet = Buffer.concat(pending);
      pending = [];
      expect(Buffer.from(inflater.inflate(packet))).toEqual(Buffer.from(p));
    }
    deflate.destroy();
  });

  it('inflated buffers stay valid after the next packet (channel data events keep views)', () => {
    const deflater = new PayloadDeflater();
    const inflater = new PayloadInflater(256 * 1024);
    const first = inflater.inflate(deflate(deflater, text(20000)));
    const copy = Buffer.from(first);
    for (let i = 0; i < 200; i++) inflater.inflate(deflate(deflater, randomBytes(8000)));
    expect(Buffer.from(first)).toEqual(copy);
  });

  it('a packet inflating to exactly the bound passes; one byte more is 1016, and inflating stops at the bound', () => {
    const limit = 64 * 1024;
    const exact = new PayloadInflater(limit);
    expect(exact.inflate(deflate(new PayloadDeflater(), new Uint8Array(limit))).length).toBe(limit);
    const over = new PayloadInflater(limit);
    expect(codeOf(() => over.inflate(deflate(new PayloadDeflater(), new Uint8Array(limit + 1))))).toBe(1016);
    // A bomb: 64 MiB of zeros in about 64 KiB; the inflater never writes past limit + 1.
    const bomb = deflate(new PayloadDeflater(), new Uint8Array(64 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(128 * 1024);
    const victim = new PayloadInflater(limit);
    let message = '';
    try {
      victim.inflate(bomb);
    } catch (error) {
      message = (error as SshError).message;
      expect((error as SshError).code).toBe(1016);
    }
    expect(message).toMatch(/cannot decompress packet/);
    expect(victim.inflatedBytes).toBe(limit + 1);
  });

  it('corrupt deflate data is 1016', () => {
    // A zlib header whose check bits are wrong.
    expect(codeOf(() => new PayloadInflater(1024).inflate(new Uint8Array([0xff, 0xee, 0xdd, 0xcc])))).toBe(1016);
    // A good header, then a block of the reserved type 3.
    expect(codeOf(() => new PayloadInflater(1024).inflate(new Uint8Array([0x78, 0x9c, 0x07, 0x00])))).toBe(1016);
    // A stream that ends (BFINAL) and then carries more bytes.
    const ended = Buffer.concat([zlib.deflateSync(Buffer.from('done')), Buffer.from([1, 2, 3])]);
    expect(codeOf(() => new PayloadInflater(1024).inflate(ended))).toBe(1016);
  });
});

const zlibAlgorithms = (compression: string[]) => ({ ...clientOptions().algorithms, compression });

/** A pair logged on, with forwarded channel 0 open (the server's end is channel 7). */
function withChannel(server: TestServer, options = {}) {
  const pair = new Pair(server, options).start();
  expect(pair.has('authenticated')).toBe(true);
  expect(pair.forward()).toBe(5555);
  pair.server.send(forwardedOpen(7));
  pair.run();
  pair.client.acceptChannel(0);
  pair.run();
  return pair;
}

const channelData = (payload: Uint8Array) => new Writer(payload.length + 16).byte(MSG.CHANNEL_DATA).uint32(0).string(payload).finish();
const received = (events: ClientEvent[]) => Buffer.concat(events.filter((e): e is Extract<ClientEvent, { type: 'channelData' }> => e.type === 'channelData').map((e) => Buffer.from(e.data)));
const serverGot = (server: TestServer) => Buffer.concat(server.receivedPayloads.filter((p) => p[0] === MSG.CHANNEL_DATA).map((p) => Buffer.from(p.subarray(9))));

describe('the client core with compression', () => {
  it('zlib compresses from the NEWKEYS on, both ways, and data arrives intact', () => {
    const server = new TestServer({ compression: 'zlib' });
    const pair = new Pair(server, { algorithms: zlibAlgorithms(['none', 'zlib']) }).start();
    // Already the authentication messages went compressed.
    const counters = pair.client.compressionCounters;
    expect(counters.packedSent).toBeGreaterThan(0);
    expect(counters.packedReceived).toBeGreaterThan(0);
    expect(pair.client.negotiatedAlgorithms?.compressionClientToServer).toBe('zlib');
    expect(pair.events.some((e) => e.type === 'log' && /compression=zlib\/zlib/.test(e.message))).toBe(true);
  });

  it('zlib@openssh.com: text and random data go both ways intact and smaller, delivered a byte at a time', () => {
    const server = new TestServer({ compression: 'zlib@openssh.com' });
    const pair = withChannel(server, { algorithms: zlibAlgorithms(['zlib@openssh.com', 'none']) });
    pair.byteAtATime = true;
    const before = { ...pair.client.compressionCounters };
    const sentText = text(60000);
    const sentRandom = randomBytes(20000);
    pair.client.sendData(0, sentText);
    pair.client.sendData(0, sentRandom);
    server.send(channelData(text(30000, 9)));
    server.send(channelData(sentRandom));
    pair.run();
    expect(pair.closedWith).toBeUndefined();
    expect(serverGot(server)).toEqual(Buffer.concat([sentText, sentRandom]));
    expect(received(pair.events)).toEqual(Buffer.concat([text(30000, 9), sentRandom]));
    const after = pair.client.compressionCounters;
    expect(after.plainSent - before.plainSent).toBeGreaterThan(80000);
    expect(after.packedSent - before.packedSent).toBeLessThan(after.plainSent - before.plainSent - 40000);
  });

  it('zlib@openssh.com: the packets before USERAUTH_SUCCESS go as they are, the first after it compressed', () => {
    const server = new TestServer({ compression: 'zlib@openssh.com' });
    const pair = new Pair(server, { algorithms: zlibAlgorithms(['zlib@openssh.com', 'none']) });
    pair.manualCredentials = true;
    pair.client.start(pair.now);
    server.start();
    pair.run(); // keys exchanged, the password asked for and not yet answered
    expect(pair.has('keysExchanged')).toBe(true);
    expect(pair.has('authenticated')).toBe(false);
    expect(pair.client.compressionCounters).toEqual({ plainSent: 0, packedSent: 0, plainReceived: 0, packedReceived: 0 });
    const request = pair.events.find((e) => e.type === 'credentialRequest');
    expect(request).toBeDefined();
    if (request?.type === 'credentialRequest') pair.client.answerCredential(request.request.id, { kind: 'password', password: PASSWORD });
    pair.run();
    expect(pair.has('authenticated')).toBe(true);
    expect(pair.client.compressionCounters.packedSent).toBe(0); // nothing sent since USERAUTH_SUCCESS yet
    expect(pair.forward()).toBe(5555); // the GLOBAL_REQUEST and its reply: compressed, and understood
    expect(pair.client.compressionCounters.packedSent).toBeGreaterThan(0);
    expect(pair.client.compressionCounters.packedReceived).toBeGreaterThan(0);
  });

  it('a re-exchange starts fresh streams at NEWKEYS on both sides and the data keeps flowing', () => {
    const server = new TestServer({ compression: 'zlib' });
    const pair = withChannel(server, { algorithms: zlibAlgorithms(['zlib']) });
    pair.client.sendData(0, text(10000));
    pair.run();
    expect(pair.client.rekey().ok).toBe(true);
    pair.run();
    server.rekey();
    pair.client.sendData(0, text(10000));
    server.send(channelData(text(10000, 4)));
    pair.run();
    expect(pair.closedWith).toBeUndefined();
    expect(pair.events.filter((e) => e.type === 'keysExchanged')).toHaveLength(3);
    expect(serverGot(server)).toEqual(Buffer.concat([text(10000), text(10000)]));
    expect(received(pair.events)).toEqual(Buffer.from(text(10000, 4)));
  });

  it('a re-exchange that negotiates "none" turns compression off from its NEWKEYS', () => {
    const server = new TestServer({ compression: 'zlib' });
    const pair = withChannel(server, { algorithms: zlibAlgorithms(['zlib', 'none']) });
    server.hooks.compression = 'none';
    server.rekey();
    pair.run();
    const before = { ...pair.client.compressionCounters };
    pair.client.sendData(0, text(5000));
    server.send(channelData(text(5000, 1)));
    pair.run();
    expect(pair.closedWith).toBeUndefined();
    expect(pair.client.negotiatedAlgorithms?.compressionClientToServer).toBe('none');
    expect(pair.client.compressionCounters).toEqual(before);
    expect(received(pair.events)).toEqual(Buffer.from(text(5000, 1)));
  });

  it('a decompression bomb from the server ends with 1016 and a DISCONNECT (reason 6)', () => {
    const server = new TestServer({ compression: 'zlib' });
    const pair = withChannel(server, { algorithms: zlibAlgorithms(['zlib']) });
    server.send(channelData(new Uint8Array(8 * 1024 * 1024))); // 8 MiB of zeros in one packet
    pair.run();
    expect(pair.closedWith?.code).toBe(1016);
    const disconnect = server.receivedPayloads.find((p) => p[0] === MSG.DISCONNECT);
    expect(disconnect).toBeDefined();
    expect(Buffer.from(disconnect!).readUInt32BE(1)).toBe(6); // SSH_DISCONNECT_COMPRESSION_ERROR
  });

  it('garbage where the first compressed payload belongs ends with 1016', () => {
    const server = new TestServer({ compression: 'zlib@openssh.com' });
    const pair = new Pair(server, { algorithms: zlibAlgorithms(['zlib@openssh.com']) });
    pair.manualCredentials = true;
    pair.client.start(pair.now);
    server.start();
    pair.run();
    const request = pair.events.find((e) => e.type === 'credentialRequest');
    if (request?.type !== 'credentialRequest') throw new Error('no credential request');
    pair.client.answerCredential(request.request.id, { kind: 'password', password: PASSWORD });
    for (const chunk of pair.client.pollTransmit() ?? []) server.receive(chunk); // USERAUTH_SUCCESS is queued
    server.transport.setDeflater(null);
    server.send(new Uint8Array([0xff, 0xee, 0xdd, 0xcc, 0xbb])); // not a zlib stream
    pair.run();
    expect(pair.has('authenticated')).toBe(true);
    expect(pair.closedWith?.code).toBe(1016);
    expect(pair.closedWith?.message).toMatch(/cannot decompress packet/);
  });
});
