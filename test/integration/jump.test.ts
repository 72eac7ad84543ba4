// Jump hosts (the library's jumpHosts; ssh's ProxyJump) against real OpenSSH sshds. The
// target listens on the loopback of a network namespace, which nothing outside it can reach:
// only a jump host inside the namespace (reached over a veth pair) can connect to it, so a
// tunnel that works went through the jump hosts. Data is checked by SHA-256 both ways.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';
import { generateKey, startSshd, stopAll, type EchoServer, type Sshd } from '../helpers/sshd.js';
import { echoServer, roundTrip } from '../helpers/streams.js';
import { createNetns, type Netns } from '../helpers/netns.js';
import { virtualScheduler } from '../helpers/clock.js';
import { openReverseTunnel, SSHReverseTunnel, SshAuthMode, SshError, type JumpHost, type TunnelStateEvent } from '../../ts/index.js';
import { fingerprintsOf } from '../helpers/tunnel.js';
import { runRevtun } from '../helpers/cli.js';
import { startDropbear } from '../helpers/peers.js';

const keys = mkdtempSync(join(tmpdir(), 'revtun-jump-'));
const key = generateKey(keys, 'id', 'ed25519');
const otherKey = generateKey(keys, 'other', 'ed25519');
const hostCa = generateKey(keys, 'host_ca', 'ed25519');
const otherCa = generateKey(keys, 'other_ca', 'ed25519');

let ns: Netns;
let jumpOutside: Sshd; // this namespace's loopback
let jumpInside: Sshd; // in the namespace, on its veth address
let target: Sshd; // in the namespace, on its loopback only
let echo: EchoServer;
let certifiedHop: Sshd; // in the namespace, on its veth address, with an ed25519 host certificate from hostCa

/** Signs the sshd's host key `name` with hostCa for the principal `principal`; the HostCertificate line. */
function certify(sshd: Sshd, name: string, principal: string): string {
  const keyPath = join(sshd.dir, name);
  execFileSync('ssh-keygen', ['-q', '-s', hostCa.privatePath, '-h', '-I', `${name}@bastion`, '-n', principal, `${keyPath}.pub`], { stdio: 'pipe' });
  return `HostCertificate ${keyPath}-cert.pub`;
}

beforeAll(async () => {
  ns = createNetns();
  const authorizedKeys = [key.publicLine];
  [jumpOutside, jumpInside, target, echo] = await Promise.all([
    startSshd({ authorizedKeys }),
    startSshd({ authorizedKeys, netns: ns.name, listenAddress: ns.inside }),
    // GatewayPorts lets the test reach the forwarded port on the namespace's veth address.
    startSshd({ authorizedKeys, netns: ns.name, config: ['GatewayPorts clientspecified'] }),
    echoServer(),
  ]);
  certifiedHop = await startSshd({ authorizedKeys, netns: ns.name, listenAddress: ns.inside, config: ['LogLevel DEBUG1'] });
  certifiedHop.setConfig(['LogLevel DEBUG1', certify(certifiedHop, 'host_ed25519', ns.inside)]);
  await certifiedHop.restart();
});
afterAll(async () => {
  await stopAll(jumpOutside, jumpInside, target, echo, certifiedHop);
  ns?.remove();
});

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const hop = (sshd: Sshd, extra: Partial<JumpHost> = {}): JumpHost => ({
  host: sshd.host,
  port: sshd.port,
  user: 'root',
  verifyHostKey: (info) => fingerprintsOf(sshd).includes(`SHA256:${info.fingerprints.sha256}`),
  ...extra,
});

function tunnelThrough(hops: JumpHost[], config: string[] = []): SSHReverseTunnel {
  const t = new SSHReverseTunnel();
  t.sshHost = target.host; // 127.0.0.1 as the last jump host sees it
  t.sshPort = target.port;
  t.sshUser = 'root';
  t.sshAuthMode = SshAuthMode.PublicKey;
  t.sshCertStore = key.privateText;
  t.config(`SSHAcceptServerHostKeyFingerPrint=${fingerprintsOf(target).join(',')}`);
  t.timeout = 30;
  t.jumpHosts = hops;
  for (const line of config) t.config(line);
  cleanup.push(() => t.reset());
  return t;
}

