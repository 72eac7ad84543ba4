// The automatic provider over the real backends: which one serves each algorithm, with and
// without the native addon, what the offer puts first without AES instructions, and that packets
// sealed through it are the chosen backend's own (they open with every other backend).

import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { AutoCryptoProvider, BACKEND_ORDER, backendOrder, cpuHasAes, type Backend } from '../../../ts/crypto/auto.js';
import { loadCryptoProvider } from '../../../ts/crypto/select.js';
import type { CryptoProvider, DirectionKeys } from '../../../ts/crypto/provider.js';
import { SshError } from '../../../ts/protocol/errors.js';

const native = loadCryptoProvider('native');
const wasm = loadCryptoProvider('wasm');
const node = loadCryptoProvider('node');

function auto(...names: Backend[]): AutoCryptoProvider {
  const all: Record<Backend, CryptoProvider> = { native, wasm, node };
  return new AutoCryptoProvider(new Map(names.map((name) => [name, all[name]])), true);
}

describe('AutoCryptoProvider', () => {
  it('without the native addon runs AES and 3DES on node:crypto, ChaCha20-Poly1305, UMAC and the legacy ciphers on WASM', () => {
    const provider = auto('wasm', 'node');
    const cases: [string, string | null, Backend][] = [
      ['aes128-gcm@openssh.com', null, 'node'],
      ['aes256-gcm@openssh.com', 'umac-64@openssh.com', 'node'], // an AEAD cipher ignores the MAC
      ['chacha20-poly1305@openssh.com', null, 'wasm'],
      ['aes128-ctr', 'hmac-sha2-256-etm@openssh.com', 'node'],
      ['aes256-ctr', 'hmac-sha2-512', 'node'],
      ['aes128-ctr', 'umac-64-etm@openssh.com', 'wasm'],
      ['aes256-ctr', 'umac-128@openssh.com', 'wasm'],
      ['aes128-cbc', 'hmac-sha1', 'node'],
      ['3des-cbc', 'hmac-sha1', 'node'],
      ['3des-ctr', 'hmac-sha1', 'wasm'], // OpenSSL has no 3DES-CTR
      ['rijndael-cbc@lysator.liu.se', 'hmac-sha1', 'wasm'],
      ['blowfish-cbc', 'hmac-md5', 'wasm'],
      ['cast128-cbc', 'hmac-md5', 'wasm'],
      ['arcfour256', 'hmac-sha1', 'wasm'],
    ];
    expect(cases.map(([cipher, mac]) => [cipher, mac, provider.backendFor(cipher, mac)])).toEqual(cases);
  });

  it('with the native addon runs everything on it except 3DES-CBC, which OpenSSL does three times faster', () => {
    const provider = auto('native', 'node');
    expect(provider.backendFor('aes128-gcm@openssh.com', null)).toBe('native');
    expect(provider.backendFor('chacha20-poly1305@openssh.com', null)).toBe('native');
    expect(provider.backendFor('aes128-ctr', 'hmac-sha2-256-etm@openssh.com')).toBe('native');
    expect(provider.backendFor('blowfish-cbc', 'hmac-md5')).toBe('native');
    expect(provider.backendFor('3des-cbc', 'hmac-sha1')).toBe('node');
    expect(provider.backendFor('3des-cbc', 'umac-64@openssh.com')).toBe('native');
  });

  it('offers every algorithm of its backends and the Rust core’s KEMs', () => {
    const provider = auto('wasm', 'node');
    expect([...provider.ciphers.keys()].sort()).toEqual([...wasm.ciphers.keys()].sort());
    expect([...provider.macs.keys()].sort()).toEqual([...wasm.macs.keys()].sort());
    expect([...provider.kems].sort()).toEqual(['mlkem768', 'sntrup761']);
    expect(provider.createKem('mlkem768').publicKey.length).toBeGreaterThan(0);
    // node:crypto alone: its own algorithms, no KEMs.
    const nodeOnly = auto('node');
    expect([...nodeOnly.ciphers.keys()].sort()).toEqual([...node.ciphers.keys()].sort());
    expect(nodeOnly.kems.size).toBe(0);
    expect(() => nodeOnly.backendFor('blowfish-cbc', 'hmac-md5')).toThrow(SshError);
  });

  it('seals with the chosen backend: its packets open with every other backend, byte for byte the same', () => {
    const provider = auto('wasm', 'node');
    for (const [cipher, mac] of [
      ['aes128-gcm@openssh.com', null],
      ['chacha20-poly1305@openssh.com', null],
      ['aes128-ctr', 'umac-64-etm@openssh.com'],
      ['aes256-ctr', 'hmac-sha2-256'],
    ] as const) {
      const info = provider.ciphers.get(cipher)!;
      const keys: DirectionKeys = { cipher, mac, key: randomBytes(info.keyLength), iv: randomBytes(info.ivLength), macKey: randomBytes(mac ? provider.macs.get(mac)!.keyLength : 0) };
      const sealer = provider.createSealer(keys);
      const reference = (provider.backendFor(cipher, mac) === 'node' ? node : wasm).createSealer(keys);
      // 64 encrypted bytes: the length field is outside them (EtM, AEAD) or their first four.
      const outside = sealer.lengthOutsidePadding ? 4 : 0;
      const plain = new Uint8Array(outside + 64 + sealer.macLength);
      new DataView(plain.buffer).setUint32(0, outside + 64 - 4);
      plain[4] = 8;
      plain.set(randomBytes(plain.length - 5 - sealer.macLength), 5);
      const sealed = plain.slice();
      const expected = plain.slice();
      sealer.seal(7, sealed);
      reference.seal(7, expected);
      expect(Buffer.from(sealed).equals(Buffer.from(expected)), `${cipher} ${mac}`).toBe(true);
      for (const other of [native, wasm, node].filter((p) => p.ciphers.has(cipher) && (!mac || p.macs.has(mac)))) {
        const copy = sealed.slice();
        const opener = other.createOpener(keys);
        const head = copy.slice(0, opener.lengthFieldBytes);
        opener.decryptLength(7, head);
        copy.set(head);
        opener.open(7, copy);
        expect(Buffer.from(copy.subarray(5, copy.length - sealer.macLength)).equals(Buffer.from(plain.subarray(5, plain.length - sealer.macLength))), `${other.name} opens ${cipher}`).toBe(true);
      }
    }
  });

  it('puts ChaCha20-Poly1305 first in the offer only without AES instructions', () => {
    const backends = new Map<Backend, CryptoProvider>([
      ['wasm', wasm],
      ['node', node],
    ]);
    expect(new AutoCryptoProvider(backends, true).fastCiphers).toEqual([]);
    expect(new AutoCryptoProvider(backends, false).fastCiphers).toEqual(['chacha20-poly1305@openssh.com']);
  });

  it('says which backend serves which cipher', () => {
    const description = auto('wasm', 'node').description;
    expect(description).toMatch(/^node for aes128-gcm@openssh\.com, aes256-gcm@openssh\.com, aes128-ctr/);
    expect(description).toMatch(/; wasm \(revtun-core [^)]*wasm32[^;]*\) for chacha20-poly1305@openssh\.com, /);
    expect(description).toContain('with umac-64@openssh.com, umac-128@openssh.com, umac-64-etm@openssh.com, umac-128-etm@openssh.com: wasm instead of node');
  });
});

