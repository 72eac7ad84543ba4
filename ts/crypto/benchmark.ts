// The packet-crypto micro-benchmark behind `revtun speed` and bench/crypto.mjs: MB/s sealing
// and opening whole SSH binary packets (RFC 4253 §6) per algorithm pair, provider and packet
// size. Only performance.now() and setTimeout are used, so it runs on Node, Bun and Deno.
//
// What is timed is the provider's seal or open call and nothing else: sealing re-encrypts one
// buffer in place, and opening works through a ring of packets that were sealed (untimed) by a
// second sealer holding the same keys, so that the opener sees packets in the order their
// cipher state expects. The ring is re-filled between passes outside the clock, and its memory
// is bounded by RING_BYTES. Every pass checks that the opener gave back the plaintext that was
// sealed, so a row is only reported for work that really round-trips.

import { randomBytes } from 'node:crypto';
import type { CryptoProvider, DirectionKeys, PacketOpener, PacketSealer } from './provider.js';
import { CoreCryptoProvider } from './core.js';
import { loadWasmCore } from './wasm.js';
import { automaticCryptoProvider, loadCryptoProvider } from './select.js';
import { SshError, Code } from '../protocol/errors.js';

/**
 * The providers the benchmark can time: `wasm-simd` and `wasm-scalar` are the two builds of
 * the WASM core, `wasm` is whichever of them revtun loads by itself (see loadWasmCore), and
 * `auto` is the automatic provider, each algorithm on the backend a tunnel would use.
 */
export type BenchmarkProviderName = 'native' | 'wasm' | 'wasm-simd' | 'wasm-scalar' | 'node' | 'auto';

/** Every provider name benchmarkCrypto accepts. */
export const BENCHMARK_PROVIDER_NAMES: readonly BenchmarkProviderName[] = ['native', 'wasm', 'wasm-simd', 'wasm-scalar', 'node', 'auto'];

/** The providers timed when none are named: every build once (`wasm` would repeat one of the two WASM builds). */
export const DEFAULT_BENCHMARK_PROVIDERS: readonly BenchmarkProviderName[] = ['native', 'wasm-simd', 'wasm-scalar', 'node'];

/** One algorithm pair: a packet cipher and, for a cipher that is not AEAD, its MAC. */
export interface BenchmarkAlgorithm {
  cipher: string;
  /** null for the AEAD ciphers, which carry their own tag. */
  mac: string | null;
}

/** The MAC paired with a non-AEAD cipher named alone: every provider implements it, and OpenSSH offers it by default. */
export const DEFAULT_BENCHMARK_MAC = 'hmac-sha2-256-etm@openssh.com';

/** The algorithm pairs timed when none are named (`cipher` alone for AEAD, `cipher/mac` otherwise). */
export const DEFAULT_BENCHMARK_ALGORITHMS: readonly string[] = [
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  'chacha20-poly1305@openssh.com',
  'aes128-ctr/hmac-sha2-256-etm@openssh.com',
  'aes128-ctr/umac-64-etm@openssh.com',
  'aes128-ctr/umac-128-etm@openssh.com',
  'aes256-ctr/hmac-sha2-512-etm@openssh.com',
  'aes128-cbc/hmac-sha1',
  '3des-cbc/hmac-sha1',
  'blowfish-cbc/hmac-md5',
  'cast128-cbc/hmac-md5',
  'arcfour256/hmac-sha1',
];

/** The packet sizes timed when none are named, in bytes on the wire: 1 KiB, 16 KiB, 32 KiB. */
export const DEFAULT_BENCHMARK_SIZES: readonly number[] = [1024, 16 * 1024, 32 * 1024];

/** The smallest and largest packet sizes accepted (the largest is OpenSSH's PACKET_MAX_SIZE). */
export const BENCHMARK_SIZE_LIMITS = { min: 256, max: 256 * 1024 } as const;

/** The longest time per row and direction accepted, in seconds. */
export const BENCHMARK_MAX_SECONDS = 60;

/** The packets waiting to be opened take at most this much memory per row. */
const RING_BYTES = 4 * 1024 * 1024;

