// Builds SSHReverseTunnel instances for the tests against a started sshd.

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SSHReverseTunnel, SshAuthMode } from '../../ts/index.js';
import type { Sshd } from './sshd.js';
import type { RekeyCounts, SshClientCore } from '../../ts/protocol/client.js';
import { TEST_PASSWORD, TEST_USER } from './sshd.js';

export interface TunnelSetup {
  config?: string[];
  ciphers?: string;
  privateKey?: string;
  passphrase?: string;
  password?: string;
  user?: string;
  trustKey?: string;
}

/** A tunnel that trusts the sshd's ed25519 host key and logs on with the test user's password. */
export function makeTunnel(sshd: Sshd, setup: TunnelSetup = {}): SSHReverseTunnel {
  const t = new SSHReverseTunnel();
  t.sshHost = sshd.host;
  t.sshPort = sshd.port;
  t.sshUser = setup.user ?? TEST_USER;
  t.timeout = 60;
  t.sshAcceptServerHostKey = setup.trustKey ?? '';
  if (!setup.trustKey) {
    // Trust every host key type the server has, as a user with known_hosts would.
    t.config(`SSHAcceptServerHostKeyFingerPrint=${fingerprintsOf(sshd).join(',')}`);
  }
  if (setup.privateKey) {
    t.sshAuthMode = SshAuthMode.PublicKey;
    t.sshCertStore = setup.privateKey;
    t.sshCertStorePassword = setup.passphrase ?? '';
  } else {
    t.sshPassword = setup.password ?? TEST_PASSWORD;
  }
  if (setup.ciphers) t.sshEncryptionAlgorithms = setup.ciphers;
  for (const c of setup.config ?? []) t.config(c);
  return t;
}

const cache = new Map<string, string[]>();
/** SHA256 fingerprints of all of the server's host keys, via ssh-keygen -l. */
export function fingerprintsOf(sshd: Sshd): string[] {
  // Keyed by the keys themselves: replaceHostKeys gives the same sshd (same dir) new ones.
  const key = Object.values(sshd.hostKeys).join('\n');
  const cached = cache.get(key);
  if (cached) return cached;
  const out: string[] = [];
  for (const line of Object.values(sshd.hostKeys)) {
    const file = join(sshd.dir, 'fp.pub');
    writeFileSync(file, line + '\n');
    const printed = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', file], { encoding: 'utf8' });
    out.push(printed.split(/\s+/)[1]!);
  }
  cache.set(key, out);
  return out;
}

/**
 * The live connection's completed re-exchanges, by who started each (the core's `rekeys`).
 * The documented API has no such reading, so this reaches the tunnel's session, which exists
 * from sshLogon until the connection ends: read it before sshLogoff.
 */
export function rekeyCounts(tunnel: SSHReverseTunnel): RekeyCounts {
  const session = (tunnel as unknown as { session: { core: SshClientCore } | null }).session;
  if (!session) throw new Error('rekeyCounts: the tunnel has no connection');
  return session.core.rekeys;
}

/**
 * Whether this project's connections are expected on the native data plane: DataPlane=native
 * is the default, so every connection the native addon can carry goes there unless
 * REVTUN_DATA_PLANE=js forces the JavaScript plane (the integration:js-plane project) or
 * another crypto provider is forced (the wasm and node projects).
 */
export const NATIVE_PLANE_EXPECTED = process.env['REVTUN_DATA_PLANE']?.trim().toLowerCase() !== 'js' && process.env['REVTUN_CRYPTO'] === 'native';
