//! The AEAD packet ciphers: aes128/256-gcm@openssh.com (RFC 5647 framing: the length field is
//! additional data, the 12-byte nonce is a 4-byte fixed field and a 64-bit counter bumped per
//! packet) and chacha20-poly1305@openssh.com (OpenSSH's PROTOCOL.chacha20poly1305: one key for
//! the length field, one for the payload and the Poly1305 key, the sequence number as nonce).
//! Native builds use ring's assembly; the portable build (WASM) uses RustCrypto, except for
//! ChaCha20-Poly1305 in the WASM SIMD build, which has kernels of its own (`simd128`).

use crate::Error;

pub const TAG_LEN: usize = 16;

pub(crate) struct Gcm {
    nonce: [u8; 12],
    key: GcmKey,
}

#[cfg(feature = "ring")]
type GcmKey = ring::aead::LessSafeKey;

#[cfg(not(feature = "ring"))]
enum GcmKey {
    Aes128(Box<aes_gcm::Aes128Gcm>),
    Aes256(Box<aes_gcm::Aes256Gcm>),
}

impl Gcm {
    pub fn new(key: &[u8], iv: &[u8]) -> Result<Gcm, Error> {
        let nonce: [u8; 12] = iv.try_into().map_err(|_| Error::KeyLength)?;
        #[cfg(feature = "ring")]
        let key = {
            let algorithm = match key.len() {
                16 => &ring::aead::AES_128_GCM,
                32 => &ring::aead::AES_256_GCM,
                _ => return Err(Error::KeyLength),
            };
            ring::aead::LessSafeKey::new(
                ring::aead::UnboundKey::new(algorithm, key).map_err(|_| Error::KeyLength)?,
            )
        };
        #[cfg(not(feature = "ring"))]
        let key = {
            use aes_gcm::KeyInit;
            match key.len() {
                16 => GcmKey::Aes128(Box::new(
                    aes_gcm::Aes128Gcm::new_from_slice(key).map_err(|_| Error::KeyLength)?,
                )),
                32 => GcmKey::Aes256(Box::new(
                    aes_gcm::Aes256Gcm::new_from_slice(key).map_err(|_| Error::KeyLength)?,
                )),
                _ => return Err(Error::KeyLength),
            }
        };
        Ok(Gcm { nonce, key })
    }

    /// The nonce for this packet; the invocation counter moves on for the next one.
    fn next_nonce(&mut self) -> [u8; 12] {
        let current = self.nonce;
        let mut counter = [0u8; 8];
        counter.copy_from_slice(&self.nonce[4..]);
        self.nonce[4..].copy_from_slice(&u64::from_be_bytes(counter).wrapping_add(1).to_be_bytes());
        current
    }

