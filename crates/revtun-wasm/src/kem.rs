//! The KEMs of the hybrid key exchanges over the module's C-style ABI (see lib.rs for the
//! memory protocol). A key pair is an opaque handle holding the secret key; the host reads
//! the public key out with `revtun_kem_public_key` and decapsulates into a 32-byte buffer.

use revtun_core::{Error, KemKeyPair};

use crate::{bytes, bytes_mut, status, LAST_STATUS};
use std::sync::atomic::Ordering;

/// The KEM table as text, one `name seed_len public_key_len ciphertext_len` per line. Writes
/// at most `capacity` bytes and returns the full length.
///
/// # Safety
/// `out` must point to `capacity` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn revtun_kem_describe(out: *mut u8, capacity: usize) -> usize {
    let text: String = revtun_core::KEMS
        .iter()
        .map(|k| {
            format!(
                "{} {} {} {}\n",
                k.name, k.seed_len, k.public_key_len, k.ciphertext_len
            )
        })
        .collect();
    let n = text.len().min(capacity);
    bytes_mut(out, n).copy_from_slice(&text.as_bytes()[..n]);
    text.len()
}

/// A key pair handle from the KEM named by `name`/`name_len` and the seed, or 0 (see
/// `revtun_last_status`).
///
/// # Safety
/// Both (pointer, length) pairs must be readable host-written memory.
#[no_mangle]
pub unsafe extern "C" fn revtun_kem_new(
    name: *const u8,
    name_len: usize,
    seed: *const u8,
    seed_len: usize,
) -> usize {
    let result = core::str::from_utf8(bytes(name, name_len))
        .map_err(|_| Error::UnknownAlgorithm)
        .and_then(|name| KemKeyPair::generate(name, bytes(seed, seed_len)));
    match result {
        Ok(pair) => Box::into_raw(Box::new(pair)) as usize,
        Err(e) => {
            LAST_STATUS.store(e as u32, Ordering::Relaxed);
            0
        }
    }
}

/// Copies the public key to `out` (at most `capacity` bytes); returns its full length.
///
/// # Safety
/// A live handle from `revtun_kem_new` and `capacity` writable bytes at `out`.
#[no_mangle]
pub unsafe extern "C" fn revtun_kem_public_key(
    pair: usize,
    out: *mut u8,
    capacity: usize,
) -> usize {
    let public_key = (*(pair as *const KemKeyPair)).public_key();
    let n = public_key.len().min(capacity);
    bytes_mut(out, n).copy_from_slice(&public_key[..n]);
    public_key.len()
}

/// Decapsulates `len` bytes at `ciphertext` into the 32 bytes at `out`; 0 or a status.
///
/// # Safety
/// A live handle, `len` readable bytes at `ciphertext` and 32 writable at `out`.
#[no_mangle]
pub unsafe extern "C" fn revtun_kem_decapsulate(
    pair: usize,
    ciphertext: *const u8,
    len: usize,
    out: *mut u8,
) -> u32 {
    status(
        (*(pair as *const KemKeyPair))
            .decapsulate(bytes(ciphertext, len))
            .map(|secret| bytes_mut(out, 32).copy_from_slice(&secret)),
    )
}

/// # Safety
/// A live handle from `revtun_kem_new`, freed once.
#[no_mangle]
pub unsafe extern "C" fn revtun_kem_free(pair: usize) {
    drop(Box::from_raw(pair as *mut KemKeyPair));
}

/// Encapsulation for the known-answer tests: writes the ciphertext (`ciphertext_capacity`
/// bytes at most) then the 32-byte secret at `secret`; returns 0 or a status.
///
/// # Safety
/// Readable (pointer, length) pairs; writable `ciphertext_capacity` bytes and 32 bytes.
#[no_mangle]
pub unsafe extern "C" fn revtun_kem_encapsulate(
    name: *const u8,
    name_len: usize,
    public_key: *const u8,
    public_key_len: usize,
    randomness: *const u8,
    ciphertext: *mut u8,
    ciphertext_capacity: usize,
    secret: *mut u8,
) -> u32 {
    let result = core::str::from_utf8(bytes(name, name_len))
        .map_err(|_| Error::UnknownAlgorithm)
        .and_then(|name| {
            revtun_core::kem::encapsulate(
                name,
                bytes(public_key, public_key_len),
                bytes(randomness, 32),
            )
        });
    status(result.and_then(|(c, k)| {
        if c.len() > ciphertext_capacity {
            return Err(Error::Length);
        }
        bytes_mut(ciphertext, c.len()).copy_from_slice(&c);
        bytes_mut(secret, 32).copy_from_slice(&k);
        Ok(())
    }))
}
