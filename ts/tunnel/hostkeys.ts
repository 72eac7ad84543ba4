// Host key trust material: matching a presented key against what the user said to trust
// (an OpenSSH public key line, a base64 key blob, or a fingerprint in MD5 hex, SHA1 hex or
// SHA256 base64 form), the trust anchors of SSHAcceptServerCAKey (OpenSSH CA keys for host
// certificates, PEM CA certificates for X.509 host keys, RFC 6187), and OpenSSH known_hosts
// files with hashed entries, [host]:port, @revoked and @cert-authority lines.

import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { HostCertificateInfo, HostKeyInfo } from '../protocol/client.js';
import { equalBytes } from '../protocol/wire.js';
import { SshError, Code } from '../protocol/errors.js';
import { parsePublicKey, publicKeyTypeName } from '../protocol/publickey.js';
import { oneLineDn, verifyX509Chain, type X509HostKeyInfo } from '../protocol/x509-trust.js';

function normaliseHex(text: string): string {
  return text.replace(/[:\s]/g, '').toLowerCase();
}

/** True when `trusted` names the presented key (key text or any fingerprint form). */
export function hostKeyMatches(trusted: string, info: HostKeyInfo): boolean {
  const t = trusted.trim();
  if (t === '') return false;
  const parts = t.split(/\s+/);
  // "ssh-ed25519 AAAA... comment" or a bare base64 blob
  const candidate = parts.length >= 2 && /^[a-z0-9@.-]+$/.test(parts[0]!) ? parts[1]! : parts[0]!;
  if (/^[A-Za-z0-9+/]{40,}={0,2}$/.test(candidate)) {
    try {
      if (equalBytes(Buffer.from(candidate, 'base64'), info.hostKey)) return true;
    } catch {
      /* not base64 */
    }
  }
  if (/^SHA256:/i.test(t)) return t.slice(7).replace(/=+$/, '') === info.fingerprints.sha256;
  if (/^MD5:/i.test(t)) return normaliseHex(t.slice(4)) === normaliseHex(info.fingerprints.md5);
  if (/^SHA1:/i.test(t)) return normaliseHex(t.slice(5)) === normaliseHex(info.fingerprints.sha1);
  const hex = normaliseHex(t);
  if (/^[0-9a-f]{32}$/.test(hex)) return hex === normaliseHex(info.fingerprints.md5);
  if (/^[0-9a-f]{40}$/.test(hex)) return hex === normaliseHex(info.fingerprints.sha1);
  if (/^[0-9a-f]{64}$/.test(hex)) return Buffer.from(hex, 'hex').toString('base64').replace(/=+$/, '') === info.fingerprints.sha256;
  return t.replace(/=+$/, '') === info.fingerprints.sha256;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** At most this many CA certificates: each is tried against each certificate of a chain. */
const MAX_CA_CERTIFICATES = 64;

/**
 * The PEM CA certificates of SSHAcceptServerCAKey ("-----BEGIN CERTIFICATE-----" blocks, among
 * or instead of OpenSSH CA keys): the trust anchors of X.509 host keys. A block OpenSSL cannot
 * read, or a certificate that is not a CA's (basicConstraints CA:TRUE), is error 10022.
 */
export function parseCaCertificates(text: string): crypto.X509Certificate[] {
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length > MAX_CA_CERTIFICATES) throw new SshError(Code.BadArgument, `SSHAcceptServerCAKey: more than ${MAX_CA_CERTIFICATES} CA certificates`, 'local');
  return blocks.map((block, index) => {
    let certificate: crypto.X509Certificate;
    try {
      certificate = new crypto.X509Certificate(block);
    } catch {
      throw new SshError(Code.BadArgument, `SSHAcceptServerCAKey: CA certificate ${index + 1} is not a readable PEM certificate`, 'local');
    }
    if (!certificate.ca) {
      throw new SshError(
        Code.BadArgument,
        `SSHAcceptServerCAKey: certificate ${index + 1} (${JSON.stringify(oneLineDn(certificate.subject))}) is not a CA certificate; to trust one server's certificate, accept its key by fingerprint`,
        'local',
      );
    }
    return certificate;
  });
}