/** The untimed warm-up before each direction: this share of the time per row, at most WARM_UP_MAX_MILLISECONDS. */
const WARM_UP_SHARE = 0.2;
const WARM_UP_MAX_MILLISECONDS = 100;

/** The clock is read about once a millisecond: batches grow until one takes that long. */
const BATCH_MILLISECONDS = 1;

/**
 * One measurement. MB/s is 10^6 bytes per second of whole packets (length field, padded body
 * and MAC or tag), the unit `openssl speed` reports in.
 */
export interface BenchmarkRow {
  /** The packet cipher. */
  algorithm: string;
  /** The MAC, or null for an AEAD cipher. */
  mac: string | null;
  /** Which provider was timed. */
  provider: BenchmarkProviderName;
  /**
   * The packet size asked for: the bytes a packet takes on the wire. The benchmark builds the
   * largest packet that fits in it (the encrypted part must be whole cipher blocks, so it may
   * be up to a block shorter); the rates count the bytes of the packet actually built.
   */
  packetSize: number;
  /** MB/s sealing (encrypting and tagging in place). */
  sealMBps: number;
  /** MB/s opening (length, then verifying and decrypting in place). */
  openMBps: number;
}

/** A provider that was not timed because it does not load here, and why. */
export interface UnavailableBenchmarkProvider {
  provider: BenchmarkProviderName;
  reason: string;
}

/** What benchmarkCrypto does; everything is optional. */
export interface BenchmarkCryptoOptions {
  /**
   * The providers to time, in this order. Default DEFAULT_BENCHMARK_PROVIDERS, keeping those
   * that load (the rest are reported in `unavailable`); a provider named here that cannot load
   * is an error (SshError 10022).
   */
  providers?: readonly BenchmarkProviderName[];
  /**
   * Algorithm pairs, as `cipher`, `cipher/mac` or objects. A non-AEAD cipher named alone gets
   * DEFAULT_BENCHMARK_MAC. Default DEFAULT_BENCHMARK_ALGORITHMS. A pair a provider lacks is
   * skipped for that provider; one that no provider here implements is an error.
   */
  algorithms?: readonly (string | BenchmarkAlgorithm)[];
  /** Packet sizes in bytes on the wire (see BenchmarkRow.packetSize). Default DEFAULT_BENCHMARK_SIZES. */
  sizes?: readonly number[];
  /** Seconds spent per row on each direction (sealing, then opening). Default 0.5. */
  seconds?: number;
  /** Called with each row as soon as it is measured. */
  onRow?: (row: BenchmarkRow) => void;
}

/** Options checked and resolved: the providers that will run, and what each row times. */
export interface CryptoBenchmarkPlan {
  /** The providers that will be timed, loaded, in order and without repeats. */
  providers: BenchmarkProviderName[];
  /** Default providers left out because they do not load here (empty when providers were named). */
  unavailable: UnavailableBenchmarkProvider[];
  /** The pairs, each MAC filled in (DEFAULT_BENCHMARK_MAC) or null for AEAD. */
  algorithms: BenchmarkAlgorithm[];
  /** Packet sizes in bytes on the wire. */
  sizes: number[];
  /** Seconds per row and direction. */
  seconds: number;
}

/** What benchmarkCrypto returns: the rows, algorithm by algorithm, size by size, provider by provider. */
export interface CryptoBenchmarkResult {
  rows: BenchmarkRow[];
  /** As in CryptoBenchmarkPlan: default providers that do not load here, and why. */
  unavailable: UnavailableBenchmarkProvider[];
}

const loaded = new Map<BenchmarkProviderName, CryptoProvider | Error>();

function tryLoad(name: BenchmarkProviderName): CryptoProvider | Error {
  let result = loaded.get(name);
  if (result === undefined) {
    try {
      if (name === 'wasm-simd' || name === 'wasm-scalar') result = new CoreCryptoProvider(loadWasmCore(name === 'wasm-simd' ? 'simd' : 'scalar'));
      else if (name === 'auto') result = automaticCryptoProvider();
      else result = loadCryptoProvider(name);
    } catch (error) {
      result = error instanceof Error ? error : new Error(String(error));
    }
    loaded.set(name, result);
  }
  return result;
}