/** 1 MiB to the echo service through the forwarded port on the namespace's address, and back. */
async function carriesData(port: number): Promise<void> {
  const data = randomBytes(1024 * 1024);
  const back = await roundTrip(port, data, ns.inside);
  expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
}

function refusedDirectly(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}

describe('jump hosts', () => {
  it('the target is out of reach without a jump host', async () => {
    expect(await refusedDirectly(target.port)).toBe('ECONNREFUSED');
  });

  it('through one jump host: logs on, forwards, 1 MiB each way', async () => {
    const t = tunnelThrough([hop(jumpInside)]);
    const logs: string[] = [];
    t.config('LogLevel=2');
    t.on('log', (e) => logs.push(e.message));
    await t.sshLogon();
    const port = await t.requestForwarding(ns.inside, 0, '127.0.0.1', echo.port);
    await carriesData(port);
    expect(logs).toContain(`authenticated to jump host ${ns.inside}:${jumpInside.port}`);
    expect(jumpInside.log()).toMatch(/Accepted publickey for root from 10\.211\.\d+\.1/);
    expect(target.log()).toMatch(/Accepted publickey for root from 127\.0\.0\.1/);
  });

  it('through two jump hosts, each with its own host key check', async () => {
    const checked: string[] = [];
    const t = tunnelThrough([
      hop(jumpOutside, {
        verifyHostKey: (info) => {
          checked.push(`${info.hop}:${info.host}`);
          return fingerprintsOf(jumpOutside).includes(`SHA256:${info.fingerprints.sha256}`);
        },
      }),
      hop(jumpInside, {
        verifyHostKey: (info) => {
          checked.push(`${info.hop}:${info.host}`);
          return fingerprintsOf(jumpInside).includes(`SHA256:${info.fingerprints.sha256}`);
        },
      }),
    ]);
    await t.sshLogon();
    expect(checked).toEqual(['0:127.0.0.1', `1:${ns.inside}`]);
    const port = await t.requestForwarding(ns.inside, 0, '127.0.0.1', echo.port);
    await carriesData(port);
    await t.sshLogoff();
  });

  it('a jump host whose key is not trusted is refused (1030) before any credential reaches it', async () => {
    const from = jumpOutside.log().length;
    const t = tunnelThrough([hop(jumpOutside, { verifyHostKey: undefined, hostKey: otherKey.publicLine })]);
    const error = await t.sshLogon().then(
      () => null,
      (e: unknown) => e as { code: number; message: string },
    );
    expect(error?.code).toBe(1030);
    expect(error?.message).toContain(`jump host 127.0.0.1:${jumpOutside.port}`);
    await jumpOutside.waitForLog(/Disconnected from|Connection closed by/, from);
    const seen = jumpOutside.log().slice(from);
    expect(seen).not.toMatch(/Accepted|Failed|Postponed|authenticating user|invalid user/);
  });

  it('with neither hostKey nor verifyHostKey, the jump host is refused', async () => {
    const t = tunnelThrough([{ host: jumpOutside.host, port: jumpOutside.port, user: 'root' }]);
    await expect(t.sshLogon()).rejects.toMatchObject({ code: 1030 });
  });

  it("a jump host that cannot reach the next host: 1020 with the server's reason", async () => {
    // From this namespace, the target's port on 127.0.0.1 has no listener.
    const t = tunnelThrough([hop(jumpOutside)]);
    const error = await t.sshLogon().then(
      () => null,
      (e: unknown) => e as { code: number; message: string },
    );
    expect(error?.code).toBe(1020);
    expect(error?.message).toMatch(new RegExp(`jump host 127\\.0\\.0\\.1:${jumpOutside.port}: cannot reach the next host through it: .*(refused|failed)`, 'i'));
  });

  it('Dropbear as the first jump host (password), OpenSSH as the second', async () => {
    const dropbear = await startDropbear();
    cleanup.push(() => dropbear.stop());
    const t = tunnelThrough([{ host: dropbear.host, port: dropbear.port, user: 'revtuntest', password: 'correct horse battery staple', hostKey: dropbear.hostKey }, hop(jumpInside)]);
    await t.sshLogon();
    const port = await t.requestForwarding(ns.inside, 0, '127.0.0.1', echo.port);
    await carriesData(port);
  });

  it("a jump host is never given the server's password: a hop without credentials of its own borrows only keys", async () => {
    // A bastion that takes passwords only; the tunnel has a key and the test user's password.
    const passwordsOnly = await startSshd({ config: ['AuthenticationMethods password', 'LogLevel DEBUG1'] });
    cleanup.push(() => passwordsOnly.stop());
    const t = tunnelThrough([{ ...hop(passwordsOnly), user: 'revtuntest' }]);
    t.sshAuthMode = SshAuthMode.MultiFactor;
    t.sshPassword = 'correct horse battery staple';
    const prompts: string[] = [];
    t.on('sshKeyboardInteractive', (e) => prompts.push(e.prompt));
    const from = passwordsOnly.log().length;
    await expect(t.sshLogon()).rejects.toMatchObject({ code: 1032, message: expect.stringContaining(`jump host 127.0.0.1:${passwordsOnly.port}`) });
    await passwordsOnly.waitForLog(/Disconnected from|Connection closed by/, from);
    expect(passwordsOnly.log().slice(from)).not.toMatch(/Accepted password|Failed password/);
    expect(prompts).toEqual([]);
  });

  it('a tunnel with only a password and a hop without credentials is refused before connecting (10022)', async () => {
    const t = tunnelThrough([{ host: jumpOutside.host, port: jumpOutside.port, user: 'root', hostKey: jumpOutside.hostKeys.ed25519 }]);
    t.sshCertStore = '';
    t.sshAuthMode = SshAuthMode.Password;
    t.sshPassword = 'a secret';
    await expect(t.sshLogon()).rejects.toMatchObject({ code: 10022, message: expect.stringContaining("never given the server's password") });
  });

  it('openReverseTunnel takes jumpHosts, each with its own host key', async () => {
    const opened = await openReverseTunnel({
      host: target.host,
      port: target.port,
      username: 'root',
      privateKey: key.privateText,
      hostKey: target.hostKeys.ed25519,
      jumpHosts: [{ host: jumpInside.host, port: jumpInside.port, user: 'root', hostKey: jumpInside.hostKeys.ed25519 }],
      remote: { address: ns.inside, port: 0 },
      local: { host: '127.0.0.1', port: echo.port },
      // Only ed25519, so that each hostKey above names the key the server presents.
      config: ['SSHPublicKeyAlgorithms=ssh-ed25519'],
    });
    cleanup.push(() => opened.close());
    await carriesData(opened.port);
  });

  it("the hop's own credentials: a password for the jump host, the key for the target", async () => {
    const t = tunnelThrough([hop(jumpInside, { user: 'revtuntest', password: 'correct horse battery staple' })]);
    await t.sshLogon();
    expect(jumpInside.log()).toMatch(/Accepted password for revtuntest/);
    await t.sshLogoff();
  });

  it('reconnects through the chain when the target session dies, and when the jump host session dies', async () => {
    const clock = virtualScheduler(0);
    // No keep-alives: the end of a connection carried by a jump host must be seen from the
    // channel's EOF and CLOSE (a half-open transport once waited for keep-alives to fail).
    const t = tunnelThrough([hop(jumpOutside), hop(jumpInside)], ['SSHKeepAliveInterval=0']);
    t.scheduler = clock;
    const states: TunnelStateEvent['state'][] = [];
    t.on('tunnelState', (e) => states.push(e.state));
    const next = (state: TunnelStateEvent['state']) =>
      new Promise<void>((resolve) => {
        const on = (e: TunnelStateEvent) => {
          if (e.state === state) {
            t.off('tunnelState', on);
            resolve();
          }
        };
        t.on('tunnelState', on);
      });
    await t.sshLogon();
    const port = await t.requestForwarding(ns.inside, 0, '127.0.0.1', echo.port);
    await carriesData(port);
    const logons = () => (jumpInside.log().match(/Accepted publickey for root/g) ?? []).length;
    const before = logons();

    let up = next('up');
    await target.killSessions();
    await clock.nextWait();
    clock.pass();
    await up;
    expect(logons()).toBe(before + 1); // the chain was run again
    await carriesData(port);

    up = next('up');
    await jumpInside.killSessions(); // the hop dies: the target connection carried in it goes too
    await clock.nextWait();
    clock.pass();
    await up;
    expect(logons()).toBe(before + 2);
    await carriesData(port);
    expect(states.filter((s) => s === 'down')).toHaveLength(2);
  });
});

