//! The far end for the plane's tests: an SSH peer that frames and opens packets with
//! revtun-core's keys by its own, simpler code (one Vec per packet), so the plane's framing
//! is checked against an independent implementation.

#![allow(dead_code)]

use revtun_core::{cipher_info, mac_info, Opener, Sealer};
use revtun_io::{ChannelLimits, DirectionKeys, Handover, Plane};

pub const KEXINIT: u8 = 20;
pub const NEWKEYS: u8 = 21;
pub const GLOBAL_REQUEST: u8 = 80;
pub const WINDOW_ADJUST: u8 = 93;
pub const DATA: u8 = 94;
pub const EXTENDED_DATA: u8 = 95;
pub const EOF: u8 = 96;
pub const CLOSE: u8 = 97;
pub const CHANNEL_REQUEST: u8 = 98;

/// Deterministic key material for `cipher`/`mac`, different per `salt`.
pub fn keys(cipher: &str, mac: Option<&str>, salt: u8) -> DirectionKeys {
    let info = cipher_info(cipher).expect("known cipher");
    let mac = if info.aead { None } else { mac };
    let mac_len = mac
        .map(|m| mac_info(m).expect("known mac").key_len)
        .unwrap_or(0);
    let bytes = |n: usize, offset: u8| {
        (0..n)
            .map(|i| {
                (i as u8)
                    .wrapping_mul(31)
                    .wrapping_add(salt)
                    .wrapping_add(offset)
            })
            .collect::<Vec<u8>>()
    };
    DirectionKeys {
        cipher: cipher.into(),
        mac: mac.map(Into::into),
        key: bytes(info.key_len, 1),
        iv: bytes(info.iv_len, 2),
        mac_key: bytes(mac_len, 3),
    }
}

pub struct Peer {
    sealer: Sealer,
    opener: Opener,
    pub send_sequence: u32,
    pub receive_sequence: u32,
    input: Vec<u8>,
    /// The decrypted length and head of a packet still arriving.
    pending: Option<(usize, Vec<u8>)>,
}

impl Peer {
    pub fn new(
        to_plane: &DirectionKeys,
        from_plane: &DirectionKeys,
        send_sequence: u32,
        receive_sequence: u32,
    ) -> Peer {
        Peer {
            sealer: sealer(to_plane),
            opener: opener(from_plane),
            send_sequence,
            receive_sequence,
            input: Vec::new(),
            pending: None,
        }
    }

    pub fn set_sealer(&mut self, keys: &DirectionKeys, reset: bool) {
        self.sealer = sealer(keys);
        if reset {
            self.send_sequence = 0;
        }
    }

    pub fn set_opener(&mut self, keys: &DirectionKeys, reset: bool) {
        self.opener = opener(keys);
        if reset {
            self.receive_sequence = 0;
        }
    }

    /// One sealed packet carrying `payload`.
    pub fn seal(&mut self, payload: &[u8]) -> Vec<u8> {
        let block = self.sealer.block_size().max(8);
        let outside = self.sealer.length_outside_padding();
        let unpadded = payload.len() + if outside { 1 } else { 5 };
        let mut padding = block - unpadded % block;
        if padding < 4 {
            padding += block;
        }
        let length = 1 + payload.len() + padding;
        let mut packet = Vec::with_capacity(4 + length + self.sealer.mac_len());
        packet.extend_from_slice(&(length as u32).to_be_bytes());
        packet.push(padding as u8);
        packet.extend_from_slice(payload);
        packet.extend(std::iter::repeat_n(0x5a, padding));
        packet.extend(std::iter::repeat_n(0, self.sealer.mac_len()));
        self.sealer
            .seal(self.send_sequence, &mut packet)
            .expect("seal");
        self.send_sequence = self.send_sequence.wrapping_add(1);
        packet
    }

