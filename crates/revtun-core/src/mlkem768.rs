//! ML-KEM-768 (FIPS 203), the post-quantum half of `mlkem768x25519-sha256`
//! (draft-ietf-sshm-mlkem-hybrid-kex). Written here rather than taken from RustCrypto's `ml-kem`
//! because every release of that crate needs a newer Rust than the 1.63 the WASM build uses.
//!
//! The functions are the "internal" algorithms of FIPS 203 §6 (ML-KEM.KeyGen_internal,
//! Encaps_internal, Decaps_internal): the caller supplies the random seeds, so the code is
//! deterministic and checked against NIST's ACVP vectors (tests/mlkem768.rs). Polynomial
//! coefficients are kept as integers in 0..q.
//!
//! Constant time: no step branches or indexes on secret data except the rejection sampling of
//! the public matrix (FIPS 203 Algorithm 7), which only sees public bytes, and no step divides.
//! Every reduction mod q and the division of Compress_d (§4.2.1) go through `Modulus`, Barrett
//! reduction by multiplication and shift: `% Q` would be a division instruction in the WASM
//! build (the KyberSlash timing leak), see modulus.rs.

use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::{Digest, Sha3_256, Sha3_512, Shake128, Shake256};

use crate::kem::wipe;
use crate::modulus::Modulus;

const N: usize = 256;
const Q: u32 = 3329;
const K: usize = 3;
const ETA: usize = 2; // η1 = η2 = 2 for ML-KEM-768
const DU: u32 = 10;
const DV: u32 = 4;

/// Encapsulation (public) key: 384k bytes of t̂ and the 32-byte matrix seed ρ.
pub const PUBLIC_KEY_BYTES: usize = 384 * K + 32;
/// Decapsulation key: dk_PKE ‖ ek ‖ H(ek) ‖ z (FIPS 203 Algorithm 16).
pub const SECRET_KEY_BYTES: usize = 768 * K + 96;
/// Ciphertext: k compressed polynomials of du bits, then one of dv bits.
pub const CIPHERTEXT_BYTES: usize = 32 * (DU as usize * K + DV as usize);
pub const SHARED_SECRET_BYTES: usize = 32;

type Poly = [u32; N];

const MOD_Q: Modulus = Modulus::new(Q);

/// x mod q, for any x < 2³² (the code passes products of two coefficients and small sums).
#[inline(always)]
fn reduce(x: u32) -> u32 {
    MOD_Q.reduce(x)
}

/// 7-bit bit reversal, for the NTT's twiddle order.
const fn bitrev7(i: usize) -> u32 {
    (i as u32).reverse_bits() >> 25
}

/// Only evaluated by the compiler (for ZETAS and GAMMAS), so its `%` never runs.
const fn pow_mod(base: u32, mut exponent: u32) -> u32 {
    let (mut result, mut b) = (1u32, base % Q);
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = result * b % Q;
        }
        b = b * b % Q;
        exponent >>= 1;
    }
    result
}

/// ζ^BitRev7(i) (`odd` false) or ζ^(2·BitRev7(i)+1) (`odd` true) for i in 0..128, with
/// ζ = 17 the primitive 256th root of unity mod q (FIPS 203 §4.3 and Appendix A).
const fn root_table(odd: bool) -> [u32; 128] {
    let mut out = [0u32; 128];
    let mut i = 0;
    while i < 128 {
        out[i] = if odd {
            pow_mod(17, 2 * bitrev7(i) + 1)
        } else {
            pow_mod(17, bitrev7(i))
        };
        i += 1;
    }
    out
}

const ZETAS: [u32; 128] = root_table(false);
const GAMMAS: [u32; 128] = root_table(true);

fn ntt(f: &mut Poly) {
    let zetas = &ZETAS;
    let mut i = 1;
    let mut len = 128;
    while len >= 2 {
        for start in (0..N).step_by(2 * len) {
            let zeta = zetas[i];
            i += 1;
            for j in start..start + len {
                let t = reduce(zeta * f[j + len]);
                f[j + len] = reduce(f[j] + Q - t);
                f[j] = reduce(f[j] + t);
            }
        }
        len /= 2;
    }
}

fn ntt_inverse(f: &mut Poly) {
    let zetas = &ZETAS;
    let mut i = 127;
    let mut len = 2;
    while len <= 128 {
        for start in (0..N).step_by(2 * len) {
            let zeta = zetas[i];
            i -= 1;
            for j in start..start + len {
                let t = f[j];
                f[j] = reduce(t + f[j + len]);
                f[j + len] = reduce(zeta * reduce(f[j + len] + Q - t));
            }
        }
        len *= 2;
    }
    // 3303 = 128⁻¹ mod q
    for c in f.iter_mut() {
        *c = reduce(*c * 3303);
    }
}

