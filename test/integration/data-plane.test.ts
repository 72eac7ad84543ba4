// The native data plane (DataPlane=native) against a real OpenSSH sshd: a local forwarding's
// bytes moved by the addon's relay thread, re-keying from both sides under load, the relay
// thread gone with the connection, and the JavaScript path kept (with the reason logged)
// where the plane does not apply. Runs in the native project only: the plane is the addon's.

import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, startSshd, TEST_PASSWORD, TEST_USER, type Sshd } from '../helpers/sshd.js';
import { runRevtun } from '../helpers/cli.js';
import { fingerprintsOf, makeTunnel, rekeyCounts } from '../helpers/tunnel.js';
import { connect, listen, receiveHashed, sendHashed } from '../helpers/streams.js';
import { pollUntil } from '../helpers/kernel.js';
import { startRelay } from '../helpers/relay.js';
import { virtualScheduler } from '../helpers/clock.js';
import type * as net from 'node:net';
import { SshError, type SSHReverseTunnel } from '../../ts/index.js';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'revtun-plane-'));
const key = generateKey(dir, 'id_ed25519', 'ed25519');
let sshd: Sshd;

beforeAll(async () => {
  // The server asks for new keys after every 1 MiB either way.
  sshd = await startSshd({ config: ['RekeyLimit 1M'], authorizedKeys: [key.publicLine] });
});
afterAll(async () => {
  await sshd?.stop();
});

/** The relay thread's id while the tunnel's connection is on the native plane (null: it is not). */
function planeThread(tunnel: SSHReverseTunnel): number | null {
  return relayOf(tunnel)?.threadId ?? null;
}

/** The connection's relay while it is on the native data plane. */
function relayOf(tunnel: SSHReverseTunnel): { threadId: number; threadExited: boolean } | null {
  const session = (tunnel as unknown as { session: { plane: { threadId: number; threadExited: boolean } | null } | null }).session;
  return session?.plane ?? null;
}

/** The raw keys the TypeScript core keeps for a handover to the plane (internal state). */
function keptKeys(tunnel: SSHReverseTunnel): unknown {
  return (tunnel as unknown as { session: { core: { keysInForce: unknown } } }).session.core.keysInForce;
}

function logged(tunnel: SSHReverseTunnel): string[] {
  const lines: string[] = [];
  tunnel.config('LogLevel=2');
  tunnel.on('log', (e) => lines.push(e.message));
  return lines;
}

/** `bytes` each way at once through a local forwarding, both hashes checked. */
async function transfer(tunnel: SSHReverseTunnel, bytes: number): Promise<void> {
  let targetReceived: Promise<{ bytes: number; sha256: string }> | undefined;
  let targetSent: Promise<string> | undefined;
  const target = await listen((socket) => {
    targetReceived = receiveHashed(socket);
    targetSent = sendHashed(socket, bytes);
  });
  const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', target.port);
  const client = await connect(port);
  const clientReceived = receiveHashed(client);
  const clientSent = await sendHashed(client, bytes);
  const down = await clientReceived;
  expect(down.bytes, 'download').toBe(bytes);
  expect(down.sha256).toBe(await targetSent!);
  const up = await targetReceived!;
  expect(up.bytes, 'upload').toBe(bytes);
  expect(up.sha256).toBe(clientSent);
  client.destroy();
  await target.close();
}

