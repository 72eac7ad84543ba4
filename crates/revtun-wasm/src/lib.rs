//! revtun-core as a WASM module with a plain C-style ABI, so it loads with nothing but
//! `WebAssembly.instantiate` in Node, Deno and Bun (no wasm-bindgen glue).
//!
//! Memory protocol: the host asks for buffers with `revtun_alloc`, writes arguments and packets
//! into them, and calls the functions below with (pointer, length) pairs. Sealers and openers
//! are returned as opaque handles (their addresses) and released with `revtun_*_free`.
//! Failures are the status numbers of `revtun_core::Error`.

use std::sync::atomic::{AtomicU32, Ordering};

mod kem;

use revtun_core::{Error, Opener, Sealer};

static LAST_STATUS: AtomicU32 = AtomicU32::new(0);

/// # Safety
/// `ptr` must point to `len` readable bytes owned by the host for the duration of the call.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        &[]
    } else {
        core::slice::from_raw_parts(ptr, len)
    }
}

/// # Safety
/// As `bytes`, and writable.
unsafe fn bytes_mut<'a>(ptr: *mut u8, len: usize) -> &'a mut [u8] {
    if len == 0 {
        &mut []
    } else {
        core::slice::from_raw_parts_mut(ptr, len)
    }
}

fn status(result: Result<(), Error>) -> u32 {
    match result {
        Ok(()) => 0,
        Err(e) => e.status(),
    }
}

/// A buffer of `len` bytes in module memory, for the host to fill.
#[no_mangle]
pub extern "C" fn revtun_alloc(len: usize) -> *mut u8 {
    let mut buffer = Vec::<u8>::with_capacity(len.max(1));
    let ptr = buffer.as_mut_ptr();
    core::mem::forget(buffer);
    ptr
}

/// # Safety
/// `ptr` and `len` must come from one `revtun_alloc` call, freed once.
#[no_mangle]
pub unsafe extern "C" fn revtun_free(ptr: *mut u8, len: usize) {
    drop(Vec::from_raw_parts(ptr, 0, len.max(1)));
}

/// The status of the last failed `revtun_sealer_new` / `revtun_opener_new`.
#[no_mangle]
pub extern "C" fn revtun_last_status() -> u32 {
    LAST_STATUS.load(Ordering::Relaxed)
}

/// The algorithm tables as text, one `name key_len iv_len block_size aead` (cipher) or
/// `name key_len tag_len etm` (MAC) per line; `which` is 0 for ciphers, 1 for MACs, 2 (or any
/// other number) for the build description, 3 for the failure statuses (`status message`).
/// Writes at most `capacity` bytes to `out` and returns the full length.
///
/// # Safety
/// `out` must point to `capacity` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn revtun_describe(which: u32, out: *mut u8, capacity: usize) -> usize {
    let text = match which {
        0 => revtun_core::CIPHERS
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} {} {}\n",
                    c.name,
                    c.key_len,
                    c.iv_len,
                    c.block_size,
                    u8::from(c.aead)
                )
            })
            .collect::<String>(),
        1 => revtun_core::MACS
            .iter()
            .map(|m| {
                format!(
                    "{} {} {} {}\n",
                    m.name,
                    m.key_len,
                    m.tag_len,
                    u8::from(m.etm)
                )
            })
            .collect(),
        3 => revtun_core::Error::ALL
            .iter()
            .map(|e| format!("{} {}\n", e.status(), e.message()))
            .collect(),
        _ => format!(
            "revtun-core {} ({}, wasm32)",
            env!("CARGO_PKG_VERSION"),
            revtun_core::BACKEND
        ),
    };
    let n = text.len().min(capacity);
    bytes_mut(out, n).copy_from_slice(&text.as_bytes()[..n]);
    text.len()
}

struct KeyArgs<'a> {
    cipher: &'a str,
    mac: Option<&'a str>,
    key: &'a [u8],
    iv: &'a [u8],
    mac_key: &'a [u8],
}

/// Reads the five (pointer, length) pairs at `pairs` (ten little-endian u32: cipher name, MAC
/// name, key, IV, MAC key).
///
/// # Safety
/// `pairs` must point to 40 readable bytes, and each pair to readable host-written memory.
unsafe fn key_args<'a>(pairs: *const u8) -> Result<KeyArgs<'a>, Error> {
    let words: Vec<usize> = bytes(pairs, 40)
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let part = |i: usize| bytes(words[2 * i] as *const u8, words[2 * i + 1]);
    let cipher = core::str::from_utf8(part(0)).map_err(|_| Error::UnknownAlgorithm)?;
    let mac = core::str::from_utf8(part(1)).map_err(|_| Error::UnknownAlgorithm)?;
    Ok(KeyArgs {
        cipher,
        mac: if mac.is_empty() { None } else { Some(mac) },
        key: part(2),
        iv: part(3),
        mac_key: part(4),
    })
}

fn handle<T>(result: Result<T, Error>) -> usize {
    match result {
        Ok(value) => Box::into_raw(Box::new(value)) as usize,
        Err(e) => {
            LAST_STATUS.store(e.status(), Ordering::Relaxed);
            0
        }
    }
}

/// A sealer handle, or 0 (see `revtun_last_status`). An empty MAC name means none (AEAD).
///
/// # Safety
/// As `key_args`.
#[no_mangle]
pub unsafe extern "C" fn revtun_sealer_new(pairs: *const u8) -> usize {
    handle(key_args(pairs).and_then(|a| Sealer::new(a.cipher, a.mac, a.key, a.iv, a.mac_key)))
}