/**
 * The CA keys of SSHAcceptServerCAKey: OpenSSH public key lines ("ssh-ed25519 AAAA... comment")
 * or bare base64 blobs, one per line or separated by commas. PEM certificates in the text are
 * parseCaCertificates' and skipped here. A key that does not decode is error 10022, naming its
 * position (never quoting more than its start).
 */
export function parseCaKeys(text: string, what = 'SSHAcceptServerCAKey'): Uint8Array[] {
  const keys: Uint8Array[] = [];
  const entries = text
    .replace(PEM_CERTIFICATE, '\n')
    .split(/[\r\n,]+/)
    .map((e) => e.trim())
    .filter((e) => e !== '');
  entries.forEach((entry, index) => {
    const parts = entry.split(/\s+/);
    const base64 = parts.length >= 2 && /^[a-z0-9@.-]+$/.test(parts[0]!) ? parts[1]! : parts[0]!;
    const refuse = (why: string) => new SshError(Code.BadArgument, `${what}: CA key ${index + 1} (${JSON.stringify(entry.slice(0, 24))}...) ${why}`, 'local');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) throw refuse('is not an OpenSSH public key line');
    const blob = new Uint8Array(Buffer.from(base64, 'base64'));
    let type: string;
    try {
      type = publicKeyTypeName(parsePublicKey(blob));
    } catch (error) {
      throw refuse(`is not a usable public key (${(error as Error).message})`);
    }
    if (base64 !== parts[0] && type !== parts[0]) throw refuse(`is labelled ${parts[0]} but holds a ${type} key`);
    keys.push(blob);
  });
  return keys;
}

/** How a host certificate stands against the trusted CA keys: trusted, or the reason not. */
export type CertificateJudgement = { trusted: true } | { trusted: false; reason: string };

/**
 * Judges a host certificate by the trusted CA keys: its CA must be one of them and the
 * certificate must have no problem (expired, another principal...). `revokedKeys` (known_hosts
 * @revoked lines) revoke the CA key or the certified key, as in OpenSSH.
 */
export function judgeHostCertificate(certificate: HostCertificateInfo, certifiedKey: Uint8Array, trustedCaKeys: readonly Uint8Array[], revokedKeys: readonly Uint8Array[] = []): CertificateJudgement {
  const ca = `${certificate.caKeyType} SHA256:${certificate.caFingerprints.sha256}`;
  if (revokedKeys.some((key) => equalBytes(key, certificate.caKey))) return { trusted: false, reason: `the CA key of the host certificate (${ca}) is marked as revoked` };
  if (revokedKeys.some((key) => equalBytes(key, certifiedKey))) return { trusted: false, reason: 'the certified host key is marked as revoked' };
  if (!trustedCaKeys.some((key) => equalBytes(key, certificate.caKey))) {
    return { trusted: false, reason: `the host certificate is signed by a CA that is not trusted (${ca})` };
  }
  if (certificate.problem) return { trusted: false, reason: certificate.problem };
  return { trusted: true };
}

/**
 * Judges an X.509 host key by the trusted CA certificates: its chain must lead to one of them,
 * then the leaf must have no problem (expired, another name...). The chain is judged first, so
 * that a certificate from an unknown CA is reported as such whatever else is wrong with it.
 */
export function judgeX509HostKey(x509: X509HostKeyInfo, trustedCertificates: readonly crypto.X509Certificate[]): CertificateJudgement {
  const chain = verifyX509Chain(x509.certificates, trustedCertificates, x509.checkedAt);
  if (!chain.trusted) return chain;
  if (x509.problem) return { trusted: false, reason: x509.problem };
  return { trusted: true };
}

/**
 * certSubject and certIssuer of the sshServerAuthentication event: for an X.509 host key the
 * leaf's subject and issuer DNs; for an OpenSSH host certificate its key ID and CA key.
 */
