//! The relay thread: one per handed-over connection, owning the SSH socket and the local
//! sockets of the channels its [`Plane`] adopted, and moving their bytes with no JavaScript
//! on the path. Readiness comes from mio (epoll here), edge-triggered: a socket is read or
//! written until it would block, and one that is left readable because its channel had no
//! window stays marked, so it is read again as soon as credit comes.
//!
//! The TypeScript core talks to it through [`Relay`]'s methods (synchronous: each locks the
//! plane, acts, and wakes the thread), and hears from it through the `upcall` sink, called on
//! the relay thread with a batch of everything one turn of the loop gathered. So that a busy
//! JavaScript thread cannot make memory grow, the SSH socket is not read while more than
//! [`UPCALL_BYTES_IN_FLIGHT`] bytes of upcalls wait to be taken (see `Relay::upcalls_taken`).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::channel::ChannelLimits;
use crate::error::PlaneError;
use crate::local::LocalRead;
use crate::plane::{DirectionKeys, Plane, UpBatch};

/// Above this many bytes of upcalls not yet taken by the TypeScript core, the SSH socket is
/// not read (the peer then waits on TCP's own flow control).
pub const UPCALL_BYTES_IN_FLIGHT: usize = 4 * 1024 * 1024;

/// At most this many bytes are read from one socket per turn of the loop, so one busy
/// channel cannot starve the others or the upcalls.
const READ_BUDGET: usize = 1024 * 1024;

const SSH: Token = Token(0);
const WAKE: Token = Token(1);
const FIRST_LOCAL: usize = 2;

/// Why a relay stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// `Relay::stop` was called.
    Stopped,
    /// The SSH socket reached end of file (the server closed the connection).
    PeerClosed,
    /// The SSH socket failed.
    Io(io::ErrorKind),
    /// The peer broke the protocol (or keys could not be installed): the plane's error.
    Protocol(PlaneError),
    /// The relay thread itself failed (a bug): the connection is dropped, the process lives on.
    Panicked,
}

/// Where the relay's upcalls go: a batch (possibly empty) and, the last time, why it ended.
pub type UpcallSink = Box<dyn FnMut(UpBatch, Option<Ended>) + Send>;

/// A socket the relay owns, as a stream it can read and write (TCP or Unix: the calls are
/// the same on a file descriptor).
struct Socket {
    stream: UnixStream,
    readable: bool,
    writable: bool,
}

impl Socket {
    fn new(fd: OwnedFd) -> io::Result<Socket> {
        let stream = UnixStream::from(fd);
        stream.set_nonblocking(true)?;
        Ok(Socket {
            stream,
            readable: true,
            writable: true,
        })
    }

