//! UMAC (RFC 4418) over AES-128, as OpenSSH's umac-64@openssh.com and umac-128@openssh.com use
//! it: a 16-byte key, an 8-byte nonce (the packet sequence number), 8- or 16-byte tags.
//!
//! Tag = UHASH(M) xor PDF(nonce). UHASH runs `tag_len / 4` independent iterations of three
//! layers: L1 (NH over 1024-byte chunks, message words little-endian), L2 (a polynomial hash
//! modulo 2^64 - 59, switching to 2^128 - 159 past 2^17 bytes of L1 output) and L3 (an inner
//! product modulo 2^36 - 5). All keys come from AES in counter mode (KDF) and are expanded once.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;

const L1_KEY_WORDS: usize = 256; // 1024 bytes
const MAX_ITERS: usize = 4; // umac-128
const P36: u64 = (1 << 36) - 5;
const P64: u64 = 0xFFFF_FFFF_FFFF_FFC5; // 2^64 - 59
const P128_OFFSET: u128 = 159; // 2^128 - p128
const P128: u128 = u128::MAX - P128_OFFSET + 1;
const MASK64: u64 = 0x01ff_ffff_01ff_ffff;
const MASK128: u128 = 0x01ff_ffff_01ff_ffff_01ff_ffff_01ff_ffff;
/// L2 switches from POLY64 to POLY128 after this many 8-byte L1 outputs (2^17 bytes).
const POLY64_WORDS: usize = 1 << 14;

/// A keyed UMAC instance producing `tag_len`-byte tags (4, 8, 12 or 16).
pub struct Umac {
    tag_len: usize,
    iters: usize,
    l1_key: [u32; L1_KEY_WORDS + 4 * (MAX_ITERS - 1)],
    l2_k64: [u64; MAX_ITERS],
    l2_k128: [u128; MAX_ITERS],
    l3_k1: [[u64; 8]; MAX_ITERS],
    l3_k2: [u32; MAX_ITERS],
    pdf: Aes128,
}

