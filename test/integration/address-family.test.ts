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
let dns: NameServer;

/**
 * A name server inside the namespace (a child process: the test's own process cannot bind in
 * there): answers flaky.revtun.test with 127.0.0.1, anything else with NXDOMAIN, and drops as
 * many queries as it is told to first.
 */
interface NameServer {
  /** Drop the next `count` queries (Infinity: all, until told otherwise). */
  drop(count: number): Promise<void>;
  /** Queries dropped so far. */
  dropped(): Promise<number>;
  stop(): void;
}

const NAME_SERVER = `import dgram from 'node:dgram';
import readline from 'node:readline';
let drop = 0;
let dropped = 0;
const server = dgram.createSocket('udp4');
server.on('message', (query, peer) => {
  if (drop > 0) { drop--; dropped++; return; }
  let at = 12;
  const labels = [];
  while (query[at]) { labels.push(query.subarray(at + 1, at + 1 + query[at]).toString()); at += query[at] + 1; }
  const type = query.readUInt16BE(at + 1);
  const question = query.subarray(12, at + 5);
  const known = labels.join('.').toLowerCase() === 'flaky.revtun.test';
  const answer = known && type === 1 ? Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]) : Buffer.alloc(0);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  header.writeUInt16BE(0x8180 | (known ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answer.length > 0 ? 1 : 0, 6);
  server.send(Buffer.concat([header, question, answer]), peer.port, peer.address);
});
server.bind(53, '127.0.0.53', () => console.log('ready'));
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, count] = line.split(' ');
  if (command === 'drop') drop = count === 'all' ? Infinity : Number(count);
  console.log('ok ' + dropped);
});
`;

async function startNameServer(path: string): Promise<NameServer> {
  writeFileSync(path, NAME_SERVER);
  const child = ns.spawn(process.execPath, [path]);
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    for (let i = partial.indexOf('\n'); i >= 0; i = partial.indexOf('\n')) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      const waiter = waiters.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    }
  });
  const nextLine = () => new Promise<string>((resolve) => (lines.length > 0 ? resolve(lines.shift()!) : waiters.push(resolve)));
  expect(await nextLine()).toBe('ready');
  const ask = async (line: string) => {
    child.stdin!.write(`${line}\n`);
    return Number((await nextLine()).split(' ')[1]);
  };
  return {
    drop: async (count) => void (await ask(`drop ${count === Infinity ? 'all' : count}`)),
    dropped: () => ask('count'),
    stop: () => child.kill(),
  };
}

const hostsFile = (name: string) => `/etc/netns/${name}/hosts`;