    fn raw(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

/// What the relay thread and the TypeScript core's calls share. The SSH socket is not here:
/// only the thread uses it, and it closes when the thread ends.
struct State {
    plane: Plane,
    locals: HashMap<usize, Socket>,
    /// Adopted sockets not yet registered with the poll (registration is the thread's).
    adopted: Vec<usize>,
    /// Slot numbers listed during a turn, kept so that a turn allocates nothing.
    scratch: Vec<usize>,
    stop: bool,
    ended: Option<Ended>,
}

struct Shared {
    state: Mutex<State>,
    waker: Waker,
    upcall_bytes: AtomicUsize,
    /// The relay thread's id (gettid), for checking that it has gone.
    thread_id: AtomicI32,
}

/// A handed-over connection and its relay thread. Dropping it stops the thread and closes
/// every socket it owns.
pub struct Relay {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    exited: Arc<AtomicBool>,
}

/// Set by the relay thread as the last thing it does, so that once `stop` (or drop) has joined
/// it the flag reads true. /proc/self/task cannot tell: the kernel removes a thread's entry
/// some time after a join has returned.
struct ExitMark(Arc<AtomicBool>);

impl Drop for ExitMark {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A duplicate of `fd` that the relay owns (the caller keeps and may close its own).
pub fn duplicate(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor or -1; the new one is ours alone.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `copy` is a fresh, valid descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock ends the relay (Ended::Panicked); the state is only
    // read after that to close sockets, which is safe whatever it holds.
    shared
        .state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Relay {
    /// Starts relaying for `plane` over the SSH socket `ssh` (owned from now on). `input` is
    /// what the TypeScript core had read from the socket and not yet taken as packets.
    pub fn start(
        mut plane: Plane,
        ssh: OwnedFd,
        input: &[u8],
        upcall: UpcallSink,
    ) -> io::Result<Relay> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let ssh = Socket::new(ssh)?;
        poll.registry().register(
            &mut SourceFd(&ssh.raw()),
            SSH,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let mut rest = input;
        let mut early = None;
        while !rest.is_empty() && early.is_none() {
            let space = plane.ssh_space();
            let n = space.len().min(rest.len());
            space[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            if let Err(e) = plane.ssh_received(n) {
                early = Some(Ended::Protocol(e));
            }
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                plane,
                locals: HashMap::new(),
                adopted: Vec::new(),
                scratch: Vec::new(),
                stop: false,
                ended: early,
            }),
            waker,
            upcall_bytes: AtomicUsize::new(0),
            thread_id: AtomicI32::new(0),
        });
        let thread_shared = Arc::clone(&shared);
        let exited = Arc::new(AtomicBool::new(false));
        let exit_mark = ExitMark(Arc::clone(&exited));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("revtun-relay".into())
            .spawn(move || {
                // Declared first, so dropped after everything else the thread holds.
                let _exit_mark = exit_mark;
                let mut upcall = upcall;
                // SAFETY: gettid has no preconditions.
                thread_shared
                    .thread_id
                    .store(unsafe { libc::gettid() }, Ordering::Release);
                let _ = started_tx.send(());
                let mut ssh = ssh;
                let mut poll = poll;
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    run(&thread_shared, &mut poll, &mut ssh, &mut upcall)
                }));
                drop(ssh);
                let ended = match outcome {
                    Ok(ended) => ended,
                    Err(_) => Ended::Panicked,
                };
                lock(&thread_shared).ended.get_or_insert(ended.clone());
                let stopped = ended == Ended::Stopped;
                let _ = catch_unwind(AssertUnwindSafe(|| upcall(UpBatch::default(), Some(ended))));
                // The local sockets stay until the TypeScript core has heard of the end and
                // stops the relay (as on the JavaScript path, the connection is known to be
                // gone before its targets see their end); then what they were owed is
                // written as far as each takes it, and they close.
                if !stopped {
                    wait_for_stop(&thread_shared, &mut poll);
                }
                let mut state = lock(&thread_shared);
                flush_locals(&mut state);
                state.locals.clear();
            })?;
        // Its id is known (and readable) once start returns.
        let _ = started_rx.recv();
        Ok(Relay {
            shared,
            thread: Some(thread),
            exited,
        })
    }

    fn with_plane<T>(
        &self,
        act: impl FnOnce(&mut Plane) -> Result<T, PlaneError>,
    ) -> Result<T, PlaneError> {
        let mut state = lock(&self.shared);
        // The buckets are read at the caller's time, not at the thread's last turn, which
        // may be long past when the relay was idle.
        state.plane.set_now(Instant::now());
        let result = act(&mut state.plane);
        drop(state);
        let _ = self.shared.waker.wake();
        result
    }

    /// Frames a control payload; its sequence number, or None if a key exchange defers it.
    pub fn send(&self, payload: &[u8]) -> Result<Option<u32>, PlaneError> {
        self.with_plane(|plane| plane.send_payload(payload))
    }

    pub fn send_newkeys(
        &self,
        keys: &DirectionKeys,
        reset_sequence: bool,
    ) -> Result<(), PlaneError> {
        self.with_plane(|plane| plane.send_newkeys(keys, reset_sequence))
    }

    pub fn set_incoming_keys(
        &self,
        keys: &DirectionKeys,
        reset_sequence: bool,
    ) -> Result<(), PlaneError> {
        self.with_plane(|plane| plane.set_incoming_keys(keys, reset_sequence))
    }

    pub fn set_limits(&self, limits: ChannelLimits) -> Result<(), PlaneError> {
        // The thread is woken only if the new limits framed something (credit now due).
        let mut state = lock(&self.shared);
        state.plane.set_now(Instant::now());
        let before = state.plane.ssh_pending().len();
        let result = state.plane.set_limits(limits);
        let framed = state.plane.ssh_pending().len() != before;
        drop(state);
        if framed {
            let _ = self.shared.waker.wake();
        }
        result
    }

    pub fn close_channel(&self, local_id: u32) -> Result<(), PlaneError> {
        self.with_plane(|plane| plane.close_channel(local_id))
    }

    /// Adopts an open channel and its connected local socket `fd` (owned from now on), framing
    /// `confirmation` with it (see `Plane::adopt`).
    // The channel's fields as the TypeScript core hands them over, one call per adoption.
    #[allow(clippy::too_many_arguments)]
    pub fn adopt(
        &self,
        local_id: u32,
        remote_id: u32,
        local_window: u32,
        remote_window: u32,
        remote_max_packet: u32,
        confirmation: Option<&[u8]>,
        fd: OwnedFd,
    ) -> Result<(), AdoptError> {
        let socket = Socket::new(fd).map_err(AdoptError::Io)?;
        let mut state = lock(&self.shared);
        state.plane.set_now(Instant::now());
        let slot = state
            .plane
            .adopt(
                local_id,
                remote_id,
                local_window,
                remote_window,
                remote_max_packet,
                confirmation,
            )
            .map_err(AdoptError::Plane)?;
        state.locals.insert(slot, socket);
        state.adopted.push(slot);
        drop(state);
        let _ = self.shared.waker.wake();
        Ok(())
    }

    /// The TypeScript core has taken upcalls of `bytes` bytes: the SSH socket may be read again.
    pub fn upcalls_taken(&self, bytes: usize) {
        let before = self
            .shared
            .upcall_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(bytes))
            })
            .unwrap_or(0);
        // The thread needs waking only if it had stopped reading for them.
        if before >= UPCALL_BYTES_IN_FLIGHT && before.saturating_sub(bytes) < UPCALL_BYTES_IN_FLIGHT
        {
            let _ = self.shared.waker.wake();
        }
    }

    /// The relay thread's id (0 before it started), for checking that it has gone.
    pub fn thread_id(&self) -> i32 {
        self.shared.thread_id.load(Ordering::Acquire)
    }

    /// A flag the relay thread sets as it ends; it reads true once `stop` or drop returned.
    pub fn exited_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.exited)
    }

    /// An adopted channel's bytes sent and received so far, and those waiting for its socket.
    pub fn channel_stats(&self, local_id: u32) -> Option<(u64, u64, usize)> {
        lock(&self.shared).plane.channel_stats(local_id)
    }

    /// MaxTransferRate in bytes per second each way (0: none), from now on.
    pub fn set_rate(&self, bytes_per_second: u64) -> Result<(), PlaneError> {
        self.with_plane(|plane| plane.set_rate(bytes_per_second))
    }

    /// Channel data bytes moved natively so far, both ways (see `Plane::channel_bytes`).
    pub fn channel_bytes(&self) -> u64 {
        lock(&self.shared).plane.channel_bytes()
    }

    /// The channels this relay still holds a socket for.
    pub fn live_channels(&self) -> usize {
        lock(&self.shared).locals.len()
    }

    /// Stops the thread after it wrote what it could of the pending output, and closes every
    /// socket. Returns why the relay ended (Stopped, unless it had ended before).
    pub fn stop(&mut self) -> Ended {
        {
            let mut state = lock(&self.shared);
            state.stop = true;
        }
        let _ = self.shared.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        lock(&self.shared).ended.clone().unwrap_or(Ended::Stopped)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why a channel could not be adopted.
#[derive(Debug)]
pub enum AdoptError {
    Io(io::Error),
    Plane(PlaneError),
}

/// Blocks until `Relay::stop` asks (the waker wakes the poll), after the relay ended on its own.
fn wait_for_stop(shared: &Shared, poll: &mut Poll) {
    let mut events = Events::with_capacity(8);
    while !lock(shared).stop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
    }
}

