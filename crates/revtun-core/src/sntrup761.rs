//! Streamlined NTRU Prime sntrup761, the post-quantum half of `sntrup761x25519-sha512`
//! (draft-ietf-sshm-ntruprime-ssh). No crate on crates.io implements it for Rust 1.63 (the WASM
//! build's compiler), so this module follows the NTRU Prime specification ("NTRU Prime: round
//! 3", 2020, and its supercop-20210604 KEM, whose byte layout OpenSSH uses): parameters
//! p = 761, q = 4591, w = 286, rings R/3 and R/q with R = Z[x]/(x^p - x - 1).
//!
//! Randomness comes from the caller as a byte source, as the reference's `randombytes` would
//! supply it, so the NIST known-answer test can replay it (tests/sntrup761.rs). Arithmetic on
//! secrets has no secret-dependent branches or indexes: the inversions are the constant-time
//! divstep iterations of Bernstein and Yang, the sort is a Batcher network of masked
//! compare-exchanges, and the decapsulation picks the rejection key by mask.
//!
//! No step divides: reductions mod 3 and mod q (the specification's Freeze) and the division
//! by 3 of Round go through `Modulus`, Barrett reduction by multiplication and shift, because
//! `%` and `/` are division instructions in the WASM build, whose timing can depend on the
//! (secret) operands; see modulus.rs. Decode, which only sees public keys and ciphertexts,
//! uses the same arithmetic so that the compiled KEM holds no division at all and the
//! disassembly check (test/unit/crypto/kem-constant-time.test.ts) needs no exceptions.

use sha2::{Digest, Sha512};

use crate::kem::wipe;
use crate::modulus::Modulus;

const P: usize = 761;
const Q: i32 = 4591;
const Q12: i32 = (Q - 1) / 2;
const W: usize = 286;

/// Small_bytes: four coefficients of R/3 per byte.
const SMALL_BYTES: usize = (P + 3) / 4;
/// Rq_bytes, the encoded public key.
pub const PUBLIC_KEY_BYTES: usize = 1158;
const ROUNDED_BYTES: usize = 1007;
const HASH_BYTES: usize = 32;
pub const CIPHERTEXT_BYTES: usize = ROUNDED_BYTES + HASH_BYTES;
/// f, 1/g in R/3, the public key, ρ for implicit rejection, and Hash(4 ‖ pk).
pub const SECRET_KEY_BYTES: usize = 2 * SMALL_BYTES + PUBLIC_KEY_BYTES + SMALL_BYTES + HASH_BYTES;
pub const SHARED_SECRET_BYTES: usize = 32;