function provider(name: BenchmarkProviderName): CryptoProvider {
  const result = tryLoad(name);
  if (result instanceof Error) throw badArgument(`crypto provider "${name}" is not available: ${firstLine(result)}`);
  return result;
}

function firstLine(error: Error): string {
  return error.message.split('\n')[0]!.replace(/^crypto provider "[^"]+" is not available: /, '');
}

function badArgument(message: string): SshError {
  return new SshError(Code.BadArgument, message, 'local');
}

function isProviderName(name: string): name is BenchmarkProviderName {
  return (BENCHMARK_PROVIDER_NAMES as readonly string[]).includes(name);
}

/** Reads one algorithm pair, as written on the command line or given as an object. */
function parseAlgorithm(spec: string | BenchmarkAlgorithm): { cipher: string; mac: string | null | undefined } {
  if (typeof spec !== 'string') return { cipher: spec.cipher, mac: spec.mac };
  const parts = spec.trim().split('/');
  if (parts.length > 2 || parts.some((part) => part === '')) throw badArgument(`bad algorithm "${spec}": expected cipher or cipher/mac`);
  return { cipher: parts[0]!, mac: parts[1] };
}

function resolveAlgorithms(specs: readonly (string | BenchmarkAlgorithm)[], known: CryptoProvider[]): BenchmarkAlgorithm[] {
  if (specs.length === 0) throw badArgument('no algorithms to benchmark');
  return specs.map((spec) => {
    const { cipher, mac } = parseAlgorithm(spec);
    const info = known.map((p) => p.ciphers.get(cipher)).find((c) => c !== undefined);
    if (!info) throw badArgument(`unknown cipher "${cipher}" (no crypto provider here implements it)`);
    if (info.aead) {
      if (mac) throw badArgument(`${cipher} is an AEAD cipher and takes no MAC (got "${mac}")`);
      return { cipher, mac: null };
    }
    const chosen = mac ?? DEFAULT_BENCHMARK_MAC;
    if (!known.some((p) => p.macs.has(chosen))) throw badArgument(`unknown MAC "${chosen}" (no crypto provider here implements it)`);
    return { cipher, mac: chosen };
  });
}

function resolveSizes(sizes: readonly number[]): number[] {
  if (sizes.length === 0) throw badArgument('no packet sizes to benchmark');
  for (const size of sizes) {
    if (!Number.isInteger(size) || size < BENCHMARK_SIZE_LIMITS.min || size > BENCHMARK_SIZE_LIMITS.max) {
      throw badArgument(`bad packet size ${size}: a whole number of bytes from ${BENCHMARK_SIZE_LIMITS.min} to ${BENCHMARK_SIZE_LIMITS.max}`);
    }
  }
  return [...sizes];
}

function resolveSeconds(seconds: number): number {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0 || seconds > BENCHMARK_MAX_SECONDS) {
    throw badArgument(`bad seconds ${seconds}: more than 0 and at most ${BENCHMARK_MAX_SECONDS}`);
  }
  return seconds;
}

/**
 * Checks benchmarkCrypto's options and loads the providers, without timing anything; throws
 * SshError 10022 (BadArgument) naming the first bad option.
 */