    /// `packet` = length(4) || body || tag(16).
    pub fn seal(&mut self, packet: &mut [u8]) -> Result<(), Error> {
        let nonce = self.next_nonce();
        let (aad, rest) = packet.split_at_mut(4);
        let body_len = rest.len().checked_sub(TAG_LEN).ok_or(Error::Length)?;
        let (body, tag_out) = rest.split_at_mut(body_len);
        #[cfg(feature = "ring")]
        {
            let tag = self
                .key
                .seal_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key(nonce),
                    ring::aead::Aad::from(&*aad),
                    body,
                )
                .map_err(|_| Error::Length)?;
            tag_out.copy_from_slice(tag.as_ref());
        }
        #[cfg(not(feature = "ring"))]
        {
            use aes_gcm::AeadInPlace;
            let n = aes_gcm::Nonce::from_slice(&nonce);
            let tag = match &self.key {
                GcmKey::Aes128(k) => k.encrypt_in_place_detached(n, aad, body),
                GcmKey::Aes256(k) => k.encrypt_in_place_detached(n, aad, body),
            }
            .map_err(|_| Error::Length)?;
            tag_out.copy_from_slice(&tag);
        }
        Ok(())
    }

    pub fn open(&mut self, packet: &mut [u8]) -> Result<(), Error> {
        let nonce = self.next_nonce();
        let (aad, rest) = packet.split_at_mut(4);
        if rest.len() < TAG_LEN {
            return Err(Error::Length);
        }
        #[cfg(feature = "ring")]
        {
            self.key
                .open_in_place(
                    ring::aead::Nonce::assume_unique_for_key(nonce),
                    ring::aead::Aad::from(&*aad),
                    rest,
                )
                .map_err(|_| Error::BadMac)?;
        }
        #[cfg(not(feature = "ring"))]
        {
            use aes_gcm::AeadInPlace;
            let n = aes_gcm::Nonce::from_slice(&nonce);
            let body_len = rest.len() - TAG_LEN;
            let (body, tag) = rest.split_at_mut(body_len);
            let tag = aes_gcm::Tag::from_slice(tag);
            match &self.key {
                GcmKey::Aes128(k) => k.decrypt_in_place_detached(n, aad, body, tag),
                GcmKey::Aes256(k) => k.decrypt_in_place_detached(n, aad, body, tag),
            }
            .map_err(|_| Error::BadMac)?;
        }
        Ok(())
    }
}

pub(crate) struct ChaChaPoly {
    #[cfg(feature = "ring")]
    seal: ring::aead::chacha20_poly1305_openssh::SealingKey,
    #[cfg(feature = "ring")]
    open: ring::aead::chacha20_poly1305_openssh::OpeningKey,
    #[cfg(not(feature = "ring"))]
    main_key: [u8; 32],
    #[cfg(not(feature = "ring"))]
    length_key: [u8; 32],
}

/// XORs OpenSSH's ChaCha20 key stream for `sequence` (the 64-bit big-endian nonce), from
/// block `first_block` on, into `data`.
#[cfg(all(
    not(feature = "ring"),
    not(all(target_arch = "wasm32", target_feature = "simd128"))
))]
fn chacha_xor(key: &[u8; 32], sequence: u32, first_block: u64, data: &mut [u8]) {
    use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
    let nonce = u64::from(sequence).to_be_bytes();
    let mut stream = chacha20::ChaCha20Legacy::new(key.into(), &nonce.into());
    stream.seek(64 * first_block);
    stream.apply_keystream(data);
}

// The WASM SIMD build: revtun-core's own simd128 ChaCha20 (RustCrypto has no WASM SIMD
// backend), with Poly1305 interleaved into it in one pass over the body.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn chacha_xor(key: &[u8; 32], sequence: u32, first_block: u64, data: &mut [u8]) {
    let mut stream = crate::simd128::ChaCha20::new_legacy(key, &u64::from(sequence).to_be_bytes());
    stream.seek_block(first_block);
    stream.apply(data);
}

impl ChaChaPoly {
    pub fn new(key: &[u8]) -> Result<ChaChaPoly, Error> {
        let key: &[u8; 64] = key.try_into().map_err(|_| Error::KeyLength)?;
        #[cfg(feature = "ring")]
        {
            Ok(ChaChaPoly {
                seal: ring::aead::chacha20_poly1305_openssh::SealingKey::new(key),
                open: ring::aead::chacha20_poly1305_openssh::OpeningKey::new(key),
            })
        }
        #[cfg(not(feature = "ring"))]
        {
            let mut main_key = [0u8; 32];
            let mut length_key = [0u8; 32];
            main_key.copy_from_slice(&key[..32]);
            length_key.copy_from_slice(&key[32..]);
            Ok(ChaChaPoly {
                main_key,
                length_key,
            })
        }
    }