    /// Takes bytes the plane wrote and returns the payloads of the whole packets among them
    /// (the start of a packet waits for the rest).
    pub fn receive(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.input.extend_from_slice(bytes);
        let mut payloads = Vec::new();
        loop {
            let head = self.opener.length_field_bytes();
            if self.input.len() < head {
                break;
            }
            // decrypt_length runs once per packet (it advances a CBC/CTR cipher): its result
            // is kept while the rest of the packet is awaited.
            let (length, probe) = match self.pending.take() {
                Some(known) => known,
                None => {
                    let mut probe = self.input[..head].to_vec();
                    let length = self
                        .opener
                        .decrypt_length(self.receive_sequence, &mut probe)
                        .expect("length") as usize;
                    (length, probe)
                }
            };
            let total = 4 + length + self.opener.mac_len();
            if self.input.len() < total {
                self.pending = Some((length, probe));
                break;
            }
            let mut packet: Vec<u8> = self.input.drain(..total).collect();
            packet[..head].copy_from_slice(&probe);
            self.opener
                .open(self.receive_sequence, &mut packet)
                .expect("the plane's packet opens");
            self.receive_sequence = self.receive_sequence.wrapping_add(1);
            let padding = packet[4] as usize;
            payloads.push(packet[5..4 + length - padding].to_vec());
        }
        payloads
    }
}

fn sealer(keys: &DirectionKeys) -> Sealer {
    Sealer::new(
        &keys.cipher,
        keys.mac.as_deref(),
        &keys.key,
        &keys.iv,
        &keys.mac_key,
    )
    .expect("sealer")
}

fn opener(keys: &DirectionKeys) -> Opener {
    Opener::new(
        &keys.cipher,
        keys.mac.as_deref(),
        &keys.key,
        &keys.iv,
        &keys.mac_key,
    )
    .expect("opener")
}

pub const LIMITS: ChannelLimits = ChannelLimits {
    max_packet: 32 * 1024,
    window_target: 128 * 1024,
};

/// A plane handed over mid-connection (sequence numbers well past 0) and the peer facing it.
pub fn pair(cipher: &str, mac: Option<&str>) -> (Plane, Peer) {
    pair_with(cipher, mac, 0)
}

pub fn pair_with(cipher: &str, mac: Option<&str>, rekey_bytes: u64) -> (Plane, Peer) {
    let outgoing = keys(cipher, mac, 10);
    let incoming = keys(cipher, mac, 20);
    let peer = Peer::new(&incoming, &outgoing, 7, 11);
    let plane = Plane::new(Handover {
        outgoing,
        incoming,
        send_sequence: 11,
        receive_sequence: 7,
        limits: LIMITS,
        rekey_bytes,
    })
    .expect("plane");
    (plane, peer)
}

/// Feeds `bytes` to the plane as if read from the SSH socket.
pub fn feed(plane: &mut Plane, bytes: &[u8]) -> Result<(), revtun_io::PlaneError> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let space = plane.ssh_space();
        let n = space.len().min(rest.len());
        space[..n].copy_from_slice(&rest[..n]);
        rest = &rest[n..];
        plane.ssh_received(n)?;
    }
    Ok(())
}

/// Everything the plane has framed for the SSH socket, taken.
pub fn drain(plane: &mut Plane) -> Vec<u8> {
    let bytes = plane.ssh_pending().to_vec();
    plane.ssh_written(bytes.len());
    bytes
}

/// The payloads of the messages the plane passed up since the last call.
pub fn upcalled(plane: &mut Plane) -> Vec<(u32, Vec<u8>)> {
    let batch = plane.take_upcalls();
    batch
        .items
        .iter()
        .filter_map(|item| match item {
            revtun_io::Upcall::Message { sequence, .. } => {
                Some((*sequence, batch.payload(item).to_vec()))
            }
            _ => None,
        })
        .collect()
}

pub fn u32be(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// CHANNEL_DATA to `recipient`.
pub fn data(recipient: u32, bytes: &[u8]) -> Vec<u8> {
    let mut m = vec![DATA];
    m.extend_from_slice(&u32be(recipient));
    m.extend_from_slice(&u32be(bytes.len() as u32));
    m.extend_from_slice(bytes);
    m
}

pub fn window_adjust(recipient: u32, bytes: u32) -> Vec<u8> {
    let mut m = vec![WINDOW_ADJUST];
    m.extend_from_slice(&u32be(recipient));
    m.extend_from_slice(&u32be(bytes));
    m
}

pub fn simple(id: u8, recipient: u32) -> Vec<u8> {
    let mut m = vec![id];
    m.extend_from_slice(&u32be(recipient));
    m
}
