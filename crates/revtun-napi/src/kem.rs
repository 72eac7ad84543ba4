//! The KEM half of the hybrid key exchanges (mlkem768x25519-sha256, sntrup761x25519-sha512)
//! as Node-API: an ephemeral key pair object whose secret key never leaves Rust, and, for the
//! known-answer tests, encapsulation. Seeds come from the caller's CSPRNG (see revtun_core::kem).

use napi::bindgen_prelude::{Buffer, Uint8Array};
use napi::{Error, Result, Status};
use napi_derive::napi;

fn failure(e: revtun_core::Error) -> Error {
    Error::new(Status::InvalidArg, e.to_string())
}

/// Sizes of one KEM, for the key exchange's length checks.
#[napi(object)]
pub struct KemSpec {
    pub name: String,
    pub seed_length: u32,
    pub public_key_length: u32,
    pub ciphertext_length: u32,
}

#[napi]
pub fn kems() -> Vec<KemSpec> {
    revtun_core::KEMS
        .iter()
        .map(|k| KemSpec {
            name: k.name.into(),
            seed_length: k.seed_len as u32,
            public_key_length: k.public_key_len as u32,
            ciphertext_length: k.ciphertext_len as u32,
        })
        .collect()
}

#[napi]
pub struct NativeKem {
    /// None once disposed (the core wiped the secret key as it dropped it).
    pair: Option<revtun_core::KemKeyPair>,
    public_key: Vec<u8>,
}

#[napi]
impl NativeKem {
    #[napi(constructor)]
    pub fn new(name: String, seed: Uint8Array) -> Result<Self> {
        let pair = revtun_core::KemKeyPair::generate(&name, &seed).map_err(failure)?;
        Ok(NativeKem {
            public_key: pair.public_key().to_vec(),
            pair: Some(pair),
        })
    }

    #[napi(getter)]
    pub fn public_key(&self) -> Buffer {
        self.public_key.clone().into()
    }

    /// The shared secret of `ciphertext`; an error for a ciphertext of the wrong length, or
    /// after dispose().
    #[napi]
    pub fn decapsulate(&self, ciphertext: Uint8Array) -> Result<Buffer> {
        let pair = self
            .pair
            .as_ref()
            .ok_or_else(|| Error::new(Status::GenericFailure, "the KEM key pair was disposed"))?;
        Ok(pair
            .decapsulate(&ciphertext)
            .map_err(failure)?
            .to_vec()
            .into())
    }

    /// Drops (and so wipes) the secret key now rather than when the object is collected.
    #[napi]
    pub fn dispose(&mut self) {
        self.pair = None;
    }
}

/// [ciphertext, shared secret] for `public_key` and 32 bytes of `randomness`.
#[napi]
pub fn kem_encapsulate(
    name: String,
    public_key: Uint8Array,
    randomness: Uint8Array,
) -> Result<Vec<Buffer>> {
    let (ciphertext, secret) =
        revtun_core::kem::encapsulate(&name, &public_key, &randomness).map_err(failure)?;
    Ok(vec![ciphertext.into(), secret.to_vec().into()])
}
