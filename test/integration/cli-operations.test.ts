// revtun as a service, against a real sshd behind a relay the tests break: --json writes one
// event object per line on stdout (connected, forward_up with the allocated port, each
// forwarded connection with its exact byte counts, down and reconnecting when the link
// drops), and MetricsListen serves Prometheus metrics that follow the traffic and a /healthz
// that is 200 only while the tunnel is up with its forwardings.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { generateKey, startSshd, TEST_USER, type Sshd } from '../helpers/sshd.js';
import { connect, listen } from '../helpers/streams.js';
import { runRevtun, type Run } from '../helpers/cli.js';
import { startRelay, type Relay } from '../helpers/relay.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-cli-operations-'));
const key = generateKey(dir, 'id_ed25519', 'ed25519');

/** What a connection sends the target, and what the target answers before it closes. */
const REQUEST_BYTES = 10_000;
const ANSWER_BYTES = 23_456;

// The local target: reads the whole request, then answers and ends its side.
let target: Awaited<ReturnType<typeof listen>>;
beforeAll(async () => {
  target = await listen((socket) => {
    let got = 0;
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got === REQUEST_BYTES) socket.end(randomBytes(ANSWER_BYTES));
    });
  });
});
afterAll(() => target.close());

const cleanup: (() => Promise<unknown> | undefined)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

interface Service {
  sshd: Sshd;
  relay: Relay;
  run: Run;
  /** The JSON objects written to stdout so far. */
  events: () => Record<string, unknown>[];
  /** Every stdout line that is not a JSON object (there must be none). */
  strayLines: () => string[];
  next: (event: string, after?: number) => Promise<Record<string, unknown>>;
}

/** revtun through a relay in front of a fresh sshd, with stdout collected line by line. */
async function startService(extra: string[], beforeStart: (relay: Relay) => void = () => undefined): Promise<Service> {
  const sshd = await startSshd({ authorizedKeys: [key.publicLine] });
  cleanup.push(() => sshd.stop());
  const relay = await startRelay({ host: sshd.host, port: sshd.port });
  cleanup.push(() => relay.close());
  const knownHosts = join(dir, `known_hosts_${relay.port}`);
  writeFileSync(knownHosts, `[${sshd.host}]:${relay.port} ${sshd.hostKeys.ed25519}\n`);
  beforeStart(relay);
  const run = runRevtun(
    ['-N', '-p', String(relay.port), '-i', key.privatePath, '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'BatchMode=yes', '-o', 'RetryInterval=0', ...extra, `${TEST_USER}@${sshd.host}`],
    { HOME: dir },
  );
  cleanup.push(async () => {
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    await run.exit;
  });
  let stdout = '';
  const lines = () => stdout.split('\n').slice(0, -1);
  const parsed = () => lines().flatMap((line) => (line.startsWith('{') ? [JSON.parse(line) as Record<string, unknown>] : []));
  // Each wait is checked again whenever stdout grows, and fails if revtun exits first.
  const waiters = new Set<() => void>();
  run.child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const check of [...waiters]) check();
  });
  const next = (event: string, after = 0) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const found = parsed()
          .slice(after)
          .find((e) => e.event === event);
        if (found) {
          waiters.delete(check);
          resolve(found);
        }
      };
      waiters.add(check);
      check();
      void run.exit.then(() => {
        if (waiters.delete(check)) reject(new Error(`revtun exited before a JSON "${event}" event; stderr:\n${run.stderr()}`));
      });
    });
  return { sshd, relay, run, events: parsed, strayLines: () => lines().filter((line) => !line.startsWith('{')), next };
}

/**
 * Asks `check` again every 20 ms until it gives a value (for HTTP answers, which no event
 * announces), failing after `tries` attempts.
 */
async function until<T>(check: () => Promise<T | undefined>, what: string, tries = 500): Promise<T> {
  for (let attempt = 0; attempt < tries; attempt++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Sends the request through the forwarded port and reads the whole answer. */
async function exchange(port: number): Promise<number> {
  const socket: Socket = await connect(port);
  let got = 0;
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => (got += chunk.length));
    socket.on('end', () => resolve());
    socket.on('error', reject);
  });
  socket.write(randomBytes(REQUEST_BYTES));
  await done;
  socket.end();
  return got;
}

