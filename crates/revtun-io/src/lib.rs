//! revtun's native data plane (issue 15). Once the TypeScript core has finished the first key
//! exchange and authentication, a connection whose transport is a plain socket can be handed
//! to the native side: it frames, seals and opens every packet with the keys the TypeScript
//! core derived, moves CHANNEL_DATA between the SSH connection and the local sockets of the
//! channels it has adopted, keeps their windows, and passes every other message up. The
//! TypeScript core stays the one place of protocol decisions: key exchange, global requests,
//! keep-alive, channel opens and closing.
//!
//! Two halves: [`Plane`] is the protocol, without I/O (bytes read from the SSH socket and from
//! local sockets go in, what to write where comes out), so all of it runs in `cargo test` with
//! two endpoints in memory; [`relay::Relay`] is the thread that owns the file descriptors and
//! drives a plane. revtun-core, which the WASM build shares, stays free of I/O.

mod channel;
mod error;
mod framing;
mod local;
mod plane;
pub mod rate;
pub mod relay;
pub mod wire;

pub use channel::{ChannelLimits, ChannelReport};
pub use error::{Code, PlaneError};
pub use framing::{Deframer, Framer, MAX_PACKET_LENGTH};
pub use local::LocalRead;
pub use plane::{DirectionKeys, Handover, Plane, UpBatch, Upcall};