describe('backendOrder', () => {
  it('names a family for every cipher it lists, and the default order for the rest', () => {
    for (const entry of BACKEND_ORDER)
      expect(
        [...wasm.ciphers.keys()].some((cipher) => entry.ciphers.test(cipher)),
        entry.family,
      ).toBe(true);
    expect(backendOrder('blowfish-cbc')).toEqual(['native', 'wasm', 'node']);
    expect(backendOrder('aes192-ctr')).toEqual(['native', 'node', 'wasm']);
  });
});

describe('cpuHasAes', () => {
  it('reads the flags of x86 and the Features of Arm in /proc/cpuinfo', () => {
    expect(cpuHasAes('processor\t: 0\nflags\t\t: fpu vme sse2 aes avx2\n')).toBe(true);
    expect(cpuHasAes('processor\t: 0\nflags\t\t: fpu vme sse2 avx2\n')).toBe(false);
    expect(cpuHasAes('processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1\n')).toBe(true);
    expect(cpuHasAes('processor\t: 0\nFeatures\t: fp asimd evtstrm crc32\n')).toBe(false);
    // No /proc/cpuinfo (macOS, Windows), or one without flags: assume the instructions are there.
    expect(cpuHasAes(null)).toBe(true);
    expect(cpuHasAes('processor\t: 0\n')).toBe(true);
  });
});