/// The relay loop; returns why it ended.
fn run(shared: &Shared, poll: &mut Poll, ssh: &mut Socket, upcall: &mut UpcallSink) -> Ended {
    let mut events = Events::with_capacity(256);
    let mut again = true; // the first turn runs without waiting: input may have come with the handover
    let mut rate_wait: Option<Duration> = None;
    loop {
        // With work left over from the last turn, the poll only collects what became ready;
        // with work waiting on MaxTransferRate's tokens, it waits no longer than they take.
        let wait = if again {
            Some(Duration::ZERO)
        } else {
            rate_wait
        };
        if let Err(e) = poll.poll(&mut events, wait) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Ended::Io(e.kind());
            }
        }
        let mut state = lock(shared);
        if let Some(ended) = state.ended.clone() {
            return ended;
        }
        if state.stop {
            flush_ssh(&mut state, ssh);
            return Ended::Stopped;
        }
        for slot in std::mem::take(&mut state.adopted) {
            if let Some(socket) = state.locals.get(&slot) {
                let fd = socket.raw();
                if poll
                    .registry()
                    .register(
                        &mut SourceFd(&fd),
                        Token(FIRST_LOCAL + slot),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .is_err()
                {
                    // Cannot be watched: treated as a socket that failed.
                    let _ = state.plane.local_failed(slot);
                }
            }
        }
        for event in events.iter() {
            match event.token() {
                SSH => {
                    ssh.readable |=
                        event.is_readable() || event.is_read_closed() || event.is_error();
                    ssh.writable |= event.is_writable() || event.is_error();
                }
                WAKE => {}
                Token(token) => {
                    if let Some(socket) = state.locals.get_mut(&(token - FIRST_LOCAL)) {
                        socket.readable |=
                            event.is_readable() || event.is_read_closed() || event.is_error();
                        socket.writable |= event.is_writable() || event.is_error();
                    }
                }
            }
        }
        events.clear();
        let in_flight = shared.upcall_bytes.load(Ordering::Acquire);
        state.plane.set_now(Instant::now());
        let outcome = turn(&mut state, ssh, poll, in_flight);
        let locals_readable = state.locals.values().any(|socket| socket.readable);
        rate_wait = state.plane.rate_wait(locals_readable);
        let batch = state.plane.take_upcalls();
        again = outcome.as_ref().map(|more| *more).unwrap_or(false);
        let ended = outcome.err();
        if let Some(ended) = &ended {
            state.ended = Some(ended.clone());
            if let Ended::Protocol(_) = ended {
                state.plane.frame_disconnect();
            }
            flush_ssh(&mut state, ssh);
        }
        drop(state);
        if !batch.is_empty() {
            shared
                .upcall_bytes
                .fetch_add(batch.bytes.len(), Ordering::AcqRel);
            upcall(batch, None);
        }
        if let Some(ended) = ended {
            return ended;
        }
    }
}

