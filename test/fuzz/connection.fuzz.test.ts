// Bounded, seeded fuzzing of the connection layer (RFC 4254) through the client core. The
// byte-level fuzzer (client.fuzz.test.ts) mostly flips sealed AES-GCM bytes, which the MAC
// check rejects before any decoder sees them; here valid connection-layer messages are built
// from the protocol's own schemas, their payloads mutated *before* the server seals them, and
// delivered through the Pair harness, so every decoder and state check behind the transport
// gets plaintext it did not expect. Whatever arrives: nothing throws out of receive(), a close
// carries an SshError with a documented code (never a TypeError or RangeError from a parser
// that trusted its input), a core still open still answers, and its state stays bounded.

import { describe, expect, it } from 'vitest';
import { Pair, TestServer } from '../helpers/peer.js';
import { forwardedOpen } from '../helpers/scripted-server.js';
import { Code, SshError } from '../../ts/protocol/errors.js';
import { MAX_CHANNELS } from '../../ts/protocol/channels.js';
import {
  ChannelClose,
  ChannelData,
  ChannelEof,
  ChannelExtendedData,
  ChannelFailure,
  ChannelOpen,
  ChannelOpenConfirmation,
  ChannelOpenFailure,
  ChannelRequest,
  ChannelSuccess,
  ChannelWindowAdjust,
  GlobalRequest,
  MSG,
  RequestFailure,
  RequestSuccess,
} from '../../ts/protocol/messages.js';
import { Writer } from '../../ts/protocol/wire.js';

const DOCUMENTED_CODES = new Set<number>(Object.values(Code));
const RUNS = 400;
const MESSAGES_PER_RUN = 12;

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

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const int = (random: Random, below: number) => Math.floor(random() * below);

/** Values that sit on the edges parsers get wrong: lengths and windows at 0, at 2^31 and at 2^32 - 1. */
const EDGE_UINT32 = [0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 64, 63, 32768, 1 << 20];

/**
 * One mutation of a plaintext payload. The message number (byte 0) is left alone most of the
 * time, so the mutation lands in the decoder the message is meant for.
 */
function mutate(payload: Uint8Array, random: Random): Uint8Array {
  const out = Buffer.from(payload);
  const body = out.length > 1 ? 1 + int(random, out.length - 1) : 0;
  switch (int(random, 8)) {
    case 0:
      out[body]! ^= 1 << int(random, 8);
      return out;
    case 1:
      out[body] = int(random, 256);
      return out;
    case 2: // an SSH uint32 (a length, a channel number, a window) set to an edge value
      if (out.length >= 5) out.writeUInt32BE(pick(random, EDGE_UINT32), 1 + int(random, out.length - 4));
      return out;
    case 3: // truncated, possibly to the message number alone
      return out.subarray(0, Math.max(1, body));
    case 4: // trailing bytes
      return Buffer.concat([out, Buffer.from(Array.from({ length: 1 + int(random, 8) }, () => int(random, 256)))]);
    case 5: // a stretch repeated
      return Buffer.concat([out.subarray(0, body), out.subarray(Math.max(1, body - 7), body), out.subarray(body)]);
    case 6: // another message number with this body (a body meant for one decoder read by another)
      out[0] = pick(random, [
        MSG.CHANNEL_DATA,
        MSG.CHANNEL_EXTENDED_DATA,
        MSG.CHANNEL_WINDOW_ADJUST,
        MSG.CHANNEL_OPEN,
        MSG.CHANNEL_OPEN_CONFIRMATION,
        MSG.CHANNEL_OPEN_FAILURE,
        MSG.CHANNEL_REQUEST,
        MSG.CHANNEL_SUCCESS,
        MSG.CHANNEL_FAILURE,
        MSG.CHANNEL_EOF,
        MSG.CHANNEL_CLOSE,
        MSG.GLOBAL_REQUEST,
        MSG.REQUEST_SUCCESS,
        MSG.REQUEST_FAILURE,
      ]);
      return out;
    default: // several flips at once
      for (let i = 0; i < 4; i++) out[1 + int(random, Math.max(1, out.length - 1))] ^= int(random, 256);
      return out.subarray(0, Math.max(1, out.length));
  }
}

