// The WASM core's two builds: bindings/revtun-core.wasm (scalar, RustCrypto's ChaCha20 and
// Poly1305) and bindings/revtun-core-simd.wasm (revtun-core's simd128 kernels, see
// crates/revtun-core/src/simd128/). Both export revtun_chacha20_xor and revtun_poly1305, test
// entry points into the very ChaCha20 and Poly1305 code each build seals packets with, so the
// RFC 8439 known answers run against both. Then whole chacha20-poly1305@openssh.com packets:
// the SIMD build must seal byte for byte what the scalar build, the native addon (ring) and
// node:crypto seal, open theirs, and refuse a flipped bit, at lengths around each of the
// kernel's boundaries (64-byte blocks, 256-byte groups of four, the first group that also
// makes the Poly1305 key).

import { describe, expect, it } from 'vitest';
import { createCipheriv, randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadWasmCore, wasmSimdSupported } from '../../../ts/crypto/wasm.js';
import { loadNativeCore } from '../../../ts/crypto/native.js';
import { NodeCryptoProvider } from '../../../ts/crypto/node.js';
import { CoreCryptoProvider } from '../../../ts/crypto/core.js';
import type { CryptoProvider, DirectionKeys } from '../../../ts/crypto/provider.js';
import { Code, SshError } from '../../../ts/protocol/errors.js';
import { fromHex, toHex } from '../../../ts/protocol/wire.js';

const MODULES = { scalar: 'revtun-core.wasm', simd: 'revtun-core-simd.wasm' } as const;
type Build = keyof typeof MODULES;

interface PrimitiveExports {
  memory: { buffer: ArrayBuffer };
  revtun_alloc(len: number): number;
  revtun_free(ptr: number, len: number): void;
  revtun_chacha20_xor(key: number, nonce: number, counter: number, data: number, len: number): number;
  revtun_poly1305(key: number, message: number, len: number, tag: number): void;
}

/** The test entry points of one build, instantiated straight from its file. */
function primitives(build: Build) {
  const bytes = readFileSync(new URL(`../../../bindings/${MODULES[build]}`, import.meta.url));
  const wasm = (globalThis as unknown as { WebAssembly: { Module: new (b: Uint8Array) => object; Instance: new (m: object, i: object) => { exports: unknown } } }).WebAssembly;
  const e = new wasm.Instance(new wasm.Module(bytes), {}).exports as PrimitiveExports;
  const memory = () => new Uint8Array(e.memory.buffer);
  /** Runs `op` with copies of `inputs` in module memory, then frees them. */
  function withCopies<T>(inputs: Uint8Array[], op: (ptrs: number[]) => T): T {
    const ptrs = inputs.map((input) => {
      const ptr = e.revtun_alloc(input.length);
      memory().set(input, ptr);
      return ptr;
    });
    try {
      return op(ptrs);
    } finally {
      for (const [i, ptr] of ptrs.entries()) e.revtun_free(ptr, inputs[i]!.length);
    }
  }
  return {
    /** RFC 8439 ChaCha20 of `data` (a copy), or the failure status. */
    chacha20(key: Uint8Array, nonce: Uint8Array, counter: number, data: Uint8Array): Uint8Array | number {
      return withCopies([key, nonce, data], ([k, n, d]) => {
        const status = e.revtun_chacha20_xor(k!, n!, counter >>> 0, d!, data.length);
        return status === 0 ? memory().slice(d!, d! + data.length) : status;
      });
    },
    poly1305(key: Uint8Array, message: Uint8Array): string {
      return withCopies([key, message, new Uint8Array(16)], ([k, m, t]) => {
        e.revtun_poly1305(k!, m!, message.length, t!);
        return toHex(memory().slice(t!, t! + 16));
      });
    },
  };
}

const text = (s: string) => new TextEncoder().encode(s);
const counting = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);
const zeros = (n: number) => new Uint8Array(n);

