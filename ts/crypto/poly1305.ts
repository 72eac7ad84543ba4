// Poly1305 (RFC 8439 §2.5), needed by chacha20-poly1305@openssh.com because node:crypto
// exposes ChaCha20 but no standalone Poly1305. The 130-bit accumulator lives in ten 13-bit
// limbs so every product and partial sum stays an exact integer in a double; only the final
// reduction (once per packet) uses BigInt.

const P = (1n << 130n) - 5n;

function loadLimbs(bytes: Uint8Array, offset: number, out: Float64Array, hibit: number): void {
  const t = (i: number) => bytes[offset + 2 * i]! | (bytes[offset + 2 * i + 1]! << 8);
  const t0 = t(0), t1 = t(1), t2 = t(2), t3 = t(3), t4 = t(4), t5 = t(5), t6 = t(6), t7 = t(7);
  out[0] = t0 & 0x1fff;
  out[1] = ((t0 >>> 13) | (t1 << 3)) & 0x1fff;
  out[2] = ((t1 >>> 10) | (t2 << 6)) & 0x1fff;
  out[3] = ((t2 >>> 7) | (t3 << 9)) & 0x1fff;
  out[4] = ((t3 >>> 4) | (t4 << 12)) & 0x1fff;
  out[5] = (t4 >>> 1) & 0x1fff;
  out[6] = ((t4 >>> 14) | (t5 << 2)) & 0x1fff;
  out[7] = ((t5 >>> 11) | (t6 << 5)) & 0x1fff;
  out[8] = ((t6 >>> 8) | (t7 << 8)) & 0x1fff;
  out[9] = (t7 >>> 5) | hibit;
}

/** Computes the 16-byte Poly1305 tag of `message` under the 32-byte one-time `key`. */
export function poly1305(key: Uint8Array, message: Uint8Array): Uint8Array {
  const rBytes = key.slice(0, 16);
  rBytes[3]! &= 15;
  rBytes[7]! &= 15;
  rBytes[11]! &= 15;
  rBytes[15]! &= 15;
  rBytes[4]! &= 252;
  rBytes[8]! &= 252;
  rBytes[12]! &= 252;
  const r = new Float64Array(10);
  loadLimbs(rBytes, 0, r, 0);
  const r5 = r.map((v) => v * 5);

  const h = new Float64Array(10);
  const m = new Float64Array(10);
  const d = new Float64Array(10);
  const block = new Uint8Array(16);

  for (let pos = 0; pos < message.length; pos += 16) {
    const left = message.length - pos;
    if (left >= 16) {
      loadLimbs(message, pos, m, 1 << 11);
    } else {
      block.fill(0);
      block.set(message.subarray(pos));
      block[left] = 1;
      loadLimbs(block, 0, m, 0);
    }
    for (let i = 0; i < 10; i++) h[i]! += m[i]!;
    for (let i = 0; i < 10; i++) {
      let sum = 0;
      for (let j = 0; j <= i; j++) sum += h[j]! * r[i - j]!;
      for (let j = i + 1; j < 10; j++) sum += h[j]! * r5[i + 10 - j]!;
      d[i] = sum;
    }
    let carry = 0;
    for (let i = 0; i < 10; i++) {
      const v = d[i]! + carry;
      const low = v % 8192;
      carry = (v - low) / 8192;
      h[i] = low;
    }
    h[0]! += carry * 5;
    const c0 = Math.floor(h[0]! / 8192);
    h[0]! -= c0 * 8192;
    h[1]! += c0;
  }

  let acc = 0n;
  for (let i = 9; i >= 0; i--) acc = (acc << 13n) + BigInt(h[i]!);
  acc %= P;
  let s = 0n;
  for (let i = 31; i >= 16; i--) s = (s << 8n) | BigInt(key[i]!);
  let tag = (acc + s) & ((1n << 128n) - 1n);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    out[i] = Number(tag & 0xffn);
    tag >>= 8n;
  }
  return out;
}
