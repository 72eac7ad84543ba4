// Stream helpers for the integration tests: send a known amount of pseudo-random data with
// backpressure while hashing it, hash what arrives, and small local servers.

import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';

/** Writes `total` random bytes respecting backpressure, half-closes, returns their SHA-256. */
export async function sendHashed(socket: net.Socket, total: number, chunkSize = 256 * 1024): Promise<string> {
  const hash = createHash('sha256');
  const block = randomBytes(chunkSize);
  let sent = 0;
  while (sent < total) {
    const n = Math.min(chunkSize, total - sent);
    // A fresh view each round, with a changing first word, so repeated blocks still differ.
    const chunk = Buffer.from(block.subarray(0, n));
    chunk.writeUInt32BE(sent >>> 0, 0);
    hash.update(chunk);
    sent += n;
    if (!socket.write(chunk)) await new Promise<void>((resolve) => socket.once('drain', resolve));
  }
  socket.end();
  return hash.digest('hex');
}

/**
 * Writes random bytes respecting backpressure until `stop` settles, then half-closes: a
 * source that keeps a channel busy for as long as something else takes, whatever the speed.
 */
export async function sendUntil(socket: net.Socket, stop: Promise<unknown>, chunkSize = 64 * 1024): Promise<Received> {
  let stopped = false;
  const stopping = stop.then(
    () => {
      stopped = true;
    },
    () => {
      stopped = true;
    },
  );
  const hash = createHash('sha256');
  const block = randomBytes(chunkSize);
  let bytes = 0;
  while (!stopped) {
    const chunk = Buffer.from(block);
    chunk.writeUInt32BE(bytes >>> 0, 0);
    hash.update(chunk);
    bytes += chunk.length;
    // Yield to the event loop on every chunk so `stop` is seen even if the socket never fills.
    const drained = socket.write(chunk) ? new Promise<void>((resolve) => setImmediate(resolve)) : new Promise<void>((resolve) => socket.once('drain', resolve));
    await Promise.race([drained, stopping]);
  }
  socket.end();
  return { bytes, sha256: hash.digest('hex') };
}

export interface Received {
  bytes: number;
  sha256: string;
}

/** Hashes everything until the peer half-closes. */
export function receiveHashed(socket: net.Socket, onChunk?: (chunk: Buffer) => void): Promise<Received> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      onChunk?.(chunk);
    });
    socket.once('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
    socket.once('error', reject);
  });
}

/** A local TCP server; returns its port and a close function that also drops open sockets. */
export async function listen(handler: (socket: net.Socket) => void, options: net.ServerOpts = {}): Promise<{ port: number; server: net.Server; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true, ...options }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    handler(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** An echo server that half-closes when its client does. */
export function echoServer() {
  return listen((socket) => {
    socket.pipe(socket);
    socket.on('error', () => undefined);
  });
}

export function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host, allowHalfOpen: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends `data`, half-closes, and collects the whole reply. */
export async function roundTrip(port: number, data: Buffer, host = '127.0.0.1'): Promise<Buffer> {
  const socket = await connect(port, host);
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
  socket.end(data);
  const reply = await done;
  socket.destroy();
  return reply;
}

/** Like roundTrip, but a connection the far side resets counts as an empty reply. */
export async function roundTripOrReset(port: number, data: Buffer): Promise<Buffer> {
  try {
    return await roundTrip(port, data);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ECONNRESET') return Buffer.alloc(0);
    throw error;
  }
}
