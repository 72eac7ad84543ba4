//! TCP socket options that Node's net.Socket cannot set itself: the kernel's receive and send
//! buffer sizes (SO_RCVBUF, SO_SNDBUF), the keep-alive probe timing (TCP_KEEPIDLE,
//! TCP_KEEPINTVL, TCP_KEEPCNT) and SO_LINGER, set with setsockopt(2) on the file descriptor
//! of a socket that Node owns, and read back with getsockopt(2) so that the caller sees the
//! value the kernel kept (Linux doubles SO_RCVBUF and SO_SNDBUF and clamps them to its
//! limits, see socket(7)).
//!
//! The descriptor stays Node's: nothing here closes it or keeps it past the call. A bad
//! descriptor or a refused value comes back as an Error naming the option and the errno.

use napi::{Error, Result, Status};
use napi_derive::napi;

/// The options as the kernel reports them for one socket. Times are in seconds, as the
/// kernel keeps them.
#[napi(object)]
pub struct SocketOptionValues {
    pub receive_buffer: i32,
    pub send_buffer: i32,
    pub keep_alive: bool,
    /// TCP_KEEPIDLE (TCP_KEEPALIVE on macOS): idle seconds before the first probe.
    pub keep_alive_idle: i32,
    /// TCP_KEEPINTVL: seconds between unanswered probes.
    pub keep_alive_interval: i32,
    /// TCP_KEEPCNT: unanswered probes before the connection is dropped.
    pub keep_alive_count: i32,
    pub linger: bool,
    /// SO_LINGER's l_linger, in seconds.
    pub linger_seconds: i32,
}

#[cfg(unix)]
mod unix {
    use std::io;
    use std::mem::size_of;

    pub type Level = libc::c_int;
    pub type Name = libc::c_int;

    /// The (level, name) pair of each option the TypeScript side names, or None for a name
    /// this platform has no option for.
    pub fn option(name: &str) -> Option<(Level, Name)> {
        Some(match name {
            "receiveBuffer" => (libc::SOL_SOCKET, libc::SO_RCVBUF),
            "sendBuffer" => (libc::SOL_SOCKET, libc::SO_SNDBUF),
            "keepAlive" => (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
            // The keep-alive timing options are not POSIX: only the systems whose libc
            // bindings have them get them (OpenBSD, for one, has none), so that the addon
            // still builds elsewhere and these names are simply unsupported there.
            #[cfg(any(target_os = "macos", target_os = "ios"))]
            "keepAliveIdle" => (libc::IPPROTO_TCP, libc::TCP_KEEPALIVE),
            #[cfg(any(
                target_os = "linux",
                target_os = "android",
                target_os = "freebsd",
                target_os = "netbsd",
                target_os = "dragonfly"
            ))]
            "keepAliveIdle" => (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
            #[cfg(any(
                target_os = "linux",
                target_os = "android",
                target_os = "freebsd",
                target_os = "netbsd",
                target_os = "dragonfly",
                target_os = "macos",
                target_os = "ios"
            ))]
            "keepAliveInterval" => (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
            #[cfg(any(
                target_os = "linux",
                target_os = "android",
                target_os = "freebsd",
                target_os = "netbsd",
                target_os = "dragonfly",
                target_os = "macos",
                target_os = "ios"
            ))]
            "keepAliveCount" => (libc::IPPROTO_TCP, libc::TCP_KEEPCNT),
            _ => return None,
        })
    }

    pub fn set_int(fd: i32, (level, name): (Level, Name), value: i32) -> io::Result<()> {
        let value: libc::c_int = value;
        // SAFETY: `value` lives across the call and its size is passed; the kernel only reads
        // it. A descriptor that is not a socket fails with ENOTSOCK or EBADF, not UB.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub fn get_int(fd: i32, (level, name): (Level, Name)) -> io::Result<i32> {
        let mut value: libc::c_int = 0;
        let mut length = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `length` bytes into `value`, which outlives the call.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                level,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut length,
            )
        };
        if rc == 0 {
            Ok(value)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub fn get_linger(fd: i32) -> io::Result<(bool, i32)> {
        let mut linger = libc::linger {
            l_onoff: 0,
            l_linger: 0,
        };
        let mut length = size_of::<libc::linger>() as libc::socklen_t;
        // SAFETY: as get_int, with a struct linger.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&mut linger as *mut libc::linger).cast(),
                &mut length,
            )
        };
        if rc == 0 {
            Ok((linger.l_onoff != 0, linger.l_linger))
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

fn failure(what: &str, error: std::io::Error) -> Error {
    Error::new(Status::GenericFailure, format!("{what}: {error}"))
}

fn check_fd(fd: i32) -> Result<()> {
    if fd < 0 {
        return Err(Error::new(
            Status::InvalidArg,
            format!("{fd} is not an open file descriptor"),
        ));
    }
    Ok(())
}

/// Sets one integer option (receiveBuffer, sendBuffer, keepAlive, keepAliveIdle,
/// keepAliveInterval, keepAliveCount) on the socket `fd`.
#[napi]
pub fn set_socket_option(fd: i32, name: String, value: i32) -> Result<()> {
    check_fd(fd)?;
    #[cfg(unix)]
    {
        let option = unix::option(&name).ok_or_else(|| {
            Error::new(
                Status::InvalidArg,
                format!("no socket option {name} on this platform"),
            )
        })?;
        unix::set_int(fd, option, value)
            .map_err(|e| failure(&format!("setsockopt({name}={value})"), e))
    }
    #[cfg(not(unix))]
    {
        let _ = (name, value);
        Err(Error::new(
            Status::GenericFailure,
            "socket options are set on Unix descriptors only",
        ))
    }
}

/// Every option above as the kernel holds it now.
#[napi]
pub fn get_socket_options(fd: i32) -> Result<SocketOptionValues> {
    check_fd(fd)?;
    #[cfg(unix)]
    {
        // An option this platform does not have reads as 0 ("the system's").
        let get = |name: &str| match unix::option(name) {
            Some(option) => {
                unix::get_int(fd, option).map_err(|e| failure(&format!("getsockopt({name})"), e))
            }
            None => Ok(0),
        };
        let (linger, linger_seconds) =
            unix::get_linger(fd).map_err(|e| failure("getsockopt(SO_LINGER)", e))?;
        Ok(SocketOptionValues {
            receive_buffer: get("receiveBuffer")?,
            send_buffer: get("sendBuffer")?,
            keep_alive: get("keepAlive")? != 0,
            keep_alive_idle: get("keepAliveIdle")?,
            keep_alive_interval: get("keepAliveInterval")?,
            keep_alive_count: get("keepAliveCount")?,
            linger,
            linger_seconds,
        })
    }
    #[cfg(not(unix))]
    {
        Err(Error::new(
            Status::GenericFailure,
            "socket options are read on Unix descriptors only",
        ))
    }
}
