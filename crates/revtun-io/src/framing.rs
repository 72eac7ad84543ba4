//! The binary packet protocol (RFC 4253 §6) for the data plane: [`Deframer`] cuts the bytes
//! read from the SSH socket into packets and opens each in place, [`Framer`] pads and seals
//! outgoing payloads into the bytes to write. Both work in buffers allocated once per
//! connection, so the data path allocates nothing per packet; both keep their own sequence
//! numbers, and a key change lands exactly between two packets.
//!
//! The checks are those of `ts/protocol/transport.ts`, which framed these packets before the
//! connection was handed over: a length outside 5..=256 KiB, padding under 4 bytes or past the
//! payload, or a body that is not whole cipher blocks ends the connection.

use revtun_core::{Opener, Sealer};

use crate::error::{Code, PlaneError};

/// The largest packet length accepted (the uint32 field), as in the TypeScript transport:
/// RFC 4253 §6.1 asks for at least 35000, and OpenSSH accepts 256 KiB.
pub const MAX_PACKET_LENGTH: usize = 256 * 1024;

/// The longest MAC or tag revtun-core produces (HMAC-SHA2-512).
const MAX_TAG: usize = 64;

/// The largest whole packet on the wire: length field, body, tag.
const MAX_WIRE_PACKET: usize = 4 + MAX_PACKET_LENGTH + MAX_TAG;

/// Received bytes are read into this much room; a packet never has to wait for space, since
/// what remains unparsed is always less than one packet.
const INPUT_BUFFER: usize = 2 * MAX_WIRE_PACKET;

/// Below this much free room at the end of the input buffer, the unparsed bytes move to its start.
const INPUT_COMPACT_BELOW: usize = 64 * 1024;

fn crypto_error(e: revtun_core::Error) -> PlaneError {
    PlaneError::new(Code::CannotDecrypt, e.message())
}

/// Where one opened packet's payload lies in the deframer's buffer, and its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub sequence: u32,
    start: usize,
    end: usize,
}

impl Packet {
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// Incoming packets: bytes in, opened payloads out.
pub struct Deframer {
    /// None between the peer's NEWKEYS and our having the keys that follow it: nothing more
    /// is opened until they are installed.
    opener: Option<Opener>,
    pub sequence: u32,
    buffer: Vec<u8>,
    /// Parsed up to here...
    start: usize,
    /// ...and received up to here.
    end: usize,
    /// The whole size of the packet whose length field has been read (0: none yet). The
    /// length is decrypted once (for CBC/CTR it advances the cipher), in place.
    pending_total: usize,
    /// Payload bytes and packets opened since the last key change, for the re-key thresholds.
    pub bytes_since_keys: u64,
    pub packets_since_keys: u64,
}

impl Deframer {
    pub fn new(opener: Opener, sequence: u32) -> Deframer {
        Deframer {
            opener: Some(opener),
            sequence,
            buffer: vec![0; INPUT_BUFFER],
            start: 0,
            end: 0,
            pending_total: 0,
            bytes_since_keys: 0,
            packets_since_keys: 0,
        }
    }

    /// Where the next read from the socket goes; never empty.
    pub fn space(&mut self) -> &mut [u8] {
        if self.buffer.len() - self.end < INPUT_COMPACT_BELOW {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buffer[self.end..]
    }

    /// `n` bytes were read into `space()`.
    pub fn received(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buffer.len());
    }

    /// Bytes received and not yet taken as packets.
    pub fn backlog(&self) -> usize {
        self.end - self.start
    }

    /// Waiting for the keys that follow the peer's NEWKEYS.
    pub fn awaiting_keys(&self) -> bool {
        self.opener.is_none()
    }

    /// The peer's NEWKEYS was read: the packets after it wait for `set_opener`.
    pub fn keys_ended(&mut self) {
        self.opener = None;
    }

    /// Installs the keys for the packets from here on; `reset_sequence` for strict kex.
    pub fn set_opener(&mut self, opener: Opener, reset_sequence: bool) {
        self.opener = Some(opener);
        if reset_sequence {
            self.sequence = 0;
        }
        self.bytes_since_keys = 0;
        self.packets_since_keys = 0;
    }

