//! The adopted channels' local sockets, the relay's half of a [`Plane`]: reading a socket
//! straight into a CHANNEL_DATA packet within the peer's window, writing what the peer sent,
//! and the half-close of a TCP connection carried over to the channel (end of file one way is
//! EOF, both ways done is CLOSE, as a half-open Node socket's 'close' was for the JS path).

use std::io;

use crate::channel::Stage;
use crate::error::PlaneError;
use crate::framing::FrameError;
use crate::plane::Plane;
use crate::wire::{self, write_u32};

/// What reading a local socket came to.
#[derive(Debug, PartialEq, Eq)]
pub enum LocalRead {
    /// This many bytes were framed as CHANNEL_DATA.
    Data(usize),
    /// Nothing to read now (or the channel may not send now).
    WouldBlock,
    /// The socket reached end of file: EOF goes to the peer.
    Ended,
    /// The socket failed: the channel is closed.
    Failed(io::ErrorKind),
}

impl Plane {
    /// How many bytes may be read from this slot's socket now (0: do not read it).
    pub fn local_read_room(&self, slot: usize) -> usize {
        // Once RekeyBytes is reached, no more channel data until the re-exchange: the
        // threshold holds as exactly as on the JavaScript plane, which starts the exchange in
        // the same step, instead of being overrun while the upcall travels.
        if self.kex_sending || self.rekey_said || self.failed.is_some() {
            return 0;
        }
        // Under MaxTransferRate nothing more is framed while output waits, and then only once
        // the tokens allow a packet of some size (MIN_BURST): else each wake would frame a
        // few dozen bytes, a packet's overhead each time.
        let tokens = if !self.outbound.limited() {
            u64::MAX
        } else if !self.framer.pending().is_empty() {
            0
        } else {
            let tokens = self.outbound.available(self.now);
            if tokens < crate::rate::MIN_BURST {
                0
            } else {
                tokens
            }
        };
        match self.slots.get(slot).and_then(Option::as_ref) {
            Some(ch) => ch
                .sendable()
                .min(self.framer.room())
                .min(tokens.min(usize::MAX as u64) as usize),
            None => 0,
        }
    }

    /// Reads the slot's socket straight into a CHANNEL_DATA packet with `read` (given the
    /// room for the data), and frames what it read.
    pub fn local_read(
        &mut self,
        slot: usize,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> Result<LocalRead, PlaneError> {
        let room = self.local_read_room(slot);
        if room == 0 {
            return Ok(LocalRead::WouldBlock);
        }
        let remote_id = self.slots[slot]
            .as_ref()
            .map(|ch| ch.remote_id)
            .unwrap_or(0);
        let mut outcome = LocalRead::WouldBlock;
        let framed = self.framer.frame_with(9 + room, |packet| {
            match read(&mut packet[9..9 + room]) {
                Ok(0) => outcome = LocalRead::Ended,
                Ok(n) => {
                    packet[0] = wire::MSG_CHANNEL_DATA;
                    write_u32(packet, 1, remote_id);
                    write_u32(packet, 5, n as u32);
                    outcome = LocalRead::Data(n);
                    return Ok(9 + n);
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => outcome = LocalRead::Failed(e.kind()),
            }
            Ok::<usize, ()>(0)
        });
        match framed {
            Ok(_) | Err(FrameError::Fill(())) => {}
            Err(FrameError::Seal(e)) => return Err(self.fail(e)),
        }
        match outcome {
            LocalRead::Data(n) => {
                let ch = self.slots[slot].as_mut().expect("room was for a live slot");
                ch.remote_window -= n as u32;
                ch.bytes_sent += n as u64;
                self.channel_bytes += n as u64;
                self.check_rekey();
            }
            LocalRead::Ended => self.local_ended(slot)?,
            LocalRead::Failed(_) => self.local_failed(slot)?,
            LocalRead::WouldBlock => {}
        }
        Ok(outcome)
    }

    /// Bytes from the peer waiting for this slot's socket.
    pub fn local_pending(&self, slot: usize) -> &[u8] {
        match self.slots.get(slot).and_then(Option::as_ref) {
            Some(ch) => ch.pending_for_local(),
            None => &[],
        }
    }

    /// The slot's socket took `n` of them: window credit follows by the refill rule.
    pub fn local_written(&mut self, slot: usize, n: usize) -> Result<(), PlaneError> {
        self.check()?;
        if let Some(ch) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            ch.written_to_local(n);
        }
        self.refill(slot)
    }

    /// `n` of the pending bytes reached the socket after the connection failed (no credit follows).
    pub fn local_delivered(&mut self, slot: usize, n: usize) {
        if let Some(ch) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            ch.written_to_local(n);
        }
    }

    /// The peer's EOF has come and everything before it is written: shut the socket's write side.
    pub fn local_wants_shutdown(&self, slot: usize) -> bool {
        match self.slots.get(slot).and_then(Option::as_ref) {
            Some(ch) => {
                ch.eof_received
                    && !ch.local_write_shut
                    && ch.unwritten() == 0
                    && ch.stage != Stage::Finished
            }
            None => false,
        }
    }

    /// The socket's write side is shut down.
    pub fn local_shut_down(&mut self, slot: usize) -> Result<(), PlaneError> {
        self.check()?;
        let done = match self.slots.get_mut(slot).and_then(Option::as_mut) {
            Some(ch) => {
                ch.local_write_shut = true;
                ch.local_read_ended
            }
            None => false,
        };
        // Both ways done (Node's 'close' on a half-open socket): the channel closes.
        if done {
            self.send_close(slot)?;
        }
        Ok(())
    }

    /// The socket reached end of file: EOF goes to the peer after the data before it.
    pub(crate) fn local_ended(&mut self, slot: usize) -> Result<(), PlaneError> {
        let Some(ch) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(());
        };
        ch.local_read_ended = true;
        if !ch.eof_sent && ch.stage == Stage::Open {
            ch.eof_owed = true;
        }
        let both_done = ch.local_write_shut;
        self.settle_owed(slot)?;
        if both_done {
            self.send_close(slot)?;
        }
        Ok(())
    }

    /// The socket failed (a reset, or it cannot be watched): the channel closes, and what was
    /// queued for it is dropped.
    pub fn local_failed(&mut self, slot: usize) -> Result<(), PlaneError> {
        if let Some(ch) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            ch.local_read_ended = true;
            ch.local_write_shut = true;
            ch.to_local.clear();
            ch.to_local_head = 0;
        }
        self.send_close(slot)
    }

    /// The relay should close the slot's socket now (the channel is finished and everything
    /// for the socket is written), then `release` the slot.
    pub fn local_should_close(&self, slot: usize) -> bool {
        match self.slots.get(slot).and_then(Option::as_ref) {
            Some(ch) => ch.stage == Stage::Finished && (ch.unwritten() == 0 || ch.local_write_shut),
            None => false,
        }
    }

    /// The relay closed the slot's socket: the slot may be reused.
    pub fn release(&mut self, slot: usize) {
        if let Some(Some(ch)) = self.slots.get(slot) {
            if ch.stage == Stage::Finished {
                self.slots[slot] = None;
                self.free_slots.push(slot);
            }
        }
    }

    /// Slots with a live channel or a socket still to close, for the relay's bookkeeping.
    pub fn live_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, ch)| ch.as_ref().map(|_| slot))
    }
}
