// SSH servers other than OpenSSH, started on loopback by the tests: Dropbear (Debian's
// dropbear-bin) and AsyncSSH (PyPI), which still speaks the legacy ciphers and MACs. Each has a
// fresh host key; the test user logs on with its password.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureTestUser, freePort, generateKey, TEST_PASSWORD, TEST_USER } from './sshd.js';
import { SSHReverseTunnel } from '../../ts/index.js';

export interface Peer {
  name: string;
  host: string;
  port: number;
  /** The server's host key as an OpenSSH public key line. */
  hostKey: string;
  stop(): Promise<void>;
}

/** Resolves once `ready` matches the child's output; rejects if it exits first. */
function started(child: ChildProcess, ready: RegExp, what: string): Promise<RegExpMatchArray> {
  let output = '';
  return new Promise((resolveMatch, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = output.match(ready);
      if (match) resolveMatch(match);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited with status ${code}: ${output}`)));
    child.once('error', reject);
  });
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise<void>((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done();
      child.once('exit', () => done());
      child.kill('SIGTERM');
    });
}

export async function startDropbear(): Promise<Peer> {
  ensureTestUser();
  const dir = mkdtempSync(join(tmpdir(), 'revtun-dropbear-'));
  const keyFile = join(dir, 'host_ed25519');
  const printed = execFileSync('dropbearkey', ['-t', 'ed25519', '-f', keyFile], { encoding: 'utf8' });
  const hostKey = printed
    .split('\n')
    .find((line) => line.startsWith('ssh-ed25519 '))!
    .split(' ')
    .slice(0, 2)
    .join(' ');
  const port = await freePort();
  // -F foreground, -E log to stderr, -s never (password auth stays on), -j/-k not given: forwarding allowed.
  const child = spawn('dropbear', ['-F', '-E', '-p', `127.0.0.1:${port}`, '-r', keyFile, '-P', join(dir, 'pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
  await started(child, /Not backgrounding/, 'dropbear');
  return { name: 'dropbear', host: '127.0.0.1', port, hostKey, stop: stopper(child) };
}

/** A host key AsyncSSH serves, with the PEM file of its X.509 certificate chain (leaf first) if it has one. */
export interface AsyncSshHostKey {
  privatePath: string;
  certificatePath?: string;
}

/**
 * AsyncSSH with a fresh ed25519 host key (the Peer's hostKey), or with the `hostKeys` given,
 * X.509 certificates included (the Peer's hostKey is then empty), offering `compression`.
 */
export async function startAsyncSsh(ciphers: string[], macs: string[], hostKeys?: AsyncSshHostKey[], compression: string[] = ['none']): Promise<Peer> {
  ensureTestUser();
  const dir = mkdtempSync(join(tmpdir(), 'revtun-asyncssh-'));
  const key = hostKeys ? undefined : generateKey(dir, 'host_ed25519', 'ed25519');
  const keys = hostKeys ?? [{ privatePath: key!.privatePath }];
  const keyArgument = keys.map((k) => (k.certificatePath ? `${k.privatePath}=${k.certificatePath}` : k.privatePath)).join(',');
  const script = resolve(__dirname, '../peers/asyncssh_server.py');
  const child = spawn('python3', [script, TEST_USER, TEST_PASSWORD, keyArgument, ciphers.join(','), macs.join(','), compression.join(',')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const match = await started(child, /listening on (\d+)/, 'the AsyncSSH server');
  return { name: 'asyncssh', host: '127.0.0.1', port: Number(match[1]), hostKey: key?.publicLine ?? '', stop: stopper(child) };
}

/** A tunnel to `peer` trusting its host key, logging on as the test user with the password. */
export function peerTunnel(peer: Peer): SSHReverseTunnel {
  const t = new SSHReverseTunnel();
  t.sshHost = peer.host;
  t.sshPort = peer.port;
  t.sshUser = TEST_USER;
  t.sshPassword = TEST_PASSWORD;
  t.sshAcceptServerHostKey = peer.hostKey;
  t.timeout = 60;
  return t;
}
