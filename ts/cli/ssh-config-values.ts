// The values of ssh_config keywords: how each one is read and checked (with ssh's own error
// words), forwarding specs as parse_forward reads them, ProxyJump hops, and the small value
// tables (log levels, flags). Used by the evaluator in ssh-config.ts.

import { readFileSync } from 'node:fs';
import type { RemoteForwardSpec } from './args.js';
import { validAlgorithmList, type AlgorithmKeyword } from './ssh-config-expand.js';
import { SshConfigError, type ConfigLine } from './ssh-config-parse.js';

/** A LocalForward/RemoteForward/DynamicForward as ssh's parse_forward reads it. */
export interface ForwardSpec {
  /** Undefined when none was given (ssh then binds "localhost" on the server for -R). */
  listenHost?: string;
  listenPort: number;
  listenPath?: string;
  /** "socks" for a dynamic forwarding. */
  connectHost?: string;
  connectPort: number;
  connectPath?: string;
}

/** ssh's log level names, to the name Debian's `ssh -G` prints (DEBUG1 is DEBUG; QUIET is SILENT). */
export const LOG_LEVELS: Record<string, string> = {
  quiet: 'SILENT',
  silent: 'SILENT',
  fatal: 'FATAL',
  error: 'ERROR',
  info: 'INFO',
  verbose: 'VERBOSE',
  debug: 'DEBUG',
  debug1: 'DEBUG',
  debug2: 'DEBUG2',
  debug3: 'DEBUG3',
};
/** multistate_flag: the words ssh takes for yes and no. */
export const FLAG: Record<string, boolean> = { yes: true, true: true, no: false, false: false };
/** Keywords with a plain yes/no value, and keywords with one string, first value wins. */
export const FLAG_KEYWORDS = new Set([
  'exitonforwardfailure',
  'batchmode',
  'identitiesonly',
  'passwordauthentication',
  'kbdinteractiveauthentication',
  'tcpkeepalive',
  'forkafterauthentication',
  'gssapiauthentication',
  'gssapidelegatecredentials',
  'gssapikeyexchange',
  'gssapitrustdns',
]);
/** Yes/no keywords revtun ignores; their values are still checked, since ssh would refuse a bad one. */
export const IGNORED_FLAG_KEYWORDS = new Set([
  'canonicalizefallbacklocal',
  'checkhostip',
  'clearallforwardings',
  'enableescapecommandline',
  'enablesshkeysign',
  'forwardx11',
  'forwardx11trusted',
  'gatewayports',
  'gssapirenewalforcesrekey',
  'hashknownhosts',
  'hostbasedauthentication',
  'nohostauthenticationforlocalhost',
  'permitlocalcommand',
  'proxyusefdpass',
  'stdinnull',
  'streamlocalbindunlink',
  'visualhostkey',
]);
export const STRING_KEYWORDS = new Set(['hostname', 'user', 'hostkeyalias', 'bindaddress', 'controlpath', 'ignoreunknown', 'identityagent', 'gssapiserveridentity']);
export const ALGORITHM_KEYWORDS = new Set<string>(['ciphers', 'macs', 'kexalgorithms', 'hostkeyalgorithms', 'pubkeyacceptedalgorithms']);

/** Reads a port as a2port does: 1–65535, or a TCP service name from /etc/services. */
export function parsePortValue(text: string, allowZero = false): number | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n <= 65535 && (allowZero || n > 0) ? n : undefined;
  }
  try {
    for (const line of readFileSync('/etc/services', 'utf8').split('\n')) {
      const [name, portProto, ...aliases] = line.replace(/#.*/, '').trim().split(/\s+/);
      if (!portProto?.endsWith('/tcp')) continue;
      if (name === text || aliases.includes(text)) return Number(portProto.slice(0, -4));
    }
  } catch {
    /* no services database: only numbers */
  }
  return undefined;
}