async function scrape(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

/** A sample's value from Prometheus text format ("name{labels} value"), or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function freePort(): Promise<number> {
  const probe = await listen(() => undefined);
  await probe.close();
  return probe.port;
}

describe('revtun --json', () => {
  it('reports connected, forward_up with the allocated port, each connection with its exact byte counts, then down and reconnecting', async () => {
    const service = await startService(['--json', '-R', `127.0.0.1:0:127.0.0.1:${target.port}`]);
    const connected = await service.next('connected');
    expect(connected).toMatchObject({ server: '127.0.0.1', port: service.relay.port, user: TEST_USER, reconnect: false });
    expect(connected.kex).toEqual(expect.any(String));
    expect(new Date(connected.time as string).toISOString()).toBe(connected.time);
    const forward = await service.next('forward_up');
    const port = Number((await service.run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
    expect(forward).toMatchObject({ spec: `127.0.0.1:0:127.0.0.1:${target.port}`, requestedPort: 0, allocatedPort: port, target: `127.0.0.1:${target.port}`, restored: false });

    expect(await exchange(port)).toBe(ANSWER_BYTES);
    const opened = await service.next('connection_opened');
    expect(opened).toMatchObject({ channel: expect.any(Number), originAddress: '127.0.0.1', originPort: expect.any(Number), target: `127.0.0.1:${target.port}`, listenPort: port });
    const closed = await service.next('connection_closed');
    expect(closed).toMatchObject({ channel: opened.channel, originPort: opened.originPort, bytesToTarget: REQUEST_BYTES, bytesFromTarget: ANSWER_BYTES });

    // The link drops and cannot come back until the relay lets connections through again.
    const before = service.events().length;
    service.relay.refuse(true);
    await service.relay.reset();
    const down = await service.next('down', before);
    expect(down).toMatchObject({ code: expect.any(Number), description: expect.any(String) });
    const reconnecting = await service.next('reconnecting', before);
    expect(reconnecting).toMatchObject({ attempt: 1, delayMs: expect.any(Number), code: expect.any(Number) });
    service.relay.refuse(false);
    const back = await service.next('connected', before);
    expect(back.reconnect).toBe(true);
    expect(await service.next('forward_up', before)).toMatchObject({ allocatedPort: port, restored: true });
    // The logon comes first, then the forwardings it brought back.
    const afterLoss = service
      .events()
      .slice(before)
      .map((e) => e.event);
    expect(afterLoss.indexOf('connected')).toBeLessThan(afterLoss.indexOf('forward_up'));

    service.run.child.kill('SIGTERM');
    expect(await service.run.exit).toBe(0);
    await service.run.closed;
    expect(service.events().at(-1)).toMatchObject({ event: 'stopped' });
    // Nothing but JSON on stdout; the human lines still go to stderr.
    expect(service.strayLines()).toEqual([]);
    expect(service.run.stderr()).toMatch(/Authenticated to 127\.0\.0\.1/);
  });

  it('a logon that fails ends with a fatal event naming the error code, and exit 255', async () => {
    // The relay ends every connection at once: no SSH identification ever comes.
    const service = await startService(['-o', 'LogFormat=json', '-o', 'ConnectionAttempts=1', '-R', `127.0.0.1:0:127.0.0.1:${target.port}`], (relay) => relay.refuse(true, 'close'));
    expect(await service.run.exit).toBe(255);
    await service.run.closed;
    const fatal = service.events().find((e) => e.event === 'fatal');
    expect(fatal).toMatchObject({ code: expect.any(Number), description: expect.any(String) });
    expect(fatal!.code).not.toBe(0);
    expect(service.strayLines()).toEqual([]);
  });
  it('with ExitOnForwardFailure a refused forwarding ends with fatal and no stopped after it', async () => {
    // A port the server side already has taken: sshd cannot listen there, and says so.
    const taken = await listen(() => undefined);
    cleanup.push(() => taken.close());
    const service = await startService(['--json', '-o', 'ExitOnForwardFailure=yes', '-R', `127.0.0.1:${taken.port}:127.0.0.1:${target.port}`]);
    expect(await service.run.exit).toBe(255);
    await service.run.closed;
    const events = service.events().map((e) => e.event);
    expect(events).toContain('connected');
    expect(events.at(-1)).toBe('fatal');
    expect(events).not.toContain('stopped');
    expect(service.strayLines()).toEqual([]);
  });

  it('a forwarding refused at the start without ExitOnForwardFailure is reported as forward_failed, and the others serve', async () => {
    const taken = await listen(() => undefined);
    cleanup.push(() => taken.close());
    const refused = `127.0.0.1:${taken.port}:127.0.0.1:${target.port}`;
    const service = await startService(['--json', '-R', refused, '-R', `127.0.0.1:0:127.0.0.1:${target.port}`]);
    const failed = await service.next('forward_failed');
    expect(failed).toMatchObject({ spec: refused, code: expect.any(Number), description: expect.any(String) });
    expect(failed.code).not.toBe(0);
    expect(await service.next('forward_up')).toMatchObject({ requestedPort: 0, restored: false });
    service.run.child.kill('SIGTERM');
    expect(await service.run.exit).toBe(0);
    await service.run.closed;
    expect(service.strayLines()).toEqual([]);
  });

  it('no usable authentication method exits 255 with a fatal line', async () => {
    const service = await startService([
      '--json',
      '-o',
      'PubkeyAuthentication=no',
      '-o',
      'PasswordAuthentication=no',
      '-o',
      'KbdInteractiveAuthentication=no',
      // The system ssh_config may switch GSSAPI on, which would count as a method.
      '-o',
      'GSSAPIAuthentication=no',
      '-R',
      `127.0.0.1:0:127.0.0.1:${target.port}`,
    ]);
    expect(await service.run.exit).toBe(255);
    await service.run.closed;
    expect(service.events().at(-1)).toMatchObject({ event: 'fatal', code: 1032, description: expect.stringMatching(/no usable authentication method/) });
    expect(service.strayLines()).toEqual([]);
  });

  it('a refused password ends with fatal, and the password is in neither stdout nor stderr', async () => {
    const sshd = await startSshd({ authorizedKeys: [key.publicLine] });
    cleanup.push(() => sshd.stop());
    const knownHosts = join(dir, `known_hosts_pw_${sshd.port}`);
    writeFileSync(knownHosts, `[${sshd.host}]:${sshd.port} ${sshd.hostKeys.ed25519}\n`);
    const secret = 'not-the-password-Zq81x';
    const askpass = join(dir, 'askpass-wrong.sh');
    writeFileSync(askpass, `#!/bin/sh\nprintf '%s\\n' '${secret}'\n`);
    chmodSync(askpass, 0o755);
    const run = runRevtun(
      ['-N', '--json', '-p', String(sshd.port), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'PubkeyAuthentication=no', '-R', `0:127.0.0.1:${target.port}`, `${TEST_USER}@${sshd.host}`],
      {
        HOME: dir,
        SSH_ASKPASS: askpass,
        SSH_ASKPASS_REQUIRE: 'force',
      },
    );
    let stdout = '';
    run.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    expect(await run.exit).toBe(255);
    await run.closed;
    const events = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(events.at(-1)).toMatchObject({ event: 'fatal', code: 1032 });
    expect(stdout).not.toContain(secret);
    expect(run.stderr()).not.toContain(secret);
  });
});

describe('revtun -o MetricsListen', () => {
  it('serves metrics that follow the traffic, and /healthz that is 503 while the link is down and 200 once it is back', async () => {
    const metricsPort = await freePort();
    const service = await startService(['-o', `MetricsListen=127.0.0.1:${metricsPort}`, '-R', `127.0.0.1:0:127.0.0.1:${target.port}`]);
    const port = Number((await service.run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
    await until(async () => ((await scrape(metricsPort, '/healthz')).status === 200 ? true : undefined), 'healthz 200');
    const health = await scrape(metricsPort, '/healthz');
    expect(health.body).toBe('ok: connected, 1 of 1 forwardings up\n');

    const first = (await scrape(metricsPort, '/metrics')).body;
    expect(first).toMatch(/^# HELP revtun_connected /m);
    expect(sample(first, 'revtun_connected')).toBe(1);
    expect(sample(first, 'revtun_forwardings_up')).toBe(1);
    expect(sample(first, 'revtun_key_exchanges_total', 'initiator="initial"')).toBe(1);
    const receivedBefore = sample(first, 'revtun_channel_bytes_received_total')!;
    const sentBefore = sample(first, 'revtun_channel_bytes_sent_total')!;

    expect(await exchange(port)).toBe(ANSWER_BYTES);
    const moved = await until(async () => {
      const text = (await scrape(metricsPort, '/metrics')).body;
      return sample(text, 'revtun_channels_open') === 0 && sample(text, 'revtun_channel_bytes_sent_total')! - sentBefore === ANSWER_BYTES ? text : undefined;
    }, 'the answer counted in the metrics');
    expect(sample(moved, 'revtun_channel_bytes_received_total')! - receivedBefore).toBe(REQUEST_BYTES);

    service.relay.refuse(true);
    await service.relay.reset();
    const down = await until(async () => {
      const answer = await scrape(metricsPort, '/healthz');
      return answer.status === 503 ? answer : undefined;
    }, 'healthz 503');
    expect(down.body).toMatch(/^not connected/);
    expect(sample((await scrape(metricsPort, '/metrics')).body, 'revtun_connected')).toBe(0);

    service.relay.refuse(false);
    await until(async () => ((await scrape(metricsPort, '/healthz')).status === 200 ? true : undefined), 'healthz 200 after the reconnect', 1000);
    const after = (await scrape(metricsPort, '/metrics')).body;
    expect(sample(after, 'revtun_reconnects_total')).toBe(1);
    expect(sample(after, 'revtun_key_exchanges_total', 'initiator="initial"')).toBe(2);
    // Counters never go back: the first connection's bytes are still counted.
    expect(sample(after, 'revtun_channel_bytes_sent_total')).toBe(sample(moved, 'revtun_channel_bytes_sent_total'));

    expect((await scrape(metricsPort, '/nothing')).status).toBe(404);
    service.run.child.kill('SIGTERM');
    expect(await service.run.exit).toBe(0);
    // The server closed with revtun: nothing listens there any more.
    await expect(fetch(`http://127.0.0.1:${metricsPort}/healthz`)).rejects.toThrow();
  });

  it('counts answered keep-alives and shows their round trip (ServerAliveInterval 1)', async () => {
    const metricsPort = await freePort();
    const service = await startService(['-o', `MetricsListen=${metricsPort}`, '-o', 'ServerAliveInterval=1', '-R', `127.0.0.1:0:127.0.0.1:${target.port}`]);
    await service.run.waitFor(/Allocated port/);
    const text = await until(
      async () => {
        const body = (await scrape(metricsPort, '/metrics')).body;
        return sample(body, 'revtun_keepalives_answered_total')! >= 1 ? body : undefined;
      },
      `a keep-alive answered; stderr:\n${service.run.stderr()}`,
      1000,
    );
    // (Loopback answers within the millisecond the clock counts in: only its presence is certain.)
    expect(sample(text, 'revtun_keepalive_rtt_seconds')).toBeGreaterThanOrEqual(0);
    expect(text).toMatch(/^# HELP revtun_keepalive_rtt_seconds /m);
  });

  it('a port already taken is reported, and revtun exits 255 before connecting', async () => {
    const taken = await listen(() => undefined);
    cleanup.push(() => taken.close());
    const service = await startService(['-o', `MetricsListen=127.0.0.1:${taken.port}`, '-R', `127.0.0.1:0:127.0.0.1:${target.port}`]);
    expect(await service.run.exit).toBe(255);
    expect(service.run.stderr()).toMatch(new RegExp(`revtun: cannot serve metrics on 127\\.0\\.0\\.1:${taken.port}: .*EADDRINUSE`));
    expect(service.relay.stats().accepted).toBe(0);
  });
});
