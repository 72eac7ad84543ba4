// Opening the TCP connection to the SSH server: name resolution (with the address families the
// UseIPv6 setting allows), trying every address a name has (./happy-eyeballs.ts), the local bind
// address of each address's family, socket options, and cancellation. Failures are SshErrors
// with the documented socket codes. Through a proxy (./proxy.ts) the socket is
// the proxy's, connected onwards to the server.

import * as net from 'node:net';
import * as dns from 'node:dns/promises';
import type { LookupAddress } from 'node:dns';
import { SshError, Code, socketErrorCode } from '../protocol/errors.js';
import type { SocketReader } from './reader.js';
import { Abandoned, connectFirst, type AttemptsFailed } from './happy-eyeballs.js';
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
  /** Each failed attempt when a name has several addresses (for the log). */
  onAttemptFailed?: (address: string, error: Error) => void;
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

/** The address families UseIPv6 allows, in the order they are tried. */
function familiesFor(useIPv6: number): readonly (4 | 6)[] {
  return useIPv6 === 0 ? [4] : useIPv6 === 1 ? [6] : [6, 4];
}

/**
 * Every address of `host` that UseIPv6 allows, IPv6 first where both are (UseIPv6=2). A literal
 * address of a family the setting excludes is 10047, as ssh -4 refuses an IPv6 one. A name that
 * has addresses, but none of an allowed family, is 11004 rather than "not found": the name is
 * right and the setting is what to change.
 */
export async function resolveAddresses(host: string, useIPv6: number): Promise<LookupAddress[]> {
  const families = familiesFor(useIPv6);
  const ipFamily = net.isIP(host);
  if (ipFamily !== 0) {
    if (!families.includes(ipFamily as 4 | 6)) {
      throw new SshError(Code.AddressFamilyNotSupported, `${host} is an IPv${ipFamily} address, and UseIPv6=${useIPv6} allows IPv${families[0]} only`, 'local');
    }
    return [{ address: host, family: ipFamily }];
  }
  let found: LookupAddress[];
  try {
    found = await dns.lookup(host, { all: true, ...(families.length === 1 ? { family: families[0] } : { order: 'ipv6first' as const }) });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    // glibc reports a name /etc/hosts has only for the other family as not found, or as "try
    // again" when it then could not reach a name server: a lookup of both families tells which.
    // If that one finds an address of the allowed family after all, the first answer was lost
    // (a dropped DNS packet) and this one serves.
    if (families.length === 1 && (code === 'ENOTFOUND' || code === 'EAI_AGAIN')) {
      const any = await anyAddresses(host);
      const allowed = any.filter((a) => a.family === families[0]);
      if (allowed.length > 0) return allowed;
      if (any.length > 0) throw new SshError(Code.NoAddressOfFamily, `host ${host} has no IPv${families[0]} address (UseIPv6=${useIPv6}; 2 allows both families)`, 'local', { cause });
    }
    throw new SshError(socketErrorCode(code), `cannot resolve host ${host}: ${(cause as Error).message}`, 'local', { cause });
  }
  const allowed = found.filter((a) => families.includes(a.family as 4 | 6));
  if (allowed.length === 0) throw new SshError(Code.NoAddressOfFamily, `host ${host} has no address of the family UseIPv6=${useIPv6} allows`, 'local');
  return allowed;
}

async function anyAddresses(host: string): Promise<LookupAddress[]> {
  try {
    return await dns.lookup(host, { all: true });
  } catch {
    return [];
  }
}

/** The first address of `host` that UseIPv6 allows (for a proxy that wants one). */
export async function resolveHost(host: string, useIPv6: number): Promise<string> {
  return (await resolveAddresses(host, useIPv6))[0]!.address;
}

export async function connectSocket(options: ConnectOptions): Promise<OpenedSocket> {
  const { signal } = options;
  if (signal?.aborted) throw aborted();
  if (options.proxyCommand) return { socket: await spawnProxyCommand(options.proxyCommand, signal), address: options.host };
  if (options.proxy) {
    const socket = await connectThroughProxy(
      options.proxy,
      { host: options.host, port: options.port },
      {
        timeoutMs: options.proxyTimeoutMs ?? 0,
        ...(signal ? { signal } : {}),
        // SOCKS4 carries an IPv4 destination only: its name is resolved to one whatever UseIPv6 says.
        resolve: (host) => resolveHost(host, options.proxy?.type === 'socks4' ? 0 : options.useIPv6),
      },
    );
    socket.setNoDelay(options.noDelay);
    socket.setKeepAlive(options.keepAlive, options.keepAliveInitialDelay);
    options.onProxyConnected?.(options.proxy);
    return { socket, address: options.host };
  }
  // LocalHost may be a name (it reads as the machine's name until set), with addresses of both
  // families: each server address is reached from a local address of its own family, as ssh
  // binds BindAddress per address; server addresses of a family LocalHost lacks are left out.
  const locals = options.localAddress ? await resolveAddresses(options.localAddress, options.useIPv6) : [];
  let addresses = await resolveAddresses(options.host, options.useIPv6);
  if (locals.length > 0) {
    addresses = addresses.filter((a) => locals.some((l) => l.family === a.family));
    if (addresses.length === 0)
      throw new SshError(Code.AddressFamilyNotSupported, `${options.host} has no address of the family of LocalHost ${options.localAddress} (${locals.map((l) => l.address).join(', ')})`, 'local');
  }
  if (signal?.aborted) throw aborted();
  try {
    return await connectFirst({
      addresses,
      port: options.port,
      localAddressFor: (family) => locals.find((l) => l.family === family)?.address,
      ...(options.localPort ? { localPort: options.localPort } : {}),
      noDelay: options.noDelay,
      keepAlive: options.keepAlive,
      keepAliveInitialDelay: options.keepAliveInitialDelay,
      ...(signal ? { signal } : {}),
      ...(options.onAttemptFailed ? { onAttemptFailed: options.onAttemptFailed } : {}),
    });
  } catch (error) {
    if (error instanceof Abandoned) throw aborted();
    const failed = error as AttemptsFailed;
    throw new SshError(socketErrorCode(failed.code), `cannot connect to ${options.host}:${options.port}: ${failed.message}`, 'local', { cause: error });
  }
}

function aborted(): SshError {
  return new SshError(Code.BadState, 'connecting was abandoned', 'local');
}
