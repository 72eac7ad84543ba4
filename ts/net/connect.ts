// Opening the TCP connection to the SSH server: name resolution (with the address families the
// UseIPv6 setting allows), trying every address a name has (Happy Eyeballs, RFC 8305, between
// families), the local bind address, socket options, and cancellation. Failures are SshErrors
// with the documented socket codes. Through a proxy (./proxy.ts) the socket is
// the proxy's, connected onwards to the server.

import * as net from 'node:net';
import * as dns from 'node:dns/promises';
import type { LookupAddress } from 'node:dns';
import { SshError, Code, socketErrorCode } from '../protocol/errors.js';
import { SocketReader } from './reader.js';
import { connectThroughProxy, type ProxySpec } from './proxy.js';
import { spawnProxyCommand } from './proxy-command.js';
import type { Duplex } from 'node:stream';

/** RFC 8305's recommended wait before the next address is tried alongside the first. */
const HAPPY_EYEBALLS_DELAY_MS = 250;

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

/** The address families UseIPv6 allows, in the order they are tried. */
function familiesFor(useIPv6: number): readonly (4 | 6)[] {
  return useIPv6 === 0 ? [4] : useIPv6 === 1 ? [6] : [6, 4];
}

/**
 * Every address of `host` that UseIPv6 allows, IPv6 first where both are (UseIPv6=2). A name that
 * has addresses, but none of an allowed family, is 11004 rather than "not found": the name is
 * right and the setting is what to change.
 */
export async function resolveAddresses(host: string, useIPv6: number): Promise<LookupAddress[]> {
  const ipFamily = net.isIP(host);
  if (ipFamily !== 0) return [{ address: host, family: ipFamily }];
  const families = familiesFor(useIPv6);
  let found: LookupAddress[];
  try {
    found = await dns.lookup(host, { all: true, ...(families.length === 1 ? { family: families[0] } : { order: 'ipv6first' as const }) });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    // glibc reports a name /etc/hosts has only for the other family as not found, or as "try again" when it
    // then could not reach a name server: either way, a lookup of both families tells.
    if (families.length === 1 && (code === 'ENOTFOUND' || code === 'EAI_AGAIN') && (await hasAnyAddress(host))) {
      throw new SshError(Code.NoAddressOfFamily, `host ${host} has no IPv${families[0]} address (UseIPv6=${useIPv6}; 2 allows both families)`, 'local', { cause });
    }
    throw new SshError(socketErrorCode(code), `cannot resolve host ${host}: ${(cause as Error).message}`, 'local', { cause });
  }
  const allowed = found.filter((a) => families.includes(a.family as 4 | 6));
  if (allowed.length === 0) throw new SshError(Code.NoAddressOfFamily, `host ${host} has no address of the family UseIPv6=${useIPv6} allows`, 'local');
  return allowed;
}

async function hasAnyAddress(host: string): Promise<boolean> {
  try {
    return (await dns.lookup(host, { all: true })).length > 0;
  } catch {
    return false;
  }
}

/** The first address of `host` that UseIPv6 allows (for a bind address, or a proxy that wants one). */
export async function resolveHost(host: string, useIPv6: number): Promise<string> {
  return (await resolveAddresses(host, useIPv6))[0]!.address;
}

/**
 * A `lookup` for net.connect that answers with addresses already resolved, so that Node's
 * Happy Eyeballs (autoSelectFamily, RFC 8305: the next address is tried after 250 ms, or at once
 * when one fails) walks our list in our order.
 */
function resolvedLookup(addresses: LookupAddress[]): net.LookupFunction {
  return (_host, options, callback) => {
    if (options.all) (callback as unknown as (error: null, all: LookupAddress[]) => void)(null, addresses);
    else callback(null, addresses[0]!.address, addresses[0]!.family);
  };
}

/** Node's error after every address failed is an AggregateError with an empty message: say what each attempt got. */
function attemptsText(error: NodeJS.ErrnoException & { errors?: Error[] }): string {
  return error.errors?.length ? error.errors.map((e) => e.message).join('; ') : error.message;
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
  // LocalHost may be a name (it reads as the machine's name until set): bind to its address,
  // and try only server addresses of the same family (a socket bound to one cannot reach the other).
  const localAddress = options.localAddress ? await resolveHost(options.localAddress, options.useIPv6) : '';
  const localFamily = localAddress ? net.isIP(localAddress) : 0;
  let addresses = await resolveAddresses(options.host, options.useIPv6);
  if (localFamily !== 0) {
    addresses = addresses.filter((a) => a.family === localFamily);
    if (addresses.length === 0) throw new SshError(Code.AddressFamilyNotSupported, `${options.host} has no IPv${localFamily} address to reach from LocalHost ${localAddress}`, 'local');
  }
  if (signal?.aborted) throw aborted();
  return await new Promise<OpenedSocket>((resolve, reject) => {
    const reader = new SocketReader();
    const socket = net.connect({
      onread: reader.onread,
      // A literal address when there is one; otherwise the name, with our resolved list as its lookup.
      host: addresses.length === 1 ? addresses[0]!.address : options.host,
      ...(addresses.length > 1 ? { lookup: resolvedLookup(addresses), autoSelectFamily: true, autoSelectFamilyAttemptTimeout: HAPPY_EYEBALLS_DELAY_MS } : {}),
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
      reject(new SshError(socketErrorCode(error.code), `cannot connect to ${options.host}:${options.port}: ${attemptsText(error)}`, 'local', { cause: error }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', fail);
    socket.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', fail);
      resolve({ socket, reader, address: socket.remoteAddress ?? addresses[0]!.address });
    });
  });
}

function aborted(): SshError {
  return new SshError(Code.BadState, 'connecting was abandoned', 'local');
}
