//! The prototype relay: pairs of connected TCP sockets (dup'd from Node's), relayed both ways
//! by a thread that owns them, with half-close and a bounded buffer per direction.
//!
//! One relay thread serves any number of pairs through one epoll set (edge-triggered); the
//! "process" mode has one such thread for every pair of the process, the "connection" mode
//! one thread (and one epoll set) per pair. Commands reach a thread through a queue and an
//! eventfd in its epoll set.

use crate::sys::{self, Io};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The epoll token of a relay thread's command eventfd; a pair's sockets get 2*slot and 2*slot+1.
const WAKE_TOKEN: u64 = u64::MAX;
const EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
const HANGUP: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;

pub static PAIRS_ADOPTED: AtomicU64 = AtomicU64::new(0);
pub static PAIRS_CLOSED: AtomicU64 = AtomicU64::new(0);
pub static PAIRS_FAILED: AtomicU64 = AtomicU64::new(0);
/// Pairs still open when their thread was stopped (shutdown()).
pub static PAIRS_ABORTED: AtomicU64 = AtomicU64::new(0);
pub static BYTES: AtomicU64 = AtomicU64::new(0);
pub static THREADS_STARTED: AtomicU64 = AtomicU64::new(0);
pub static THREADS_JOINED: AtomicU64 = AtomicU64::new(0);

/// One direction: bytes read from one socket, not yet written to the other.
struct Direction {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The source said EOF.
    eof: bool,
    /// EOF passed on: shutdown(SHUT_WR) done on the destination.
    shut: bool,
}

impl Direction {
    fn new(capacity: usize) -> Self {
        Direction {
            buf: vec![0u8; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            shut: false,
        }
    }
}

pub struct Pair {
    fds: [RawFd; 2],
    readable: [bool; 2],
    writable: [bool; 2],
    /// The last event for this side reported a hang-up: read until EOF or EAGAIN, not just until a short read.
    hangup: [bool; 2],
    /// dirs[0]: side 0 -> side 1; dirs[1]: side 1 -> side 0.
    dirs: [Direction; 2],
    /// Side 1 is a non-blocking connect() still in progress (adoptConnect).
    connecting: bool,
}

enum Pumped {
    Open,
    Finished,
    Failed,
}

impl Pair {
    /// Takes ownership of two descriptors (already dup'd and non-blocking).
    pub fn new(a: RawFd, b: RawFd, capacity: usize) -> Self {
        Pair {
            fds: [a, b],
            // Optimistic: try both ways at once; EAGAIN clears these.
            readable: [true, true],
            writable: [true, true],
            hangup: [false, false],
            dirs: [Direction::new(capacity), Direction::new(capacity)],
            connecting: false,
        }
    }

    /// Like `new`, with side 1 a socket whose non-blocking connect() is under way: nothing
    /// moves to or from it until epoll says it is writable and SO_ERROR says connected.
    pub fn connecting(a: RawFd, b: RawFd, capacity: usize) -> Self {
        let mut pair = Pair::new(a, b, capacity);
        pair.connecting = true;
        pair.readable[1] = false;
        pair.writable[1] = false;
        pair
    }

    /// Closes both descriptors of a pair no thread has registered.
    pub fn close_now(&mut self) {
        self.close(-1);
    }

    fn close(&mut self, epfd: RawFd) {
        for fd in &mut self.fds {
            if *fd >= 0 {
                // Explicitly: a registration lives as long as the open file description, and
                // another descriptor (Node's, if JS has not destroyed its socket yet) may keep that open.
                if epfd >= 0 {
                    sys::epoll_del(epfd, *fd);
                }
                sys::close(*fd);
                *fd = -1;
            }
        }
    }

