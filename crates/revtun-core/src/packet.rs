//! Sealing and opening one SSH binary packet in place (RFC 4253 §6) with an explicit sequence
//! number. A packet buffer is `uint32 length || padding length || payload || padding || tag`;
//! the caller frames and pads it, the core encrypts and authenticates it.

use subtle::ConstantTimeEq;

use crate::aead::{ChaChaPoly, Gcm, TAG_LEN};
use crate::algorithms::{cipher_info, mac_info, CipherInfo};
use crate::cipher::{self, Direction, Transform};
use crate::mac::{self, PacketMac, MAX_TAG};
use crate::Error;

enum Keys {
    Gcm(Box<Gcm>),
    ChaCha(ChaChaPoly),
    Classic {
        cipher: Box<dyn Transform>,
        mac: Box<dyn PacketMac>,
        etm: bool,
    },
}

struct Layout {
    block_size: usize,
    mac_len: usize,
    /// EtM and AEAD modes keep the length field out of the padded, encrypted body.
    length_outside_padding: bool,
}

fn build(
    direction: Direction,
    cipher_name: &str,
    mac_name: Option<&str>,
    key: &[u8],
    iv: &[u8],
    mac_key: &[u8],
) -> Result<(Keys, Layout), Error> {
    let info: &CipherInfo = cipher_info(cipher_name).ok_or(Error::UnknownAlgorithm)?;
    if key.len() != info.key_len || iv.len() != info.iv_len {
        return Err(Error::KeyLength);
    }
    if info.aead {
        let keys = if cipher_name.starts_with("chacha20") {
            Keys::ChaCha(ChaChaPoly::new(key)?)
        } else {
            Keys::Gcm(Box::new(Gcm::new(key, iv)?))
        };
        return Ok((
            keys,
            Layout {
                block_size: info.block_size,
                mac_len: TAG_LEN,
                length_outside_padding: true,
            },
        ));
    }
    let mac_name = mac_name.ok_or(Error::UnknownAlgorithm)?;
    let mac_spec = mac_info(mac_name).ok_or(Error::UnknownAlgorithm)?;
    if mac_key.len() != mac_spec.key_len {
        return Err(Error::KeyLength);
    }
    let cipher = cipher::new(cipher_name, direction, key, iv).ok_or(Error::UnknownAlgorithm)??;
    let mac = mac::new(mac_name, mac_key).ok_or(Error::UnknownAlgorithm)??;
    let layout = Layout {
        block_size: info.block_size,
        mac_len: mac_spec.tag_len,
        length_outside_padding: mac_spec.etm,
    };
    Ok((
        Keys::Classic {
            cipher,
            mac,
            etm: mac_spec.etm,
        },
        layout,
    ))
}

/// Where the authenticated part of a packet ends and its tag begins, checking the block
/// alignment the cipher needs (the part that gets encrypted must be whole blocks).
fn tag_start(layout: &Layout, packet_len: usize) -> Result<usize, Error> {
    let end = packet_len
        .checked_sub(layout.mac_len)
        .filter(|&n| n >= 4)
        .ok_or(Error::Length)?;
    let encrypted = if layout.length_outside_padding {
        end - 4
    } else {
        end
    };
    if encrypted % layout.block_size != 0 {
        return Err(Error::Length);
    }
    Ok(end)
}

/// Seals outgoing packets for one direction of one set of keys.
pub struct Sealer {
    keys: Keys,
    layout: Layout,
}

impl Sealer {
    /// `mac` is ignored (and may be `None`) for AEAD ciphers.
    pub fn new(
        cipher: &str,
        mac: Option<&str>,
        key: &[u8],
        iv: &[u8],
        mac_key: &[u8],
    ) -> Result<Sealer, Error> {
        let (keys, layout) = build(Direction::Encrypt, cipher, mac, key, iv, mac_key)?;
        Ok(Sealer { keys, layout })
    }

    pub fn block_size(&self) -> usize {
        self.layout.block_size
    }

    pub fn mac_len(&self) -> usize {
        self.layout.mac_len
    }

    pub fn length_outside_padding(&self) -> bool {
        self.layout.length_outside_padding
    }

    /// Encrypts `packet` in place and writes its tag into the last `mac_len` bytes.
    pub fn seal(&mut self, sequence: u32, packet: &mut [u8]) -> Result<(), Error> {
        let end = tag_start(&self.layout, packet.len())?;
        match &mut self.keys {
            Keys::Gcm(gcm) => gcm.seal(packet),
            Keys::ChaCha(chacha) => chacha.seal(sequence, packet),
            Keys::Classic { cipher, mac, etm } => {
                let (data, tag) = packet.split_at_mut(end);
                if *etm {
                    cipher.apply(&mut data[4..]);
                    mac.compute(sequence, data, tag);
                } else {
                    mac.compute(sequence, data, tag);
                    cipher.apply(data);
                }
                Ok(())
            }
        }
    }

