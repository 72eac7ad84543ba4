//! Poly1305 (RFC 8439 §2.5) in scalar 64-bit arithmetic on 26-bit limbs, written to be
//! inlined into the SIMD ChaCha20 rounds (`chacha20_poly1305.rs`). RustCrypto's poly1305
//! computes the same thing, but V8 does not inline WASM calls, and a call between ChaCha20
//! rounds makes every vector register be saved and restored around it; measured, that cost
//! more than the interleaving gained. The state is plain locals once inlined.
//!
//! h accumulates in five 26-bit limbs; r is clamped as §2.5 says, and `five_r` holds 5·r for
//! the limbs that wrap past 2^130 (2^130 ≡ 5 mod p).

const MASK: u32 = 0x3ff_ffff;

pub(crate) struct Poly1305 {
    r: [u32; 5],
    five_r: [u32; 4],
    h: [u32; 5],
    s: [u32; 4],
}

#[inline(always)]
fn le_word(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

impl Poly1305 {
    pub fn new(key: &[u8; 32]) -> Poly1305 {
        let r = [
            le_word(&key[0..]) & 0x3ff_ffff,
            (le_word(&key[3..]) >> 2) & 0x3ff_ff03,
            (le_word(&key[6..]) >> 4) & 0x3ff_c0ff,
            (le_word(&key[9..]) >> 6) & 0x3f0_3fff,
            (le_word(&key[12..]) >> 8) & 0x00f_ffff,
        ];
        Poly1305 {
            r,
            five_r: [r[1] * 5, r[2] * 5, r[3] * 5, r[4] * 5],
            h: [0; 5],
            s: [
                le_word(&key[16..]),
                le_word(&key[20..]),
                le_word(&key[24..]),
                le_word(&key[28..]),
            ],
        }
    }

    /// Adds one 16-byte block; `high` is 2^128 as limb 4 sees it (1 << 24), or 0 for a final
    /// partial block that already carries its 0x01 byte.
    #[inline(always)]
    pub fn block(&mut self, m: &[u8; 16], high: u32) {
        let [r0, r1, r2, r3, r4] = self.r.map(u64::from);
        let [s1, s2, s3, s4] = self.five_r.map(u64::from);
        // Two 64-bit loads (WASM has unaligned ones), then the five limbs from them.
        let low = u64::from_le_bytes(m[..8].try_into().expect("8 bytes"));
        let high_word = u64::from_le_bytes(m[8..].try_into().expect("8 bytes"));
        let limb = |bits: u64| bits as u32 & MASK;
        let h0 = u64::from(self.h[0] + limb(low));
        let h1 = u64::from(self.h[1] + limb(low >> 26));
        let h2 = u64::from(self.h[2] + limb((low >> 52) | (high_word << 12)));
        let h3 = u64::from(self.h[3] + limb(high_word >> 14));
        let h4 = u64::from(self.h[4] + ((high_word >> 40) as u32 | high));

        let d0 = h0 * r0 + h1 * s4 + h2 * s3 + h3 * s2 + h4 * s1;
        let mut d1 = h0 * r1 + h1 * r0 + h2 * s4 + h3 * s3 + h4 * s2;
        let mut d2 = h0 * r2 + h1 * r1 + h2 * r0 + h3 * s4 + h4 * s3;
        let mut d3 = h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s4;
        let mut d4 = h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0;

        // Partial carries: each limb back under 2^26, except h1 which may reach 2^26 + small.
        d1 += d0 >> 26;
        d2 += d1 >> 26;
        d3 += d2 >> 26;
        d4 += d3 >> 26;
        let mut h0 = (d0 as u32 & MASK) + (d4 >> 26) as u32 * 5;
        let h1 = (d1 as u32 & MASK) + (h0 >> 26);
        h0 &= MASK;
        self.h = [h0, h1, d2 as u32 & MASK, d3 as u32 & MASK, d4 as u32 & MASK];
    }

    /// Hashes the last `rest.len()` (< 16) bytes, if any, and returns the tag.
    #[inline(always)]
    pub fn finish(mut self, rest: &[u8]) -> [u8; 16] {
        debug_assert!(rest.len() < 16);
        if !rest.is_empty() {
            let mut last = [0u8; 16];
            last[..rest.len()].copy_from_slice(rest);
            last[rest.len()] = 1;
            self.block(&last, 0);
        }
        let [mut h0, mut h1, mut h2, mut h3, mut h4] = self.h;
        // Full carry, then h mod p: subtract p when h ≥ p, choosing without a branch.
        h2 += h1 >> 26;
        h1 &= MASK;
        h3 += h2 >> 26;
        h2 &= MASK;
        h4 += h3 >> 26;
        h3 &= MASK;
        h0 += (h4 >> 26) * 5;
        h4 &= MASK;
        h1 += h0 >> 26;
        h0 &= MASK;

        let mut g0 = h0.wrapping_add(5);
        let mut g1 = h1 + (g0 >> 26);
        g0 &= MASK;
        let mut g2 = h2 + (g1 >> 26);
        g1 &= MASK;
        let mut g3 = h3 + (g2 >> 26);
        g2 &= MASK;
        let g4 = (h4 + (g3 >> 26)).wrapping_sub(1 << 26);
        g3 &= MASK;
        // All ones when g4 did not go negative (h + 5 reached 2^130, so h ≥ p).
        let take_g = (g4 >> 31).wrapping_sub(1);
        let pick = |h: u32, g: u32| (h & !take_g) | (g & take_g);
        let (h0, h1, h2, h3, h4) = (
            pick(h0, g0),
            pick(h1, g1),
            pick(h2, g2),
            pick(h3, g3),
            pick(h4, g4),
        );

        // To 128 bits, plus s mod 2^128.
        let words = [
            h0 | (h1 << 26),
            (h1 >> 6) | (h2 << 20),
            (h2 >> 12) | (h3 << 14),
            (h3 >> 18) | (h4 << 8),
        ];
        let mut tag = [0u8; 16];
        let mut carry = 0u64;
        for (i, (word, s)) in words.iter().zip(self.s.iter()).enumerate() {
            carry += u64::from(*word) + u64::from(*s);
            tag[4 * i..4 * i + 4].copy_from_slice(&(carry as u32).to_le_bytes());
            carry >>= 32;
        }
        tag
    }

    /// The tag of `message` under `key` in one go.
    pub fn compute(key: &[u8; 32], message: &[u8]) -> [u8; 16] {
        let mut poly = Poly1305::new(key);
        let mut blocks = message.chunks_exact(16);
        for block in &mut blocks {
            poly.block(block.try_into().expect("16 bytes"), 1 << 24);
        }
        poly.finish(blocks.remainder())
    }
}
