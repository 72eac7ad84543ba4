// Unix-socket forwardings against a real OpenSSH sshd: a remote TCP port joined to a local
// Unix socket (ssh -R port:/local.sock), and sshd listening on a Unix socket of its own
// (ssh -R /remote.sock:host:port and -R /remote.sock:/local.sock, streamlocal-forward),
// with the library and the CLI. The tests run on the server's machine, so they connect to
// the server's socket directly, as a program there would.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, chmodSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { generateKey, freePort, TEST_USER, type Sshd, startSshd, stopAll } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { connect, echoServer, receiveHashed, roundTrip, roundTripOrReset, sendHashed } from '../helpers/streams.js';
import { virtualScheduler } from '../helpers/clock.js';
import type { SSHReverseTunnel } from '../../ts/index.js';
import { runRevtun as startRevtun, type Run } from '../helpers/cli.js';
import { openReverseTunnel } from '../../ts/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-unix-'));
chmodSync(dir, 0o755);
const key = generateKey(dir, 'id_ed25519', 'ed25519');
/** Where sshd (running as the test user) may create its sockets. */
const remoteDir = mkdtempSync(join(tmpdir(), 'revtun-remote-'));
let sshd: Sshd;
let local: UnixServer;
let tcpEcho: Awaited<ReturnType<typeof echoServer>>;
let remoteCount = 0;
const remotePath = () => join(remoteDir, `r${++remoteCount}.sock`);

interface UnixServer {
  path: string;
  close(): Promise<void>;
}

/** A server on a Unix socket that echoes everything and half-closes when its client does. */
function unixEcho(name: string): Promise<UnixServer> {
  const path = join(dir, name);
  const server = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve({ path, close: () => new Promise<void>((done) => server.close(() => done())) }));
  });
}

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
  execFileSync('chown', [TEST_USER, remoteDir]);
  // StreamLocalBindUnlink: a reconnect binds over the socket file the dead session left.
  sshd = await startSshd({ authorizedKeys: [key.publicLine], config: ['StreamLocalBindUnlink yes'] });
  local = await unixEcho('local.sock');
  tcpEcho = await echoServer();
});
afterAll(() => stopAll(tcpEcho, local, sshd));

/** Connects to a Unix socket and sends `data`; resolves with everything until the far end closes. */
function roundTripUnix(path: string, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path });
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
    s.end(data);
  });
}

/** The error code a connection to the socket path fails with, or 'connected'. */
function unixConnectResult(path: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ path });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