    /// The next whole packet, opened and checked; None until more bytes arrive (or while the
    /// next keys are awaited).
    pub fn next_packet(&mut self) -> Result<Option<Packet>, PlaneError> {
        let Some(opener) = self.opener.as_mut() else {
            return Ok(None);
        };
        let available = self.end - self.start;
        if self.pending_total == 0 {
            let head_len = opener.length_field_bytes();
            if available < head_len {
                return Ok(None);
            }
            let head = &mut self.buffer[self.start..self.start + head_len];
            let length = opener
                .decrypt_length(self.sequence, head)
                .map_err(crypto_error)? as usize;
            if !(5..=MAX_PACKET_LENGTH).contains(&length) {
                return Err(PlaneError::new(
                    Code::CannotDecrypt,
                    format!("bad packet length {length}"),
                ));
            }
            let total = 4 + length + opener.mac_len();
            if total < head_len {
                return Err(PlaneError::new(
                    Code::CannotDecrypt,
                    format!("bad packet length {length}"),
                ));
            }
            self.pending_total = total;
        }
        let total = self.pending_total;
        if available < total {
            return Ok(None);
        }
        self.pending_total = 0;
        let at = self.start;
        self.start += total;
        let sequence = self.sequence;
        self.sequence = self.sequence.wrapping_add(1);
        let packet = &mut self.buffer[at..at + total];
        opener.open(sequence, packet).map_err(crypto_error)?;
        let length = total - 4 - opener.mac_len();
        let padding = packet[4] as usize;
        // With the length outside the padded body (AEAD, EtM) the body alone is whole blocks.
        let aligned = if opener.length_field_bytes() == 4 {
            length
        } else {
            length + 4
        };
        if padding < 4 || padding > length - 1 || aligned % opener.block_size().max(8) != 0 {
            return Err(PlaneError::new(
                Code::CannotDecrypt,
                format!("bad padding ({padding} bytes in a {length}-byte packet)"),
            ));
        }
        self.bytes_since_keys += length as u64;
        self.packets_since_keys += 1;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(Packet {
            sequence,
            start: at + 5,
            end: at + 4 + length - padding,
        }))
    }

    /// The payload of the packet `next_packet` returned last; valid until the next call.
    pub fn payload(&self, packet: &Packet) -> &[u8] {
        &self.buffer[packet.start..packet.end]
    }
}

/// Outgoing packets: payloads in, sealed bytes out, in one buffer that is written from its
/// front and framed into at its back.
pub struct Framer {
    sealer: Sealer,
    pub sequence: u32,
    buffer: Vec<u8>,
    /// Written to the socket up to here...
    head: usize,
    /// ...and framed up to here.
    tail: usize,
    random: [u8; 1024],
    random_used: usize,
    /// Payload bytes framed since the last key change, for the re-key threshold.
    pub bytes_since_keys: u64,
}

/// Sealed bytes the framer holds before channel data stops being read (see `Framer::room`).
pub const OUTPUT_HIGH_WATER: usize = 1024 * 1024;

impl Framer {
    pub fn new(sealer: Sealer, sequence: u32) -> Framer {
        Framer {
            sealer,
            sequence,
            buffer: vec![0; OUTPUT_HIGH_WATER + MAX_WIRE_PACKET + 256],
            head: 0,
            tail: 0,
            random: [0; 1024],
            random_used: 1024,
            bytes_since_keys: 0,
        }
    }

    /// Installs the keys for the packets framed from here on; `reset_sequence` for strict kex.
    pub fn set_sealer(&mut self, sealer: Sealer, reset_sequence: bool) {
        self.sealer = sealer;
        if reset_sequence {
            self.sequence = 0;
        }
        self.bytes_since_keys = 0;
    }

    /// Sealed bytes waiting for the socket.
    pub fn pending(&self) -> &[u8] {
        &self.buffer[self.head..self.tail]
    }

    /// `n` of the pending bytes were written.
    pub fn written(&mut self, n: usize) {
        self.head = (self.head + n).min(self.tail);
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
    }

