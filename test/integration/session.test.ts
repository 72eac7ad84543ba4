// The SSHReverseTunnel class around the protocol: connection errors and their codes,
// method timeouts, a hostile server on a raw socket, configuration handling, logoff with
// channels open, and secrets kept out of every log level.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as net from 'node:net';
import { execFileSync } from 'node:child_process';
import { startSshd, freePort, TEST_PASSWORD, type Sshd, startSshdWithEcho, stopAll, type EchoServer } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { connect, listen, roundTrip } from '../helpers/streams.js';
import { SSHReverseTunnel, SshError } from '../../ts/index.js';
import { virtualScheduler } from '../helpers/clock.js';
import { startRelay } from '../helpers/relay.js';

let sshd: Sshd;
let echo: EchoServer;
beforeAll(async () => {
  ({ sshd, echo } = await startSshdWithEcho());
});
afterAll(() => stopAll(echo, sshd));

async function failure(promise: Promise<unknown>): Promise<SshError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SshError);
  return error as SshError;
}

/** A fake SSH server that sends `script` after the client's version line arrives. */
async function hostileServer(script: (socket: net.Socket) => void) {
  return listen((socket) => {
    socket.on('error', () => undefined);
    script(socket);
  });
}

function clientFor(port: number): SSHReverseTunnel {
  const t = new SSHReverseTunnel();
  t.sshHost = '127.0.0.1';
  t.sshPort = port;
  t.sshUser = 'someone';
  t.sshPassword = 'secret';
  t.timeout = 10;
  return t;
}

describe('connecting', () => {
  it('a refused connection fails with 10061 and fires connected with that code', async () => {
    const t = clientFor(await freePort());
    const connected: number[] = [];
    t.on('connected', (e) => connected.push(e.statusCode));
    expect((await failure(t.sshLogon())).code).toBe(10061);
    expect(connected).toEqual([10061]);
  });

  it('a server that never speaks fails the logon with 301 after timeout', async () => {
    const silent = await listen(() => undefined);
    const t = clientFor(silent.port);
    t.timeout = 1;
    expect((await failure(t.sshLogon())).code).toBe(301);
    expect(t.connected).toBe(false);
    await silent.close();
  });

  it('refuses bad options before touching the network', async () => {
    const t = clientFor(22);
    t.sshPort = 70000;
    expect((await failure(t.sshLogon())).code).toBe(10022);
    const u = clientFor(22);
    u.sshHost = '';
    expect((await failure(u.sshLogon())).code).toBe(102);
  });

  it('methods that need a connection fail with 212 before logon', async () => {
    const t = clientFor(22);
    expect(() => t.config('SSHKeyRenegotiate')).toThrow(expect.objectContaining({ code: 212 }));
    expect((await failure(t.requestForwarding('', 0))).code).toBe(212);
    expect((await failure(t.sendChannelData(0, 'x'))).code).toBe(212);
  });

  it('a second sshLogon while connected fails with 104', async () => {
    const t = makeTunnel(sshd);
    await t.sshLogon();
    expect((await failure(t.sshLogon())).code).toBe(104);
    await t.sshLogoff();
  });
});

describe('a hostile server', () => {
  it('garbage after the version line: 1015, connection closed, no crash', async () => {
    const server = await hostileServer((s) => {
      s.write('SSH-2.0-Evil\r\n');
      s.write(Buffer.from('ffffffff' + '00'.repeat(60), 'hex'));
    });
    const t = clientFor(server.port);
    const disconnected: number[] = [];
    t.on('disconnected', (e) => disconnected.push(e.statusCode));
    expect((await failure(t.sshLogon())).code).toBe(1015);
    expect(t.connected).toBe(false);
    await server.close();
  });

  it('an endless banner before the version: 1002', async () => {
    const server = await hostileServer((s) => {
      const line = Buffer.from('la la la la la la la la la la la la\r\n'.repeat(100));
      const flood = () => {
        while (!s.destroyed && s.write(line));
        if (!s.destroyed) s.once('drain', flood);
      };
      flood();
    });
    const t = clientFor(server.port);
    expect((await failure(t.sshLogon())).code).toBe(1002);
    await server.close();
  });

  it('an SSH-1 server: 1002', async () => {
    const server = await hostileServer((s) => s.write('SSH-1.5-Ancient\r\n'));
    const t = clientFor(server.port);
    expect((await failure(t.sshLogon())).code).toBe(1002);
    await server.close();
  });

  it('a server that drops the connection mid-handshake: 1120', async () => {
    const server = await hostileServer((s) => s.end('SSH-2.0-Quitter\r\n'));
    const t = clientFor(server.port);
    expect((await failure(t.sshLogon())).code).toBe(1120);
    await server.close();
  });
});