/// One turn of work on every socket that is ready. Returns whether work was left undone
/// (a read budget used up), so the next turn starts without waiting.
fn turn(
    state: &mut State,
    ssh: &mut Socket,
    poll: &Poll,
    upcalls_in_flight: usize,
) -> Result<bool, Ended> {
    // A command may have failed the plane (keys that would not install): the connection ends.
    if let Some(error) = state.plane.failure() {
        return Err(Ended::Protocol(error.clone()));
    }
    let mut more = false;
    // The SSH socket first: what it brings may open windows and queue bytes for local sockets.
    let mut budget = READ_BUDGET;
    while ssh.readable
        && !state.plane.ssh_read_paused()
        && upcalls_in_flight < UPCALL_BYTES_IN_FLIGHT
    {
        if budget == 0 {
            more = true;
            break;
        }
        let space = state.plane.ssh_space();
        match ssh.stream.read(space) {
            Ok(0) => return Err(Ended::PeerClosed),
            Ok(n) => {
                budget = budget.saturating_sub(n);
                state.plane.ssh_received(n).map_err(Ended::Protocol)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ssh.readable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Ended::Io(e.kind())),
        }
    }
    // Credit MaxTransferRate withheld, as far as the tokens that came in allow.
    state.plane.grant_withheld().map_err(Ended::Protocol)?;
    // The slots are listed into a vector kept from turn to turn (no allocation per turn).
    let mut slots = std::mem::take(&mut state.scratch);
    slots.clear();
    slots.extend(state.locals.keys().copied());
    for &slot in &slots {
        match local_turn(state, slot) {
            Ok(left) => more |= left,
            Err(ended) => {
                state.scratch = slots;
                return Err(ended);
            }
        }
    }
    if let Err(ended) = write_ssh(state, ssh, false) {
        state.scratch = slots;
        return Err(ended);
    }
    // Sockets whose channel is finished and written out are closed.
    slots.retain(|&slot| state.plane.local_should_close(slot));
    for &slot in &slots {
        if let Some(socket) = state.locals.remove(&slot) {
            let _ = poll.registry().deregister(&mut SourceFd(&socket.raw()));
        }
        state.plane.release(slot);
    }
    state.scratch = slots;
    Ok(more)
}

