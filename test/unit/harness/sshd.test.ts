// The loopback sshd's fault controls, checked against a real sshd with real clients (OpenSSH's
// ssh and revtun): stop/start on the same port and keys, restart over a TIME_WAIT, killing the
// sessions while the listener stays, new host keys, authorized_keys and config changes.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeSshdConfig, SSHD_PATH } from '../../../ts/demo/sshd.js';
import { generateKey, startSshd, stopAll, TEST_USER, type KeyPair, type Sshd } from '../../helpers/sshd.js';
import { makeTunnel } from '../../helpers/tunnel.js';
import { connect } from '../../helpers/streams.js';
import { pollUntil, tcpSockets } from '../../helpers/kernel.js';
import { SshError, type SSHReverseTunnel } from '../../../ts/index.js';

let keyDir: string;
let key: KeyPair;
beforeAll(() => {
  keyDir = mkdtempSync(join(tmpdir(), 'revtun-harness-'));
  key = generateKey(keyDir, 'id_ed25519', 'ed25519');
});

// Every sshd a test starts is stopped after it, whatever the test did to it.
const started: Sshd[] = [];
async function sshd(options: Parameters<typeof startSshd>[0] = {}): Promise<Sshd> {
  const server = await startSshd({ authorizedKeys: [key.publicLine], ...options });
  started.push(server);
  return server;
}
afterEach(async () => {
  await stopAll(...started.splice(0));
});

/** Logs on and off with a tunnel that trusts only `hostKey`; resolves with the error code, 0 on success. */
async function logonResult(server: Sshd, setup: Parameters<typeof makeTunnel>[1] = {}): Promise<number> {
  const tunnel = makeTunnel(server, setup);
  try {
    await tunnel.sshLogon();
  } catch (error) {
    if (error instanceof SshError) return error.code;
    throw error;
  }
  await tunnel.sshLogoff();
  return 0;
}

async function loggedOn(server: Sshd, setup: Parameters<typeof makeTunnel>[1] = {}): Promise<{ tunnel: SSHReverseTunnel; dropped: Promise<number> }> {
  const tunnel = makeTunnel(server, setup);
  await tunnel.sshLogon();
  const dropped = new Promise<number>((resolve) => tunnel.on('disconnected', (e) => resolve(e.statusCode)));
  return { tunnel, dropped };
}

/** An OpenSSH client session as root running `cat`; resolves once the remote command has started. */
async function sshSession(server: Sshd): Promise<{ child: ChildProcess; exited: Promise<number | null> }> {
  const knownHosts = join(keyDir, `known_hosts_${server.port}`);
  writeFileSync(knownHosts, `[127.0.0.1]:${server.port} ${server.hostKeys.ed25519}\n`);
  const child = spawn(
    'ssh',
    [
      '-F',
      '/dev/null',
      '-i',
      key.privatePath,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'HostKeyAlgorithms=ssh-ed25519',
      '-p',
      String(server.port),
      'root@127.0.0.1',
      'echo ready; exec cat',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', (c: Buffer) => (c.toString().startsWith('ready') ? resolve() : reject(new Error(`ssh said ${c}`))));
    void exited.then((code) => reject(new Error(`ssh exited with ${code}: ${stderr}`)));
  });
  return { child, exited };
}

