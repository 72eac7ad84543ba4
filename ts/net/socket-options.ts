// The TCP socket options of the SSH connection that net.Socket cannot set: the kernel's
// buffer sizes (InBufferSize → SO_RCVBUF, OutBufferSize → SO_SNDBUF), the keep-alive probe
// interval (KeepAliveInterval → TCP_KEEPINTVL). The native addon (crates/revtun-napi/src/sockopt.rs) sets them with
// setsockopt(2) on the socket's descriptor and reads them back with getsockopt(2). SO_KEEPALIVE
// and the idle time (TCPKeepAlive, KeepAliveTime → TCP_KEEPIDLE) stay with net.Socket's
// setKeepAlive, which needs no addon. Linger and LingerTime are no socket options here: they
// are how the socket is closed (./close.ts), and SO_LINGER is never set with a time.
//
// Without the addon nothing can set these options, and a value other than the default is
// refused when it is set (error 10022): see socketOptionProviderMissing.

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { SshError, Code } from '../protocol/errors.js';

/** What the settings ask of the socket. Zero means "the system's" for every number. */
export interface SocketOptionSettings {
  /** TCPKeepAlive (or implied by KeepAliveTime / KeepAliveInterval). */
  keepAlive: boolean;
  /** KeepAliveTime, ms. */
  keepAliveTime: number;
  /** KeepAliveInterval, ms. */
  keepAliveInterval: number;
  /** InBufferSize, bytes. */
  inBufferSize: number;
  /** OutBufferSize, bytes. */
  outBufferSize: number;
}

/** The options as the kernel holds them (the addon's getSocketOptions); times in seconds. */
export interface SocketOptionValues {
  receiveBuffer: number;
  sendBuffer: number;
  keepAlive: boolean;
  keepAliveIdle: number;
  keepAliveInterval: number;
  keepAliveCount: number;
  linger: boolean;
  lingerSeconds: number;
}

interface SocketOptionBinding {
  setSocketOption(fd: number, name: 'receiveBuffer' | 'sendBuffer' | 'keepAliveInterval', value: number): void;
  getSocketOptions(fd: number): SocketOptionValues;
}

let loaded: SocketOptionBinding | Error | null = null;

/**
 * The addon's socket option functions, or why there are none. As for GSSAPI
 * (../crypto/gssapi.ts), REVTUN_CRYPTO naming another provider means the addon is not in
 * use: that is how a process (and the test suite) runs without it.
 */
function binding(): SocketOptionBinding | Error {
  const provider = (typeof process !== 'undefined' ? process.env['REVTUN_CRYPTO'] : undefined)?.trim().toLowerCase();
  if (provider && provider !== 'native') return new Error(`the native addon is not in use (REVTUN_CRYPTO=${provider})`);
  if (loaded) return loaded;
  try {
    const require = createRequire(import.meta.url);
    const candidate = require('../../bindings/native.cjs') as Partial<SocketOptionBinding>;
    loaded = typeof candidate.getSocketOptions === 'function' ? (candidate as SocketOptionBinding) : new Error('the native addon was built without socket options');
  } catch (error) {
    loaded = new Error(`the native addon did not load (${(error as Error).message.split('\n')[0]})`);
  }
  return loaded;
}

/** The settings whose values need the addon: those not at their defaults, by name. */
export function settingsNeedingAddon(settings: SocketOptionSettings): string[] {
  const names: string[] = [];
  if (settings.keepAliveInterval > 0) names.push('KeepAliveInterval');
  if (settings.inBufferSize > 0) names.push('InBufferSize');
  if (settings.outBufferSize > 0) names.push('OutBufferSize');
  return names;
}

/**
 * SshError 10022 when `name` (set to a value other than its default) cannot be honoured in
 * this process, else null. Refusing it when it is set, rather than logging at connect, tells
 * the program at the line that asked, as settings not implemented at all are refused: a log
 * line is easily missed, and the connection would run without what was asked for.
 */
