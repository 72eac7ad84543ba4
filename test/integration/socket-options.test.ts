// The socket options of the SSH connection (InBufferSize, OutBufferSize, TCPKeepAlive,
// KeepAliveTime, KeepAliveInterval, Linger, LingerTime) against a real OpenSSH sshd: read back
// on the live socket with getsockopt (the native addon, through socketOptions() and config())
// and, independently, with `ss -tiem`; changed while connected; Linger=False's reset seen in
// the kernel's socket table; and the refusal without the native addon (the WASM provider).
// Each test names its provider in REVTUN_CRYPTO itself, so the file runs once, in the native
// project (vitest.config.ts).

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, startSshdWithEcho, stopAll, TEST_USER, type EchoServer, type Sshd } from '../helpers/sshd.js';
import { runRevtun } from '../helpers/cli.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { pollUntil } from '../helpers/kernel.js';
import { SSHReverseTunnel, type SocketOptionValues } from '../../ts/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-sockopt-'));
const key = generateKey(dir, 'id_ed25519', 'ed25519');
let sshd: Sshd;
let echo: EchoServer;
beforeAll(async () => {
  ({ sshd, echo } = await startSshdWithEcho({ authorizedKeys: [key.publicLine] }));
});
afterAll(() => stopAll(echo, sshd));

const savedProvider = process.env['REVTUN_CRYPTO'];
afterEach(() => {
  if (savedProvider === undefined) delete process.env['REVTUN_CRYPTO'];
  else process.env['REVTUN_CRYPTO'] = savedProvider;
});

function useProvider(name: 'native' | 'wasm'): void {
  process.env['REVTUN_CRYPTO'] = name;
}

/** What `ss -tiem` says of the established connection from local port `port`. */
interface SsView {
  receiveBuffer: number;
  sendBuffer: number;
  /** The keep-alive timer's remaining time (ms), or null when the socket has none running. */
  keepAliveTimerMs: number | null;
}

/** ss prints timers as [Nmin][S(sec|.)][MMMms]: "4.992ms" is 4992 ms, "7sec" 7000 ms, "2min" 120 000 ms. */
function parseSsTimer(text: string): number {
  const match = /^(?:(\d+)min)?(?:(\d+)(?:sec|\.))?(?:(\d+)ms)?$/.exec(text);
  if (!match) throw new Error(`unexpected ss timer "${text}"`);
  return Number(match[1] ?? 0) * 60_000 + Number(match[2] ?? 0) * 1000 + Number(match[3] ?? 0);
}

function ssView(localPort: number): SsView {
  const out = execFileSync('ss', ['-tiemoH', 'state', 'established', `( sport = :${localPort} )`], { encoding: 'utf8' });
  const skmem = /skmem:\(([^)]*)\)/.exec(out);
  if (!skmem) throw new Error(`ss shows no connection from port ${localPort}: ${out}`);
  const field = (name: string) => Number(new RegExp(`(?:^|,)${name}(\\d+)`).exec(skmem[1]!)![1]);
  const timer = /timer:\(keepalive,([^,]+),/.exec(out);
  return { receiveBuffer: field('rb'), sendBuffer: field('tb'), keepAliveTimerMs: timer ? parseSsTimer(timer[1]!) : null };
}

function optionsOf(t: SSHReverseTunnel): SocketOptionValues {
  const values = t.socketOptions();
  if (!values) throw new Error('the tunnel reports no socket options');
  return values;
}