beforeAll(async () => {
  ns = createNetns();
  mkdirSync(`/etc/netns/${ns.name}`, { recursive: true });
  writeFileSync(
    hostsFile(ns.name),
    [
      '127.0.0.1 localhost',
      '::1 localhost',
      '::1 dual.revtun.test', // nothing listens on ::1: refused at once
      '127.0.0.1 dual.revtun.test',
      '2001:db8::99 silent.revtun.test', // never answers
      '127.0.0.1 silent.revtun.test',
      '2001:db8::5 six.revtun.test', // (glibc answers an IPv4 lookup of a ::1 name with 127.0.0.1)
      '127.0.0.3 multi4.revtun.test', // refuses
      '127.0.0.1 multi4.revtun.test',
      '2001:db8::99 gone.revtun.test', // never answers
      '127.0.0.3 gone.revtun.test', // refuses
      '',
    ].join('\n'),
  );
  // The namespace's name server is the test's own (./dns below): what /etc/hosts lacks goes there.
  writeFileSync(`/etc/netns/${ns.name}/resolv.conf`, 'nameserver 127.0.0.53\noptions attempts:1 timeout:1\n');
  const ip = (...args: string[]) => execFileSync('ip', ['netns', 'exec', ns.name, 'ip', ...args], { stdio: 'pipe' });
  // 2001:db8::99 sits on the veth behind a made-up link-layer address: frames to it leave the
  // namespace and are dropped by the other end (not its MAC), so the connect never hears back.
  const veth = String(ip('-o', 'link', 'show'))
    .split('\n')
    .map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1])
    .find((name) => name && name !== 'lo')!;
  ip('-6', 'addr', 'add', '2001:db8::1/64', 'dev', veth, 'nodad');
  ip('-6', 'neigh', 'add', '2001:db8::99', 'lladdr', '02:00:00:00:00:99', 'dev', veth, 'nud', 'permanent');
  sshd = await startSshd({ netns: ns.name, listenAddress: '127.0.0.1' });
  dir = mkdtempSync(join(tmpdir(), 'revtun-family-'));
  dns = await startNameServer(join(dir, 'name-server.mjs'));
  script = join(dir, 'logon.mjs');
  // A logon from inside the namespace; prints what happened as one JSON line.
  writeFileSync(
    script,
    `import { SSHReverseTunnel } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
const [host, port, useIPv6, localHost, connectionTimeout] = process.argv.slice(2);
const t = new SSHReverseTunnel();
t.sshUser = ${JSON.stringify(TEST_USER)};
t.sshPassword = ${JSON.stringify(TEST_PASSWORD)};
t.timeout = 30;
t.config('SSHAcceptServerHostKeyFingerPrint=${fingerprintsOf(sshd).join(',')}');
t.config('UseIPv6=' + useIPv6);
t.config('LogLevel=2');
if (localHost) t.localHost = localHost;
if (connectionTimeout) t.config('ConnectionTimeout=' + connectionTimeout);
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
  dns?.stop();
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

function logonInside(host: string, useIPv6: number, localHost = '', connectionTimeout = ''): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = ns.spawn(process.execPath, [script, host, String(sshd.port), String(useIPv6), localHost, connectionTimeout]);
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

  it('0 (the default) uses only the IPv4 address: the silent IPv6 one is never tried', async () => {
    expect(await logonInside('silent.revtun.test', 0)).toEqual({ connected: true, via: `connected to silent.revtun.test:${sshd.port} at 127.0.0.1` });
  });

  it('every address of the family is tried, with LocalHost set too (was the first only: Node ignores autoSelectFamily with a local address)', async () => {
    expect(await logonInside('multi4.revtun.test', 0, '127.0.0.1')).toEqual({ connected: true, via: `connected to multi4.revtun.test:${sshd.port} at 127.0.0.1` });
  });

  it('a LocalHost name of both families binds per address: localhost reaches the IPv4 server from 127.0.0.1 (was 10047, pinned to ::1)', async () => {
    expect(await logonInside('dual.revtun.test', 2, 'localhost')).toEqual({ connected: true, via: `connected to dual.revtun.test:${sshd.port} at 127.0.0.1` });
  });

  it('an address that has not answered yet is not given up when a later one fails: the logon waits for it until ConnectionTimeout (was abandoned after 250 ms)', async () => {
    // 2001:db8::99 never answers and 127.0.0.3 refuses: only the connection deadline ends the wait.
    const outcome = await logonInside('gone.revtun.test', 2, '', '2');
    expect(outcome.code).toBe(301);
  });

  it('a literal address of a family the setting excludes is 10047, as ssh -4 refuses an IPv6 one', async () => {
    const outcome = await logonInside('::1', 0);
    expect(outcome.code).toBe(10047);
    expect(outcome.message).toMatch(/UseIPv6=0/);
  });

  it('a first DNS answer that is lost does not end in 11004: the retry finds the IPv4 address and the logon goes on (was 11004, final)', async () => {
    const before = await dns.dropped();
    await dns.drop(1);
    expect(await logonInside('flaky.revtun.test', 0)).toEqual({ connected: true, via: `connected to flaky.revtun.test:${sshd.port} at 127.0.0.1` });
    expect(await dns.dropped()).toBe(before + 1);
  });

  it('1 uses only the IPv6 address: refused there, with no fallback to IPv4 (10061, the attempt named)', async () => {
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

  it('a name the resolver cannot look up (its name server does not answer) is 11002, try again', async () => {
    await dns.drop(Infinity);
    try {
      expect((await logonInside('nowhere.revtun.test', 2)).code).toBe(11002);
    } finally {
      await dns.drop(0);
    }
  });

  it('a name the name server does not know is 11001, not found', async () => {
    expect((await logonInside('nowhere.revtun.test', 2)).code).toBe(11001);
  });
});