describe('the native data plane', () => {
  for (const cipher of ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes256-ctr']) {
    it(`carries a local forwarding, 64 MiB each way intact, over ${cipher}; its thread ends with the connection`, async () => {
      const tunnel = makeTunnel(sshd, { ciphers: cipher, config: ['DataPlane=native'] });
      const log = logged(tunnel);
      await tunnel.sshLogon();
      const relay = relayOf(tunnel);
      expect(relay, log.join('\n')).not.toBeNull();
      expect(existsSync(`/proc/self/task/${relay!.threadId}`)).toBe(true);
      expect(relay!.threadExited).toBe(false);
      await transfer(tunnel, 64 * MiB);
      expect(log.filter((l) => l.includes('data plane:'))).toEqual(['data plane: native (the connection was handed over to the relay thread)']);
      // sshd's 1 MiB limit re-keyed the connection many times meanwhile, on the plane.
      expect(rekeyCounts(tunnel).byServer).toBeGreaterThanOrEqual(10);
      await tunnel.sshLogoff();
      expect(tunnel.connected).toBe(false);
      // Logging off joined the thread (its /proc entry may outlast the join a little).
      expect(relay!.threadExited).toBe(true);
    });
  }

  it('re-keys at our own threshold under load (RekeyBytes counted by the plane)', async () => {
    const tunnel = makeTunnel(sshd, { config: ['DataPlane=native', 'KeyRenegotiationThreshold=262144'] });
    await tunnel.sshLogon();
    expect(planeThread(tunnel)).not.toBeNull();
    await transfer(tunnel, 16 * MiB);
    expect(rekeyCounts(tunnel).byUs).toBeGreaterThanOrEqual(7);
    await tunnel.sshLogoff();
  });

  it('runs exchangeKeys() and keep-alives through the plane while a transfer runs', async () => {
    const tunnel = makeTunnel(sshd, { config: ['DataPlane=native', 'SSHKeepAliveInterval=1'] });
    await tunnel.sshLogon();
    const moving = transfer(tunnel, 16 * MiB);
    for (let i = 0; i < 3; i++) await tunnel.exchangeKeys();
    await moving;
    expect(rekeyCounts(tunnel).byUs).toBeGreaterThanOrEqual(1);
    expect(tunnel.connected).toBe(true);
    await tunnel.sshLogoff();
  });

  it("reports an adopted channel's counts as the plane has them (sshChannels)", async () => {
    const target = await listen((socket) => socket.write(Buffer.alloc(100_000, 7)));
    const tunnel = makeTunnel(sshd, { config: ['DataPlane=native'] });
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', target.port);
    const client = await connect(port);
    let got = 0;
    client.on('data', (chunk: Buffer) => (got += chunk.length));
    await pollUntil(() => got === 100_000, "the target's bytes at the client");
    await pollUntil(() => tunnel.sshChannels[0]?.bytesSent === 100_000, "the channel's count to show them");
    expect(tunnel.sshChannels[0]!.bufferedBytes).toBe(0);
    client.destroy();
    await tunnel.sshLogoff();
    await target.close();
  });

  it("counts the relay's channel bytes as activity: a method's inactivity deadline waits while they move", async () => {
    const link = await startRelay({ host: sshd.host, port: sshd.port });
    let targetSocket: net.Socket | undefined;
    const target = await listen((socket) => (targetSocket = socket));
    const tunnel = makeTunnel(sshd, { config: ['DataPlane=native'] });
    const clock = virtualScheduler();
    tunnel.scheduler = clock;
    tunnel.sshPort = link.port;
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', target.port);
    const client = await connect(port); // straight to sshd's listener, not through the link
    let got = 0;
    client.on('data', (chunk: Buffer) => (got += chunk.length));
    await pollUntil(() => targetSocket !== undefined && tunnel.sshChannels.length === 1, 'the forwarded connection at the target');
    expect(planeThread(tunnel)).not.toBeNull();
    // The server's replies are held from here; what the relay sends it still gets through.
    link.stall('toClient');
    const start = clock.time;
    const request = tunnel.requestForwarding('127.0.0.1', 0, '', 0).then(
      () => 'granted',
      (e: SshError) => e,
    );
    expect(await clock.nextDeadline()).toBe(60_000);
    // 256 KiB (inside sshd's 2 MiB channel window) cross the relay to the client meanwhile.
    targetSocket!.write(Buffer.alloc(256 * 1024, 1));
    await pollUntil(() => got === 256 * 1024, "the target's bytes at the client");
    clock.passDeadline();
    // The relay moved bytes before the deadline came: it waits 60 s more from then.
    expect(await clock.nextDeadline()).toBe(60_000);
    clock.passDeadline();
    const error = (await request) as SshError;
    expect(error).toBeInstanceOf(SshError);
    expect(error.code).toBe(301);
    expect(error.message).toMatch(/nothing moved for 60 s while tcpip-forward/);
    expect(clock.time).toBe(start + 120_000);
    tunnel.reset();
    link.resume();
    client.destroy();
    await target.close();
    await link.close();
  });

  it('stays on the JavaScript path, saying why, where the plane does not apply', async () => {
    const tunnel = makeTunnel(sshd, { config: ['DataPlane=native', 'DefaultChannelIdleTimeout=600'] });
    const log = logged(tunnel);
    await tunnel.sshLogon();
    expect(planeThread(tunnel)).toBeNull();
    expect(log).toContain('data plane: JavaScript (channel idle timeouts are not implemented on the native plane yet)');
    // The keys kept for a handover are let go once it is given up, and none are kept after a re-key.
    expect(keptKeys(tunnel)).toEqual({ outgoing: null, incoming: null });
    await tunnel.exchangeKeys();
    expect(keptKeys(tunnel)).toEqual({ outgoing: null, incoming: null });
    await transfer(tunnel, MiB);
    await tunnel.sshLogoff();
  });

  it('is the default: a tunnel with no DataPlane setting goes native, DataPlane=js stays on Node', async () => {
    // Nothing in the environment chooses for it (REVTUN_DATA_PLANE overrides the setting).
    expect(process.env['REVTUN_DATA_PLANE'] ?? '').toBe('');
    const byDefault = makeTunnel(sshd);
    const defaultLog = logged(byDefault);
    await byDefault.sshLogon();
    expect(planeThread(byDefault)).not.toBeNull();
    await transfer(byDefault, MiB);
    expect(defaultLog).toContain('data plane: native (the connection was handed over to the relay thread)');
    await byDefault.sshLogoff();

    const onNode = makeTunnel(sshd, { config: ['DataPlane=js'] });
    const nodeLog = logged(onNode);
    await onNode.sshLogon();
    expect(planeThread(onNode)).toBeNull();
    expect(nodeLog).toContain('data plane: JavaScript (DataPlane=js)');
    expect(nodeLog.some((line) => line.startsWith('data plane: native'))).toBe(false);
    await transfer(onNode, MiB);
    await onNode.sshLogoff();
  });

  it('is what the CLI uses with no option for it (revtun -N -R, as ssh -N -R is run)', async () => {
    const target = await listen((socket) => socket.pipe(socket));
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
        `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
        '-o',
        'BatchMode=yes',
        '-R',
        `0:127.0.0.1:${target.port}`,
        `${TEST_USER}@127.0.0.1`,
      ],
      { REVTUN_DATA_PLANE: '' },
    );
    try {
      const port = Number((await run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
      await run.waitFor(/data plane: native/);
      const client = await connect(port);
      const echoed = receiveHashed(client);
      const sent = await sendHashed(client, MiB);
      const got = await echoed;
      expect(got).toEqual({ bytes: MiB, sha256: sent });
      expect(run.stderr()).not.toMatch(/data plane: JavaScript/);
    } finally {
      run.child.kill('SIGINT');
      await run.exit;
      await target.close();
    }
  });
});

describe('the relay thread outside the test process', () => {
  const fixture = fileURLToPath(new URL('../fixtures/data-plane/tunnel.mjs', import.meta.url));
  const job = async (end: 'exit' | 'logoff' | 'stay', targetPort: number) => ({
    host: sshd.host,
    port: sshd.port,
    user: TEST_USER,
    password: TEST_PASSWORD,
    fingerprints: fingerprintsOf(sshd),
    targetPort,
    end,
  });
  type Report = { port: number; threadId: number | null } | { error: string };

  /** One echoed exchange through the forwarded port: the relay carries it. */
  async function echoThrough(port: number): Promise<void> {
    const client = await connect(port);
    const echoed = receiveHashed(client);
    const sent = await sendHashed(client, 256 * 1024);
    expect(await echoed).toEqual({ bytes: 256 * 1024, sha256: sent });
  }

  it("a worker thread's relay is stopped and joined when the worker is terminated with its tunnel open", async () => {
    const target = await listen((socket) => socket.pipe(socket));
    const worker = new Worker(fixture, { workerData: await job('stay', target.port) });
    try {
      const report = await new Promise<Report>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      expect(report).toMatchObject({ threadId: expect.any(Number) });
      const { port, threadId } = report as { port: number; threadId: number };
      // The relay runs in this process, beside the worker's own thread.
      expect(existsSync(`/proc/self/task/${threadId}`)).toBe(true);
      await echoThrough(port);
      await worker.terminate();
      // The environment's cleanup hook stopped the relay; the kernel drops the task once joined.
      await pollUntil(() => !existsSync(`/proc/self/task/${threadId}`), `relay thread ${threadId} to be gone`, { tries: 500 });
    } finally {
      await worker.terminate();
      await target.close();
    }
  });

  for (const end of ['exit', 'logoff'] as const) {
    const what = end === 'exit' ? 'process.exit() with a tunnel open ends the process cleanly' : 'a process whose tunnel logged off ends by itself';
    it(`${what} (the relay keeps nothing alive and crashes nothing)`, async () => {
      const target = await listen((socket) => socket.pipe(socket));
      const child = spawn(process.execPath, [fixture, JSON.stringify(await job(end, target.port))], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      try {
        const line = await new Promise<string>((resolve, reject) => {
          let out = '';
          child.stdout.on('data', (c: Buffer) => {
            out += c.toString();
            if (out.includes('\n')) resolve(out.split('\n')[0]!);
          });
          // 'close', not 'exit': the child's stdout may still hold its report when it exits.
          child.once('close', () => reject(new Error(`the child exited before reporting; stderr:\n${stderr}`)));
        });
        const report = JSON.parse(line) as Report;
        expect(report, stderr).toMatchObject({ threadId: expect.any(Number) });
        expect(await exited, stderr).toEqual({ code: 0, signal: null });
        expect(stderr).toBe('');
      } finally {
        child.kill('SIGKILL');
        await target.close();
      }
    });
  }
});