    /// Moves what can be moved without blocking, both ways, until nothing changes.
    fn pump(&mut self) -> Pumped {
        if self.connecting {
            if !self.writable[1] {
                return Pumped::Open;
            }
            if sys::socket_error(self.fds[1]) != 0 {
                return Pumped::Failed;
            }
            self.connecting = false;
            self.readable[1] = true;
        }
        loop {
            let mut progress = false;
            for d in 0..2 {
                let (src, dst) = (d, 1 - d);
                let dir = &mut self.dirs[d];
                if !dir.eof && self.readable[src] && dir.end < dir.buf.len() {
                    let room = dir.buf.len() - dir.end;
                    match sys::recv(self.fds[src], &mut dir.buf[dir.end..]) {
                        Io::Done(0) => {
                            dir.eof = true;
                            self.readable[src] = false;
                            progress = true;
                        }
                        Io::Done(n) => {
                            dir.end += n;
                            BYTES.fetch_add(n as u64, Ordering::Relaxed);
                            // A short read emptied the socket; more data will raise a new edge.
                            // Not after a hang-up, whose EOF is already queued behind the data.
                            if n < room && !self.hangup[src] {
                                self.readable[src] = false;
                            }
                            progress = true;
                        }
                        Io::WouldBlock => self.readable[src] = false,
                        Io::Failed => return Pumped::Failed,
                    }
                }
                if dir.start < dir.end && self.writable[dst] {
                    match sys::send(self.fds[dst], &dir.buf[dir.start..dir.end]) {
                        Io::Done(n) => {
                            dir.start += n;
                            if dir.start == dir.end {
                                dir.start = 0;
                                dir.end = 0;
                            } else {
                                self.writable[dst] = false;
                            }
                            progress = true;
                        }
                        Io::WouldBlock => self.writable[dst] = false,
                        Io::Failed => return Pumped::Failed,
                    }
                }
                if dir.eof && !dir.shut && dir.start == dir.end {
                    if sys::shutdown_write(self.fds[dst]).is_err() {
                        return Pumped::Failed;
                    }
                    dir.shut = true;
                    progress = true;
                }
            }
            if self.dirs[0].shut && self.dirs[1].shut {
                return Pumped::Finished;
            }
            if !progress {
                return Pumped::Open;
            }
        }
    }
}

enum Command {
    Add(Pair),
    Stop,
}

/// What JS-side calls use to reach a relay thread.
pub struct Control {
    queue: Mutex<Vec<Command>>,
    wake_fd: RawFd,
}

impl Control {
    fn send(&self, command: Command) -> io::Result<()> {
        match self.queue.lock() {
            Ok(mut q) => q.push(command),
            Err(_) => return Err(io::Error::other("relay queue poisoned")),
        }
        sys::eventfd_signal(self.wake_fd)
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        sys::close(self.wake_fd);
    }
}

pub struct RelayThread {
    control: Arc<Control>,
    join: JoinHandle<()>,
}

impl RelayThread {
    /// Starts a relay thread; with `exit_when_empty` it ends once its last pair is done
    /// (the per-connection mode), else it waits for more until stopped.
    pub fn start(first: Option<Pair>, exit_when_empty: bool) -> io::Result<RelayThread> {
        let wake_fd = sys::eventfd(true)?;
        let control = Arc::new(Control {
            queue: Mutex::new(first.into_iter().map(Command::Add).collect()),
            wake_fd,
        });
        // (On an early return, dropping `control` closes the eventfd.)
        let epfd = sys::epoll_create()?;
        if let Err(e) = sys::epoll_add(epfd, wake_fd, libc::EPOLLIN as u32, WAKE_TOKEN) {
            sys::close(epfd);
            return Err(e);
        }
        let thread_control = control.clone();
        let spawned = std::thread::Builder::new()
            .name("probe-relay".into())
            .stack_size(256 * 1024)
            .spawn(move || run(thread_control, epfd, exit_when_empty));
        match spawned {
            Ok(join) => {
                THREADS_STARTED.fetch_add(1, Ordering::Relaxed);
                Ok(RelayThread { control, join })
            }
            Err(e) => {
                // The closure (and the pair in the queue) was dropped with the failed spawn; the
                // queue still holds the pair: close its fds.
                if let Ok(mut q) = control.queue.lock() {
                    for c in q.drain(..) {
                        if let Command::Add(mut p) = c {
                            p.close(-1);
                        }
                    }
                }
                sys::close(epfd);
                Err(e)
            }
        }
    }

