// Reverse dynamic forwarding (ssh -R port, no target) against a real OpenSSH sshd: curl speaks
// SOCKS5, SOCKS5 with names resolved here, SOCKS4 and SOCKS4A to the server's port and
// reaches a local HTTP service; a refused connect gets its SOCKS failure reply; malformed,
// truncated and oversized requests close their own channel while a transfer next to them
// goes on; the forwarding comes back after a reconnect; the CLI takes -R port and
// -o RemoteForward=port.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as http from 'node:http';
import * as net from 'node:net';
import { freePort, generateKey, startSshdWithEcho, stopAll, TEST_USER, type EchoServer, type Sshd } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { connect, receiveHashed, sendHashed } from '../helpers/streams.js';
import { virtualScheduler } from '../helpers/clock.js';
import { runRevtun as startRevtun, type Run } from '../helpers/cli.js';
import { pollUntil } from '../helpers/kernel.js';
import { SshError, type DynamicForwardingOptions, type SSHReverseTunnel, type TunnelScheduler } from '../../ts/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-socks-'));
const key = generateKey(dir, 'id_ed25519', 'ed25519');
let sshd: Sshd;
let echo: EchoServer;
let web: http.Server;
let webPort: number;

/** Every revtun a test starts; one a failed test left running is killed after it. */
const runs: Run[] = [];
afterEach(() => {
  for (const run of runs.splice(0)) if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
});

/** revtun with no config file (-F none), so the machine's ssh_config cannot change the test. */
function runRevtun(args: string[], env: NodeJS.ProcessEnv): Run {
  const run = startRevtun(['-F', 'none', ...args], env);
  runs.push(run);
  return run;
}

beforeAll(async () => {
  ({ sshd, echo } = await startSshdWithEcho({ authorizedKeys: [key.publicLine] }));
  web = http.createServer((req, res) => res.end(`served ${req.url}`));
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  webPort = (web.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => web.close(() => resolve()));
  await stopAll(echo, sshd);
});

interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '30', ...args], (error, stdout, stderr) => {
      const code = error ? Number((error as { code?: unknown }).code ?? -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function socksTunnel(options: DynamicForwardingOptions = {}, scheduler?: TunnelScheduler): Promise<{ tunnel: SSHReverseTunnel; port: number; logs: string[] }> {
  const tunnel = makeTunnel(sshd, { config: ['LogLevel=2'] });
  if (scheduler) tunnel.scheduler = scheduler;
  const logs: string[] = [];
  tunnel.on('log', (e) => logs.push(e.message));
  await tunnel.sshLogon();
  const port = await tunnel.requestDynamicForwarding('127.0.0.1', 0, options);
  return { tunnel, port, logs };
}

/** A local TCP listener that counts the connections it is offered (and closes them). */
async function countingListener(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server = net.createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => count,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Writes `data` to the SOCKS port and collects everything until the far end closes. */
function exchange(port: number, data: Uint8Array, halfClose = false): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      s.end();
      resolve(Buffer.concat(chunks));
    });
    s.on('error', reject);
    s.write(data);
    if (halfClose) s.end();
  });
}

const socks5Connect = (ip: number[], port: number) => Buffer.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, ...ip, port >> 8, port & 0xff]);