describe('config', () => {
  it('reads defaults, sets values, and parses booleans and numbers', () => {
    const t = new SSHReverseTunnel();
    expect(t.config('MaxWindowSize')).toBe('2097152');
    expect(t.config('ssHacceptanyserverhostkey')).toBe('False');
    t.config('SSHAcceptAnyServerHostKey=yes');
    expect(t.config('SSHAcceptAnyServerHostKey')).toBe('True');
    t.config('MaxPacketSize=0x4000');
    expect(t.config('MaxPacketSize')).toBe('16384');
    expect(t.config('ClientSSHVersionString')).toMatch(/^SSH-2\.0-revtun/);
    // Each integration project names its provider in REVTUN_CRYPTO; BuildInfo must show that
    // provider really is the one in use (and, for the Rust core, which build it is).
    const provider = process.env['REVTUN_CRYPTO'];
    expect(provider).toMatch(/^(native|wasm|node)$/);
    expect(t.config('BuildInfo')).toContain(`crypto provider: ${provider}`);
    if (provider === 'native') expect(t.config('BuildInfo')).toMatch(/revtun-core 0\.1\.0 \(ring\+rustcrypto(, chacha20-poly1305 on the host's OpenSSL)?\)/);
    // Node runs WebAssembly SIMD, so the WASM provider is the simd128 build (REVTUN_WASM_SIMD=0 would make it the plain one).
    if (provider === 'wasm')
      expect(t.config('BuildInfo')).toContain(process.env['REVTUN_WASM_SIMD'] === '0' ? 'revtun-core 0.1.0 (rustcrypto, wasm32)' : 'revtun-core 0.1.0 (rustcrypto+simd128, wasm32)');
  });

  it('rejects bad values, unknown and read-only names with 10022', () => {
    const t = new SSHReverseTunnel();
    for (const bad of [
      'MaxWindowSize=lots',
      'LogLevel=9',
      'UseStrictKeyExchange=4',
      'SSHFingerprintHashAlgorithm=CRC32',
      'NoSuchThing=1',
      'ForwardedPort=5',
      'AutoReconnect=3',
      'MaxTransferRate=-1',
      'LingerTime=-5',
      'Linger=sometimes',
      'RecordLength=-1',
      'MaxLineLength=100',
      'TcpNoDelay=maybe',
    ]) {
      expect(() => t.config(bad), bad).toThrow(expect.objectContaining({ code: 10022 }));
    }
  });

  it('CodePage decides the bytes of sendChannelData text; a page that cannot encode is refused by name', async () => {
    const t = makeTunnel(sshd, { config: ['CodePage=1252'] });
    await t.sshLogon();
    const port = await t.requestForwarding('127.0.0.1', 0, '', 0);
    t.on('sshChannelOpened', (e) => void t.sendChannelData(e.channelId, '€uro'));
    const client = await connect(port);
    const received: Buffer[] = [];
    await new Promise<void>((resolve) =>
      client.on('data', (chunk: Buffer) => {
        received.push(chunk);
        if (Buffer.concat(received).length >= 4) resolve();
      }),
    );
    expect(Buffer.concat(received)).toEqual(Buffer.from([0x80, 0x75, 0x72, 0x6f]));
    client.destroy();
    expect(() => t.config('CodePage=932')).toThrow(expect.objectContaining({ code: 10022, message: expect.stringMatching(/Shift_JIS/) }));
    expect(t.config('CodePage')).toBe('1252');
    await t.sshLogoff();
  });

  it('UseInternalSecurityAPI=False logs on with node:crypto; LicenseInfo is read-only; UseFIPSCompliantAPI works or says why not', async () => {
    const t = makeTunnel(sshd, { config: ['UseInternalSecurityAPI=False', 'LogLevel=2'] });
    const logs: string[] = [];
    t.on('log', (e) => logs.push(e.message));
    expect(t.config('UseInternalSecurityAPI')).toBe('False');
    await t.sshLogon();
    expect(logs.some((m) => /^crypto provider: node\b/.test(m))).toBe(true);
    expect(t.config('BuildInfo')).toContain('crypto provider: node');
    await t.sshLogoff();
    t.config('UseInternalSecurityAPI=True');
    if (process.env['REVTUN_CRYPTO'] !== 'node') expect(t.config('UseInternalSecurityAPI')).toBe('True');
    expect(t.config('LicenseInfo')).toMatch(/MIT License/);
    expect(() => t.config('LicenseInfo=anything')).toThrow(expect.objectContaining({ code: 10022 }));
    // FIPS mode exists only where the runtime's OpenSSL has a FIPS provider; either it turns
    // on (and the system's crypto is used), or the setting says why not and stays off.
    let fips: unknown = null;
    try {
      t.config('UseFIPSCompliantAPI=True');
    } catch (error) {
      fips = error;
    }
    if (fips) {
      expect(fips).toMatchObject({ code: 10022, message: expect.stringMatching(/cannot enter FIPS mode/) });
      expect(t.config('UseFIPSCompliantAPI')).toBe('False');
    } else {
      expect(t.config('UseFIPSCompliantAPI')).toBe('True');
      expect(t.config('BuildInfo')).toContain('crypto provider: node');
      t.config('UseFIPSCompliantAPI=False');
    }
  });

  it('MaskSensitiveData=False unmasks FirewallPassword, saying so in the log', () => {
    const t = new SSHReverseTunnel();
    const logs: string[] = [];
    t.on('log', (e) => logs.push(e.message));
    t.config('FirewallPassword=hunter2');
    expect(t.config('FirewallPassword')).toBe('********');
    t.config('MaskSensitiveData=False');
    expect(t.config('FirewallPassword')).toBe('hunter2');
    expect(logs).toEqual([expect.stringMatching(/MaskSensitiveData is off/)]);
    expect(logs.join('\n')).not.toContain('hunter2');
  });

  it('doEvents waits SelectWaitMillis when no event was ready, and not at all with 0', async () => {
    const t = new SSHReverseTunnel();
    const clock = virtualScheduler();
    t.scheduler = clock;
    t.config('SelectWaitMillis=35');
    const done = t.doEvents();
    expect(await clock.nextWait()).toBe(35);
    clock.pass();
    await done;
    t.config('SelectWaitMillis=0');
    await t.doEvents();
    expect(clock.pending).toBe(0);
    t.config('ProcessIdleEvents=False'); // accepted: there is no internal event loop to stop
    expect(t.config('ProcessIdleEvents')).toBe('False');
  });

  it('a method fails only after `timeout` seconds in which nothing moved; with AbsoluteTimeout, after `timeout` seconds', async () => {
    const relay = await startRelay({ host: sshd.host, port: sshd.port });
    for (const absolute of [false, true]) {
      const t = makeTunnel(sshd, { config: [`AbsoluteTimeout=${absolute}`] });
      const clock = virtualScheduler();
      t.scheduler = clock;
      t.sshPort = relay.port;
      await t.sshLogon();
      relay.stall(); // the forwarding's reply is held back
      const start = clock.time;
      const request = t.requestForwarding('127.0.0.1', 0, '', 0).then(
        () => 'granted',
        (e: SshError) => e,
      );
      expect(await clock.nextDeadline()).toBe(60_000);
      clock.time = start + 30_000;
      t.config('SSHKeyRenegotiate'); // 30 s in, bytes move: our KEXINIT goes out
      clock.passDeadline();
      if (!absolute) {
        // The deadline moved on with the bytes: 30 s more of silence are needed.
        expect(await clock.nextDeadline()).toBe(30_000);
        clock.passDeadline();
      }
      const error = (await request) as SshError;
      expect(error).toBeInstanceOf(SshError);
      expect(error.code).toBe(301);
      expect(error.message).toMatch(absolute ? /timed out after 60 s while tcpip-forward/ : /nothing moved for 60 s while tcpip-forward/);
      expect(clock.time).toBe(start + (absolute ? 60_000 : 90_000));
      t.reset();
      relay.resume();
    }
    await relay.close();
  });

  it('reset() restores defaults', () => {
    const t = new SSHReverseTunnel();
    t.sshHost = 'example.com';
    t.timeout = 5;
    t.config('LogLevel=3');
    t.reset();
    expect(t.sshHost).toBe('');
    expect(t.timeout).toBe(60);
    expect(t.config('LogLevel')).toBe('1');
  });

  it('an algorithm list with nothing usable is refused at logon with 1005', async () => {
    const t = makeTunnel(sshd);
    t.sshEncryptionAlgorithms = 'rot13,des-ecb';
    expect((await failure(t.sshLogon())).code).toBe(1005);
  });
});

/** SIGKILLs every process below `pid` (sshd serves each connection with a child and a grandchild). */
function killDescendants(pid: number): void {
  let children: string[] = [];
  try {
    children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split(/\s+/)
      .filter(Boolean);
  } catch {
    return; // pgrep exits 1 when there are none
  }
  for (const child of children) {
    killDescendants(Number(child));
    try {
      process.kill(Number(child), 'SIGKILL');
    } catch (error) {
      // Killing a parent can end its child on its own first.
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
}

describe('reconnecting', () => {
  it('a new logon after the server dropped the connection starts with no stale forwardings', async () => {
    const first = await listen((s) => s.end('first target'));
    const second = await listen((s) => s.end('second target'));
    const own = await startSshd(); // its connections can be killed without touching other tests
    const t = makeTunnel(own);
    t.localHost = '127.0.0.1';
    await t.sshLogon();
    const firstLocalPort = t.localPort;
    expect(firstLocalPort).toBeGreaterThan(0);
    const port = await t.requestForwarding('127.0.0.1', 0, '127.0.0.1', first.port);
    // Kill the sshd child serving this connection: the server side of the session goes away.
    const dropped = new Promise<number>((resolve) => t.on('disconnected', (e) => resolve(e.statusCode)));
    killDescendants(own.pid);
    expect(await dropped).not.toBe(0);
    expect(t.connected).toBe(false);
    await t.sshLogon();
    const again = await t.requestForwarding('127.0.0.1', port, '127.0.0.1', second.port);
    expect(again).toBe(port);
    expect((await roundTrip(again, Buffer.alloc(0))).toString()).toBe('second target');
    await t.sshLogoff();
    await own.stop();
    await first.close();
    await second.close();
  });
});

describe('logoff', () => {
  it('delivers data sendChannelData already accepted before closing the channel', async () => {
    const t = makeTunnel(sshd);
    await t.sshLogon();
    const port = await t.requestForwarding('127.0.0.1', 0, '', 0);
    const opened = new Promise<number>((resolve) => t.on('sshChannelOpened', (e) => resolve(e.channelId)));
    const client = await connect(port);
    client.pause();
    const channel = await opened;
    // Fill the channel until it refuses (timeout 0): everything accepted before that must arrive.
    t.timeout = 0;
    let total = 0;
    for (;;) {
      try {
        await t.sendChannelData(channel, Buffer.alloc(256 * 1024, 1));
        total += 256 * 1024;
      } catch (e) {
        expect((e as SshError).code).toBe(1130);
        break;
      }
    }
    t.timeout = 30;
    expect(t.sshChannels[0]!.bufferedBytes).toBeGreaterThan(0); // some of it is still ours to deliver
    let received = 0;
    const ended = new Promise<void>((resolve) => client.on('end', () => resolve()));
    client.on('data', (c: Buffer) => (received += c.length));
    const loggedOff = t.sshLogoff();
    client.resume();
    await loggedOff;
    await ended;
    expect(received).toBe(total);
    client.destroy();
  });

  it('closes open channels first, then fires disconnected with code 0', async () => {
    const t = makeTunnel(sshd);
    await t.sshLogon();
    const port = await t.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
    const client = await connect(port);
    client.on('error', () => undefined);
    const opened = new Promise<void>((resolve) => t.on('sshChannelOpened', () => resolve()));
    client.write('x');
    await opened;
    expect(t.sshChannelCount).toBe(1);
    const order: string[] = [];
    t.on('sshChannelClosed', () => order.push('channel closed'));
    t.on('disconnected', (e) => order.push(`disconnected ${e.statusCode}`));
    await t.sshLogoff();
    expect(order).toEqual(['channel closed', 'disconnected 0']);
    expect(t.connected).toBe(false);
    client.destroy();
  });
});

describe('sendChannelData backpressure', () => {
  it('with timeout 0, a channel whose reader stalls fails with 1130 instead of queueing without bound', async () => {
    const t = makeTunnel(sshd);
    await t.sshLogon();
    const port = await t.requestForwarding('127.0.0.1', 0, '', 0);
    const opened = new Promise<number>((resolve) => t.on('sshChannelOpened', (e) => resolve(e.channelId)));
    const client = await connect(port);
    client.pause(); // never reads
    const channel = await opened;
    t.timeout = 0;
    const chunk = Buffer.alloc(256 * 1024, 7);
    let pushed = 0;
    let error: unknown = null;
    while (pushed < 512 * 1024 * 1024) {
      try {
        await t.sendChannelData(channel, chunk);
        pushed += chunk.length;
      } catch (e) {
        error = e;
        break;
      }
    }
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).code).toBe(1130);
    // What revtun itself holds stays near the channel's high-water mark.
    expect(t.sshChannels[0]!.bufferedBytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    const ready = new Promise<void>((resolve) => t.on('sshChannelReadyToSend', () => resolve()));
    client.resume();
    await ready;
    await t.sendChannelData(channel, chunk);
    client.destroy();
    t.timeout = 10;
    await t.sshLogoff();
  });
});

describe('secrets', () => {
  it('the password never appears in log messages, even at LogLevel 3', async () => {
    const t = makeTunnel(sshd);
    t.config('LogLevel=3');
    const lines: string[] = [];
    t.on('log', (e) => lines.push(e.message));
    t.on('sshStatus', (e) => lines.push(e.message));
    await t.sshLogon();
    await t.sshLogoff();
    expect(lines.length).toBeGreaterThan(20);
    expect(lines.join('\n')).not.toContain(TEST_PASSWORD);
  });
});