describe('config lines', () => {
  it('an extra line replaces the default for its keyword; Match blocks are appended; LogLevel stays at INFO or above', () => {
    const defaults = ['Port 22', 'PasswordAuthentication yes', 'LogLevel VERBOSE', 'HostKey /a', 'HostKey /b'];
    expect(mergeSshdConfig(defaults, ['passwordauthentication no', 'ClientAliveInterval 1'])).toEqual([
      'Port 22',
      'LogLevel VERBOSE',
      'HostKey /a',
      'HostKey /b',
      'passwordauthentication no',
      'ClientAliveInterval 1',
    ]);
    expect(mergeSshdConfig(defaults, ['Match User bob', 'PasswordAuthentication no'])).toEqual([...defaults, 'Match User bob', 'PasswordAuthentication no']);
    expect(mergeSshdConfig(defaults, ['LogLevel ERROR'])).toContain('LogLevel INFO');
    expect(mergeSshdConfig(defaults, ['LogLevel DEBUG1'])).toContain('LogLevel DEBUG1');
  });

  it('sshd really uses them: sshd -T on the generated config, and DEBUG1 lines in the log', async () => {
    const server = await sshd({ config: ['PasswordAuthentication no', 'ClientAliveInterval 1', 'ClientAliveCountMax 1', 'LogLevel DEBUG1'] });
    const effective = execFileSync(SSHD_PATH, ['-T', '-f', join(server.dir, 'sshd_config')], { encoding: 'utf8' });
    expect(effective).toMatch(/^passwordauthentication no$/m);
    expect(effective).toMatch(/^clientaliveinterval 1$/m);
    expect(effective).toMatch(/^clientalivecountmax 1$/m);
    expect(effective).toMatch(/^loglevel DEBUG1?$/m); // sshd -T prints DEBUG1 as DEBUG
    expect(server.log()).toMatch(/debug1:/);
  });
});

describe('stop, start, restart', () => {
  it('keeps the port and the host keys; connections are refused while stopped', async () => {
    const server = await sshd();
    const { port, hostKeys } = server;
    const firstPid = server.pid;
    expect(await logonResult(server, { trustKey: hostKeys.ed25519 })).toBe(0);

    await server.stop();
    expect(server.running).toBe(false);
    await expect(connect(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await server.start();
    expect(server.pid).not.toBe(firstPid);
    expect(server.port).toBe(port);
    expect(server.hostKeys).toEqual(hostKeys);
    expect(await logonResult(server, { trustKey: hostKeys.ed25519 })).toBe(0);

    const secondPid = server.pid;
    await server.restart();
    expect(server.pid).not.toBe(secondPid);
    expect(await logonResult(server, { trustKey: hostKeys.ed25519 })).toBe(0);
    await expect(server.start()).rejects.toThrow(/already running/);
  });

  it('rebinds its port while a connection it closed is in TIME_WAIT there', async () => {
    const server = await sshd();
    const { dropped } = await loggedOn(server);
    // At once after the logon, while sshd may still be forking the session process: the
    // kill must catch that one too, or the connection would live on.
    await server.killSessions(); // sshd's side closes first, so it is the side that waits
    expect(await dropped).not.toBe(0);
    await pollUntil(() => tcpSockets().some((s) => s.localPort === server.port && s.state === 'TIME_WAIT'), 'a TIME_WAIT socket on the sshd port');
    await server.restart();
    expect(tcpSockets().some((s) => s.localPort === server.port && s.state === 'TIME_WAIT')).toBe(true); // still there, and sshd bound anyway
    expect(await logonResult(server)).toBe(0);
  });
});

describe('sessions', () => {
  it('killSessions ends an OpenSSH session and a revtun tunnel, and only those: the listener stays', async () => {
    const server = await sshd();
    const ssh = await sshSession(server);
    const { tunnel, dropped } = await loggedOn(server);
    // A request answered by the session process: sshd has finished replacing the
    // pre-authentication process, so the snapshot below is stable.
    await tunnel.requestForwarding('127.0.0.1', 0);
    const listener = server.pid;
    const sessions = server.sessionPids();
    // Each connection has a monitor process below the listener; the root session runs cat below its own.
    expect(sessions.length).toBeGreaterThanOrEqual(3);
    expect(sessions).not.toContain(listener);
    for (const pid of sessions) expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\((sshd|cat)\)/);

    const killed = await server.killSessions();
    expect(killed.sort()).toEqual([...sessions].sort());
    expect(await ssh.exited).toBe(255); // ssh's status for a connection the server dropped
    expect(await dropped).not.toBe(0);
    expect(server.sessionPids()).toEqual([]);
    expect(server.running).toBe(true);
    expect(server.pid).toBe(listener);
    expect(await logonResult(server)).toBe(0); // and it still accepts new connections
  });

  it("killSessions('SIGSTOP') freezes a session (requests wait at sshd) until killSessions('SIGCONT')", async () => {
    const server = await sshd();
    const { tunnel } = await loggedOn(server);
    await tunnel.requestForwarding('127.0.0.1', 0); // a stable snapshot, as above
    const frozen = await server.killSessions('SIGSTOP');
    for (const pid of frozen) expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\) T /);
    let answered = false;
    const request = tunnel.requestForwarding('127.0.0.1', 0).then((port) => {
      answered = true;
      return port;
    });
    // The request has reached sshd's socket and sits there unread.
    await pollUntil(() => (tcpSockets().find((s) => s.localPort === server.port && s.remotePort === tunnel.localPort)?.receiveQueue ?? 0) > 0, 'the request to reach sshd');
    expect(answered).toBe(false);
    await server.killSessions('SIGCONT');
    expect(await request).toBeGreaterThan(0);
    await tunnel.sshLogoff();
  });

  it('stop({ keepSessions }) leaves sessions running and still lists them; a plain stop kills them', async () => {
    const server = await sshd();
    const { tunnel, dropped } = await loggedOn(server);
    await tunnel.requestForwarding('127.0.0.1', 0); // see above: a stable snapshot
    const sessions = server.sessionPids();
    await server.restart({ keepSessions: true });
    expect(server.sessionPids().sort()).toEqual([...sessions].sort());
    // The old session still works: it can still get a forwarding from sshd.
    expect(await tunnel.requestForwarding('127.0.0.1', 0)).toBeGreaterThan(0);
    expect(tunnel.connected).toBe(true);
    await server.stop();
    expect(await dropped).not.toBe(0);
    expect(server.sessionPids()).toEqual([]);
  });
});

