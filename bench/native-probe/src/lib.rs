//! Measurements for issue 15 (a native data plane in the addon), loaded from Node as probe.node:
//!
//! - the cost of a ThreadsafeFunction (TSFN) hop, one at a time (ping-pong: a native thread
//!   posts, JS answers with a synchronous call that writes an eventfd the thread waits on) and
//!   streamed in batches (a thread posts M 64-byte items, B per call);
//! - the cost of a trivial synchronous JS -> native call, and of one that writes an eventfd;
//! - a relay that takes over two connected TCP sockets from Node (`adopt`) and moves their
//!   bytes on a native thread: one thread per process or one per pair (see relay.rs).
//!
//! No export may unwind into Node: every one is `catch_unwind`, and the code paths return
//! errors instead of panicking. Threads are joined: the probe threads by `joinProbe()` after
//! their `onDone`, the relay threads by `shutdown()` (and finished per-pair threads on every
//! adopt/stats call).

#![deny(clippy::all)]

mod relay;
mod sys;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{
    ErrorStrategy, ThreadSafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi::{JsFunction, JsUnknown, Status};
use napi_derive::napi;
use relay::{Pair, RelayThread};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

const ITEM: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn io_err(context: &str, e: std::io::Error) -> Error {
    Error::new(Status::GenericFailure, format!("{context}: {e}"))
}

// ---------------------------------------------------------------- synchronous calls

/// Does nothing: the floor of a JS -> native call through napi-rs.
#[napi(catch_unwind)]
pub fn noop() {}

struct Waiter {
    fd: RawFd,
    join: JoinHandle<(u64, f64)>,
}

static WAITER: Mutex<Option<Waiter>> = Mutex::new(None);
static WAITER_FD: AtomicI32 = AtomicI32::new(-1);
static WAITER_STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes 1 to the waiter's eventfd (see startWaiter); without a waiter, to an eventfd nobody
/// reads (the syscall alone). Returns false if there is no eventfd.
#[napi(catch_unwind)]
pub fn wake() -> bool {
    let fd = WAITER_FD.load(Ordering::Acquire);
    fd >= 0 && sys::eventfd_signal(fd).is_ok()
}

/// Creates the eventfd wake() writes; with `thread`, also a thread blocked in epoll_wait on it
/// that counts its wake-ups (as a relay thread would be woken by a command).
#[napi(catch_unwind)]
pub fn start_waiter(thread: bool) -> Result<()> {
    let mut slot = lock(&WAITER);
    if slot.is_some() || WAITER_FD.load(Ordering::Acquire) >= 0 {
        return Err(Error::new(Status::GenericFailure, "a waiter is running"));
    }
    let fd = sys::eventfd(true).map_err(|e| io_err("eventfd", e))?;
    WAITER_STOP.store(false, Ordering::Release);
    if thread {
        let epfd = match sys::epoll_create() {
            Ok(epfd) => epfd,
            Err(e) => {
                sys::close(fd);
                return Err(io_err("epoll_create", e));
            }
        };
        if let Err(e) = sys::epoll_add(epfd, fd, libc::EPOLLIN as u32, 0) {
            sys::close(epfd);
            sys::close(fd);
            return Err(io_err("epoll_ctl", e));
        }
        let spawned = std::thread::Builder::new()
            .name("probe-waiter".into())
            .spawn(move || {
                let cpu0 = sys::thread_cpu_micros();
                let mut wakeups = 0u64;
                let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
                // Bounded: a waiter nobody stops ends by itself after 60 s without a wake-up.
                while let Ok(n) = sys::epoll_wait(epfd, &mut events, 60_000) {
                    if n == 0 {
                        break;
                    }
                    let _ = sys::eventfd_take(fd);
                    wakeups += 1;
                    if WAITER_STOP.load(Ordering::Acquire) {
                        break;
                    }
                }
                sys::close(epfd);
                (wakeups, sys::thread_cpu_micros() - cpu0)
            });
        match spawned {
            Ok(join) => *slot = Some(Waiter { fd, join }),
            Err(e) => {
                sys::close(epfd);
                sys::close(fd);
                return Err(io_err("spawn", e));
            }
        }
    }
    WAITER_FD.store(fd, Ordering::Release);
    Ok(())
}

#[napi(object)]
pub struct WaiterResult {
    pub wakeups: f64,
    pub thread_cpu_micros: f64,
}

/// Stops and joins the waiter thread (if any) and closes the eventfd.
#[napi(catch_unwind)]
pub fn stop_waiter() -> WaiterResult {
    let fd = WAITER_FD.swap(-1, Ordering::AcqRel);
    let waiter = lock(&WAITER).take();
    let mut result = WaiterResult {
        wakeups: 0.0,
        thread_cpu_micros: 0.0,
    };
    if let Some(w) = waiter {
        WAITER_STOP.store(true, Ordering::Release);
        let _ = sys::eventfd_signal(w.fd);
        if let Ok((wakeups, cpu)) = w.join.join() {
            // The last wake-up was the stop signal.
            result.wakeups = wakeups.saturating_sub(1) as f64;
            result.thread_cpu_micros = cpu;
        }
    }
    sys::close(fd);
    result
}

// ---------------------------------------------------------------- TSFN probes

/// The probe thread's eventfd, written by pong(); -1 when no probe runs.
static PROBE_FD: AtomicI32 = AtomicI32::new(-1);
static PROBE_THREAD: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);

