// The CLI's host key decisions, as ssh makes them: known_hosts files (user and global) read
// into one list, StrictHostKeyChecking (yes, accept-new, no; ask counts as yes without a
// terminal to ask on), @revoked keys refused in every mode, a changed key refused, and an
// unknown key added to the user's file when the mode allows. Used for the server and for
// every jump host, each with the files and mode of its own configuration.

import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parsePublicKey, publicKeyTypeName } from '../protocol/publickey.js';
import { checkKnownHosts, knownHostsLine, knownHostsName, loadKnownHostsFiles, type KnownHostEntry } from '../tunnel/hostkeys.js';

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

/** Like ssh, prefer host key algorithms for which known_hosts already holds a key for this host. */
export function preferKnownKeyTypes(policy: HostKeyPolicy, host: string, port: number, algorithms: string[]): string[] {
  const known = new Set<string>();
  for (const e of policy.entries) {
    if (e.marker !== '' || checkKnownHosts([e], host, port, e.key) !== 'match') continue;
    known.add(e.keyType);
  }
  if (known.size === 0) return algorithms;
  const usesKnown = (alg: string) => known.has(alg.startsWith('rsa-sha2-') ? 'ssh-rsa' : alg);
  return [...algorithms.filter(usesKnown), ...algorithms.filter((a) => !usesKnown(a))];
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
  key: { name: string; port: number; shownHost: string; hostKey: Uint8Array; sha256: string },
): HostKeyDecision {
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
          '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
          '@       WARNING: REVOKED HOST KEY DETECTED!               @',
          '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
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