describe('reverse dynamic forwarding (SOCKS)', () => {
  it('curl through the remote port reaches a local HTTP service with SOCKS5, 5h, 4 and 4A', async () => {
    const { tunnel, port } = await socksTunnel();
    expect(tunnel.forwardings[0]).toMatchObject({ dynamic: true, forwardingHost: '', forwardingPort: 0, boundPort: port });
    const proxy = `127.0.0.1:${port}`;
    const forms: [string, string[]][] = [
      ['socks5h', ['--proxy', `socks5h://${proxy}`, `http://localhost:${webPort}/socks5h`]], // the name is resolved by revtun
      ['socks5', ['--socks5', proxy, `http://127.0.0.1:${webPort}/socks5`]],
      ['socks4a', ['--socks4a', proxy, `http://localhost:${webPort}/socks4a`]],
      ['socks4', ['--socks4', proxy, `http://127.0.0.1:${webPort}/socks4`]],
    ];
    for (const [name, args] of forms) {
      const result = await curl(args);
      expect(result, name).toMatchObject({ code: 0, stdout: `served /${name}` });
    }
    await tunnel.sshLogoff();
  });

  it('a refused connect gets the SOCKS failure reply: 5 (connection refused) for SOCKS5, 91 for SOCKS4', async () => {
    const { tunnel, port, logs } = await socksTunnel();
    const closed = await freePort();
    const reply5 = await exchange(port, socks5Connect([127, 0, 0, 1], closed));
    expect([...reply5]).toEqual([0x05, 0x00, 0x05, 0x05, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    const reply4 = await exchange(port, Buffer.from([0x04, 0x01, closed >> 8, closed & 0xff, 127, 0, 0, 1, 0]));
    expect([...reply4]).toEqual([0x00, 0x5b, 0, 0, 0, 0, 0, 0]);
    const viaCurl = await curl(['--proxy', `socks5h://127.0.0.1:${port}`, `http://localhost:${closed}/`]);
    expect(viaCurl.code).toBe(97); // CURLE_PROXY
    expect(viaCurl.stderr).toMatch(/Can't complete SOCKS5 connection to localhost\. \(5\)/); // reply code 5: refused
    expect(logs.some((l) => /SOCKS connect failed: .*ECONNREFUSED/.test(l))).toBe(true);
    expect(tunnel.connected).toBe(true);
    await tunnel.sshLogoff();
  });

  it('bytes pipelined behind the request reach the destination, and its answer comes after the reply', async () => {
    const { tunnel, port } = await socksTunnel();
    const request = `GET /pipelined HTTP/1.0\r\nHost: localhost\r\n\r\n`;
    const answer = await exchange(port, Buffer.concat([socks5Connect([127, 0, 0, 1], webPort), Buffer.from(request)]));
    expect([...answer.subarray(0, 12)]).toEqual([0x05, 0x00, 0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    expect(answer.subarray(12).toString()).toMatch(/^HTTP\/1\.[01] 200 OK[\s\S]*served \/pipelined$/);
    await tunnel.sshLogoff();
  });

  it('malformed, truncated and oversized requests close their own channel; a transfer next to them goes on', async () => {
    const { tunnel, port, logs } = await socksTunnel();
    // 8 MiB each way through SOCKS to the echo server, busy while the bad requests come in.
    const transfer = await connect(port);
    const greeting = new Promise<Buffer>((resolve) => transfer.once('data', resolve));
    transfer.write(socks5Connect([127, 0, 0, 1], echo.port));
    const replies = await greeting;
    // The method selection and the success reply may come in one read or two.
    const rest = replies.length >= 12 ? replies : Buffer.concat([replies, await new Promise<Buffer>((r) => transfer.once('data', r))]);
    expect([...rest.subarray(0, 12)]).toEqual([0x05, 0x00, 0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    const received = receiveHashed(transfer);
    const sent = sendHashed(transfer, 8 * 1024 * 1024, 64 * 1024);

    // Not SOCKS at all: closed without a reply.
    expect((await exchange(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).length).toBe(0);
    // A request cut short, then EOF: closed after the method selection.
    expect([...(await exchange(port, Buffer.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 20, 0x61]), true))]).toEqual([0x05, 0x00]);
    // A SOCKS4 user id that never ends: refused (91) once it passes 255 bytes.
    expect([...(await exchange(port, Buffer.concat([Buffer.from([0x04, 0x01, 0x00, 0x50, 127, 0, 0, 1]), Buffer.alloc(64 * 1024, 0x75)])))]).toEqual([0x00, 0x5b, 0, 0, 0, 0, 0, 0]);
    // BIND: command not supported (7).
    expect([...(await exchange(port, Buffer.from([0x05, 0x01, 0x00, 0x05, 0x02, 0x00, 0x01, 127, 0, 0, 1, 0, 80])))]).toEqual([0x05, 0x00, 0x05, 0x07, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);

    const [sentHash, got] = await Promise.all([sent, received]);
    expect(got).toEqual({ bytes: 8 * 1024 * 1024, sha256: sentHash });
    const closings = logs.filter((l) => /closing the channel/.test(l));
    for (const why of [
      'SOCKS handshake failed: not a SOCKS4 or SOCKS5 request (first byte 0x47)',
      'SOCKS client sent EOF before its request was complete',
      'SOCKS handshake failed: SOCKS4 user id too long',
      'SOCKS handshake failed: SOCKS5 command 2 is not supported (only CONNECT)',
    ]) {
      expect(
        closings.some((l) => l.includes(why)),
        why,
      ).toBe(true);
    }
    expect(tunnel.connected).toBe(true);
    await tunnel.sshLogoff();
  });

  it('comes back on the same port after a reconnect', async () => {
    const tunnel = makeTunnel(sshd);
    const clock = virtualScheduler(0);
    tunnel.scheduler = clock;
    await tunnel.sshLogon();
    const port = await tunnel.requestDynamicForwarding('127.0.0.1', 0);
    expect((await curl(['--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${webPort}/before`])).stdout).toBe('served /before');
    const restored = new Promise<{ boundPort: number; dynamic: boolean }>((resolve) => tunnel.once('forwardingRestored', resolve));
    await sshd.killSessions();
    await clock.nextWait();
    clock.pass();
    expect(await restored).toMatchObject({ boundPort: port, dynamic: true });
    expect((await curl(['--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${webPort}/after`])).stdout).toBe('served /after');
    await tunnel.sshLogoff();
  });

  it('revtun -R port and -o RemoteForward=port answer SOCKS, as ssh -R does', async () => {
    const fixed = await freePort();
    const run = runRevtun(
      [
        '-Nv',
        '-p',
        String(sshd.port),
        '-i',
        key.privatePath,
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        `UserKnownHostsFile=${join(dir, 'kh')}`,
        '-o',
        'BatchMode=yes',
        '-o',
        `RemoteForward=127.0.0.1:${fixed}`,
        '-R',
        '0',
        `${TEST_USER}@127.0.0.1`,
      ],
      { HOME: dir },
    );
    const allocated = Number((await run.waitFor(/Allocated port (\d+) for remote forward to socks:0/))[1]);
    // The config's RemoteForward comes after the -R, and -v names it once it is granted.
    await run.waitFor(new RegExp(`remote forwarding 127\\.0\\.0\\.1:${fixed} -> SOCKS`));
    for (const port of [allocated, fixed]) {
      const result = await curl(['--socks4a', `127.0.0.1:${port}`, `http://localhost:${webPort}/cli`]);
      expect(result, `port ${port}; revtun said:\n${run.stderr()}`).toMatchObject({ code: 0, stdout: 'served /cli' });
    }
    run.child.kill('SIGINT');
    expect(await run.exit).toBe(0);
  });

  it('revtun -o PermitRemoteOpen limits where -R port connects, and a bad value fails as ssh fails', async () => {
    const guarded = await countingListener();
    try {
      const run = runRevtun(
        [
          '-Nv',
          '-p',
          String(sshd.port),
          '-i',
          key.privatePath,
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          `UserKnownHostsFile=${join(dir, 'kh')}`,
          '-o',
          'BatchMode=yes',
          '-o',
          `PermitRemoteOpen=127.0.0.1:${webPort}`,
          '-R',
          '0',
          `${TEST_USER}@127.0.0.1`,
        ],
        { HOME: dir },
      );
      const port = Number((await run.waitFor(/Allocated port (\d+) for remote forward to socks:0/))[1]);
      expect((await curl(['--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${webPort}/permitted`])).stdout).toBe('served /permitted');
      const refused = await curl(['--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${guarded.port}/`]);
      expect(refused.stderr).toMatch(/\(2\)/); // SOCKS5 reply 2: not allowed by ruleset
      await run.waitFor(new RegExp(`SOCKS5 CONNECT 127\\.0\\.0\\.1:${guarded.port} refused: not permitted by PermitRemoteOpen 127\\.0\\.0\\.1:${webPort}`));
      expect(guarded.connections()).toBe(0);
      run.child.kill('SIGINT');
      expect(await run.exit).toBe(0);
    } finally {
      await guarded.close();
    }
    const bad = runRevtun(['-N', '-p', String(sshd.port), '-o', 'PermitRemoteOpen=127.0.0.1', '-R', '0', `${TEST_USER}@127.0.0.1`], { HOME: dir });
    expect(await bad.exit).toBe(255);
    await bad.closed;
    expect(bad.stderr()).toMatch(/bad port number in permitremoteopen/);
  });
});

describe('PermitRemoteOpen on a dynamic forwarding', () => {
  it('lets a listed destination through and refuses another with SOCKS\'s "not allowed", connecting nowhere', async () => {
    const guarded = await countingListener();
    const { tunnel, port, logs } = await socksTunnel({ permitRemoteOpen: `localhost:${webPort} 127.0.0.1:${webPort}` });
    try {
      expect(tunnel.forwardings[0]?.socks?.permitOpen).toMatchObject({ kind: 'list' });
      expect((await curl(['--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${webPort}/listed`])).stdout).toBe('served /listed');
      expect((await curl(['--proxy', `socks5h://127.0.0.1:${port}`, `http://localhost:${webPort}/named`])).stdout).toBe('served /named');
      // Same port, another host; and the listed host on another port.
      const viaCurl = await curl(['--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${guarded.port}/`]);
      expect(viaCurl.code).toBe(97); // CURLE_PROXY
      expect(viaCurl.stderr).toMatch(/Can't complete SOCKS5 connection to 127\.0\.0\.1\. \(2\)/);
      expect([...(await exchange(port, socks5Connect([127, 0, 0, 1], guarded.port)))]).toEqual([0x05, 0x00, 0x05, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
      expect([...(await exchange(port, Buffer.from([0x04, 0x01, guarded.port >> 8, guarded.port & 0xff, 127, 0, 0, 1, 0])))]).toEqual([0x00, 0x5b, 0, 0, 0, 0, 0, 0]);
      // Names are compared as written: 127.0.0.1 is listed, "127.0.0.2" and a name for it are not.
      const otherName = await curl(['--proxy', `socks5h://127.0.0.1:${port}`, `http://localhost.localdomain:${webPort}/`]);
      expect(otherName.stderr).toMatch(/\(2\)/);
      expect(guarded.connections()).toBe(0);
      expect(logs.filter((l) => /refused: not permitted by PermitRemoteOpen/.test(l)).length).toBe(4);
      expect(logs.some((l) => l.includes(`SOCKS4 CONNECT 127.0.0.1:${guarded.port} refused: not permitted by PermitRemoteOpen localhost:${webPort} 127.0.0.1:${webPort}; closing the channel`))).toBe(
        true,
      );
      expect(tunnel.connected).toBe(true);
    } finally {
      await tunnel.sshLogoff();
      await guarded.close();
    }
  });

  it('none refuses every request, SOCKS4A and 5h alike', async () => {
    const guarded = await countingListener();
    const { tunnel, port } = await socksTunnel({ permitRemoteOpen: 'none' });
    try {
      expect((await curl(['--socks4a', `127.0.0.1:${port}`, `http://localhost:${webPort}/`])).stderr).toMatch(/SOCKS4.*(rejected|failed|91)/i);
      expect((await curl(['--proxy', `socks5h://127.0.0.1:${port}`, `http://127.0.0.1:${guarded.port}/`])).stderr).toMatch(/\(2\)/);
      expect(guarded.connections()).toBe(0);
    } finally {
      await tunnel.sshLogoff();
      await guarded.close();
    }
  });

  it('* stands for any host or any port', async () => {
    const guarded = await countingListener();
    const { tunnel, port } = await socksTunnel({ permitRemoteOpen: [`*:${webPort}`, 'localhost:*'] });
    try {
      // *:webPort: any host on that port; localhost:*: that name on any port.
      expect((await curl(['--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${webPort}/any-host`])).stdout).toBe('served /any-host');
      expect((await curl(['--socks4a', `127.0.0.1:${port}`, `http://localhost:${guarded.port}/`])).code).not.toBe(97); // reached: the listener hangs up
      await pollUntil(() => guarded.connections() === 1, 'the listener to see the permitted connection');
      // Neither: an address on another port.
      expect((await curl(['--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${guarded.port}/`])).stderr).toMatch(/\(2\)/);
      expect(guarded.connections()).toBe(1);
    } finally {
      await tunnel.sshLogoff();
      await guarded.close();
    }
  });

  it('a bad PermitRemoteOpen or handshake timeout fails with 10022 before anything is asked', async () => {
    const { tunnel } = await socksTunnel();
    try {
      for (const options of [
        { permitRemoteOpen: 'localhost' },
        { permitRemoteOpen: ['any', 'localhost:80'] },
        { permitRemoteOpen: [] },
        { permitRemoteOpen: 42 as unknown as string },
        { handshakeTimeout: 0 },
        { handshakeTimeout: Number.NaN },
      ]) {
        const error = await tunnel.requestDynamicForwarding('127.0.0.1', 0, options).catch((e: unknown) => e);
        expect(error, JSON.stringify(options)).toBeInstanceOf(SshError);
        expect((error as SshError).code).toBe(10022);
      }
      expect(tunnel.forwardings.length).toBe(1);
    } finally {
      await tunnel.sshLogoff();
    }
  });
});

describe('the SOCKS handshake deadline', () => {
  /** A socket to the SOCKS port, and a promise of everything it reads until the far end ends. */
  async function opener(port: number): Promise<{ socket: net.Socket; received: Promise<Buffer>; bytesRead: () => number }> {
    const socket = await connect(port);
    const chunks: Buffer[] = [];
    const received = new Promise<Buffer>((resolve) => {
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => {
        socket.end();
        resolve(Buffer.concat(chunks));
      });
    });
    return { socket, received, bytesRead: () => chunks.reduce((n, c) => n + c.length, 0) };
  }

  it('closes a channel whose client sends nothing, or half a request, once 30 s have passed', async () => {
    const clock = virtualScheduler(0);
    const { tunnel, port, logs } = await socksTunnel({}, clock);
    try {
      const silent = await opener(port);
      expect(await clock.nextDeadline()).toBe(30_000);
      const half = await opener(port);
      half.socket.write(Buffer.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 20, 0x61]));
      expect(await clock.nextDeadline()).toBe(30_000);
      await pollUntil(() => tunnel.sshChannelCount === 2, 'both channels to be open');
      // The greeting has crossed the tunnel and been answered before any deadline passes; otherwise
      // the half-request's channel could close before its bytes were read at all.
      await pollUntil(() => half.bytesRead() === 2, 'the method selection for the half request');
      clock.passDeadline(); // the silent one's deadline
      expect((await silent.received).length).toBe(0);
      clock.passDeadline();
      expect([...(await half.received)]).toEqual([0x05, 0x00]); // the method selection, then the close
      await pollUntil(() => tunnel.sshChannelCount === 0, 'the channels to be closed');
      expect(logs.filter((l) => /no complete SOCKS request within 30 s; closing the channel/.test(l)).length).toBe(2);
      expect(tunnel.connected).toBe(true);
    } finally {
      await tunnel.sshLogoff();
    }
  });

  it('takes handshakeTimeout, and a request that completes in time ends its deadline', async () => {
    const clock = virtualScheduler(0);
    const { tunnel, port, logs } = await socksTunnel({ handshakeTimeout: 5 }, clock);
    try {
      expect((await curl(['--socks5', `127.0.0.1:${port}`, `http://127.0.0.1:${webPort}/in-time`])).stdout).toBe('served /in-time');
      expect(clock.pendingDeadlines).toBe(0); // the deadline's wait was given up once the request was in
      const silent = await opener(port);
      expect(await clock.nextDeadline()).toBe(5_000);
      clock.passDeadline();
      expect((await silent.received).length).toBe(0);
      expect(logs.some((l) => /no complete SOCKS request within 5 s/.test(l))).toBe(true);
    } finally {
      await tunnel.sshLogoff();
    }
  });

  it("an oversized request is refused at the protocol's limit, not buffered", async () => {
    const { tunnel, port, logs } = await socksTunnel();
    try {
      // A SOCKS4A host name that never ends: refused (91) once it passes 255 bytes.
      const endless = Buffer.concat([Buffer.from([0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1, 0x75, 0]), Buffer.alloc(256 * 1024, 0x68)]);
      expect([...(await exchange(port, endless))]).toEqual([0x00, 0x5b, 0, 0, 0, 0, 0, 0]);
      expect(logs.some((l) => /SOCKS4A host name too long; closing the channel/.test(l))).toBe(true);
    } finally {
      await tunnel.sshLogoff();
    }
  });
});