    pub fn add(&self, pair: Pair) -> io::Result<()> {
        self.control.send(Command::Add(pair))
    }

    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Asks the thread to drop its pairs and end, then joins it.
    pub fn stop(self) {
        let _ = self.control.send(Command::Stop);
        self.join_now();
    }

    pub fn join_now(self) {
        // A panic inside the thread ends only that thread; join reports it as Err, ignored here.
        let _ = self.join.join();
        THREADS_JOINED.fetch_add(1, Ordering::Relaxed);
    }
}

fn run(control: Arc<Control>, epfd: RawFd, exit_when_empty: bool) {
    let mut pairs: Vec<Option<Pair>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut live = 0usize;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut touched: Vec<usize> = Vec::new();
    let mut stopping = false;
    // The queue may already hold the first pair (per-connection mode): read it before waiting.
    let mut check_queue = true;
    'outer: loop {
        if check_queue {
            check_queue = false;
            let commands: Vec<Command> = match control.queue.lock() {
                Ok(mut q) => q.drain(..).collect(),
                Err(_) => vec![Command::Stop],
            };
            for command in commands {
                match command {
                    Command::Stop => stopping = true,
                    Command::Add(mut pair) => {
                        let slot = free.pop().unwrap_or_else(|| {
                            pairs.push(None);
                            pairs.len() - 1
                        });
                        let ok = (0..2).all(|side| {
                            sys::epoll_add(
                                epfd,
                                pair.fds[side],
                                EVENTS,
                                (slot as u64) * 2 + side as u64,
                            )
                            .is_ok()
                        });
                        if !ok {
                            pair.close(epfd);
                            PAIRS_FAILED.fetch_add(1, Ordering::Relaxed);
                            free.push(slot);
                            continue;
                        }
                        pairs[slot] = Some(pair);
                        live += 1;
                        touched.push(slot);
                    }
                }
            }
        }
        if stopping {
            break 'outer;
        }
        // Pump every pair that got an event (or was just added), once each.
        touched.sort_unstable();
        touched.dedup();
        for &slot in &touched {
            let Some(pair) = pairs.get_mut(slot).and_then(|p| p.as_mut()) else {
                continue;
            };
            let outcome = pair.pump();
            if matches!(outcome, Pumped::Open) {
                continue;
            }
            pair.close(epfd);
            let counter = if matches!(outcome, Pumped::Finished) {
                &PAIRS_CLOSED
            } else {
                &PAIRS_FAILED
            };
            counter.fetch_add(1, Ordering::Relaxed);
            pairs[slot] = None;
            free.push(slot);
            live -= 1;
        }
        touched.clear();
        if exit_when_empty && live == 0 {
            break 'outer;
        }
        let n = match sys::epoll_wait(epfd, &mut events, -1) {
            Ok(n) => n,
            Err(_) => break 'outer,
        };
        for ev in &events[..n] {
            let token = ev.u64;
            let flags = ev.events;
            if token == WAKE_TOKEN {
                let _ = sys::eventfd_take(control.wake_fd);
                check_queue = true;
                continue;
            }
            let (slot, side) = ((token / 2) as usize, (token % 2) as usize);
            if let Some(pair) = pairs.get_mut(slot).and_then(|p| p.as_mut()) {
                if flags & (libc::EPOLLIN as u32 | HANGUP) != 0 {
                    pair.readable[side] = true;
                }
                if flags & (libc::EPOLLOUT as u32 | HANGUP) != 0 {
                    pair.writable[side] = true;
                }
                if flags & HANGUP != 0 {
                    pair.hangup[side] = true;
                }
                touched.push(slot);
            }
        }
    }
    // Stopped (or the epoll set failed): drop whatever is still open.
    for pair in pairs.iter_mut().flatten() {
        pair.close(epfd);
        PAIRS_ABORTED.fetch_add(1, Ordering::Relaxed);
    }
    // Pairs queued after the Stop, never registered.
    if let Ok(mut q) = control.queue.lock() {
        for c in q.drain(..) {
            if let Command::Add(mut p) = c {
                p.close(-1);
                PAIRS_ABORTED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    sys::close(epfd);
}