/** convtime: seconds, or a run of number+unit (s m h d w), e.g. 1h30m. */
export function parseTime(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  let total = 0;
  const re = /(\d+)([smhdwSMHDW]?)/gy;
  let consumed = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * units[(m[2] || 's').toLowerCase()]!;
    consumed = re.lastIndex;
  }
  return consumed === text.length && text !== '' ? total : undefined;
}

function parseFwdFields(spec: string): { arg: string; isPath: boolean }[] | undefined {
  const fields: { arg: string; isPath: boolean }[] = [];
  let i = 0;
  while (i <= spec.length) {
    if (spec[i] === '[') {
      const close = spec.indexOf(']', i);
      if (close < 0 || (close + 1 < spec.length && spec[close + 1] !== ':')) return undefined;
      fields.push({ arg: spec.slice(i + 1, close), isPath: false });
      i = close + 2;
    } else {
      const colon = spec.indexOf(':', i);
      const end = colon < 0 ? spec.length : colon;
      const arg = spec.slice(i, end);
      // As parse_fwd_field: a '/' anywhere in an unbracketed field makes it a socket path.
      fields.push({ arg, isPath: arg.includes('/') });
      i = end + 1;
    }
    if (i > spec.length) break;
  }
  return fields;
}

/** parse_forward: `[listen_host:]port host:hostport`, Unix socket paths, or (dynamic) `[host:]port`. */
export function parseForwardSpec(spec: string, dynamic: boolean, remote: boolean): ForwardSpec | undefined {
  const f = parseFwdFields(spec);
  if (!f) return undefined;
  const port = (s: string) => parsePortValue(s, true) ?? -1;
  let fwd: ForwardSpec;
  if (f.length === 1) fwd = f[0]!.isPath ? { listenPath: f[0]!.arg, listenPort: -2, connectHost: 'socks', connectPort: 0 } : { listenPort: port(f[0]!.arg), connectHost: 'socks', connectPort: 0 };
  else if (f.length === 2) {
    if (f[0]!.isPath && f[1]!.isPath) fwd = { listenPath: f[0]!.arg, listenPort: -2, connectPath: f[1]!.arg, connectPort: -2 };
    else if (f[1]!.isPath) fwd = { listenPort: port(f[0]!.arg), connectPath: f[1]!.arg, connectPort: -2 };
    else fwd = { listenHost: f[0]!.arg, listenPort: port(f[1]!.arg), connectHost: 'socks', connectPort: 0 };
  } else if (f.length === 3) {
    if (f[0]!.isPath) fwd = { listenPath: f[0]!.arg, listenPort: -2, connectHost: f[1]!.arg, connectPort: port(f[2]!.arg) };
    else if (f[2]!.isPath) fwd = { listenHost: f[0]!.arg, listenPort: port(f[1]!.arg), connectPath: f[2]!.arg, connectPort: -2 };
    else fwd = { listenPort: port(f[0]!.arg), connectHost: f[1]!.arg, connectPort: port(f[2]!.arg) };
  } else if (f.length === 4) fwd = { listenHost: f[0]!.arg, listenPort: port(f[1]!.arg), connectHost: f[2]!.arg, connectPort: port(f[3]!.arg) };
  else return undefined;
  if (dynamic) {
    if (f.length > 2) return undefined;
  } else {
    if (f.length < 3 && fwd.connectPath === undefined && fwd.listenPath === undefined) return undefined;
    if (fwd.connectPort <= 0 && fwd.connectPath === undefined) return undefined;
  }
  if ((fwd.listenPort < 0 && fwd.listenPath === undefined) || (!remote && fwd.listenPort === 0)) return undefined;
  return fwd;
}

/**
 * A RemoteForward as the tunnel takes it (args.ts's RemoteForwardSpec), with -R's defaults:
 * no bind address is "localhost", `*` is all interfaces (""); a socket path to listen on
 * takes the bind address's place, with port 0. A Unix-socket target keeps its path as the
 * host, with port 0; a dynamic (SOCKS) one has no host. Undefined for what revtun cannot
 * forward: a dynamic forwarding on a socket path (ssh has no such thing either), an empty
 * target host.
 */
