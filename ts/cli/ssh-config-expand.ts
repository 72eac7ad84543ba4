// What ssh_config values expand to: the algorithm tables behind `+`, `-` and `^` (OpenSSH
// 9.2p1 on Debian 12, from `ssh -G` and `ssh -Q`), the `%` tokens of ssh_config(5) TOKENS,
// `~` and `${VAR}`, and the glob(3) subset that Include uses.

import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { matchPattern } from './ssh-config-parse.js';

/** One table: each algorithm list's default (`ssh -G`) and every name ssh knows (`ssh -Q`). */
export const OPENSSH_ALGORITHMS = {
  ciphers: {
    defaults: ['chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'],
    all: ['3des-cbc', 'aes128-cbc', 'aes192-cbc', 'aes256-cbc', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com'],
  },
  macs: {
    defaults: [
      'umac-64-etm@openssh.com',
      'umac-128-etm@openssh.com',
      'hmac-sha2-256-etm@openssh.com',
      'hmac-sha2-512-etm@openssh.com',
      'hmac-sha1-etm@openssh.com',
      'umac-64@openssh.com',
      'umac-128@openssh.com',
      'hmac-sha2-256',
      'hmac-sha2-512',
      'hmac-sha1',
    ],
    all: [
      'hmac-sha1',
      'hmac-sha1-96',
      'hmac-sha2-256',
      'hmac-sha2-512',
      'hmac-md5',
      'hmac-md5-96',
      'umac-64@openssh.com',
      'umac-128@openssh.com',
      'hmac-sha1-etm@openssh.com',
      'hmac-sha1-96-etm@openssh.com',
      'hmac-sha2-256-etm@openssh.com',
      'hmac-sha2-512-etm@openssh.com',
      'hmac-md5-etm@openssh.com',
      'hmac-md5-96-etm@openssh.com',
      'umac-64-etm@openssh.com',
      'umac-128-etm@openssh.com',
    ],
  },
  kexalgorithms: {
    defaults: [
      'sntrup761x25519-sha512',
      'sntrup761x25519-sha512@openssh.com',
      'curve25519-sha256',
      'curve25519-sha256@libssh.org',
      'ecdh-sha2-nistp256',
      'ecdh-sha2-nistp384',
      'ecdh-sha2-nistp521',
      'diffie-hellman-group-exchange-sha256',
      'diffie-hellman-group16-sha512',
      'diffie-hellman-group18-sha512',
      'diffie-hellman-group14-sha256',
    ],
    all: [
      'diffie-hellman-group1-sha1',
      'diffie-hellman-group14-sha1',
      'diffie-hellman-group14-sha256',
      'diffie-hellman-group16-sha512',
      'diffie-hellman-group18-sha512',
      'diffie-hellman-group-exchange-sha1',
      'diffie-hellman-group-exchange-sha256',
      'ecdh-sha2-nistp256',
      'ecdh-sha2-nistp384',
      'ecdh-sha2-nistp521',
      'curve25519-sha256',
      'curve25519-sha256@libssh.org',
      'sntrup761x25519-sha512',
      'sntrup761x25519-sha512@openssh.com',
      // Past ssh 9.2 (OpenSSH 9.9): revtun speaks it, so a command line may name it.
      'mlkem768x25519-sha256',
    ],
  },
  hostkeyalgorithms: {
    defaults: [
      'ssh-ed25519-cert-v01@openssh.com',
      'ecdsa-sha2-nistp256-cert-v01@openssh.com',
      'ecdsa-sha2-nistp384-cert-v01@openssh.com',
      'ecdsa-sha2-nistp521-cert-v01@openssh.com',
      'sk-ssh-ed25519-cert-v01@openssh.com',
      'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com',
      'rsa-sha2-512-cert-v01@openssh.com',
      'rsa-sha2-256-cert-v01@openssh.com',
      'ssh-ed25519',
      'ecdsa-sha2-nistp256',
      'ecdsa-sha2-nistp384',
      'ecdsa-sha2-nistp521',
      'sk-ssh-ed25519@openssh.com',
      'sk-ecdsa-sha2-nistp256@openssh.com',
      'rsa-sha2-512',
      'rsa-sha2-256',
    ],
    all: [
      'ssh-ed25519',
      'ssh-ed25519-cert-v01@openssh.com',
      'sk-ssh-ed25519@openssh.com',
      'sk-ssh-ed25519-cert-v01@openssh.com',
      'ecdsa-sha2-nistp256',
      'ecdsa-sha2-nistp256-cert-v01@openssh.com',
      'ecdsa-sha2-nistp384',
      'ecdsa-sha2-nistp384-cert-v01@openssh.com',
      'ecdsa-sha2-nistp521',
      'ecdsa-sha2-nistp521-cert-v01@openssh.com',
      'sk-ecdsa-sha2-nistp256@openssh.com',
      'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com',
      'webauthn-sk-ecdsa-sha2-nistp256@openssh.com',
      'ssh-dss',
      'ssh-dss-cert-v01@openssh.com',
      'ssh-rsa',
      'ssh-rsa-cert-v01@openssh.com',
      'rsa-sha2-256',
      'rsa-sha2-256-cert-v01@openssh.com',
      'rsa-sha2-512',
      'rsa-sha2-512-cert-v01@openssh.com',
    ],
  },
  // The signature algorithms ssh may use for publickey authentication (`ssh -Q PubkeyAcceptedAlgorithms`).
  pubkeyacceptedalgorithms: {
    defaults: [
      'ssh-ed25519-cert-v01@openssh.com',
      'ecdsa-sha2-nistp256-cert-v01@openssh.com',
      'ecdsa-sha2-nistp384-cert-v01@openssh.com',
      'ecdsa-sha2-nistp521-cert-v01@openssh.com',
      'sk-ssh-ed25519-cert-v01@openssh.com',
      'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com',
      'rsa-sha2-512-cert-v01@openssh.com',
      'rsa-sha2-256-cert-v01@openssh.com',
      'ssh-ed25519',
      'ecdsa-sha2-nistp256',
      'ecdsa-sha2-nistp384',
      'ecdsa-sha2-nistp521',
      'sk-ssh-ed25519@openssh.com',
      'sk-ecdsa-sha2-nistp256@openssh.com',
      'rsa-sha2-512',
      'rsa-sha2-256',
    ],
    all: [
      'ssh-ed25519',
      'ssh-ed25519-cert-v01@openssh.com',
      'sk-ssh-ed25519@openssh.com',
      'sk-ssh-ed25519-cert-v01@openssh.com',
      'ecdsa-sha2-nistp256',
      'ecdsa-sha2-nistp256-cert-v01@openssh.com',
      'ecdsa-sha2-nistp384',
      'ecdsa-sha2-nistp384-cert-v01@openssh.com',
      'ecdsa-sha2-nistp521',
      'ecdsa-sha2-nistp521-cert-v01@openssh.com',
      'sk-ecdsa-sha2-nistp256@openssh.com',
      'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com',
      'webauthn-sk-ecdsa-sha2-nistp256@openssh.com',
      'ssh-dss',
      'ssh-dss-cert-v01@openssh.com',
      'ssh-rsa',
      'ssh-rsa-cert-v01@openssh.com',
      'rsa-sha2-256',
      'rsa-sha2-256-cert-v01@openssh.com',
      'rsa-sha2-512',
      'rsa-sha2-512-cert-v01@openssh.com',
    ],
  },
} as const;

/** The algorithm-list keywords, as lowercase ssh_config names. */
export type AlgorithmKeyword = keyof typeof OPENSSH_ALGORITHMS;

/**
 * Whether a list as written is acceptable, the check ssh makes while reading the file: a `-`
 * list may hold any patterns; otherwise (after a leading `+` or `^`) every entry must be a
 * known name, and only HostKeyAlgorithms allows wildcards there.
 */
export function validAlgorithmList(keyword: AlgorithmKeyword, text: string): boolean {
  if (text.startsWith('-')) return true;
  const body = text.startsWith('+') || text.startsWith('^') ? text.slice(1) : text;
  const all: readonly string[] = OPENSSH_ALGORITHMS[keyword].all;
  return body.split(',').every((name) => {
    if (name === '') return false;
    if ((keyword === 'hostkeyalgorithms' || keyword === 'pubkeyacceptedalgorithms') && /[*?]/.test(name)) return !name.startsWith('!');
    return all.includes(name);
  });
}

/** Appends the names of `b` not already in `a` (kex_names_cat). */
function concatNames(a: readonly string[], b: readonly string[]): string[] {
  const out = [...a];
  for (const name of b) if (name !== '' && !out.includes(name)) out.push(name);
  return out;
}

/**
 * The final list for a keyword, as ssh assembles it (kex_assemble_names): unset gives the
 * default; `+names` appends to it, `^names` puts names first, `-patterns` removes matches;
 * each remaining entry is a pattern expanded over every known name in ssh's order.
 */
export function assembleAlgorithms(keyword: AlgorithmKeyword, written: string | undefined): string[] {
  const { defaults, all } = OPENSSH_ALGORITHMS[keyword];
  if (written === undefined || written === '') return [...defaults];
  let list: string[];
  if (written.startsWith('-')) {
    const patterns = written.slice(1).split(',');
    return defaults.filter((name) => !patterns.some((p) => matchPattern(name, p)));
  }
  if (written.startsWith('+')) list = concatNames(defaults, written.slice(1).split(','));
  else if (written.startsWith('^')) list = concatNames(written.slice(1).split(','), defaults);
  else list = written.split(',');
  let out: string[] = [];
  for (const pattern of list)
    out = concatNames(
      out,
      all.filter((name) => matchPattern(name, pattern)),
    );
  return out;
}

/** The values the `%` tokens stand for; which of them a keyword may use is decided by the caller. */
export interface TokenValues {
  /** %h: the remote host name after HostName. */
  host: string;
  /** %n: the host as given on the command line. */
  originalHost: string;
  port: number;
  /** %r */
  remoteUser: string;
  /** %u */
  localUser: string;
  /** %d */
  homeDir: string;
  /** %l: the local host name with its domain (gethostname). */
  localHostname: string;
  /** %i */
  uid: number;
  /** %k: HostKeyAlias, else the host as given. */
  keyAlias: string;
}

/** Tokens each group of keywords accepts, from ssh_config(5) TOKENS. */
export const TOKEN_SETS = {
  /** CertificateFile, ControlPath, IdentityAgent, IdentityFile, LocalForward, Match exec, RemoteCommand, RemoteForward, UserKnownHostsFile. */
  standard: '%CdhikLlnpru',
  /** LocalCommand takes all of them (%T is NONE before a tunnel device exists). */
  localCommand: '%CdhikLlnpruT',
  /** ProxyCommand and ProxyJump. */
  proxy: '%hnpr',
  /** HostName. */
  hostname: '%h',
} as const;

/** %C: SHA-1 of %l%h%p%r in hex, as ssh_connection_hash computes it. */
export function connectionHash(v: TokenValues): string {
  return createHash('sha1').update(`${v.localHostname}${v.host}${v.port}${v.remoteUser}`).digest('hex');
}

/**
 * Replaces `%x` tokens; a token outside `allowed` (or a `%` at the end) is an error, as
 * percent_expand makes it fatal. Returns the error text instead of throwing, so the caller
 * can attach its file and line.
 */
export function expandTokens(text: string, allowed: string, v: TokenValues): { value: string } | { error: string } {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    const t = text[++i];
    if (t === undefined) return { error: `invalid format "${text}": % at end` };
    if (!allowed.includes(t)) return { error: `unknown key %${t} in "${text}"` };
    switch (t) {
      case '%':
        out += '%';
        break;
      case 'h':
        out += v.host;
        break;
      case 'n':
        out += v.originalHost;
        break;
      case 'p':
        out += String(v.port);
        break;
      case 'r':
        out += v.remoteUser;
        break;
      case 'u':
        out += v.localUser;
        break;
      case 'd':
        out += v.homeDir;
        break;
      case 'l':
        out += v.localHostname;
        break;
      case 'L':
        out += v.localHostname.split('.')[0]!;
        break;
      case 'i':
        out += String(v.uid);
        break;
      case 'k':
        out += v.keyAlias;
        break;
      case 'C':
        out += connectionHash(v);
        break;
      case 'T':
        out += 'NONE';
        break;
    }
  }
  return { value: out };
}

