//! The protocol half of revtun's native data plane (issue 15). Once the TypeScript core has
//! finished the first key exchange and authentication, a connection whose transport is a
//! plain socket can be handed to the native side: it frames, seals and opens every packet
//! with the keys the TypeScript core derived, moves CHANNEL_DATA between the SSH connection
//! and the local sockets of the channels it has adopted, keeps their windows, and passes every
//! other message up. The TypeScript core stays the one place of protocol decisions: key
//! exchange, global requests, keep-alive, channel opens and closing.
//!
//! This crate does no I/O: [`Plane`] takes bytes read from the SSH socket and from local
//! sockets and says what to write where, so the whole of it runs in `cargo test` with two
//! endpoints in memory. The relay thread that owns the file descriptors lives in the
//! Node-API addon.

mod channel;
mod error;
mod framing;
mod local;
mod plane;
pub mod wire;

pub use channel::{ChannelLimits, ChannelReport};
pub use error::{Code, PlaneError};
pub use framing::{Deframer, Framer, MAX_PACKET_LENGTH};
pub use local::LocalRead;
pub use plane::{DirectionKeys, Handover, Plane, UpBatch, Upcall};