/// Product of two NTT-domain polynomials (FIPS 203 Algorithms 11 and 12), added to `acc`.
fn multiply_ntts_add(acc: &mut Poly, a: &Poly, b: &Poly) {
    for i in 0..128 {
        let gamma = GAMMAS[i];
        let (a0, a1, b0, b1) = (a[2 * i], a[2 * i + 1], b[2 * i], b[2 * i + 1]);
        let c0 = reduce(reduce(a0 * b0) + reduce(a1 * b1) * gamma);
        let c1 = reduce(a0 * b1 + a1 * b0);
        acc[2 * i] = reduce(acc[2 * i] + c0);
        acc[2 * i + 1] = reduce(acc[2 * i + 1] + c1);
    }
}

/// ByteEncode_d (FIPS 203 Algorithm 5): 256 d-bit values, least significant bit first.
fn byte_encode(f: &Poly, d: u32, out: &mut [u8]) {
    let mut acc: u64 = 0;
    let mut bits = 0;
    let mut at = 0;
    for &c in f.iter() {
        acc |= u64::from(c) << bits;
        bits += d;
        while bits >= 8 {
            out[at] = acc as u8;
            at += 1;
            acc >>= 8;
            bits -= 8;
        }
    }
}

/// ByteDecode_d (FIPS 203 Algorithm 6); for d = 12 the values are reduced mod q.
fn byte_decode(bytes: &[u8], d: u32) -> Poly {
    let mut f = [0u32; N];
    let mut acc: u64 = 0;
    let mut bits = 0;
    let mut bytes = bytes.iter();
    let mask = (1u64 << d) - 1;
    for c in f.iter_mut() {
        while bits < d {
            acc |= u64::from(*bytes.next().unwrap_or(&0)) << bits;
            bits += 8;
        }
        *c = (acc & mask) as u32;
        acc >>= d;
        bits -= d;
        if d == 12 {
            *c = reduce(*c);
        }
    }
    f
}

/// Compress_d (FIPS 203 §4.2.1): round(2^d · x / q) mod 2^d for x in 0..q, as
/// ⌊(2^d·x + ⌊q/2⌋) / q⌋ with the quotient taken by Barrett multiplication, not a division:
/// x is a secret coefficient in decryption, and timing the division recovered it (KyberSlash).
fn compress(x: u32, d: u32) -> u32 {
    let (quotient, _) = MOD_Q.divmod((x << d) + Q / 2);
    quotient & ((1 << d) - 1)
}

/// Decompress_d (FIPS 203 §4.2.1): round(q · y / 2^d), a shift by the power of two.
fn decompress(y: u32, d: u32) -> u32 {
    (y * Q + (1 << (d - 1))) >> d
}

/// SampleNTT (FIPS 203 Algorithm 7): Â[i][j] from SHAKE128(ρ ‖ j ‖ i) by rejection.
fn sample_ntt(rho: &[u8], j: u8, i: u8) -> Poly {
    let mut xof = Shake128::default();
    xof.update(rho);
    xof.update(&[j, i]);
    let mut reader = xof.finalize_xof();
    let mut f = [0u32; N];
    let mut filled = 0;
    let mut block = [0u8; 168]; // SHAKE128's rate
    while filled < N {
        reader.read(&mut block);
        for three in block.chunks_exact(3) {
            let d1 = u32::from(three[0]) | (u32::from(three[1]) & 0x0f) << 8;
            let d2 = u32::from(three[1]) >> 4 | u32::from(three[2]) << 4;
            for d in [d1, d2] {
                if d < Q && filled < N {
                    f[filled] = d;
                    filled += 1;
                }
            }
        }
    }
    f
}

/// SamplePolyCBD_η over PRF_η(s, b) = SHAKE256(s ‖ b, 64η) (FIPS 203 Algorithm 8, §4.1).
fn sample_cbd(seed: &[u8], nonce: u8) -> Poly {
    let mut prf = Shake256::default();
    prf.update(seed);
    prf.update(&[nonce]);
    let mut bytes = [0u8; 64 * ETA];
    prf.finalize_xof().read(&mut bytes);
    let bit = |k: usize| u32::from(bytes[k / 8] >> (k % 8) & 1);
    let mut f = [0u32; N];
    for (i, c) in f.iter_mut().enumerate() {
        let x: u32 = (0..ETA).map(|j| bit(2 * i * ETA + j)).sum();
        let y: u32 = (0..ETA).map(|j| bit(2 * i * ETA + ETA + j)).sum();
        *c = reduce(x + Q - y);
    }
    f
}

