// Poly1305 (RFC 8439 §2.5), needed by chacha20-poly1305@openssh.com because node:crypto
// exposes ChaCha20 but no standalone Poly1305. The 130-bit accumulator lives in ten 13-bit
// limbs held in local variables. Each limb's ten products are summed in two halves with a
// carry taken in between, which keeps every intermediate below 2^32 (h < 2^14, 5r < 2^16,
// five products < 2^31.7), so 32-bit shifts and masks are exact. Only the final reduction,
// once per packet, uses BigInt.

const P = (1n << 130n) - 5n;
const MASK128 = (1n << 128n) - 1n;
const clampedKey = new Uint8Array(16);
const lastBlock = new Uint8Array(16);

/** Computes the 16-byte Poly1305 tag of `message` under the 32-byte one-time `key`. */
export function poly1305(key: Uint8Array, message: Uint8Array): Uint8Array {
  const k = clampedKey;
  k.set(key.subarray(0, 16));
  k[3]! &= 15;
  k[7]! &= 15;
  k[11]! &= 15;
  k[15]! &= 15;
  k[4]! &= 252;
  k[8]! &= 252;
  k[12]! &= 252;
  let w0 = k[0]! | (k[1]! << 8),
    w1 = k[2]! | (k[3]! << 8),
    w2 = k[4]! | (k[5]! << 8),
    w3 = k[6]! | (k[7]! << 8);
  let w4 = k[8]! | (k[9]! << 8),
    w5 = k[10]! | (k[11]! << 8),
    w6 = k[12]! | (k[13]! << 8),
    w7 = k[14]! | (k[15]! << 8);
  const r0 = w0 & 0x1fff;
  const r1 = ((w0 >>> 13) | (w1 << 3)) & 0x1fff;
  const r2 = ((w1 >>> 10) | (w2 << 6)) & 0x1fff;
  const r3 = ((w2 >>> 7) | (w3 << 9)) & 0x1fff;
  const r4 = ((w3 >>> 4) | (w4 << 12)) & 0x1fff;
  const r5 = (w4 >>> 1) & 0x1fff;
  const r6 = ((w4 >>> 14) | (w5 << 2)) & 0x1fff;
  const r7 = ((w5 >>> 11) | (w6 << 5)) & 0x1fff;
  const r8 = ((w6 >>> 8) | (w7 << 8)) & 0x1fff;
  const r9 = w7 >>> 5;
  const s1 = r1 * 5,
    s2 = r2 * 5,
    s3 = r3 * 5,
    s4 = r4 * 5,
    s5 = r5 * 5,
    s6 = r6 * 5,
    s7 = r7 * 5,
    s8 = r8 * 5,
    s9 = r9 * 5;

  let h0 = 0,
    h1 = 0,
    h2 = 0,
    h3 = 0,
    h4 = 0,
    h5 = 0,
    h6 = 0,
    h7 = 0,
    h8 = 0,
    h9 = 0;
  const length = message.length;
  for (let pos = 0; pos < length; pos += 16) {
    let m = message;
    let o = pos;
    let hibit = 1 << 11;
    if (length - pos < 16) {
      lastBlock.fill(0);
      lastBlock.set(message.subarray(pos));
      lastBlock[length - pos] = 1;
      m = lastBlock;
      o = 0;
      hibit = 0;
    }
    w0 = m[o]! | (m[o + 1]! << 8);
    w1 = m[o + 2]! | (m[o + 3]! << 8);
    w2 = m[o + 4]! | (m[o + 5]! << 8);
    w3 = m[o + 6]! | (m[o + 7]! << 8);
    w4 = m[o + 8]! | (m[o + 9]! << 8);
    w5 = m[o + 10]! | (m[o + 11]! << 8);
    w6 = m[o + 12]! | (m[o + 13]! << 8);
    w7 = m[o + 14]! | (m[o + 15]! << 8);
    h0 += w0 & 0x1fff;
    h1 += ((w0 >>> 13) | (w1 << 3)) & 0x1fff;
    h2 += ((w1 >>> 10) | (w2 << 6)) & 0x1fff;
    h3 += ((w2 >>> 7) | (w3 << 9)) & 0x1fff;
    h4 += ((w3 >>> 4) | (w4 << 12)) & 0x1fff;
    h5 += (w4 >>> 1) & 0x1fff;
    h6 += ((w4 >>> 14) | (w5 << 2)) & 0x1fff;
    h7 += ((w5 >>> 11) | (w6 << 5)) & 0x1fff;
    h8 += ((w6 >>> 8) | (w7 << 8)) & 0x1fff;
    h9 += (w7 >>> 5) | hibit;

    let c = 0;
    {
      let d0 = c + h0 * r0 + h1 * s9 + h2 * s8 + h3 * s7 + h4 * s6;
      c = d0 >>> 13;
      d0 &= 0x1fff;
      d0 += h5 * s5 + h6 * s4 + h7 * s3 + h8 * s2 + h9 * s1;
      c += d0 >>> 13;
      d0 &= 0x1fff;
      let d1 = c + h0 * r1 + h1 * r0 + h2 * s9 + h3 * s8 + h4 * s7;
      c = d1 >>> 13;
      d1 &= 0x1fff;
      d1 += h5 * s6 + h6 * s5 + h7 * s4 + h8 * s3 + h9 * s2;
      c += d1 >>> 13;
      d1 &= 0x1fff;
      let d2 = c + h0 * r2 + h1 * r1 + h2 * r0 + h3 * s9 + h4 * s8;
      c = d2 >>> 13;
      d2 &= 0x1fff;
      d2 += h5 * s7 + h6 * s6 + h7 * s5 + h8 * s4 + h9 * s3;
      c += d2 >>> 13;
      d2 &= 0x1fff;
      let d3 = c + h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s9;
      c = d3 >>> 13;
      d3 &= 0x1fff;
      d3 += h5 * s8 + h6 * s7 + h7 * s6 + h8 * s5 + h9 * s4;
      c += d3 >>> 13;
      d3 &= 0x1fff;
      let d4 = c + h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0;
      c = d4 >>> 13;
      d4 &= 0x1fff;
      d4 += h5 * s9 + h6 * s8 + h7 * s7 + h8 * s6 + h9 * s5;
      c += d4 >>> 13;
      d4 &= 0x1fff;
      let d5 = c + h0 * r5 + h1 * r4 + h2 * r3 + h3 * r2 + h4 * r1;
      c = d5 >>> 13;
      d5 &= 0x1fff;
      d5 += h5 * r0 + h6 * s9 + h7 * s8 + h8 * s7 + h9 * s6;
      c += d5 >>> 13;
      d5 &= 0x1fff;
      let d6 = c + h0 * r6 + h1 * r5 + h2 * r4 + h3 * r3 + h4 * r2;
      c = d6 >>> 13;
      d6 &= 0x1fff;
      d6 += h5 * r1 + h6 * r0 + h7 * s9 + h8 * s8 + h9 * s7;
      c += d6 >>> 13;
      d6 &= 0x1fff;
      let d7 = c + h0 * r7 + h1 * r6 + h2 * r5 + h3 * r4 + h4 * r3;
      c = d7 >>> 13;
      d7 &= 0x1fff;
      d7 += h5 * r2 + h6 * r1 + h7 * r0 + h8 * s9 + h9 * s8;
      c += d7 >>> 13;
      d7 &= 0x1fff;
      let d8 = c + h0 * r8 + h1 * r7 + h2 * r6 + h3 * r5 + h4 * r4;
      c = d8 >>> 13;
      d8 &= 0x1fff;
      d8 += h5 * r3 + h6 * r2 + h7 * r1 + h8 * r0 + h9 * s9;
      c += d8 >>> 13;
      d8 &= 0x1fff;
      let d9 = c + h0 * r9 + h1 * r8 + h2 * r7 + h3 * r6 + h4 * r5;
      c = d9 >>> 13;
      d9 &= 0x1fff;
      d9 += h5 * r4 + h6 * r3 + h7 * r2 + h8 * r1 + h9 * r0;
      c += d9 >>> 13;
      d9 &= 0x1fff;
      c = (c << 2) + c; // times 5: 2^130 = 5 (mod p)
      c += d0;
      d0 = c & 0x1fff;
      c >>>= 13;
      d1 += c;
      h0 = d0;
      h1 = d1;
      h2 = d2;
      h3 = d3;
      h4 = d4;
      h5 = d5;
      h6 = d6;
      h7 = d7;
      h8 = d8;
      h9 = d9;
    }
  }

  let acc = 0n;
  for (const limb of [h9, h8, h7, h6, h5, h4, h3, h2, h1, h0]) acc = (acc << 13n) + BigInt(limb);
  acc %= P;
  let s = 0n;
  for (let i = 31; i >= 16; i--) s = (s << 8n) | BigInt(key[i]!);
  let tag = (acc + s) & MASK128;
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    out[i] = Number(tag & 0xffn);
    tag >>= 8n;
  }
  return out;
}
