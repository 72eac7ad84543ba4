//! The native data plane (revtun-io's relay) as a Node-API class. The TypeScript core hands a
//! connection over with its keys and sequence numbers and the SSH socket's descriptor (the
//! relay takes a duplicate; Node's socket is then destroyed without touching the connection),
//! then adopts channels with their local sockets' descriptors the same way.
//!
//! Upcalls reach JavaScript through one thread-safe function per connection, a batch per turn
//! of the relay loop: `(payloads: Buffer, items: Buffer, ended?: object)`, where `items` is
//! little-endian u32 records of six fields (see `encode_items`). The function keeps the event
//! loop alive while the relay runs, as an open socket does (`unref()` lets go). An environment
//! cleanup hook stops the relay when the environment ends (process exit, a worker thread's
//! end), so no thread outlives it.
//!
//! Command failures throw an Error whose message is `<code>: <text>`, the code being one of
//! the documented numbers; nothing from the relay thread can throw into JavaScript.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::Uint8Array;
use napi::threadsafe_function::{
    ErrorStrategy, ThreadSafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi::{CleanupEnvHook, Env, Error, JsFunction, JsUnknown, Result, Status};
use napi_derive::napi;
use revtun_io::relay::{duplicate, Ended, Relay};
use revtun_io::{ChannelLimits, DirectionKeys, Handover, Plane, PlaneError, UpBatch, Upcall};

/// The keys of one direction, as the key exchange derived them.
#[napi(object)]
pub struct PlaneKeys {
    pub cipher: String,
    pub mac: Option<String>,
    pub key: Uint8Array,
    pub iv: Uint8Array,
    pub mac_key: Uint8Array,
}

impl PlaneKeys {
    fn direction(&self) -> DirectionKeys {
        DirectionKeys {
            cipher: self.cipher.clone(),
            mac: self.mac.clone(),
            key: self.key.to_vec(),
            iv: self.iv.to_vec(),
            mac_key: self.mac_key.to_vec(),
        }
    }
}

/// What a connection is handed over with.
#[napi(object)]
pub struct PlaneHandover {
    pub outgoing: PlaneKeys,
    pub incoming: PlaneKeys,
    pub send_sequence: u32,
    pub receive_sequence: u32,
    pub max_packet: u32,
    pub window_target: u32,
    /// Payload bytes either way after which a re-key is due (0: never).
    pub rekey_bytes: f64,
}

fn plane_error(e: PlaneError) -> Error {
    Error::new(
        Status::GenericFailure,
        format!("{}: {}", e.code as u32, e.message),
    )
}

fn closed() -> Error {
    Error::new(Status::GenericFailure, "1027: the data plane is closed")
}

/// Record kinds in the items buffer.
const ITEM_MESSAGE: u32 = 1;
const ITEM_CHANNEL_CLOSED: u32 = 2;
const ITEM_REKEY_DUE: u32 = 3;

/// Six u32 fields per upcall: kind, then Message: sequence, start, end; ChannelClosed: id,
/// bytes sent (low, high), bytes received (low, high); RekeyDue: nothing.
fn encode_items(batch: &UpBatch) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.items.len() * 24);
    for item in &batch.items {
        let fields: [u32; 6] = match *item {
            Upcall::Message {
                sequence,
                start,
                end,
            } => [ITEM_MESSAGE, sequence, start as u32, end as u32, 0, 0],
            Upcall::ChannelClosed(report) => [
                ITEM_CHANNEL_CLOSED,
                report.local_id,
                report.bytes_sent as u32,
                (report.bytes_sent >> 32) as u32,
                report.bytes_received as u32,
                (report.bytes_received >> 32) as u32,
            ],
            Upcall::RekeyDue => [ITEM_REKEY_DUE, 0, 0, 0, 0, 0],
        };
        for field in fields {
            out.extend_from_slice(&field.to_le_bytes());
        }
    }
    out
}

enum Up {
    Batch(UpBatch),
    End(Ended),
}

