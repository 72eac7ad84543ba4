// Reconnection, driven by a virtual clock against the scripted in-memory server behind TCP:
// the order of events and their parameters, the forwarding asked for again on its old port (or
// a fresh one when that is refused), MaxRetryCount, cancel, and errors that are never retried.

import { afterEach, describe, expect, it } from 'vitest';
import { SSHReverseTunnel, type ReconnectAttemptEvent, type TunnelStateEvent, type ForwardingRestoredEvent, type ErrorEvent } from '../../ts/index.js';
import { PASSWORD, randomEd25519Key } from '../helpers/peer.js';
import { disconnect, startScriptedServer, type ScriptedServer } from '../helpers/scripted-server.js';
import { virtualScheduler, type VirtualScheduler } from '../helpers/clock.js';
import { echoServer } from '../helpers/streams.js';

let server: ScriptedServer | undefined;
let tunnel: SSHReverseTunnel | undefined;
afterEach(async () => {
  tunnel?.reset();
  await server?.close();
  server = tunnel = undefined;
});

interface Recorded {
  states: TunnelStateEvent[];
  attempts: ReconnectAttemptEvent[];
  restored: ForwardingRestoredEvent[];
  errors: ErrorEvent[];
}

function makeTunnel(clock: VirtualScheduler, config: string[] = []): { t: SSHReverseTunnel; seen: Recorded } {
  const t = new SSHReverseTunnel();
  t.scheduler = clock;
  t.sshUser = 'u';
  t.sshPassword = PASSWORD;
  t.config('SSHAcceptAnyServerHostKey=True');
  for (const c of config) t.config(c);
  const seen: Recorded = { states: [], attempts: [], restored: [], errors: [] };
  t.on('tunnelState', (e) => seen.states.push(e));
  t.on('reconnectAttempt', (e) => seen.attempts.push({ ...e }));
  t.on('forwardingRestored', (e) => seen.restored.push(e));
  t.on('error', (e) => seen.errors.push(e));
  tunnel = t;
  return { t, seen };
}

function untilState(t: SSHReverseTunnel, state: TunnelStateEvent['state']): Promise<TunnelStateEvent> {
  return new Promise((resolve) => {
    const on = (e: TunnelStateEvent) => {
      if (e.state !== state) return;
      t.off('tunnelState', on);
      resolve(e);
    };
    t.on('tunnelState', on);
  });
}