/** The connection the fuzzed messages are aimed at: server channel 7 on our channel 0, and our own open and global requests waiting for their answers. */
interface Scene {
  pair: Pair;
  accepted: number;
  /** Our direct-tcpip open, still waiting for the server's confirmation or failure. */
  opening: number;
  /** GLOBAL_REQUESTs of ours the server has swallowed, so that a (mutated) reply has one to match. */
  swallowedRequests: number;
}

function scene(seed: number): Scene {
  const server = new TestServer({ strict: seed % 2 === 0 });
  const pair = new Pair(server).start();
  expect(pair.has('authenticated'), `seed ${seed}`).toBe(true);
  expect(pair.forward(), `seed ${seed}`).toBe(5555);
  server.send(forwardedOpen(7));
  pair.run();
  const open = pair.events.find((e) => e.type === 'channelOpenRequest');
  if (open?.type !== 'channelOpenRequest') throw new Error(`seed ${seed}: no open request`);
  expect(pair.client.acceptChannel(open.channel).ok).toBe(true);
  const opened = pair.client.openDirectTcpip('example.org', 80, { address: '127.0.0.1', port: 4000 });
  if (!opened.ok) throw opened.error;
  // From here on the server lets our global requests wait: the fuzzed replies answer them.
  let swallowed = 0;
  const answerDefault = server.onConnection;
  server.onConnection = (payload) => {
    if (payload[0] === MSG.GLOBAL_REQUEST) swallowed++;
    else answerDefault(payload);
  };
  pair.client.requestForwarding('', 0, () => undefined);
  pair.client.globalRequest('no-such-request@example.org', new Uint8Array(0), () => undefined);
  pair.run();
  return {
    pair,
    accepted: open.channel,
    opening: opened.value,
    get swallowedRequests() {
      return swallowed;
    },
  };
}

/**
 * Valid messages, encoded with the protocol's own schemas, for the state `scene` built:
 * `repeatable` ones stay valid however often they come; each of the `once` ones is valid only
 * the first time (a second CLOSE, or a reply with nothing waiting, is a deliberate close).
 */
function templates(s: Scene, random: Random): { repeatable: Uint8Array[]; once: Uint8Array[] } {
  const data = new Uint8Array(int(random, 300)).map(() => int(random, 256));
  const none = new Uint8Array(0);
  const repeatable = [
    ChannelData.encode({ recipientChannel: s.accepted, data }),
    ChannelExtendedData.encode({ recipientChannel: s.accepted, dataType: 1, data }),
    ChannelWindowAdjust.encode({ recipientChannel: s.accepted, bytesToAdd: 1 + int(random, 1 << 20) }),
    ChannelOpen.encode({
      type: 'forwarded-tcpip',
      senderChannel: 100 + int(random, 100),
      initialWindow: 1 << 20,
      maxPacket: 32768,
      data: new Writer().string('127.0.0.1').uint32(5555).string('10.0.0.9').uint32(40000).finish(),
    }),
    ChannelRequest.encode({ recipientChannel: s.accepted, type: 'exit-status', wantReply: false, data: new Writer().uint32(0).finish() }),
    ChannelRequest.encode({ recipientChannel: s.accepted, type: 'keepalive@openssh.com', wantReply: true, data: none }),
    GlobalRequest.encode({ name: 'keepalive@openssh.com', wantReply: true, data: none }),
    GlobalRequest.encode({ name: 'hostkeys-00@openssh.com', wantReply: false, data: new Writer().string(new Uint8Array(51)).finish() }),
  ];
  const once = [
    ChannelOpenConfirmation.encode({ recipientChannel: s.opening, senderChannel: 300, initialWindow: 1 << 20, maxPacket: 32768, data: none }),
    ChannelOpenFailure.encode({ recipientChannel: s.opening, reason: 2, description: 'connect failed', language: none }),
    ChannelSuccess.encode({ recipientChannel: s.accepted }),
    ChannelFailure.encode({ recipientChannel: s.accepted }),
    ChannelEof.encode({ recipientChannel: s.accepted }),
    ChannelClose.encode({ recipientChannel: s.accepted }),
    RequestSuccess.encode({ data: new Writer().uint32(6000).finish() }),
    RequestFailure.encode({}),
  ];
  return { repeatable, once };
}

function expectDeliberateClose(error: SshError | null | undefined, seed: number) {
  if (error === undefined || error === null) return;
  expect(error, `seed ${seed}`).toBeInstanceOf(SshError);
  expect(DOCUMENTED_CODES.has(error.code), `seed ${seed}: code ${error.code} (${error.message}) is not documented`).toBe(true);
  const cause = (error as Error & { cause?: unknown }).cause;
  expect(cause instanceof TypeError || cause instanceof RangeError, `seed ${seed}: ${error.message}`).toBe(false);
}