fn to_js(ctx: ThreadSafeCallContext<Up>) -> Result<Vec<JsUnknown>> {
    let env = ctx.env;
    let (batch, ended) = match ctx.value {
        Up::Batch(batch) => (batch, None),
        Up::End(ended) => (UpBatch::default(), Some(ended)),
    };
    let items = encode_items(&batch);
    let payloads = env
        .create_buffer_with_data(batch.bytes)?
        .into_raw()
        .into_unknown();
    let items = env
        .create_buffer_with_data(items)?
        .into_raw()
        .into_unknown();
    let ended = match ended {
        None => env.get_undefined()?.into_unknown(),
        Some(ended) => {
            let mut object = env.create_object()?;
            let (reason, code, message) = match ended {
                Ended::Stopped => ("stopped", 0, String::new()),
                Ended::PeerClosed => ("peerClosed", 0, String::new()),
                Ended::Io(kind) => ("io", 0, kind.to_string()),
                Ended::Protocol(error) => ("protocol", error.code as u32, error.message),
                Ended::Panicked => ("panicked", 0, String::new()),
            };
            object.set_named_property("reason", env.create_string(reason)?)?;
            object.set_named_property("code", env.create_uint32(code)?)?;
            object.set_named_property("message", env.create_string(&message)?)?;
            object.into_unknown()
        }
    };
    Ok(vec![payloads, items, ended])
}

type SharedRelay = Arc<Mutex<Option<Relay>>>;

fn stop(relay: &SharedRelay) {
    let taken = relay.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(mut relay) = taken {
        relay.stop();
    }
}

#[napi]
pub struct DataPlane {
    relay: SharedRelay,
    hook: Option<CleanupEnvHook<SharedRelay>>,
    upcalls: Option<ThreadsafeFunction<Up, ErrorStrategy::Fatal>>,
    thread_id: i32,
    thread_exited: Arc<AtomicBool>,
}

#[napi]
impl DataPlane {
    /// Hands the connection on socket `fd` over (a duplicate is taken: the caller destroys its
    /// own socket afterwards). `input`: bytes read and not yet taken as packets.
    #[napi(constructor)]
    pub fn new(
        mut env: Env,
        fd: i32,
        handover: PlaneHandover,
        input: Uint8Array,
        on_upcalls: JsFunction,
    ) -> Result<Self> {
        let plane = Plane::new(Handover {
            outgoing: handover.outgoing.direction(),
            incoming: handover.incoming.direction(),
            send_sequence: handover.send_sequence,
            receive_sequence: handover.receive_sequence,
            limits: ChannelLimits {
                max_packet: handover.max_packet,
                window_target: handover.window_target,
            },
            rekey_bytes: handover.rekey_bytes.max(0.0) as u64,
        })
        .map_err(plane_error)?;
        let ssh = duplicate(fd)
            .map_err(|e| Error::new(Status::InvalidArg, format!("cannot take the socket: {e}")))?;
        let tsfn: ThreadsafeFunction<Up, ErrorStrategy::Fatal> =
            on_upcalls.create_threadsafe_function(0, to_js)?;
        let sink_tsfn = tsfn.clone();
        let relay = Relay::start(
            plane,
            ssh,
            &input,
            Box::new(move |batch, ended| {
                if !batch.is_empty() {
                    sink_tsfn.call(Up::Batch(batch), ThreadsafeFunctionCallMode::NonBlocking);
                }
                if let Some(ended) = ended {
                    sink_tsfn.call(Up::End(ended), ThreadsafeFunctionCallMode::NonBlocking);
                }
            }),
        )
        .map_err(|e| {
            Error::new(
                Status::GenericFailure,
                format!("cannot start the relay: {e}"),
            )
        })?;
        let thread_id = relay.thread_id();
        let thread_exited = relay.exited_flag();
        let relay: SharedRelay = Arc::new(Mutex::new(Some(relay)));
        let hook = env.add_env_cleanup_hook(Arc::clone(&relay), |relay| stop(&relay))?;
        Ok(DataPlane {
            relay,
            hook: Some(hook),
            upcalls: Some(tsfn),
            thread_id,
            thread_exited,
        })
    }