export function socketOptionProviderMissing(name: string, runtime: RuntimeVersions = process.versions): SshError | null {
  if (process.platform === 'win32') return new SshError(Code.BadArgument, `${name} cannot be set on ${process.platform}: revtun sets it on Unix socket descriptors only`, 'local');
  const opaque = runtimeWithoutDescriptors(runtime);
  if (opaque) return new SshError(Code.BadArgument, `${name} cannot be set on ${opaque}: its sockets expose no descriptor to set it on`, 'local');
  const found = binding();
  if (!(found instanceof Error)) return null;
  return new SshError(Code.BadArgument, `${name} cannot be set: ${found.message}, and Node's sockets cannot set this option without it`, 'local');
}

/** process.versions, or the part of it that names the runtime. */
export type RuntimeVersions = Partial<Record<string, string | undefined>>;

/**
 * The runtime's name when its net.Socket has no descriptor for setsockopt (Deno: its TCPWrap's
 * fd is undefined, so the addon would load and have nothing to act on), else null. Bun's
 * sockets have one.
 */
export function runtimeWithoutDescriptors(runtime: RuntimeVersions = process.versions): string | null {
  return runtime['deno'] ? `Deno ${runtime['deno']}` : null;
}

/**
 * The descriptor of a connected TCP socket, or null for a transport that has none of its own
 * (a ProxyCommand's pipes, a channel through a jump host). net.Socket does not publish it:
 * `_handle.fd` is libuv's uv_fileno, present on Unix TCP handles (-1 before the connect, and
 * on Windows, where it is not a descriptor setsockopt would take).
 */
export function socketDescriptor(transport: unknown): number | null {
  if (process.platform === 'win32') return null;
  const handle = (transport as { _handle?: { fd?: unknown } } | null)?._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : null;
}

/** Whole seconds for a millisecond setting, at least 1 (the kernel counts keep-alive time in seconds). */
export function wholeSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * Applies the settings to a connected TCP socket. Throws SshError 10022 naming the option the
 * kernel refused; the caller decides whether that ends anything.
 */
export function applySocketOptions(socket: Socket, settings: SocketOptionSettings): void {
  // Keep-alive and its idle time through net.Socket, which needs no addon. Node counts whole
  // seconds, rounding down: a time under a second would be 0, which sets no idle time at all.
  // With an idle time, libuv also sets TCP_KEEPINTVL to 1 s and TCP_KEEPCNT to 10 on Linux,
  // so KeepAliveInterval is set after it.
  socket.setKeepAlive(settings.keepAlive, settings.keepAliveTime > 0 ? Math.max(1000, settings.keepAliveTime) : 0);
  const needed = settingsNeedingAddon(settings);
  if (needed.length === 0 && !hasAddon()) return;
  const fd = socketDescriptor(socket);
  const found = binding();
  if (fd === null || found instanceof Error) {
    if (needed.length === 0) return;
    throw new SshError(Code.BadArgument, `${needed.join(', ')} cannot be applied: ${fd === null ? 'the socket has no descriptor' : found instanceof Error ? found.message : ''}`, 'local');
  }
  const attempt = (what: string, set: () => void) => {
    try {
      set();
    } catch (error) {
      throw new SshError(Code.BadArgument, `${what}: ${(error as Error).message}`, 'local', { cause: error });
    }
  };
  if (settings.keepAlive && settings.keepAliveInterval > 0) {
    attempt('KeepAliveInterval', () => found.setSocketOption(fd, 'keepAliveInterval', wholeSeconds(settings.keepAliveInterval)));
  }
  if (settings.inBufferSize > 0) attempt('InBufferSize', () => found.setSocketOption(fd, 'receiveBuffer', settings.inBufferSize));
  if (settings.outBufferSize > 0) attempt('OutBufferSize', () => found.setSocketOption(fd, 'sendBuffer', settings.outBufferSize));
}

function hasAddon(): boolean {
  return !(binding() instanceof Error);
}

/** The options as the kernel holds them on `transport`, or null (no descriptor, no addon, or a closed socket). */
export function readSocketOptions(transport: unknown): SocketOptionValues | null {
  const fd = socketDescriptor(transport);
  const found = binding();
  if (fd === null || found instanceof Error) return null;
  try {
    return found.getSocketOptions(fd);
  } catch {
    return null; // the socket closed meanwhile
  }
}