describe('a remote port joined to a local Unix socket', () => {
  it('carries data both ways with half-close (library)', async () => {
    const tunnel = makeTunnel(sshd);
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, local.path, 0);
    expect(tunnel.forwardings[0]).toMatchObject({ forwardingHost: local.path, forwardingPort: 0, boundPort: port });
    const small = randomBytes(1000);
    expect((await roundTrip(port, small)).equals(small)).toBe(true);
    // Several MiB each way: the echo only answers what arrived, so backpressure is on the path.
    const socket = await connect(port);
    const [sent, received] = await Promise.all([sendHashed(socket, 8 * 1024 * 1024), receiveHashed(socket)]);
    expect(received.bytes).toBe(8 * 1024 * 1024);
    expect(received.sha256).toBe(sent);
    expect(tunnel.sshChannels.every((ch) => ch.forwardingHost === local.path)).toBe(true);
    await tunnel.sshLogoff();
  });

  it('a path with a port, or one too long for a socket, is refused with 10022 before any request', async () => {
    const tunnel = makeTunnel(sshd);
    await tunnel.sshLogon();
    await expect(tunnel.requestForwarding('127.0.0.1', 0, local.path, 80)).rejects.toMatchObject({ code: 10022 });
    await expect(tunnel.requestForwarding('127.0.0.1', 0, `/tmp/${'x'.repeat(200)}`, 0)).rejects.toMatchObject({ code: 10022 });
    expect(tunnel.forwardings).toHaveLength(0);
    await tunnel.sshLogoff();
  });

  it('a socket that is not there fails that channel only (1020); another forwarding carries on', async () => {
    const tunnel = makeTunnel(sshd);
    const errors: { errorCode: number; description: string }[] = [];
    tunnel.on('error', (e) => errors.push(e));
    await tunnel.sshLogon();
    const missing = join(dir, 'nobody-listens.sock');
    const bad = await tunnel.requestForwarding('127.0.0.1', 0, missing, 0);
    const good = await tunnel.requestForwarding('127.0.0.1', 0, local.path, 0);
    const survivor = await connect(good);
    const survivorEcho = new Promise<string>((resolve) => survivor.once('data', (d: Buffer) => resolve(d.toString())));
    expect((await roundTripOrReset(bad, Buffer.from('hello'))).length).toBe(0);
    expect(errors.find((e) => e.errorCode === 1020)?.description).toContain(missing);
    survivor.write('alive');
    expect(await survivorEcho).toBe('alive');
    survivor.destroy();
    await tunnel.sshLogoff();
  });

  it('openReverseTunnel takes local: { path }', async () => {
    const opened = await openReverseTunnel({
      host: sshd.host,
      port: sshd.port,
      username: TEST_USER,
      privateKey: key.privatePath,
      hostKey: sshd.hostKeys.ed25519,
      remote: { address: '127.0.0.1', port: 0 },
      local: { path: local.path },
    });
    expect((await roundTrip(opened.port, Buffer.from('through the helper'))).toString()).toBe('through the helper');
    await opened.close();
  });

  it('revtun -R port:/path reaches the socket, as ssh -R does', async () => {
    const port = await freePort();
    const run = runRevtun(
      [
        '-N',
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
        '-R',
        `${port}:${local.path}`,
        '-R',
        `0:${local.path}`,
        `${TEST_USER}@127.0.0.1`,
      ],
      { HOME: dir },
    );
    const allocated = await run.waitFor(/Allocated port (\d+) for remote forward to (\S+)/);
    expect(allocated[2]).toBe(local.path);
    expect((await roundTrip(Number(allocated[1]), Buffer.from('via port 0'))).toString()).toBe('via port 0');
    // The fixed port was asked for before the allocated one was granted, so it listens by now.
    expect((await roundTrip(port, Buffer.from('via a fixed port'))).toString()).toBe('via a fixed port');
    run.child.kill('SIGINT');
    expect(await run.exit).toBe(0);
  });
});