/// As `revtun_sealer_new`, for the receiving direction.
///
/// # Safety
/// As `key_args`.
#[no_mangle]
pub unsafe extern "C" fn revtun_opener_new(pairs: *const u8) -> usize {
    handle(key_args(pairs).and_then(|a| Opener::new(a.cipher, a.mac, a.key, a.iv, a.mac_key)))
}

/// Block size, MAC length and layout flags packed for the host: bits 0-7 block size, 8-15 MAC
/// length, bit 16 length-outside-padding (sealer) / 16-23 length field bytes (opener).
///
/// # Safety
/// `sealer` must be a live handle from `revtun_sealer_new`.
#[no_mangle]
pub unsafe extern "C" fn revtun_sealer_layout(sealer: usize) -> u32 {
    let s = &*(sealer as *const Sealer);
    s.block_size() as u32 | (s.mac_len() as u32) << 8 | u32::from(s.length_outside_padding()) << 16
}

/// # Safety
/// `opener` must be a live handle from `revtun_opener_new`.
#[no_mangle]
pub unsafe extern "C" fn revtun_opener_layout(opener: usize) -> u32 {
    let o = &*(opener as *const Opener);
    o.block_size() as u32 | (o.mac_len() as u32) << 8 | (o.length_field_bytes() as u32) << 16
}

/// # Safety
/// A live sealer handle and `len` writable bytes at `packet`.
#[no_mangle]
pub unsafe extern "C" fn revtun_seal(
    sealer: usize,
    sequence: u32,
    packet: *mut u8,
    len: usize,
) -> u32 {
    status((*(sealer as *mut Sealer)).seal(sequence, bytes_mut(packet, len)))
}

/// Seals `count` packets laid back to back in `len` bytes at `packet`; packet `i` ends at the
/// `i`-th little-endian u32 at `ends`. Sequence numbers count up from `sequence`.
///
/// # Safety
/// A live sealer handle, `len` writable bytes at `packet` and `4 * count` readable at `ends`.
#[no_mangle]
pub unsafe extern "C" fn revtun_seal_batch(
    sealer: usize,
    sequence: u32,
    packet: *mut u8,
    len: usize,
    ends: *const u8,
    count: usize,
) -> u32 {
    let ends: Vec<u32> = bytes(ends, 4 * count)
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    status((*(sealer as *mut Sealer)).seal_batch(sequence, bytes_mut(packet, len), &ends))
}

/// The packet length (as a non-negative number), or minus the status.
///
/// # Safety
/// A live opener handle and `len` writable bytes at `head`.
#[no_mangle]
pub unsafe extern "C" fn revtun_decrypt_length(
    opener: usize,
    sequence: u32,
    head: *mut u8,
    len: usize,
) -> f64 {
    match (*(opener as *mut Opener)).decrypt_length(sequence, bytes_mut(head, len)) {
        Ok(length) => f64::from(length),
        Err(e) => -f64::from(e.status()),
    }
}

/// # Safety
/// A live opener handle and `len` writable bytes at `packet`.
#[no_mangle]
pub unsafe extern "C" fn revtun_open(
    opener: usize,
    sequence: u32,
    packet: *mut u8,
    len: usize,
) -> u32 {
    status((*(opener as *mut Opener)).open(sequence, bytes_mut(packet, len)))
}

/// # Safety
/// A live handle from `revtun_sealer_new`, freed once.
#[no_mangle]
pub unsafe extern "C" fn revtun_sealer_free(sealer: usize) {
    drop(Box::from_raw(sealer as *mut Sealer));
}

/// # Safety
/// A live handle from `revtun_opener_new`, freed once.
#[no_mangle]
pub unsafe extern "C" fn revtun_opener_free(opener: usize) {
    drop(Box::from_raw(opener as *mut Opener));
}

/// Test entry point: RFC 8439 ChaCha20 over `len` bytes at `data` in place, with the 32-byte
/// key at `key`, the 12-byte nonce at `nonce` and the initial block counter `counter`.
///
/// # Safety
/// 32 readable bytes at `key`, 12 at `nonce`, `len` writable at `data`.
#[no_mangle]
pub unsafe extern "C" fn revtun_chacha20_xor(
    key: *const u8,
    nonce: *const u8,
    counter: u32,
    data: *mut u8,
    len: usize,
) -> u32 {
    let key: &[u8; 32] = bytes(key, 32).try_into().expect("32 bytes");
    let nonce: &[u8; 12] = bytes(nonce, 12).try_into().expect("12 bytes");
    status(revtun_core::primitives::chacha20_xor(
        key,
        nonce,
        counter,
        bytes_mut(data, len),
    ))
}

/// Test entry point: the Poly1305 tag of `len` bytes at `message` under the 32-byte key at
/// `key`, written to the 16 bytes at `tag`.
///
/// # Safety
/// 32 readable bytes at `key`, `len` at `message`, 16 writable at `tag`.
#[no_mangle]
pub unsafe extern "C" fn revtun_poly1305(
    key: *const u8,
    message: *const u8,
    len: usize,
    tag: *mut u8,
) {
    let key: &[u8; 32] = bytes(key, 32).try_into().expect("32 bytes");
    bytes_mut(tag, 16)
        .copy_from_slice(&revtun_core::primitives::poly1305(key, bytes(message, len)));
}
