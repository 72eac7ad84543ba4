// Compression (RFC 4253 §6.2) through real reverse tunnels: OpenSSH's sshd with Compression
// yes (zlib@openssh.com, started after authentication) across re-exchanges, Dropbear, every
// crypto provider, and a scripted server that sends a decompression bomb or garbage.

import { createHash, randomBytes } from 'node:crypto';
import type * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sshd, startSshd, stopAll } from '../helpers/sshd.js';
import { makeTunnel, rekeyCounts } from '../helpers/tunnel.js';
import { startDropbear, startAsyncSsh, peerTunnel, type Peer } from '../helpers/peers.js';
import { pollUntil } from '../helpers/kernel.js';
import { connect, listen, receiveHashed } from '../helpers/streams.js';
import { startScriptedServer, forwardedOpen, channelData } from '../helpers/scripted-server.js';
import { PASSWORD } from '../helpers/peer.js';
import { SSHReverseTunnel, SshError } from '../../ts/index.js';
import type { RekeyCounts } from '../../ts/protocol/client.js';

const MiB = 1024 * 1024;

/** Log text: lines of words a shell session or a log file would carry, different on every line. */
function logText(bytes: number, seed: number): Buffer {
  const words = ['GET', '/api/v1/items', 'HTTP/1.1', '200', 'OK', 'user', 'session', 'opened', 'closed', 'forwarded', 'port', 'from'];
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < bytes; i++) {
    const line = `${new Date(1_700_000_000_000 + (seed + i) * 997).toISOString()} ${words[(i * 5 + seed) % words.length]} ${words[(i * 7) % words.length]} id=${(i * 2654435761) >>> 0}\n`;
    lines.push(line);
    length += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

/** Writes `data` in pieces respecting backpressure, then half-closes. */
async function sendAll(socket: net.Socket, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += 64 * 1024) {
    if (!socket.write(data.subarray(at, at + 64 * 1024))) await new Promise<void>((resolve) => socket.once('drain', resolve));
  }
  socket.end();
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Traffic {
  negotiated: string;
  /** raw and compressed payload bytes, from the summary the tunnel logs at the end */
  outgoing: { raw: number; compressed: number };
  incoming: { raw: number; compressed: number };
  /** Re-exchanges completed, by who started them. */
  rekeys: RekeyCounts;
}

/**
 * Logs on, forwards a port on the server to a local target, and moves `toTarget` from a client
 * of the server's port to the target (packets the tunnel receives) and `fromTarget` back (packets
 * it sends) at the same time; checks both arrive intact.
 */
async function throughTunnel(tunnel: SSHReverseTunnel, toTarget: Buffer, fromTarget: Buffer, during?: () => Promise<void>): Promise<Traffic> {
  const logs: string[] = [];
  tunnel.on('log', (e) => logs.push(e.message));
  let targetReceived: Promise<{ bytes: number; sha256: string }> | undefined;
  const target = await listen((socket) => {
    targetReceived = receiveHashed(socket);
    void sendAll(socket, fromTarget);
  });
  await tunnel.sshLogon();
  const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', target.port);
  const client = await connect(port);
  const clientReceived = receiveHashed(client);
  await Promise.all([sendAll(client, toTarget), during?.()]);
  expect((await clientReceived).sha256).toBe(sha256(fromTarget));
  expect((await targetReceived!).sha256).toBe(sha256(toTarget));
  const rekeys = rekeyCounts(tunnel);
  client.destroy();
  await tunnel.sshLogoff();
  await target.close();
  const negotiated = logs.find((l) => l.startsWith('negotiated kex='))?.match(/compression=(\S+)/)?.[1] ?? '';
  const summary = (direction: string) => {
    const m = logs.map((l) => l.match(new RegExp(`^compress ${direction}: raw data (\\d+), compressed (\\d+)`))).find(Boolean);
    return { raw: Number(m?.[1] ?? 0), compressed: Number(m?.[2] ?? 0) };
  };
  return { negotiated, outgoing: summary('outgoing'), incoming: summary('incoming'), rekeys };
}

describe('against OpenSSH sshd with Compression yes', () => {
  let sshd: Sshd;
  beforeAll(async () => {
    // Compression yes is sshd's zlib@openssh.com; new keys every 256 KiB on the wire show that
    // both sides start their streams afresh at each NEWKEYS in step.
    sshd = await startSshd({ config: ['Compression yes', 'RekeyLimit 256K'] });
  });
  afterAll(() => stopAll(sshd));

  it('zlib@openssh.com: compressible text moves in far fewer bytes, both ways, across re-exchanges', async () => {
    const tunnel = makeTunnel(sshd);
    tunnel.sshCompressionAlgorithms = 'zlib@openssh.com,zlib,none';
    const toTarget = logText(4 * MiB, 1);
    const fromTarget = logText(4 * MiB, 2);
    const t = await throughTunnel(tunnel, toTarget, fromTarget);
    expect(t.negotiated).toBe('zlib@openssh.com/zlib@openssh.com');
    expect(t.rekeys.byServer).toBeGreaterThanOrEqual(2); // sshd's RekeyLimit counts the compressed bytes
    expect(t.outgoing.raw).toBeGreaterThan(fromTarget.length);
    expect(t.incoming.raw).toBeGreaterThan(toTarget.length);
    expect(t.outgoing.compressed).toBeLessThan(t.outgoing.raw / 3);
    expect(t.incoming.compressed).toBeLessThan(t.incoming.raw / 3);
  });

  it('random data passes intact (and does not shrink)', async () => {
    const tunnel = makeTunnel(sshd);
    tunnel.sshCompressionAlgorithms = 'zlib@openssh.com';
    const t = await throughTunnel(tunnel, randomBytes(2 * MiB), randomBytes(2 * MiB));
    expect(t.negotiated).toBe('zlib@openssh.com/zlib@openssh.com');
    expect(t.outgoing.compressed).toBeGreaterThan(t.outgoing.raw * 0.95);
    expect(t.incoming.compressed).toBeGreaterThan(t.incoming.raw * 0.95);
  });

  // vitest.config.ts runs this file once per crypto provider (REVTUN_CRYPTO=native, wasm, node).
  it(`works with the ${process.env['REVTUN_CRYPTO'] ?? 'default'} crypto provider, text one way and random data the other`, async () => {
    const tunnel = makeTunnel(sshd);
    tunnel.sshCompressionAlgorithms = 'zlib@openssh.com';
    const t = await throughTunnel(tunnel, logText(MiB, 3), randomBytes(MiB));
    expect(t.negotiated).toBe('zlib@openssh.com/zlib@openssh.com');
    expect(t.incoming.compressed).toBeLessThan(t.incoming.raw / 3);
    expect(t.outgoing.compressed).toBeGreaterThan(t.outgoing.raw * 0.95);
  });

  it('the default list ("none,zlib": offered, not preferred) negotiates none', async () => {
    const tunnel = makeTunnel(sshd);
    expect(tunnel.sshCompressionAlgorithms).toBe('none,zlib');
    const other = new SSHReverseTunnel();
    other.sshCompressionAlgorithms = 'zlib@openssh.com';
    other.reset();
    expect(other.sshCompressionAlgorithms).toBe('none,zlib');
    const t = await throughTunnel(tunnel, logText(100_000, 4), logText(100_000, 5));
    expect(t.negotiated).toBe('none/none');
    expect(t.outgoing.raw).toBe(0); // no summary: nothing was compressed
  });

  it('unknown names are dropped; a list of only unknown names is error 1005', async () => {
    const tunnel = makeTunnel(sshd);
    tunnel.sshCompressionAlgorithms = 'zstd@openssh.com,zlib@openssh.com';
    const t = await throughTunnel(tunnel, logText(10_000, 6), logText(10_000, 7));
    expect(t.negotiated).toBe('zlib@openssh.com/zlib@openssh.com');
    const refused = makeTunnel(sshd);
    refused.sshCompressionAlgorithms = 'zstd@openssh.com,lz4';
    const error = await refused.sshLogon().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).code).toBe(1005);
    expect((error as SshError).message).toMatch(/compression/);
  });
});