    fn with<T>(&self, act: impl FnOnce(&Relay) -> std::result::Result<T, PlaneError>) -> Result<T> {
        let guard = self.relay.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(relay) => act(relay).map_err(plane_error),
            None => Err(closed()),
        }
    }

    /// Frames a control payload: its sequence number, or -1 when a key exchange defers it.
    #[napi]
    pub fn send(&self, payload: Uint8Array) -> Result<i64> {
        self.with(|relay| relay.send(&payload))
            .map(|sequence| sequence.map(i64::from).unwrap_or(-1))
    }

    /// Frames our NEWKEYS and switches to `keys` after it.
    #[napi]
    pub fn send_new_keys(&self, keys: PlaneKeys, reset_sequence: bool) -> Result<()> {
        let keys = keys.direction();
        self.with(|relay| relay.send_newkeys(&keys, reset_sequence))
    }

    /// The incoming keys that follow the server's NEWKEYS.
    #[napi]
    pub fn set_incoming_keys(&self, keys: PlaneKeys, reset_sequence: bool) -> Result<()> {
        let keys = keys.direction();
        self.with(|relay| relay.set_incoming_keys(&keys, reset_sequence))
    }

    #[napi]
    pub fn set_limits(&self, max_packet: u32, window_target: u32) -> Result<()> {
        self.with(|relay| {
            relay.set_limits(ChannelLimits {
                max_packet,
                window_target,
            })
        })
    }

    /// Adopts an open channel with its connected local socket `fd` (a duplicate is taken),
    /// framing our `confirmation` of it in the same step.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn adopt(
        &self,
        local_id: u32,
        remote_id: u32,
        local_window: u32,
        remote_window: u32,
        remote_max_packet: u32,
        confirmation: Uint8Array,
        fd: i32,
    ) -> Result<()> {
        let socket = duplicate(fd)
            .map_err(|e| Error::new(Status::InvalidArg, format!("cannot take the socket: {e}")))?;
        let guard = self.relay.lock().unwrap_or_else(|p| p.into_inner());
        let relay = guard.as_ref().ok_or_else(closed)?;
        relay
            .adopt(
                local_id,
                remote_id,
                local_window,
                remote_window,
                remote_max_packet,
                Some(&confirmation),
                socket,
            )
            .map_err(|e| match e {
                revtun_io::relay::AdoptError::Io(e) => Error::new(
                    Status::GenericFailure,
                    format!("1020: cannot adopt the socket: {e}"),
                ),
                revtun_io::relay::AdoptError::Plane(e) => plane_error(e),
            })
    }

    #[napi]
    pub fn close_channel(&self, local_id: u32) -> Result<()> {
        self.with(|relay| relay.close_channel(local_id))
    }

    /// An adopted channel's `[bytesSent, bytesReceived, buffered]` (payload each way, and the
    /// bytes waiting for its local socket), or null once it is not the plane's.
    #[napi]
    pub fn channel_stats(&self, local_id: u32) -> Result<Option<Vec<f64>>> {
        let guard = self.relay.lock().unwrap_or_else(|p| p.into_inner());
        Ok(guard
            .as_ref()
            .and_then(|relay| relay.channel_stats(local_id))
            .map(|(sent, received, buffered)| vec![sent as f64, received as f64, buffered as f64]))
    }

    /// The upcalls of `bytes` payload bytes were handled: the SSH socket may be read again.
    #[napi]
    pub fn upcalls_taken(&self, bytes: u32) -> Result<()> {
        self.with(|relay| {
            relay.upcalls_taken(bytes as usize);
            Ok(())
        })
    }

    /// MaxTransferRate in bytes per second each way (0: none), applied at once.
    #[napi]
    pub fn set_rate(&self, bytes_per_second: f64) -> Result<()> {
        let rate = if bytes_per_second.is_finite() && bytes_per_second > 0.0 {
            bytes_per_second as u64
        } else {
            0
        };
        self.with(|relay| relay.set_rate(rate))
    }

    /// Channel data bytes the relay has moved, both ways, over all adopted channels (null once
    /// it is closed).
    #[napi]
    pub fn channel_bytes(&self) -> Option<f64> {
        let guard = self.relay.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(|relay| relay.channel_bytes() as f64)
    }

    /// The relay thread's id (for tests that check it is gone).
    #[napi(getter)]
    pub fn thread_id(&self) -> i32 {
        self.thread_id
    }

    /// Whether the relay thread has ended (true once `close` returned: it joins the thread).
    #[napi(getter)]
    pub fn thread_exited(&self) -> bool {
        self.thread_exited.load(Ordering::Acquire)
    }

    /// Keeps the event loop alive while the relay runs (the default).
    #[napi(js_name = "ref")]
    pub fn refer(&mut self, env: Env) -> Result<()> {
        match self.upcalls.as_mut() {
            Some(tsfn) => tsfn.refer(&env),
            None => Ok(()),
        }
    }

    /// Lets the process exit while the relay runs.
    #[napi]
    pub fn unref(&mut self, env: Env) -> Result<()> {
        match self.upcalls.as_mut() {
            Some(tsfn) => tsfn.unref(&env),
            None => Ok(()),
        }
    }

    /// Stops the relay (what it had framed is written first, as far as the socket takes it at
    /// once), joins its thread and closes its sockets. Safe to call twice.
    #[napi]
    pub fn close(&mut self, mut env: Env) -> Result<()> {
        stop(&self.relay);
        if let Some(hook) = self.hook.take() {
            env.remove_env_cleanup_hook(hook)?;
        }
        if let Some(tsfn) = self.upcalls.take() {
            // The relay's own reference went with its thread; this one lets the loop go.
            let _ = tsfn.abort();
        }
        Ok(())
    }
}