describe('who may log on', () => {
  it('replaceHostKeys: the running server keeps its keys; the next start presents the new ones', async () => {
    const server = await sshd();
    const old = server.hostKeys;
    const fresh = server.replaceHostKeys();
    expect(fresh.ed25519).not.toBe(old.ed25519);
    expect(server.hostKeys).toEqual(old);
    expect(await logonResult(server, { trustKey: old.ed25519 })).toBe(0);
    await server.restart();
    expect(server.hostKeys).toEqual(fresh);
    expect(await logonResult(server, { trustKey: old.ed25519 })).toBe(1030);
    expect(await logonResult(server, { trustKey: fresh.ed25519 })).toBe(0);
    expect(await logonResult(server)).toBe(0); // makeTunnel's fingerprints follow the new keys
  });

  it('setAuthorizedKeys takes effect at the next logon, without a restart, and leaves open sessions alone', async () => {
    const server = await sshd();
    const byKey = { privateKey: key.privatePath };
    const { tunnel } = await loggedOn(server, byKey);
    server.setAuthorizedKeys(TEST_USER, []);
    expect(await logonResult(server, byKey)).toBe(1032);
    expect(await tunnel.requestForwarding('127.0.0.1', 0)).toBeGreaterThan(0);
    server.setAuthorizedKeys(TEST_USER, [key.publicLine]);
    expect(await logonResult(server, byKey)).toBe(0);
    await tunnel.sshLogoff();
  });

  it('setConfig + restart turns password authentication off, and back on', async () => {
    const server = await sshd();
    expect(await logonResult(server)).toBe(0); // makeTunnel logs on with the password
    server.setConfig(['PasswordAuthentication no']);
    await server.restart();
    expect(await logonResult(server)).toBe(1032);
    expect(await logonResult(server, { privateKey: key.privatePath })).toBe(0);
    server.setConfig([]);
    await server.restart();
    expect(await logonResult(server)).toBe(0);
  });
});

afterAll(async () => {
  await stopAll(...started.splice(0));
});
