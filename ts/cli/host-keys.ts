// The CLI's host key decisions, as ssh makes them: known_hosts files (user and global) read
// into one list, StrictHostKeyChecking (yes, accept-new, no; ask counts as yes without a
// terminal to ask on), @revoked keys refused in every mode, a changed key refused, and an
// unknown key added to the user's file when the mode allows. A host certificate is trusted
// when a @cert-authority line for the host names its CA and the certificate is valid for the
// host now; otherwise, as ssh does, its key is judged again as a plain key. Used for the
// server and for every jump host, each with the files and mode of its own configuration.

import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { equalBytes } from '../protocol/wire.js';
import { keyTypeForAlgorithm, parsePublicKey, publicKeyTypeName } from '../protocol/publickey.js';
import { certificateAlgorithmFor, checkHostCertificate, isCertificateAlgorithm, parseCertificate } from '../protocol/certificates.js';
import type { HostCertificateInfo } from '../protocol/client.js';
import { DEFAULT_HOST_KEY } from '../tunnel/settings.js';
import { checkKnownHosts, judgeHostCertificate, knownHostAuthorities, knownHostsLine, knownHostsName, loadKnownHostsFiles, type KnownHostEntry } from '../tunnel/hostkeys.js';

export interface HostKeyPolicy {
  entries: KnownHostEntry[];
  userFile: string;
  strict: 'yes' | 'accept-new' | 'no';
}

/** The ssh_config values a policy comes from (undefined: ssh's default). */
export interface HostKeyOptions {
  userKnownHostsFile?: string;
  globalKnownHostsFile?: string;
  strictHostKeyChecking?: string;
}

export function loadKnownHosts(options: HostKeyOptions, expandHome: (path: string) => string): HostKeyPolicy {
  const userFiles = (options.userKnownHostsFile ?? '~/.ssh/known_hosts ~/.ssh/known_hosts2').split(/\s+/).map(expandHome);
  const globalFiles = (options.globalKnownHostsFile ?? '/etc/ssh/ssh_known_hosts').split(/\s+/).map(expandHome);
  // One list from every file: a @revoked line in the global file must outweigh a good line in the user's.
  const entries = loadKnownHostsFiles([...userFiles, ...globalFiles]);
  const raw = (options.strictHostKeyChecking ?? 'ask').toLowerCase();
  const strict = raw === 'accept-new' ? 'accept-new' : raw === 'no' || raw === 'off' ? 'no' : 'yes';
  return { entries, userFile: userFiles[0]!, strict };
}

/**
 * The CLI's default HostKeyAlgorithms: the plain algorithms, then their certificate forms.
 * ssh lists the certificates first; here they come first only for a host with a
 * @cert-authority line (preferKnownKeyTypes), so that for any other host the key a server
 * presents, and accept-new records, is the plain one it always was.
 */
export const DEFAULT_CLI_HOST_KEY = [...DEFAULT_HOST_KEY, ...DEFAULT_HOST_KEY.map(certificateAlgorithmFor).filter((n): n is string => n !== undefined)];

/**
 * Like ssh, prefer host key algorithms for which known_hosts already holds a key for this
 * host: the certificate algorithms first when a @cert-authority line matches the host, then
 * the algorithms of its known plain keys.
 */
export function preferKnownKeyTypes(policy: HostKeyPolicy, host: string, port: number, algorithms: string[]): string[] {
  const known = new Set<string>();
  for (const e of policy.entries) {
    if (e.marker !== '' || checkKnownHosts([e], host, port, e.key) !== 'match') continue;
    known.add(e.keyType);
  }
  const hasCa = knownHostAuthorities(policy.entries, host, port).caKeys.length > 0;
  const certificates = hasCa ? algorithms.filter(isCertificateAlgorithm) : [];
  const usesKnown = (alg: string) => !isCertificateAlgorithm(alg) && known.has(keyTypeForAlgorithm(alg));
  const preferred = [...certificates, ...algorithms.filter(usesKnown)];
  return [...preferred, ...algorithms.filter((a) => !preferred.includes(a))];
}

export interface HostKeyDecision {
  accept: boolean;
  /** Why it was refused, for the error line. */
  problem?: string;
  /** Lines ssh prints on stderr whatever the log level (the revoked-key banner). */
  warning?: string[];
  /** What ssh logs (unless -q) about the decision: an added key, a file it could not write. */
  note?: string;
}