describe('a jump host with a host certificate (caKeys)', () => {
  const caHop = (extra: Partial<JumpHost> = {}): JumpHost => ({ host: certifiedHop.host, port: certifiedHop.port, user: 'root', caKeys: hostCa.publicLine, ...extra });

  it('is trusted for its CA without its key being given, and is asked for its certificate first', async () => {
    const from = certifiedHop.log().length;
    const t = tunnelThrough([caHop()]);
    await t.sshLogon();
    const port = await t.requestForwarding(ns.inside, 0, '127.0.0.1', echo.port);
    await carriesData(port);
    const log = certifiedHop.log().slice(from);
    expect(log).toMatch(/kex: host key algorithm: ssh-ed25519-cert-v01@openssh\.com/);
    expect(log).toMatch(/Accepted publickey for root/);
    await t.sshLogoff();
  });

  it('a certificate from a CA it does not list is refused (1030), saying so, before any credential reaches the hop', async () => {
    const from = certifiedHop.log().length;
    const t = tunnelThrough([caHop({ caKeys: otherCa.publicLine })]);
    const error = await t.sshLogon().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).code).toBe(1030);
    expect((error as SshError).message).toMatch(
      new RegExp(
        `^jump host ${ns.inside.replaceAll('.', '\\.')}:${certifiedHop.port}: the host certificate \\(ssh-ed25519 SHA256:\\S+\\) was not accepted: the host certificate is signed by a CA that is not trusted \\(ssh-ed25519 SHA256:`,
      ),
    );
    await certifiedHop.waitForLog(/Disconnected from|Connection closed by/, from);
    expect(certifiedHop.log().slice(from)).not.toMatch(/userauth-request|Accepted|Failed/);
  });

  it('a plain key where a certificate was expected is refused, saying so; hostKey still trusts the key', async () => {
    // jumpInside has no certificate: with caKeys alone it is refused, with its key given it is taken.
    const refused = await tunnelThrough([hop(jumpInside, { caKeys: hostCa.publicLine, verifyHostKey: () => false })])
      .sshLogon()
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect((refused as SshError).code).toBe(1030);
    expect((refused as SshError).message).toMatch(/the host key \(ssh-ed25519 SHA256:\S+\) was not accepted: it is a plain key, not a certificate from a CA of caKeys/);
    const t = tunnelThrough([hop(jumpInside, { caKeys: hostCa.publicLine, verifyHostKey: undefined, hostKey: jumpInside.hostKeys.ed25519 })]);
    await t.sshLogon();
    expect(t.connected).toBe(true);
    await t.sshLogoff();
  });

  it('a CA key that does not decode is 10022 naming the hop, before connecting', async () => {
    const error = await tunnelThrough([caHop({ caKeys: 'ssh-ed25519 not-base64!' })])
      .sshLogon()
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect((error as SshError).code).toBe(10022);
    expect((error as SshError).message).toMatch(new RegExp(`^jump host ${ns.inside.replaceAll('.', '\\.')}:${certifiedHop.port}: caKeys: CA key 1 `));
    const notText = await tunnelThrough([caHop({ caKeys: [hostCa.publicLine] as unknown as string })])
      .sshLogon()
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect((notText as SshError).code).toBe(10022);
    expect((notText as SshError).message).toMatch(/caKeys must be text/);
  });

  it('is judged again at each reconnect: the hop may rotate its key under a new certificate', async () => {
    const clock = virtualScheduler(0);
    const t = tunnelThrough([caHop()], ['SSHKeepAliveInterval=0']);
    t.scheduler = clock;
    await t.sshLogon();
    const port = await t.requestForwarding(ns.inside, 0, '127.0.0.1', echo.port);
    // Up again, or closed for good (a refused key is final).
    const settled = new Promise<TunnelStateEvent>((resolve) => {
      const on = (e: TunnelStateEvent) => {
        if (e.state !== 'up' && e.state !== 'closed') return;
        t.off('tunnelState', on);
        resolve(e);
      };
      t.on('tunnelState', on);
    });
    // A new host key for the bastion, certified by the same CA: a pinned key would refuse it.
    const before = certifiedHop.hostKeys.ed25519;
    certifiedHop.replaceHostKeys();
    certifiedHop.setConfig(['LogLevel DEBUG1', certify(certifiedHop, 'host_ed25519_1', ns.inside)]);
    await certifiedHop.restart();
    expect(certifiedHop.hostKeys.ed25519).not.toBe(before);
    await clock.nextWait();
    clock.pass();
    expect((await settled).state).toBe('up');
    await carriesData(port);
    await t.sshLogoff();
  });
});