    pub fn decrypt_length(&self, sequence: u32, head: &[u8]) -> Result<u32, Error> {
        let encrypted: [u8; 4] = head
            .get(..4)
            .ok_or(Error::Length)?
            .try_into()
            .map_err(|_| Error::Length)?;
        #[cfg(feature = "ring")]
        let plain = self.open.decrypt_packet_length(sequence, encrypted);
        #[cfg(not(feature = "ring"))]
        let plain = {
            let mut bytes = encrypted;
            chacha_xor(&self.length_key, sequence, 0, &mut bytes);
            bytes
        };
        Ok(u32::from_be_bytes(plain))
    }

    /// Encrypts the body of `data` (length field || body) and returns the tag over both.
    #[cfg(all(
        not(feature = "ring"),
        not(all(target_arch = "wasm32", target_feature = "simd128"))
    ))]
    fn seal_body(&self, sequence: u32, data: &mut [u8]) -> [u8; TAG_LEN] {
        // Block 0 makes the Poly1305 key, the body starts at block 1.
        chacha_xor(&self.main_key, sequence, 1, &mut data[4..]);
        self.poly_tag(sequence, data)
    }

    /// Checks `tag` over `data` (length field || body), then decrypts the body.
    #[cfg(all(
        not(feature = "ring"),
        not(all(target_arch = "wasm32", target_feature = "simd128"))
    ))]
    fn open_body(&self, sequence: u32, data: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), Error> {
        use subtle::ConstantTimeEq;
        if !bool::from(self.poly_tag(sequence, data).ct_eq(tag)) {
            return Err(Error::BadMac);
        }
        chacha_xor(&self.main_key, sequence, 1, &mut data[4..]);
        Ok(())
    }

    #[cfg(all(
        not(feature = "ring"),
        not(all(target_arch = "wasm32", target_feature = "simd128"))
    ))]
    fn poly_tag(&self, sequence: u32, data: &[u8]) -> [u8; TAG_LEN] {
        use poly1305::universal_hash::KeyInit;
        let mut poly_key = [0u8; 32];
        chacha_xor(&self.main_key, sequence, 0, &mut poly_key);
        poly1305::Poly1305::new((&poly_key).into())
            .compute_unpadded(data)
            .into()
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn seal_body(&self, sequence: u32, data: &mut [u8]) -> [u8; TAG_LEN] {
        crate::simd128::chacha20_poly1305::seal(&self.main_key, sequence, data)
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn open_body(&self, sequence: u32, data: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), Error> {
        crate::simd128::chacha20_poly1305::open(&self.main_key, sequence, data, tag)
    }

    /// `packet` = length(4) || body || tag(16).
    pub fn seal(&self, sequence: u32, packet: &mut [u8]) -> Result<(), Error> {
        let data_len = packet
            .len()
            .checked_sub(TAG_LEN)
            .filter(|&n| n >= 4)
            .ok_or(Error::Length)?;
        let (data, tag_out) = packet.split_at_mut(data_len);
        let tag_out: &mut [u8; TAG_LEN] = tag_out.try_into().map_err(|_| Error::Length)?;
        #[cfg(feature = "ring")]
        self.seal.seal_in_place(sequence, data, tag_out);
        #[cfg(not(feature = "ring"))]
        {
            chacha_xor(&self.length_key, sequence, 0, &mut data[..4]);
            *tag_out = self.seal_body(sequence, data);
        }
        Ok(())
    }

    /// Verifies, then decrypts the body and the length field in place.
    pub fn open(&self, sequence: u32, packet: &mut [u8]) -> Result<(), Error> {
        let data_len = packet
            .len()
            .checked_sub(TAG_LEN)
            .filter(|&n| n >= 4)
            .ok_or(Error::Length)?;
        let length = self.decrypt_length(sequence, packet)?;
        let (data, tag) = packet.split_at_mut(data_len);
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().map_err(|_| Error::Length)?;
        #[cfg(feature = "ring")]
        {
            self.open
                .open_in_place(sequence, data, tag)
                .map_err(|_| Error::BadMac)?;
        }
        #[cfg(not(feature = "ring"))]
        self.open_body(sequence, data, tag)?;
        data[..4].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }
}
