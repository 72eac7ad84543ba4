//! Thin wrappers over the few Linux calls the probe needs. Every function returns an
//! `io::Result` instead of panicking, so nothing here can unwind into Node.

use std::io;
use std::os::fd::RawFd;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A new eventfd: a counter another thread can wait on (blocking or through epoll).
pub fn eventfd(nonblocking: bool) -> io::Result<RawFd> {
    let flags = libc::EFD_CLOEXEC | if nonblocking { libc::EFD_NONBLOCK } else { 0 };
    check(unsafe { libc::eventfd(0, flags) })
}

/// Adds 1 to an eventfd's counter, waking whoever waits on it.
pub fn eventfd_signal(fd: RawFd) -> io::Result<()> {
    let one: u64 = 1;
    loop {
        let n = unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
        if n == 8 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Reads (and so resets) an eventfd's counter; blocks if the fd is blocking and the count is 0.
/// Returns 0 for a non-blocking fd with nothing to read.
pub fn eventfd_take(fd: RawFd) -> io::Result<u64> {
    let mut value: u64 = 0;
    loop {
        let n = unsafe { libc::read(fd, (&mut value as *mut u64).cast(), 8) };
        if n == 8 {
            return Ok(value);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(0),
            _ => return Err(e),
        }
    }
}

pub fn close(fd: RawFd) {
    if fd >= 0 {
        unsafe { libc::close(fd) };
    }
}

fn clock_micros(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

/// CPU time of the whole process in microseconds (every thread, ended ones included). The
/// calling thread's share is exact; a thread running elsewhere at that moment may lag by up
/// to a scheduler tick, so sample where the others are blocked.
pub fn process_cpu_micros() -> f64 {
    clock_micros(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time of the calling thread in microseconds (exact).
pub fn thread_cpu_micros() -> f64 {
    clock_micros(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// dup() with close-on-exec, then O_NONBLOCK on the new descriptor (shared with the original's
/// open file description, which for a libuv socket is non-blocking already).
pub fn dup_nonblocking(fd: RawFd) -> io::Result<RawFd> {
    let copy = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    let flags = unsafe { libc::fcntl(copy, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(copy, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        let e = io::Error::last_os_error();
        close(copy);
        return Err(e);
    }
    Ok(copy)
}

/// True if `fd` is a connected stream socket (what `adopt` accepts).
pub fn is_stream_socket(fd: RawFd) -> bool {
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    ret == 0 && kind == libc::SOCK_STREAM
}

pub fn epoll_create() -> io::Result<RawFd> {
    check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
}

pub fn epoll_add(epfd: RawFd, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    check(unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(|_| ())
}

pub fn epoll_del(epfd: RawFd, fd: RawFd) {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, &mut ev) };
}

/// Waits for events; an interrupted wait returns 0 events.
pub fn epoll_wait(
    epfd: RawFd,
    events: &mut [libc::epoll_event],
    timeout_ms: i32,
) -> io::Result<usize> {
    let n = unsafe {
        libc::epoll_wait(
            epfd,
            events.as_mut_ptr(),
            events.len() as libc::c_int,
            timeout_ms,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

pub enum Io {
    Done(usize),
    WouldBlock,
    Failed,
}

fn io_result(n: isize) -> Io {
    if n >= 0 {
        return Io::Done(n as usize);
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock => Io::WouldBlock,
        // An interrupted call moved nothing: say so as 0 bytes would mean EOF, so retry here.
        io::ErrorKind::Interrupted => Io::WouldBlock,
        _ => Io::Failed,
    }
}

pub fn recv(fd: RawFd, buf: &mut [u8]) -> Io {
    loop {
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return io_result(n);
    }
}

pub fn send(fd: RawFd, buf: &[u8]) -> Io {
    loop {
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return io_result(n);
    }
}

pub fn shutdown_write(fd: RawFd) -> io::Result<()> {
    check(unsafe { libc::shutdown(fd, libc::SHUT_WR) }).map(|_| ())
}

/// A non-blocking TCP connect to 127.0.0.1:`port` with TCP_NODELAY; usually still in progress
/// on return (EINPROGRESS), to be finished when epoll reports the socket writable.
pub fn connect_loopback(port: u16) -> io::Result<RawFd> {
    let fd = check(unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    let one: libc::c_int = 1;
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
        },
        sin_zero: [0; 8],
    };
    let ret = unsafe {
        libc::connect(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            close(fd);
            return Err(e);
        }
    }
    Ok(fd)
}

/// SO_ERROR: 0 once a non-blocking connect has succeeded.
pub fn socket_error(fd: RawFd) -> libc::c_int {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return -1;
    }
    err
}
