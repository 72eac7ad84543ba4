// Unix-socket forwardings against a real OpenSSH sshd: a remote TCP port joined to a local
// Unix socket (ssh -R port:/local.sock), with the library and the CLI.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { generateKey, freePort, TEST_USER, type Sshd, startSshd, stopAll } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { connect, receiveHashed, roundTrip, roundTripOrReset, sendHashed } from '../helpers/streams.js';
import { runRevtun } from '../helpers/cli.js';
import { openReverseTunnel } from '../../ts/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-unix-'));
chmodSync(dir, 0o755);
const key = generateKey(dir, 'id_ed25519', 'ed25519');
let sshd: Sshd;
let local: UnixServer;

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

beforeAll(async () => {
  sshd = await startSshd({ authorizedKeys: [key.publicLine] });
  local = await unixEcho('local.sock');
});
afterAll(() => stopAll(local, sshd));

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
      ['-N', '-p', String(sshd.port), '-i', key.privatePath, '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${join(dir, 'kh')}`, '-o', 'BatchMode=yes', '-R', `${port}:${local.path}`, '-R', `0:${local.path}`, `${TEST_USER}@127.0.0.1`],
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
