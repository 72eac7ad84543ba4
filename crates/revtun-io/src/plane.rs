//! One SSH connection's data plane, without I/O: what was read from the SSH socket and from
//! the adopted channels' local sockets goes in, and what to write to each comes out, together
//! with the messages for the TypeScript core (upcalls, gathered into one batch per turn of
//! the relay loop).
//!
//! Re-keying follows RFC 4253 §7.1 and works as kTLS does: once our KEXINIT is sent, nothing
//! but key exchange messages leaves until our NEWKEYS (local sockets are not read, window
//! credit, EOF and CLOSE are owed, a stray control payload waits); `send_newkeys` frames
//! NEWKEYS under the old keys and switches to the new ones after it. The peer's NEWKEYS
//! switches the incoming keys right after it, with the keys given beforehand, or else
//! reading pauses until `set_incoming_keys` brings them.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use revtun_core::{Opener, Sealer};
use zeroize::Zeroize;

use crate::channel::{Channel, ChannelLimits, ChannelReport, Stage};
use crate::error::{Code, PlaneError};
use crate::framing::{Deframer, Framer};
use crate::rate::Bucket;
use crate::wire::{self, read_u32, write_u32};

/// The keys of one direction, as the key exchange derived them (RFC 4253 §7.2). The key
/// material is wiped when this is dropped.
pub struct DirectionKeys {
    pub cipher: String,
    /// None for AEAD ciphers.
    pub mac: Option<String>,
    pub key: Vec<u8>,
    pub iv: Vec<u8>,
    pub mac_key: Vec<u8>,
}

impl Drop for DirectionKeys {
    fn drop(&mut self) {
        self.key.zeroize();
        self.iv.zeroize();
        self.mac_key.zeroize();
    }
}

fn keys_error(e: revtun_core::Error) -> PlaneError {
    PlaneError::new(
        Code::CannotSetKeys,
        format!("cannot set keys: {}", e.message()),
    )
}

impl DirectionKeys {
    fn sealer(&self) -> Result<Sealer, PlaneError> {
        Sealer::new(
            &self.cipher,
            self.mac.as_deref(),
            &self.key,
            &self.iv,
            &self.mac_key,
        )
        .map_err(keys_error)
    }

    fn opener(&self) -> Result<Opener, PlaneError> {
        Opener::new(
            &self.cipher,
            self.mac.as_deref(),
            &self.key,
            &self.iv,
            &self.mac_key,
        )
        .map_err(keys_error)
    }
}

/// Something for the TypeScript core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upcall {
    /// A received message the data plane does not handle itself; its payload is
    /// `UpBatch::payload(self)`. `sequence` is its packet number (RFC 4253 §11.4's
    /// UNIMPLEMENTED replies name one).
    Message {
        sequence: u32,
        start: usize,
        end: usize,
    },
    /// An adopted channel's CLOSE went both ways: its id is free again.
    ChannelClosed(ChannelReport),
    /// Enough bytes crossed since the last key change for a re-key (RekeyBytes); said once
    /// per set of keys.
    RekeyDue,
}

/// Upcalls gathered since the last `Plane::take_upcalls`, with their payloads in one buffer.
#[derive(Debug, Default)]
pub struct UpBatch {
    pub bytes: Vec<u8>,
    pub items: Vec<Upcall>,
}

impl UpBatch {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn payload(&self, upcall: &Upcall) -> &[u8] {
        match *upcall {
            Upcall::Message { start, end, .. } => &self.bytes[start..end],
            _ => &[],
        }
    }
}

/// How a connection is handed over: the keys and sequence numbers in force in each direction.
pub struct Handover {
    pub outgoing: DirectionKeys,
    pub incoming: DirectionKeys,
    pub send_sequence: u32,
    pub receive_sequence: u32,
    pub limits: ChannelLimits,
    /// Payload bytes either way after which a re-key is due (0: never).
    pub rekey_bytes: u64,
}

