// Linger and LingerTime against a real OpenSSH sshd, through a TCP relay of the test's own
// that can stop reading from revtun (so that revtun's queued bytes cannot leave): a close
// with LingerTime set must not stall the event loop while it waits (SO_LINGER {on, N} made
// close() block the loop thread for N seconds), and when the bytes still cannot leave after
// LingerTime, the connection is reset. Linger=False needs no native addon (resetAndDestroy).
// Each test names its provider in REVTUN_CRYPTO itself.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as net from 'node:net';
import { startSshd, stopAll, type Sshd } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { connect, listen } from '../helpers/streams.js';
import { pollUntil } from '../helpers/kernel.js';
import { applySocketOptions } from '../../ts/net/socket-options.js';

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(() => stopAll(sshd));

const savedProvider = process.env['REVTUN_CRYPTO'];
afterEach(() => {
  if (savedProvider === undefined) delete process.env['REVTUN_CRYPTO'];
  else process.env['REVTUN_CRYPTO'] = savedProvider;
});

/**
 * A relay from a local port to the sshd whose reading from the client (revtun) can be
 * stopped; it records how the client's side ended ('end', or the socket error's code).
 */
async function startHoldingRelay(target: Sshd, options: { smallReceiveBuffer?: boolean } = {}) {
  const ends: string[] = [];
  const sockets: net.Socket[] = [];
  let fromClient: net.Socket | null = null;
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    fromClient = client;
    // A small, fixed receive buffer (no autotuning): once the relay stops reading, what
    // revtun still has to send cannot all vanish into this end's queue (it could grow to MiBs).
    if (options.smallReceiveBuffer) applySocketOptions(client, { keepAlive: false, keepAliveTime: 0, keepAliveInterval: 0, inBufferSize: 8192, outBufferSize: 0 });
    const upstream = net.connect(target.port, target.host);
    sockets.push(client, upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('end', () => ends.push('end'));
    client.on('error', (error: NodeJS.ErrnoException) => ends.push(error.code ?? error.message));
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    ends,
    /** Stops reading what revtun sends: its bytes pile up in the kernel's queues. */
    hold: () => {
      fromClient!.unpipe();
      fromClient!.pause();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The kernel's view of revtun's end of the connection from local port `port` (ss: its state and Send-Q), or null once it is gone. */
function kernelSocket(localPort: number): { state: string; sendQueue: number } | null {
  const out = execFileSync('ss', ['-tnH', `( sport = :${localPort} )`], { encoding: 'utf8' }).trim();
  if (!out) return null;
  const [state, , sendQueue] = out.split(/\s+/);
  return { state: state!, sendQueue: Number(sendQueue) };
}

/** The state of the relay's end of that connection (ss lists a socket no more once a reset has closed it). */
function relayEnd(localPort: number): string | null {
  const out = execFileSync('ss', ['-tnH', `( dport = :${localPort} )`], { encoding: 'utf8' }).trim();
  return out ? out.split(/\s+/)[0]! : null;
}

describe('LingerTime', () => {
  it('a close waiting for queued bytes leaves the event loop running, and resets the connection after LingerTime', async () => {
    process.env['REVTUN_CRYPTO'] = 'native';
    const relay = await startHoldingRelay(sshd, { smallReceiveBuffer: true });
    // A local target that sends more than the kernel's queues hold once the relay stops reading.
    const flood = await listen((socket) => {
      socket.on('error', () => undefined);
      socket.write(Buffer.alloc(4 * 1024 * 1024));
    });
    const t = makeTunnel(sshd, { config: ['LingerTime=2', 'OutBufferSize=8192'] });
    t.sshPort = relay.port;
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    try {
      await t.sshLogon();
      const port = await t.requestForwarding('127.0.0.1', 0, '127.0.0.1', flood.port);
      relay.hold();
      const reader = await connect(port);
      reader.on('data', () => undefined);
      reader.on('error', () => undefined);
      const localPort = t.localPort;
      await pollUntil(() => (kernelSocket(localPort)?.sendQueue ?? 0) > 0, 'revtun to have bytes queued that cannot leave');
      await t.sshLogoff({ drainSeconds: 1 });
      // The close is under way, not done: with SO_LINGER {on, 2} the close() inside sshLogoff
      // had held the loop thread until the linger ran out.
      const ticksAtLogoff = ticks;
      expect(relay.ends).toEqual([]);
      expect(kernelSocket(localPort)?.sendQueue).toBeGreaterThan(0);
      expect(relayEnd(localPort)).toBe('ESTAB');
      // The bytes never leave: after LingerTime revtun resets the connection. The relay, still
      // not reading, has had no FIN (it would wait behind the unread bytes), yet its end is
      // closed: only a reset does that.
      await pollUntil(() => kernelSocket(localPort) === null && relayEnd(localPort) === null, 'both ends of the connection to be gone from the socket table');
      // Meanwhile the event loop ran: the ticker kept going while the close was pending.
      expect(ticks).toBeGreaterThan(ticksAtLogoff + 10);
      reader.destroy();
    } finally {
      clearInterval(ticker);
      await flood.close();
      await relay.close();
    }
  });
});

describe('Linger=False without the native addon', () => {
  it('is accepted, and the close is a reset', async () => {
    process.env['REVTUN_CRYPTO'] = 'wasm';
    const relay = await startHoldingRelay(sshd);
    const t = makeTunnel(sshd, { config: ['Linger=False', 'LingerTime=5'] });
    t.sshPort = relay.port;
    try {
      await t.sshLogon();
      await t.sshLogoff();
      // The relay may see a FIN first (it reads 'end' a moment before the reset's ECONNRESET
      // when the machine is busy): what matters is that the reset comes.
      await pollUntil(() => relay.ends.includes('ECONNRESET'), 'the relay to see the connection reset');
      expect(relay.ends).toContain('ECONNRESET');
    } finally {
      await relay.close();
    }
  });
});
