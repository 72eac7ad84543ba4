//! An adopted channel (RFC 4254 §5.2): a forwarding channel whose local socket the data plane
//! moves bytes for. Its windows follow the rules of `ts/protocol/channels.ts`, which kept them
//! before the channel was handed over: data beyond our window, larger than our packet limit or
//! after EOF ends the connection; a window adjust that overflows 32 bits does too; and our
//! window is refilled to its target only once half of it is missing, so that a slow local
//! target holds the peer to one window of buffered data and a fast one costs one
//! WINDOW_ADJUST per half window.

use crate::error::{Code, PlaneError};

/// Our side's limits for the channels of one connection, set by the TypeScript core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelLimits {
    /// The largest data packet we accept (MaxPacketSize, as sent in our confirmation).
    pub max_packet: u32,
    /// The window each channel is refilled to (MaxWindowSize, or its share when many
    /// channels are open: `windowTarget()` in channels.ts).
    pub window_target: u32,
}

/// What a closed channel carried, for the TypeScript core's events and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelReport {
    pub local_id: u32,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// Where a channel is in its life once adopted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Data may flow both ways (each direction may have ended on its own: EOF).
    Open,
    /// Our CLOSE is sent or owed; the peer's has not come yet.
    Closing,
    /// CLOSE went both ways: the channel is gone from the protocol, its socket still may have
    /// bytes to write before it is closed.
    Finished,
}

pub(crate) struct Channel {
    pub local_id: u32,
    pub remote_id: u32,
    pub stage: Stage,
    /// Bytes the peer may still send before we give more.
    pub local_window: u32,
    /// Bytes received and not yet written to the local socket.
    pub to_local: Vec<u8>,
    /// Written from `to_local` up to here.
    pub to_local_head: usize,
    pub remote_window: u32,
    pub remote_max_packet: u32,
    pub eof_received: bool,
    /// The local socket's write side was shut down after the peer's EOF.
    pub local_write_shut: bool,
    /// The local socket reached its end of file (or failed): nothing more is read from it.
    pub local_read_ended: bool,
    /// Our EOF is owed (the local end ended while a key exchange held sending back).
    pub eof_owed: bool,
    pub eof_sent: bool,
    /// Our CLOSE is owed (asked for while a key exchange held sending back).
    pub close_owed: bool,
    pub close_sent: bool,
    pub close_received: bool,
    /// A WINDOW_ADJUST is owed (credit came due while a key exchange held sending back).
    pub refill_owed: bool,
    /// Window is owed that MaxTransferRate's inbound tokens did not cover yet.
    pub rate_owed: bool,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl Channel {
    pub fn new(
        local_id: u32,
        remote_id: u32,
        local_window: u32,
        remote_window: u32,
        remote_max_packet: u32,
    ) -> Channel {
        Channel {
            local_id,
            remote_id,
            stage: Stage::Open,
            local_window,
            to_local: Vec::new(),
            to_local_head: 0,
            remote_window,
            // The same cap as channels.ts: we never frame more than this at once.
            remote_max_packet: remote_max_packet.min(256 * 1024),
            eof_received: false,
            local_write_shut: false,
            local_read_ended: false,
            eof_owed: false,
            eof_sent: false,
            close_owed: false,
            close_sent: false,
            close_received: false,
            refill_owed: false,
            rate_owed: false,
            bytes_sent: 0,
            bytes_received: 0,
        }
    }

    /// Bytes received and not yet taken by the local socket.
    pub fn unwritten(&self) -> usize {
        self.to_local.len() - self.to_local_head
    }

    /// CHANNEL_DATA (or EXTENDED_DATA, with `keep` false) from the peer: checked against the
    /// window and the packet limit, and queued for the local socket.
    pub fn receive(
        &mut self,
        data: &[u8],
        limits: ChannelLimits,
        keep: bool,
    ) -> Result<(), PlaneError> {
        if keep && self.eof_received {
            return Err(PlaneError::new(
                Code::InvalidChannelData,
                "channel data after EOF",
            ));
        }
        let length = data.len();
        if length > self.local_window as usize {
            return Err(PlaneError::new(
                Code::InvalidChannelData,
                format!(
                    "peer sent {length} bytes with only {} left in the window",
                    self.local_window
                ),
            ));
        }
        if length > limits.max_packet as usize {
            return Err(PlaneError::new(
                Code::InvalidChannelData,
                format!(
                    "peer sent a {length}-byte data packet; the limit is {}",
                    limits.max_packet
                ),
            ));
        }
        self.local_window -= length as u32;
        self.bytes_received += length as u64;
        // Data that can no longer reach the target (its socket is shut, or the channel is
        // closing) is dropped, and counts as taken: the peer's window is not held by it.
        if keep && self.stage == Stage::Open && !self.local_write_shut {
            if self.to_local_head > 0 && self.to_local_head == self.to_local.len() {
                self.to_local.clear();
                self.to_local_head = 0;
            }
            self.to_local.extend_from_slice(data);
        }
        Ok(())
    }

    /// The next bytes for the local socket.
    pub fn pending_for_local(&self) -> &[u8] {
        &self.to_local[self.to_local_head..]
    }

    /// The local socket took `n` of them.
    pub fn written_to_local(&mut self, n: usize) {
        self.to_local_head = (self.to_local_head + n).min(self.to_local.len());
        if self.to_local_head == self.to_local.len() {
            self.to_local.clear();
            self.to_local_head = 0;
        } else if self.to_local_head > self.to_local.len() / 2 && self.to_local_head >= 64 * 1024 {
            // A slow target: keep the queue from creeping along an ever larger allocation.
            self.to_local.copy_within(self.to_local_head.., 0);
            self.to_local
                .truncate(self.to_local.len() - self.to_local_head);
            self.to_local_head = 0;
        }
    }

    /// The credit to give now (the refill rule of channels.ts's consume()), or 0.
    pub fn credit_due(&self, limits: ChannelLimits) -> u32 {
        let missing = self.credit_missing(limits);
        if (missing as u64) * 2 < limits.window_target as u64 {
            return 0;
        }
        missing
    }

    /// The window missing from the target, however little (credit under MaxTransferRate is
    /// given in steps of the tokens, not by halves of the window).
    pub fn credit_missing(&self, limits: ChannelLimits) -> u32 {
        if self.stage != Stage::Open || self.close_sent || self.close_owed {
            return 0;
        }
        let held = self.local_window as u64 + self.unwritten() as u64;
        (limits.window_target as u64).saturating_sub(held) as u32
    }

    /// The peer gave `bytes` more window.
    pub fn add_remote_window(&mut self, bytes: u32) -> Result<(), PlaneError> {
        self.remote_window = self.remote_window.checked_add(bytes).ok_or_else(|| {
            PlaneError::new(
                Code::InvalidChannelMessage,
                "window adjust overflows the 32-bit window",
            )
        })?;
        Ok(())
    }

    /// How many bytes of the local socket may be read into one packet now.
    pub fn sendable(&self) -> usize {
        if self.stage != Stage::Open || self.local_read_ended || self.eof_sent || self.eof_owed {
            return 0;
        }
        self.remote_window.min(self.remote_max_packet) as usize
    }

    pub fn report(&self) -> ChannelReport {
        ChannelReport {
            local_id: self.local_id,
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
        }
    }
}
