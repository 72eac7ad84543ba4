// Every provider against known answers and against each other. The known answers
// (test/vectors/packets.json) were sealed by an independent implementation (pyca/cryptography
// and Python's hmac; see test/vectors/generate.py). The equivalence tests seal random packets
// of random lengths with each provider and open them with every other one.

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { loadCryptoProvider } from '../../../ts/crypto/select.js';
import { loadWasmCore } from '../../../ts/crypto/wasm.js';
import type { CryptoProvider, DirectionKeys } from '../../../ts/crypto/provider.js';
import { SshError } from '../../../ts/protocol/errors.js';
import { CoreCryptoProvider } from '../../../ts/crypto/core.js';

interface VectorCase {
  cipher: string;
  mac: string | null;
  key: string;
  iv: string;
  macKey: string;
  packets: { sequence: number; plain: string; sealed: string }[];
}

const vectors = JSON.parse(readFileSync(new URL('../../vectors/packets.json', import.meta.url), 'utf8')) as { cases: VectorCase[] };
// 'wasm' is the build loadWasmCore('auto') picks, the simd128 one on engines with SIMD; the
// scalar build runs the same suite as 'wasm-scalar'.
const providers: [string, CryptoProvider][] = [
  ...(['native', 'wasm', 'node'] as const).map((name): [string, CryptoProvider] => [name, loadCryptoProvider(name)]),
  ['wasm-scalar', new CoreCryptoProvider(loadWasmCore('scalar'))],
];
const core = providers.filter(([name]) => name !== 'node');
const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

function supports(provider: CryptoProvider, cipher: string, mac: string | null): boolean {
  const info = provider.ciphers.get(cipher);
  return info !== undefined && (info.aead || (mac !== null && provider.macs.has(mac)));
}

/** Seals and opens with explicit head handling, the way the transport does. */
function openPacket(provider: CryptoProvider, keys: DirectionKeys, sequence: number, sealed: Uint8Array, opener = provider.createOpener(keys)): Uint8Array {
  const packet = sealed.slice();
  const head = packet.slice(0, opener.lengthFieldBytes);
  const received = head.slice();
  const length = opener.decryptLength(sequence, head);
  if (opener.lengthInClear) {
    // The transport reads such lengths itself: they must be the bytes as received.
    expect(Buffer.from(received).readUInt32BE(0)).toBe(length);
    expect(Buffer.from(head).equals(Buffer.from(received))).toBe(true);
  }
  packet.set(head, 0);
  expect(4 + length + opener.macLength).toBe(packet.length);
  opener.open(sequence, packet);
  return packet.subarray(0, packet.length - opener.macLength);
}

describe('known answers from an independent implementation', () => {
  it('cover every cipher and MAC the Rust core offers except UMAC (RFC 4418 vectors in Rust)', () => {
    const ciphers = new Set(vectors.cases.map((c) => c.cipher));
    const macs = new Set(vectors.cases.flatMap((c) => (c.mac ? [c.mac] : [])));
    for (const [, provider] of core) {
      expect([...provider.ciphers.keys()].filter((c) => !ciphers.has(c))).toEqual([]);
      expect([...provider.macs.keys()].filter((m) => !macs.has(m) && !m.startsWith('umac-'))).toEqual([]);
    }
  });

  for (const [name, provider] of providers) {
    it(`${name} seals and opens every case it supports byte for byte`, () => {
      let checked = 0;
      for (const c of vectors.cases) {
        if (!supports(provider, c.cipher, c.mac)) {
          // Only node:crypto may lack an algorithm, and never one it advertises.
          expect(name).toBe('node');
          continue;
        }
        const keys: DirectionKeys = { cipher: c.cipher, mac: c.mac, key: hex(c.key), iv: hex(c.iv), macKey: hex(c.macKey) };
        const sealer = provider.createSealer(keys);
        const opener = provider.createOpener(keys);
        for (const p of c.packets) {
          const packet = new Uint8Array(hex(p.sealed).length);
          packet.set(hex(p.plain));
          sealer.seal(p.sequence, packet);
          expect(Buffer.from(packet).toString('hex'), `${c.cipher} ${c.mac} seq ${p.sequence}`).toBe(p.sealed);
          expect(Buffer.from(openPacket(provider, keys, p.sequence, hex(p.sealed), opener)).toString('hex')).toBe(p.plain);
        }
        checked++;
      }
      expect(checked).toBeGreaterThanOrEqual(name === 'node' ? 20 : vectors.cases.length);
    });
  }
});

