// The integration tests' sshd: the demo's loopback sshd plus a local user with a password
// (the tests run as root, as CI does), with every generated client key authorized for both
// root and that user. The fault controls (stop/start on the same port, replaceHostKeys,
// setAuthorizedKeys, setConfig, sessionPids/killSessions) are the demo sshd's own.

import { execFileSync } from 'node:child_process';
import { startLoopbackSshd, type LoopbackSshd } from '../../ts/demo/sshd.js';
import { echoServer } from './streams.js';

export type EchoServer = Awaited<ReturnType<typeof echoServer>>;

export { generateKey, freePort, waitForExit, type KeyPair, type HostKeyLines, type StopOptions } from '../../ts/demo/sshd.js';
export type Sshd = LoopbackSshd;

export const TEST_USER = 'revtuntest';
export const TEST_PASSWORD = 'correct horse battery staple';

let userReady = false;

function userExists(): boolean {
  try {
    execFileSync('id', [TEST_USER], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Creates the local test user with its password. */
export function ensureTestUser(): void {
  if (userReady) return;
  if (!userExists()) {
    try {
      execFileSync('useradd', ['-m', '-s', '/bin/sh', TEST_USER], { stdio: 'pipe' });
    } catch (error) {
      // Test files run in parallel processes: another one may have created the user meanwhile.
      if (!userExists()) throw error;
    }
  }
  execFileSync('chpasswd', [], { input: `${TEST_USER}:${TEST_PASSWORD}\n` });
  userReady = true;
}

export interface SshdOptions {
  config?: string[];
  usePam?: boolean;
  authorizedKeys?: string[];
  ecdsaBits?: 256 | 384 | 521;
  listenAddress?: string;
  netns?: string;
  env?: Record<string, string>;
}

export function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  ensureTestUser();
  return startLoopbackSshd({
    users: ['root', TEST_USER],
    authorizedKeys: options.authorizedKeys ?? [],
    ...(options.config ? { config: options.config } : {}),
    ...(options.usePam ? { usePam: true } : {}),
    ...(options.ecdsaBits ? { ecdsaBits: options.ecdsaBits } : {}),
    ...(options.listenAddress ? { listenAddress: options.listenAddress } : {}),
    ...(options.netns ? { netns: options.netns } : {}),
    ...(options.env ? { env: options.env } : {}),
  });
}

/** An sshd and an echo server for a test file's beforeAll. */
export async function startSshdWithEcho(options: SshdOptions = {}): Promise<{ sshd: Sshd; echo: EchoServer }> {
  return { sshd: await startSshd(options), echo: await echoServer() };
}

/** Stops whatever a test file started (skipping what never started). */
export async function stopAll(...things: ({ stop(): Promise<void> } | { close(): Promise<void> } | undefined)[]): Promise<void> {
  for (const thing of things) {
    if (!thing) continue;
    if ('stop' in thing) await thing.stop();
    else await thing.close();
  }
}