pub struct Plane {
    pub(crate) framer: Framer,
    pub(crate) deframer: Deframer,
    pub(crate) limits: ChannelLimits,
    pub(crate) rekey_bytes: u64,
    pub(crate) rekey_said: bool,
    /// Our KEXINIT is sent and our NEWKEYS is not.
    pub(crate) kex_sending: bool,
    /// Control payloads sent while `kex_sending` that were not key exchange messages.
    pub(crate) deferred: VecDeque<Vec<u8>>,
    /// The incoming keys that take over at the peer's NEWKEYS, when given before it came.
    pub(crate) next_incoming: Option<(Opener, bool)>,
    pub(crate) slots: Vec<Option<Channel>>,
    pub(crate) free_slots: Vec<usize>,
    /// Adopted channels still in the protocol, by our channel id.
    pub(crate) by_id: HashMap<u32, usize>,
    pub(crate) upcalls: UpBatch,
    /// Channel data bytes moved natively, both ways, over every adopted channel so far.
    pub(crate) channel_bytes: u64,
    /// The time the buckets are read at (set by the driver before each turn).
    pub(crate) now: Instant,
    /// MaxTransferRate: what may be written to the SSH socket, and credited to the peer.
    pub(crate) outbound: Bucket,
    pub(crate) inbound: Bucket,
    /// Where the next round of withheld credit starts, so that no channel is always last.
    pub(crate) grant_start: usize,
    /// Set when the connection failed: every call after it is refused with this.
    pub(crate) failed: Option<PlaneError>,
}

impl Plane {
    pub fn new(handover: Handover) -> Result<Plane, PlaneError> {
        let framer = Framer::new(handover.outgoing.sealer()?, handover.send_sequence);
        let deframer = Deframer::new(handover.incoming.opener()?, handover.receive_sequence);
        let now = Instant::now();
        Ok(Plane {
            framer,
            deframer,
            limits: handover.limits,
            rekey_bytes: handover.rekey_bytes,
            rekey_said: false,
            kex_sending: false,
            deferred: VecDeque::new(),
            next_incoming: None,
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_id: HashMap::new(),
            upcalls: UpBatch::default(),
            channel_bytes: 0,
            now,
            outbound: Bucket::new(now),
            inbound: Bucket::new(now),
            grant_start: 0,
            failed: None,
        })
    }

    pub(crate) fn check(&self) -> Result<(), PlaneError> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    pub(crate) fn fail(&mut self, error: PlaneError) -> PlaneError {
        self.failed.get_or_insert(error).clone()
    }

    // ---- the SSH socket

    /// Where the next read from the SSH socket goes.
    pub fn ssh_space(&mut self) -> &mut [u8] {
        self.deframer.space()
    }

    /// Bytes the SSH socket's reader must not be woken for: reading is paused while the keys
    /// after the peer's NEWKEYS are awaited.
    pub fn ssh_read_paused(&self) -> bool {
        self.deframer.awaiting_keys() || self.failed.is_some()
    }

    /// `n` bytes were read into `ssh_space()`: the packets they complete are handled.
    pub fn ssh_received(&mut self, n: usize) -> Result<(), PlaneError> {
        self.check()?;
        self.deframer.received(n);
        self.process()
    }

    /// Sealed bytes waiting for the SSH socket.
    pub fn ssh_pending(&self) -> &[u8] {
        self.framer.pending()
    }

    pub fn ssh_written(&mut self, n: usize) {
        self.framer.written(n);
        self.outbound.take(n as u64, self.now);
    }

