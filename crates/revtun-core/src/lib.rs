//! revtun's packet-crypto core: seals and opens SSH binary packets (RFC 4253 §6) in place,
//! one packet at a time with an explicit sequence number. It does no I/O and holds only key
//! state, so the same code serves the Node-API addon (`revtun-napi`) and the WASM module
//! (`revtun-wasm`).

mod aead;
mod algorithms;
mod cipher;
pub mod kem;
mod mac;
pub mod mlkem768;
mod modulus;
mod packet;
pub mod primitives;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
pub mod sntrup761;
pub mod umac;

pub use algorithms::{cipher_info, mac_info, CipherInfo, MacInfo, CIPHERS, MACS};
pub use kem::{kem_info, KemInfo, KemKeyPair, KEMS};
pub use packet::{for_each_packet, Opener, Sealer};

/// Why a packet operation failed. The numbers are the status codes the bindings return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The cipher or MAC name is not one the core implements.
    UnknownAlgorithm = 1,
    /// A key, IV or MAC key of the wrong size.
    KeyLength = 2,
    /// A packet too short, or not a whole number of cipher blocks.
    Length = 3,
    /// The tag did not verify: a corrupted or forged packet.
    BadMac = 4,
}

impl Error {
    /// Every failure, for the bindings' status table: TypeScript reads the numbers and
    /// messages from the loaded core instead of keeping a copy of its own.
    pub const ALL: [Error; 4] = [
        Error::UnknownAlgorithm,
        Error::KeyLength,
        Error::Length,
        Error::BadMac,
    ];

    /// The status number the bindings return (0 is success).
    pub fn status(self) -> u32 {
        self as u32
    }

    pub fn message(self) -> &'static str {
        match self {
            Error::UnknownAlgorithm => "unknown cipher or MAC",
            Error::KeyLength => "key, IV or MAC key has the wrong length",
            Error::Length => "packet length is not valid for this cipher",
            Error::BadMac => "message authentication code is invalid",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

/// What this build of the core is, for BuildInfo.
pub const BACKEND: &str = if cfg!(feature = "ring") {
    "ring+rustcrypto"
} else if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
    "rustcrypto+simd128"
} else {
    "rustcrypto"
};

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn statuses_are_distinct_nonzero_and_described() {
        for (i, e) in Error::ALL.iter().enumerate() {
            assert_ne!(e.status(), 0, "0 is success");
            assert!(!e.message().is_empty());
            assert!(Error::ALL[..i].iter().all(|o| o.status() != e.status()));
        }
    }
}
