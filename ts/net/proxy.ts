// Reaching the SSH server through a proxy (the documented Firewall* settings): an HTTP
// tunneling proxy (CONNECT, RFC 9110 §9.3.6) through Node's own http client, which already
// handles CONNECT and its response; SOCKS4, SOCKS4A and SOCKS5 (RFC 1928, RFC 1929) through the
// `socks` package. What is left here is choosing the proxy (settings, a URL, or the environment
// as curl reads it), the exceptions, and turning every refusal into an SshError that names the
// proxy but never its credentials.

import * as http from 'node:http';
import type * as net from 'node:net';
import { SocksClient, type SocksProxy } from 'socks';
import { SshError, Code } from '../protocol/errors.js';

/** FirewallType: the documented numbers. */
export const FirewallType = { None: 0, Tunnel: 1, Socks4: 2, Socks5: 3, Socks4A: 10 } as const;
export type FirewallTypeValue = (typeof FirewallType)[keyof typeof FirewallType];

export interface ProxySpec {
  type: 'http' | 'socks4' | 'socks4a' | 'socks5' | 'socks5h';
  host: string;
  port: number;
  user?: string;
  password?: string;
  /** FirewallData: extra request header lines for a tunneling proxy ("Name: value", one per line). */
  headers?: string;
}

/** The port FirewallPort takes when FirewallType is set: 80 for a tunneling proxy, 1080 for SOCKS. */
export function defaultFirewallPort(type: number): number {
  return type === FirewallType.Tunnel ? 80 : type === FirewallType.None ? 0 : 1080;
}

/**
 * The proxy the Firewall* settings describe, or null. SOCKS5 resolves names at the proxy (the
 * tunnel's host may be known only inside the proxy's network); SOCKS4 here, SOCKS4A there.
 */
export function proxyFromSettings(s: { type: number; host: string; port: number; user: string; password: string; data: string }): ProxySpec | null {
  if (s.type === FirewallType.None || !s.host) return null;
  const type = s.type === FirewallType.Tunnel ? 'http' : s.type === FirewallType.Socks4 ? 'socks4' : s.type === FirewallType.Socks4A ? 'socks4a' : 'socks5h';
  return {
    type,
    host: s.host,
    port: s.port || defaultFirewallPort(s.type),
    ...(s.user ? { user: s.user } : {}),
    ...(s.password ? { password: s.password } : {}),
    ...(s.data ? { headers: s.data } : {}),
  };
}

/**
 * A proxy URL as curl takes it: http://, socks4://, socks4a://, socks5:// (names resolved
 * here), socks5h:// (names resolved by the proxy), with optional user:password@. A URL without
 * a scheme is an HTTP proxy, as in curl.
 */