/** A core that is still open must still answer: the server's keep-alive gets its REQUEST_FAILURE. */
function expectStillAnswers(pair: Pair, seed: number) {
  const before = pair.server.received.length;
  pair.server.send(GlobalRequest.encode({ name: 'keepalive@openssh.com', wantReply: true, data: new Uint8Array(0) }));
  pair.run();
  if (pair.client.isClosed) return; // the probe landed behind a fuzzed message that closed it: checked as a close
  expect(pair.server.received.slice(before), `seed ${seed}`).toContain(MSG.REQUEST_FAILURE);
}

/** What the core holds stays within its limits, whatever it was sent. */
function expectBounded(pair: Pair, sentBytes: number, transmittedBytes: number, seed: number) {
  const views = pair.client.channelViews();
  expect(views.length, `seed ${seed}`).toBeLessThanOrEqual(MAX_CHANNELS);
  expect(pair.client.inputBacklog, `seed ${seed}`).toBe(0);
  // No amplification: its answers (window credit, replies, refusals) stay near what arrived.
  expect(transmittedBytes, `seed ${seed}`).toBeLessThanOrEqual(4 * sentBytes + 64 * 1024);
}

function run(seed: number) {
  const random = rng(seed * 2654435761);
  const s = scene(seed);
  const { pair } = s;
  const receive = pair.client.receive.bind(pair.client);
  pair.client.receive = (bytes, now) => {
    expect(() => receive(bytes, now), `seed ${seed}`).not.toThrow();
  };
  let transmitted = 0;
  const poll = pair.client.pollTransmit.bind(pair.client);
  pair.client.pollTransmit = () => {
    const out = poll();
    for (const chunk of out ?? []) transmitted += chunk.length;
    return out;
  };
  let sent = 0;
  let mutated = 0;
  let survived = 0;
  for (let i = 0; i < MESSAGES_PER_RUN && !pair.client.isClosed; i++) {
    const { repeatable, once } = templates(s, random);
    const template = pick(random, random() < 0.85 ? repeatable : once);
    // Half the messages go out intact, so that later mutations meet a changed state (data
    // received, windows moved, requests answered) and not only the one the scene built.
    const payload = random() < 0.5 ? mutate(template, random) : template;
    if (payload !== template) mutated++;
    sent += payload.length;
    pair.server.send(payload);
    pair.run();
    if (pair.client.isClosed) break;
    if (payload !== template) survived++;
    expectStillAnswers(pair, seed);
  }
  expectDeliberateClose(pair.closedWith, seed);
  if (!pair.client.isClosed) expectBounded(pair, sent, transmitted, seed);
  return { closed: pair.client.isClosed, mutated, survived, code: pair.closedWith?.code };
}

describe('fuzz: mutated connection-layer plaintext', () => {
  it(`never throws, closes only with documented codes, and keeps answering when it stays open (${RUNS} runs of ${MESSAGES_PER_RUN} messages)`, () => {
    let mutated = 0;
    let survived = 0;
    let closed = 0;
    let stayedOpen = 0;
    const codes = new Set<number>();
    for (let seed = 1; seed <= RUNS; seed++) {
      const outcome = run(seed);
      mutated += outcome.mutated;
      survived += outcome.survived;
      if (outcome.closed) closed++;
      else stayedOpen++;
      if (outcome.code !== undefined) codes.add(outcome.code);
    }
    // The fuzzer reached the decoders: many mutations, most ending on a deliberate check with
    // more than one of the connection layer's codes, and some the core lived through.
    // (The core is strict: a malformed message ends the connection, so most runs close early.
    // The mutations it lives through are mostly in data it passes on or values it may accept.)
    expect(mutated).toBeGreaterThan(RUNS);
    expect(closed).toBeGreaterThan(RUNS / 2);
    expect(survived).toBeGreaterThan(RUNS / 10);
    expect(stayedOpen).toBeGreaterThan(0);
    expect([...codes].filter((c) => [Code.ProtocolError, Code.InvalidChannelId, Code.InvalidChannelData, Code.InvalidChannelMessage].includes(c as never)).length).toBeGreaterThanOrEqual(2);
  });
});