fn add(a: &mut Poly, b: &Poly) {
    for (x, y) in a.iter_mut().zip(b.iter()) {
        *x = reduce(*x + y);
    }
}

/// The public matrix Â, row i column j, as K-PKE.KeyGen and K-PKE.Encrypt expand it.
fn matrix(rho: &[u8]) -> [[Poly; K]; K] {
    let mut a = [[[0u32; N]; K]; K];
    for (i, row) in a.iter_mut().enumerate() {
        for (j, entry) in row.iter_mut().enumerate() {
            *entry = sample_ntt(rho, j as u8, i as u8);
        }
    }
    a
}

fn sha3_256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha3_256::new();
    for p in parts {
        Digest::update(&mut h, p);
    }
    h.finalize().into()
}

fn sha3_512(parts: &[&[u8]]) -> ([u8; 32], [u8; 32]) {
    let mut h = Sha3_512::new();
    for p in parts {
        Digest::update(&mut h, p);
    }
    let out = h.finalize();
    let mut first = [0u8; 32];
    let mut second = [0u8; 32];
    first.copy_from_slice(&out[..32]);
    second.copy_from_slice(&out[32..]);
    (first, second)
}

/// ML-KEM.KeyGen_internal(d, z) (FIPS 203 Algorithm 16): returns (ek, dk).
pub fn keygen(d: &[u8; 32], z: &[u8; 32]) -> (Vec<u8>, Vec<u8>) {
    let (rho, mut sigma) = sha3_512(&[d, &[K as u8]]);
    let a = matrix(&rho);
    let mut s = [[0u32; N]; K];
    let mut e = [[0u32; N]; K];
    for (i, si) in s.iter_mut().enumerate() {
        *si = sample_cbd(&sigma, i as u8);
        ntt(si);
    }
    for (i, ei) in e.iter_mut().enumerate() {
        *ei = sample_cbd(&sigma, (K + i) as u8);
        ntt(ei);
    }
    let mut ek = vec![0u8; PUBLIC_KEY_BYTES];
    let mut dk = vec![0u8; SECRET_KEY_BYTES];
    for i in 0..K {
        let mut t = e[i];
        for j in 0..K {
            multiply_ntts_add(&mut t, &a[i][j], &s[j]);
        }
        byte_encode(&t, 12, &mut ek[384 * i..384 * (i + 1)]);
        byte_encode(&s[i], 12, &mut dk[384 * i..384 * (i + 1)]);
    }
    ek[384 * K..].copy_from_slice(&rho);
    let dk_pke = 384 * K;
    dk[dk_pke..dk_pke + PUBLIC_KEY_BYTES].copy_from_slice(&ek);
    dk[dk_pke + PUBLIC_KEY_BYTES..dk_pke + PUBLIC_KEY_BYTES + 32]
        .copy_from_slice(&sha3_256(&[&ek]));
    dk[SECRET_KEY_BYTES - 32..].copy_from_slice(z);
    for poly in s.iter_mut().chain(e.iter_mut()) {
        wipe(poly);
    }
    wipe(&mut sigma);
    (ek, dk)
}

/// K-PKE.Encrypt(ek, m, r) (FIPS 203 Algorithm 14).
fn pke_encrypt(ek: &[u8], m: &[u8; 32], r: &[u8; 32]) -> Vec<u8> {
    let rho = &ek[384 * K..];
    let a = matrix(rho);
    let mut t = [[0u32; N]; K];
    for (i, ti) in t.iter_mut().enumerate() {
        *ti = byte_decode(&ek[384 * i..384 * (i + 1)], 12);
    }
    let mut y = [[0u32; N]; K];
    for (i, yi) in y.iter_mut().enumerate() {
        *yi = sample_cbd(r, i as u8);
        ntt(yi);
    }
    let mut c = vec![0u8; CIPHERTEXT_BYTES];
    let u_bytes = 32 * DU as usize;
    for i in 0..K {
        // u = NTT⁻¹(Âᵀ ∘ ŷ) + e1: column i of Â, so Â[j][i].
        let mut u = [0u32; N];
        for j in 0..K {
            multiply_ntts_add(&mut u, &a[j][i], &y[j]);
        }
        ntt_inverse(&mut u);
        add(&mut u, &sample_cbd(r, (K + i) as u8));
        for x in u.iter_mut() {
            *x = compress(*x, DU);
        }
        byte_encode(&u, DU, &mut c[u_bytes * i..u_bytes * (i + 1)]);
    }
    let mut v = [0u32; N];
    for j in 0..K {
        multiply_ntts_add(&mut v, &t[j], &y[j]);
    }
    ntt_inverse(&mut v);
    add(&mut v, &sample_cbd(r, (2 * K) as u8));
    let mu = byte_decode(m, 1);
    for (x, bit) in v.iter_mut().zip(mu.iter()) {
        *x = compress(reduce(*x + decompress(*bit, 1)), DV);
    }
    byte_encode(&v, DV, &mut c[u_bytes * K..]);
    c
}

