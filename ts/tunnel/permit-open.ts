// PermitRemoteOpen (ssh_config(5), OpenSSH 8.7+): where a reverse dynamic forwarding may
// connect. The forms are ssh's: `any` (no limit, the default), `none` (nothing), or a list of
// `host:port` entries in which `*` stands for any host or any port; an IPv6 address is
// written in brackets, `[::1]:22`. `any` and `none` stand alone. ssh compares names as they
// are, with no lookups and no other patterns: `localhost:80` permits the SOCKS request for
// "localhost" port 80, not one for "127.0.0.1" or "LOCALHOST". revtun does the same, except
// that an IPv6 entry matches its address however the SOCKS client spells it (ssh compares
// the text inet_ntop makes of the address, which only its canonical spelling can equal).

import { isIPv6 } from 'node:net';
import { SshError, Code } from '../protocol/errors.js';

export type PermitOpenPolicy = { kind: 'any' } | { kind: 'none' } | { kind: 'list'; entries: readonly PermittedDestination[] };

export interface PermittedDestination {
  /** A name or address as written (brackets taken off an IPv6 one), or '*'. */
  host: string;
  /** 1-65535, or '*'. */
  port: number | '*';
}

export const PERMIT_ANY: PermitOpenPolicy = { kind: 'any' };

/** The same IPv6 address always prints the same (RFC 5952, as the WHATWG URL parser writes it). */
function canonicalIPv6(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

/** Why `entry` is not a `host:port` entry (in ssh's words), or null when it is one. */
export function permitOpenEntryProblem(entry: string): string | null {
  const parsed = parseEntry(entry);
  return typeof parsed === 'string' ? parsed : null;
}

/**
 * One `host:port` entry, or why it is not one, in ssh's words: the host is everything before
 * the first ':' (or the bracketed address), the port a number 1-65535 or '*'.
 */
function parseEntry(entry: string): PermittedDestination | string {
  let host: string;
  let rest: string;
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close < 0 || (close + 1 < entry.length && entry[close + 1] !== ':')) return 'missing host';
    if (close + 1 === entry.length) return 'bad port number';
    host = entry.slice(1, close); // ssh takes the brackets off whatever they hold
    rest = entry.slice(close + 2);
  } else {
    const colon = entry.indexOf(':');
    if (colon < 0) return 'bad port number';
    host = entry.slice(0, colon);
    rest = entry.slice(colon + 1);
  }
  // An empty host is taken, as ssh takes it; no SOCKS request names one, so it permits nothing.
  if (rest === '*') return { host, port: '*' };
  if (!/^[0-9]{1,5}$/.test(rest) || Number(rest) < 1 || Number(rest) > 65535) return 'bad port number';
  return { host, port: Number(rest) };
}

/**
 * Reads a PermitRemoteOpen value: ssh's text (entries separated by spaces) or a list of
 * entries. Throws BadArgument (10022) naming the entry that is not of ssh's forms.
 */
export function parsePermitRemoteOpen(value: string | readonly string[]): PermitOpenPolicy {
  const words = typeof value === 'string' ? value.split(/[ \t]+/).filter((w) => w !== '') : [...value];
  if (words.length === 0) throw new SshError(Code.BadArgument, 'PermitRemoteOpen is empty: give "any", "none" or host:port entries', 'local');
  const keyword = words.find((w) => /^(any|none)$/i.test(w));
  if (keyword !== undefined) {
    if (words.length > 1) throw new SshError(Code.BadArgument, `PermitRemoteOpen "${keyword}" must appear alone`, 'local');
    return keyword.toLowerCase() === 'any' ? PERMIT_ANY : { kind: 'none' };
  }
  const entries: PermittedDestination[] = [];
  for (const word of words) {
    const parsed = parseEntry(word);
    if (typeof parsed === 'string') throw new SshError(Code.BadArgument, `PermitRemoteOpen ${word}: ${parsed} (the form is host:port, [IPv6]:port, * for any host or port)`, 'local');
    entries.push(isIPv6(parsed.host) ? { ...parsed, host: canonicalIPv6(parsed.host) } : parsed);
  }
  return { kind: 'list', entries };
}

/** Whether the policy lets a SOCKS request for host:port through. */
export function permitsOpen(policy: PermitOpenPolicy, host: string, port: number): boolean {
  if (policy.kind !== 'list') return policy.kind === 'any';
  const requested = isIPv6(host) ? canonicalIPv6(host) : host;
  return policy.entries.some((e) => (e.port === '*' || e.port === port) && (e.host === '*' || e.host === requested));
}

/** The policy in ssh's text form, as `ssh -G` prints it and log lines name it. */
export function describePermitOpen(policy: PermitOpenPolicy): string {
  if (policy.kind !== 'list') return policy.kind;
  return policy.entries.map((e) => `${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`).join(' ');
}