function randomPacket(blockSize: number, lengthOutsidePadding: boolean, macLength: number): Uint8Array {
  const payload = randomInt(0, 2000);
  const block = Math.max(blockSize, 8);
  const unpadded = 1 + payload + (lengthOutsidePadding ? 0 : 4);
  let padding = block - (unpadded % block);
  if (padding < 4) padding += block;
  const length = 1 + payload + padding;
  const packet = new Uint8Array(4 + length + macLength);
  new DataView(packet.buffer).setUint32(0, length);
  packet[4] = padding;
  packet.set(randomBytes(length - 1), 5);
  return packet;
}

function randomKeys(provider: CryptoProvider, cipher: string, mac: string | null): DirectionKeys {
  const info = provider.ciphers.get(cipher)!;
  const macInfo = mac ? provider.macs.get(mac) : undefined;
  return { cipher, mac, key: randomBytes(info.keyLength), iv: randomBytes(info.ivLength), macKey: randomBytes(macInfo?.keyLength ?? 0) };
}

describe('cross-provider equivalence', () => {
  const [, reference] = core[0]!;
  const combinations: [string, string | null][] = [...reference.ciphers].flatMap(([cipher, info]): [string, string | null][] =>
    info.aead ? [[cipher, null]] : [...reference.macs.keys()].map((mac): [string, string | null] => [cipher, mac]),
  );

  it.each(combinations)('%s with %s: identical output from every provider, and each opens the others', (cipher, mac) => {
    const keys = randomKeys(reference, cipher, mac);
    const able = providers.filter(([, p]) => supports(p, cipher, mac));
    expect(able.length).toBeGreaterThanOrEqual(2);
    const sealers = able.map(([name, p]) => [name, p.createSealer(keys)] as const);
    const openers = able.map(([name, p]) => [name, p, p.createOpener(keys)] as const);
    const first = sealers[0]![1];
    let sequence = randomInt(0, 2 ** 32 - 8);
    for (let n = 0; n < 6; n++, sequence = (sequence + 1) >>> 0) {
      const plain = randomPacket(first.blockSize, first.lengthOutsidePadding, first.macLength);
      const sealed = sealers.map(([, sealer]) => {
        const copy = plain.slice();
        sealer.seal(sequence, copy);
        return Buffer.from(copy).toString('hex');
      });
      expect(new Set(sealed).size, `providers ${able.map(([n]) => n).join(', ')} disagree`).toBe(1);
      for (const [name, provider, opener] of openers) {
        const opened = openPacket(provider, keys, sequence, hex(sealed[0]!), opener);
        expect(Buffer.from(opened).equals(Buffer.from(plain.subarray(0, plain.length - first.macLength))), name).toBe(true);
      }
    }
  });

  it('the Rust-core providers mark exactly AES-GCM and the -etm MACs as sending the length in clear', () => {
    for (const [name, provider] of core) {
      for (const [cipher, mac] of combinations) {
        const clear = cipher.includes('-gcm@') || (mac?.endsWith('-etm@openssh.com') ?? false);
        const opener = provider.createOpener(randomKeys(provider, cipher, mac));
        expect(opener.lengthInClear ?? false, `${name} ${cipher} ${mac}`).toBe(clear);
      }
    }
  });

  it.each(combinations)('%s with %s: a flipped bit is error 1015 from every provider', (cipher, mac) => {
    const keys = randomKeys(reference, cipher, mac);
    const sealer = reference.createSealer(keys);
    const plain = randomPacket(sealer.blockSize, sealer.lengthOutsidePadding, sealer.macLength);
    sealer.seal(5, plain);
    // Flip a bit in the body (after the first cipher block, so the length stays sane).
    plain[randomInt(16, plain.length)]! ^= 1 << randomInt(0, 8);
    for (const [name, provider] of providers.filter(([, p]) => supports(p, cipher, mac))) {
      let error: unknown;
      try {
        openPacket(provider, keys, 5, plain);
      } catch (e) {
        error = e;
      }
      expect(error, name).toBeInstanceOf(SshError);
      expect((error as SshError).code, name).toBe(1015);
    }
  });
});