/// Writes to, shuts down and reads from one local socket.
fn local_turn(state: &mut State, slot: usize) -> Result<bool, Ended> {
    let State { plane, locals, .. } = state;
    let Some(socket) = locals.get_mut(&slot) else {
        return Ok(false);
    };
    while socket.writable && !plane.local_pending(slot).is_empty() {
        match socket.stream.write(plane.local_pending(slot)) {
            Ok(n) => plane.local_written(slot, n).map_err(Ended::Protocol)?,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.writable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                // The target is gone: its channel closes, what was queued for it is dropped.
                plane.local_failed(slot).map_err(Ended::Protocol)?;
                break;
            }
        }
    }
    if plane.local_wants_shutdown(slot) {
        let _ = socket.stream.shutdown(Shutdown::Write);
        plane.local_shut_down(slot).map_err(Ended::Protocol)?;
    }
    let mut budget = READ_BUDGET;
    while socket.readable && plane.local_read_room(slot) > 0 {
        if budget == 0 {
            return Ok(true);
        }
        let stream = &mut socket.stream;
        match plane
            .local_read(slot, |room| stream.read(room))
            .map_err(Ended::Protocol)?
        {
            LocalRead::Data(n) => budget = budget.saturating_sub(n),
            LocalRead::WouldBlock => socket.readable = false,
            LocalRead::Ended | LocalRead::Failed(_) => {
                socket.readable = false;
                break;
            }
        }
    }
    Ok(false)
}

/// Writes the sealed output until the socket would block (or, under MaxTransferRate, until
/// the tokens run out: `everything` ignores them, for the last write before the end).
fn write_ssh(state: &mut State, ssh: &mut Socket, everything: bool) -> Result<(), Ended> {
    loop {
        let out = if everything {
            state.plane.ssh_pending()
        } else {
            state.plane.ssh_writable()
        };
        if !ssh.writable || out.is_empty() {
            return Ok(());
        }
        match ssh.stream.write(out) {
            Ok(n) => state.plane.ssh_written(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ssh.writable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Ended::Io(e.kind())),
        }
    }
}

/// What the peer sent before the connection ended goes to the local sockets as far as each
/// takes it at once, then their write sides are shut: data received intact is not dropped
/// because a later packet was bad.
fn flush_locals(state: &mut State) {
    let State { plane, locals, .. } = state;
    for (&slot, socket) in locals.iter_mut() {
        while !plane.local_pending(slot).is_empty() {
            match socket.stream.write(plane.local_pending(slot)) {
                Ok(n) if n > 0 => plane.local_delivered(slot, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => break,
            }
        }
        let _ = socket.stream.shutdown(Shutdown::Write);
    }
}

/// The last write before the relay ends (a DISCONNECT the core queued, say): as much as the
/// socket takes at once.
fn flush_ssh(state: &mut State, ssh: &mut Socket) {
    ssh.writable = true;
    let _ = write_ssh(state, ssh, true);
}
