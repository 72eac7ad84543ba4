//! ChaCha20 (RFC 8439 §2.4) and Poly1305 (§2.5) as plain functions, so that known-answer
//! tests reach whichever implementation this build seals packets with: the simd128 kernels in
//! the WASM SIMD build, RustCrypto's everywhere else. The WASM module exports them for the
//! TypeScript tests; packets never go through here.

use crate::Error;

/// XORs RFC 8439's ChaCha20 key stream (96-bit nonce, 32-bit block counter starting at
/// `counter`) into `data`. Refuses data that would need block 2^32 - 1 or beyond: RustCrypto's
/// ChaCha20 stops one block short of the counter's end, and both builds keep the same limit.
pub fn chacha20_xor(
    key: &[u8; 32],
    nonce: &[u8; 12],
    counter: u32,
    data: &mut [u8],
) -> Result<(), Error> {
    let blocks = (data.len() as u64 + 63) / 64;
    if u64::from(counter) + blocks > u64::from(u32::MAX) {
        return Err(Error::Length);
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    crate::simd128::ChaCha20::new_ietf(key, nonce, counter).apply(data);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
        let mut stream = chacha20::ChaCha20::new(key.into(), nonce.into());
        stream.seek(64 * u64::from(counter));
        stream.apply_keystream(data);
    }
    Ok(())
}

/// The Poly1305 tag of `message` under the one-time key `key` (r || s).
pub fn poly1305(key: &[u8; 32], message: &[u8]) -> [u8; 16] {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return crate::simd128::Poly1305::compute(key, message);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        use poly1305::universal_hash::KeyInit;
        poly1305::Poly1305::new(key.into())
            .compute_unpadded(message)
            .into()
    }
}
