//! The non-AEAD packet ciphers (RFC 4253 §6.3, RFC 4344 CTR modes, RFC 4345 arcfour128/256).
//! Each direction keeps one keyed cipher for the life of its keys; CBC chains and CTR counters
//! continue from one packet to the next, as the RFCs require.

use cipher::generic_array::GenericArray;
use cipher::{BlockDecryptMut, BlockEncryptMut, BlockSizeUser, KeyInit, KeyIvInit, StreamCipher};

use crate::Error;

/// A keyed cipher state that transforms whole blocks in place.
pub(crate) trait Transform: Send {
    /// `data` is a whole number of cipher blocks (checked by the caller).
    fn apply(&mut self, data: &mut [u8]);
}

struct Stream<C>(C);

impl<C: StreamCipher + Send> Transform for Stream<C> {
    fn apply(&mut self, data: &mut [u8]) {
        self.0.apply_keystream(data);
    }
}

struct CbcEncrypt<C>(C);
struct CbcDecrypt<C>(C);

impl<C: BlockEncryptMut + Send> Transform for CbcEncrypt<C> {
    fn apply(&mut self, data: &mut [u8]) {
        for block in data.chunks_exact_mut(C::block_size()) {
            self.0
                .encrypt_block_mut(GenericArray::from_mut_slice(block));
        }
    }
}

impl<C: BlockDecryptMut + Send> Transform for CbcDecrypt<C> {
    fn apply(&mut self, data: &mut [u8]) {
        for block in data.chunks_exact_mut(C::block_size()) {
            self.0
                .decrypt_block_mut(GenericArray::from_mut_slice(block));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Encrypt,
    Decrypt,
}

fn ctr<C: KeyIvInit + StreamCipher + Send + 'static>(
    key: &[u8],
    iv: &[u8],
) -> Result<Box<dyn Transform>, Error> {
    Ok(Box::new(Stream(
        C::new_from_slices(key, iv).map_err(|_| Error::KeyLength)?,
    )))
}

fn cbc<C>(direction: Direction, key: &[u8], iv: &[u8]) -> Result<Box<dyn Transform>, Error>
where
    C: BlockEncryptMut
        + BlockDecryptMut
        + cipher::BlockCipher
        + KeyInit
        + BlockSizeUser
        + Send
        + 'static,
    cbc::Encryptor<C>: KeyIvInit,
    cbc::Decryptor<C>: KeyIvInit,
{
    Ok(match direction {
        Direction::Encrypt => Box::new(CbcEncrypt(
            cbc::Encryptor::<C>::new_from_slices(key, iv).map_err(|_| Error::KeyLength)?,
        )),
        Direction::Decrypt => Box::new(CbcDecrypt(
            cbc::Decryptor::<C>::new_from_slices(key, iv).map_err(|_| Error::KeyLength)?,
        )),
    })
}

fn arcfour<N>(key: &[u8], discard: usize) -> Result<Box<dyn Transform>, Error>
where
    N: cipher::ArrayLength<u8> + 'static,
    rc4::Rc4<N>: KeyInit + StreamCipher + Send,
{
    let mut rc4 = <rc4::Rc4<N> as KeyInit>::new_from_slice(key).map_err(|_| Error::KeyLength)?;
    let mut skipped = [0u8; 512];
    for _ in 0..discard / skipped.len() {
        rc4.apply_keystream(&mut skipped);
    }
    Ok(Box::new(Stream(rc4)))
}

/// The keyed state for `name`, or `None` when the core does not implement it.
pub(crate) fn new(
    name: &str,
    direction: Direction,
    key: &[u8],
    iv: &[u8],
) -> Option<Result<Box<dyn Transform>, Error>> {
    type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;
    type Aes192Ctr = ctr::Ctr128BE<aes::Aes192>;
    type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;
    type TdesCtr = ctr::Ctr64BE<des::TdesEde3>;
    Some(match name {
        "aes128-ctr" => ctr::<Aes128Ctr>(key, iv),
        "aes192-ctr" => ctr::<Aes192Ctr>(key, iv),
        "aes256-ctr" => ctr::<Aes256Ctr>(key, iv),
        "3des-ctr" => ctr::<TdesCtr>(key, iv),
        "aes128-cbc" => cbc::<aes::Aes128>(direction, key, iv),
        "aes192-cbc" => cbc::<aes::Aes192>(direction, key, iv),
        "aes256-cbc" | "rijndael-cbc@lysator.liu.se" => cbc::<aes::Aes256>(direction, key, iv),
        "3des-cbc" => cbc::<des::TdesEde3>(direction, key, iv),
        "blowfish-cbc" => cbc::<blowfish::Blowfish>(direction, key, iv),
        "cast128-cbc" => cbc::<cast5::Cast5>(direction, key, iv),
        "arcfour" => arcfour::<cipher::consts::U16>(key, 0),
        "arcfour128" => arcfour::<cipher::consts::U16>(key, 1536),
        "arcfour256" => arcfour::<cipher::consts::U32>(key, 1536),
        _ => return None,
    })
}
