// benchmarkCrypto (ts/crypto/benchmark.ts): the rows it reports for every provider that loads,
// its option checks, and the packets it times, which must be real RFC 4253 §6 packets that a
// fresh opener opens back to the plaintext (so the rates measure real work).

import { describe, expect, it } from 'vitest';
import {
  benchmarkCrypto,
  buildBenchmarkPacket,
  DEFAULT_BENCHMARK_ALGORITHMS,
  DEFAULT_BENCHMARK_MAC,
  DEFAULT_BENCHMARK_PROVIDERS,
  resolveCryptoBenchmark,
  type BenchmarkCryptoOptions,
  type BenchmarkProviderName,
  type BenchmarkRow,
} from '../../../ts/crypto/benchmark.js';
import { automaticCryptoProvider, loadCryptoProvider } from '../../../ts/crypto/select.js';
import { CoreCryptoProvider } from '../../../ts/crypto/core.js';
import { loadWasmCore } from '../../../ts/crypto/wasm.js';
import type { CryptoProvider, DirectionKeys } from '../../../ts/crypto/provider.js';
import { SshError, Code } from '../../../ts/protocol/errors.js';
import { randomBytes } from 'node:crypto';

/** Each default provider loaded here the way revtun loads it, or the error it gave. */
function loadDirectly(name: BenchmarkProviderName): CryptoProvider | Error {
  try {
    if (name === 'wasm-simd') return new CoreCryptoProvider(loadWasmCore('simd'));
    if (name === 'wasm-scalar') return new CoreCryptoProvider(loadWasmCore('scalar'));
    if (name === 'auto') return automaticCryptoProvider();
    return loadCryptoProvider(name);
  } catch (error) {
    return error as Error;
  }
}

const outcomes = DEFAULT_BENCHMARK_PROVIDERS.map((name) => [name, loadDirectly(name)] as const);
const loadable = outcomes.filter(([, p]) => !(p instanceof Error)).map(([name]) => name);
const notLoadable = outcomes.filter(([, p]) => p instanceof Error).map(([name]) => name);
const tiny = { seconds: 0.002, sizes: [256, 1024] } satisfies BenchmarkCryptoOptions;

function expectBadArgument(options: BenchmarkCryptoOptions, message: RegExp): void {
  let caught: unknown;
  try {
    resolveCryptoBenchmark(options);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SshError);
  expect((caught as SshError).code).toBe(Code.BadArgument);
  expect((caught as SshError).message).toMatch(message);
}