/**
 * Decides on a presented host key. `name` is what known_hosts is searched for (HostKeyAlias
 * or the host name), `shownHost` the host as the user wrote it.
 */
export function decideHostKey(
  policy: HostKeyPolicy,
  key: { name: string; port: number; shownHost: string; hostKey: Uint8Array; sha256: string; certificate?: HostCertificateInfo | undefined },
  now: number = Date.now(),
): HostKeyDecision {
  if (!key.certificate) return decidePlainKey(policy, key);
  const keyType = publicKeyTypeName(parsePublicKey(key.hostKey));
  // Principals are checked against this name (HostKeyAlias or the host), as ssh checks them.
  const certificate = { ...key.certificate, problem: checkHostCertificate(parseCertificate(key.certificate.blob), key.name, BigInt(Math.floor(now / 1000))) };
  const { caKeys, revokedKeys } = knownHostAuthorities(policy.entries, key.name, key.port);
  const judgement = judgeHostCertificate(certificate, key.hostKey, caKeys, revokedKeys);
  if (judgement.trusted) return { accept: true };
  const revoked = revokedKeys.some((k) => equalBytes(k, certificate.caKey) || equalBytes(k, key.hostKey));
  if (revoked) {
    // ssh's banner, and no retry with the plain key: a revoked CA revokes what it signed.
    return {
      accept: false,
      problem: `Host key verification failed: ${judgement.reason}.`,
      warning: [
        ...REVOKED_BANNER,
        `The ${keyType} host certificate for ${knownHostsName(key.name, key.port)} is marked as revoked: ${judgement.reason}.`,
        'This could mean that a stolen key is being used to',
        'impersonate this host.',
      ],
    };
  }
  // As ssh: a certificate that cannot vouch for the host leaves its key to be judged as a
  // plain key. A problem with a certificate from a trusted CA is reported whatever follows.
  const trustedCa = caKeys.some((k) => equalBytes(k, certificate.caKey));
  const plain = decidePlainKey(policy, key);
  const reason = `Host certificate refused: ${judgement.reason}.`;
  return {
    ...plain,
    ...(trustedCa ? { warning: [...(plain.warning ?? []), reason] } : {}),
    ...(plain.accept ? {} : { problem: `${reason} ${plain.problem ?? ''}`.trim() }),
  };
}

const REVOKED_BANNER = [
  '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
  '@       WARNING: REVOKED HOST KEY DETECTED!               @',
  '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
];

function decidePlainKey(policy: HostKeyPolicy, key: { name: string; port: number; shownHost: string; hostKey: Uint8Array; sha256: string }): HostKeyDecision {
  const keyType = publicKeyTypeName(parsePublicKey(key.hostKey));
  const verdict = checkKnownHosts(policy.entries, key.name, key.port, key.hostKey);
  const fingerprint = `${keyType} key fingerprint is SHA256:${key.sha256}`;
  switch (verdict) {
    case 'match':
      return { accept: true };
    case 'revoked':
      // ssh's words. ssh goes on under StrictHostKeyChecking=no, but with port forwarding
      // disabled, which leaves a tunnel nothing to do: revtun refuses in every mode.
      return {
        accept: false,
        problem: 'Host key verification failed.',
        warning: [
          ...REVOKED_BANNER,
          `The ${keyType} host key for ${knownHostsName(key.name, key.port)} is marked as revoked.`,
          'This could mean that a stolen key is being used to',
          'impersonate this host.',
          `The ${fingerprint}.`,
        ],
      };
    case 'mismatch':
      return { accept: false, problem: `WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! The ${fingerprint}. Refusing to connect.` };
  }
  if (policy.strict === 'yes') {
    return { accept: false, problem: `No ${keyType} host key is known for ${key.shownHost} and StrictHostKeyChecking is on (${fingerprint}).` };
  }
  try {
    mkdirSync(dirname(policy.userFile), { recursive: true, mode: 0o700 });
    appendFileSync(policy.userFile, knownHostsLine(key.name, key.port, keyType, key.hostKey) + '\n', { mode: 0o600 });
    return { accept: true, note: `Warning: Permanently added '${key.shownHost}' (${keyType}) to the list of known hosts.` };
  } catch (error) {
    return { accept: true, note: `Failed to add the host to the list of known hosts (${policy.userFile}): ${(error as Error).message}` };
  }
}
