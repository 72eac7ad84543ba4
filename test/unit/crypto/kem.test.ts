// The post-quantum KEMs through the TypeScript providers: NIST's ACVP known answers for
// ML-KEM-768 (the file the Rust tests read too, crates/revtun-core/tests/vectors), the native
// and WASM cores against each other over random seeds for both KEMs, and the wire sizes the key
// exchange checks against what the cores report. sntrup761's NIST known answer needs the NIST
// DRBG's byte stream, so it is checked in Rust (crates/revtun-core/tests/sntrup761.rs).

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadCryptoProvider } from '../../../ts/crypto/select.js';
import type { CoreCryptoProvider } from '../../../ts/crypto/core.js';
import type { KemCore, KemName } from '../../../ts/crypto/kem.js';
import { KEM_WIRE_SIZES } from '../../../ts/protocol/kex-hybrid.js';
import { SshError } from '../../../ts/protocol/errors.js';

const cores: [string, KemCore][] = (['native', 'wasm'] as const).map((name) => {
  const kem = (loadCryptoProvider(name) as CoreCryptoProvider).core.kem;
  if (!kem) throw new Error(`the ${name} core has no KEMs: rebuild it (npm run build:native / build:wasm)`);
  return [name, kem];
});
const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();

/** The `[section]` records of the ACVP extract: `key = hex` lines, blank-line separated. */
function records(section: string): Record<string, string>[] {
  const text = readFileSync(new URL('../../../crates/revtun-core/tests/vectors/mlkem768-acvp.txt', import.meta.url), 'utf8');
  const body = text.split(`[${section}]\n`)[1]!.split('\n[')[0]!;
  return body
    .split('\n\n')
    .filter((block) => block.trim() && !block.startsWith('#'))
    .map((block) =>
      Object.fromEntries(
        block
          .trim()
          .split('\n')
          .map((line) => line.split(' = ') as [string, string]),
      ),
    );
}

describe.each(cores)('ML-KEM-768 known answers (%s)', (_name, kem) => {
  it('key generation from d ‖ z gives ACVP’s encapsulation key', () => {
    const cases = records('keygen');
    expect(cases).toHaveLength(5);
    for (const c of cases) {
      const pair = kem.createKeyPair('mlkem768', hex(c['d']! + c['z']!));
      expect(toHex(pair.publicKey), `tcId ${c['tcId']}`).toBe(c['ek']);
    }
  });

  it('encapsulation gives ACVP’s ciphertext and key', () => {
    for (const c of records('encapsulation')) {
      const { ciphertext, secret } = kem.encapsulate('mlkem768', hex(c['ek']!), hex(c['m']!));
      expect(toHex(ciphertext), `tcId ${c['tcId']}`).toBe(c['c']);
      expect(toHex(secret), `tcId ${c['tcId']}`).toBe(c['k']);
    }
  });
});

describe('native and WASM cores agree', () => {
  const [[, native], [, wasm]] = cores as [[string, KemCore], [string, KemCore]];
  it.each(['mlkem768', 'sntrup761'] as KemName[])('%s over random seeds, each decapsulating the other’s ciphertexts', (name) => {
    const info = native.kems.get(name)!;
    for (let round = 0; round < 5; round++) {
      const seed = randomBytes(info.seedLength);
      const nativePair = native.createKeyPair(name, seed);
      const wasmPair = wasm.createKeyPair(name, seed);
      expect(toHex(wasmPair.publicKey)).toBe(toHex(nativePair.publicKey));
      const randomness = randomBytes(32);
      const fromNative = native.encapsulate(name, nativePair.publicKey, randomness);
      const fromWasm = wasm.encapsulate(name, wasmPair.publicKey, randomness);
      expect(toHex(fromWasm.ciphertext)).toBe(toHex(fromNative.ciphertext));
      expect(toHex(wasmPair.decapsulate(fromNative.ciphertext))).toBe(toHex(fromNative.secret));
      expect(toHex(nativePair.decapsulate(fromWasm.ciphertext))).toBe(toHex(fromWasm.secret));
      // A forged ciphertext gives the same implicit-rejection secret in both, unlike the real one.
      const forged = fromNative.ciphertext.slice();
      forged[forged.length - 1]! ^= 0x01;
      const rejected = nativePair.decapsulate(forged);
      expect(toHex(rejected)).not.toBe(toHex(fromNative.secret));
      expect(toHex(wasmPair.decapsulate(forged))).toBe(toHex(rejected));
    }
  });

  it('report the wire sizes the key exchange enforces', () => {
    for (const [, kem] of cores) {
      for (const name of ['mlkem768', 'sntrup761'] as KemName[]) {
        const info = kem.kems.get(name)!;
        expect({ publicKey: info.publicKeyLength, ciphertext: info.ciphertextLength }).toEqual(KEM_WIRE_SIZES[name]);
      }
    }
  });

  it('refuse a ciphertext of the wrong length and a seed of the wrong length', () => {
    for (const [, kem] of cores) {
      const pair = kem.createKeyPair('sntrup761', randomBytes(32));
      expect(() => pair.decapsulate(new Uint8Array(1038))).toThrow(/length/);
      expect(() => kem.createKeyPair('mlkem768', randomBytes(32))).toThrow(/length/);
    }
  });
});

describe('disposing a key pair', () => {
  it.each(cores)('%s: the secret key is gone at once, the public key stays readable, and disposing twice is harmless', (_name, kem) => {
    const pair = kem.createKeyPair('mlkem768', randomBytes(64));
    const { ciphertext, secret } = kem.encapsulate('mlkem768', pair.publicKey, randomBytes(32));
    expect(toHex(pair.decapsulate(ciphertext))).toBe(toHex(secret));
    const publicKey = toHex(pair.publicKey);
    pair.dispose();
    expect(() => pair.decapsulate(ciphertext)).toThrow();
    expect(toHex(pair.publicKey)).toBe(publicKey);
    pair.dispose();
  });
});

describe('providers', () => {
  it('the Rust cores offer both KEMs; node:crypto offers none and says why', () => {
    expect([...loadCryptoProvider('native').kems!].sort()).toEqual(['mlkem768', 'sntrup761']);
    expect([...loadCryptoProvider('wasm').kems!].sort()).toEqual(['mlkem768', 'sntrup761']);
    const node = loadCryptoProvider('node');
    expect(node.kems!.size).toBe(0);
    expect(() => node.createKem!('mlkem768')).toThrow(SshError);
  });
});