export function resolveCryptoBenchmark(options: BenchmarkCryptoOptions = {}): CryptoBenchmarkPlan {
  const unavailable: UnavailableBenchmarkProvider[] = [];
  const providers: BenchmarkProviderName[] = [];
  if (options.providers !== undefined) {
    if (options.providers.length === 0) throw badArgument('no crypto providers to benchmark');
    for (const name of options.providers) {
      if (!isProviderName(name)) throw badArgument(`unknown crypto provider "${name}" (expected ${BENCHMARK_PROVIDER_NAMES.join(', ')})`);
      provider(name);
      if (!providers.includes(name)) providers.push(name);
    }
  } else {
    for (const name of DEFAULT_BENCHMARK_PROVIDERS) {
      const result = tryLoad(name);
      if (result instanceof Error) unavailable.push({ provider: name, reason: firstLine(result) });
      else providers.push(name);
    }
  }
  // A name is known when any provider that loads here implements it, chosen or not.
  const known = BENCHMARK_PROVIDER_NAMES.map(tryLoad).filter((p): p is CryptoProvider => !(p instanceof Error));
  return {
    providers,
    unavailable,
    algorithms: resolveAlgorithms(options.algorithms ?? DEFAULT_BENCHMARK_ALGORITHMS, known),
    sizes: resolveSizes(options.sizes ?? DEFAULT_BENCHMARK_SIZES),
    seconds: resolveSeconds(options.seconds ?? 0.5),
  };
}

/** Whether `name` implements the pair (a provider lacking it gets no row). */
export function providerOffers(name: BenchmarkProviderName, algorithm: BenchmarkAlgorithm): boolean {
  const result = tryLoad(name);
  if (result instanceof Error) return false;
  return result.ciphers.has(algorithm.cipher) && (algorithm.mac === null || result.macs.has(algorithm.mac));
}

/**
 * Times sealing and opening whole SSH packets for every algorithm pair × packet size ×
 * provider in `options` (see BenchmarkCryptoOptions for the defaults). Rows come algorithm by
 * algorithm, then size by size, then provider by provider; the event loop runs between rows.
 * Throws SshError 10022 for bad options, before timing anything.
 */
