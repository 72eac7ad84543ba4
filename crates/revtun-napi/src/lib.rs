//! The native CryptoProvider's packet half: revtun-core's sealers and openers as Node-API
//! classes. Packets are passed as the caller's own Uint8Array and transformed in place, so
//! nothing is copied across the boundary. Failures come back as status numbers (see
//! `revtun_core::Error`) rather than exceptions, because a bad MAC is an expected event on
//! the data path. The addon also carries the client side of GSSAPI for Kerberos logons
//! (`gssapi`), on the system's MIT krb5 library, opened only when asked for.

use napi::bindgen_prelude::{Uint32Array, Uint8Array};
use napi::{Error, Result, Status};
use napi_derive::napi;

// The native data plane (issue 15): a relay thread per handed-over connection.
pub mod data_plane;
pub mod gssapi;
mod host_openssl;
pub mod kem;
// setsockopt/getsockopt for the options Node's net.Socket lacks (buffer sizes, keep-alive timing, linger).
pub mod sockopt;

const CHACHA: &str = "chacha20-poly1305@openssh.com";

fn bad_keys(e: revtun_core::Error) -> Error {
    Error::new(Status::InvalidArg, e.to_string())
}

fn status(result: core::result::Result<(), revtun_core::Error>) -> u32 {
    match result {
        Ok(()) => 0,
        Err(e) => e.status(),
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

/// One failure status of the core and what it means.
#[napi(object)]
pub struct StatusSpec {
    pub status: u32,
    pub message: String,
}

/// The core's failure statuses: the table TypeScript turns status numbers into messages with.
#[napi]
pub fn statuses() -> Vec<StatusSpec> {
    revtun_core::Error::ALL
        .iter()
        .map(|e| StatusSpec {
            status: e.status(),
            message: e.message().into(),
        })
        .collect()
}

/// The core's backend and version, for BuildInfo.
#[napi]
pub fn build_info() -> String {
    let chacha = if host_openssl::available() {
        ", chacha20-poly1305 on the host's OpenSSL"
    } else {
        ""
    };
    format!(
        "revtun-core {} ({}{chacha})",
        env!("CARGO_PKG_VERSION"),
        revtun_core::BACKEND
    )
}

/// ChaCha20-Poly1305 keys on the host's OpenSSL when it has them, else nothing.
fn host_chacha(cipher: &str, key: &[u8]) -> Result<Option<host_openssl::ChaChaPoly>> {
    if cipher != CHACHA {
        return Ok(None);
    }
    host_openssl::ChaChaPoly::new(key)
        .transpose()
        .map_err(bad_keys)
}

enum SealKeys {
    Core(revtun_core::Sealer),
    Host(host_openssl::ChaChaPoly),
}

enum OpenKeys {
    Core(revtun_core::Opener),
    Host(host_openssl::ChaChaPoly),
}

#[napi]
pub struct NativeSealer {
    keys: SealKeys,
    block_size: u32,
    mac_length: u32,
    length_outside_padding: bool,
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
        // The core checks every name and size; the host's ChaCha20 may then take over.
        let core = revtun_core::Sealer::new(&cipher, mac.as_deref(), &key, &iv, &mac_key)
            .map_err(bad_keys)?;
        let block_size = core.block_size() as u32;
        let mac_length = core.mac_len() as u32;
        let length_outside_padding = core.length_outside_padding();
        let keys = match host_chacha(&cipher, &key)? {
            Some(host) => SealKeys::Host(host),
            None => SealKeys::Core(core),
        };
        Ok(NativeSealer {
            keys,
            block_size,
            mac_length,
            length_outside_padding,
        })
    }

    #[napi(getter)]
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    #[napi(getter)]
    pub fn mac_length(&self) -> u32 {
        self.mac_length
    }

    #[napi(getter)]
    pub fn length_outside_padding(&self) -> bool {
        self.length_outside_padding
    }

    /// Seals one packet in place; returns 0 or a status number.
    #[napi]
    pub fn seal(&mut self, sequence: u32, mut packet: Uint8Array) -> u32 {
        status(match &mut self.keys {
            SealKeys::Core(core) => core.seal(sequence, &mut packet),
            SealKeys::Host(host) => host.seal(sequence, &mut packet),
        })
    }

    /// Seals packets laid back to back in `buffer` (packet `i` ends at `ends[i]`), sequence
    /// numbers counting up from `first_sequence`: one crossing for a burst.
    #[napi]
    pub fn seal_batch(
        &mut self,
        first_sequence: u32,
        mut buffer: Uint8Array,
        ends: Uint32Array,
    ) -> u32 {
        status(match &mut self.keys {
            SealKeys::Core(core) => core.seal_batch(first_sequence, &mut buffer, &ends),
            SealKeys::Host(host) => revtun_core::for_each_packet(
                first_sequence,
                &mut buffer,
                &ends,
                |sequence, packet| host.seal(sequence, packet),
            ),
        })
    }
}

#[napi]
pub struct NativeOpener {
    keys: OpenKeys,
    block_size: u32,
    mac_length: u32,
    length_field_bytes: u32,
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
        let core = revtun_core::Opener::new(&cipher, mac.as_deref(), &key, &iv, &mac_key)
            .map_err(bad_keys)?;
        let block_size = core.block_size() as u32;
        let mac_length = core.mac_len() as u32;
        let length_field_bytes = core.length_field_bytes() as u32;
        let keys = match host_chacha(&cipher, &key)? {
            Some(host) => OpenKeys::Host(host),
            None => OpenKeys::Core(core),
        };
        Ok(NativeOpener {
            keys,
            block_size,
            mac_length,
            length_field_bytes,
        })
    }

    #[napi(getter)]
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    #[napi(getter)]
    pub fn mac_length(&self) -> u32 {
        self.mac_length
    }

    #[napi(getter)]
    pub fn length_field_bytes(&self) -> u32 {
        self.length_field_bytes
    }

    /// The packet length, or -status on failure.
    #[napi]
    pub fn decrypt_length(&mut self, sequence: u32, mut head: Uint8Array) -> i64 {
        let length = match &mut self.keys {
            OpenKeys::Core(core) => core.decrypt_length(sequence, &mut head),
            OpenKeys::Host(host) => host.decrypt_length(sequence, &head),
        };
        match length {
            Ok(length) => i64::from(length),
            Err(e) => -i64::from(e.status()),
        }
    }

    /// Verifies and decrypts one packet in place; returns 0 or a status number.
    #[napi]
    pub fn open(&mut self, sequence: u32, mut packet: Uint8Array) -> u32 {
        status(match &mut self.keys {
            OpenKeys::Core(core) => core.open(sequence, &mut packet),
            OpenKeys::Host(host) => host.open(sequence, &mut packet),
        })
    }
}
