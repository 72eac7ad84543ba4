// Bounded, seeded fuzzing of the client core. The in-memory server's byte stream is
// mutated (flipped, truncated, duplicated bytes) at every point of a real handshake and
// session; whatever happens, receive() must not throw, and a close must carry an SshError
// raised on purpose, never a TypeError or RangeError from a parser that trusted its input.

import { describe, expect, it } from 'vitest';
import { Pair, TestServer } from '../helpers/peer.js';
import { SshError } from '../../ts/protocol/errors.js';
import { Writer } from '../../ts/protocol/wire.js';
import { MSG } from '../../ts/protocol/messages.js';

/** xorshift32: reproducible randomness, so a failing seed can be replayed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

function mutate(bytes: Uint8Array, random: () => number): Uint8Array {
  const out = Buffer.from(bytes);
  const kind = Math.floor(random() * 4);
  const at = Math.floor(random() * out.length);
  if (kind === 0) out[at]! ^= 1 << Math.floor(random() * 8);
  if (kind === 1) out[at] = Math.floor(random() * 256);
  if (kind === 2) return out.subarray(0, at);
  if (kind === 3) return Buffer.concat([out.subarray(0, at), out.subarray(at - Math.min(at, 7), at), out.subarray(at)]);
  return out;
}

function expectCleanOutcome(pair: Pair, seed: number) {
  const closed = pair.closedWith;
  if (closed === undefined || closed === null) return;
  expect(closed, `seed ${seed}`).toBeInstanceOf(SshError);
  const cause = (closed as Error & { cause?: unknown }).cause;
  expect(cause instanceof TypeError || cause instanceof RangeError, `seed ${seed}: ${closed.message}`).toBe(false);
}

/** Runs a handshake plus a little session traffic, mutating the server's n-th output chunk. */
function runWithMutation(seed: number, chunkToMutate: number) {
  const random = rng(seed);
  const server = new TestServer({ strict: seed % 2 === 0 });
  const pair = new Pair(server);
  // The test server is not hardened: if the mutation confuses it, it hangs up, as a real one would.
  const serverReceive = server.receive.bind(server);
  let serverDead = false;
  server.receive = (bytes) => {
    if (serverDead) return;
    try {
      serverReceive(bytes);
    } catch {
      serverDead = true;
      pair.client.transportClosed(null);
    }
  };
  let chunkIndex = 0;
  const originalReceive = pair.client.receive.bind(pair.client);
  pair.client.receive = (bytes, now) => {
    const data = chunkIndex++ === chunkToMutate ? mutate(bytes, random) : bytes;
    expect(() => originalReceive(data, now)).not.toThrow();
  };
  pair.start();
  if (pair.has('authenticated') && !pair.client.isClosed) {
    pair.client.requestForwarding('', 0, () => undefined);
    server.send(new Writer().byte(MSG.IGNORE).string('x').finish());
    pair.run();
  }
  expectCleanOutcome(pair, seed);
  return { pair, mutated: chunkIndex > chunkToMutate };
}

describe('fuzz: mutated server bytes', () => {
  it('never crashes the client, and every failure is a deliberate SshError (1500 runs)', () => {
    let mutatedRuns = 0;
    let closedRuns = 0;
    for (let seed = 1; seed <= 1500; seed++) {
      const { pair, mutated } = runWithMutation(seed, seed % 12);
      if (!mutated) continue;
      mutatedRuns++;
      if (pair.client.isClosed) closedRuns++;
    }
    // The fuzzer really mutated most runs, and most mutations were caught (MAC failures,
    // bad lengths, bad layouts); the rest hit bytes that do not matter (padding, cookies).
    expect(mutatedRuns).toBeGreaterThan(1000);
    expect(closedRuns).toBeGreaterThan(mutatedRuns / 2);
  });
});

describe('fuzz: random bytes', () => {
  it('random data after a valid version line ends in a clean close', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const random = rng(seed * 7919);
      const pair = new Pair(new TestServer());
      pair.client.start(0);
      const junk = new Uint8Array(1 + Math.floor(random() * 2000)).map(() => Math.floor(random() * 256));
      expect(() => pair.client.receive(Buffer.concat([Buffer.from('SSH-2.0-Fuzz\r\n'), junk]), 0)).not.toThrow();
      for (let e = pair.client.pollEvent(); e; e = pair.client.pollEvent()) pair.events.push(e);
      expectCleanOutcome(pair, seed);
    }
  });
});
