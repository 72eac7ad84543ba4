// Reaching sshd through real proxies started on loopback: tinyproxy (HTTP CONNECT with Basic
// auth), dante (SOCKS4, SOCKS5), OpenSSH's `ssh -D` (SOCKS4A, names resolved by the proxy) and
// microsocks (SOCKS5 with user and password), set through the documented Firewall* settings, a
// proxy URL, or the environment (FirewallAutoDetect). A reconnect goes through the proxy again.
// tinyproxy's refusals (401, 403, 500, 502) are errors that name the proxy and its status line.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as http from 'node:http';
import * as net from 'node:net';
import { inspect } from 'node:util';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, generateKey, startSshd, TEST_USER, type Sshd } from '../helpers/sshd.js';
import { isFinal } from '../../ts/tunnel/reconnect.js';
import { pollUntil } from '../helpers/kernel.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { echoServer, roundTrip } from '../helpers/streams.js';
import { startDante, startMicrosocks, startSshDynamic, startTinyproxy, type RunningProxy } from '../helpers/proxies.js';
import { openReverseTunnel, SshError, type SSHReverseTunnel, type TunnelStateEvent } from '../../ts/index.js';

const key = generateKey(mkdtempSync(join(tmpdir(), 'revtun-proxy-')), 'id', 'ed25519');
const PROXY_PASSWORD = 'pr0xy-s3cret';
let sshd: Sshd;
let echo: Awaited<ReturnType<typeof echoServer>>;
let tinyproxy: RunningProxy;
let dante: RunningProxy;
let microsocks: RunningProxy;
/** A loopback port nothing listens on. */
let closedPort: number;
beforeAll(async () => {
  closedPort = await freePort();
  sshd = await startSshd({ authorizedKeys: [key.publicLine] });
  echo = await echoServer();
  tinyproxy = await startTinyproxy({ user: 'alice', password: PROXY_PASSWORD });
  dante = await startDante();
  microsocks = await startMicrosocks({ user: 'bob', password: PROXY_PASSWORD });
});
afterAll(async () => {
  for (const thing of [tinyproxy, dante, microsocks, echo, sshd]) await (thing && ('stop' in thing ? thing.stop() : thing.close()));
});

/** A tunnel with `settings`, logged on with the key, that records what it logs at LogLevel 3. */
function proxied(settings: string[]): { t: SSHReverseTunnel; logged: string[] } {
  const t = makeTunnel(sshd, { privateKey: key.privateText, user: TEST_USER, config: ['LogLevel=3', ...settings] });
  const logged: string[] = [];
  t.on('log', (e) => logged.push(e.message));
  t.on('connectionStatus', (e) => logged.push(`status: ${e.connectionEvent}`));
  t.on('error', (e) => logged.push(`error: ${e.description}`));
  return { t, logged };
}

async function forwardsData(t: SSHReverseTunnel): Promise<void> {
  const port = await t.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
  expect((await roundTrip(port, Buffer.from('through the proxy'))).toString()).toBe('through the proxy');
}

const proxyPort = (p: RunningProxy) => `FirewallPort=${p.port}`;

