// UseIPv6 against names with several addresses. The tunnel runs inside a network namespace
// whose /etc/hosts (ip netns exec binds /etc/netns/<ns>/hosts over it) gives test names both
// families, with a real OpenSSH sshd listening only on the namespace's 127.0.0.1. An address
// whose frames go nowhere (2001:db8::99) never answers: only trying the next address alongside
// it (Happy Eyeballs) gets through in good time.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createNetns, type Netns } from '../helpers/netns.js';
import { startSshd, stopAll, TEST_PASSWORD, TEST_USER, type Sshd } from '../helpers/sshd.js';
import { fingerprintsOf } from '../helpers/tunnel.js';

let ns: Netns;
let sshd: Sshd;
let dir: string;
let script: string;

const hostsFile = (name: string) => `/etc/netns/${name}/hosts`;

beforeAll(async () => {
  ns = createNetns();
  mkdirSync(`/etc/netns/${ns.name}`, { recursive: true });
  writeFileSync(
    hostsFile(ns.name),
    [
      '127.0.0.1 localhost',
      '::1 dual.revtun.test', // nothing listens on ::1: refused at once
      '127.0.0.1 dual.revtun.test',
      '2001:db8::99 silent.revtun.test', // never answers
      '127.0.0.1 silent.revtun.test',
      '2001:db8::5 six.revtun.test', // (glibc answers an IPv4 lookup of a ::1 name with 127.0.0.1)
      '',
    ].join('\n'),
  );
  // No name server in the namespace: one that refuses at once, so that what /etc/hosts lacks fails fast.
  writeFileSync(`/etc/netns/${ns.name}/resolv.conf`, 'nameserver 127.0.0.1\noptions attempts:1 timeout:1\n');
  const ip = (...args: string[]) => execFileSync('ip', ['netns', 'exec', ns.name, 'ip', ...args], { stdio: 'pipe' });
  // 2001:db8::99 sits on the veth behind a made-up link-layer address: frames to it leave the
  // namespace and are dropped by the other end (not its MAC), so the connect never hears back.
  const veth = String(ip('-o', 'link', 'show')).split('\n').map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1]).find((name) => name && name !== 'lo')!;
  ip('-6', 'addr', 'add', '2001:db8::1/64', 'dev', veth, 'nodad');
  ip('-6', 'neigh', 'add', '2001:db8::99', 'lladdr', '02:00:00:00:00:99', 'dev', veth, 'nud', 'permanent');
  sshd = await startSshd({ netns: ns.name, listenAddress: '127.0.0.1' });
  dir = mkdtempSync(join(tmpdir(), 'revtun-family-'));
  script = join(dir, 'logon.mjs');
  // A logon from inside the namespace; prints what happened as one JSON line.
  writeFileSync(
    script,
    `import { SSHReverseTunnel } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
const [host, port, useIPv6] = process.argv.slice(2);
const t = new SSHReverseTunnel();
t.sshUser = ${JSON.stringify(TEST_USER)};
t.sshPassword = ${JSON.stringify(TEST_PASSWORD)};
t.timeout = 30;
t.config('SSHAcceptServerHostKeyFingerPrint=${fingerprintsOf(sshd).join(',')}');
t.config('UseIPv6=' + useIPv6);
t.config('LogLevel=2');
const logs = [];
t.on('log', (e) => logs.push(e.message));
try {
  await t.sshLogon(host, Number(port));
  const connected = t.connected;
  await t.sshLogoff();
  console.log(JSON.stringify({ connected, via: logs.find((l) => l.startsWith('connected to')) ?? null }));
} catch (e) {
  console.log(JSON.stringify({ code: e.code, message: e.message }));
}
`,
  );
});

afterAll(async () => {
  await stopAll(sshd);
  ns?.remove();
  rmSync(`/etc/netns/${ns?.name}`, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Outcome {
  connected?: boolean;
  via?: string | null;
  code?: number;
  message?: string;
}

function logonInside(host: string, useIPv6: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = ns.spawn(process.execPath, [script, host, String(sshd.port), String(useIPv6)]);
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('error', reject);
    child.once('exit', () => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as Outcome);
      } catch {
        reject(new Error(`no result from the namespace (stdout ${out}, stderr ${err})`));
      }
    });
  });
}

describe('UseIPv6 with names of both families (OpenSSH sshd on 127.0.0.1 only)', () => {
  it('2: an IPv6 address that refuses falls back to the IPv4 one (was 10061: only the first address was tried)', async () => {
    expect(await logonInside('dual.revtun.test', 2)).toEqual({ connected: true, via: `connected to dual.revtun.test:${sshd.port} at 127.0.0.1` });
  });

  it('2: an IPv6 address that never answers does not hold the logon: the IPv4 one is tried alongside it', async () => {
    expect(await logonInside('silent.revtun.test', 2)).toEqual({ connected: true, via: `connected to silent.revtun.test:${sshd.port} at 127.0.0.1` });
  });

  it('0 (the default) uses only the IPv4 address', async () => {
    expect(await logonInside('dual.revtun.test', 0)).toMatchObject({ connected: true });
  });

  it('1 uses only the IPv6 address: refused there, with no fallback to IPv4 (10061)', async () => {
    const outcome = await logonInside('dual.revtun.test', 1);
    expect(outcome.code).toBe(10061);
    expect(outcome.message).toContain('::1');
    expect(outcome.message).not.toContain('127.0.0.1');
  });

  it('0 with a name that has only an IPv6 address is 11004, naming the setting (was a lookup failure, 11002)', async () => {
    const outcome = await logonInside('six.revtun.test', 0);
    expect(outcome.code).toBe(11004);
    expect(outcome.message).toMatch(/no IPv4 address.*UseIPv6=0/);
  });

  it('a name the resolver cannot look up (no name server answers) is 11002, try again', async () => {
    expect((await logonInside('nowhere.revtun.test', 2)).code).toBe(11002);
  });
});