export function toRemoteForwardSpec(f: ForwardSpec): RemoteForwardSpec | undefined {
  const bind = f.listenPath ?? f.listenHost ?? 'localhost';
  const bindAddress = bind === '*' ? '' : bind;
  const port = f.listenPath !== undefined ? 0 : f.listenPort;
  if (f.connectPath !== undefined) return { bindAddress, port, host: f.connectPath, hostPort: 0, dynamic: false };
  // parse_forward's mark for "no target": ssh -R answers SOCKS on such a forwarding.
  if (f.connectHost === 'socks' && f.connectPort === 0) return f.listenPath !== undefined ? undefined : { bindAddress, port, host: '', hostPort: 0, dynamic: true };
  // A bracketed host with a '/' ([a/b]:80) is no socket path to ssh, nor a host to anyone.
  if (!f.connectHost || f.connectHost.includes('/')) return undefined;
  return { bindAddress, port, host: f.connectHost, hostPort: f.connectPort, dynamic: false };
}

/** The single argument of a one-value keyword, with ssh's errors for none or more. */
export function oneArg(line: ConfigLine): string {
  const arg = line.args[0];
  if (arg === undefined || arg === '') throw new SshConfigError('Missing argument.', line.file, line.line);
  if (line.args.length > 1) throw new SshConfigError(`keyword ${line.keyword} extra arguments at end of line`, line.file, line.line);
  return arg;
}

/** Parses one keyword's value, throwing ssh's error for a bad one. */
export function parseValue(keyword: string, line: ConfigLine): string | number | boolean | string[] {
  const bad = (msg: string): never => {
    throw new SshConfigError(msg, line.file, line.line);
  };
  if (FLAG_KEYWORDS.has(keyword) || IGNORED_FLAG_KEYWORDS.has(keyword)) {
    const v = FLAG[oneArg(line).toLowerCase()];
    return v ?? bad(`unsupported option "${line.args[0]}".`);
  }
  if (STRING_KEYWORDS.has(keyword)) return oneArg(line);
  switch (keyword) {
    case 'port': {
      const arg = oneArg(line);
      return parsePortValue(arg) ?? bad(`Bad port '${arg}'.`);
    }
    case 'compression':
      return { yes: true, no: false }[oneArg(line).toLowerCase() as 'yes'] ?? bad(`unsupported option "${line.args[0]}".`);
    case 'stricthostkeychecking': {
      const map: Record<string, string> = { true: 'yes', yes: 'yes', false: 'no', no: 'no', off: 'no', ask: 'ask', 'accept-new': 'accept-new' };
      return map[oneArg(line).toLowerCase()] ?? bad(`unsupported option "${line.args[0]}".`);
    }
    case 'pubkeyauthentication': {
      const map: Record<string, string> = { true: 'yes', yes: 'yes', false: 'no', no: 'no', unbound: 'unbound', 'host-bound': 'host-bound' };
      return map[oneArg(line).toLowerCase()] ?? bad(`unsupported option "${line.args[0]}".`);
    }
    case 'addressfamily': {
      const v = oneArg(line).toLowerCase();
      return ['any', 'inet', 'inet6'].includes(v) ? v : bad(`unsupported option "${line.args[0]}".`);
    }
    case 'canonicalizehostname': {
      const map: Record<string, string> = { true: 'yes', yes: 'yes', false: 'no', no: 'no', always: 'always' };
      return map[oneArg(line).toLowerCase()] ?? bad(`unsupported option "${line.args[0]}".`);
    }
    case 'loglevel':
      return LOG_LEVELS[oneArg(line).toLowerCase()] ?? bad(`unsupported log level '${line.args[0]}'`);
    case 'connectionattempts':
    case 'serveralivecountmax': {
      // atoi_err: strtonum over 0..INT_MAX, with its three words.
      const arg = oneArg(line);
      if (!/^[-+]?\d+$/.test(arg.trim())) bad('integer value invalid.');
      const n = Number(arg);
      if (n < 0) bad('integer value too small.');
      return n <= 0x7fffffff ? n : bad('integer value too large.');
    }
    case 'serveraliveinterval':
    case 'connecttimeout': {
      const arg = oneArg(line);
      if (arg === 'none') return -1;
      return parseTime(arg) ?? bad('invalid time value.');
    }
    case 'userknownhostsfile':
    case 'globalknownhostsfile':
      if (line.args.some((a) => a === '')) bad(`keyword ${keyword} empty argument`);
      if (line.args.some((a) => a.toLowerCase() === 'none') && line.args.length > 1) bad(`keyword ${keyword} "none" argument must appear alone.`);
      return [...line.args];
  }
  if (ALGORITHM_KEYWORDS.has(keyword)) {
    const arg = oneArg(line);
    if (!validAlgorithmList(keyword as AlgorithmKeyword, arg)) {
      const what: Record<string, string> = {
        ciphers: 'Bad SSH2 cipher spec',
        macs: 'Bad SSH2 MAC spec',
        kexalgorithms: 'Bad SSH2 KexAlgorithms',
        hostkeyalgorithms: 'Bad key types',
        pubkeyacceptedalgorithms: 'Bad key types',
      };
      bad(`${what[keyword]} '${arg}'.`);
    }
    return arg;
  }
  throw new SshConfigError(`internal: no parser for ${keyword}`, line.file, line.line);
}

