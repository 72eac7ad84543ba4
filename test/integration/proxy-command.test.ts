// ProxyCommand with real commands (netcat-openbsd's nc, and a wrapper that records that it ran
// and with what): tokens expanded as ssh does, the command killed when the tunnel ends, run
// again on reconnect, and its early exit a clear error.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, startSshd, TEST_USER, type Sshd } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { echoServer, roundTrip } from '../helpers/streams.js';
import { runRevtun } from '../helpers/cli.js';
import { pollUntil } from '../helpers/kernel.js';
import type { TunnelStateEvent } from '../../ts/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-proxycommand-'));
const key = generateKey(dir, 'id_ed25519', 'ed25519');
let sshd: Sshd;
let echo: Awaited<ReturnType<typeof echoServer>>;
beforeAll(async () => {
  sshd = await startSshd({ authorizedKeys: [key.publicLine] });
  echo = await echoServer();
});
afterAll(async () => {
  await echo?.close();
  await sshd?.stop();
});

/** A ProxyCommand wrapper that appends "pid args…" to `marker`, then becomes nc (same pid). */
function wrapper(name: string): { script: string; marker: string; runs: () => string[][] } {
  const marker = join(dir, `${name}.runs`);
  const script = join(dir, `${name}.sh`);
  writeFileSync(script, `echo "$$ $*" >> ${marker}\nexec nc "$1" "$2"\n`, { mode: 0o755 });
  return {
    script,
    marker,
    runs: () =>
      existsSync(marker)
        ? readFileSync(marker, 'utf8')
            .trim()
            .split('\n')
            .map((l) => l.split(' '))
        : [],
  };
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

describe('ProxyCommand', () => {
  it('nc %h %p carries the connection; %r %n %% expand as in ssh; the command ends with the tunnel', async () => {
    const w = wrapper('library');
    const t = makeTunnel(sshd, { privateKey: key.privateText, user: TEST_USER });
    t.proxyCommand = `sh ${w.script} %h %p %r %n %%`;
    await t.sshLogon();
    const port = await t.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
    expect((await roundTrip(port, Buffer.from('via nc'))).toString()).toBe('via nc');
    const [[pid, ...args]] = w.runs() as [string[]];
    expect(args).toEqual([sshd.host, String(sshd.port), TEST_USER, sshd.host, '%']);
    expect(alive(Number(pid))).toBe(true);
    await t.sshLogoff();
    await pollUntil(() => !alive(Number(pid)), 'the ProxyCommand to exit');
  });

  it('a reconnect runs the ProxyCommand again (nc hides that the server closed: keep-alive finds it)', async () => {
    const own = await startSshd({ authorizedKeys: [key.publicLine] });
    try {
      const w = wrapper('reconnect');
      const t = makeTunnel(own, { privateKey: key.privateText, user: TEST_USER, config: ['RetryInterval=0', 'SSHKeepAliveInterval=1', 'SSHKeepAliveCountMax=1'] });
      t.proxyCommand = `sh ${w.script} %h %p`;
      await t.sshLogon();
      const port = await t.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
      const up = new Promise<void>((resolve) => t.on('tunnelState', (e: TunnelStateEvent) => e.state === 'up' && resolve()));
      await own.killSessions();
      await up;
      expect((await roundTrip(port, Buffer.from('again'))).toString()).toBe('again');
      expect(w.runs()).toHaveLength(2);
      await t.sshLogoff();
    } finally {
      await own.stop();
    }
  });

  it('a command that exits before SSH starts fails the logon with its status; an unknown token is 10022', async () => {
    const t = makeTunnel(sshd, { privateKey: key.privateText, user: TEST_USER, config: ['AutoReconnect=0'] });
    t.proxyCommand = 'exit 3';
    await expect(t.sshLogon()).rejects.toThrow(/the ProxyCommand exited \(status 3\)/);
    t.proxyCommand = 'nc %h %q';
    await expect(t.sshLogon()).rejects.toMatchObject({ code: 10022 });
    t.proxyCommand = 'none';
    await t.sshLogon(); // "none" is a direct connection, as in ssh
    await t.sshLogoff();
  });

  it('the CLI takes -o ProxyCommand=… and ends the command on SIGTERM', async () => {
    const w = wrapper('cli');
    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, `[${sshd.host}]:${sshd.port} ${sshd.hostKeys.ed25519}\n`);
    const run = runRevtun(
      [
        '-N',
        '-p',
        String(sshd.port),
        '-i',
        key.privatePath,
        '-o',
        `UserKnownHostsFile=${knownHosts}`,
        '-o',
        'BatchMode=yes',
        '-o',
        `ProxyCommand=sh ${w.script} %h %p`,
        '-R',
        `127.0.0.1:0:127.0.0.1:${echo.port}`,
        `${TEST_USER}@${sshd.host}`,
      ],
      { HOME: dir },
    );
    try {
      const port = Number((await run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
      expect((await roundTrip(port, Buffer.from('cli'))).toString()).toBe('cli');
      const [[pid]] = w.runs() as [string[]];
      run.child.kill('SIGTERM');
      expect(await run.exit).toBe(0);
      await pollUntil(() => !alive(Number(pid)), 'the ProxyCommand to exit');
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    }
  });
});