    /// How many payload bytes of channel data may be framed now: 0 once the socket is
    /// this far behind, which stops the local sockets being read (backpressure).
    pub fn room(&self) -> usize {
        OUTPUT_HIGH_WATER.saturating_sub(self.tail - self.head)
    }

    /// The bytes of padding (RFC 4253 §6: at least 4, to a multiple of the block size).
    fn padding_for(&self, payload: usize) -> usize {
        let block = self.sealer.block_size().max(8);
        let unpadded = if self.sealer.length_outside_padding() {
            1 + payload
        } else {
            5 + payload
        };
        let mut padding = block - unpadded % block;
        if padding < 4 {
            padding += block;
        }
        padding
    }

    /// Room for a packet of up to `total` bytes at the tail: unwritten bytes move to the
    /// front, and a control payload larger than the buffer grows it (never channel data,
    /// which is framed only within `room`).
    fn reserve(&mut self, total: usize) {
        if self.buffer.len() - self.tail >= total {
            return;
        }
        if self.head > 0 {
            self.buffer.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
        if self.buffer.len() - self.tail < total {
            self.buffer.resize(self.tail + total, 0);
        }
    }

    fn fill_padding(&mut self, at: usize, count: usize) {
        if self.random_used + count > self.random.len() {
            // Without the system's generator the padding is still well-formed (RFC 4253
            // requires random padding, but its security never rests on it with these modes).
            let _ = getrandom::getrandom(&mut self.random);
            self.random_used = 0;
        }
        self.buffer[at..at + count]
            .copy_from_slice(&self.random[self.random_used..self.random_used + count]);
        self.random_used += count;
    }

    /// Frames one payload of at most `max_payload` bytes that `fill` writes straight into the
    /// packet (returning how many it wrote, or an error that abandons the packet), pads and
    /// seals it. Returns the packet's sequence number, or None when `fill` wrote nothing.
    pub fn frame_with<E>(
        &mut self,
        max_payload: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<Option<u32>, FrameError<E>> {
        let largest = 4 + 1 + max_payload + 255 + self.sealer.mac_len();
        self.reserve(largest);
        let at = self.tail;
        let size =
            fill(&mut self.buffer[at + 5..at + 5 + max_payload]).map_err(FrameError::Fill)?;
        if size == 0 {
            return Ok(None);
        }
        let size = size.min(max_payload);
        let padding = self.padding_for(size);
        let length = 1 + size + padding;
        let total = 4 + length + self.sealer.mac_len();
        self.buffer[at..at + 4].copy_from_slice(&(length as u32).to_be_bytes());
        self.buffer[at + 4] = padding as u8;
        self.fill_padding(at + 5 + size, padding);
        let sequence = self.sequence;
        self.sealer
            .seal(sequence, &mut self.buffer[at..at + total])
            .map_err(|e| FrameError::Seal(PlaneError::new(Code::CannotSetKeys, e.message())))?;
        self.sequence = self.sequence.wrapping_add(1);
        self.tail = at + total;
        self.bytes_since_keys += size as u64;
        Ok(Some(sequence))
    }

    /// Frames a whole payload (a control message); returns its sequence number.
    pub fn frame(&mut self, payload: &[u8]) -> Result<u32, PlaneError> {
        if payload.is_empty() || payload.len() > MAX_PACKET_LENGTH - 256 {
            return Err(PlaneError::new(
                Code::ProtocolError,
                format!("a {}-byte payload cannot be framed", payload.len()),
            ));
        }
        match self.frame_with(payload.len(), |room| {
            room.copy_from_slice(payload);
            Ok::<usize, ()>(payload.len())
        }) {
            Ok(Some(sequence)) => Ok(sequence),
            Ok(None) | Err(FrameError::Fill(())) => Err(PlaneError::new(
                Code::ProtocolError,
                "an empty payload cannot be framed",
            )),
            Err(FrameError::Seal(e)) => Err(e),
        }
    }
}

/// Why `Framer::frame_with` framed nothing: its `fill` failed, or sealing did.
#[derive(Debug)]
pub enum FrameError<E> {
    Fill(E),
    Seal(PlaneError),
}