describe('proxies', () => {
  it('HTTP CONNECT through tinyproxy with Basic auth; the password never reaches a log', async () => {
    const { t, logged } = proxied(['FirewallType=1', 'FirewallHost=127.0.0.1', proxyPort(tinyproxy), 'FirewallUser=alice', `FirewallPassword=${PROXY_PASSWORD}`]);
    await t.sshLogon();
    await forwardsData(t);
    await t.sshLogoff();
    expect(tinyproxy.log()).toMatch(new RegExp(`CONNECT.*127\\.0\\.0\\.1:${sshd.port}`));
    expect(logged).toContain('status: Firewall connection complete.');
    const everything = logged.join('\n');
    expect(everything).not.toContain(PROXY_PASSWORD);
    expect(everything).not.toContain(Buffer.from(`alice:${PROXY_PASSWORD}`).toString('base64'));
    expect(t.config('FirewallPassword')).toBe('********');
  });

  it('a wrong proxy password is 10013 naming the proxy and its refusal (tinyproxy answers 401), without the password', async () => {
    const { t } = proxied(['FirewallType=1', 'FirewallHost=127.0.0.1', proxyPort(tinyproxy), 'FirewallUser=alice', 'FirewallPassword=wrong-one']);
    const error = await t.sshLogon().then(
      () => null,
      (e: unknown) => e as SshError,
    );
    expect(error).toBeInstanceOf(SshError);
    expect(error!.code).toBe(10013);
    expect(error!.message).toMatch(new RegExp(`http proxy 127\\.0\\.0\\.1:${tinyproxy.port} refused CONNECT 127\\.0\\.0\\.1:${sshd.port}: HTTP/1\\.[01] 40[17]`));
    expect(inspect(error, { depth: 10 })).not.toContain('wrong-one');
  });

  // tinyproxy's own refusals: 403 for a port its ConnectPort lines do not allow, 502 when its
  // upstream proxy cannot be reached, 500 when the SSH server itself cannot.
  it.each([
    { status: 403, code: 10013, line: 'HTTP/1.1 403 Access violation', directives: (): string[] => ['ConnectPort 443'] },
    { status: 502, code: 1036, line: 'HTTP/1.1 502 Unable to connect to upstream proxy', directives: (): string[] => [`Upstream http 127.0.0.1:${closedPort}`] },
  ])('a proxy answering $status: error $code naming the proxy, the target and its status line', async ({ code, line, directives }) => {
    const refusing = await startTinyproxy(undefined, directives());
    try {
      const { t } = proxied(['FirewallType=1', 'FirewallHost=127.0.0.1', proxyPort(refusing)]);
      const error = await t.sshLogon().then(
        () => null,
        (e: unknown) => e as SshError,
      );
      expect(error).toBeInstanceOf(SshError);
      expect(error!.code).toBe(code);
      expect(error!.message).toBe(`http proxy 127.0.0.1:${refusing.port} refused CONNECT 127.0.0.1:${sshd.port}: ${line}`);
      // tinyproxy logs from a process of its own: its line may arrive after the answer did.
      const connectLine = new RegExp(`CONNECT.*127\\.0\\.0\\.1:${sshd.port}`);
      await pollUntil(() => connectLine.test(refusing.log()), 'tinyproxy to log the CONNECT');
    } finally {
      await refusing.stop();
    }
  });

  it('a proxy that cannot reach the server (tinyproxy answers 500) is 1036, which a reconnect may mend; a 403 is final', async () => {
    const { t } = proxied(['FirewallType=1', 'FirewallHost=127.0.0.1', proxyPort(tinyproxy), 'FirewallUser=alice', `FirewallPassword=${PROXY_PASSWORD}`]);
    t.sshPort = closedPort;
    const error = await t.sshLogon().then(
      () => null,
      (e: unknown) => e as SshError,
    );
    expect(error!.code).toBe(1036);
    expect(error!.message).toBe(`http proxy 127.0.0.1:${tinyproxy.port} refused CONNECT 127.0.0.1:${closedPort}: HTTP/1.1 500 Unable to connect`);
    expect(isFinal(error!)).toBe(false);
    expect(isFinal(new SshError(10013, 'refused', 'local'))).toBe(true);
  });

  it('FirewallData adds request headers to the CONNECT', async () => {
    // Node's own HTTP server as the tunneling proxy, so the test can read the headers it got.
    let seen: http.IncomingHttpHeaders = {};
    const proxy = http.createServer();
    proxy.on('connect', (request: http.IncomingMessage, client: net.Socket) => {
      seen = request.headers;
      const upstream = net.connect(sshd.port, sshd.host, () => {
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (proxy.address() as net.AddressInfo).port;
      const { t } = proxied(['FirewallType=1', 'FirewallHost=127.0.0.1', `FirewallPort=${port}`, 'FirewallData=X-Tunnel-Token: abc123']);
      await t.sshLogon();
      await t.sshLogoff();
      expect(seen['x-tunnel-token']).toBe('abc123');
      expect(seen['proxy-authorization']).toBeUndefined();
    } finally {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });

  it('SOCKS4 and SOCKS5 through dante', async () => {
    for (const type of [2, 3]) {
      const { t } = proxied([`FirewallType=${type}`, 'FirewallHost=127.0.0.1', proxyPort(dante)]);
      await t.sshLogon();
      await forwardsData(t);
      await t.sshLogoff();
    }
    const connects = dante.log().match(new RegExp(`tcp/connect .*-> .*127\\.0\\.0\\.1\\.${sshd.port}`, 'g')) ?? [];
    expect(connects.length).toBeGreaterThanOrEqual(2);
  });

  it('SOCKS4A lets the proxy resolve the server name (OpenSSH ssh -D as the proxy)', async () => {
    const socks = await startSshDynamic(sshd, key, 'root');
    try {
      const { t } = proxied(['FirewallType=10', 'FirewallHost=127.0.0.1', proxyPort(socks)]);
      t.sshHost = 'localhost';
      await t.sshLogon();
      await forwardsData(t);
      await t.sshLogoff();
      expect(socks.log()).toMatch(new RegExp(`Connection to port ${socks.port} forwarding to socks port 0 requested`));
    } finally {
      await socks.stop();
    }
  });

  it('openReverseTunnel({ proxy: "socks5h://user:pass@…" }) through microsocks; a wrong password is 10013', async () => {
    const tunnel = await openReverseTunnel({
      host: sshd.host,
      port: sshd.port,
      username: TEST_USER,
      privateKey: key.privateText,
      hostKey: sshd.hostKeys.ed25519,
      remote: { address: '127.0.0.1', port: 0 },
      local: { host: '127.0.0.1', port: echo.port },
      proxy: `socks5h://bob:${PROXY_PASSWORD}@127.0.0.1:${microsocks.port}`,
    });
    expect((await roundTrip(tunnel.port, Buffer.from('socks5'))).toString()).toBe('socks5');
    await tunnel.close();
    const refused = await openReverseTunnel({
      host: sshd.host,
      port: sshd.port,
      username: TEST_USER,
      privateKey: key.privateText,
      hostKey: sshd.hostKeys.ed25519,
      remote: { port: 0 },
      local: { port: 1 },
      proxy: `socks5h://bob:nope@127.0.0.1:${microsocks.port}`,
    }).then(
      () => null,
      (e: unknown) => e as SshError,
    );
    expect(refused?.code).toBe(10013);
    expect(refused?.message).toContain(`socks5h proxy 127.0.0.1:${microsocks.port}`);
    // Not in the message, nor anywhere in the error an application might log whole.
    expect(inspect(refused, { depth: 10 })).not.toContain('nope');
  });

  it('FirewallAutoDetect takes all_proxy from the environment, and no_proxy bypasses it', async () => {
    const saved = { all_proxy: process.env['all_proxy'], no_proxy: process.env['no_proxy'] };
    try {
      process.env['all_proxy'] = `socks5h://bob:${PROXY_PASSWORD}@127.0.0.1:${microsocks.port}`;
      delete process.env['no_proxy'];
      const through = proxied(['FirewallAutoDetect=True']);
      await through.t.sshLogon();
      await through.t.sshLogoff();
      expect(through.logged).toContain('status: Firewall connection complete.');
      process.env['no_proxy'] = 'example.com,127.0.0.0/8';
      const direct = proxied(['FirewallAutoDetect=True']);
      await direct.t.sshLogon();
      await direct.t.sshLogoff();
      expect(direct.logged).not.toContain('status: Firewall connection complete.');
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('ProxyExceptionsList connects to a listed host directly', async () => {
    const { t, logged } = proxied(['FirewallType=3', 'FirewallHost=127.0.0.1', 'FirewallPort=1', `ProxyExceptionsList=example.com;${sshd.host}`]);
    await t.sshLogon(); // port 1 would refuse: the proxy is not used
    await t.sshLogoff();
    expect(logged).not.toContain('status: Firewall connection complete.');
  });

  it('FirewallType without FirewallHost, and a bad proxy URL, are 10022 before any traffic', async () => {
    const { t } = proxied(['FirewallType=1']);
    await expect(t.sshLogon()).rejects.toMatchObject({ code: 10022 });
    const other = proxied([]);
    other.t.proxy = 'ftp://127.0.0.1:21';
    await expect(other.t.sshLogon()).rejects.toMatchObject({ code: 10022 });
    expect(() => other.t.config('FirewallType=4')).toThrow(expect.objectContaining({ code: 10022 }));
    other.t.config('FirewallType=3');
    expect(other.t.config('FirewallPort')).toBe('1080');
    other.t.config('FirewallType=1');
    expect(other.t.config('FirewallPort')).toBe('80');
  });

  it('a reconnect goes through the proxy again and serves the same port', async () => {
    const own = await startSshd({ authorizedKeys: [key.publicLine] });
    try {
      const t = makeTunnel(own, {
        privateKey: key.privateText,
        user: TEST_USER,
        config: ['FirewallType=1', 'FirewallHost=127.0.0.1', proxyPort(tinyproxy), 'FirewallUser=alice', `FirewallPassword=${PROXY_PASSWORD}`, 'RetryInterval=0'],
      });
      await t.sshLogon();
      const port = await t.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
      const before = (tinyproxy.log().match(new RegExp(`CONNECT.*127\\.0\\.0\\.1:${own.port}`, 'g')) ?? []).length;
      const up = new Promise<void>((resolve) => t.on('tunnelState', (e: TunnelStateEvent) => e.state === 'up' && resolve()));
      await own.killSessions();
      await up;
      expect((await roundTrip(port, Buffer.from('again'))).toString()).toBe('again');
      const after = (tinyproxy.log().match(new RegExp(`CONNECT.*127\\.0\\.0\\.1:${own.port}`, 'g')) ?? []).length;
      expect(after).toBe(before + 1);
      await t.sshLogoff();
    } finally {
      await own.stop();
    }
  });
});
