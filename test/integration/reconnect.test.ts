// Fault injection against a real OpenSSH sshd, run by the tests themselves: a killed session
// process, sshd stopped and started again, a dead link (a relay that swallows every byte) with
// sshd still holding the old session's listener, authentication that starts failing, a host
// key that changes, MaxRetryCount, and AutoReconnect=2 before the server is up. After each
// recovery the same remote port carries data again (SHA-256 checked). Waits between attempts
// run on a virtual clock except where sshd's own timers must pass.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, generateKey, startSshd, TEST_USER, type Sshd } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { connect, echoServer, listen, roundTrip } from '../helpers/streams.js';
import { virtualScheduler, type VirtualScheduler } from '../helpers/clock.js';
import { startRelay, type Relay } from '../helpers/relay.js';
import type { ForwardingRestoredEvent, ReconnectAttemptEvent, SSHReverseTunnel, TunnelStateEvent } from '../../ts/index.js';

const key = generateKey(mkdtempSync(join(tmpdir(), 'revtun-reconnect-')), 'id', 'ed25519');
let echo: Awaited<ReturnType<typeof echoServer>>;
beforeAll(async () => {
  echo = await echoServer();
});
afterAll(() => echo.close());

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function ownSshd(config: string[] = []): Promise<Sshd> {
  const sshd = await startSshd({ authorizedKeys: [key.publicLine], config });
  cleanup.push(() => sshd.stop());
  return sshd;
}

interface Watched {
  t: SSHReverseTunnel;
  states: TunnelStateEvent[];
  attempts: ReconnectAttemptEvent[];
  restored: ForwardingRestoredEvent[];
  /** Resolves at the next tunnelState of this kind. */
  next(state: TunnelStateEvent['state']): Promise<TunnelStateEvent>;
}

function watchedTunnel(sshd: Sshd, config: string[] = [], clock?: VirtualScheduler): Watched {
  const t = makeTunnel(sshd, { privateKey: key.privateText, user: TEST_USER, config });
  if (clock) t.scheduler = clock;
  cleanup.push(() => t.reset());
  const w: Watched = {
    t,
    states: [],
    attempts: [],
    restored: [],
    next: (state) =>
      new Promise((resolve) => {
        const on = (e: TunnelStateEvent) => {
          if (e.state !== state) return;
          t.off('tunnelState', on);
          resolve(e);
        };
        t.on('tunnelState', on);
      }),
  };
  t.on('tunnelState', (e) => w.states.push(e));
  t.on('reconnectAttempt', (e) => w.attempts.push({ ...e }));
  t.on('forwardingRestored', (e) => w.restored.push(e));
  return w;
}

/** 1 MiB through the forwarded port to the echo server and back, compared by SHA-256. */
async function carriesData(port: number): Promise<void> {
  const data = randomBytes(1024 * 1024);
  const back = await roundTrip(port, data);
  expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
}

const closedError = (e: TunnelStateEvent) => (e.state === 'closed' ? e.error : undefined);