describe('revtun -J and ProxyJump in ssh_config', () => {
  /** A config where `target` is reached through hop2, and hop2 (by its own ProxyJump) through hop1. */
  function writeConfig(name: string, knownHosts: string[], extra: string[] = []): string {
    const kh = join(keys, `${name}_known_hosts`);
    writeFileSync(kh, knownHosts.join('\n') + '\n');
    const file = join(keys, name);
    writeFileSync(
      file,
      [
        'Host target',
        '  HostName 127.0.0.1',
        `  Port ${target.port}`,
        '  User root',
        `  IdentityFile ${key.privatePath}`,
        '  ProxyJump hop2',
        `  RemoteForward ${ns.inside}:0 127.0.0.1:${echo.port}`,
        'Host hop2',
        `  HostName ${ns.inside}`,
        `  Port ${jumpInside.port}`,
        '  ProxyJump hop1',
        'Host hop1',
        '  HostName 127.0.0.1',
        `  Port ${jumpOutside.port}`,
        ...extra,
        'Host *',
        '  User root',
        `  IdentityFile ${key.privatePath}`,
        `  UserKnownHostsFile ${kh}`,
        '  StrictHostKeyChecking yes',
        '  BatchMode yes',
      ].join('\n') + '\n',
    );
    return file;
  }
  const known = () => [
    `[127.0.0.1]:${target.port} ${target.hostKeys.ed25519}`,
    `[${ns.inside}]:${jumpInside.port} ${jumpInside.hostKeys.ed25519}`,
    `[127.0.0.1]:${jumpOutside.port} ${jumpOutside.hostKeys.ed25519}`,
  ];

  it("revtun -F file -N alias: ProxyJump, and the first hop's own ProxyJump, lead to the target", async () => {
    const config = writeConfig('config_chain', known());
    const from = { outside: jumpOutside.log().length, inside: jumpInside.log().length };
    const run = runRevtun(['-F', config, '-N', 'target']);
    cleanup.push(() => run.child.kill('SIGKILL'));
    const port = Number((await run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
    await carriesData(port);
    expect(jumpOutside.log().slice(from.outside)).toMatch(/Accepted publickey for root/);
    expect(jumpInside.log().slice(from.inside)).toMatch(/Accepted publickey for root/);
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
  });

  it("-J user@host:port on the command line, with the hop's settings from the config", async () => {
    const config = writeConfig('config_cli', known());
    const run = runRevtun(['-F', config, '-J', `root@${ns.inside}:${jumpInside.port}`, '-N', '-R', `${ns.inside}:0:127.0.0.1:${echo.port}`, '-p', String(target.port), 'root@127.0.0.1']);
    cleanup.push(() => run.child.kill('SIGKILL'));
    const port = Number((await run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
    await carriesData(port);
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
  });

  it('a jump host whose key changed is refused before any credential reaches it, naming the hop', async () => {
    const lines = known();
    lines[1] = `[${ns.inside}]:${jumpInside.port} ${otherKey.publicLine}`;
    const config = writeConfig('config_badkey', lines);
    const from = jumpInside.log().length;
    const run = runRevtun(['-F', config, '-N', 'target']);
    expect(await run.exit).toBe(255);
    expect(run.stderr()).toContain(`revtun: jump host ${ns.inside}:${jumpInside.port}: WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!`);
    await jumpInside.waitForLog(/Disconnected from|Connection closed by/, from);
    expect(jumpInside.log().slice(from)).not.toMatch(/Accepted|Failed|Postponed|authenticating user/);
  });

  it('a jump host with a host certificate is trusted through a @cert-authority line, its key unknown; another CA is refused', async () => {
    const write = (name: string, caLine: string) => {
      const kh = join(keys, `${name}_known_hosts`);
      writeFileSync(kh, [`[127.0.0.1]:${target.port} ${target.hostKeys.ed25519}`, `@cert-authority [${ns.inside}]:* ${caLine}`].join('\n') + '\n');
      const file = join(keys, name);
      writeFileSync(
        file,
        [
          'Host target',
          '  HostName 127.0.0.1',
          `  Port ${target.port}`,
          '  ProxyJump bastion',
          `  RemoteForward ${ns.inside}:0 127.0.0.1:${echo.port}`,
          'Host bastion',
          `  HostName ${ns.inside}`,
          `  Port ${certifiedHop.port}`,
          'Host *',
          '  User root',
          `  IdentityFile ${key.privatePath}`,
          `  UserKnownHostsFile ${kh}`,
          '  StrictHostKeyChecking yes',
          '  BatchMode yes',
        ].join('\n') + '\n',
      );
      return file;
    };
    const from = certifiedHop.log().length;
    const run = runRevtun(['-F', write('config_ca', hostCa.publicLine), '-N', 'target']);
    cleanup.push(() => run.child.kill('SIGKILL'));
    const port = Number((await run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
    await carriesData(port);
    expect(certifiedHop.log().slice(from)).toMatch(/kex: host key algorithm: ssh-ed25519-cert-v01@openssh\.com/);
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);

    const refused = runRevtun(['-F', write('config_other_ca', otherCa.publicLine), '-N', 'target']);
    expect(await refused.exit).toBe(255);
    expect(refused.stderr()).toContain(`revtun: jump host ${ns.inside}:${certifiedHop.port}: `);
    expect(refused.stderr()).toMatch(/Host certificate refused: the host certificate is signed by a CA that is not trusted \(ssh-ed25519 SHA256:\S+\)\. No ssh-ed25519 host key is known for/);
  });

  it('a bad -J value is a usage error', async () => {
    const run = runRevtun(['-J', 'root@', '-N', '-R', '1:h:2', 'host']);
    expect(await run.exit).toBe(255);
    expect(run.stderr()).toContain('Invalid ProxyJump "root@"');
  });
});
