//! chacha20-poly1305@openssh.com on the host process's OpenSSL, when the host exports it.
//!
//! Node links OpenSSL statically and exports its symbols to addons; its ChaCha20 and Poly1305
//! have AVX-512 code paths that run about three times faster here than ring's portable
//! construction (two passes, no AVX-512). The symbols are looked up at run time, so the same
//! addon still loads in a host without them (Bun ships BoringSSL, Deno none), where ring is
//! used instead. Wire format as in OpenSSH's PROTOCOL.chacha20poly1305: the length field is
//! encrypted with the second 32-byte key, the payload with the first from block 1, and the
//! Poly1305 key is block 0 of the first key's stream; the nonce is the sequence number.

use core::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

use revtun_core::Error;

type CipherCtx = c_void;
type MacCtx = c_void;

type CipherCtxNew = unsafe extern "C" fn() -> *mut CipherCtx;
type CipherCtxFree = unsafe extern "C" fn(*mut CipherCtx);
type CipherInit = unsafe extern "C" fn(
    *mut CipherCtx,
    *const c_void,
    *mut c_void,
    *const u8,
    *const u8,
    c_int,
) -> c_int;
type CipherUpdate =
    unsafe extern "C" fn(*mut CipherCtx, *mut u8, *mut c_int, *const u8, c_int) -> c_int;
type CipherGetter = unsafe extern "C" fn() -> *const c_void;
type MacFetch = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> *mut c_void;
type MacCtxNew = unsafe extern "C" fn(*mut c_void) -> *mut MacCtx;
type MacCtxFree = unsafe extern "C" fn(*mut MacCtx);
type MacInit = unsafe extern "C" fn(*mut MacCtx, *const u8, usize, *const c_void) -> c_int;
type MacUpdate = unsafe extern "C" fn(*mut MacCtx, *const u8, usize) -> c_int;
type MacFinal = unsafe extern "C" fn(*mut MacCtx, *mut u8, *mut usize, usize) -> c_int;

/// The OpenSSL 3 functions used, named as in OpenSSL.
#[allow(non_snake_case)]
struct Api {
    EVP_CIPHER_CTX_new: CipherCtxNew,
    EVP_CIPHER_CTX_free: CipherCtxFree,
    EVP_CipherInit_ex: CipherInit,
    EVP_CipherUpdate: CipherUpdate,
    EVP_chacha20: CipherGetter,
    EVP_MAC_CTX_new: MacCtxNew,
    EVP_MAC_CTX_free: MacCtxFree,
    EVP_MAC_init: MacInit,
    EVP_MAC_update: MacUpdate,
    EVP_MAC_final: MacFinal,
    /// The fetched POLY1305 implementation (an EVP_MAC *), shared by every context.
    poly1305: usize,
}

macro_rules! resolve {
    ($name:ident as $ty:ty) => {{
        // SAFETY: dlsym with a NUL-terminated name; a null result means "not exported".
        let symbol = unsafe {
            libc::dlsym(
                libc::RTLD_DEFAULT,
                concat!(stringify!($name), "\0").as_ptr().cast(),
            )
        };
        if symbol.is_null() {
            return None;
        }
        // SAFETY: the symbol is OpenSSL 3's function of this name, whose C signature `$ty`
        // spells out.
        unsafe { core::mem::transmute::<*mut c_void, $ty>(symbol) }
    }};
}