describe('reconnecting to a real sshd', () => {
  it('the sshd session process is killed: back on the same port, data flows again', async () => {
    const sshd = await ownSshd();
    const clock = virtualScheduler(0);
    const w = watchedTunnel(sshd, [], clock);
    await w.t.sshLogon();
    const port = await w.t.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
    await carriesData(port);
    const up = w.next('up');
    await sshd.killSessions();
    expect(await clock.nextWait()).toBe(5000);
    clock.pass();
    await up;
    expect(w.attempts).toEqual([{ host: sshd.host, port: sshd.port, retryCount: 1, retriesRemaining: -1, maxRetryCount: 0, retryInterval: 5, retryType: 0, remoteListeningPort: 0, cancel: false }]);
    expect(w.restored.map((r) => [r.previousPort, r.boundPort])).toEqual([[port, port]]);
    await carriesData(port);
  });

  it('a forwarded connection open when the link dies is ended on the local side, and new ones are served after', async () => {
    const sshd = await ownSshd();
    const clock = virtualScheduler(0);
    const w = watchedTunnel(sshd, [], clock);
    let targetEnded: Promise<void> = Promise.reject(new Error('no connection reached the target'));
    targetEnded.catch(() => undefined);
    let connections = 0;
    const target = await listen((socket) => {
      socket.on('error', () => undefined);
      if (connections++ > 0) return void socket.end('hello again'); // after the reconnect
      targetEnded = new Promise<void>((resolve) => socket.once('end', () => resolve()));
      socket.resume(); // 'end' comes only to a stream that is read
      socket.write('hello'); // and stays open
    });
    cleanup.push(() => target.close());
    await w.t.sshLogon();
    const port = await w.t.requestForwarding('127.0.0.1', 0, '127.0.0.1', target.port);
    const inFlight = await connect(port);
    inFlight.on('error', () => undefined);
    await new Promise<void>((resolve) => inFlight.once('data', () => resolve()));
    const remoteEnded = new Promise<void>((resolve) => inFlight.once('end', () => resolve()));
    const up = w.next('up');
    await sshd.killSessions();
    await remoteEnded; // the server side went with sshd's session
    await targetEnded; // and revtun ended its connection to the target instead of leaving it open
    expect(w.t.sshChannelCount).toBe(0);
    await clock.nextWait();
    clock.pass();
    await up;
    expect((await roundTrip(port, Buffer.alloc(0))).toString()).toBe('hello again');
  });

  it('sshd stopped and started again: attempts fail while it is down, then the port serves again', async () => {
    const sshd = await ownSshd();
    const clock = virtualScheduler(0);
    const w = watchedTunnel(sshd, ['RetryInterval=2'], clock);
    await w.t.sshLogon();
    const port = await w.t.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
    await sshd.stop();
    await clock.nextWait();
    clock.pass(); // attempt 1: refused, nothing listens
    await clock.nextWait();
    const second = w.states.at(-1)!;
    expect(second).toMatchObject({ state: 'reconnecting', attempt: 2 });
    expect(second.state === 'reconnecting' && second.error.code).toBe(10061);
    await sshd.start();
    const up = w.next('up');
    clock.pass();
    await up;
    expect(w.attempts.map((a) => a.retryCount)).toEqual([1, 2]);
    await carriesData(port);
  });

  it('a dead link is found by keep-alive (1039); sshd still holds the old listener, so that forwarding is retried until it binds', async () => {
    const sshd = await ownSshd();
    const relay: Relay = await startRelay({ host: sshd.host, port: sshd.port });
    cleanup.push(() => relay.close());
    const w = watchedTunnel(sshd, ['SSHKeepAliveInterval=1', 'SSHKeepAliveCountMax=2', 'RetryInterval=1']);
    w.t.sshPort = relay.port;
    await w.t.sshLogon();
    const fixed = await freePort();
    expect(await w.t.requestForwarding('127.0.0.1', fixed, '127.0.0.1', echo.port)).toBe(fixed);
    await carriesData(fixed);
    const down = w.next('down');
    relay.blackhole();
    const lost = await down;
    expect(lost.state === 'down' && lost.error.code).toBe(1039);
    // sshd has not noticed (it sends no keep-alives here): its session for the dead link, and
    // the listener on `fixed` in it, live on. Frozen, they stay until the test lets them go.
    const stale = await sshd.killSessions('SIGSTOP');
    const refused = new Promise<void>((resolve) => w.t.on('reconnectAttempt', (e) => e.retryType === 1 && resolve()));
    const restored = new Promise<void>((resolve) => w.t.on('forwardingRestored', () => resolve()));
    await refused; // the new connection is up, and its request for `fixed` was refused once
    expect(w.t.connected).toBe(true);
    expect(w.restored).toEqual([]);
    await sshd.killSessions('SIGKILL', { only: stale });
    await restored;
    const retries = w.attempts.filter((a) => a.retryType === 1);
    expect(retries[0]).toMatchObject({ retryType: 1, retryCount: 1, remoteListeningPort: fixed, host: sshd.host, retriesRemaining: -1 });
    expect(w.restored.map((r) => [r.previousPort, r.boundPort])).toEqual([[fixed, fixed]]);
    expect(sshd.log()).toMatch(new RegExp(`bind \\[?127\\.0\\.0\\.1\\]?:${fixed}: Address already in use`));
    await carriesData(fixed);
  });

  it('authentication that starts failing on reconnect ends the tunnel with 1032, without retrying', async () => {
    const sshd = await ownSshd();
    const clock = virtualScheduler(0);
    const w = watchedTunnel(sshd, [], clock);
    await w.t.sshLogon();
    await w.t.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
    sshd.setAuthorizedKeys(TEST_USER, []);
    const closed = w.next('closed');
    await sshd.killSessions();
    await clock.nextWait();
    clock.pass();
    expect(closedError(await closed)?.code).toBe(1032);
    expect(w.attempts).toHaveLength(1);
    expect(clock.pending).toBe(0);
    expect(w.t.forwardings).toEqual([]);
  });

  it('a host key that changed on reconnect ends the tunnel with 1030, without retrying', async () => {
    const sshd = await ownSshd();
    const clock = virtualScheduler(0);
    const w = watchedTunnel(sshd, [], clock);
    await w.t.sshLogon();
    sshd.replaceHostKeys();
    const closed = w.next('closed');
    await sshd.restart();
    await clock.nextWait();
    clock.pass();
    expect(closedError(await closed)?.code).toBe(1030);
    expect(w.attempts).toHaveLength(1);
    expect(clock.pending).toBe(0);
  });

  it('MaxRetryCount reached while sshd stays down ends the tunnel with 1037', async () => {
    const sshd = await ownSshd();
    const clock = virtualScheduler(0);
    const w = watchedTunnel(sshd, ['MaxRetryCount=3'], clock);
    await w.t.sshLogon();
    const closed = w.next('closed');
    await sshd.stop();
    for (let i = 0; i < 3; i++) {
      await clock.nextWait();
      clock.pass();
    }
    const error = closedError(await closed);
    expect(error?.code).toBe(1037);
    expect(error?.message).toContain('after 3 attempts');
    expect(w.attempts.map((a) => a.retriesRemaining)).toEqual([2, 1, 0]);
  });

  it('cancel set in reconnectAttempt stops the retries: the tunnel ends with the error being retried', async () => {
    const sshd = await ownSshd();
    const clock = virtualScheduler(0);
    const w = watchedTunnel(sshd, [], clock);
    w.t.on('reconnectAttempt', (e) => {
      if (e.retryCount === 2) e.cancel = true;
    });
    await w.t.sshLogon();
    await w.t.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
    const closed = w.next('closed');
    await sshd.stop();
    await clock.nextWait();
    clock.pass(); // attempt 1: refused
    await clock.nextWait();
    clock.pass(); // attempt 2: cancelled before it connects
    expect(closedError(await closed)?.code).toBe(10061);
    expect(w.attempts.map((a) => a.retryCount)).toEqual([1, 2]); // and no third
    expect(clock.pending).toBe(0);
    expect(w.t.forwardings).toEqual([]);
  });

  it('AutoReconnect=2 keeps trying the first logon until sshd is up', async () => {
    const sshd = await ownSshd();
    await sshd.stop();
    const clock = virtualScheduler(0);
    const w = watchedTunnel(sshd, ['AutoReconnect=2'], clock);
    const logon = w.t.sshLogon();
    await clock.nextWait();
    clock.pass();
    await clock.nextWait(); // the first retry found nothing listening either
    await sshd.start();
    clock.pass();
    await logon;
    expect(w.t.connected).toBe(true);
    expect(w.attempts.map((a) => a.retryCount)).toEqual([1, 2]);
    const port = await w.t.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
    await carriesData(port);
  });

  it('AutoReconnect=1 does not retry a first logon that fails', async () => {
    const sshd = await ownSshd();
    await sshd.stop();
    const w = watchedTunnel(sshd, [], virtualScheduler(0));
    await expect(w.t.sshLogon()).rejects.toMatchObject({ code: 10061 });
    expect(w.attempts).toEqual([]);
  });
});