describe('benchmarkCrypto rows', () => {
  it('reports one well-formed row per provider that loads, algorithm and size, in that order', async () => {
    const algorithms = ['aes128-gcm@openssh.com', 'aes128-ctr/umac-64-etm@openssh.com', 'aes128-cbc'];
    const seen: BenchmarkRow[] = [];
    const result = await benchmarkCrypto({ ...tiny, algorithms, onRow: (row) => seen.push(row) });
    expect(loadable).toContain('node');
    expect(result.unavailable.map((u) => u.provider)).toEqual(notLoadable);
    for (const u of result.unavailable) expect(u.reason).not.toBe('');

    const offers = (name: BenchmarkProviderName, cipher: string, mac: string | null) => {
      const p = loadDirectly(name) as CryptoProvider;
      return p.ciphers.has(cipher) && (mac === null || p.macs.has(mac));
    };
    const expected: [string, string | null, BenchmarkProviderName, number][] = [];
    for (const [cipher, mac] of [
      ['aes128-gcm@openssh.com', null],
      ['aes128-ctr', 'umac-64-etm@openssh.com'],
      ['aes128-cbc', DEFAULT_BENCHMARK_MAC],
    ] as const) {
      for (const size of tiny.sizes) for (const name of loadable) if (offers(name, cipher, mac)) expected.push([cipher, mac, name, size]);
    }
    expect(result.rows.map((r) => [r.algorithm, r.mac, r.provider, r.packetSize])).toEqual(expected);
    // node:crypto has no UMAC: that pair is skipped for it, not reported as zero.
    expect(result.rows.some((r) => r.provider === 'node' && r.mac === 'umac-64-etm@openssh.com')).toBe(false);
    expect(seen).toEqual(result.rows);
    for (const row of result.rows) {
      expect(Object.keys(row)).toEqual(['algorithm', 'mac', 'provider', 'packetSize', 'sealMBps', 'openMBps']);
      expect(Number.isFinite(row.sealMBps) && row.sealMBps > 0).toBe(true);
      expect(Number.isFinite(row.openMBps) && row.openMBps > 0).toBe(true);
    }
  });

  it('runs every default algorithm pair on every provider that offers it', async () => {
    const result = await benchmarkCrypto({ seconds: 0.001, sizes: [512] });
    const pairs = new Set(result.rows.map((r) => (r.mac ? `${r.algorithm}/${r.mac}` : r.algorithm)));
    expect([...pairs]).toEqual([...DEFAULT_BENCHMARK_ALGORITHMS]);
    expect(new Set(result.rows.map((r) => r.provider))).toEqual(new Set(loadable));
  });

  it('lets a timer set while one row is reported run before the next row', async () => {
    const firedBeforeRow: boolean[] = [];
    let fired = false;
    await benchmarkCrypto({
      providers: ['node'],
      algorithms: ['aes128-ctr'],
      sizes: [256, 512, 1024],
      seconds: 0.002,
      onRow: () => {
        firedBeforeRow.push(fired);
        fired = false;
        setTimeout(() => {
          fired = true;
        }, 0);
      },
    });
    expect(firedBeforeRow).toEqual([false, true, true]);
  });

  it('times "wasm", the WASM build revtun picks by itself, when named', async () => {
    const { rows } = await benchmarkCrypto({ providers: ['wasm'], algorithms: ['chacha20-poly1305@openssh.com'], sizes: [256], seconds: 0.002 });
    expect(rows.map((r) => [r.provider, r.algorithm, r.mac])).toEqual([['wasm', 'chacha20-poly1305@openssh.com', null]]);
  });

  it('times "auto", the automatic provider, on pairs no single backend but the Rust core has', async () => {
    const { rows } = await benchmarkCrypto({ providers: ['auto'], algorithms: ['aes128-gcm@openssh.com', 'aes128-ctr/umac-64-etm@openssh.com'], sizes: [256], seconds: 0.002 });
    expect(rows.map((r) => [r.provider, r.algorithm, r.mac])).toEqual([
      ['auto', 'aes128-gcm@openssh.com', null],
      ['auto', 'aes128-ctr', 'umac-64-etm@openssh.com'],
    ]);
    expect(rows.every((r) => Number.isFinite(r.sealMBps) && r.sealMBps > 0 && Number.isFinite(r.openMBps) && r.openMBps > 0)).toBe(true);
  });
});

describe('benchmarkCrypto options', () => {
  it('refuses unknown providers and algorithms, and malformed pairs', () => {
    expectBadArgument({ providers: ['bogus' as BenchmarkProviderName] }, /unknown crypto provider "bogus"/);
    expectBadArgument({ providers: [] }, /no crypto providers/);
    expectBadArgument({ algorithms: ['aes999-ctr'] }, /unknown cipher "aes999-ctr"/);
    expectBadArgument({ algorithms: ['aes128-ctr/hmac-nothing'] }, /unknown MAC "hmac-nothing"/);
    expectBadArgument({ algorithms: ['aes128-gcm@openssh.com/hmac-sha1'] }, /AEAD cipher and takes no MAC/);
    expectBadArgument({ algorithms: ['aes128-ctr/hmac-sha1/x'] }, /expected cipher or cipher\/mac/);
    expectBadArgument({ algorithms: ['aes128-ctr/'] }, /expected cipher or cipher\/mac/);
    expectBadArgument({ algorithms: [] }, /no algorithms/);
  });

  it('refuses packet sizes and times out of range', () => {
    for (const size of [0, 255, 1024.5, 256 * 1024 + 1, Number.NaN]) expectBadArgument({ sizes: [size] }, /bad packet size/);
    expectBadArgument({ sizes: [] }, /no packet sizes/);
    for (const seconds of [0, -1, 61, Number.NaN, Number.POSITIVE_INFINITY]) expectBadArgument({ seconds }, /bad seconds/);
  });

  it('gives a bare non-AEAD cipher the default MAC and an AEAD cipher none', () => {
    const plan = resolveCryptoBenchmark({ algorithms: ['aes256-ctr', 'chacha20-poly1305@openssh.com', { cipher: 'aes128-cbc', mac: 'hmac-sha1' }] });
    expect(plan.algorithms).toEqual([
      { cipher: 'aes256-ctr', mac: DEFAULT_BENCHMARK_MAC },
      { cipher: 'chacha20-poly1305@openssh.com', mac: null },
      { cipher: 'aes128-cbc', mac: 'hmac-sha1' },
    ]);
    expect(plan.sizes).toEqual([1024, 16384, 32768]);
    expect(plan.seconds).toBe(0.5);
  });

  it('treats a provider named outright that cannot load as an error, and one that loads as chosen', () => {
    for (const [name, outcome] of outcomes) {
      if (outcome instanceof Error) expectBadArgument({ providers: [name] }, new RegExp(`crypto provider "${name}" is not available`));
      else expect(resolveCryptoBenchmark({ providers: [name, name] })).toMatchObject({ providers: [name], unavailable: [] });
    }
  });
});

