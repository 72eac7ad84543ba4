//! The key encapsulation mechanisms of the hybrid SSH key exchanges, by the name of the KEM:
//! `mlkem768` (FIPS 203, for mlkem768x25519-sha256) and `sntrup761` (for
//! sntrup761x25519-sha512). The client side needs a key pair and decapsulation; encapsulation
//! is here for the known-answer and round-trip tests.
//!
//! Randomness is an argument (a seed the caller drew from its CSPRNG), so that the core stays
//! deterministic: for ML-KEM-768 the seed is d ‖ z of FIPS 203 §6.1; for sntrup761 a 32-byte
//! seed expanded by SHAKE256 into the byte stream the algorithm draws from.

use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::Shake256;

use crate::{mlkem768, sntrup761, Error};

/// One KEM's sizes, as the key exchange checks them on the wire.
#[derive(Debug, Clone, Copy)]
pub struct KemInfo {
    pub name: &'static str,
    pub seed_len: usize,
    pub public_key_len: usize,
    pub ciphertext_len: usize,
    pub shared_secret_len: usize,
}

pub const KEMS: &[KemInfo] = &[
    KemInfo {
        name: "mlkem768",
        seed_len: 64,
        public_key_len: mlkem768::PUBLIC_KEY_BYTES,
        ciphertext_len: mlkem768::CIPHERTEXT_BYTES,
        shared_secret_len: mlkem768::SHARED_SECRET_BYTES,
    },
    KemInfo {
        name: "sntrup761",
        seed_len: 32,
        public_key_len: sntrup761::PUBLIC_KEY_BYTES,
        ciphertext_len: sntrup761::CIPHERTEXT_BYTES,
        shared_secret_len: sntrup761::SHARED_SECRET_BYTES,
    },
];

pub fn kem_info(name: &str) -> Option<&'static KemInfo> {
    KEMS.iter().find(|k| k.name == name)
}

/// The random byte stream of sntrup761, deterministic in its seed.
struct ShakeStream(sha3::Shake256Reader);

impl ShakeStream {
    fn new(seed: &[u8]) -> Self {
        let mut xof = Shake256::default();
        xof.update(b"revtun sntrup761 randomness");
        xof.update(seed);
        ShakeStream(xof.finalize_xof())
    }
}

impl sntrup761::RandomSource for ShakeStream {
    fn fill(&mut self, out: &mut [u8]) {
        self.0.read(out);
    }
}

/// An ephemeral KEM key pair; the secret key is wiped when it is dropped.
pub struct KemKeyPair {
    info: &'static KemInfo,
    public_key: Vec<u8>,
    secret_key: Vec<u8>,
}

impl KemKeyPair {
    /// A key pair from `seed` (`seed_len` bytes of fresh randomness).
    pub fn generate(name: &str, seed: &[u8]) -> Result<Self, Error> {
        let info = kem_info(name).ok_or(Error::UnknownAlgorithm)?;
        if seed.len() != info.seed_len {
            return Err(Error::KeyLength);
        }
        let (public_key, secret_key) = match name {
            "mlkem768" => {
                let mut d = [0u8; 32];
                let mut z = [0u8; 32];
                d.copy_from_slice(&seed[..32]);
                z.copy_from_slice(&seed[32..]);
                let pair = mlkem768::keygen(&d, &z);
                wipe(&mut d);
                wipe(&mut z);
                pair
            }
            _ => sntrup761::keygen(&mut ShakeStream::new(seed)),
        };
        Ok(KemKeyPair {
            info,
            public_key,
            secret_key,
        })
    }

    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// The shared secret of the peer's ciphertext. Only a ciphertext of the wrong length is an
    /// error: a forged one of the right length yields an unrelated secret (implicit rejection),
    /// which the signature over the exchange hash then fails.
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<[u8; 32], Error> {
        if ciphertext.len() != self.info.ciphertext_len {
            return Err(Error::Length);
        }
        Ok(match self.info.name {
            "mlkem768" => mlkem768::decapsulate(&self.secret_key, ciphertext),
            _ => sntrup761::decapsulate(&self.secret_key, ciphertext),
        })
    }
}

impl Drop for KemKeyPair {
    fn drop(&mut self) {
        wipe(&mut self.secret_key);
    }
}

/// Overwrites secret values (key bytes, polynomial coefficients) in a way the optimiser may not
/// drop, before their memory is freed. Copies the compiler made in registers or elsewhere are
/// beyond its reach; this limits what a later read of freed heap memory could find.
pub(crate) fn wipe<T: Copy + Default>(values: &mut [T]) {
    for v in values.iter_mut() {
        // SAFETY: `v` is a valid, aligned, exclusive reference.
        unsafe { core::ptr::write_volatile(v, T::default()) };
    }
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// Encapsulation to `public_key` with `randomness` (ML-KEM: the 32-byte message m; sntrup761:
/// a 32-byte seed, expanded as for key generation). Returns (ciphertext, shared secret).
pub fn encapsulate(
    name: &str,
    public_key: &[u8],
    randomness: &[u8],
) -> Result<(Vec<u8>, [u8; 32]), Error> {
    let info = kem_info(name).ok_or(Error::UnknownAlgorithm)?;
    if public_key.len() != info.public_key_len || randomness.len() != 32 {
        return Err(Error::Length);
    }
    Ok(match name {
        "mlkem768" => {
            let mut m = [0u8; 32];
            m.copy_from_slice(randomness);
            mlkem768::encapsulate(public_key, &m)
        }
        _ => sntrup761::encapsulate(public_key, &mut ShakeStream::new(randomness)),
    })
}
