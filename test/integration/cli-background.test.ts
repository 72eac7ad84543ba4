// `revtun -f` against a real sshd: the command returns 0 only once its forwardings are up, and
// what it left behind (found by PID through /proc) is in a session of its own with /dev/null
// for standard input, holds none of the caller's pipes, serves the forwarding, and stops on
// SIGTERM. A refused forwarding keeps it in the foreground: 255 with the error and no process
// left. A password is asked for by the foreground process, before it returns.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { generateKey, TEST_PASSWORD, TEST_USER, startSshdWithEcho, stopAll, type EchoServer, type Sshd } from '../helpers/sshd.js';
import { listen, roundTrip } from '../helpers/streams.js';
import { processFacts, revtunProcesses, runRevtun, type Run } from '../helpers/cli.js';
import { pollUntil, tcpSockets } from '../helpers/kernel.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-cli-background-'));
const key = generateKey(dir, 'id_ed25519', 'ed25519');
let sshd: Sshd;
let echo: EchoServer;
beforeAll(async () => {
  ({ sshd, echo } = await startSshdWithEcho({ authorizedKeys: [key.publicLine] }));
});
afterAll(() => stopAll(echo, sshd));

/** Background processes a test left, by the known_hosts path unique to it: killed by PID. */
const markers: string[] = [];
afterEach(async () => {
  for (const marker of markers.splice(0)) {
    for (const pid of revtunProcesses(marker)) process.kill(pid, 'SIGKILL');
    await pollUntil(() => revtunProcesses(marker).length === 0, `the background revtun (${marker}) to go`);
  }
});

