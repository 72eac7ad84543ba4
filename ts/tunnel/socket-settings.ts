// The tunnel's socket settings (TCPKeepAlive, KeepAliveTime, KeepAliveInterval,
// InBufferSize, OutBufferSize) as they reach the SSH connection's TCP socket: the
// check when one is set, the application at the connect, the re-application while connected
// (each of them may change on a live socket), and the effective buffer sizes read back. They
// apply to the socket revtun opens towards the SSH server (the first jump host's, with jump
// hosts; the proxy's, through a proxy), not to the forwarded connections to local targets.
// The socket work itself is ../net/socket-options.ts. Linger and LingerTime are read when the
// connection closes (../net/close.ts) and need nothing here.

import type { Socket } from 'node:net';
import { SshError, Code } from '../protocol/errors.js';
import { applySocketOptions, readSocketOptions, runtimeWithoutDescriptors, socketDescriptor, socketOptionProviderMissing, type SocketOptionSettings } from '../net/socket-options.js';

/** The settings this file applies to the socket. */
export const SOCKET_SETTINGS: readonly string[] = ['TCPKeepAlive', 'KeepAliveTime', 'KeepAliveInterval', 'InBufferSize', 'OutBufferSize'];

/** Those that only the native addon can set (KeepAliveTime and TCPKeepAlive go through net.Socket). */
const ADDON_SETTINGS: readonly string[] = ['KeepAliveInterval', 'InBufferSize', 'OutBufferSize'];

type Setting = <T extends boolean | number | string>(name: string) => T;

/** The socket's options from the tunnel's settings. */
export function socketOptionSettings(setting: Setting): SocketOptionSettings {
  const keepAliveTime = setting<number>('KeepAliveTime');
  const keepAliveInterval = setting<number>('KeepAliveInterval');
  return {
    // As documented, setting either keep-alive time turns keep-alive on.
    keepAlive: setting<boolean>('TCPKeepAlive') || keepAliveTime > 0 || keepAliveInterval > 0,
    keepAliveTime,
    keepAliveInterval,
    inBufferSize: setting<number>('InBufferSize'),
    outBufferSize: setting<number>('OutBufferSize'),
  };
}

/**
 * Refuses (SshError 10022) a non-default value of a setting nothing in this process can
 * apply: see socketOptionProviderMissing for why it is refused here rather than logged later.
 */
export function checkSocketSetting(name: string, value: boolean | number | string, defaultValue: boolean | number | string): void {
  if (!ADDON_SETTINGS.includes(name) || value === defaultValue) return;
  const missing = socketOptionProviderMissing(name);
  if (missing) throw missing;
}

/**
 * Applies the settings to the connection's transport at the connect. A transport with no
 * socket of revtun's (a ProxyCommand) cannot take them: said once at level 1, as ssh
 * ignores TCPKeepAlive for one. A refusal by the kernel is logged and the connection goes
 * on: a buffer size or keep-alive timing is a tuning, not a condition of the connection.
 */
export function applyAtConnect(transport: unknown, settings: SocketOptionSettings, log: (level: 1 | 2 | 3, message: string) => void): boolean {
  const isSocket = typeof (transport as Socket).setKeepAlive === 'function';
  if (socketDescriptor(transport) === null || !isSocket) {
    const asked = ['KeepAliveTime', ...ADDON_SETTINGS].filter((name) => isSet(name, settings));
    // A TCP socket without a descriptor is the runtime's doing (refused when set, so only a
    // default can reach here); net.Socket can still set the keep-alive itself.
    const opaque = isSocket ? runtimeWithoutDescriptors() : null;
    if (opaque) {
      (transport as Socket).setKeepAlive(settings.keepAlive, settings.keepAliveTime > 0 ? Math.max(1000, settings.keepAliveTime) : 0);
      return true;
    }
    if (asked.length > 0) log(1, `${asked.join(', ')} not applied: ${isSocket ? 'the socket has no descriptor' : "the connection runs over a ProxyCommand, which has no TCP socket of revtun's"}`);
    return false;
  }
  try {
    applySocketOptions(transport as Socket, settings);
    return true;
  } catch (error) {
    log(1, `socket options not fully applied: ${(error as Error).message}`);
    return false;
  }
}

/**
 * Applies a setting changed while connected (true when applied); a kernel refusal is the
 * caller's error (10022).
 */
export function applyLive(transport: Socket | null, settings: SocketOptionSettings): boolean {
  if (!transport || transport.destroyed || socketDescriptor(transport) === null) return false;
  try {
    applySocketOptions(transport, settings);
    return true;
  } catch (error) {
    throw error instanceof SshError ? error : new SshError(Code.BadArgument, (error as Error).message, 'local', { cause: error });
  }
}

/**
 * InBufferSize / OutBufferSize as the kernel keeps them on the live socket (Linux doubles
 * the value asked for, to allow for its bookkeeping, and clamps it to net.core.rmem_max /
 * wmem_max), or null when not connected over a socket whose options can be read.
 */
export function effectiveBufferSize(name: string, transport: Socket | null): number | null {
  if (!transport || transport.destroyed) return null;
  const values = readSocketOptions(transport);
  if (!values) return null;
  return name === 'InBufferSize' ? values.receiveBuffer : values.sendBuffer;
}

/** Whether a setting asks for something other than the system's behaviour. */
function isSet(name: string, settings: SocketOptionSettings): boolean {
  switch (name) {
    case 'KeepAliveTime':
      return settings.keepAliveTime > 0;
    case 'KeepAliveInterval':
      return settings.keepAliveInterval > 0;
    case 'InBufferSize':
      return settings.inBufferSize > 0;
    default:
      return settings.outBufferSize > 0;
  }
}