// RFC 8439's texts and keys.
const SUNSCREEN = text("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
const IETF_SUBMISSION = text(
  'Any submission to the IETF intended by the Contributor for publication as all or part of an IETF Internet-Draft or RFC and any statement made within the context of an IETF activity is considered an "IETF Contribution". Such statements include oral statements in IETF sessions, as well as written and electronic communications made at any time or place, which are addressed to',
);
const JABBERWOCKY = text("'Twas brillig, and the slithy toves\nDid gyre and gimble in the wabe:\nAll mimsy were the borogoves,\nAnd the mome raths outgrabe.");
const KEY_1C92 = fromHex('1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0');
const KEY_ONE = fromHex('00'.repeat(31) + '01');

/** RFC 8439 §2.5.1 with BigInt: the reference for random messages. */
function poly1305Reference(key: Uint8Array, message: Uint8Array): string {
  const le = (b: Uint8Array) => b.reduceRight((acc, v) => (acc << 8n) | BigInt(v), 0n);
  const r = le(key.subarray(0, 16)) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  const p = (1n << 130n) - 5n;
  let acc = 0n;
  for (let i = 0; i < message.length; i += 16) {
    const block = message.subarray(i, i + 16);
    acc = ((acc + le(block) + (1n << BigInt(8 * block.length))) * r) % p;
  }
  let tag = (acc + le(key.subarray(16, 32))) & ((1n << 128n) - 1n);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++, tag >>= 8n) out[i] = Number(tag & 0xffn);
  return toHex(out);
}

/** OpenSSL's ChaCha20 (node:crypto): the IV is the 32-bit counter, little-endian, then the nonce. */
function chacha20Reference(key: Uint8Array, nonce: Uint8Array, counter: number, data: Uint8Array): Uint8Array {
  const iv = Buffer.alloc(16);
  iv.writeUInt32LE(counter >>> 0, 0);
  iv.set(nonce, 4);
  return createCipheriv('chacha20', key, iv).update(data);
}

describe('the SIMD build is there and is chosen', () => {
  it('Node validates SIMD, and loadWasmCore picks the simd128 build unless told otherwise', () => {
    expect(wasmSimdSupported()).toBe(true);
    expect(loadWasmCore('simd').description).toMatch(/\(rustcrypto\+simd128, wasm32\)$/);
    expect(loadWasmCore('scalar').description).not.toMatch(/simd128/);
    expect(loadWasmCore('auto').description).toMatch(/simd128/);
    const saved = process.env['REVTUN_WASM_SIMD'];
    process.env['REVTUN_WASM_SIMD'] = '0';
    try {
      expect(loadWasmCore('auto').description).not.toMatch(/simd128/);
    } finally {
      if (saved === undefined) delete process.env['REVTUN_WASM_SIMD'];
      else process.env['REVTUN_WASM_SIMD'] = saved;
    }
  });
});