describe('the packets the benchmark times', () => {
  /** Opens the way the transport does: the head first (unless its length travels in clear), then the rest. */
  function open(provider: CryptoProvider, keys: DirectionKeys, sealed: Uint8Array): { length: number; packet: Uint8Array } {
    const opener = provider.createOpener(keys);
    const packet = sealed.slice();
    const head = packet.subarray(0, opener.lengthFieldBytes);
    const length = opener.decryptLength(7, head);
    opener.open(7, packet);
    return { length, packet };
  }

  it('are RFC 4253 §6 packets within the size asked for, and open to what was sealed', () => {
    let checked = 0;
    for (const name of loadable) {
      const provider = loadDirectly(name) as CryptoProvider;
      for (const spec of resolveCryptoBenchmark({ providers: [name] }).algorithms) {
        const cipher = provider.ciphers.get(spec.cipher);
        if (!cipher || (spec.mac && !provider.macs.has(spec.mac))) continue;
        const keys: DirectionKeys = {
          cipher: spec.cipher,
          mac: spec.mac,
          key: randomBytes(cipher.keyLength),
          iv: randomBytes(cipher.ivLength),
          macKey: randomBytes(spec.mac ? provider.macs.get(spec.mac)!.keyLength : 0),
        };
        for (const size of [256, 1000, 1024, 32 * 1024]) {
          const sealer = provider.createSealer(keys);
          const plain = buildBenchmarkPacket(sealer, size);
          const block = Math.max(sealer.blockSize, 8);
          const view = new DataView(plain.buffer);
          const packetLength = view.getUint32(0);
          expect(4 + packetLength + sealer.macLength).toBe(plain.length);
          expect(plain.length).toBeLessThanOrEqual(size);
          expect(plain.length).toBeGreaterThan(size - block);
          expect(plain[4]).toBeGreaterThanOrEqual(4);
          expect((packetLength + (sealer.lengthOutsidePadding ? 0 : 4)) % block).toBe(0);

          const sealed = plain.slice();
          sealer.seal(7, sealed);
          expect(Buffer.from(sealed.subarray(5)).equals(Buffer.from(plain.subarray(5)))).toBe(false);
          const { length, packet } = open(provider, keys, sealed);
          expect(length).toBe(packetLength);
          const end = plain.length - sealer.macLength;
          expect(Buffer.from(packet.subarray(4, end)).equals(Buffer.from(plain.subarray(4, end)))).toBe(true);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('a sealed benchmark packet with one flipped bit does not open', () => {
    const provider = loadCryptoProvider('node');
    const keys: DirectionKeys = { cipher: 'aes128-gcm@openssh.com', mac: null, key: randomBytes(16), iv: randomBytes(12), macKey: new Uint8Array(0) };
    const sealed = buildBenchmarkPacket(provider.createSealer(keys), 1024);
    provider.createSealer(keys).seal(7, sealed);
    sealed[100]! ^= 1;
    expect(() => open(provider, keys, sealed)).toThrow(SshError);
  });
});