describe('the server listening on a Unix socket (streamlocal-forward)', () => {
  it('-R /remote.sock:host:port and -R /remote.sock:/local.sock carry data (library)', async () => {
    const tunnel = makeTunnel(sshd);
    await tunnel.sshLogon();
    const toTcp = remotePath();
    const toUnix = remotePath();
    expect(await tunnel.requestForwarding(toTcp, 0, '127.0.0.1', tcpEcho.port)).toBe(0);
    expect(await tunnel.requestForwarding(toUnix, 0, local.path, 0)).toBe(0);
    expect((await roundTripUnix(toTcp, Buffer.from('to a TCP service'))).toString()).toBe('to a TCP service');
    const socket = net.connect({ path: toUnix });
    await new Promise((resolve) => socket.once('connect', resolve));
    const [sent, received] = await Promise.all([sendHashed(socket, 8 * 1024 * 1024), receiveHashed(socket)]);
    expect(received).toEqual({ bytes: 8 * 1024 * 1024, sha256: sent });
    expect(tunnel.forwardings.map((f) => [f.address, f.boundPort])).toEqual([
      [toTcp, 0],
      [toUnix, 0],
    ]);
    await tunnel.sshLogoff();
  });

  it('a channel on it is reported with the socket path and the streamlocal service', async () => {
    const tunnel = makeTunnel(sshd);
    await tunnel.sshLogon();
    const path = remotePath();
    await tunnel.requestForwarding(path, 0, '127.0.0.1', tcpEcho.port);
    const requested = new Promise<{ service: string; connectedAddress: string; connectedPort: number }>((resolve) => tunnel.once('sshChannelOpenRequest', resolve));
    const opened = new Promise((resolve) => tunnel.once('sshChannelOpened', resolve));
    const held = net.connect({ path });
    expect(await requested).toMatchObject({ service: 'forwarded-streamlocal@openssh.com', connectedAddress: path, connectedPort: 0 });
    await opened;
    expect(tunnel.sshChannels).toMatchObject([{ service: 'forwarded-streamlocal@openssh.com', connectedAddress: path, connectedPort: 0, forwardingHost: '127.0.0.1' }]);
    held.destroy();
    await tunnel.sshLogoff();
  });

  it('cancelForwarding(path, 0) stops it while another forwarding carries on; a refused path is 1098', async () => {
    const tunnel = makeTunnel(sshd);
    await tunnel.sshLogon();
    const gone = remotePath();
    const kept = remotePath();
    await tunnel.requestForwarding(gone, 0, '127.0.0.1', tcpEcho.port);
    await tunnel.requestForwarding(kept, 0, '127.0.0.1', tcpEcho.port);
    await tunnel.cancelForwarding(gone, 0);
    // sshd closes the listener and leaves the file: nobody answers on it any more.
    expect(await unixConnectResult(gone)).toMatch(/^(ECONNREFUSED|ENOENT)$/);
    expect((await roundTripUnix(kept, Buffer.from('still here'))).toString()).toBe('still here');
    await expect(tunnel.cancelForwarding(gone, 0)).rejects.toMatchObject({ code: 10022 });
    // A directory that does not exist: sshd cannot bind there and says no.
    await expect(tunnel.requestForwarding(join(remoteDir, 'no-such-dir', 'x.sock'), 0, '127.0.0.1', tcpEcho.port)).rejects.toMatchObject({ code: 1098 });
    // Checked before anything is sent: a port with a path, a dynamic forwarding on a path.
    await expect(tunnel.requestForwarding(remotePath(), 80, '127.0.0.1', tcpEcho.port)).rejects.toMatchObject({ code: 10022 });
    await expect(tunnel.requestDynamicForwarding(remotePath(), 0)).rejects.toMatchObject({ code: 10022 });
    expect(tunnel.connected).toBe(true);
    expect(tunnel.forwardings.map((f) => f.address)).toEqual([kept]);
    await tunnel.sshLogoff();
  });

  it('comes back after a reconnect (with StreamLocalBindUnlink on the server)', async () => {
    const tunnel: SSHReverseTunnel = makeTunnel(sshd);
    const clock = virtualScheduler(0);
    tunnel.scheduler = clock;
    await tunnel.sshLogon();
    const path = remotePath();
    await tunnel.requestForwarding(path, 0, local.path, 0);
    expect((await roundTripUnix(path, Buffer.from('before'))).toString()).toBe('before');
    const restored = new Promise<{ address: string; boundPort: number }>((resolve) => tunnel.once('forwardingRestored', resolve));
    await sshd.killSessions();
    await clock.nextWait();
    clock.pass();
    expect(await restored).toMatchObject({ address: path, boundPort: 0 });
    expect(existsSync(path)).toBe(true);
    expect((await roundTripUnix(path, Buffer.from('after'))).toString()).toBe('after');
    await tunnel.sshLogoff();
  });

  it('revtun -R /remote.sock:host:port and -R /remote.sock:/local.sock, as ssh -R does', async () => {
    const toTcp = remotePath();
    const toUnix = remotePath();
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
        '-R',
        `${toTcp}:127.0.0.1:${tcpEcho.port}`,
        '-R',
        `${toUnix}:${local.path}`,
        `${TEST_USER}@127.0.0.1`,
      ],
      { HOME: dir },
    );
    await run.waitFor(new RegExp(`remote forwarding ${toUnix.replace(/[.]/g, '\\.')} -> `));
    expect((await roundTripUnix(toTcp, Buffer.from('cli to tcp'))).toString()).toBe('cli to tcp');
    expect((await roundTripUnix(toUnix, Buffer.from('cli to unix'))).toString()).toBe('cli to unix');
    expect(run.stderr()).not.toMatch(/Allocated port/);
    run.child.kill('SIGINT');
    expect(await run.exit).toBe(0);
  });

  it('revtun says which path failed, as ssh does', async () => {
    const bad = join(remoteDir, 'no-such-dir', 'x.sock');
    const run = runRevtun(
      [
        '-N',
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
        'ExitOnForwardFailure=yes',
        '-R',
        `${bad}:127.0.0.1:${tcpEcho.port}`,
        `${TEST_USER}@127.0.0.1`,
      ],
      { HOME: dir },
    );
    expect(await run.exit).toBe(255);
    await run.closed; // everything it wrote has been read
    expect(run.stderr()).toContain(`Error: remote port forwarding failed for listen path ${bad}`);
  });
});
