//! The AEAD packet ciphers: aes128/256-gcm@openssh.com (RFC 5647 framing: the length field is
//! additional data, the 12-byte nonce is a 4-byte fixed field and a 64-bit counter bumped per
//! packet) and chacha20-poly1305@openssh.com (OpenSSH's PROTOCOL.chacha20poly1305: one key for
//! the length field, one for the payload and the Poly1305 key, the sequence number as nonce).
//! Native builds use ring's assembly; the portable build (WASM) uses RustCrypto.

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

#[cfg(not(feature = "ring"))]
fn chacha(key: &[u8; 32], sequence: u32) -> chacha20::ChaCha20Legacy {
    use chacha20::cipher::KeyIvInit;
    let nonce = u64::from(sequence).to_be_bytes();
    chacha20::ChaCha20Legacy::new(key.into(), &nonce.into())
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
            use chacha20::cipher::StreamCipher;
            let mut bytes = encrypted;
            chacha(&self.length_key, sequence).apply_keystream(&mut bytes);
            bytes
        };
        Ok(u32::from_be_bytes(plain))
    }

    #[cfg(not(feature = "ring"))]
    fn poly_tag(&self, sequence: u32, data: &[u8]) -> poly1305::Block {
        use chacha20::cipher::StreamCipher;
        use poly1305::universal_hash::KeyInit;
        let mut poly_key = [0u8; 32];
        chacha(&self.main_key, sequence).apply_keystream(&mut poly_key);
        poly1305::Poly1305::new((&poly_key).into()).compute_unpadded(data)
    }

    #[cfg(not(feature = "ring"))]
    fn crypt_body(&self, sequence: u32, body: &mut [u8]) {
        use chacha20::cipher::{StreamCipher, StreamCipherSeek};
        let mut stream = chacha(&self.main_key, sequence);
        stream.seek(64u64); // block 0 made the Poly1305 key
        stream.apply_keystream(body);
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
            use chacha20::cipher::StreamCipher;
            chacha(&self.length_key, sequence).apply_keystream(&mut data[..4]);
            self.crypt_body(sequence, &mut data[4..]);
            tag_out.copy_from_slice(&self.poly_tag(sequence, data));
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
        {
            use subtle::ConstantTimeEq;
            let expected = self.poly_tag(sequence, data);
            if !bool::from(expected.as_slice().ct_eq(tag)) {
                return Err(Error::BadMac);
            }
            self.crypt_body(sequence, &mut data[4..]);
        }
        data[..4].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }
}