    fn process(&mut self) -> Result<(), PlaneError> {
        loop {
            let packet = match self.deframer.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(e) => return Err(self.fail(e)),
            };
            if let Err(e) = self.dispatch(packet) {
                return Err(self.fail(e));
            }
        }
        self.check_rekey();
        Ok(())
    }

    fn dispatch(&mut self, packet: crate::framing::Packet) -> Result<(), PlaneError> {
        let payload = self.deframer.payload(&packet);
        let Some(&id) = payload.first() else {
            return Err(PlaneError::new(Code::ProtocolError, "an empty message"));
        };
        if wire::is_channel_message(id) {
            if let Some(slot) = read_u32(payload, 1).and_then(|r| self.by_id.get(&r).copied()) {
                if self.channel_message(slot, id, packet)? {
                    return Ok(());
                }
            }
        }
        let payload = self.deframer.payload(&packet);
        let start = self.upcalls.bytes.len();
        self.upcalls.bytes.extend_from_slice(payload);
        self.upcalls.items.push(Upcall::Message {
            sequence: packet.sequence,
            start,
            end: self.upcalls.bytes.len(),
        });
        if id == wire::MSG_NEWKEYS {
            match self.next_incoming.take() {
                Some((opener, reset)) => {
                    self.deframer.set_opener(opener, reset);
                    // New keys: the RekeyBytes count (and its hold on channel data) starts over.
                    self.rekey_said = false;
                }
                None => self.deframer.keys_ended(),
            }
        }
        Ok(())
    }

    /// A channel message for an adopted channel; false passes it up (channel requests and
    /// their replies are the TypeScript core's).
    fn channel_message(
        &mut self,
        slot: usize,
        id: u8,
        packet: crate::framing::Packet,
    ) -> Result<bool, PlaneError> {
        let limits = self.limits;
        let payload = self.deframer.payload(&packet);
        let ch = self.slots[slot].as_mut().expect("by_id names live slots");
        if ch.close_received {
            return Err(PlaneError::new(
                Code::InvalidChannelId,
                format!("channel message for closed channel {}", ch.local_id),
            ));
        }
        let malformed = || {
            PlaneError::new(
                Code::InvalidChannelMessage,
                format!("malformed channel message {id}"),
            )
        };
        match id {
            wire::MSG_CHANNEL_DATA | wire::MSG_CHANNEL_EXTENDED_DATA => {
                let at = if id == wire::MSG_CHANNEL_DATA { 5 } else { 9 };
                let length = read_u32(payload, at).ok_or_else(malformed)? as usize;
                if payload.len() - (at + 4) != length {
                    return Err(malformed());
                }
                ch.receive(&payload[at + 4..], limits, id == wire::MSG_CHANNEL_DATA)?;
                self.channel_bytes += length as u64;
            }
            wire::MSG_CHANNEL_WINDOW_ADJUST => {
                if payload.len() != 9 {
                    return Err(malformed());
                }
                let bytes = read_u32(payload, 5).ok_or_else(malformed)?;
                ch.add_remote_window(bytes)?;
            }
            wire::MSG_CHANNEL_EOF => {
                if payload.len() != 5 {
                    return Err(malformed());
                }
                ch.eof_received = true;
            }
            wire::MSG_CHANNEL_CLOSE => {
                if payload.len() != 5 {
                    return Err(malformed());
                }
                ch.close_received = true;
                // The peer is done with the channel: nothing more is read from the local socket.
                ch.local_read_ended = true;
                self.send_close(slot)?;
            }
            _ => return Ok(false),
        }
        // What was received may owe window credit (data dropped by a closing channel).
        self.refill(slot)?;
        Ok(true)
    }

    // ---- commands from the TypeScript core

    /// Frames a control payload the TypeScript core sends; returns its sequence number, or
    /// None when it waits for the key exchange to end.
    pub fn send_payload(&mut self, payload: &[u8]) -> Result<Option<u32>, PlaneError> {
        self.check()?;
        let Some(&id) = payload.first() else {
            return Err(PlaneError::new(Code::ProtocolError, "an empty message"));
        };
        if id == wire::MSG_NEWKEYS {
            return Err(PlaneError::new(
                Code::ProtocolError,
                "NEWKEYS goes through send_newkeys",
            ));
        }
        if self.kex_sending && !wire::is_kex_message(id) {
            self.deferred.push_back(payload.to_vec());
            return Ok(None);
        }
        let sequence = self.framer.frame(payload).map_err(|e| self.fail(e))?;
        if id == wire::MSG_KEXINIT {
            self.kex_sending = true;
        }
        Ok(Some(sequence))
    }

    /// Frames our NEWKEYS under the current keys, and installs `keys` for what follows it;
    /// `reset_sequence` for strict kex. What waited for the key exchange goes out now.
    pub fn send_newkeys(
        &mut self,
        keys: &DirectionKeys,
        reset_sequence: bool,
    ) -> Result<(), PlaneError> {
        self.check()?;
        if !self.kex_sending {
            return Err(PlaneError::new(
                Code::ProtocolError,
                "NEWKEYS without our KEXINIT",
            ));
        }
        let sealer = keys.sealer()?;
        self.framer
            .frame(&[wire::MSG_NEWKEYS])
            .map_err(|e| self.fail(e))?;
        self.framer.set_sealer(sealer, reset_sequence);
        self.kex_sending = false;
        self.rekey_said = false;
        while let Some(payload) = self.deferred.pop_front() {
            self.framer.frame(&payload).map_err(|e| self.fail(e))?;
        }
        for slot in 0..self.slots.len() {
            if self.slots[slot].is_some() {
                self.settle_owed(slot)?;
            }
        }
        Ok(())
    }

    /// The incoming keys that follow the peer's NEWKEYS. Installed at once if that NEWKEYS
    /// has come (reading resumes, and the packets already received are handled), else kept
    /// for it.
    pub fn set_incoming_keys(
        &mut self,
        keys: &DirectionKeys,
        reset_sequence: bool,
    ) -> Result<(), PlaneError> {
        self.check()?;
        let opener = keys.opener()?;
        if self.deframer.awaiting_keys() {
            self.deframer.set_opener(opener, reset_sequence);
            self.rekey_said = false;
            return self.process();
        }
        self.next_incoming = Some((opener, reset_sequence));
        Ok(())
    }

    /// New limits (MaxWindowSize changed, or the number of open channels changed the share).
    pub fn set_limits(&mut self, limits: ChannelLimits) -> Result<(), PlaneError> {
        self.limits = limits;
        for slot in 0..self.slots.len() {
            if self.slots[slot].is_some() {
                self.refill(slot)?;
            }
        }
        Ok(())
    }

    /// Takes over an open channel whose local socket is connected: from now on its data,
    /// window, EOF and CLOSE are handled here. `confirmation` (our CHANNEL_OPEN_CONFIRMATION)
    /// is framed in the same step: no data for the channel can arrive before it is adopted,
    /// and none of ours can leave before the confirmation. Returns the slot the relay names
    /// its socket by.
    pub fn adopt(
        &mut self,
        local_id: u32,
        remote_id: u32,
        local_window: u32,
        remote_window: u32,
        remote_max_packet: u32,
        confirmation: Option<&[u8]>,
    ) -> Result<usize, PlaneError> {
        self.check()?;
        if self.by_id.contains_key(&local_id) {
            return Err(PlaneError::new(
                Code::InvalidChannelId,
                format!("channel {local_id} is adopted already"),
            ));
        }
        let channel = Channel::new(
            local_id,
            remote_id,
            local_window,
            remote_window,
            remote_max_packet,
        );
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot] = Some(channel);
                slot
            }
            None => {
                self.slots.push(Some(channel));
                self.slots.len() - 1
            }
        };
        self.by_id.insert(local_id, slot);
        if let Some(confirmation) = confirmation {
            self.send_payload(confirmation)?;
        }
        // Under MaxTransferRate the TypeScript core gave a first window of what its tokens
        // allowed. It counts against the plane's tokens too (they pace every adopted
        // channel's credit), and the rest of the window comes as they allow.
        if self.inbound.limited() {
            self.inbound.take(local_window as u64, self.now);
            self.refill(slot)?;
        }
        Ok(slot)
    }

    /// Closes an adopted channel on the TypeScript core's decision (the tunnel closes, an
    /// idle timeout): nothing more is read from its socket, EOF and CLOSE go to the peer, and
    /// what the peer sent still reaches the socket before it is closed.
    pub fn close_channel(&mut self, local_id: u32) -> Result<(), PlaneError> {
        self.check()?;
        let Some(&slot) = self.by_id.get(&local_id) else {
            return Ok(());
        };
        self.local_ended(slot)?;
        self.send_close(slot)
    }

    // ---- upcalls and accounting

    /// The upcalls gathered since the last call.
    pub fn take_upcalls(&mut self) -> UpBatch {
        std::mem::take(&mut self.upcalls)
    }

    /// Frames DISCONNECT (RFC 4253 §11.1) for the error the plane failed with, under the
    /// outgoing keys, which a failure on the incoming side leaves sound: the server hears why
    /// the connection ends, as it does from the JavaScript path. The reason is the one
    /// `disconnectReasonFor` in ts/protocol/errors.ts gives.
    pub fn frame_disconnect(&mut self) {
        let Some(error) = self.failed.clone() else {
            return;
        };
        let reason: u32 = match error.code {
            Code::CannotDecrypt => 5,  // MAC_ERROR
            Code::CannotSetKeys => 11, // BY_APPLICATION: our own failure
            _ => 2,                    // PROTOCOL_ERROR: the peer broke a rule
        };
        let text = error.message.as_bytes();
        let text = &text[..text.len().min(200)];
        let mut message = Vec::with_capacity(13 + text.len());
        message.push(wire::MSG_DISCONNECT);
        message.extend_from_slice(&reason.to_be_bytes());
        message.extend_from_slice(&(text.len() as u32).to_be_bytes());
        message.extend_from_slice(text);
        message.extend_from_slice(&0u32.to_be_bytes()); // language tag
        let _ = self.framer.frame(&message);
    }

    /// What an adopted channel has carried so far, and the bytes it holds for its local socket.
    pub fn channel_stats(&self, local_id: u32) -> Option<(u64, u64, usize)> {
        let slot = *self.by_id.get(&local_id)?;
        let ch = self.slots.get(slot)?.as_ref()?;
        Some((ch.bytes_sent, ch.bytes_received, ch.unwritten()))
    }

    /// Channel data bytes the plane has moved, both ways, over all its channels (the inactivity
    /// deadlines of the TypeScript side watch it change).
    pub fn channel_bytes(&self) -> u64 {
        self.channel_bytes
    }

    /// The error the plane failed with, if it has.
    pub fn failure(&self) -> Option<&PlaneError> {
        self.failed.as_ref()
    }

    /// True when a key exchange we started holds channel data back.
    pub fn kex_in_progress(&self) -> bool {
        self.kex_sending
    }

    pub fn sequences(&self) -> (u32, u32) {
        (self.framer.sequence, self.deframer.sequence)
    }

    pub(crate) fn check_rekey(&mut self) {
        if self.rekey_bytes == 0 || self.rekey_said || self.kex_sending {
            return;
        }
        if self.framer.bytes_since_keys >= self.rekey_bytes
            || self.deframer.bytes_since_keys >= self.rekey_bytes
        {
            self.rekey_said = true;
            self.upcalls.items.push(Upcall::RekeyDue);
        }
    }

    // ---- channel bookkeeping

    /// Gives the window credit due on the slot's channel, unless a key exchange holds it back.
    pub(crate) fn refill(&mut self, slot: usize) -> Result<(), PlaneError> {
        self.refill_within(slot, u64::MAX)
    }

    /// The smallest grant worth a WINDOW_ADJUST while MaxTransferRate paces the credit.
    fn credit_step(&self) -> u64 {
        (self.inbound.burst() / 2)
            .min(self.limits.window_target as u64 / 2)
            .max(1)
    }

    /// Gives the slot's channel the window it is missing (`Channel::credit_due`'s rule),
    /// or under MaxTransferRate what the inbound tokens allow, at most `limit`, in steps of at
    /// least `credit_step()`; what is still missing is owed (`rate_owed`) and comes with
    /// `grant_withheld` once there are tokens.
    fn refill_within(&mut self, slot: usize, limit: u64) -> Result<(), PlaneError> {
        let limits = self.limits;
        let kex_sending = self.kex_sending;
        let limited = self.inbound.limited();
        let step = self.credit_step();
        let available = self.inbound.available(self.now);
        let Some(ch) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(());
        };
        let credit = if limited {
            ch.credit_missing(limits)
        } else {
            ch.credit_due(limits)
        };
        if credit == 0 || (limited && (credit as u64) < step) {
            ch.rate_owed = false;
            return Ok(());
        }
        if kex_sending {
            ch.refill_owed = true;
            return Ok(());
        }
        ch.refill_owed = false;
        let grant = if limited {
            let grant = (credit as u64).min(available).min(limit);
            ch.rate_owed = (credit as u64).saturating_sub(grant) >= step || grant < step;
            if grant < step {
                return Ok(());
            }
            grant as u32
        } else {
            ch.rate_owed = false;
            credit
        };
        ch.local_window += grant;
        let remote_id = ch.remote_id;
        if limited {
            self.inbound.take(grant as u64, self.now);
        }
        let mut message = [0u8; 9];
        message[0] = wire::MSG_CHANNEL_WINDOW_ADJUST;
        write_u32(&mut message, 1, remote_id);
        write_u32(&mut message, 5, grant);
        self.framer.frame(&message).map_err(|e| self.fail(e))?;
        Ok(())
    }

    // ---- MaxTransferRate

    /// The time the buckets are read at from now on (the driver's clock, before each turn).
    pub fn set_now(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// MaxTransferRate in bytes per second each way, 0 for none; applies at once (credit
    /// withheld for want of tokens is given when the limit is lifted).
    pub fn set_rate(&mut self, rate: u64) -> Result<(), PlaneError> {
        self.check()?;
        self.outbound.set_rate(rate, self.now);
        self.inbound.set_rate(rate, self.now);
        self.grant_withheld()
    }

    /// Window credit withheld for want of tokens, given as far as the tokens now allow, each
    /// owed channel its share, starting after the one that began the last round.
    pub fn grant_withheld(&mut self) -> Result<(), PlaneError> {
        // A channel that needed less than its share leaves tokens over for the others: another
        // round gives them out (a few at most; each gives at least a step or ends).
        for _ in 0..4 {
            if self.kex_sending || self.failed.is_some() {
                return Ok(());
            }
            let owed = self
                .slots
                .iter()
                .flatten()
                .filter(|ch| ch.rate_owed)
                .count() as u64;
            if owed == 0 {
                return Ok(());
            }
            let step = self.credit_step();
            let available = self.inbound.available(self.now);
            if self.inbound.limited() && available < step {
                return Ok(());
            }
            let share = if self.inbound.limited() {
                step.max(available / owed)
            } else {
                u64::MAX
            };
            let count = self.slots.len();
            let start = self.grant_start % count.max(1);
            self.grant_start = start + 1;
            for i in 0..count {
                let slot = (start + i) % count;
                if self.slots[slot].as_ref().is_some_and(|ch| ch.rate_owed) {
                    self.refill_within(slot, share)?;
                }
            }
            if self.inbound.available(self.now) == available {
                return Ok(()); // nothing could be given: no point in another round
            }
        }
        Ok(())
    }

    /// The outbound bytes that may be written now: the pending output, cut at the tokens.
    pub fn ssh_writable(&self) -> &[u8] {
        let pending = self.framer.pending();
        let allowed = self.outbound.available(self.now).min(pending.len() as u64);
        &pending[..allowed as usize]
    }

    /// How long until MaxTransferRate's tokens let waiting work go on: output that could not
    /// all be written, local sockets (`locals_readable`) not read for want of tokens, credit
    /// withheld. None when nothing waits on tokens.
    pub fn rate_wait(&self, locals_readable: bool) -> Option<Duration> {
        let mut wait: Option<Duration> = None;
        let mut consider = |d: Duration| {
            if d > Duration::ZERO {
                wait = Some(wait.map_or(d, |w| w.min(d)));
            }
        };
        if self.outbound.limited() {
            let pending = self.framer.pending().len() as u64;
            if pending > 0 {
                consider(self.outbound.wait_for(pending, self.now));
            } else if locals_readable {
                consider(self.outbound.wait_for(crate::rate::MIN_BURST, self.now));
            }
        }
        if self.inbound.limited() && self.slots.iter().flatten().any(|ch| ch.rate_owed) {
            consider(self.inbound.wait_for(self.credit_step(), self.now));
        }
        wait
    }

    /// Sends what a key exchange held back on the slot's channel: credit, EOF, CLOSE.
    pub(crate) fn settle_owed(&mut self, slot: usize) -> Result<(), PlaneError> {
        if self.kex_sending {
            return Ok(());
        }
        self.refill(slot)?;
        let Some(ch) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(());
        };
        let send_eof = ch.eof_owed && !ch.eof_sent && !ch.close_sent;
        let close = ch.close_owed;
        if send_eof {
            ch.eof_owed = false;
            ch.eof_sent = true;
            let mut message = [0u8; 5];
            message[0] = wire::MSG_CHANNEL_EOF;
            write_u32(&mut message, 1, ch.remote_id);
            self.framer.frame(&message).map_err(|e| self.fail(e))?;
        }
        if close {
            self.send_close(slot)?;
        }
        Ok(())
    }

    /// Sends CLOSE on the slot's channel (or owes it during a key exchange); a channel whose
    /// CLOSE went both ways is finished and reported.
    pub(crate) fn send_close(&mut self, slot: usize) -> Result<(), PlaneError> {
        let kex_sending = self.kex_sending;
        let Some(ch) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(());
        };
        if ch.stage == Stage::Finished {
            return Ok(());
        }
        if !ch.close_sent {
            ch.stage = Stage::Closing;
            if kex_sending {
                ch.close_owed = true;
                return Ok(());
            }
            ch.close_owed = false;
            ch.close_sent = true;
            let mut message = [0u8; 5];
            message[0] = wire::MSG_CHANNEL_CLOSE;
            write_u32(&mut message, 1, ch.remote_id);
            self.framer.frame(&message).map_err(|e| self.fail(e))?;
        }
        let ch = self.slots[slot].as_mut().expect("checked above");
        if ch.close_received {
            ch.stage = Stage::Finished;
            let report = ch.report();
            self.by_id.remove(&report.local_id);
            self.upcalls.items.push(Upcall::ChannelClosed(report));
        }
        Ok(())
    }
}