export function certificateSubjectAndIssuer(certificate: HostCertificateInfo | undefined, x509?: X509HostKeyInfo): { certSubject: string; certIssuer: string } {
  if (x509) return { certSubject: x509.subject, certIssuer: x509.issuer };
  if (!certificate) return { certSubject: '', certIssuer: '' };
  return { certSubject: certificate.keyId, certIssuer: `${certificate.caKeyType} SHA256:${certificate.caFingerprints.sha256}` };
}

export interface KnownHostEntry {
  marker: '' | '@revoked' | '@cert-authority';
  patterns: string;
  keyType: string;
  key: Uint8Array;
}

/** Parses known_hosts text; malformed lines are skipped, as OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'] = '';
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') marker = fields.shift() as KnownHostEntry['marker'];
    if (fields.length < 3) continue;
    const [patterns, keyType, keyText] = fields as [string, string, string];
    out.push({ marker, patterns, keyType, key: Buffer.from(keyText, 'base64') });
  }
  return out;
}

/** The name known_hosts uses for a host: "host", or "[host]:port" off port 22. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegex(pattern: string): RegExp {
  return new RegExp(
    '^' +
      pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
    'i',
  );
}

/** Does a known_hosts host field (patterns, negations, or |1|salt|hash) name this host? */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const mac = crypto.createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  let matched = false;
  for (const pattern of field.split(',')) {
    if (pattern.startsWith('!')) {
      if (globToRegex(pattern.slice(1)).test(name)) return false;
    } else if (globToRegex(pattern).test(name)) {
      matched = true;
    }
  }
  return matched;
}

export type KnownHostVerdict = 'match' | 'mismatch' | 'revoked' | 'unknown';

/**
 * Checks a presented key against known_hosts entries for host:port (the entries of every file,
 * user files and global ones together). A @revoked line for the host wins over any good line,
 * whatever the order or the file, as in OpenSSH, which checks revocation before it looks for a
 * match (hostfile.c, check_hostkeys_by_key_or_type): a revocation is appended after the line it
 * revokes, or put in /etc/ssh/ssh_known_hosts by an administrator, and must hold in both places.
 */
export function checkKnownHosts(entries: KnownHostEntry[], host: string, port: number, hostKey: Uint8Array): KnownHostVerdict {
  const name = knownHostsName(host, port);
  const forHost = entries.filter((entry) => hostFieldMatches(entry.patterns, name));
  if (forHost.some((entry) => entry.marker === '@revoked' && equalBytes(entry.key, hostKey))) return 'revoked';
  const plain = forHost.filter((entry) => entry.marker === '');
  if (plain.some((entry) => equalBytes(entry.key, hostKey))) return 'match';
  return plain.length > 0 ? 'mismatch' : 'unknown';
}

/**
 * The keys known_hosts gives for host certificates of host:port: the CAs of the
 * @cert-authority lines whose patterns match, and the @revoked keys (which revoke a CA key
 * as well as a host key, as in OpenSSH's hostfile.c).
 */
export function knownHostAuthorities(entries: KnownHostEntry[], host: string, port: number): { caKeys: Uint8Array[]; revokedKeys: Uint8Array[] } {
  const name = knownHostsName(host, port);
  const forHost = entries.filter((entry) => entry.marker !== '' && hostFieldMatches(entry.patterns, name));
  return {
    caKeys: forHost.filter((entry) => entry.marker === '@cert-authority').map((entry) => entry.key),
    revokedKeys: forHost.filter((entry) => entry.marker === '@revoked').map((entry) => entry.key),
  };
}

/**
 * Reads and parses known_hosts files in order (the user's files, then the global ones). A file
 * that is missing or cannot be read (a directory, no permission) is skipped, as OpenSSH skips it.
 */
export function loadKnownHostsFiles(paths: string[]): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const path of paths) {
    if (path === '/dev/null' || path === 'none') continue;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      continue;
    }
    entries.push(...parseKnownHosts(text));
  }
  return entries;
}

/** A known_hosts line for a newly accepted key (StrictHostKeyChecking=accept-new). */
export function knownHostsLine(host: string, port: number, keyType: string, hostKey: Uint8Array): string {
  return `${knownHostsName(host, port)} ${keyType} ${Buffer.from(hostKey).toString('base64')}`;
}