/** A known_hosts file for this test; its path also tells the test's revtun processes apart. */
function knownHosts(name: string): string {
  const path = join(dir, name);
  writeFileSync(path, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys.ed25519}\n`);
  markers.push(path);
  return path;
}

function revtun(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  return runRevtun(args, { HOME: dir, ...env });
}

describe('revtun -f', () => {
  it('returns 0 once the forwarding is up; the background process serves it, detached, and stops on SIGTERM', async () => {
    const known = knownHosts('kh-f');
    const run = revtun([
      '-f',
      '-N',
      '-p',
      String(sshd.port),
      '-i',
      key.privatePath,
      '-o',
      `UserKnownHostsFile=${known}`,
      '-o',
      'BatchMode=yes',
      '-R',
      `127.0.0.1:0:127.0.0.1:${echo.port}`,
      `${TEST_USER}@127.0.0.1`,
    ]);
    const port = Number((await run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
    expect(await run.exit).toBe(0);
    // Nothing of revtun holds the caller's stderr pipe any more, or this would never resolve.
    await run.closed;
    const [pid, ...others] = revtunProcesses(known);
    expect(others).toEqual([]);
    expect(pid).not.toBe(run.child.pid);
    const facts = processFacts(pid!);
    expect(facts.sessionId).toBe(pid); // a session leader: no controlling terminal of the caller's
    expect(facts.stdin).toBe('/dev/null');
    const data = randomBytes(200_000);
    expect((await roundTrip(port, data)).equals(data)).toBe(true);
    process.kill(pid!, 'SIGTERM');
    await pollUntil(() => revtunProcesses(known).length === 0, 'the background revtun to stop on SIGTERM');
    // It cancelled its forwarding before it went: sshd no longer listens there.
    expect(tcpSockets().some((s) => s.state === 'LISTEN' && s.localPort === port)).toBe(false);
  });

  it('a refused forwarding keeps it in the foreground: 255 with the error, and nothing left running', async () => {
    const busy = await listen(() => undefined);
    try {
      const known = knownHosts('kh-f-refused');
      const run = revtun([
        '-f',
        '-N',
        '-p',
        String(sshd.port),
        '-i',
        key.privatePath,
        '-o',
        `UserKnownHostsFile=${known}`,
        '-o',
        'BatchMode=yes',
        '-R',
        `127.0.0.1:${busy.port}:127.0.0.1:${echo.port}`,
        `${TEST_USER}@127.0.0.1`,
      ]);
      expect(await run.exit).toBe(255);
      await run.closed; // all of its stderr read
      expect(run.stderr()).toContain(`Error: remote port forwarding failed for listen port ${busy.port}`);
      expect(revtunProcesses(known)).toEqual([]);
    } finally {
      await busy.close();
    }
  });

  it('a failed logon is reported by the foreground process with 255', async () => {
    const known = knownHosts('kh-f-denied');
    const stranger = generateKey(dir, 'id_not_authorized', 'ed25519');
    const run = revtun([
      '-f',
      '-N',
      '-p',
      String(sshd.port),
      '-i',
      stranger.privatePath,
      '-o',
      `UserKnownHostsFile=${known}`,
      '-o',
      'BatchMode=yes',
      '-R',
      `127.0.0.1:0:127.0.0.1:${echo.port}`,
      `${TEST_USER}@127.0.0.1`,
    ]);
    expect(await run.exit).toBe(255);
    await run.closed; // all of its stderr read
    expect(run.stderr()).toMatch(/error 1032/);
    expect(revtunProcesses(known)).toEqual([]);
  });

  it('asks for the password from the foreground process, before it returns', async () => {
    const known = knownHosts('kh-f-password');
    const asked = join(dir, 'asked-by.txt');
    const askpass = join(dir, 'askpass.sh');
    // $PPID: the process that ran the askpass program.
    writeFileSync(askpass, `#!/bin/sh\necho "$PPID $1" >> ${asked}\nprintf '%s\\n' '${TEST_PASSWORD}'\n`);
    chmodSync(askpass, 0o755);
    const run = revtun(
      ['-f', '-N', '-p', String(sshd.port), '-o', `UserKnownHostsFile=${known}`, '-o', 'PubkeyAuthentication=no', '-R', `127.0.0.1:0:127.0.0.1:${echo.port}`, `${TEST_USER}@127.0.0.1`],
      {
        SSH_ASKPASS: askpass,
        SSH_ASKPASS_REQUIRE: 'force',
      },
    );
    const port = Number((await run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
    expect(await run.exit).toBe(0);
    expect(readFileSync(asked, 'utf8')).toBe(`${run.child.pid} ${TEST_USER}@127.0.0.1's password: \n`);
    expect((await roundTrip(port, Buffer.from('password'))).toString()).toBe('password');
    const [pid] = revtunProcesses(known);
    process.kill(pid!, 'SIGTERM');
    await pollUntil(() => revtunProcesses(known).length === 0, 'the background revtun to stop');
  });

  it('-f -vvv -E: nothing on stderr, and the log file goes on after the background process took over', async () => {
    const known = knownHosts('kh-f-logfile');
    const logFile = join(dir, 'background.log');
    const run = revtun([
      '-f',
      '-N',
      '-vvv',
      '-E',
      logFile,
      '-p',
      String(sshd.port),
      '-i',
      key.privatePath,
      '-o',
      `UserKnownHostsFile=${known}`,
      '-o',
      'BatchMode=yes',
      '-R',
      `127.0.0.1:0:127.0.0.1:${echo.port}`,
      `${TEST_USER}@127.0.0.1`,
    ]);
    expect(await run.exit).toBe(0);
    await run.closed;
    expect(run.stderr()).toBe('');
    const before = readFileSync(logFile, 'utf8');
    expect(before).toMatch(/Allocated port \d+ for remote forward[\s\S]*debug1: forking to background\n/);
    const port = Number(/Allocated port (\d+)/.exec(before)![1]);
    expect((await roundTrip(port, Buffer.from('logged later'))).toString()).toBe('logged later');
    const [pid] = revtunProcesses(known);
    process.kill(pid!, 'SIGTERM');
    await pollUntil(() => revtunProcesses(known).length === 0, 'the background revtun to stop');
    // What it logged in the background (the forwarded connection, the logoff) is in the file too.
    const after = readFileSync(logFile, 'utf8').slice(before.length);
    expect(after).toContain(`debug2: channel 0: connected to 127.0.0.1:${echo.port}`);
    expect(after).toMatch(/sent DISCONNECT/);
  });

  it('SIGINT to the foreground process while the child is still logging on ends both (status 130)', async () => {
    const silent = await listen(() => undefined); // accepts and never answers
    try {
      const known = knownHosts('kh-f-sigint');
      const run = revtun([
        '-f',
        '-N',
        '-v',
        '-p',
        String(silent.port),
        '-i',
        key.privatePath,
        '-o',
        `UserKnownHostsFile=${known}`,
        '-o',
        'BatchMode=yes',
        '-R',
        `127.0.0.1:0:127.0.0.1:${echo.port}`,
        `${TEST_USER}@127.0.0.1`,
      ]);
      await run.waitFor(/starting key exchange/);
      expect(revtunProcesses(known)).toHaveLength(2);
      run.child.kill('SIGINT');
      expect(await run.exit).toBe(130);
      expect(revtunProcesses(known)).toEqual([]);
    } finally {
      await silent.close();
    }
  });

  it('ForkAfterAuthentication yes in the config file does what -f does', async () => {
    const known = knownHosts('kh-fork-config');
    const config = join(dir, 'config-fork');
    markers.push(config);
    writeFileSync(
      config,
      [
        'Host gateway',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        `  User ${TEST_USER}`,
        `  IdentityFile ${key.privatePath}`,
        `  UserKnownHostsFile ${known}`,
        '  BatchMode yes',
        '  ForkAfterAuthentication yes',
        `  RemoteForward 127.0.0.1:0 127.0.0.1:${echo.port}`,
        '',
      ].join('\n'),
    );
    const run = revtun(['-F', config, '-N', 'gateway']);
    const port = Number((await run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
    expect(await run.exit).toBe(0);
    await run.closed;
    expect((await roundTrip(port, Buffer.from('from the config'))).toString()).toBe('from the config');
    const [pid, ...others] = revtunProcesses(config);
    expect(others).toEqual([]);
    expect(processFacts(pid!).sessionId).toBe(pid);
    process.kill(pid!, 'SIGTERM');
    await pollUntil(() => revtunProcesses(config).length === 0, 'the background revtun to stop');
  });

  it('-f with -G prints the configuration and does not fork', async () => {
    const run = revtun(['-f', '-G', '-F', 'none', '-R', '0:127.0.0.1:1', 'example.net']);
    let stdout = '';
    run.child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    expect(await run.exit).toBe(0);
    await run.closed;
    expect(stdout).toMatch(/^hostname example\.net$/m);
    expect(stdout).toMatch(/^forkafterauthentication yes$/m);
  });
});
