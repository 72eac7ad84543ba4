// A throwaway OpenSSH sshd on loopback, for the demo and the integration tests: its own
// host keys, authorized_keys and config in a temporary directory, an ephemeral port, and
// readiness taken from sshd's own "Server listening" line.

import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';

export interface KeyPair {
  privatePath: string;
  privateText: string;
  publicLine: string;
}

/** Generates a key pair with ssh-keygen; `format` picks the private key encoding. */
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

export const SSHD_PATH = ['/usr/sbin/sshd', '/usr/local/sbin/sshd'].find((p) => existsSync(p)) ?? 'sshd';

export interface LoopbackSshdOptions {
  /** Users whose authorized_keys file holds `authorizedKeys`. */
  users: string[];
  authorizedKeys: string[];
  /**
   * Extra sshd_config lines. A keyword given here replaces the default line for it (sshd
   * itself keeps the first value it reads and would ignore a later one without a word);
   * lines from the first `Match` on are appended as they are. A LogLevel below INFO is raised
   * to INFO, since readiness is read from an INFO line.
   */
  config?: string[];
  usePam?: boolean;
  /** Size of the ECDSA host key (256 by default). */
  ecdsaBits?: 256 | 384 | 521;
}

export interface LoopbackSshd {
  host: string;
  port: number;
  dir: string;
  hostKeys: Record<'ed25519' | 'ecdsa' | 'rsa', string>;
  /** The listening sshd; each connection is served by a child of it. */
  pid: number;
  /** What sshd has logged so far (it logs to stderr). */
  log(): string;
  stop(): Promise<void>;
}

const keywordOf = (line: string) => line.trim().split(/\s+/)[0]!.toLowerCase();

/** Defaults first, with each keyword the extra lines set taken out of them; see LoopbackSshdOptions.config. */
export function mergeSshdConfig(defaults: string[], extra: string[]): string[] {
  const firstMatch = extra.findIndex((line) => keywordOf(line) === 'match');
  const global = firstMatch === -1 ? extra : extra.slice(0, firstMatch);
  const overridden = new Set(global.filter((line) => line.trim()).map(keywordOf));
  const lines = [...defaults.filter((line) => !overridden.has(keywordOf(line))), ...extra];
  return lines.map((line) => (keywordOf(line) === 'loglevel' && /^\s*\S+\s+(QUIET|FATAL|ERROR)\s*$/i.test(line) ? 'LogLevel INFO' : line));
}

export async function startLoopbackSshd(options: LoopbackSshdOptions): Promise<LoopbackSshd> {
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'revtun-sshd-'));
  chmodSync(dir, 0o755);
  const hostKeys = {
    ed25519: generateKey(dir, 'host_ed25519', 'ed25519'),
    ecdsa: generateKey(dir, 'host_ecdsa', 'ecdsa', { bits: options.ecdsaBits ?? 256 }),
    rsa: generateKey(dir, 'host_rsa', 'rsa', { bits: 2048 }),
  };
  const authDir = join(dir, 'authorized_keys');
  mkdirSync(authDir);
  for (const user of options.users) writeFileSync(join(authDir, user), options.authorizedKeys.join('\n') + '\n', { mode: 0o644 });
  const port = await freePort();
  const defaults = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    ...Object.values(hostKeys).map((k) => `HostKey ${k.privatePath}`),
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
  ];
  const config = mergeSshdConfig(defaults, options.config ?? []);
  const configPath = join(dir, 'sshd_config');
  writeFileSync(configPath, config.join('\n') + '\n');
  const child = spawn(SSHD_PATH, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > 1_000_000) output = output.slice(-500_000);
      if (/Server listening on/.test(output)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`sshd exited with status ${code}: ${output}`)));
    child.once('error', reject);
  });
  return {
    host: '127.0.0.1',
    port,
    dir,
    hostKeys: { ed25519: hostKeys.ed25519.publicLine, ecdsa: hostKeys.ecdsa.publicLine, rsa: hostKeys.rsa.publicLine },
    pid: child.pid!,
    log: () => output,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
