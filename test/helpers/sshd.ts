// Starts a real OpenSSH sshd on loopback for the integration tests: temporary host keys of
// every type, a temporary authorized_keys, a local user with a password, an ephemeral port.
// The server is ready when it logs that it is listening (no sleeps).

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, existsSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';

export const TEST_USER = 'revtuntest';
export const TEST_PASSWORD = 'correct horse battery staple';

let userReady = false;

/** Creates the local test user with its password (the tests run as root, as CI does). */
export function ensureTestUser(): void {
  if (userReady) return;
  try {
    execFileSync('id', [TEST_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', '-s', '/bin/sh', TEST_USER], { stdio: 'inherit' });
  }
  execFileSync('chpasswd', [], { input: `${TEST_USER}:${TEST_PASSWORD}\n` });
  userReady = true;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface KeyPair {
  privatePath: string;
  privateText: string;
  publicLine: string;
}

/** Generates a key with ssh-keygen. `format` picks the private key encoding. */
export function generateKey(
  dir: string,
  name: string,
  type: 'ed25519' | 'ecdsa' | 'rsa',
  options: { bits?: number; passphrase?: string; format?: 'openssh' | 'PEM' | 'PKCS8' } = {},
): KeyPair {
  const path = join(dir, name);
  const args = ['-q', '-t', type, '-f', path, '-N', options.passphrase ?? '', '-C', name];
  if (options.bits) args.push('-b', String(options.bits));
  if (options.format && options.format !== 'openssh') args.push('-m', options.format);
  execFileSync('ssh-keygen', args, { stdio: 'ignore' });
  return { privatePath: path, privateText: readFileSync(path, 'utf8'), publicLine: readFileSync(`${path}.pub`, 'utf8').trim() };
}

export interface SshdOptions {
  /** Extra sshd_config lines. */
  config?: string[];
  usePam?: boolean;
  /** Public key lines allowed for both root and the test user. */
  authorizedKeys?: string[];
}

export interface Sshd {
  port: number;
  host: string;
  dir: string;
  hostKeys: Record<'ed25519' | 'ecdsa' | 'rsa', string>;
  /** Recent sshd log output (it logs to stderr). */
  log(): string;
  stop(): Promise<void>;
}

export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  ensureTestUser();
  mkdirSync('/run/sshd', { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'revtun-sshd-'));
  chmodSync(dir, 0o755);
  const hostKeys = {
    ed25519: generateKey(dir, 'host_ed25519', 'ed25519'),
    ecdsa: generateKey(dir, 'host_ecdsa', 'ecdsa', { bits: 256 }),
    rsa: generateKey(dir, 'host_rsa', 'rsa', { bits: 2048 }),
  };
  const authDir = join(dir, 'authorized_keys');
  mkdirSync(authDir);
  const keys = (options.authorizedKeys ?? []).join('\n') + '\n';
  for (const user of ['root', TEST_USER]) writeFileSync(join(authDir, user), keys, { mode: 0o644 });
  const port = await freePort();
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKeys.ed25519.privatePath}`,
    `HostKey ${hostKeys.ecdsa.privatePath}`,
    `HostKey ${hostKeys.rsa.privatePath}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${authDir}/%u`,
    'StrictModes no',
    `UsePAM ${options.usePam ? 'yes' : 'no'}`,
    'PasswordAuthentication yes',
    `KbdInteractiveAuthentication ${options.usePam ? 'yes' : 'no'}`,
    'PubkeyAuthentication yes',
    'PermitRootLogin yes',
    'AllowTcpForwarding yes',
    'GatewayPorts no',
    'MaxStartups 1000',
    'MaxAuthTries 10',
    'LogLevel VERBOSE',
    ...(options.config ?? []),
  ];
  const configPath = join(dir, 'sshd_config');
  writeFileSync(configPath, config.join('\n') + '\n');
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > 1_000_000) output = output.slice(-500_000);
      if (/Server listening on/.test(output)) resolve();
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`sshd exited with ${code}: ${output}`)));
    child.once('error', reject);
  });
  return {
    port,
    host: '127.0.0.1',
    dir,
    hostKeys: { ed25519: hostKeys.ed25519.publicLine, ecdsa: hostKeys.ecdsa.publicLine, rsa: hostKeys.rsa.publicLine },
    log: () => output,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export function sshdAvailable(): boolean {
  return existsSync('/usr/sbin/sshd');
}