describe.each(Object.keys(MODULES) as Build[])('the %s build: RFC 8439 known answers', (build) => {
  const { chacha20, poly1305 } = primitives(build);
  const stream = (key: Uint8Array, nonce: string, counter: number, length: number) => toHex(chacha20(key, fromHex(nonce), counter, zeros(length)) as Uint8Array);

  it('§2.3.2: the block function', () => {
    expect(stream(counting(32), '000000090000004a00000000', 1, 64)).toBe(
      '10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4ed2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e',
    );
  });

  it('§2.4.2: encryption, and decryption is the same function', () => {
    const expected =
      '6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab77937365af90bbf74a35be6b40b8eedf2785e42874d';
    const sealed = chacha20(counting(32), fromHex('000000000000004a00000000'), 1, SUNSCREEN) as Uint8Array;
    expect(toHex(sealed)).toBe(expected);
    expect(toHex(chacha20(counting(32), fromHex('000000000000004a00000000'), 1, sealed) as Uint8Array)).toBe(toHex(SUNSCREEN));
  });

  it('A.1: the block function, vectors 1 to 5', () => {
    expect(stream(zeros(32), '000000000000000000000000', 0, 64)).toBe(
      '76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586',
    );
    expect(stream(zeros(32), '000000000000000000000000', 1, 64)).toBe(
      '9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f',
    );
    expect(stream(KEY_ONE, '000000000000000000000000', 1, 64)).toBe('3aeb5224ecf849929b9d828db1ced4dd832025e8018b8160b82284f3c949aa5a8eca00bbb4a73bdad192b5c42f73f2fd4e273644c8b36125a64addeb006c13a0');
    expect(stream(fromHex('00ff' + '00'.repeat(30)), '000000000000000000000000', 2, 64)).toBe(
      '72d54dfbf12ec44b362692df94137f328fea8da73990265ec1bbbea1ae9af0ca13b25aa26cb4a648cb9b9d1be65b2c0924a66c54d545ec1b7374f4872e99f096',
    );
    expect(stream(zeros(32), '000000000000000000000002', 0, 64)).toBe(
      'c2c64d378cd536374ae204b9ef933fcd1a8b2288b3dfa49672ab765b54ee27c78a970e0e955c14f3a88e741b97c286f75f8fc299e8148362fa198a39531bed6d',
    );
  });

  it('A.1 vectors 1 and 2 as one stream: blocks 0 and 1 come out in order from one call', () => {
    expect(stream(zeros(32), '000000000000000000000000', 0, 128)).toBe(
      '76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586' +
        '9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f',
    );
  });

  it('A.2: encryption, vectors 1 to 3 (375 and 127 bytes: partial blocks and partial groups)', () => {
    expect(IETF_SUBMISSION.length).toBe(375);
    expect(JABBERWOCKY.length).toBe(127);
    expect(stream(zeros(32), '000000000000000000000000', 0, 64)).toBe(
      '76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586',
    );
    expect(toHex(chacha20(KEY_ONE, fromHex('000000000000000000000002'), 1, IETF_SUBMISSION) as Uint8Array)).toBe(
      'a3fbf07df3fa2fde4f376ca23e82737041605d9f4f4f57bd8cff2c1d4b7955ec2a97948bd3722915c8f3d337f7d370050e9e96d647b7c39f56e031ca5eb6250d' +
        '4042e02785ececfa4b4bb5e8ead0440e20b6e8db09d881a7c6132f420e52795042bdfa7773d8a9051447b3291ce1411c680465552aa6c405b7764d5e87bea85a' +
        'd00f8449ed8f72d0d662ab052691ca66424bc86d2df80ea41f43abf937d3259dc4b2d0dfb48a6c9139ddd7f76966e928e635553ba76c5c879d7b35d49eb2e62b' +
        '0871cdac638939e25e8a1e0ef9d5280fa8ca328b351c3c765989cbcf3daa8b6ccc3aaf9f3979c92b3720fc88dc95ed84a1be059c6499b9fda236e7e818b04b0b' +
        'c39c1e876b193bfe5569753f88128cc08aaa9b63d1a16f80ef2554d7189c411f5869ca52c5b83fa36ff216b9c1d30062bebcfd2dc5bce0911934fda79a86f6e6' +
        '98ced759c3ff9b6477338f3da4f9cd8514ea9982ccafb341b2384dd902f3d1ab7ac61dd29c6f21ba5b862f3730e37cfdc4fd806c22f221',
    );
    expect(toHex(chacha20(KEY_1C92, fromHex('000000000000000000000002'), 42, JABBERWOCKY) as Uint8Array)).toBe(
      '62e6347f95ed87a45ffae7426f27a1df5fb69110044c0d73118effa95b01e5cf166d3df2d721caf9b21e5fb14c616871fd84c54f9d65b283196c7fe4f60553eb' +
        'f39c6402c42234e32a356b3e764312a61a5532055716ead6962568f87d3f3f7704c6a8d1bcd1bf4d50d6154b6da731b187b58dfd728afa36757a797ac188d1',
    );
  });

  it('agrees with OpenSSL at every counter offset within a group of four and lengths around each group', () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const lengths = [1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 191, 192, 193, 255, 256, 257, 511, 512, 513, 767, 768, 769, 1023, 1024, 1025, 4097, 16384];
    for (const counter of [0, 1, 2, 3, 4, 5, 7, 0x1234567, 0xfffffff0]) {
      for (const length of lengths) {
        if (counter + Math.ceil(length / 64) > 2 ** 32 - 1) continue;
        const data = randomBytes(length);
        expect(toHex(chacha20(key, nonce, counter, data) as Uint8Array), `counter ${counter}, ${length} bytes`).toBe(toHex(chacha20Reference(key, nonce, counter, data)));
      }
    }
    for (let i = 0; i < 100; i++) {
      const data = randomBytes(randomInt(0, 3000));
      const counter = randomInt(0, 2 ** 31);
      expect(toHex(chacha20(key, nonce, counter, data) as Uint8Array)).toBe(toHex(chacha20Reference(key, nonce, counter, data)));
    }
  });

  it("stops one block short of the 32-bit counter wrapping (RustCrypto's limit, kept by both builds)", () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const reference = (counter: number, length: number) => toHex(chacha20Reference(key, nonce, counter, zeros(length)));
    expect(toHex(chacha20(key, nonce, 0xfffffffe, zeros(64)) as Uint8Array)).toBe(reference(0xfffffffe, 64));
    expect(toHex(chacha20(key, nonce, 0xfffffffb, zeros(256)) as Uint8Array)).toBe(reference(0xfffffffb, 256));
    expect(chacha20(key, nonce, 0xfffffffe, zeros(65))).toBe(3);
    expect(chacha20(key, nonce, 0xfffffffb, zeros(257))).toBe(3);
    expect(chacha20(key, nonce, 0xffffffff, zeros(1))).toBe(3);
  });

  it('§2.5.2: Poly1305', () => {
    const key = fromHex('85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b');
    expect(poly1305(key, text('Cryptographic Forum Research Group'))).toBe('a8061dc1305136c6c22b8baf0c0127a9');
  });

  it.each([
    ['#1: all zeros', zeros(32), zeros(64), '00000000000000000000000000000000'],
    ['#2: r = 0, the tag is s', fromHex('00'.repeat(16) + '36e5f6b5c5e06070f0efca96227a863e'), IETF_SUBMISSION, '36e5f6b5c5e06070f0efca96227a863e'],
    ['#3: s = 0', fromHex('36e5f6b5c5e06070f0efca96227a863e' + '00'.repeat(16)), IETF_SUBMISSION, 'f3477e7cd95417af89a6b8794c310cf0'],
    ['#4', KEY_1C92, JABBERWOCKY, '4541669a7eaaee61e708dc7cbcc5eb62'],
    ['#5: h reaches p and must be reduced', fromHex('02' + '00'.repeat(31)), fromHex('ff'.repeat(16)), '03000000000000000000000000000000'],
    ['#6: h + s wraps mod 2^128', fromHex('02' + '00'.repeat(15) + 'ff'.repeat(16)), fromHex('02' + '00'.repeat(15)), '03000000000000000000000000000000'],
    ['#7: a carry through every limb', fromHex('01' + '00'.repeat(31)), fromHex('ff'.repeat(16) + 'f0' + 'ff'.repeat(15) + '11' + '00'.repeat(15)), '05000000000000000000000000000000'],
    ['#8: h is exactly 2^130 - 5', fromHex('01' + '00'.repeat(31)), fromHex('ff'.repeat(16) + 'fb' + 'fe'.repeat(15) + '01'.repeat(16)), '00000000000000000000000000000000'],
    ['#9: h is 2^130 - 6, left alone', fromHex('02' + '00'.repeat(31)), fromHex('fd' + 'ff'.repeat(15)), 'faffffffffffffffffffffffffffffff'],
    [
      '#10: 5·H + L makes a 131-bit intermediate',
      fromHex('01' + '00'.repeat(7) + '04' + '00'.repeat(23)),
      fromHex('e33594d7505e43b900000000000000003394d7505e4379cd010000000000000000000000000000000000000000000000' + '01000000000000000000000000000000'),
      '14000000000000005500000000000000',
    ],
    [
      '#11: 5·H + L makes a 131-bit final result',
      fromHex('01' + '00'.repeat(7) + '04' + '00'.repeat(23)),
      fromHex('e33594d7505e43b900000000000000003394d7505e4379cd010000000000000000000000000000000000000000000000'),
      '13000000000000000000000000000000',
    ],
  ])('A.3 %s', (_name, key, message, tag) => {
    expect(poly1305(key, message)).toBe(tag);
  });

  it('Poly1305 agrees with the BigInt reference on random keys, every tail length, and saturated limbs', () => {
    for (let length = 0; length <= 300; length++) {
      const key = randomBytes(32);
      const message = randomBytes(length);
      expect(poly1305(key, message), `${length} bytes`).toBe(poly1305Reference(key, message));
    }
    for (const length of [1, 15, 16, 17, 64, 1000, 16384]) {
      const message = new Uint8Array(length).fill(0xff);
      expect(poly1305(fromHex('ff'.repeat(32)), message)).toBe(poly1305Reference(fromHex('ff'.repeat(32)), message));
    }
  });
});