/// JS's answer to the probe thread: wakes it (an eventfd write).
#[napi(catch_unwind)]
pub fn pong() -> bool {
    let fd = PROBE_FD.load(Ordering::Acquire);
    fd >= 0 && sys::eventfd_signal(fd).is_ok()
}

/// Joins the probe thread after its onDone; true if there was one.
#[napi(catch_unwind)]
pub fn join_probe() -> bool {
    match lock(&PROBE_THREAD).take() {
        Some(join) => {
            let _ = join.join();
            true
        }
        None => false,
    }
}

/// Waits (at most `ms`) for the eventfd to be written, then resets it.
fn wait_fd(fd: RawFd, ms: i32) -> std::result::Result<(), String> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            return sys::eventfd_take(fd).map(|_| ()).map_err(|e| e.to_string());
        }
        if n == 0 {
            return Err(format!("no answer from JS within {ms} ms"));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e.to_string());
        }
    }
}

fn claim_probe() -> Result<RawFd> {
    if lock(&PROBE_THREAD).is_some() {
        return Err(Error::new(
            Status::GenericFailure,
            "a probe is running (or was not joined)",
        ));
    }
    let fd = sys::eventfd(true).map_err(|e| io_err("eventfd", e))?;
    PROBE_FD.store(fd, Ordering::Release);
    Ok(fd)
}

fn release_probe(fd: RawFd) {
    PROBE_FD.store(-1, Ordering::Release);
    sys::close(fd);
}