describe('against Dropbear (Debian offers zlib@openssh.com only)', () => {
  let dropbear: Peer;
  beforeAll(async () => {
    dropbear = await startDropbear();
  });
  afterAll(() => stopAll(dropbear));

  it('zlib@openssh.com: text and random data both ways, with re-exchanges of ours in the middle', async () => {
    const tunnel = peerTunnel(dropbear);
    tunnel.sshCompressionAlgorithms = 'zlib@openssh.com';
    const text = await throughTunnel(tunnel, logText(2 * MiB, 8), logText(2 * MiB, 9), async () => {
      await tunnel.exchangeKeys();
      await tunnel.exchangeKeys();
    });
    expect(text.negotiated).toBe('zlib@openssh.com/zlib@openssh.com');
    expect(text.rekeys.byUs).toBeGreaterThanOrEqual(2);
    expect(text.outgoing.compressed).toBeLessThan(text.outgoing.raw / 3);
    expect(text.incoming.compressed).toBeLessThan(text.incoming.raw / 3);
    const random = peerTunnel(dropbear);
    random.sshCompressionAlgorithms = 'zlib@openssh.com';
    const t = await throughTunnel(random, randomBytes(MiB), randomBytes(MiB));
    expect(t.negotiated).toBe('zlib@openssh.com/zlib@openssh.com');
  });

  it('plain zlib, which it does not offer, is a negotiation failure (1003) naming both lists', async () => {
    const tunnel = peerTunnel(dropbear);
    tunnel.sshCompressionAlgorithms = 'zlib';
    const error = await tunnel.sshLogon().then(
      () => null,
      (e: unknown) => e,
    );
    expect((error as SshError).code).toBe(1003);
    expect((error as SshError).message).toMatch(/compression.*we offer zlib; the server offers zlib@openssh.com/);
  });
});