describe('chacha20-poly1305@openssh.com packets: the SIMD build against every other implementation', () => {
  const cipher = 'chacha20-poly1305@openssh.com';
  const providers: [string, CryptoProvider][] = [
    ['wasm-simd', new CoreCryptoProvider(loadWasmCore('simd'))],
    ['wasm-scalar', new CoreCryptoProvider(loadWasmCore('scalar'))],
    ['native', new CoreCryptoProvider(loadNativeCore())],
    ['node', new NodeCryptoProvider()],
  ];

  /** A packet with a body of `bodyLength` bytes (a multiple of 8): length, padding length, random rest. */
  function packet(bodyLength: number): Uint8Array {
    const p = new Uint8Array(4 + bodyLength + 16);
    new DataView(p.buffer).setUint32(0, bodyLength);
    p[4] = 4;
    p.set(randomBytes(bodyLength - 1), 5);
    return p;
  }

  function open(provider: CryptoProvider, keys: DirectionKeys, sequence: number, sealed: Uint8Array): Uint8Array {
    const opener = provider.createOpener(keys);
    const copy = sealed.slice();
    const head = copy.slice(0, opener.lengthFieldBytes);
    expect(opener.decryptLength(sequence, head)).toBe(copy.length - 20);
    copy.set(head);
    opener.open(sequence, copy);
    return copy.subarray(0, copy.length - 16);
  }

  // Every multiple of 8 up to 1096 covers the first group (body bytes 0-191, with the Poly1305
  // key in block 0), the 256-byte groups after it and each partial last group and block.
  const lengths = [...Array.from({ length: 137 }, (_, i) => 8 * (i + 1)), 16384 - 8, 16384, 16384 + 8, 32768, 262144, ...Array.from({ length: 20 }, () => 8 * randomInt(1, 4096))];

  it('seals the same bytes as wasm-scalar, native and node, at every length and random sequence numbers; each opens every other', () => {
    for (const bodyLength of lengths) {
      const keys: DirectionKeys = { cipher, mac: null, key: randomBytes(64), iv: new Uint8Array(0), macKey: new Uint8Array(0) };
      const sequence = randomInt(0, 2 ** 32);
      const plain = packet(bodyLength);
      const sealed = providers.map(([, provider]) => {
        const copy = plain.slice();
        provider.createSealer(keys).seal(sequence, copy);
        return copy;
      });
      const hex = sealed.map((s) => toHex(s));
      for (let i = 1; i < providers.length; i++) expect(hex[i], `${providers[i]![0]} vs wasm-simd, body ${bodyLength}`).toBe(hex[0]);
      for (const [name, provider] of providers) {
        expect(toHex(open(provider, keys, sequence, sealed[0]!)), `${name} opens, body ${bodyLength}`).toBe(toHex(plain.subarray(0, plain.length - 16)));
      }
    }
  });

  it('refuses a flipped bit anywhere (length, body, tag) with CannotDecrypt, and leaves the packet as it came', () => {
    const [, simd] = providers[0]!;
    for (const bodyLength of [8, 184, 192, 200, 448, 456, 1024, 16384]) {
      const keys: DirectionKeys = { cipher, mac: null, key: randomBytes(64), iv: new Uint8Array(0), macKey: new Uint8Array(0) };
      const sealed = packet(bodyLength);
      simd.createSealer(keys).seal(7, sealed);
      for (const at of [0, 3, 4, 4 + (bodyLength >> 1), 4 + bodyLength - 1, sealed.length - 16, sealed.length - 1]) {
        for (const [name, provider] of providers) {
          const forged = sealed.slice();
          forged[at]! ^= 0x10;
          const opener = provider.createOpener(keys);
          const head = forged.slice(0, 4);
          opener.decryptLength(7, head);
          const before = forged.slice();
          let error: unknown;
          try {
            opener.open(7, forged);
          } catch (e) {
            error = e;
          }
          expect(error, `${name}, bit flipped at ${at} of ${forged.length}`).toBeInstanceOf(SshError);
          expect((error as SshError).code).toBe(Code.CannotDecrypt);
          if (name.startsWith('wasm')) expect(toHex(forged), `${name} left the packet as it was`).toBe(toHex(before));
        }
      }
    }
  });
});