/// Restricts the calling thread to one CPU (`cpu` >= 0) or lets it run anywhere (-1).
fn pin(cpu: i32) -> bool {
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= libc::CPU_SETSIZE {
            return false; // CPU_SET would index past the set
        }
        if cpu >= 0 {
            libc::CPU_SET(cpu as usize, &mut set);
        } else {
            let n = libc::sysconf(libc::_SC_NPROCESSORS_CONF).clamp(1, 1024) as usize;
            for c in 0..n {
                libc::CPU_SET(c, &mut set);
            }
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Pins the calling (JS) thread to `cpu`, or unpins it with -1: to compare a TSFN hop between
/// threads on one core with one between cores.
#[napi(catch_unwind)]
pub fn pin_current_thread(cpu: i32) -> bool {
    pin(cpu)
}

#[napi(object)]
pub struct PingPongResult {
    pub round_trips: f64,
    pub mean_nanos: f64,
    pub min_nanos: f64,
    pub p50_nanos: f64,
    pub p90_nanos: f64,
    pub p99_nanos: f64,
    /// Whole-process CPU (RUSAGE_SELF) over the timed round trips.
    pub process_cpu_micros: f64,
    /// The probe thread's own CPU.
    pub thread_cpu_micros: f64,
    pub error: Option<String>,
}

/// Starts a thread that does `warmup` untimed then `n` timed round trips: post `i` through a
/// TSFN to `onItem`, wait for JS to call pong(). Reports to `onDone(result)`; then call joinProbe().
/// `probeCpu` >= 0 pins the thread to that CPU.
#[napi(catch_unwind)]
pub fn ping_pong(
    n: u32,
    warmup: u32,
    probe_cpu: i32,
    on_item: JsFunction,
    on_done: JsFunction,
) -> Result<()> {
    let item: ThreadsafeFunction<u32, ErrorStrategy::Fatal> = on_item
        .create_threadsafe_function(0, |ctx: ThreadSafeCallContext<u32>| Ok(vec![ctx.value]))?;
    let done: ThreadsafeFunction<PingPongResult, ErrorStrategy::Fatal> = on_done
        .create_threadsafe_function(0, |ctx: ThreadSafeCallContext<PingPongResult>| {
            Ok(vec![ctx.value])
        })?;
    let fd = claim_probe()?;
    let spawned = std::thread::Builder::new()
        .name("probe-pingpong".into())
        .spawn(move || {
            if probe_cpu >= 0 {
                pin(probe_cpu);
            }
            let mut error = None;
            let mut samples: Vec<u64> = Vec::with_capacity(n as usize);
            let mut cpu = (0.0, 0.0);
            'run: for (phase, count) in [(0, warmup), (1, n)] {
                if phase == 1 {
                    cpu = (sys::process_cpu_micros(), sys::thread_cpu_micros());
                }
                for i in 0..count {
                    let t = Instant::now();
                    let status = item.call(i, ThreadsafeFunctionCallMode::NonBlocking);
                    if status != Status::Ok {
                        error = Some(format!("TSFN call: {status}"));
                        break 'run;
                    }
                    if let Err(e) = wait_fd(fd, 5000) {
                        error = Some(e);
                        break 'run;
                    }
                    if phase == 1 {
                        samples.push(t.elapsed().as_nanos() as u64);
                    }
                }
            }
            let process_cpu = sys::process_cpu_micros() - cpu.0;
            let thread_cpu = sys::thread_cpu_micros() - cpu.1;
            drop(item);
            release_probe(fd);
            samples.sort_unstable();
            let at = |q: f64| -> f64 {
                if samples.is_empty() {
                    return f64::NAN;
                }
                samples[((samples.len() - 1) as f64 * q) as usize] as f64
            };
            let total: u64 = samples.iter().sum();
            let result = PingPongResult {
                round_trips: samples.len() as f64,
                mean_nanos: total as f64 / samples.len().max(1) as f64,
                min_nanos: at(0.0),
                p50_nanos: at(0.5),
                p90_nanos: at(0.9),
                p99_nanos: at(0.99),
                process_cpu_micros: process_cpu,
                thread_cpu_micros: thread_cpu,
                error,
            };
            done.call(result, ThreadsafeFunctionCallMode::NonBlocking);
        });
    match spawned {
        Ok(join) => {
            *lock(&PROBE_THREAD) = Some(join);
            Ok(())
        }
        Err(e) => {
            release_probe(fd);
            Err(io_err("spawn", e))
        }
    }
}

#[napi(object)]
pub struct StreamResult {
    pub items: f64,
    pub batch: f64,
    pub hops: f64,
    /// From the first post until JS said it had seen the last item.
    pub wall_nanos: f64,
    /// How long the thread took to post every hop (it never waits: the queue is unbounded).
    pub post_nanos: f64,
    pub process_cpu_micros: f64,
    pub producer_cpu_micros: f64,
    pub error: Option<String>,
}

/// Starts a thread that posts `items` 64-byte items (a little-endian u32 sequence number, then
/// filler) to `onBatch`, `batch` items per TSFN call: as one Buffer of batch*64 bytes, or with
/// `asArray` as an Array of `batch` 64-byte Buffers. JS calls pong() once it has seen the last
/// item; the thread then reports to `onDone(result)`; then call joinProbe().
#[napi(catch_unwind)]
pub fn stream(
    items: u32,
    batch: u32,
    as_array: bool,
    on_batch: JsFunction,
    on_done: JsFunction,
) -> Result<()> {
    if batch == 0 || items == 0 || !items.is_multiple_of(batch) {
        return Err(Error::new(
            Status::InvalidArg,
            "items must be a positive multiple of batch",
        ));
    }
    let post: ThreadsafeFunction<Vec<u8>, ErrorStrategy::Fatal> = on_batch
        .create_threadsafe_function(0, move |ctx: ThreadSafeCallContext<Vec<u8>>| {
            let value: JsUnknown = if as_array {
                let mut array = ctx.env.create_array_with_length(ctx.value.len() / ITEM)?;
                for (i, chunk) in ctx.value.chunks(ITEM).enumerate() {
                    array.set_element(i as u32, ctx.env.create_buffer_copy(chunk)?.into_raw())?;
                }
                array.into_unknown()
            } else {
                ctx.env
                    .create_buffer_copy(&ctx.value)?
                    .into_raw()
                    .into_unknown()
            };
            Ok(vec![value])
        })?;
    let done: ThreadsafeFunction<StreamResult, ErrorStrategy::Fatal> = on_done
        .create_threadsafe_function(0, |ctx: ThreadSafeCallContext<StreamResult>| {
            Ok(vec![ctx.value])
        })?;
    let fd = claim_probe()?;
    let spawned = std::thread::Builder::new()
        .name("probe-stream".into())
        .spawn(move || {
            let hops = items / batch;
            let filler = [0xa5u8; ITEM - 4];
            let mut error = None;
            let cpu0 = (sys::process_cpu_micros(), sys::thread_cpu_micros());
            let started = Instant::now();
            let mut seq = 0u32;
            for _ in 0..hops {
                let mut payload = Vec::with_capacity(batch as usize * ITEM);
                for _ in 0..batch {
                    payload.extend_from_slice(&seq.to_le_bytes());
                    payload.extend_from_slice(&filler);
                    seq = seq.wrapping_add(1);
                }
                let status = post.call(payload, ThreadsafeFunctionCallMode::NonBlocking);
                if status != Status::Ok {
                    error = Some(format!("TSFN call: {status}"));
                    break;
                }
            }
            let post_nanos = started.elapsed().as_nanos() as f64;
            let producer_cpu = sys::thread_cpu_micros() - cpu0.1;
            if error.is_none() {
                if let Err(e) = wait_fd(fd, 120_000) {
                    error = Some(e);
                }
            }
            let wall_nanos = started.elapsed().as_nanos() as f64;
            let process_cpu = sys::process_cpu_micros() - cpu0.0;
            drop(post);
            release_probe(fd);
            let result = StreamResult {
                items: items as f64,
                batch: batch as f64,
                hops: hops as f64,
                wall_nanos,
                post_nanos,
                process_cpu_micros: process_cpu,
                producer_cpu_micros: producer_cpu,
                error,
            };
            done.call(result, ThreadsafeFunctionCallMode::NonBlocking);
        });
    match spawned {
        Ok(join) => {
            *lock(&PROBE_THREAD) = Some(join);
            Ok(())
        }
        Err(e) => {
            release_probe(fd);
            Err(io_err("spawn", e))
        }
    }
}

/// Creates and releases `n` TSFNs on `f` (the per-connection set-up a TSFN per connection
/// costs); returns nanoseconds per create + release. The handles close later, in the loop.
#[napi(catch_unwind)]
pub fn tsfn_create_release(f: JsFunction, n: u32) -> Result<f64> {
    let started = Instant::now();
    for _ in 0..n {
        let t: ThreadsafeFunction<u32, ErrorStrategy::Fatal> =
            f.create_threadsafe_function(0, |ctx: ThreadSafeCallContext<u32>| Ok(vec![ctx.value]))?;
        drop(t);
    }
    Ok(started.elapsed().as_nanos() as f64 / n.max(1) as f64)
}

// ---------------------------------------------------------------- the relay

static SHARED: Mutex<Option<RelayThread>> = Mutex::new(None);
static PER_PAIR: Mutex<Vec<RelayThread>> = Mutex::new(Vec::new());
const DEFAULT_BUFFER: u32 = 64 * 1024;

fn make_pair(fd_a: i32, fd_b: i32, buffer_bytes: Option<u32>) -> Result<Pair> {
    let capacity = buffer_bytes.unwrap_or(DEFAULT_BUFFER).clamp(4096, 16 << 20) as usize;
    if fd_a == fd_b || !sys::is_stream_socket(fd_a) || !sys::is_stream_socket(fd_b) {
        return Err(Error::new(
            Status::InvalidArg,
            "adopt wants two different stream socket fds",
        ));
    }
    let a = sys::dup_nonblocking(fd_a).map_err(|e| io_err("dup", e))?;
    let b = match sys::dup_nonblocking(fd_b) {
        Ok(b) => b,
        Err(e) => {
            sys::close(a);
            return Err(io_err("dup", e));
        }
    };
    relay::PAIRS_ADOPTED.fetch_add(1, Ordering::Relaxed);
    Ok(Pair::new(a, b, capacity))
}

/// Joins the per-pair threads that have ended.
fn reap() {
    let mut threads = lock(&PER_PAIR);
    let mut i = 0;
    while i < threads.len() {
        if threads[i].is_finished() {
            threads.swap_remove(i).join_now();
        } else {
            i += 1;
        }
    }
}

/// Relays two connected sockets (their fds are dup'd: destroy the JS sockets afterwards) on
/// the process's one relay thread, started on first use.
#[napi(catch_unwind)]
pub fn adopt(fd_a: i32, fd_b: i32, buffer_bytes: Option<u32>) -> Result<()> {
    reap();
    let pair = make_pair(fd_a, fd_b, buffer_bytes)?;
    shared_add(pair)
}

/// Relays one connected socket (dup'd: destroy the JS socket afterwards) to a new connection
/// to 127.0.0.1:`port` that the process's relay thread opens itself (no Node socket on that
/// side): the shape of a forwarded channel whose local connection the data plane would open.
#[napi(catch_unwind)]
pub fn adopt_connect(fd_a: i32, port: u32, buffer_bytes: Option<u32>) -> Result<()> {
    reap();
    let capacity = buffer_bytes.unwrap_or(DEFAULT_BUFFER).clamp(4096, 16 << 20) as usize;
    if port == 0 || port > 65535 || !sys::is_stream_socket(fd_a) {
        return Err(Error::new(
            Status::InvalidArg,
            "adoptConnect wants a stream socket fd and a port",
        ));
    }
    let a = sys::dup_nonblocking(fd_a).map_err(|e| io_err("dup", e))?;
    let b = match sys::connect_loopback(port as u16) {
        Ok(b) => b,
        Err(e) => {
            sys::close(a);
            return Err(io_err("connect", e));
        }
    };
    relay::PAIRS_ADOPTED.fetch_add(1, Ordering::Relaxed);
    shared_add(Pair::connecting(a, b, capacity))
}

fn shared_add(pair: Pair) -> Result<()> {
    let mut shared = lock(&SHARED);
    if shared.as_ref().is_some_and(|t| t.is_finished()) {
        if let Some(old) = shared.take() {
            old.join_now();
        }
    }
    if shared.is_none() {
        match RelayThread::start(None, false) {
            Ok(t) => *shared = Some(t),
            Err(e) => {
                let mut pair = pair;
                drop_pair(&mut pair);
                return Err(io_err("relay thread", e));
            }
        }
    }
    match shared.as_ref() {
        Some(t) => t.add(pair).map_err(|e| io_err("relay queue", e)),
        None => Err(Error::new(Status::GenericFailure, "no relay thread")),
    }
}

fn drop_pair(pair: &mut Pair) {
    pair.close_now();
    relay::PAIRS_FAILED.fetch_add(1, Ordering::Relaxed);
}

/// Relays two connected sockets on a thread of their own, which ends when they are done.
#[napi(catch_unwind)]
pub fn adopt_thread(fd_a: i32, fd_b: i32, buffer_bytes: Option<u32>) -> Result<()> {
    reap();
    let pair = make_pair(fd_a, fd_b, buffer_bytes)?;
    let thread = RelayThread::start(Some(pair), true).map_err(|e| io_err("relay thread", e))?;
    lock(&PER_PAIR).push(thread);
    Ok(())
}

#[napi(object)]
pub struct RelayStats {
    pub pairs_adopted: f64,
    pub pairs_closed: f64,
    pub pairs_failed: f64,
    pub pairs_aborted: f64,
    pub bytes: f64,
    pub threads_started: f64,
    pub threads_joined: f64,
}

fn stats() -> RelayStats {
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed) as f64;
    RelayStats {
        pairs_adopted: get(&relay::PAIRS_ADOPTED),
        pairs_closed: get(&relay::PAIRS_CLOSED),
        pairs_failed: get(&relay::PAIRS_FAILED),
        pairs_aborted: get(&relay::PAIRS_ABORTED),
        bytes: get(&relay::BYTES),
        threads_started: get(&relay::THREADS_STARTED),
        threads_joined: get(&relay::THREADS_JOINED),
    }
}