/// KDF(K, index, numbytes) of RFC 4418 §3.2.1: AES blocks of `index || counter`, counter from 1.
fn kdf(aes: &Aes128, index: u64, out: &mut [u8]) {
    for (i, chunk) in out.chunks_mut(16).enumerate() {
        let mut block = [0u8; 16];
        block[..8].copy_from_slice(&index.to_be_bytes());
        block[8..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        let mut b = GenericArray::from(block);
        aes.encrypt_block(&mut b);
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

fn be64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(b)
}

impl Umac {
    /// `key` must be 16 bytes and `tag_len` one of 4, 8, 12, 16.
    pub fn new(key: &[u8], tag_len: usize) -> Option<Umac> {
        if key.len() != 16 || !matches!(tag_len, 4 | 8 | 12 | 16) {
            return None;
        }
        let aes = Aes128::new_from_slice(key).ok()?;
        let iters = tag_len / 4;

        let mut l1_bytes = [0u8; 4 * (L1_KEY_WORDS + 4 * (MAX_ITERS - 1))];
        let l1_len = 1024 + (iters - 1) * 16;
        kdf(&aes, 1, &mut l1_bytes[..l1_len]);
        let mut l1_key = [0u32; L1_KEY_WORDS + 4 * (MAX_ITERS - 1)];
        for (word, bytes) in l1_key.iter_mut().zip(l1_bytes[..l1_len].chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }

        let mut l2 = [0u8; 24 * MAX_ITERS];
        kdf(&aes, 2, &mut l2[..24 * iters]);
        let mut l3a = [0u8; 64 * MAX_ITERS];
        kdf(&aes, 3, &mut l3a[..64 * iters]);
        let mut l3b = [0u8; 4 * MAX_ITERS];
        kdf(&aes, 4, &mut l3b[..4 * iters]);

        let mut l2_k64 = [0u64; MAX_ITERS];
        let mut l2_k128 = [0u128; MAX_ITERS];
        let mut l3_k1 = [[0u64; 8]; MAX_ITERS];
        let mut l3_k2 = [0u32; MAX_ITERS];
        for i in 0..iters {
            let k = &l2[24 * i..24 * (i + 1)];
            l2_k64[i] = be64(&k[..8]) & MASK64;
            l2_k128[i] =
                ((u128::from(be64(&k[8..16])) << 64) | u128::from(be64(&k[16..24]))) & MASK128;
            for (j, slot) in l3_k1[i].iter_mut().enumerate() {
                *slot = be64(&l3a[64 * i + 8 * j..]) % P36;
            }
            let b = &l3b[4 * i..4 * (i + 1)];
            l3_k2[i] = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        }

        let mut pdf_key = [0u8; 16];
        kdf(&aes, 0, &mut pdf_key);
        let pdf = Aes128::new_from_slice(&pdf_key).ok()?;
        Some(Umac {
            tag_len,
            iters,
            l1_key,
            l2_k64,
            l2_k128,
            l3_k1,
            l3_k2,
            pdf,
        })
    }

    pub fn tag_len(&self) -> usize {
        self.tag_len
    }

    /// Writes the tag of `message` under `nonce` (1 to 16 bytes) into `out` (`tag_len` bytes,
    /// or fewer to truncate).
    pub fn tag(&self, message: &[u8], nonce: &[u8], out: &mut [u8]) {
        let mut hashed = [0u8; 16];
        self.uhash(message, &mut hashed[..self.tag_len]);
        let pad = self.pdf(nonce);
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = hashed[i] ^ pad[i];
        }
    }

    /// PDF of RFC 4418 §3.2.2: for 4- and 8-byte tags, the low bits of the nonce pick which part
    /// of one AES block is the pad, so consecutive nonces share a block.
    fn pdf(&self, nonce: &[u8]) -> [u8; 16] {
        let nonce = &nonce[..nonce.len().min(16)];
        let mut block = [0u8; 16];
        block[..nonce.len()].copy_from_slice(nonce);
        let index = match self.tag_len {
            4 => usize::from(nonce.last().copied().unwrap_or(0) & 3),
            8 => usize::from(nonce.last().copied().unwrap_or(0) & 1),
            _ => 0,
        };
        if let Some(last) = nonce.len().checked_sub(1) {
            block[last] ^= index as u8;
        }
        let mut b = GenericArray::from(block);
        self.pdf.encrypt_block(&mut b);
        let mut pad = [0u8; 16];
        let start = index * self.tag_len;
        let len = self.tag_len.min(16 - start);
        pad[..len].copy_from_slice(&b[start..start + len]);
        pad
    }

    fn uhash(&self, message: &[u8], out: &mut [u8]) {
        let iters = self.iters;
        let mut l2 = [L2::new(); MAX_ITERS];
        let mut single_chunk = [0u64; MAX_ITERS];
        let chunks = if message.is_empty() {
            1
        } else {
            (message.len() + 1023) / 1024
        };
        for c in 0..chunks {
            let chunk =
                &message[(c * 1024).min(message.len())..((c + 1) * 1024).min(message.len())];
            let nh = self.nh(chunk);
            for i in 0..iters {
                // L1 adds the chunk's bit length (mod 2^64) to NH.
                let a = nh[i].wrapping_add(8 * chunk.len() as u64);
                if chunks == 1 {
                    single_chunk[i] = a;
                } else {
                    l2[i].absorb(a, self.l2_k64[i], self.l2_k128[i]);
                }
            }
        }
        for i in 0..iters {
            // A message of at most 1024 bytes skips L2: B = zeros(8) || A.
            let b: u128 = if chunks == 1 {
                u128::from(single_chunk[i])
            } else {
                l2[i].finish(self.l2_k128[i])
            };
            let c = self.l3(i, b);
            out[4 * i..4 * i + 4].copy_from_slice(&c.to_be_bytes());
        }
    }

    /// NH of one L1 chunk (at most 1024 bytes), zero-padded to a multiple of 32 bytes (at least
    /// one group), for every iteration;
    /// iteration `i` uses the L1 key shifted by `4 * i` words (RFC 4418 §5.1).
    fn nh(&self, chunk: &[u8]) -> [u64; MAX_ITERS] {
        let mut sums = [0u64; MAX_ITERS];
        let full = chunk.len() / 32 * 32;
        let mut group = |words: &[u32; 8], key_base: usize| {
            for (i, sum) in sums.iter_mut().enumerate().take(self.iters) {
                let k = &self.l1_key[key_base + 4 * i..key_base + 4 * i + 8];
                let mut s = *sum;
                for j in 0..4 {
                    let left = u64::from(words[j].wrapping_add(k[j]));
                    let right = u64::from(words[j + 4].wrapping_add(k[j + 4]));
                    s = s.wrapping_add(left * right);
                }
                *sum = s;
            }
        };
        let mut words = [0u32; 8];
        for (g, bytes) in chunk[..full].chunks_exact(32).enumerate() {
            for (w, b) in words.iter_mut().zip(bytes.chunks_exact(4)) {
                *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            group(&words, 8 * g);
        }
        // zeropad: a short tail, or an empty message, becomes one whole 32-byte group.
        if full < chunk.len() || chunk.is_empty() {
            let mut tail = [0u8; 32];
            tail[..chunk.len() - full].copy_from_slice(&chunk[full..]);
            for (w, b) in words.iter_mut().zip(tail.chunks_exact(4)) {
                *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            group(&words, full / 4);
        }
        sums
    }

    /// L3-HASH (RFC 4418 §5.4): inner product of the eight 16-bit words of `b` with the key,
    /// modulo 2^36 - 5, truncated to 32 bits and masked with the second key.
    fn l3(&self, iter: usize, b: u128) -> u32 {
        let bytes = b.to_be_bytes();
        let mut y: u64 = 0;
        for (j, pair) in bytes.chunks_exact(2).enumerate() {
            let m = u64::from(u16::from_be_bytes([pair[0], pair[1]]));
            y += m * self.l3_k1[iter][j];
        }
        ((y % P36) as u32) ^ self.l3_k2[iter]
    }
}

/// Streaming L2-HASH state for one iteration (RFC 4418 §5.3).
#[derive(Clone, Copy)]
struct L2 {
    words: usize,
    y64: u64,
    y128: u128,
    /// An L1 output waiting for its partner to make a 16-byte POLY128 word.
    pending: Option<u64>,
}

impl L2 {
    const fn new() -> L2 {
        L2 {
            words: 0,
            y64: 1,
            y128: 1,
            pending: None,
        }
    }

    fn absorb(&mut self, word: u64, k64: u64, k128: u128) {
        if self.words < POLY64_WORDS {
            self.y64 = poly64_step(self.y64, k64, word);
        } else {
            if self.words == POLY64_WORDS {
                // POLY128's first word is the POLY64 result.
                self.y128 = poly128_step(1, k128, u128::from(self.y64));
            }
            match self.pending.take() {
                None => self.pending = Some(word),
                Some(high) => {
                    self.y128 =
                        poly128_step(self.y128, k128, (u128::from(high) << 64) | u128::from(word))
                }
            }
        }
        self.words += 1;
    }

    fn finish(&mut self, k128: u128) -> u128 {
        if self.words <= POLY64_WORDS {
            return u128::from(self.y64);
        }
        // The remainder is padded with one 0x80 byte, then zeros to a 16-byte boundary.
        let last = match self.pending.take() {
            Some(high) => (u128::from(high) << 64) | (0x80u128 << 56),
            None => 0x80u128 << 120,
        };
        poly128_step(self.y128, k128, last)
    }
}

/// One step of POLY(64, 2^64 - 2^32, k, M) from RFC 4418 §5.3.1.
fn poly64_step(y: u64, k: u64, m: u64) -> u64 {
    const MAX_WORD: u64 = 0xFFFF_FFFF_0000_0000;
    let step =
        |y: u64, m: u64| ((u128::from(k) * u128::from(y) + u128::from(m)) % u128::from(P64)) as u64;
    if m >= MAX_WORD {
        step(step(y, P64 - 1), m - (0u64.wrapping_sub(P64)))
    } else {
        step(y, m)
    }
}

/// One step of POLY(128, 2^128 - 2^96, k, M).
fn poly128_step(y: u128, k: u128, m: u128) -> u128 {
    const MAX_WORD: u128 = !0u128 << 96;
    if m >= MAX_WORD {
        let y = add_mod_p128(mul_mod_p128(k, y), P128 - 1);
        add_mod_p128(mul_mod_p128(k, y), m - P128_OFFSET)
    } else {
        add_mod_p128(mul_mod_p128(k, y), m)
    }
}

/// `x * 159` as a 256-bit (high, low) pair.
fn times_offset(x: u128) -> (u128, u128) {
    let low = (x as u64 as u128) * P128_OFFSET;
    let high = (x >> 64) * P128_OFFSET; // < 2^72
    let (sum, carry) = low.overflowing_add(high << 64);
    ((high >> 64) + u128::from(carry), sum)
}

/// Reduces `high * 2^128 + low` modulo p128, using 2^128 = 159 (mod p128).
fn reduce_p128(mut high: u128, mut low: u128) -> u128 {
    while high != 0 {
        let (h, l) = times_offset(high);
        let (sum, carry) = low.overflowing_add(l);
        low = sum;
        high = h + u128::from(carry);
    }
    if low >= P128 {
        low - P128
    } else {
        low
    }
}

fn add_mod_p128(a: u128, b: u128) -> u128 {
    let (sum, carry) = a.overflowing_add(b);
    reduce_p128(u128::from(carry), sum)
}

fn mul_mod_p128(a: u128, b: u128) -> u128 {
    let (a0, a1) = (a as u64 as u128, a >> 64);
    let (b0, b1) = (b as u64 as u128, b >> 64);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 as u64 as u128) + (p10 as u64 as u128);
    let low = (p00 as u64 as u128) | (mid << 64);
    let high = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    reduce_p128(high, low)
}
