//! The native CryptoProvider's packet half: revtun-core's sealers and openers as Node-API
//! classes. Packets are passed as the caller's own Uint8Array and transformed in place, so
//! nothing is copied across the boundary. Failures come back as status numbers (see
//! `revtun_core::Error`) rather than exceptions, because a bad MAC is an expected event on
//! the data path.

use napi::bindgen_prelude::Uint8Array;
use napi::{Error, Result, Status};
use napi_derive::napi;

fn bad_keys(e: revtun_core::Error) -> Error {
    Error::new(Status::InvalidArg, e.to_string())
}

fn status(result: core::result::Result<(), revtun_core::Error>) -> u32 {
    match result {
        Ok(()) => 0,
        Err(e) => e as u32,
    }
}

/// Sizes of one cipher, as the key exchange and framing need them.
#[napi(object)]
pub struct CipherSpec {
    pub name: String,
    pub key_length: u32,
    pub iv_length: u32,
    pub block_size: u32,
    pub aead: bool,
}

/// Sizes of one MAC.
#[napi(object)]
pub struct MacSpec {
    pub name: String,
    pub key_length: u32,
    pub length: u32,
    pub etm: bool,
}

#[napi]
pub fn ciphers() -> Vec<CipherSpec> {
    revtun_core::CIPHERS
        .iter()
        .map(|c| CipherSpec {
            name: c.name.into(),
            key_length: c.key_len as u32,
            iv_length: c.iv_len as u32,
            block_size: c.block_size as u32,
            aead: c.aead,
        })
        .collect()
}

#[napi]
pub fn macs() -> Vec<MacSpec> {
    revtun_core::MACS
        .iter()
        .map(|m| MacSpec {
            name: m.name.into(),
            key_length: m.key_len as u32,
            length: m.tag_len as u32,
            etm: m.etm,
        })
        .collect()
}

/// The core's backend and version, for BuildInfo.
#[napi]
pub fn build_info() -> String {
    format!(
        "revtun-core {} ({})",
        env!("CARGO_PKG_VERSION"),
        revtun_core::BACKEND
    )
}

#[napi]
pub struct NativeSealer {
    inner: revtun_core::Sealer,
}

#[napi]
impl NativeSealer {
    #[napi(constructor)]
    pub fn new(
        cipher: String,
        mac: Option<String>,
        key: Uint8Array,
        iv: Uint8Array,
        mac_key: Uint8Array,
    ) -> Result<Self> {
        let inner = revtun_core::Sealer::new(&cipher, mac.as_deref(), &key, &iv, &mac_key)
            .map_err(bad_keys)?;
        Ok(NativeSealer { inner })
    }

    #[napi(getter)]
    pub fn block_size(&self) -> u32 {
        self.inner.block_size() as u32
    }

    #[napi(getter)]
    pub fn mac_length(&self) -> u32 {
        self.inner.mac_len() as u32
    }

    #[napi(getter)]
    pub fn length_outside_padding(&self) -> bool {
        self.inner.length_outside_padding()
    }

    /// Seals one packet in place; returns 0 or a status number.
    #[napi]
    pub fn seal(&mut self, sequence: u32, mut packet: Uint8Array) -> u32 {
        status(self.inner.seal(sequence, &mut packet))
    }
}

#[napi]
pub struct NativeOpener {
    inner: revtun_core::Opener,
}

#[napi]
impl NativeOpener {
    #[napi(constructor)]
    pub fn new(
        cipher: String,
        mac: Option<String>,
        key: Uint8Array,
        iv: Uint8Array,
        mac_key: Uint8Array,
    ) -> Result<Self> {
        let inner = revtun_core::Opener::new(&cipher, mac.as_deref(), &key, &iv, &mac_key)
            .map_err(bad_keys)?;
        Ok(NativeOpener { inner })
    }

    #[napi(getter)]
    pub fn block_size(&self) -> u32 {
        self.inner.block_size() as u32
    }

    #[napi(getter)]
    pub fn mac_length(&self) -> u32 {
        self.inner.mac_len() as u32
    }

    #[napi(getter)]
    pub fn length_field_bytes(&self) -> u32 {
        self.inner.length_field_bytes() as u32
    }

    /// The packet length, or -status on failure.
    #[napi]
    pub fn decrypt_length(&mut self, sequence: u32, mut head: Uint8Array) -> i64 {
        match self.inner.decrypt_length(sequence, &mut head) {
            Ok(length) => i64::from(length),
            Err(e) => -(e as i64),
        }
    }

    /// Verifies and decrypts one packet in place; returns 0 or a status number.
    #[napi]
    pub fn open(&mut self, sequence: u32, mut packet: Uint8Array) -> u32 {
        status(self.inner.open(sequence, &mut packet))
    }
}
