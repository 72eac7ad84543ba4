//! sntrup761 against PQClean's published known answer (its last sntrup761, from
//! supercop-20210604, before the scheme left PQClean in commit b0fc0c09): PQClean's test/crypto_kem/nistkat.c
//! seeds NIST's AES-256 CTR_DRBG with the bytes 0..47, draws a 48-byte seed, reseeds with it,
//! then prints `count = 0`, the seed, pk, sk, ct and ss; the SHA-256 of that text is the
//! `nistkat-sha256` in crypto_kem/sntrup761/META.yml. Replaying the same DRBG through the
//! core's randomness interface must give the same text.

mod kat_file;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes256;
use kat_file::to_hex;
use revtun_core::{kem, sntrup761, KemKeyPair};
use sha2::{Digest, Sha256};

/// NIST's AES-256 CTR_DRBG without derivation function, as the PQC KAT generators use it.
struct NistDrbg {
    key: [u8; 32],
    v: [u8; 16],
}

impl NistDrbg {
    fn new(entropy: &[u8; 48]) -> Self {
        let mut drbg = NistDrbg {
            key: [0; 32],
            v: [0; 16],
        };
        drbg.update(Some(entropy));
        drbg
    }

    fn next_block(&mut self) -> [u8; 16] {
        for byte in self.v.iter_mut().rev() {
            *byte = byte.wrapping_add(1);
            if *byte != 0 {
                break;
            }
        }
        let mut block = aes::Block::clone_from_slice(&self.v);
        Aes256::new_from_slice(&self.key)
            .unwrap()
            .encrypt_block(&mut block);
        block.into()
    }

    fn update(&mut self, provided: Option<&[u8; 48]>) {
        let mut temp = [0u8; 48];
        for chunk in temp.chunks_exact_mut(16) {
            chunk.copy_from_slice(&self.next_block());
        }
        if let Some(data) = provided {
            for (t, d) in temp.iter_mut().zip(data.iter()) {
                *t ^= d;
            }
        }
        self.key.copy_from_slice(&temp[..32]);
        self.v.copy_from_slice(&temp[32..]);
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(16) {
            let block = self.next_block();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        self.update(None);
    }
}

impl sntrup761::RandomSource for NistDrbg {
    fn fill(&mut self, out: &mut [u8]) {
        NistDrbg::fill(self, out)
    }
}

#[test]
fn pqclean_nist_kat() {
    let mut entropy = [0u8; 48];
    for (i, b) in entropy.iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut seed = [0u8; 48];
    NistDrbg::new(&entropy).fill(&mut seed);
    let mut drbg = NistDrbg::new(&seed);
    let (pk, sk) = sntrup761::keygen(&mut drbg);
    let (ct, ss) = sntrup761::encapsulate(&pk, &mut drbg);
    assert_eq!(sntrup761::decapsulate(&sk, &ct), ss);
    let text = format!(
        "count = 0\nseed = {}\npk = {}\nsk = {}\nct = {}\nss = {}\n",
        to_hex(&seed),
        to_hex(&pk),
        to_hex(&sk),
        to_hex(&ct),
        to_hex(&ss)
    );
    assert_eq!(
        to_hex(&Sha256::digest(text.as_bytes())).to_lowercase(),
        "afc42c3a5b10f4ef69654250097ebda9b9564570f4086744b24a6daf2bd1f89a"
    );
}

#[test]
fn modified_ciphertext_gets_the_rejection_key() {
    let pair = KemKeyPair::generate("sntrup761", &[3u8; 32]).unwrap();
    let (mut ct, ss) = kem::encapsulate("sntrup761", pair.public_key(), &[5u8; 32]).unwrap();
    assert_eq!(pair.decapsulate(&ct).unwrap(), ss);
    ct[0] ^= 1;
    let rejected = pair.decapsulate(&ct).unwrap();
    assert_ne!(rejected, ss);
    // Deterministic: the same forged ciphertext gives the same key (ρ-derived, not random).
    assert_eq!(pair.decapsulate(&ct).unwrap(), rejected);
    assert_eq!(
        pair.decapsulate(&ct[..100]),
        Err(revtun_core::Error::Length)
    );
}