export function parseProxyUrl(text: string): ProxySpec {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new SshError(Code.BadArgument, 'the proxy is not a URL (scheme://[user:password@]host[:port])', 'local');
  }
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  const types: Record<string, ProxySpec['type']> = { http: 'http', socks4: 'socks4', socks4a: 'socks4a', socks5: 'socks5', socks5h: 'socks5h', socks: 'socks5' };
  const type = types[scheme];
  if (!type) throw new SshError(Code.BadArgument, `proxy scheme ${scheme}: is not supported (http, socks4, socks4a, socks5, socks5h)`, 'local');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw new SshError(Code.BadArgument, 'the proxy URL names no host', 'local');
  return {
    type,
    host,
    port: url.port ? Number(url.port) : type === 'http' ? 80 : 1080,
    ...(url.username ? { user: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
  };
}

/** `host:port` of a proxy, for messages: never its credentials. */
export function describeProxy(proxy: ProxySpec): string {
  return `${proxy.type} proxy ${proxy.host.includes(':') ? `[${proxy.host}]` : proxy.host}:${proxy.port}`;
}

/**
 * The proxy the environment names for a connection to `host`, as curl reads it for a non-HTTP
 * protocol: https_proxy / HTTPS_PROXY, else all_proxy / ALL_PROXY (lower case first), unless
 * no_proxy / NO_PROXY lists the host.
 */
export function proxyFromEnvironment(env: NodeJS.ProcessEnv, host: string): ProxySpec | null {
  const pick = (name: string) => env[name] || env[name.toUpperCase()] || '';
  const noProxy = pick('no_proxy');
  if (noProxy && matchesNoProxy(host, noProxy)) return null;
  const url = pick('https_proxy') || pick('all_proxy');
  return url ? parseProxyUrl(url) : null;
}

/**
 * curl's no_proxy: comma-separated; `*` is every host; a name matches itself and its
 * subdomains (a leading dot is optional); an IP address matches itself or a CIDR range.
 */
export function matchesNoProxy(host: string, list: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  for (const raw of list.split(',')) {
    const entry = raw.trim().toLowerCase().replace(/^\./, '').replace(/\.$/, '');
    if (!entry) continue;
    if (entry === '*') return true;
    if (entry.includes('/')) {
      if (inCidr(name, entry)) return true;
      continue;
    }
    if (name === entry || name.endsWith(`.${entry}`)) return true;
  }
  return false;
}

function inCidr(address: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/') as [string, string];
  const toNumber = (a: string) => {
    const parts = a.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return null;
    return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
  };
  const a = toNumber(address);
  const b = toNumber(base);
  const bits = Number(bitsText);
  if (a === null || b === null || !Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (a & mask) === (b & mask);
}

/** ProxyExceptionsList: semicolon-separated hosts and addresses (`*.example.com` for a domain) that bypass the proxy. */
export function isProxyException(host: string, list: string): boolean {
  const name = host.toLowerCase();
  return list
    .split(';')
    .map((e) => e.trim().toLowerCase())
    .filter(Boolean)
    .some((e) => e === name || (e.startsWith('*.') && name.endsWith(e.slice(1))));
}

/**
 * Opens a connection to target through `proxy`; resolves with the socket once the proxy has
 * connected it. `resolve` turns a name into an address for the proxy types that need one here.
 */
export async function connectThroughProxy(
  proxy: ProxySpec,
  target: { host: string; port: number },
  options: { timeoutMs: number; signal?: AbortSignal; resolve: (host: string) => Promise<string> },
): Promise<net.Socket> {
  const where = describeProxy(proxy);
  if (proxy.type === 'http') return httpConnect(proxy, target, where, options);
  const localNames = proxy.type === 'socks4' || proxy.type === 'socks5';
  const destination = { host: localNames ? await options.resolve(target.host) : target.host, port: target.port };
  const socksProxy: SocksProxy = {
    host: proxy.host,
    port: proxy.port,
    type: proxy.type.startsWith('socks4') ? 4 : 5,
    ...(proxy.user !== undefined ? { userId: proxy.user } : {}),
    ...(proxy.password !== undefined ? { password: proxy.password } : {}),
  };
  try {
    const { socket } = await SocksClient.createConnection({
      proxy: socksProxy,
      command: 'connect',
      destination,
      ...(options.timeoutMs > 0 ? { timeout: options.timeoutMs } : {}),
    });
    if (options.signal?.aborted) {
      socket.destroy();
      throw new SshError(Code.BadState, 'connecting was abandoned', 'local');
    }
    return socket;
  } catch (cause) {
    if (cause instanceof SshError) throw cause;
    throw socksError(cause as Error, where, target);
  }
}

/** The socks package's errors: refusals by the proxy, failed authentication, or no proxy at all. */
function socksError(failure: Error, where: string, target: { host: string; port: number }): SshError {
  const text = failure.message;
  const system = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND/.exec(text)?.[0];
  const code = /authentication/i.test(text) ? Code.AccessDenied : system === 'ECONNREFUSED' ? Code.ConnectionRefused : Code.ConnectionFailed;
  // No `cause`: a SocksClientError carries its options, the proxy's password among them, and
  // an application that logs the whole error would print it.
  return new SshError(code, `${where} could not connect to ${target.host}:${target.port}: ${text}`, 'local');
}

function httpConnect(proxy: ProxySpec, target: { host: string; port: number }, where: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<net.Socket> {
  const authority = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
  const headers: Record<string, string> = { Host: authority };
  if (proxy.user !== undefined) headers['Proxy-Authorization'] = `Basic ${Buffer.from(`${proxy.user}:${proxy.password ?? ''}`).toString('base64')}`;
  for (const line of (proxy.headers ?? '').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return new Promise<net.Socket>((resolve, reject) => {
    const request = http.request({
      host: proxy.host,
      port: proxy.port,
      method: 'CONNECT',
      path: authority,
      headers,
      agent: false,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.timeoutMs > 0 ? { timeout: options.timeoutMs } : {}),
    });
    request.once('connect', (response, socket, head) => {
      if (response.statusCode !== 200) {
        socket.destroy();
        const status = `HTTP/${response.httpVersion} ${response.statusCode} ${response.statusMessage ?? ''}`.trim();
        // 407 as RFC 9110 says; tinyproxy answers bad credentials with 401; 403 is a policy refusal.
        const code = [401, 403, 407].includes(response.statusCode ?? 0) ? Code.AccessDenied : Code.ConnectionFailed;
        reject(new SshError(code, `${where} refused CONNECT ${authority}: ${status}`, 'local'));
        return;
      }
      // The request's deadline was for the CONNECT; the socket now carries SSH, with keep-alive of its own.
      socket.setTimeout(0);
      // Bytes the proxy already passed on from the server (its version line) belong to SSH.
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    request.once('timeout', () => request.destroy(new SshError(Code.Timeout, `${where} did not answer CONNECT`, 'local')));
    request.once('error', (error: NodeJS.ErrnoException) => {
      if (error instanceof SshError) return reject(error);
      const code = error.code === 'ECONNREFUSED' ? Code.ConnectionRefused : error.name === 'AbortError' ? Code.BadState : Code.ConnectionFailed;
      reject(new SshError(code, `${where}: ${error.message}`, 'local', { cause: error }));
    });
    request.end();
  });
}