/** `${NAME}` from the environment; an unset variable is an error, as in ssh. */
export function expandEnv(text: string, env: Record<string, string | undefined>): { value: string } | { error: string } {
  let missing: string | undefined;
  const value = text.replace(/\$\{([^}]*)\}/g, (_, name: string) => {
    const v = env[name];
    if (v === undefined) missing ??= name;
    return v ?? '';
  });
  return missing === undefined ? { value } : { error: `env var \${${missing}} has no value` };
}

/** `~` and `~/...` to the home directory; `~name` only for the local user (revtun reads no passwd database). */
export function expandTilde(path: string, homeDir: string, localUser: string): string {
  if (path === '~') return homeDir;
  if (path.startsWith('~/')) return join(homeDir, path.slice(2));
  const named = /^~([^/]+)(\/.*)?$/.exec(path);
  if (named && named[1] === localUser) return homeDir + (named[2] ?? '');
  return path;
}

function globSegmentToTest(segment: string): (name: string) => boolean {
  // glob(3) classes [...] become a RegExp; * and ? go through the same rules as matchPattern.
  if (!/[[]/.test(segment)) return (name) => matchPattern(name, segment);
  let re = '^';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = segment.indexOf(']', i + 2);
      if (close < 0) re += '\\[';
      else {
        let body = segment.slice(i + 1, close);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  const regex = new RegExp(re + '$', 's');
  return (name) => regex.test(name);
}

/**
 * The files an absolute glob names, sorted as glob(3) sorts them; wildcards do not match a
 * leading dot. A path without wildcards is returned when it exists.
 */
export function globFiles(pattern: string): string[] {
  const parts = pattern.split('/').filter((p, i) => p !== '' || i === 0);
  let paths = [parts[0] === '' ? '/' : parts[0]!];
  for (const segment of parts.slice(1)) {
    const next: string[] = [];
    for (const dir of paths) {
      if (!/[*?[]/.test(segment)) {
        next.push(join(dir, segment));
        continue;
      }
      const test = globSegmentToTest(segment);
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names.sort()) if (!name.startsWith('.') && test(name)) next.push(join(dir, name));
    }
    paths = next;
  }
  return paths.filter((p) => {
    try {
      statSync(p);
      return true;
    } catch {
      return false;
    }
  });
}