#[napi(catch_unwind)]
pub fn relay_stats() -> RelayStats {
    reap();
    stats()
}

/// Stops every relay thread (their open pairs are closed) and joins them.
#[napi(catch_unwind)]
pub fn shutdown() -> RelayStats {
    if let Some(t) = lock(&SHARED).take() {
        t.stop();
    }
    let threads: Vec<RelayThread> = lock(&PER_PAIR).drain(..).collect();
    for t in threads {
        t.stop();
    }
    stats()
}

#[napi(object)]
pub struct SpawnResult {
    pub threads: f64,
    pub nanos: f64,
    pub process_cpu_nanos: f64,
}

/// Spawns and joins `n` threads one after the other, each creating and closing an epoll set
/// and an eventfd (what a per-connection relay thread sets up): the fixed cost of that mode.
#[napi(catch_unwind)]
pub fn thread_spawn_join(n: u32) -> SpawnResult {
    let cpu0 = sys::process_cpu_micros();
    let started = Instant::now();
    let mut done = 0u32;
    for _ in 0..n {
        let spawned = std::thread::Builder::new()
            .name("probe-spawn".into())
            .stack_size(256 * 1024)
            .spawn(|| {
                if let (Ok(ep), Ok(ev)) = (sys::epoll_create(), sys::eventfd(true)) {
                    let _ = sys::epoll_add(ep, ev, libc::EPOLLIN as u32, 0);
                    sys::close(ev);
                    sys::close(ep);
                }
            });
        match spawned {
            Ok(join) => {
                let _ = join.join();
                done += 1;
            }
            Err(_) => break,
        }
    }
    let count = done.max(1) as f64;
    SpawnResult {
        threads: done as f64,
        nanos: started.elapsed().as_nanos() as f64 / count,
        process_cpu_nanos: (sys::process_cpu_micros() - cpu0) * 1000.0 / count,
    }
}