    /// Seals consecutive packets laid back to back in `buffer`, with sequence numbers from
    /// `first_sequence`: packet `i` ends at `ends[i]`. One call instead of one per packet
    /// where a call has a fixed cost (the N-API or WASM boundary). Stops at the first error.
    pub fn seal_batch(
        &mut self,
        first_sequence: u32,
        buffer: &mut [u8],
        ends: &[u32],
    ) -> Result<(), Error> {
        for_each_packet(first_sequence, buffer, ends, |sequence, packet| {
            self.seal(sequence, packet)
        })
    }
}

/// Runs `op` on each packet of a burst laid back to back in `buffer` (packet `i` ends at
/// `ends[i]`), with sequence numbers counting up (and wrapping) from `first_sequence`.
pub fn for_each_packet(
    first_sequence: u32,
    buffer: &mut [u8],
    ends: &[u32],
    mut op: impl FnMut(u32, &mut [u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut start = 0usize;
    let mut sequence = first_sequence;
    for &end in ends {
        let end = end as usize;
        op(sequence, buffer.get_mut(start..end).ok_or(Error::Length)?)?;
        sequence = sequence.wrapping_add(1);
        start = end;
    }
    Ok(())
}

/// Opens incoming packets for one direction of one set of keys.
pub struct Opener {
    keys: Keys,
    layout: Layout,
}

impl Opener {
    pub fn new(
        cipher: &str,
        mac: Option<&str>,
        key: &[u8],
        iv: &[u8],
        mac_key: &[u8],
    ) -> Result<Opener, Error> {
        let (keys, layout) = build(Direction::Decrypt, cipher, mac, key, iv, mac_key)?;
        Ok(Opener { keys, layout })
    }

    pub fn block_size(&self) -> usize {
        self.layout.block_size
    }

    pub fn mac_len(&self) -> usize {
        self.layout.mac_len
    }

    /// How many leading bytes `decrypt_length` needs: 4 when the length field is sent in clear
    /// or encrypted on its own, else one cipher block.
    pub fn length_field_bytes(&self) -> usize {
        if self.layout.length_outside_padding {
            4
        } else {
            self.layout.block_size
        }
    }

    /// The packet length field. For classic (MAC-then-encrypt) modes this decrypts `head`'s
    /// first block in place; the caller keeps those bytes as the start of the packet.
    pub fn decrypt_length(&mut self, sequence: u32, head: &mut [u8]) -> Result<u32, Error> {
        let needed = self.length_field_bytes();
        let head = head.get_mut(..needed).ok_or(Error::Length)?;
        match &mut self.keys {
            Keys::ChaCha(chacha) => chacha.decrypt_length(sequence, head),
            Keys::Classic {
                cipher, etm: false, ..
            } => {
                cipher.apply(head);
                Ok(u32::from_be_bytes([head[0], head[1], head[2], head[3]]))
            }
            Keys::Gcm(_) | Keys::Classic { .. } => {
                Ok(u32::from_be_bytes([head[0], head[1], head[2], head[3]]))
            }
        }
    }

    /// Verifies and decrypts `packet` (as received, after `decrypt_length` saw its head) in
    /// place. On `Error::BadMac` the packet must be dropped and the connection closed.
    pub fn open(&mut self, sequence: u32, packet: &mut [u8]) -> Result<(), Error> {
        let block = self.length_field_bytes();
        let end = tag_start(&self.layout, packet.len())?;
        match &mut self.keys {
            Keys::Gcm(gcm) => gcm.open(packet),
            Keys::ChaCha(chacha) => chacha.open(sequence, packet),
            Keys::Classic { cipher, mac, etm } => {
                let (data, tag) = packet.split_at_mut(end);
                let mut expected = [0u8; MAX_TAG];
                let expected = &mut expected[..tag.len()];
                if *etm {
                    mac.compute(sequence, data, expected);
                    if !bool::from(expected.ct_eq(tag)) {
                        return Err(Error::BadMac);
                    }
                    cipher.apply(&mut data[4..]);
                } else {
                    cipher.apply(&mut data[block..]);
                    mac.compute(sequence, data, expected);
                    if !bool::from(expected.ct_eq(tag)) {
                        return Err(Error::BadMac);
                    }
                }
                Ok(())
            }
        }
    }
}