/** One hop of a ProxyJump, `[user@]host[:port]` or `ssh://[user@]host[:port]`, as parse_jump accepts it. */
export function validJumpHop(hop: string): boolean {
  const portOk = (p: string | undefined) => p === undefined || (parsePortValue(p) ?? 0) > 0;
  const uri = /^ssh:\/\/(?:([^@/]*)@)?(\[[^\]]*\]|[^:/]*)(?::([^/]*))?\/?$/.exec(hop);
  if (hop.startsWith('ssh://')) return uri !== null && uri[1] !== '' && uri[2] !== '' && uri[2] !== '[]' && portOk(uri[3]);
  const at = hop.lastIndexOf('@');
  if (at === 0 || at === hop.length - 1) return false;
  const rest = hop.slice(at + 1);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(.*))?$/.exec(rest);
  return m !== null && portOk(m[3]);
}

/** ProxyJump as `ssh -G` prints it: earlier hops as written, the last with [brackets] for an address. */
export function formatJump(spec: string): string {
  const comma = spec.lastIndexOf(',');
  const extra = comma > 0 ? spec.slice(0, comma) : undefined;
  let last = comma > 0 ? spec.slice(comma + 1) : spec;
  let user: string | undefined;
  let port: string | undefined;
  const uri = /^ssh:\/\/(?:([^@/]+)@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(last);
  if (uri) {
    user = uri[1];
    last = uri[2]!.replace(/^\[|\]$/g, '');
    port = uri[3];
  } else {
    const at = last.lastIndexOf('@');
    if (at >= 0) {
      user = last.slice(0, at);
      last = last.slice(at + 1);
    }
    const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(last);
    if (bracket) [, last, port] = bracket as unknown as [string, string, string | undefined];
    else if (/^[^:]+:\d+$/.test(last)) [last, port] = last.split(':') as [string, string];
  }
  const numeric = last.includes(':') || /^[0-9.]+$/.test(last);
  const hostPart = numeric ? `[${last}]` : last;
  return `${extra !== undefined ? `${extra},` : ''}${user !== undefined ? `${user}@` : ''}${hostPart}${port !== undefined ? `:${Number(port)}` : ''}`;
}