export async function benchmarkCrypto(options: BenchmarkCryptoOptions = {}): Promise<CryptoBenchmarkResult> {
  const plan = resolveCryptoBenchmark(options);
  const rows: BenchmarkRow[] = [];
  for (const algorithm of plan.algorithms) {
    for (const size of plan.sizes) {
      for (const name of plan.providers) {
        if (!providerOffers(name, algorithm)) continue;
        await nextTurn();
        const rates = await measure(provider(name), algorithm, size, plan.seconds);
        const row: BenchmarkRow = { algorithm: algorithm.cipher, mac: algorithm.mac, provider: name, packetSize: size, ...rates };
        rows.push(row);
        options.onRow?.(row);
      }
    }
  }
  return { rows, unavailable: plan.unavailable };
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Random keys of the sizes the provider expects for `algorithm`. */
function keysFor(provider: CryptoProvider, algorithm: BenchmarkAlgorithm): DirectionKeys {
  const cipher = provider.ciphers.get(algorithm.cipher)!;
  const mac = algorithm.mac === null ? undefined : provider.macs.get(algorithm.mac);
  return {
    cipher: algorithm.cipher,
    mac: algorithm.mac,
    key: randomBytes(cipher.keyLength),
    iv: randomBytes(cipher.ivLength),
    macKey: randomBytes(mac?.keyLength ?? 0),
  };
}

/**
 * A plaintext binary packet (RFC 4253 §6) ready for `sealer.seal`: uint32 packet_length, byte
 * padding_length, a random payload, random padding, and room for the MAC or tag. It is the
 * largest that takes at most `wireSize` bytes on the wire, with the encrypted part in whole
 * blocks of the cipher (at least 8, as §6 asks) and at least 4 bytes of padding.
 */
export function buildBenchmarkPacket(layout: Pick<PacketSealer, 'blockSize' | 'macLength' | 'lengthOutsidePadding'>, wireSize: number): Uint8Array {
  const block = Math.max(layout.blockSize, 8);
  const outside = layout.lengthOutsidePadding ? 4 : 0;
  const encrypted = Math.floor((wireSize - layout.macLength - outside) / block) * block;
  const packetLength = outside + encrypted - 4;
  const padding = block;
  if (packetLength < 1 + padding) throw badArgument(`packet size ${wireSize} is too small for a ${block}-byte block and a ${layout.macLength}-byte tag`);
  const packet = new Uint8Array(4 + packetLength + layout.macLength);
  new DataView(packet.buffer).setUint32(0, packetLength);
  packet[4] = padding;
  packet.set(randomBytes(packetLength - 1), 5);
  return packet;
}

/** The MB/s of `count` packets of `length` bytes in `milliseconds`. */
function rate(count: number, length: number, milliseconds: number): number {
  return (count * length) / (milliseconds / 1000) / 1e6;
}

async function measure(provider: CryptoProvider, algorithm: BenchmarkAlgorithm, size: number, seconds: number): Promise<{ sealMBps: number; openMBps: number }> {
  const keys = keysFor(provider, algorithm);
  const sealer = provider.createSealer(keys);
  const template = buildBenchmarkPacket(sealer, size);
  const budget = seconds * 1000;

  // Untimed first, so that the JIT and the caches have settled before the clock runs.
  const warmUp = Math.min(budget * WARM_UP_SHARE, WARM_UP_MAX_MILLISECONDS);

  // Sealing: one buffer, encrypted again and again in place.
  const packet = template.slice();
  let sequence = 0;
  for (const warmUntil = performance.now() + warmUp; performance.now() < warmUntil;) sealer.seal(sequence++, packet);
  let sealed = 0;
  let sealMs = 0;
  for (let batch = 1; sealMs < budget;) {
    const start = performance.now();
    for (let i = 0; i < batch; i++) sealer.seal(sequence + i, packet);
    const took = performance.now() - start;
    sealMs += took;
    sealed += batch;
    sequence += batch;
    if (took < BATCH_MILLISECONDS) batch *= 2;
  }
  await nextTurn();

  // Opening: a ring sized to what sealing managed in the same time, within RING_BYTES. The
  // warm-up's packets are opened but not counted.
  const ringCount = Math.max(1, Math.min(Math.floor(RING_BYTES / template.length), sealed));
  const ring = Array.from({ length: ringCount }, () => template.slice());
  const feeder = provider.createSealer(keys);
  const opener = provider.createOpener(keys);
  const heads = ring.map((p) => p.subarray(0, opener.lengthFieldBytes));
  sequence = 0;
  let opened = 0;
  let openMs = 0;
  let warmMs = 0;
  for (let batch = 1; openMs < budget;) {
    for (let i = 0; i < ringCount; i++) {
      ring[i]!.set(template);
      feeder.seal(sequence + i, ring[i]!);
    }
    let done = 0;
    while (done < ringCount && openMs < budget) {
      const count = Math.min(batch, ringCount - done);
      const start = performance.now();
      openPackets(opener, ring, heads, done, count, sequence + done);
      const took = performance.now() - start;
      done += count;
      if (took < BATCH_MILLISECONDS) batch *= 2;
      if (warmMs < warmUp) {
        warmMs += took;
      } else {
        openMs += took;
        opened += count;
      }
    }
    checkOpened(provider, algorithm, opener, template, ring[0]!);
    sequence += done;
  }
  return { sealMBps: rate(sealed, template.length, sealMs), openMBps: rate(opened, template.length, openMs) };
}

/** The timed part of opening: what the transport does per packet, and nothing more. */
function openPackets(opener: PacketOpener, ring: Uint8Array[], heads: Uint8Array[], first: number, count: number, firstSequence: number): void {
  const clear = opener.lengthInClear === true;
  for (let i = 0; i < count; i++) {
    if (!clear) opener.decryptLength(firstSequence + i, heads[first + i]!);
    opener.open(firstSequence + i, ring[first + i]!);
  }
}

/** The opener must have given back the sealed plaintext (past the length field, which some leave encrypted). */
function checkOpened(provider: CryptoProvider, algorithm: BenchmarkAlgorithm, opener: PacketOpener, template: Uint8Array, packet: Uint8Array): void {
  const end = template.length - opener.macLength;
  for (let i = opener.lengthFieldBytes; i < end; i++) {
    if (packet[i] !== template[i]) {
      throw new SshError(Code.CannotDecrypt, `benchmark: ${provider.name} opened ${algorithm.cipher}${algorithm.mac ? `/${algorithm.mac}` : ''} to different bytes than were sealed`, 'local');
    }
  }
}