describe('reconnecting (virtual clock, scripted server)', () => {
  it('a dropped connection is re-established after RetryInterval and the forwarding listens on its old port again', async () => {
    const echo = await echoServer();
    try {
      server = await startScriptedServer({});
      const clock = virtualScheduler(0);
      const { t, seen } = makeTunnel(clock);
      await t.sshLogon('127.0.0.1', server.port);
      expect(await t.requestForwarding('', 0, '127.0.0.1', echo.port)).toBe(5555);
      const up = untilState(t, 'up');
      server.connections[0]!.socket.destroy();
      expect(await clock.nextWait()).toBe(5000); // RetryInterval, no jitter with random() = 0
      expect(t.connected).toBe(false);
      clock.pass();
      await up;
      expect(t.connected).toBe(true);
      expect(server.connections).toHaveLength(2);
      expect(seen.states.map((s) => s.state)).toEqual(['connecting', 'up', 'down', 'reconnecting', 'connecting', 'up']);
      const down = seen.states[2] as Extract<TunnelStateEvent, { state: 'down' }>;
      expect(down.error.code).toBe(1120);
      expect(seen.attempts).toEqual([
        { host: '127.0.0.1', port: server.port, retryCount: 1, retriesRemaining: -1, maxRetryCount: 0, retryInterval: 5, retryType: 0, remoteListeningPort: 0, cancel: false },
      ]);
      // Asked for the port it had, not for port 0 again.
      expect(seen.restored).toEqual([{ address: '', requestedPort: 0, previousPort: 5555, boundPort: 5555, forwardingHost: '127.0.0.1', forwardingPort: echo.port, dynamic: false }]);
      expect(t.config('ForwardedPort')).toBe('5555');
      expect(seen.errors.map((e) => e.errorCode)).toEqual([1120]);
    } finally {
      await echo.close();
    }
  });

  it('a server that closes normally (DISCONNECT by application) is reconnected to, with no error event and disconnected status 0', async () => {
    server = await startScriptedServer({});
    const clock = virtualScheduler(0);
    const { t, seen } = makeTunnel(clock);
    const disconnected: { statusCode: number; description: string }[] = [];
    t.on('disconnected', (e) => disconnected.push(e));
    await t.sshLogon('127.0.0.1', server.port);
    const up = untilState(t, 'up');
    const c = server.connections[0]!;
    c.server.send(disconnect(11, 'server restarting'));
    c.flush();
    expect(await clock.nextWait()).toBe(5000);
    clock.pass();
    await up;
    expect(server.connections).toHaveLength(2);
    expect(disconnected).toEqual([{ statusCode: 0, description: 'OK' }]);
    expect(seen.errors).toEqual([]);
    const down = seen.states.find((s) => s.state === 'down') as Extract<TunnelStateEvent, { state: 'down' }>;
    expect(down.error.code).toBe(1001); // why it went down is still there for the supervisor and the log
    expect(down.error.message).toContain('server restarting');
  });

  it('listeners that throw (disconnected, and log too) neither stop the reconnect nor escape (was stuck "up", or an uncaught exception)', async () => {
    server = await startScriptedServer({});
    const clock = virtualScheduler(0);
    const { t, seen } = makeTunnel(clock);
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      await t.sshLogon('127.0.0.1', server.port);
      t.on('disconnected', () => {
        throw new Error('disconnected listener failed');
      });
      t.on('log', () => {
        throw new Error('log sink closed');
      });
      const up = untilState(t, 'up');
      server.connections[0]!.socket.destroy();
      expect(await clock.nextWait()).toBe(5000);
      clock.pass();
      await up;
      expect(seen.states.map((s) => s.state)).toEqual(['connecting', 'up', 'down', 'reconnecting', 'connecting', 'up']);
      // The drop is reported once, as 1120 (on the native plane a log line, the handover's, may
      // come before it, and its listener's failure with it).
      expect(seen.errors.filter((e) => e.errorCode !== 1036).map((e) => e.errorCode)).toEqual([1120]);
      // Each failure is reported once, as 1036 naming its event (the log listener fails at every line).
      const reports = seen.errors.filter((e) => e.errorCode === 1036);
      expect(reports.filter((e) => e.description === 'a listener for disconnected threw: disconnected listener failed')).toHaveLength(1);
      expect(reports.every((e) => /^a listener for (disconnected|log) threw: /.test(e.description))).toBe(true);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });

  it('a port-0 forwarding whose old port is refused gets a fresh one, reported as changed', async () => {
    let refuseOld = false;
    server = await startScriptedServer({ grant: (port) => (port === 0 ? (refuseOld ? 6000 : 5555) : refuseOld ? null : port) });
    const clock = virtualScheduler(0);
    const { t, seen } = makeTunnel(clock);
    await t.sshLogon('127.0.0.1', server.port);
    expect(await t.requestForwarding('', 0)).toBe(5555);
    refuseOld = true;
    const up = untilState(t, 'up');
    server.connections[0]!.socket.destroy();
    await clock.nextWait();
    clock.pass();
    await up;
    expect(seen.restored).toEqual([{ address: '', requestedPort: 0, previousPort: 5555, boundPort: 6000, forwardingHost: '', forwardingPort: 0, dynamic: false }]);
    expect(t.config('ForwardedPort')).toBe('6000');
    expect(t.forwardings.map((f) => f.boundPort)).toEqual([6000]);
  });

  it('a fixed port the new connection refuses is retried on the live connection (retryType 1) until it binds', async () => {
    let refusals = 0;
    server = await startScriptedServer({ grant: (port) => (port === 7000 && server!.connections.length > 1 && refusals++ < 2 ? null : port) });
    const clock = virtualScheduler(0);
    const { t, seen } = makeTunnel(clock);
    await t.sshLogon('127.0.0.1', server.port);
    await t.requestForwarding('', 7000);
    await t.requestForwarding('', 7001);
    const up = untilState(t, 'up');
    server.connections[0]!.socket.destroy();
    await clock.nextWait();
    clock.pass();
    await up;
    // 7001 is back at once; 7000 waits for its retries.
    expect(seen.restored.map((r) => r.boundPort)).toEqual([7001]);
    for (let retry = 1; retry <= 2; retry++) {
      expect(await clock.nextWait()).toBe(5000);
      const restoredBefore = seen.restored.length;
      clock.pass();
      await new Promise<void>((resolve) => {
        const check = () => (seen.attempts.length === retry + 1 && (retry < 2 || seen.restored.length > restoredBefore) ? resolve() : setImmediate(check));
        check();
      });
    }
    expect(seen.attempts.slice(1).map((a) => [a.retryType, a.retryCount, a.remoteListeningPort])).toEqual([
      [1, 1, 7000],
      [1, 2, 7000],
    ]);
    expect(seen.restored.map((r) => r.boundPort)).toEqual([7001, 7000]);
    expect(t.connected).toBe(true);
  });

  it('MaxRetryCount reached ends the tunnel with 1037', async () => {
    server = await startScriptedServer({});
    const clock = virtualScheduler(0);
    const { t, seen } = makeTunnel(clock, ['MaxRetryCount=2', 'RetryInterval=1']);
    await t.sshLogon('127.0.0.1', server.port);
    await t.requestForwarding('', 0);
    await server.close(); // nothing listens any more: every attempt is refused
    const closed = untilState(t, 'closed');
    for (let i = 0; i < 2; i++) {
      expect(await clock.nextWait()).toBe(1000);
      clock.pass();
    }
    const end = (await closed) as Extract<TunnelStateEvent, { state: 'closed' }>;
    expect(end.error?.code).toBe(1037);
    expect(end.error?.message).toMatch(/after 2 attempts.*cannot connect/);
    expect(seen.attempts.map((a) => [a.retryCount, a.retriesRemaining, a.maxRetryCount])).toEqual([
      [1, 1, 2],
      [2, 0, 2],
    ]);
    expect(seen.errors.map((e) => e.errorCode)).toEqual([1120, 1037]);
    expect(t.connected).toBe(false);
    expect(t.forwardings).toEqual([]);
  });

  it('cancel set in reconnectAttempt stops retrying and ends with the error that was being retried', async () => {
    server = await startScriptedServer({});
    const clock = virtualScheduler(0);
    const { t, seen } = makeTunnel(clock);
    t.on('reconnectAttempt', (e) => {
      e.cancel = true;
    });
    await t.sshLogon('127.0.0.1', server.port);
    const closed = untilState(t, 'closed');
    server.connections[0]!.socket.destroy();
    await clock.nextWait();
    clock.pass();
    const end = (await closed) as Extract<TunnelStateEvent, { state: 'closed' }>;
    expect(end.error?.code).toBe(1120);
    expect(seen.attempts).toHaveLength(1);
    expect(server.connections).toHaveLength(1); // no new connection was made
  });

  it('AutoReconnect=0 ends the tunnel at the first loss', async () => {
    server = await startScriptedServer({});
    const clock = virtualScheduler(0);
    const { t, seen } = makeTunnel(clock, ['AutoReconnect=0']);
    await t.sshLogon('127.0.0.1', server.port);
    const closed = untilState(t, 'closed');
    server.connections[0]!.socket.destroy();
    expect(((await closed) as Extract<TunnelStateEvent, { state: 'closed' }>).error?.code).toBe(1120);
    expect(clock.pending).toBe(0);
    expect(seen.attempts).toEqual([]);
  });

  it('AutoReconnect=2 retries the first logon until the server is there', async () => {
    const clock = virtualScheduler(0);
    const { t, seen } = makeTunnel(clock, ['AutoReconnect=2', 'RetryInterval=2']);
    // Nothing listens on this port yet.
    const placeholder = await startScriptedServer({});
    const port = placeholder.port;
    await placeholder.close();
    const logon = t.sshLogon('127.0.0.1', port);
    expect(await clock.nextWait()).toBe(2000);
    clock.pass();
    expect(await clock.nextWait()).toBe(2000); // the first retry was refused as well
    // Now start the server on that port and let the next attempt through.
    server = await startScriptedServer({}, port);
    clock.pass();
    await logon;
    expect(t.connected).toBe(true);
    expect(seen.attempts.map((a) => a.retryCount)).toEqual([1, 2]);
  });

  it('a host key that changed since the first connection ends the tunnel with 1030, without retrying', async () => {
    const keys = [randomEd25519Key(), randomEd25519Key()];
    let served = 0;
    server = await startScriptedServer({}, 0, () => keys[Math.min(served++, 1)]!);
    const clock = virtualScheduler(0);
    const { t, seen } = makeTunnel(clock);
    await t.sshLogon('127.0.0.1', server.port);
    const closed = untilState(t, 'closed');
    server.connections[0]!.socket.destroy();
    await clock.nextWait();
    clock.pass();
    const end = (await closed) as Extract<TunnelStateEvent, { state: 'closed' }>;
    expect(end.error?.code).toBe(1030);
    expect(clock.pending).toBe(0);
    expect(seen.attempts).toHaveLength(1);
    expect(server.connections).toHaveLength(2);
  });

  it('a logoff while waiting to reconnect stops the retries', async () => {
    server = await startScriptedServer({});
    const clock = virtualScheduler(0);
    const { t, seen } = makeTunnel(clock);
    await t.sshLogon('127.0.0.1', server.port);
    server.connections[0]!.socket.destroy();
    await clock.nextWait();
    await t.sshLogoff();
    expect(clock.pending).toBe(0);
    expect(seen.states.at(-1)).toEqual({ state: 'closed', error: null });
    expect(seen.attempts).toEqual([]);
  });
});