describe('the native provider without the host OpenSSL', () => {
  // Under Node the addon runs chacha20-poly1305 on Node's own OpenSSL; elsewhere (Bun, Deno)
  // it falls back to ring. REVTUN_NO_HOST_OPENSSL forces that fallback in a child process,
  // which must still reproduce the known answers.
  it('seals and opens the chacha20-poly1305 known answers with ring', () => {
    const cases = vectors.cases.filter((c) => c.cipher === 'chacha20-poly1305@openssh.com');
    expect(cases.length).toBeGreaterThan(0);
    const script = `
      import { loadCryptoProvider } from ${JSON.stringify(new URL('../../../dist/index.js', import.meta.url).href)};
      const provider = loadCryptoProvider('native');
      const cases = JSON.parse(process.argv[1]);
      const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
      const out = { description: provider.description, sealed: [], opened: [] };
      for (const c of cases) {
        const keys = { cipher: c.cipher, mac: null, key: hex(c.key), iv: hex(c.iv), macKey: new Uint8Array(0) };
        const sealer = provider.createSealer(keys), opener = provider.createOpener(keys);
        for (const p of c.packets) {
          const packet = new Uint8Array(hex(p.sealed).length);
          packet.set(hex(p.plain));
          sealer.seal(p.sequence, packet);
          out.sealed.push(Buffer.from(packet).toString('hex'));
          const back = hex(p.sealed);
          const head = back.slice(0, 4);
          opener.decryptLength(p.sequence, head);
          opener.open(p.sequence, back);
          out.opened.push(Buffer.from(back.subarray(0, back.length - 16)).toString('hex'));
        }
      }
      console.log(JSON.stringify(out));`;
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(cases)], {
      env: { ...process.env, REVTUN_NO_HOST_OPENSSL: '1' },
      encoding: 'utf8',
    });
    const result = JSON.parse(output) as { description: string; sealed: string[]; opened: string[] };
    expect(result.description).not.toContain("host's OpenSSL");
    expect(result.sealed).toEqual(cases.flatMap((c) => c.packets.map((p) => p.sealed)));
    expect(result.opened).toEqual(cases.flatMap((c) => c.packets.map((p) => p.plain)));
  });

  it('uses the host OpenSSL for chacha20-poly1305 under Node', () => {
    expect((loadCryptoProvider('native') as CoreCryptoProvider).description).toContain("chacha20-poly1305 on the host's OpenSSL");
  });
});

describe('keys the Rust core refuses', () => {
  it.each(core.map(([name, provider]) => [name, provider] as const))('%s: a key of the wrong size is error 1006 naming the algorithm', (_name, provider) => {
    const keys: DirectionKeys = { cipher: 'aes128-ctr', mac: 'umac-64@openssh.com', key: randomBytes(15), iv: randomBytes(16), macKey: randomBytes(16) };
    for (const make of [() => provider.createSealer(keys), () => provider.createOpener(keys)]) {
      let error: unknown;
      try {
        make();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SshError);
      expect((error as SshError).code).toBe(1006);
      expect((error as SshError).message).toContain('aes128-ctr/umac-64@openssh.com: key, IV or MAC key has the wrong length');
    }
  });
});