describe('socket options on the SSH connection (native addon)', () => {
  it('are applied at the connect, read back with getsockopt and seen by ss; the buffer sizes read back as the kernel keeps them', async () => {
    useProvider('native');
    const t = makeTunnel(sshd, {
      config: ['InBufferSize=150000', 'OutBufferSize=90000', 'KeepAliveTime=7000', 'KeepAliveInterval=3000', 'LingerTime=9'],
    });
    expect(t.config('InBufferSize')).toBe('150000'); // before the connect: what was set
    await t.sshLogon();
    try {
      const values = optionsOf(t);
      // Linux doubles SO_RCVBUF/SO_SNDBUF (socket(7)); these values are below rmem_max/wmem_max.
      expect(values.receiveBuffer).toBe(300000);
      expect(values.sendBuffer).toBe(180000);
      expect(values.keepAlive).toBe(true);
      expect(values.keepAliveIdle).toBe(7);
      expect(values.keepAliveInterval).toBe(3);
      // LingerTime is how revtun closes (linger.test.ts), not SO_LINGER: that stays off.
      expect(values.linger).toBe(false);
      // Once connected, the setting reads back the effective value.
      expect(t.config('InBufferSize')).toBe('300000');
      expect(t.config('OutBufferSize')).toBe('180000');
      expect(t.config('KeepAliveInterval')).toBe('3000');

      const ss = ssView(t.localPort);
      expect(ss.receiveBuffer).toBe(300000);
      expect(ss.sendBuffer).toBe(180000);
      expect(ss.keepAliveTimerMs).not.toBeNull();
      expect(ss.keepAliveTimerMs!).toBeLessThanOrEqual(7000);
    } finally {
      await t.sshLogoff();
    }
  });

  it('by default: keep-alive on (as ssh), no linger, the system buffer sizes', async () => {
    useProvider('native');
    const t = makeTunnel(sshd);
    await t.sshLogon();
    try {
      const values = optionsOf(t);
      expect(values.keepAlive).toBe(true);
      expect(values.linger).toBe(false);
      expect(t.config('InBufferSize')).toBe(String(values.receiveBuffer));
      expect(values.receiveBuffer).toBe(ssView(t.localPort).receiveBuffer);
    } finally {
      await t.sshLogoff();
    }
  });

  it('changed while connected, they take effect on the live socket', async () => {
    useProvider('native');
    const t = makeTunnel(sshd, { config: ['InBufferSize=100000', 'KeepAliveTime=60000'] });
    await t.sshLogon();
    try {
      expect(ssView(t.localPort).receiveBuffer).toBe(200000);
      t.config('InBufferSize=50000');
      t.config('OutBufferSize=40000');
      t.config('KeepAliveTime=5000');
      t.config('KeepAliveInterval=2000');
      const values = optionsOf(t);
      expect(values).toMatchObject({ receiveBuffer: 100000, sendBuffer: 80000, keepAliveIdle: 5, keepAliveInterval: 2 });
      const ss = ssView(t.localPort);
      expect(ss.receiveBuffer).toBe(100000);
      expect(ss.sendBuffer).toBe(80000);
      // Linux re-arms the keep-alive timer when the idle time changes: at most the new 5 s now.
      expect(ss.keepAliveTimerMs!).toBeLessThanOrEqual(5000);
      // TCPKeepAlive=False stops the probes.
      t.config('KeepAliveTime=0');
      t.config('KeepAliveInterval=0');
      t.config('TCPKeepAlive=False');
      expect(optionsOf(t)).toMatchObject({ keepAlive: false });
      expect(ssView(t.localPort).keepAliveTimerMs).toBeNull();
    } finally {
      await t.sshLogoff();
    }
  });

  it('a size the kernel clamps reads back as what it kept', async () => {
    useProvider('native');
    const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
    const t = makeTunnel(sshd, { config: [`InBufferSize=${rmemMax * 4}`] });
    await t.sshLogon();
    try {
      // Clamped to rmem_max, then doubled (socket(7)), whatever was asked for.
      expect(t.config('InBufferSize')).toBe(String(rmemMax * 2));
      expect(ssView(t.localPort).receiveBuffer).toBe(rmemMax * 2);
    } finally {
      await t.sshLogoff();
    }
  });

  it('Linger=False makes the close a reset (the server sees ECONNRESET); by default it is an orderly FIN', async () => {
    useProvider('native');
    // A plain TCP server in the SSH server's place: it reads the client's first flight (its
    // version line and KEXINIT) and sends only a version line, so that the client, waiting
    // for the server's KEXINIT, writes nothing more, and only the way it closes differs.
    const closeSeenByServer = async (config: string[]): Promise<string> => {
      let seen!: (how: string) => void;
      const outcome = new Promise<string>((resolve) => (seen = resolve));
      let greeted!: () => void;
      const greeting = new Promise<void>((resolve) => (greeted = resolve));
      const server = net.createServer((socket) => {
        let received = Buffer.alloc(0);
        socket.on('data', (bytes) => {
          received = Buffer.concat([received, bytes]);
          const versionEnd = received.indexOf('\r\n');
          // The KEXINIT packet: its uint32 length, then that many bytes.
          if (versionEnd >= 0 && received.length >= versionEnd + 6 && received.length >= versionEnd + 6 + received.readUInt32BE(versionEnd + 2)) {
            if (!socket.writableEnded) socket.write('SSH-2.0-OpenSSH_9.9 silent\r\n');
            greeted();
          }
        });
        socket.on('end', () => seen('end'));
        socket.on('error', (error: NodeJS.ErrnoException) => seen(error.code ?? error.message));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const t = new SSHReverseTunnel();
      t.sshHost = '127.0.0.1';
      t.sshPort = (server.address() as net.AddressInfo).port;
      t.sshUser = 'nobody';
      t.timeout = 60;
      for (const setting of config) t.config(setting);
      const logon = t.sshLogon().catch((error: unknown) => error);
      await greeting;
      // The server answers with its version line, whose segment acknowledges the client's
      // flight; once the client has read it, nothing of the client's is unacknowledged (a
      // reset overtaking unacknowledged data was seen to reach a Node server as an EOF).
      await pollUntil(() => t.config('ServerSSHVersionString') !== '', 'the client to read the server version line');
      // No SO_LINGER before the close: the reset is resetAndDestroy's, at the close.
      if (config.includes('Linger=False')) expect(optionsOf(t)).toMatchObject({ linger: false });
      t.reset(); // closes the socket at once, in the middle of the handshake
      const how = await outcome;
      await logon;
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return how;
    };
    expect(await closeSeenByServer([])).toBe('end');
    expect(await closeSeenByServer(['Linger=False'])).toBe('ECONNRESET');
  });
});

describe('socket options over a ProxyCommand', () => {
  it("are not applied (its pipes are no socket of revtun's), and the log says so at level 1", async () => {
    useProvider('native');
    const t = makeTunnel(sshd, { config: ['InBufferSize=65536', 'Linger=False', 'KeepAliveTime=9000'] });
    t.proxyCommand = 'nc %h %p';
    const logs: string[] = [];
    t.on('log', (event) => event.logLevel === 1 && logs.push(event.message));
    await t.sshLogon();
    try {
      expect(logs).toContain("KeepAliveTime, InBufferSize not applied: the connection runs over a ProxyCommand, which has no TCP socket of revtun's");
      expect(t.socketOptions()).toBeNull();
      expect(t.config('InBufferSize')).toBe('65536'); // what was set: there is no socket to read it from
    } finally {
      await t.sshLogoff();
    }
  });
});

describe('socket options from the command line (-o)', () => {
  const cliArgs = (extra: string[]) => {
    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys.ed25519}\n`);
    return [
      '-N',
      '-p',
      String(sshd.port),
      '-i',
      key.privatePath,
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'BatchMode=yes',
      ...extra,
      '-R',
      `0:127.0.0.1:${echo.port}`,
      `${TEST_USER}@127.0.0.1`,
    ];
  };

  it('revtun -o InBufferSize=… -o MaxTransferRate=… applies them to its connection (ss shows the buffer)', async () => {
    const run = runRevtun(cliArgs(['-o', 'InBufferSize=65536', '-o', 'MaxTransferRate=1000000']), { HOME: dir, REVTUN_CRYPTO: 'native' });
    try {
      await run.waitFor(/Allocated port \d+/);
      // The revtun process's own connection to sshd: ss -p names the process that holds it.
      const out = execFileSync('ss', ['-tiempnH', 'state', 'established', `( dport = :${sshd.port} )`], { encoding: 'utf8' });
      const entry = out.split(/\n(?=\S)/).find((block) => block.includes(`pid=${run.child.pid},`));
      expect(entry, out).toBeDefined();
      expect(/skmem:\([^)]*rb(\d+)/.exec(entry!)![1]).toBe('131072');
    } finally {
      run.child.kill('SIGINT');
      expect(await run.exit).toBe(0);
    }
  });

  it('without the native addon, revtun -o InBufferSize=… stops before connecting with the reason', async () => {
    const run = runRevtun(cliArgs(['-o', 'InBufferSize=65536']), { HOME: dir, REVTUN_CRYPTO: 'wasm' });
    expect(await run.exit).not.toBe(0);
    expect(run.stderr()).toContain("InBufferSize cannot be set: the native addon is not in use (REVTUN_CRYPTO=wasm), and Node's sockets cannot set this option without it");
    expect(run.stderr()).not.toMatch(/Allocated port/);
  });
});

describe('socket options without the native addon (REVTUN_CRYPTO=wasm)', () => {
  it('a value only the addon can apply is refused with 10022 when set; defaults, keep-alive time and MaxTransferRate are accepted', async () => {
    useProvider('wasm');
    const t = makeTunnel(sshd);
    for (const setting of ['InBufferSize=65536', 'OutBufferSize=65536', 'KeepAliveInterval=2000']) {
      const name = setting.split('=')[0]!;
      expect(() => t.config(setting), setting).toThrow(
        expect.objectContaining({ code: 10022, message: `${name} cannot be set: the native addon is not in use (REVTUN_CRYPTO=wasm), and Node's sockets cannot set this option without it` }),
      );
    }
    // Defaults need nothing, and are accepted; so is what net.Socket does itself (keep-alive
    // time, and Linger/LingerTime, which are how the socket is closed).
    for (const setting of [
      'InBufferSize=0',
      'Linger=False',
      'LingerTime=5',
      'Linger=True',
      'LingerTime=0',
      'KeepAliveInterval=0',
      'KeepAliveTime=9000',
      'TCPKeepAlive=True',
      'MaxTransferRate=1000000',
    ])
      t.config(setting);
    expect(t.config('InBufferSize')).toBe('0');
    await t.sshLogon();
    try {
      expect(t.config('BuildInfo')).toContain('crypto provider: wasm');
      // No addon, no getsockopt: the tunnel says so rather than inventing values...
      expect(t.socketOptions()).toBeNull();
      expect(t.config('InBufferSize')).toBe('0');
      // ...while the kernel shows the keep-alive net.Socket set (9 s idle).
      const ss = ssView(t.localPort);
      expect(ss.keepAliveTimerMs).not.toBeNull();
      expect(ss.keepAliveTimerMs!).toBeLessThanOrEqual(9000);
      expect(() => t.config('InBufferSize=1'), 'while connected too').toThrow(expect.objectContaining({ code: 10022 }));
    } finally {
      await t.sshLogoff();
    }
  });
});