describe('against AsyncSSH (plain zlib, from the first NEWKEYS on)', () => {
  let asyncssh: Peer;
  beforeAll(async () => {
    asyncssh = await startAsyncSsh(['aes128-ctr', 'aes256-gcm@openssh.com'], ['hmac-sha2-256'], undefined, ['zlib', 'none']);
  });
  afterAll(() => stopAll(asyncssh));

  it('zlib: text and random data both ways, with a re-exchange in the middle', async () => {
    const tunnel = peerTunnel(asyncssh);
    tunnel.sshCompressionAlgorithms = 'zlib';
    const t = await throughTunnel(tunnel, logText(2 * MiB, 10), randomBytes(MiB), () => tunnel.exchangeKeys());
    expect(t.negotiated).toBe('zlib/zlib');
    expect(t.rekeys.byUs).toBeGreaterThanOrEqual(1);
    expect(t.incoming.compressed).toBeLessThan(t.incoming.raw / 3);
    const back = await throughTunnel(peerTunnelWith(asyncssh, 'zlib'), randomBytes(MiB), logText(2 * MiB, 11));
    expect(back.outgoing.compressed).toBeLessThan(back.outgoing.raw / 3);
  });
});

function peerTunnelWith(peer: Peer, compression: string): SSHReverseTunnel {
  const tunnel = peerTunnel(peer);
  tunnel.sshCompressionAlgorithms = compression;
  return tunnel;
}

describe('a server that sends what no compressor would', () => {
  it('a decompression bomb (64 MiB of zeros in one packet) is error 1016 and a clean close', async () => {
    const server = await startScriptedServer({
      serverHooks: { compression: 'zlib' },
      forwardingGranted(c) {
        c.server.send(forwardedOpen(3));
        c.flush();
      },
      channelConfirmed(c, clientChannel) {
        c.server.send(channelData(clientChannel, new Uint8Array(64 * MiB)));
        c.flush();
      },
    });
    const tunnel = new SSHReverseTunnel();
    tunnel.sshHost = '127.0.0.1';
    tunnel.sshPort = server.port;
    tunnel.sshUser = 'u';
    tunnel.sshPassword = PASSWORD;
    tunnel.config('SSHAcceptAnyServerHostKey=True');
    tunnel.sshCompressionAlgorithms = 'zlib';
    tunnel.timeout = 30;
    const closed = new Promise<{ statusCode: number; description: string }>((resolve) => tunnel.once('disconnected', resolve));
    const target = await listen(() => undefined);
    await tunnel.sshLogon();
    await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', target.port);
    const { statusCode, description } = await closed;
    expect(statusCode).toBe(1016);
    expect(description).toMatch(/cannot decompress packet: it inflates past 262144 bytes/);
    const connection = server.connections[0]!;
    // The client said why as it closed: a DISCONNECT with reason 6 (compression error).
    const disconnect = await pollUntil(() => connection.server.receivedPayloads.find((p) => p[0] === 1), 'the DISCONNECT to reach the server');
    expect(Buffer.from(disconnect).readUInt32BE(1)).toBe(6);
    await target.close();
    await server.close();
  });
});
