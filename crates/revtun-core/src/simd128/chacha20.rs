//! ChaCha20 (RFC 8439 §2.3-2.4) four blocks at a time in WebAssembly SIMD. Each of the sixteen
//! state words lives in its own v128 whose four lanes belong to four consecutive blocks, so a
//! quarter round is the scalar one applied lane-wise; a 4×4 transpose per row of words puts
//! the key stream back in byte order.
//!
//! Rotation by 16 is a 16-bit lane shuffle (V8 emits pshuflw and pshufhw); the others are a
//! shift pair and an or. A byte shuffle for the rotation by 8 measured no faster in V8, which
//! rebuilds the shuffle mask from immediates at every use.

use core::arch::wasm32::*;

/// Key stream state: the key, the nonce and where the block counter stands.
pub(crate) struct ChaCha20 {
    state: [u32; 16],
    /// Next block to use.
    counter: u64,
    /// OpenSSH's original ChaCha20 counts blocks in 64 bits (words 12 and 13) with a 64-bit
    /// nonce; RFC 8439's counts in 32 bits (word 12) with a 96-bit nonce.
    wide_counter: bool,
}

fn key_state(key: &[u8; 32]) -> [u32; 16] {
    let mut state = [0u32; 16];
    state[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    for (word, bytes) in state[4..12].iter_mut().zip(key.chunks_exact(4)) {
        *word = le_word(bytes);
    }
    state
}

fn le_word(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

impl ChaCha20 {
    /// OpenSSH's ChaCha20 (the original 64-bit-nonce form), starting at block 0.
    pub fn new_legacy(key: &[u8; 32], nonce: &[u8; 8]) -> ChaCha20 {
        let mut state = key_state(key);
        state[14] = le_word(&nonce[..4]);
        state[15] = le_word(&nonce[4..]);
        ChaCha20 {
            state,
            counter: 0,
            wide_counter: true,
        }
    }

    /// RFC 8439's ChaCha20, starting at block `counter`.
    pub fn new_ietf(key: &[u8; 32], nonce: &[u8; 12], counter: u32) -> ChaCha20 {
        let mut state = key_state(key);
        state[13] = le_word(&nonce[..4]);
        state[14] = le_word(&nonce[4..8]);
        state[15] = le_word(&nonce[8..]);
        ChaCha20 {
            state,
            counter: u64::from(counter),
            wide_counter: false,
        }
    }

    /// Moves the block counter to `block`.
    pub fn seek_block(&mut self, block: u64) {
        self.counter = block;
    }

    /// XORs the key stream into `data`, from the current block on; the counter moves past
    /// every block used (a partial last block counts as used).
    pub fn apply(&mut self, data: &mut [u8]) {
        if data.len() <= 64 {
            // The length field, and other short data: one block, not four.
            xor_stream(&self.one_block(), data);
            return;
        }
        let mut groups = data.chunks_exact_mut(256);
        for group in &mut groups {
            xor_stream(&self.four_blocks(), group);
        }
        let rest = groups.into_remainder();
        if !rest.is_empty() {
            let blocks = (rest.len() + 63) / 64;
            xor_stream(&self.four_blocks(), rest);
            // four_blocks advanced by 4; only the blocks actually used are consumed.
            self.counter = self.counter.wrapping_sub(4 - blocks as u64);
        }
    }

    /// The next key stream block: the state as four rows of four words, the diagonal round
    /// turning rows b, c and d by one, two and three lanes so that it is a column round too.
    #[inline(always)]
    fn one_block(&mut self) -> [v128; 4] {
        let s = &self.state;
        let c = self.counter;
        self.counter = c.wrapping_add(1);
        let row = |i: usize| u32x4(s[i], s[i + 1], s[i + 2], s[i + 3]);
        let word_13 = if self.wide_counter {
            (c >> 32) as u32
        } else {
            s[13]
        };
        let input = [
            row(0),
            row(4),
            row(8),
            u32x4(c as u32, word_13, s[14], s[15]),
        ];
        let mut x = input;
        for _ in 0..10 {
            quarter_round(&mut x, 0, 1, 2, 3);
            x[1] = i32x4_shuffle::<1, 2, 3, 0>(x[1], x[1]);
            x[2] = i32x4_shuffle::<2, 3, 0, 1>(x[2], x[2]);
            x[3] = i32x4_shuffle::<3, 0, 1, 2>(x[3], x[3]);
            quarter_round(&mut x, 0, 1, 2, 3);
            x[1] = i32x4_shuffle::<3, 0, 1, 2>(x[1], x[1]);
            x[2] = i32x4_shuffle::<2, 3, 0, 1>(x[2], x[2]);
            x[3] = i32x4_shuffle::<1, 2, 3, 0>(x[3], x[3]);
        }
        [
            u32x4_add(x[0], input[0]),
            u32x4_add(x[1], input[1]),
            u32x4_add(x[2], input[2]),
            u32x4_add(x[3], input[3]),
        ]
    }

    /// The next four key stream blocks, in byte order: element `4 * j + k` is bytes
    /// `16k..16k + 16` of block `j`.
    #[inline(always)]
    pub fn four_blocks(&mut self) -> [v128; 16] {
        self.four_blocks_with(|_| {})
    }

    /// As `four_blocks`, calling `between_rounds(i)` after double round `i` (0..10): other
    /// work placed there (scalar Poly1305) runs on the integer units while the rounds keep
    /// the vector units busy.
    #[inline(always)]
    pub fn four_blocks_with(&mut self, mut between_rounds: impl FnMut(usize)) -> [v128; 16] {
        let s = &self.state;
        let c = self.counter;
        self.counter = c.wrapping_add(4);
        let lane = |i: u64| c.wrapping_add(i);
        let mut x = [
            u32x4_splat(s[0]),
            u32x4_splat(s[1]),
            u32x4_splat(s[2]),
            u32x4_splat(s[3]),
            u32x4_splat(s[4]),
            u32x4_splat(s[5]),
            u32x4_splat(s[6]),
            u32x4_splat(s[7]),
            u32x4_splat(s[8]),
            u32x4_splat(s[9]),
            u32x4_splat(s[10]),
            u32x4_splat(s[11]),
            u32x4(
                lane(0) as u32,
                lane(1) as u32,
                lane(2) as u32,
                lane(3) as u32,
            ),
            u32x4_splat(s[13]),
            u32x4_splat(s[14]),
            u32x4_splat(s[15]),
        ];
        if self.wide_counter {
            x[13] = u32x4(
                (lane(0) >> 32) as u32,
                (lane(1) >> 32) as u32,
                (lane(2) >> 32) as u32,
                (lane(3) >> 32) as u32,
            );
        }
        // The input is rebuilt for the final addition rather than kept: sixteen more live
        // vectors would spill in engines that give WASM sixteen SIMD registers.
        let (counter_low, counter_high) = (x[12], x[13]);
        for round in 0..10 {
            quarter_round(&mut x, 0, 4, 8, 12);
            quarter_round(&mut x, 1, 5, 9, 13);
            quarter_round(&mut x, 2, 6, 10, 14);
            quarter_round(&mut x, 3, 7, 11, 15);
            quarter_round(&mut x, 0, 5, 10, 15);
            quarter_round(&mut x, 1, 6, 11, 12);
            quarter_round(&mut x, 2, 7, 8, 13);
            quarter_round(&mut x, 3, 4, 9, 14);
            between_rounds(round);
        }
        for (i, word) in x.iter_mut().enumerate() {
            let start = match i {
                12 => counter_low,
                13 => counter_high,
                _ => u32x4_splat(s[i]),
            };
            *word = u32x4_add(*word, start);
        }
        let mut out = [u32x4_splat(0); 16];
        for row in 0..4 {
            let [b0, b1, b2, b3] =
                transpose(x[4 * row], x[4 * row + 1], x[4 * row + 2], x[4 * row + 3]);
            out[row] = b0;
            out[4 + row] = b1;
            out[8 + row] = b2;
            out[12 + row] = b3;
        }
        out
    }
}

#[inline(always)]
fn rotate_16(x: v128) -> v128 {
    i8x16_shuffle::<2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13>(x, x)
}

#[inline(always)]
fn rotate<const N: u32>(x: v128) -> v128 {
    v128_or(u32x4_shl(x, N), u32x4_shr(x, 32 - N))
}

#[inline(always)]
fn quarter_round<const N: usize>(x: &mut [v128; N], a: usize, b: usize, c: usize, d: usize) {
    x[a] = u32x4_add(x[a], x[b]);
    x[d] = rotate_16(v128_xor(x[d], x[a]));
    x[c] = u32x4_add(x[c], x[d]);
    x[b] = rotate::<12>(v128_xor(x[b], x[c]));
    x[a] = u32x4_add(x[a], x[b]);
    x[d] = rotate::<8>(v128_xor(x[d], x[a]));
    x[c] = u32x4_add(x[c], x[d]);
    x[b] = rotate::<7>(v128_xor(x[b], x[c]));
}

/// Four words of four blocks (`a` holds word i of blocks 0-3, `b` word i+1, …) to four
/// blocks' words i..i+4 each.
#[inline(always)]
fn transpose(a: v128, b: v128, c: v128, d: v128) -> [v128; 4] {
    let ab_low = i32x4_shuffle::<0, 4, 1, 5>(a, b);
    let cd_low = i32x4_shuffle::<0, 4, 1, 5>(c, d);
    let ab_high = i32x4_shuffle::<2, 6, 3, 7>(a, b);
    let cd_high = i32x4_shuffle::<2, 6, 3, 7>(c, d);
    [
        i64x2_shuffle::<0, 2>(ab_low, cd_low),
        i64x2_shuffle::<1, 3>(ab_low, cd_low),
        i64x2_shuffle::<0, 2>(ab_high, cd_high),
        i64x2_shuffle::<1, 3>(ab_high, cd_high),
    ]
}

/// XORs `stream` (16 bytes an element) into `data`, which is at most that long.
#[inline(always)]
pub(crate) fn xor_stream(stream: &[v128], data: &mut [u8]) {
    debug_assert!(data.len() <= 16 * stream.len());
    let whole = data.len() / 16;
    let mut chunks = data.chunks_exact_mut(16);
    for (chunk, word) in (&mut chunks).zip(stream.iter()) {
        // SAFETY: `chunk` is 16 bytes; v128 loads and stores need no alignment.
        unsafe {
            let at = chunk.as_mut_ptr() as *mut v128;
            at.write_unaligned(v128_xor(at.read_unaligned(), *word));
        }
    }
    let rest = chunks.into_remainder();
    if let Some(word) = stream.get(whole) {
        let mut bytes = [0u8; 16];
        // SAFETY: one 16-byte store into a 16-byte buffer.
        unsafe { (bytes.as_mut_ptr() as *mut v128).write_unaligned(*word) };
        for (b, s) in rest.iter_mut().zip(bytes.iter()) {
            *b ^= s;
        }
    }
}
