// How the SSH connection's socket is closed: Linger and LingerTime, done in user space.
//
// Linger=False ends the connection with a reset (RST) instead of a FIN. LingerTime > 0 gives
// an orderly close that long to send what is queued, and then resets the connection if it has
// not finished. Neither sets SO_LINGER: on Linux, close() of a socket with SO_LINGER {on, N>0}
// blocks for up to N seconds even when the socket is non-blocking, and libuv closes sockets
// on the event loop's thread, so the whole process would stall (3.25 s was measured for N=3).
// net.Socket's resetAndDestroy() (Node >= 18.3; Bun and Deno have it too) sets SO_LINGER
// {on, 0} and closes, which returns at once and makes the kernel send the reset.

import type { Duplex } from 'node:stream';

/** How a close should go; read from the settings when the close happens. */
export interface ClosePolicy {
  /** Linger=False: the connection ends with a reset. */
  reset: boolean;
  /** LingerTime, seconds: how long an orderly close may take before it becomes a reset (0: no bound of revtun's). */
  lingerSeconds: number;
}

export const ORDERLY_CLOSE: ClosePolicy = { reset: false, lingerSeconds: 0 };

/** Sockets whose close is under way here: a second close request leaves the first one alone. */
const closing = new WeakSet<Duplex>();
/** Sockets whose reset is already scheduled. */
const resetting = new WeakSet<Duplex>();

/**
 * Closes with a reset when the transport is a TCP socket (resetAndDestroy), else destroys it
 * (a ProxyCommand's pipes, a jump host's channel: there is no TCP connection of ours to reset).
 */
export function resetOrDestroy(socket: Duplex): void {
  const reset = (socket as { resetAndDestroy?: () => unknown }).resetAndDestroy;
  if (typeof reset !== 'function') {
    socket.destroy();
    return;
  }
  try {
    reset.call(socket);
  } catch {
    // A socket whose handle is already gone cannot be reset; destroying it is all that is left.
    socket.destroy();
  }
}

/**
 * Closes a socket so that the kernel resets the connection. No end(): a FIN would make the
 * close orderly. The reset waits one turn of the event loop, so that what was just written
 * (our DISCONNECT) has been handed to the kernel first.
 */
export function closeWithReset(socket: Duplex): void {
  if (resetting.has(socket)) return;
  resetting.add(socket);
  closing.add(socket);
  setImmediate(() => {
    if (!socket.destroyed) resetOrDestroy(socket);
  });
}

/**
 * Closes a socket after what is queued has been written. With Linger=False the close is a
 * reset. Otherwise it is an orderly end(), bounded by LingerTime when set (then the connection
 * is reset, as the reference has it for data that could not be sent in time) or else by
 * `graceMs` (then it is destroyed: a server that never closes its end must not keep the socket
 * and the process around). `graceMs` null destroys the socket at once when no LingerTime is set.
 * The timers are unref'd and cleared when the socket closes. Safe to call more than once: a
 * close already under way is not restarted or cut short by a later call.
 */
export function closeSocket(socket: Duplex, policy: ClosePolicy, graceMs: number | null): void {
  if (socket.destroyed) return;
  if (policy.reset) {
    closeWithReset(socket);
    return;
  }
  if (closing.has(socket)) return;
  if (policy.lingerSeconds <= 0 && graceMs === null) {
    socket.destroy();
    return;
  }
  closing.add(socket);
  if (policy.lingerSeconds <= 0) {
    socket.end();
    const kill = setTimeout(() => socket.destroy(), graceMs!);
    kill.unref();
    socket.once('close', () => clearTimeout(kill));
    return;
  }
  lingerThenReset(socket, policy.lingerSeconds * 1000);
}

/**
 * LingerTime: the FIN follows the queued bytes, and the connection is reset if it has not
 * closed after `ms`. libuv refuses to reset a socket while its shutdown (the FIN, queued behind
 * unsent bytes) is pending, and Node then drops the handle without closing it; so end() is
 * called only once everything written has reached the kernel (the callback of an empty write
 * queued behind it), and at the deadline the reset is done unless a shutdown is still pending
 * ('finish' not yet emitted), when a plain destroy is all that is safe.
 */
function lingerThenReset(socket: Duplex, ms: number): void {
  let ended = false;
  socket.write(new Uint8Array(0), () => {
    if (socket.destroyed) return;
    ended = true;
    socket.end();
  });
  const timer = setTimeout(() => {
    if (socket.destroyed) return;
    if (!ended || socket.writableFinished) resetOrDestroy(socket);
    else socket.destroy();
  }, ms);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}