fn load() -> Option<Api> {
    let fetch = resolve!(EVP_MAC_fetch as MacFetch);
    // SAFETY: a valid algorithm name; null when this OpenSSL has no POLY1305 MAC.
    let poly1305 = unsafe {
        fetch(
            core::ptr::null_mut(),
            c"POLY1305".as_ptr(),
            core::ptr::null(),
        )
    };
    if poly1305.is_null() {
        return None;
    }
    Some(Api {
        EVP_CIPHER_CTX_new: resolve!(EVP_CIPHER_CTX_new as CipherCtxNew),
        EVP_CIPHER_CTX_free: resolve!(EVP_CIPHER_CTX_free as CipherCtxFree),
        EVP_CipherInit_ex: resolve!(EVP_CipherInit_ex as CipherInit),
        EVP_CipherUpdate: resolve!(EVP_CipherUpdate as CipherUpdate),
        EVP_chacha20: resolve!(EVP_chacha20 as CipherGetter),
        EVP_MAC_CTX_new: resolve!(EVP_MAC_CTX_new as MacCtxNew),
        EVP_MAC_CTX_free: resolve!(EVP_MAC_CTX_free as MacCtxFree),
        EVP_MAC_init: resolve!(EVP_MAC_init as MacInit),
        EVP_MAC_update: resolve!(EVP_MAC_update as MacUpdate),
        EVP_MAC_final: resolve!(EVP_MAC_final as MacFinal),
        poly1305: poly1305 as usize,
    })
}

fn api() -> Option<&'static Api> {
    static API: OnceLock<Option<Api>> = OnceLock::new();
    API.get_or_init(|| {
        if std::env::var_os("REVTUN_NO_HOST_OPENSSL").is_some() {
            None
        } else {
            load()
        }
    })
    .as_ref()
}

/// True when the host's OpenSSL can run chacha20-poly1305@openssh.com.
pub fn available() -> bool {
    api().is_some()
}

/// One direction's keys: a ChaCha20 context per 32-byte key and one Poly1305 context.
pub struct ChaChaPoly {
    api: &'static Api,
    main: *mut CipherCtx,
    length: *mut CipherCtx,
    mac: *mut MacCtx,
}

// SAFETY: the contexts are owned by this value alone and only used through `&mut self`.
unsafe impl Send for ChaChaPoly {}

const TAG: usize = 16;

impl ChaChaPoly {
    /// `None` when the host has no usable OpenSSL; an error for a wrong key size.
    pub fn new(key: &[u8]) -> Option<Result<ChaChaPoly, Error>> {
        let api = api()?;
        if key.len() != 64 {
            return Some(Err(Error::KeyLength));
        }
        // SAFETY: plain OpenSSL context constructors; each pointer is checked before use and
        // freed in Drop.
        unsafe {
            let state = ChaChaPoly {
                api,
                main: (api.EVP_CIPHER_CTX_new)(),
                length: (api.EVP_CIPHER_CTX_new)(),
                mac: (api.EVP_MAC_CTX_new)(api.poly1305 as *mut c_void),
            };
            if state.main.is_null() || state.length.is_null() || state.mac.is_null() {
                return None;
            }
            let zero_iv = [0u8; 16];
            let ok = (api.EVP_CipherInit_ex)(
                state.main,
                (api.EVP_chacha20)(),
                core::ptr::null_mut(),
                key.as_ptr(),
                zero_iv.as_ptr(),
                1,
            ) == 1
                && (api.EVP_CipherInit_ex)(
                    state.length,
                    (api.EVP_chacha20)(),
                    core::ptr::null_mut(),
                    key[32..].as_ptr(),
                    zero_iv.as_ptr(),
                    1,
                ) == 1;
            if !ok {
                return None;
            }
            Some(Ok(state))
        }
    }

