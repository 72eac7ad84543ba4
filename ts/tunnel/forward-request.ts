// What an application may ask requestForwarding and requestDynamicForwarding for, checked
// before anything goes on the wire, and how a forwarding is named in log lines. The forms
// follow OpenSSH's -R: the server listens on an address and port or on a Unix socket path;
// connections go to a TCP target (host and port), a Unix-socket target (a path), or, with no
// target at all (dynamic), wherever each one asks: revtun answers as a SOCKS server.

import { SshError, Code } from '../protocol/errors.js';
import { isSocketPath } from './local-forward.js';
import type { RequestedForwarding } from './session.js';
import { describePermitOpen } from './permit-open.js';

/**
 * The longest Unix socket path connect() takes: sun_path holds 108 bytes on Linux, 104 on
 * the BSDs and macOS, the terminating NUL included.
 */
const MAX_SOCKET_PATH = process.platform === 'linux' ? 107 : 103;

function bad(message: string): never {
  throw new SshError(Code.BadArgument, message, 'local');
}

function checkPort(port: number, what: string, allowZero: boolean): void {
  if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) bad(`${what} ${port} is out of range`);
}

function checkSocketPath(path: string, what: string): void {
  if (path.includes('\0')) bad(`${what} contains a NUL byte`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) bad(`${what} is longer than ${MAX_SOCKET_PATH} bytes: ${path}`);
}

/** Throws BadArgument (10022) for a forwarding no server or local socket could serve. */
export function checkForwarding(f: Omit<RequestedForwarding, 'boundPort'>): void {
  checkPort(f.port, 'port', true);
  if (isSocketPath(f.address)) {
    // The server's sun_path limit is the server's; this one only catches the hopeless.
    checkSocketPath(f.address, 'the remote socket path');
    if (f.port !== 0) bad(`a remote socket path takes port 0, not ${f.port}`);
    if (f.dynamic) bad('a dynamic forwarding listens on a TCP port, not a socket path');
  }
  if (f.dynamic) {
    if (f.forwardingHost || f.forwardingPort) bad('a dynamic forwarding takes no forwarding host or port');
    return;
  }
  if (!f.forwardingHost) return; // event mode
  if (isSocketPath(f.forwardingHost)) {
    checkSocketPath(f.forwardingHost, 'the local socket path');
    if (f.forwardingPort !== 0) bad(`a Unix-socket target takes forwarding port 0, not ${f.forwardingPort}`);
    return;
  }
  checkPort(f.forwardingPort, 'forwarding port', false);
}

/** Where the server listens: "127.0.0.1:8080", "*:8080", or the socket path. */
export function listenName(f: Readonly<RequestedForwarding>, boundPort: number): string {
  return isSocketPath(f.address) ? f.address : `${f.address || '*'}:${boundPort}`;
}

/** "127.0.0.1:8080 -> localhost:3000", as the tunnel's log lines name a forwarding. */
export function describeForwarding(f: Readonly<RequestedForwarding>, boundPort: number): string {
  const listen = listenName(f, boundPort);
  const limits = f.socks && f.socks.permitOpen.kind !== 'any' ? ` (PermitRemoteOpen ${describePermitOpen(f.socks.permitOpen)})` : '';
  const target = f.dynamic ? `SOCKS${limits}` : !f.forwardingHost ? 'events' : isSocketPath(f.forwardingHost) ? f.forwardingHost : `${f.forwardingHost}:${f.forwardingPort}`;
  return `${listen} -> ${target}`;
}