/// A source of random bytes, called the way the reference calls `randombytes`.
pub trait RandomSource {
    fn fill(&mut self, out: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> RandomSource for F {
    fn fill(&mut self, out: &mut [u8]) {
        self(out)
    }
}

const MOD_3: Modulus = Modulus::new(3);
const MOD_Q: Modulus = Modulus::new(Q as u32);

/// x mod 3 as -1, 0 or 1 (the specification's F3_freeze), for -2³¹ ≤ x < 2³⁰.
fn freeze3(x: i32) -> i8 {
    // Adding 3·2³⁰ (a multiple of 3) makes every x in the domain a u32 without changing its
    // residue, so the unsigned Barrett reduction applies.
    let r = MOD_3.reduce((x as u32).wrapping_add(3 << 30)) as i32;
    (r - 3 * (r >> 1)) as i8
}

/// x mod q in -(q-1)/2 ..= (q-1)/2 (the specification's Fq_freeze), for -2²⁸ ≤ x < 2³¹ - 2¹².
fn freeze_q(x: i32) -> i32 {
    // Shifted up by a multiple of q (q·2¹⁶ > 2²⁸) to be unsigned, and by (q-1)/2 to centre it.
    const OFFSET: u32 = (Q as u32) << 16;
    let shifted = (x as u32).wrapping_add(OFFSET + Q12 as u32);
    MOD_Q.reduce(shifted) as i32 - Q12
}

/// Mask of all ones when x is nonzero.
fn nonzero_mask(x: i32) -> i32 {
    -(((x as i64 | -(x as i64)) >> 63) & 1) as i32
}

/// Mask of all ones when x is negative.
fn negative_mask(x: i32) -> i32 {
    x >> 31
}

/// The first 32 bytes of SHA-512(b ‖ parts): the specification's Hash_b.
fn hash_prefix(b: u8, parts: &[&[u8]]) -> [u8; HASH_BYTES] {
    let mut h = Sha512::new();
    h.update([b]);
    for part in parts {
        h.update(part);
    }
    let mut out = [0u8; HASH_BYTES];
    out.copy_from_slice(&h.finalize()[..HASH_BYTES]);
    out
}

/// Product in R/3 or R/q before reduction by x^p - x - 1: x^k for k ≥ p is x^(k-p+1) + x^(k-p).
fn multiply(f: &[i32], g: &[i8]) -> Vec<i32> {
    let mut fg = vec![0i32; 2 * P - 1];
    for (i, &a) in f.iter().enumerate() {
        for (j, &b) in g.iter().enumerate() {
            fg[i + j] += a * i32::from(b);
        }
    }
    // Coefficients stay below 2^31: |a| ≤ q/2, |b| ≤ 1, at most p terms, doubled by the folds.
    for k in (P..2 * P - 1).rev() {
        fg[k - P + 1] += fg[k];
        fg[k - P] += fg[k];
    }
    fg.truncate(P);
    fg
}

fn r3_mult(f: &[i8], g: &[i8]) -> Vec<i8> {
    let f: Vec<i32> = f.iter().map(|&x| i32::from(x)).collect();
    multiply(&f, g).into_iter().map(freeze3).collect()
}

fn rq_mult_small(f: &[i32], g: &[i8]) -> Vec<i32> {
    multiply(f, g).into_iter().map(freeze_q).collect()
}

/// The highest indexes of (f, g) and of (v, r) that step `step` of the 2p - 1 divsteps of
/// `r3_recip` and `rq_recip3` needs to update. v and r start as constants and each step shifts v
/// up by one, so above index step + 1 they are still zero. A coefficient of f or g at index i
/// reaches index 0, where the steps read f and g, only i steps later (g shifts down by one per
/// step, f only swaps with g), so above 2p - 1 - step it cannot change the result (one index
/// more than strictly needed: the last step's g is never read). Skipping those saves a quarter
/// of the inversions' work; the bounds depend on the step count alone, which is public, so the
/// time still does not depend on the key.
fn divstep_bounds(step: usize) -> (usize, usize) {
    (P.min(2 * P - 1 - step), P.min(step + 1))
}

/// 1/g in R/3, or None when g is not invertible (the divstep loop of the specification).
fn r3_recip(g_in: &[i8]) -> Option<Vec<i8>> {
    let mut f = vec![0i8; P + 1];
    f[0] = 1;
    f[P - 1] = -1;
    f[P] = -1;
    let mut g = vec![0i8; P + 1];
    for i in 0..P {
        g[P - 1 - i] = g_in[i];
    }
    let mut v = vec![0i8; P + 1];
    let mut r = vec![0i8; P + 1];
    r[0] = 1;
    let mut delta: i32 = 1;
    for step in 0..2 * P - 1 {
        let (fg_top, vr_top) = divstep_bounds(step);
        v.copy_within(0..P, 1);
        v[0] = 0;
        let sign = -i32::from(g[0]) * i32::from(f[0]);
        let swap = negative_mask(-delta) & nonzero_mask(i32::from(g[0]));
        delta ^= swap & (delta ^ -delta);
        delta += 1;
        let swap8 = swap as i8;
        // Slices rather than indexes: one bounds check per loop, not one per coefficient.
        for (fi, gi) in f[..=fg_top].iter_mut().zip(g[..=fg_top].iter_mut()) {
            let t = swap8 & (*fi ^ *gi);
            *fi ^= t;
            *gi = freeze3(i32::from(*gi ^ t) + sign * i32::from(*fi));
        }
        for (vi, ri) in v[..=vr_top].iter_mut().zip(r[..=vr_top].iter_mut()) {
            let t = swap8 & (*vi ^ *ri);
            *vi ^= t;
            *ri = freeze3(i32::from(*ri ^ t) + sign * i32::from(*vi));
        }
        g.copy_within(1..=P, 0);
        g[P] = 0;
    }
    let sign = f[0];
    let out = (0..P).map(|i| sign * v[P - 1 - i]).collect();
    if delta == 0 {
        Some(out)
    } else {
        None
    }
}

/// 1/a in Z/q as a^(q-2) by square and multiply (q is prime). The exponent is public, so
/// the branch on its bits is too; a, the leading coefficient in `rq_recip3`, is secret and
/// is only multiplied and reduced.
fn fq_recip(a: i32) -> i32 {
    let (mut result, mut base, mut e) = (1u32, (freeze_q(a) + Q) as u32, Q - 2);
    while e > 0 {
        if e & 1 == 1 {
            result = MOD_Q.reduce(result * base);
        }
        base = MOD_Q.reduce(base * base);
        e >>= 1;
    }
    freeze_q(result as i32)
}

/// 1/(3f) in R/q; f is always invertible there (q is prime and x^p - x - 1 irreducible mod q).
fn rq_recip3(f_in: &[i8]) -> Vec<i32> {
    let mut f = vec![0i32; P + 1];
    f[0] = 1;
    f[P - 1] = -1;
    f[P] = -1;
    let mut g = vec![0i32; P + 1];
    for i in 0..P {
        g[P - 1 - i] = i32::from(f_in[i]);
    }
    let mut v = vec![0i32; P + 1];
    let mut r = vec![0i32; P + 1];
    r[0] = fq_recip(3);
    let mut delta: i32 = 1;
    for step in 0..2 * P - 1 {
        let (fg_top, vr_top) = divstep_bounds(step);
        v.copy_within(0..P, 1);
        v[0] = 0;
        let swap = negative_mask(-delta) & nonzero_mask(g[0]);
        delta ^= swap & (delta ^ -delta);
        delta += 1;
        // f[0] and g[0] after the swap are the multipliers of the whole step.
        let (f0, g0) = (f[0] ^ (swap & (f[0] ^ g[0])), g[0] ^ (swap & (f[0] ^ g[0])));
        // Slices rather than indexes: one bounds check per loop, not one per coefficient.
        for (fi, gi) in f[..=fg_top].iter_mut().zip(g[..=fg_top].iter_mut()) {
            let t = swap & (*fi ^ *gi);
            *fi ^= t;
            *gi = freeze_q(f0 * (*gi ^ t) - g0 * *fi);
        }
        for (vi, ri) in v[..=vr_top].iter_mut().zip(r[..=vr_top].iter_mut()) {
            let t = swap & (*vi ^ *ri);
            *vi ^= t;
            *ri = freeze_q(f0 * (*ri ^ t) - g0 * *vi);
        }
        g.copy_within(1..=P, 0);
        g[P] = 0;
    }
    let scale = fq_recip(f[0]);
    (0..P).map(|i| freeze_q(scale * v[P - 1 - i])).collect()
}

/// The specification's Encode: values r[i] < m[i] as a mixed-radix byte string, pairs of
/// values merged level by level and bytes emitted while a merged modulus reaches 2^14.
fn encode(r: &[u32], m: &[u32], out: &mut Vec<u8>) {
    if m.len() == 1 {
        let (mut r, mut m) = (r[0], m[0]);
        while m > 1 {
            out.push(r as u8);
            r >>= 8;
            m = (m + 255) >> 8;
        }
        return;
    }
    let mut r2 = Vec::with_capacity((m.len() + 1) / 2);
    let mut m2 = Vec::with_capacity((m.len() + 1) / 2);
    for i in (0..m.len() - 1).step_by(2) {
        let (mut mm, mut rr) = (m[i] * m[i + 1], r[i] + m[i] * r[i + 1]);
        while mm >= 16384 {
            out.push(rr as u8);
            rr >>= 8;
            mm = (mm + 255) >> 8;
        }
        r2.push(rr);
        m2.push(mm);
    }
    if m.len() % 2 == 1 {
        r2.push(r[m.len() - 1]);
        m2.push(m[m.len() - 1]);
    }
    encode(&r2, &m2, out);
}

/// The inverse of `encode`. Every output is reduced below its modulus, so a malformed string
/// from the peer still decodes to valid ring elements.
fn decode(s: &[u8], m: &[u32]) -> Vec<u32> {
    if m.len() == 1 {
        if m[0] == 1 {
            return vec![0];
        }
        // The last modulus is below 2¹⁴, so at most two bytes are left for it.
        debug_assert!(s.len() <= 4);
        let value = s.iter().rev().fold(0u32, |acc, &b| acc << 8 | u32::from(b));
        return vec![Modulus::at_run_time(m[0]).reduce(value)];
    }
    let mut at = 0;
    let mut bottom = Vec::with_capacity(m.len() / 2);
    let mut m2 = Vec::with_capacity((m.len() + 1) / 2);
    for i in (0..m.len() - 1).step_by(2) {
        let (mut mm, mut r, mut t) = (m[i] * m[i + 1], 0u32, 1u32);
        while mm >= 16384 {
            r += u32::from(s[at]) * t;
            t <<= 8;
            at += 1;
            mm = (mm + 255) >> 8;
        }
        bottom.push((r, t));
        m2.push(mm);
    }
    if m.len() % 2 == 1 {
        m2.push(m[m.len() - 1]);
    }
    let r2 = decode(&s[at..], &m2);
    let mut out = Vec::with_capacity(m.len());
    // The moduli of a level are all equal but perhaps the last, so a reciprocal is worked out
    // when the modulus changes rather than twice per pair.
    let mut divisor = Modulus::at_run_time(m[0]);
    let mut divisor_for = |modulus: u32| {
        if divisor.modulus() != modulus {
            divisor = Modulus::at_run_time(modulus);
        }
        divisor
    };
    for i in (0..m.len() - 1).step_by(2) {
        let (r, t) = bottom[i / 2];
        // Below 2³²: r < t ≤ 2¹⁶ and r2 is reduced below its modulus, itself below 2¹⁴.
        let value = r + t * r2[i / 2];
        let (high, low) = divisor_for(m[i]).divmod(value);
        out.push(low);
        out.push(divisor_for(m[i + 1]).reduce(high));
    }
    if m.len() % 2 == 1 {
        out.push(r2[r2.len() - 1]);
    }
    out
}

fn rq_encode(h: &[i32]) -> Vec<u8> {
    let r: Vec<u32> = h.iter().map(|&x| (x + Q12) as u32).collect();
    let mut out = Vec::with_capacity(PUBLIC_KEY_BYTES);
    encode(&r, &[Q as u32; P], &mut out);
    out
}

fn rq_decode(s: &[u8]) -> Vec<i32> {
    decode(s, &[Q as u32; P])
        .into_iter()
        .map(|x| x as i32 - Q12)
        .collect()
}

/// Rounds each coefficient to the nearest multiple of 3 and encodes it with modulus (q+2)/3.
fn round_and_encode(h: &[i32]) -> Vec<u8> {
    let r: Vec<u32> = h
        .iter()
        .map(|&x| {
            // rounded + (q-1)/2 is a multiple of 3 in 0..q, so the quotient is exact.
            let rounded = x - i32::from(freeze3(x));
            MOD_3.divmod((rounded + Q12) as u32).0
        })
        .collect();
    let mut out = Vec::with_capacity(ROUNDED_BYTES);
    encode(&r, &[(Q as u32 + 2) / 3; P], &mut out);
    out
}

fn rounded_decode(s: &[u8]) -> Vec<i32> {
    decode(s, &[(Q as u32 + 2) / 3; P])
        .into_iter()
        .map(|x| x as i32 * 3 - Q12)
        .collect()
}

fn small_encode(f: &[i8]) -> Vec<u8> {
    f.chunks(4)
        .map(|four| {
            four.iter()
                .enumerate()
                .fold(0u8, |acc, (i, &x)| acc | ((x + 1) as u8) << (2 * i))
        })
        .collect()
}

fn small_decode(s: &[u8]) -> Vec<i8> {
    (0..P)
        .map(|i| ((s[i / 4] >> (2 * (i % 4))) & 3) as i8 - 1)
        .collect()
}

/// p little-endian 32-bit words from one draw of 4p random bytes, as the reference draws them.
fn random_words(rng: &mut dyn RandomSource) -> Vec<u32> {
    let mut bytes = vec![0u8; 4 * P];
    rng.fill(&mut bytes);
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A random element of R/3 (Small_random).
fn small_random(rng: &mut dyn RandomSource) -> Vec<i8> {
    random_words(rng)
        .into_iter()
        .map(|x| ((((x & 0x3fff_ffff) * 3) >> 30) as i32 - 1) as i8)
        .collect()
}

/// Sorts in place with Batcher's odd-even merge network over the next power of two, padding
/// with u32::MAX; every compare-exchange is masked, so the order of secret values leaks nothing.
fn constant_time_sort(values: &mut Vec<u32>) {
    let len = values.len();
    let n = len.next_power_of_two();
    values.resize(n, u32::MAX);
    let mut p = 1;
    while p < n {
        let mut k = p;
        while k >= 1 {
            // p and k are powers of two: masks and shifts instead of `%` and `/`, which the
            // WASM build would compile to division instructions (on public indexes, but the
            // disassembly check allows none in the KEM).
            let mut j = k & (p - 1);
            while j + k < n {
                for i in 0..k.min(n - j - k) {
                    // Both indexes in the same block of 2p: equal above bit log2(2p).
                    if ((i + j) ^ (i + j + k)) < 2 * p {
                        let (a, b) = (values[i + j], values[i + j + k]);
                        let diff = u64::from(b).wrapping_sub(u64::from(a));
                        let swap = ((diff >> 63) as u32).wrapping_neg(); // all ones when b < a
                        let t = swap & (a ^ b);
                        values[i + j] = a ^ t;
                        values[i + j + k] = b ^ t;
                    }
                }
                j += 2 * k;
            }
            k >>= 1;
        }
        p <<= 1;
    }
    values.truncate(len);
}

/// A random element of R/3 with exactly w nonzero coefficients (Short_random).
fn short_random(rng: &mut dyn RandomSource) -> Vec<i8> {
    let mut l = random_words(rng);
    for (i, x) in l.iter_mut().enumerate() {
        *x = if i < W { *x & !1 } else { (*x & !2) | 1 };
    }
    constant_time_sort(&mut l);
    l.iter().map(|&x| (x & 3) as i8 - 1).collect()
}

/// Hide: the rounded ciphertext of r under pk, followed by its confirmation hash; also returns
/// Hash_3(r_enc) for the session key.
fn hide(r: &[i8], pk: &[u8], pk_hash: &[u8]) -> (Vec<u8>, [u8; HASH_BYTES]) {
    let h = rq_decode(pk);
    let mut c = round_and_encode(&rq_mult_small(&h, r));
    let r_hash = hash_prefix(3, &[&small_encode(r)]);
    c.extend_from_slice(&hash_prefix(2, &[&r_hash, pk_hash]));
    (c, r_hash)
}

/// Key generation; returns (public key, secret key).
pub fn keygen(rng: &mut dyn RandomSource) -> (Vec<u8>, Vec<u8>) {
    let (mut g, mut g_inverse) = loop {
        let mut g = small_random(rng);
        if let Some(inverse) = r3_recip(&g) {
            break (g, inverse);
        }
        wipe(&mut g);
    };
    let mut f = short_random(rng);
    let h = rq_mult_small(&rq_recip3(&f), &g);
    let pk = rq_encode(&h);
    let mut sk = Vec::with_capacity(SECRET_KEY_BYTES);
    sk.extend_from_slice(&small_encode(&f));
    sk.extend_from_slice(&small_encode(&g_inverse));
    sk.extend_from_slice(&pk);
    let mut rho = [0u8; SMALL_BYTES];
    rng.fill(&mut rho);
    sk.extend_from_slice(&rho);
    sk.extend_from_slice(&hash_prefix(4, &[&pk]));
    wipe(&mut g);
    wipe(&mut g_inverse);
    wipe(&mut f);
    wipe(&mut rho);
    (pk, sk)
}

/// Encapsulation against `pk` (PUBLIC_KEY_BYTES long); returns (ciphertext, shared secret).
pub fn encapsulate(pk: &[u8], rng: &mut dyn RandomSource) -> (Vec<u8>, [u8; 32]) {
    let r = short_random(rng);
    let (c, r_hash) = hide(&r, pk, &hash_prefix(4, &[pk]));
    let k = hash_prefix(1, &[&r_hash, &c]);
    (c, k)
}

/// Decapsulation of `c` (CIPHERTEXT_BYTES long) with `sk`. A ciphertext that does not
/// re-encrypt to itself gives the session key of ρ instead (implicit rejection).
pub fn decapsulate(sk: &[u8], c: &[u8]) -> [u8; 32] {
    let mut f = small_decode(&sk[..SMALL_BYTES]);
    let mut v = small_decode(&sk[SMALL_BYTES..2 * SMALL_BYTES]);
    let pk = &sk[2 * SMALL_BYTES..2 * SMALL_BYTES + PUBLIC_KEY_BYTES];
    let rho =
        &sk[2 * SMALL_BYTES + PUBLIC_KEY_BYTES..2 * SMALL_BYTES + PUBLIC_KEY_BYTES + SMALL_BYTES];
    let pk_hash = &sk[SECRET_KEY_BYTES - HASH_BYTES..];

    let mut d = rq_mult_small(&rounded_decode(&c[..ROUNDED_BYTES]), &f);
    let mut e: Vec<i8> = d.iter().map(|&x| freeze3(freeze_q(3 * x))).collect();
    let mut r = weight_force(r3_mult(&e, &v));

    let (again, _) = hide(&r, pk, pk_hash);
    let differs = again
        .iter()
        .zip(c.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    let mask = (((u16::from(differs) + 0xff) >> 8) as u8).wrapping_neg(); // 0xff on mismatch
    let mut r_enc = small_encode(&r);
    for (x, y) in r_enc.iter_mut().zip(rho.iter()) {
        *x ^= mask & (*x ^ y);
    }
    let r_hash = hash_prefix(3, &[&r_enc]);
    wipe(&mut f);
    wipe(&mut v);
    wipe(&mut d);
    wipe(&mut e);
    wipe(&mut r);
    wipe(&mut r_enc);
    hash_prefix(1u8.wrapping_add(mask), &[&r_hash, c])
}

/// r itself when it has weight w, else the fixed weight-w vector (1, ..., 1, 0, ..., 0).
fn weight_force(r: Vec<i8>) -> Vec<i8> {
    let weight: i32 = r.iter().map(|&x| i32::from(x & 1)).sum();
    let mask = nonzero_mask(weight - W as i32) as i8;
    r.iter()
        .enumerate()
        .map(|(i, &x)| {
            if i < W {
                ((x ^ 1) & !mask) ^ 1
            } else {
                x & !mask
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "sntrup761_tests.rs"]
mod tests;
