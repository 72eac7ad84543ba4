// The revtun command as autossh's replacement, against a real sshd the tests break: it
// reconnects by default and says so in one line per change, serves the same port again,
// exits 255 when retries run out or with -o AutoReconnect=0 as ssh does, and on SIGTERM
// gives queued data a bounded time before it goes.

import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, startSshd, TEST_USER, type Sshd } from '../helpers/sshd.js';
import { connect, echoServer, listen, roundTrip } from '../helpers/streams.js';
import { runRevtun, type Run } from '../helpers/cli.js';
import { pollUntil, tcpSocket } from '../helpers/kernel.js';
import { startRelay } from '../helpers/relay.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-cli-reconnect-'));
const key = generateKey(dir, 'id_ed25519', 'ed25519');
let echo: Awaited<ReturnType<typeof echoServer>>;
beforeAll(async () => {
  echo = await echoServer();
});
afterAll(() => echo.close());

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function ownSshd(): Promise<Sshd> {
  const sshd = await startSshd({ authorizedKeys: [key.publicLine] });
  cleanup.push(() => sshd.stop());
  return sshd;
}

/** revtun against `sshd`, or through a relay in front of it listening on `port`. */
function revtunAgainst(sshd: Sshd, extra: string[], port = sshd.port): Run {
  const knownHosts = join(dir, `known_hosts_${port}`);
  writeFileSync(knownHosts, `[${sshd.host}]:${port} ${sshd.hostKeys.ed25519}\n`);
  const run = runRevtun(['-N', '-p', String(port), '-i', key.privatePath, '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'BatchMode=yes', ...extra, `${TEST_USER}@${sshd.host}`], { HOME: dir });
  cleanup.push(async () => {
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    await run.exit;
  });
  return run;
}

async function carriesData(port: number): Promise<void> {
  const data = randomBytes(256 * 1024);
  const back = await roundTrip(port, data);
  expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
}

describe('revtun reconnecting', () => {
  it('reconnects after the session is killed, prints one line per change, and serves the same port', async () => {
    const sshd = await ownSshd();
    const run = revtunAgainst(sshd, ['-o', 'RetryInterval=1', '-R', `127.0.0.1:0:127.0.0.1:${echo.port}`]);
    const port = Number((await run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
    await carriesData(port);
    await sshd.killSessions();
    await run.waitFor(/revtun: connection lost: .*; reconnecting in 1(\.\d)? s \(attempt 1\)/);
    await run.waitFor(/Reconnected to /);
    await carriesData(port);
    // The port did not change, so no second "Allocated port" line.
    expect(run.stderr().match(/Allocated port/g)).toHaveLength(1);
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
  });

  it('-o AutoReconnect=0 exits 255 at the first loss, as ssh does', async () => {
    const sshd = await ownSshd();
    const run = revtunAgainst(sshd, ['-o', 'AutoReconnect=0', '-R', `127.0.0.1:0:127.0.0.1:${echo.port}`]);
    await run.waitFor(/Allocated port/);
    await sshd.killSessions();
    expect(await run.exit).toBe(255);
    expect(run.stderr()).toMatch(/revtun: connection to 127\.0\.0\.1 lost: .* \(error 1120\)/);
    expect(run.stderr()).not.toMatch(/reconnecting/);
  });

  it('a dead link (no FIN, no RST) is found by keep-alive: with AutoReconnect=0 revtun exits 255 with 1039', async () => {
    const sshd = await ownSshd();
    const relay = await startRelay({ host: sshd.host, port: sshd.port });
    cleanup.push(() => relay.close());
    const run = revtunAgainst(sshd, ['-o', 'AutoReconnect=0', '-o', 'ServerAliveInterval=1', '-o', 'ServerAliveCountMax=1', '-R', `127.0.0.1:0:127.0.0.1:${echo.port}`], relay.port);
    await run.waitFor(/Allocated port/);
    relay.blackhole();
    expect(await run.exit).toBe(255);
    expect(run.stderr()).toMatch(/revtun: connection to 127\.0\.0\.1 lost: no answer to 1 keep-alive requests \(error 1039\)/);
  });

  it('exits 255 with 1037 once MaxRetryCount attempts have failed', async () => {
    const sshd = await ownSshd();
    const run = revtunAgainst(sshd, ['-o', 'MaxRetryCount=2', '-o', 'RetryInterval=0', '-R', `127.0.0.1:0:127.0.0.1:${echo.port}`]);
    await run.waitFor(/Allocated port/);
    await sshd.stop();
    expect(await run.exit).toBe(255);
    expect(run.stderr()).toMatch(/\(attempt 1\)[\s\S]*\(attempt 2\)/);
    expect(run.stderr()).toMatch(/gave up reconnecting to 127\.0\.0\.1:\d+ after 2 attempts.*\(error 1037\)/);
  });

  it('SIGTERM with a remote reader that stopped reading gives up after a bounded drain and exits 0 (it waited the whole 60 s timeout)', { timeout: 45_000 }, async () => {
    const sshd = await ownSshd();
    // A local service that sends far more than any window can hold.
    let revtunSide = 0;
    const flood = await listen((socket) => {
      socket.on('error', () => undefined);
      revtunSide = socket.remotePort!;
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = () => {
        while (socket.writable && socket.write(chunk));
      };
      socket.on('drain', pump);
      pump();
    });
    cleanup.push(() => flood.close());
    const run = revtunAgainst(sshd, ['-R', `127.0.0.1:0:127.0.0.1:${flood.port}`]);
    const port = Number((await run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
    const stalled = await connect(port);
    stalled.on('error', () => undefined);
    stalled.pause(); // reads nothing: sshd's window to revtun fills, then revtun's queue
    cleanup.push(() => void stalled.destroy());
    // revtun stops reading the service once its channel queue is full: then the kernel holds
    // an unchanging amount unread on revtun's socket while the service has more waiting to
    // go (a reading revtun keeps it moving). How much depends on the plane: Node's reads let
    // the receive buffer grow past 256 KiB, the relay's stop at about 80 KiB.
    let last = -1;
    let unchanged = 0;
    await pollUntil(
      () => {
        const queued = revtunSide ? (tcpSocket(revtunSide, flood.port)?.receiveQueue ?? 0) : 0;
        const waiting = revtunSide ? (tcpSocket(flood.port, revtunSide)?.sendQueue ?? 0) : 0;
        unchanged = queued === last && queued > 0 && waiting > 0 ? unchanged + 1 : 0;
        last = queued;
        return unchanged >= 5;
      },
      'revtun to stop reading the local service',
      { tries: 1000 },
    );
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(run.stderr()).toMatch(/revtun: stopped after 5 s with forwarded connections still delivering data/);
  });
});