/// K-PKE.Decrypt(dk_PKE, c) (FIPS 203 Algorithm 15).
fn pke_decrypt(dk_pke: &[u8], c: &[u8]) -> [u8; 32] {
    let u_bytes = 32 * DU as usize;
    let mut w = [0u32; N];
    for i in 0..K {
        let mut u = byte_decode(&c[u_bytes * i..u_bytes * (i + 1)], DU);
        for x in u.iter_mut() {
            *x = decompress(*x, DU);
        }
        ntt(&mut u);
        let s = byte_decode(&dk_pke[384 * i..384 * (i + 1)], 12);
        multiply_ntts_add(&mut w, &s, &u);
    }
    ntt_inverse(&mut w);
    let v = byte_decode(&c[u_bytes * K..], DV);
    let mut bits = [0u32; N];
    for ((b, x), y) in bits.iter_mut().zip(v.iter()).zip(w.iter()) {
        *b = compress(reduce(decompress(*x, DV) + Q - y), 1);
    }
    let mut m = [0u8; 32];
    byte_encode(&bits, 1, &mut m);
    m
}

/// ML-KEM.Encaps_internal(ek, m) (FIPS 203 Algorithm 17): returns (c, K). The caller has
/// checked the key's length; the modulus check of §7.2 is the encapsulating side's duty.
pub fn encapsulate(ek: &[u8], m: &[u8; 32]) -> (Vec<u8>, [u8; 32]) {
    let (key, r) = sha3_512(&[m, &sha3_256(&[ek])]);
    (pke_encrypt(ek, m, &r), key)
}

/// ML-KEM.Decaps_internal(dk, c) (FIPS 203 Algorithm 18), with implicit rejection: a
/// ciphertext that does not re-encrypt to itself yields J(z ‖ c), chosen without a branch.
pub fn decapsulate(dk: &[u8], c: &[u8]) -> [u8; 32] {
    let dk_pke = &dk[..384 * K];
    let ek = &dk[384 * K..384 * K + PUBLIC_KEY_BYTES];
    let h = &dk[768 * K + 32..768 * K + 64];
    let z = &dk[768 * K + 64..];
    let mut m = pke_decrypt(dk_pke, c);
    let (mut key, mut r) = sha3_512(&[&m, h]);
    let mut rejected = [0u8; 32];
    let mut j = Shake256::default();
    j.update(z);
    j.update(c);
    j.finalize_xof().read(&mut rejected);
    let again = pke_encrypt(ek, &m, &r);
    let differs = again
        .iter()
        .zip(c.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    // 0x00 when the ciphertexts match, 0xff otherwise.
    let mask = ((u16::from(differs) + 0xff) >> 8) as u8 * 0xff;
    let mut out = [0u8; 32];
    for i in 0..32 {
        out[i] = key[i] ^ (mask & (key[i] ^ rejected[i]));
    }
    wipe(&mut m);
    wipe(&mut key);
    wipe(&mut r);
    wipe(&mut rejected);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compress_equals_the_rounded_division_for_every_coefficient_and_width() {
        // Every d the code uses (1, du = 10, dv = 4) and the other widths of FIPS 203's
        // parameter sets, over all of 0..q.
        for d in 1..=11 {
            for x in 0..Q {
                let rounded = ((u64::from(x) << d) + u64::from(Q / 2)) / u64::from(Q);
                assert_eq!(
                    compress(x, d),
                    rounded as u32 & ((1 << d) - 1),
                    "x = {x}, d = {d}"
                );
            }
        }
    }

    #[test]
    fn reduce_equals_remainder_for_every_product_of_two_coefficients() {
        // The largest values reduced: q² plus a few coefficients (multiply_ntts_add).
        for x in 0..Q * Q + 4 * Q {
            assert_eq!(reduce(x), x % Q, "x = {x}");
        }
    }
}
