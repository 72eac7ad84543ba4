// A russh (crates.io) SSH server as a foreign test peer: the binary in test/peers/russh-server,
// built by scripts/setup.sh. Stricter than OpenSSH: it drops a client that sends anything but
// key exchange messages after its own KEXINIT (RFC 4253 §7.1), so re-keys started by revtun
// are judged by someone else's reading of the RFC. Fresh ed25519 host key per server; the
// test user logs on with its password (russh checks it itself: no system account needed).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateKey, TEST_PASSWORD, TEST_USER } from './sshd.js';
import type { Peer } from './peers.js';

const PACKAGE = resolve(__dirname, '../peers/russh-server');
export const RUSSH_SERVER_BINARY = join(PACKAGE, 'target/release/revtun-russh-server');

export interface RusshOptions {
  /** russh starts a key re-exchange after this many bytes sent or received (its default is 1 GiB). */
  rekeyBytes?: number;
  /** An OpenSSH public key line the test user may also log on with. */
  authorizedKey?: string;
}

export interface RusshPeer extends Peer {
  /** What the server has logged to stderr so far. */
  log(): string;
  /**
   * Resolves with the server's last line about the SSH connection from loopback port
   * `clientPort` (`... ended` or `... ended with an error: ...`) once russh has finished with
   * it: the reason russh gives when it drops a client, which the client only sees as a reset.
   */
  connectionEnded(clientPort: number): Promise<string>;
}

export async function startRusshServer(options: RusshOptions = {}): Promise<RusshPeer> {
  if (!existsSync(RUSSH_SERVER_BINARY)) {
    throw new Error(
      `the russh test server is not built (${RUSSH_SERVER_BINARY} is missing): run ` +
        '`cargo build --release --locked --manifest-path test/peers/russh-server/Cargo.toml` ' +
        '(scripts/setup.sh does this)',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'revtun-russh-'));
  const hostKey = generateKey(dir, 'host_ed25519', 'ed25519');
  const args = ['--listen', '127.0.0.1:0', '--host-key', hostKey.privatePath, '--user', TEST_USER, '--password', TEST_PASSWORD];
  if (options.rekeyBytes !== undefined) args.push('--rekey-bytes', String(options.rekeyBytes));
  if (options.authorizedKey !== undefined) {
    const file = join(dir, 'authorized.pub');
    writeFileSync(file, `${options.authorizedKey}\n`);
    args.push('--authorized-key', file);
  }
  const child = spawn(RUSSH_SERVER_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let exited = false;
  // Each waiter for a connection's end checks the log again whenever it grows.
  const endWaiters = new Set<() => boolean>();
  const checkEnds = () => {
    for (const check of endWaiters) if (check()) endWaiters.delete(check);
  };
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    checkEnds();
  });
  child.once('exit', () => {
    exited = true;
    checkEnds();
  });
  const port = await listeningPort(child, () => stderr);
  return {
    name: 'russh',
    host: '127.0.0.1',
    port,
    hostKey: hostKey.publicLine.split(' ').slice(0, 2).join(' '),
    log: () => stderr,
    connectionEnded: (clientPort) =>
      new Promise<string>((resolveLine) => {
        const ended = new RegExp(`^.*connection from 127\\.0\\.0\\.1:${clientPort} ended.*$`, 'm');
        const check = () => {
          const line = ended.exec(stderr)?.[0] ?? (exited ? 'the russh test server exited first' : null);
          if (line !== null) resolveLine(line);
          return line !== null;
        };
        if (!check()) endWaiters.add(check);
      }),
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}

/** The port from the server's `LISTENING <port>` line; rejects if it exits before printing it. */
function listeningPort(child: ChildProcess, stderr: () => string): Promise<number> {
  let stdout = '';
  return new Promise((resolvePort, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /^LISTENING (\d+)$/m.exec(stdout);
      if (match) resolvePort(Number(match[1]));
    });
    child.once('exit', (code, signal) => reject(new Error(`the russh test server exited (${signal ?? `status ${code}`}) before listening: ${stderr()}`)));
    child.once('error', reject);
  });
}