    /// Starts `ctx`'s keystream at block 0 for nonce `sequence`.
    fn restart(&self, ctx: *mut CipherCtx, sequence: u32) -> Result<(), Error> {
        let mut iv = [0u8; 16];
        iv[12..].copy_from_slice(&sequence.to_be_bytes());
        // SAFETY: ctx is a live ChaCha20 context keyed in `new`; only the IV (counter and
        // nonce) changes.
        let ok = unsafe {
            (self.api.EVP_CipherInit_ex)(
                ctx,
                core::ptr::null(),
                core::ptr::null_mut(),
                core::ptr::null(),
                iv.as_ptr(),
                -1,
            ) == 1
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Length)
        }
    }

    /// XORs the next `data.len()` bytes of `ctx`'s keystream into `data`.
    fn xor(&self, ctx: *mut CipherCtx, data: &mut [u8]) -> Result<(), Error> {
        let len = c_int::try_from(data.len()).map_err(|_| Error::Length)?;
        let mut out_len: c_int = 0;
        // SAFETY: ctx is a live ChaCha20 context; OpenSSL allows in == out for stream ciphers
        // and writes exactly `len` bytes.
        let ok = unsafe {
            (self.api.EVP_CipherUpdate)(ctx, data.as_mut_ptr(), &mut out_len, data.as_ptr(), len)
                == 1
        };
        if ok && out_len == len {
            Ok(())
        } else {
            Err(Error::Length)
        }
    }

    /// Restarts the main keystream for `sequence` and takes its block 0, whose first 32 bytes
    /// are the Poly1305 key; the stream then stands at block 1, where the payload starts.
    fn poly_key(&self, sequence: u32) -> Result<[u8; 64], Error> {
        let mut block = [0u8; 64];
        self.restart(self.main, sequence)?;
        self.xor(self.main, &mut block)?;
        Ok(block)
    }

    fn tag(&self, poly_key: &[u8; 64], data: &[u8]) -> Result<[u8; TAG], Error> {
        let poly_key = &poly_key[..32];
        let mut tag = [0u8; TAG];
        let mut tag_len = 0usize;
        // SAFETY: mac is a live POLY1305 context; the key is 32 bytes, the output buffer 16.
        let ok = unsafe {
            (self.api.EVP_MAC_init)(
                self.mac,
                poly_key.as_ptr(),
                poly_key.len(),
                core::ptr::null(),
            ) == 1
                && (self.api.EVP_MAC_update)(self.mac, data.as_ptr(), data.len()) == 1
                && (self.api.EVP_MAC_final)(self.mac, tag.as_mut_ptr(), &mut tag_len, TAG) == 1
        };
        if ok && tag_len == TAG {
            Ok(tag)
        } else {
            Err(Error::Length)
        }
    }

    pub fn decrypt_length(&self, sequence: u32, head: &[u8]) -> Result<u32, Error> {
        let mut length = [0u8; 4];
        length.copy_from_slice(head.get(..4).ok_or(Error::Length)?);
        self.restart(self.length, sequence)?;
        self.xor(self.length, &mut length)?;
        Ok(u32::from_be_bytes(length))
    }

    /// `packet` = length(4) || body || tag(16).
    pub fn seal(&mut self, sequence: u32, packet: &mut [u8]) -> Result<(), Error> {
        let end = body_end(packet)?;
        self.restart(self.length, sequence)?;
        self.xor(self.length, &mut packet[..4])?;
        let poly_key = self.poly_key(sequence)?;
        self.xor(self.main, &mut packet[4..end])?;
        let tag = self.tag(&poly_key, &packet[..end])?;
        packet[end..].copy_from_slice(&tag);
        Ok(())
    }

    /// Verifies the tag, then decrypts the body and the length field in place.
    pub fn open(&mut self, sequence: u32, packet: &mut [u8]) -> Result<(), Error> {
        let end = body_end(packet)?;
        let poly_key = self.poly_key(sequence)?;
        let expected = self.tag(&poly_key, &packet[..end])?;
        let difference = expected
            .iter()
            .zip(&packet[end..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if difference != 0 {
            return Err(Error::BadMac);
        }
        let length = self.decrypt_length(sequence, packet)?;
        self.xor(self.main, &mut packet[4..end])?;
        packet[..4].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }
}

/// Where the tag starts in length(4) || body || tag(16).
fn body_end(packet: &[u8]) -> Result<usize, Error> {
    packet
        .len()
        .checked_sub(TAG)
        .filter(|&n| n >= 4)
        .ok_or(Error::Length)
}

impl Drop for ChaChaPoly {
    fn drop(&mut self) {
        // SAFETY: each context came from its constructor in `new` and is freed once.
        unsafe {
            (self.api.EVP_CIPHER_CTX_free)(self.main);
            (self.api.EVP_CIPHER_CTX_free)(self.length);
            (self.api.EVP_MAC_CTX_free)(self.mac);
        }
    }
}
