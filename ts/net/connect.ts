// Opening the TCP connection to the SSH server: name resolution (with the address family the
// UseIPv6 setting asks for), the local bind address, socket options, and cancellation. Failures
// are SshErrors with the documented socket codes. Through a proxy (./proxy.ts) the socket is
// the proxy's, connected onwards to the server.

import * as net from 'node:net';
import * as dns from 'node:dns/promises';
import { SshError, Code, socketErrorCode } from '../protocol/errors.js';
import { SocketReader } from './reader.js';
import { connectThroughProxy, type ProxySpec } from './proxy.js';
import { spawnProxyCommand } from './proxy-command.js';
import type { Duplex } from 'node:stream';

export interface ConnectOptions {
  host: string;
  port: number;
  /** UseIPv6: 0 IPv4 only, 1 IPv6 only, 2 either (IPv6 first). */
  useIPv6: number;
  localAddress?: string;
  localPort?: number;
  noDelay: boolean;
  /** SO_KEEPALIVE, and the idle time before the first probe (ms; 0 = the system's). */
  keepAlive: boolean;
  keepAliveInitialDelay: number;
  /** Aborting destroys a socket still connecting and rejects. */
  signal?: AbortSignal;
  /** Connect through this proxy (null: directly). */
  proxy?: ProxySpec | null;
  /** Milliseconds the proxy may take to connect us (0: no limit of its own). */
  proxyTimeoutMs?: number;
  /** The proxy has connected us to the server (before any SSH byte). */
  onProxyConnected?: (proxy: ProxySpec) => void;
  /** A ProxyCommand, tokens already expanded: used instead of any socket or proxy. */
  proxyCommand?: string;
}

/**
 * What carries the SSH connection: a TCP socket, or a ProxyCommand's standard input and output
 * (which has no local address).
 */
export type Transport = Duplex & Partial<Pick<net.Socket, 'localAddress' | 'localPort'>>;

export interface OpenedSocket {
  socket: Transport;
  /**
   * Reads the socket into reused memory (net's onread); hand it to the SocketDriver. A socket
   * that a proxy client opened has none (it was created without onread): 'data' events then.
   */
  reader?: SocketReader;
  /** The address the host name resolved to (the name itself when a proxy resolves it). */
  address: string;
}

export async function resolveHost(host: string, useIPv6: number): Promise<string> {
  if (net.isIP(host) !== 0) return host;
  try {
    const family = useIPv6 === 0 ? 4 : useIPv6 === 1 ? 6 : 0;
    const found = await dns.lookup(host, family ? { family } : { order: 'ipv6first' });
    return found.address;
  } catch (cause) {
    const code = socketErrorCode((cause as NodeJS.ErrnoException).code);
    throw new SshError(code, `cannot resolve host ${host}: ${(cause as Error).message}`, 'local', { cause });
  }
}

export async function connectSocket(options: ConnectOptions): Promise<OpenedSocket> {
  const { signal } = options;
  if (signal?.aborted) throw aborted();
  if (options.proxyCommand) return { socket: await spawnProxyCommand(options.proxyCommand, signal), address: options.host };
  if (options.proxy) {
    const socket = await connectThroughProxy(options.proxy, { host: options.host, port: options.port }, {
      timeoutMs: options.proxyTimeoutMs ?? 0,
      ...(signal ? { signal } : {}),
      resolve: (host) => resolveHost(host, options.useIPv6),
    });
    socket.setNoDelay(options.noDelay);
    socket.setKeepAlive(options.keepAlive, options.keepAliveInitialDelay);
    options.onProxyConnected?.(options.proxy);
    return { socket, address: options.host };
  }
  const address = await resolveHost(options.host, options.useIPv6);
  // LocalHost may be a name (it reads as the machine's name until set): bind to its address.
  const localAddress = options.localAddress ? await resolveHost(options.localAddress, options.useIPv6) : '';
  if (signal?.aborted) throw aborted();
  return await new Promise<OpenedSocket>((resolve, reject) => {
    const reader = new SocketReader();
    const socket = net.connect({
      onread: reader.onread,
      host: address,
      port: options.port,
      ...(localAddress ? { localAddress } : {}),
      ...(options.localPort ? { localPort: options.localPort } : {}),
      noDelay: options.noDelay,
      keepAlive: options.keepAlive,
      keepAliveInitialDelay: options.keepAliveInitialDelay,
    });
    const onAbort = () => {
      socket.destroy();
      reject(aborted());
    };
    const fail = (error: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(new SshError(socketErrorCode(error.code), `cannot connect to ${options.host}:${options.port}: ${error.message}`, 'local', { cause: error }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', fail);
    socket.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', fail);
      resolve({ socket, reader, address });
    });
  });
}

function aborted(): SshError {
  return new SshError(Code.BadState, 'connecting was abandoned', 'local');
}
