import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { poly1305 } from '../../../ts/crypto/poly1305.js';
import { fromHex, toHex } from '../../../ts/protocol/wire.js';

/** A direct transcription of the RFC 8439 §2.5.1 arithmetic with BigInt, as a reference. */
function reference(key: Uint8Array, msg: Uint8Array): string {
  const le = (b: Uint8Array) => b.reduceRight((acc, v) => (acc << 8n) | BigInt(v), 0n);
  const r = le(key.subarray(0, 16)) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  const s = le(key.subarray(16, 32));
  const p = (1n << 130n) - 5n;
  let acc = 0n;
  for (let i = 0; i < msg.length; i += 16) {
    const block = msg.subarray(i, i + 16);
    const n = le(block) + (1n << BigInt(8 * block.length));
    acc = ((acc + n) * r) % p;
  }
  let tag = (acc + s) & ((1n << 128n) - 1n);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    out[i] = Number(tag & 0xffn);
    tag >>= 8n;
  }
  return toHex(out);
}

describe('poly1305', () => {
  it('RFC 8439 §2.5.2 test vector', () => {
    const key = fromHex('85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b');
    const msg = new TextEncoder().encode('Cryptographic Forum Research Group');
    expect(toHex(poly1305(key, msg))).toBe('a8061dc1305136c6c22b8baf0c0127a9');
  });

  it('RFC 8439 A.3 vector 1: all-zero key and message', () => {
    expect(toHex(poly1305(new Uint8Array(32), new Uint8Array(64)))).toBe('00000000000000000000000000000000');
  });

  it('RFC 8439 A.3 vector 5: a carry past 2^130 - 5', () => {
    const key = fromHex('02' + '00'.repeat(31));
    expect(toHex(poly1305(key, fromHex('ff'.repeat(16))))).toBe('03000000000000000000000000000000');
  });

  it('RFC 8439 A.3 vector 6: h + s wraps mod 2^128', () => {
    const key = fromHex('02' + '00'.repeat(15) + 'ff'.repeat(16));
    expect(toHex(poly1305(key, fromHex('02' + '00'.repeat(15))))).toBe('03000000000000000000000000000000');
  });

  it('agrees with the BigInt reference on random keys and lengths', () => {
    for (let i = 0; i < 300; i++) {
      const key = randomBytes(32);
      const msg = randomBytes(i * 7);
      expect(toHex(poly1305(key, msg))).toBe(reference(key, msg));
    }
  });

  it('agrees with the reference where limbs saturate (all-ones input and key)', () => {
    const key = fromHex('ff'.repeat(32));
    for (const len of [1, 15, 16, 17, 64, 1000]) {
      const msg = new Uint8Array(len).fill(0xff);
      expect(toHex(poly1305(key, msg))).toBe(reference(key, msg));
    }
  });
});
