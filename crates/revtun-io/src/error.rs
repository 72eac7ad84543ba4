//! Failures of the data plane, with the numeric codes of the documented error table (the same
//! numbers as `ts/protocol/errors.ts`, which a test here reads to keep the two in step).

use std::fmt;

/// The documented error codes the data plane can end a connection with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// Keys that could not be installed (a name the core does not know, a wrong length).
    CannotSetKeys = 1006,
    /// A packet that failed its integrity check, or whose length or padding is impossible.
    CannotDecrypt = 1015,
    /// A channel message for a channel that is not open.
    InvalidChannelId = 1021,
    /// Channel data beyond the window, after EOF, or larger than the packet limit.
    InvalidChannelData = 1022,
    /// A malformed channel message, or one its channel's state does not allow.
    InvalidChannelMessage = 1023,
    /// A malformed message, or one not allowed at this point of the connection.
    ProtocolError = 1027,
}

/// Why the data plane stopped: a code and a message that names no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaneError {
    pub code: Code,
    pub message: String,
}

impl PlaneError {
    pub fn new(code: Code, message: impl Into<String>) -> PlaneError {
        PlaneError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for PlaneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code as u32)
    }
}

impl std::error::Error for PlaneError {}
