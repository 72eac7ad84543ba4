// russh (crates.io) as the server: a foreign implementation stricter than OpenSSH, which drops
// a client that sends channel data after its own KEXINIT (RFC 4253 §7.1). Remote forwarding
// (RFC 4254 §7) with 16 MiB each way, cancelling a forwarding, public key logon, russh's
// ciphers and MACs, and key re-exchange with revtun sending the whole time: started by
// exchangeKeys(), by revtun's KeyRenegotiationThreshold, and by russh's own byte limit.
// Runs once per crypto provider.

import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type * as net from 'node:net';
import { connect, echoServer, listen, receiveHashed, roundTrip, sendHashed, sendUntil, type Received } from '../helpers/streams.js';
import { peerTunnel } from '../helpers/peers.js';
import { rekeyCounts } from '../helpers/tunnel.js';
import { startRusshServer, type RusshPeer } from '../helpers/russh.js';
import { generateKey, stopAll } from '../helpers/sshd.js';
import { Code, SshAuthMode, SshError, type SSHReverseTunnel } from '../../ts/index.js';
import { loadCryptoProvider, type CryptoProviderName } from '../../ts/crypto/select.js';

const MiB = 1024 * 1024;
const provider = loadCryptoProvider((process.env['REVTUN_CRYPTO'] ?? 'native') as CryptoProviderName);

// One server for most tests, started by the first that needs it: if it cannot start (not
// built), every test fails with the reason, rather than the file failing in a hook and
// its tests counting as skipped.
let shared: Promise<RusshPeer> | undefined;
const sharedServer = () => (shared ??= startRusshServer());
afterAll(async () => stopAll(await shared?.catch(() => undefined)));

/**
 * Runs `work`, failing if the tunnel disconnects meanwhile, with revtun's reason and russh's
 * (its log line for this connection), rather than waiting on a transfer that cannot finish.
 * Call it while connected: the connection is found in russh's log by its local port.
 */
function guarded(tunnel: SSHReverseTunnel, peer: RusshPeer) {
  const localPort = tunnel.localPort;
  let fail!: (error: Error) => void;
  const lost = new Promise<never>((_, reject) => {
    fail = reject;
  });
  lost.catch(() => undefined);
  tunnel.on('disconnected', (e) => {
    void peer.connectionEnded(localPort).then((line) => fail(new Error(`the SSH connection dropped: revtun says "${e.description}" (${e.statusCode}); russh says "${line}"`)));
  });
  return <T>(work: Promise<T>): Promise<T> => Promise.race([work, lost]);
}

type Source = (socket: net.Socket) => Promise<Received>;
const fixed =
  (bytes: number): Source =>
  async (socket) => ({ bytes, sha256: await sendHashed(socket, bytes) });

/**
 * Forwards a port on the server to a local target and runs one connection through it:
 * `upload` writes at the target (revtun sends it to russh), `download` at russh's end.
 * Checks that each end received exactly what the other sent; returns the byte counts.
 */
async function transfer(
  tunnel: SSHReverseTunnel,
  guard: ReturnType<typeof guarded>,
  upload: Source,
  download: Source,
  onUploaded?: (chunk: Buffer) => void,
): Promise<{ uploaded: number; downloaded: number }> {
  let targetConnected!: (socket: net.Socket) => void;
  const targetSocket = new Promise<net.Socket>((resolve) => {
    targetConnected = resolve;
  });
  const target = await listen((socket) => targetConnected(socket));
  try {
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', target.port);
    const client = await connect(port);
    try {
      const clientReceived = receiveHashed(client, onUploaded);
      const clientSent = download(client);
      const socket = await guard(targetSocket);
      const targetReceived = receiveHashed(socket);
      const targetSent = upload(socket);
      const [sentUp, gotUp, sentDown, gotDown] = await guard(Promise.all([targetSent, clientReceived, clientSent, targetReceived]));
      expect(gotUp).toEqual(sentUp);
      expect(gotDown).toEqual(sentDown);
      await tunnel.cancelForwarding('127.0.0.1', port);
      return { uploaded: gotUp.bytes, downloaded: gotDown.bytes };
    } finally {
      client.destroy();
    }
  } finally {
    await target.close();
  }
}

/**
 * Resolves each time another `step` bytes have reached russh's end, so that whatever waits on
 * it happens while data is flowing.
 */
function progress(step: number) {
  let received = 0;
  let mark = step;
  let waiting: (() => void) | null = null;
  return {
    onChunk: (chunk: Buffer) => {
      received += chunk.length;
      if (received >= mark && waiting) {
        const resume = waiting;
        waiting = null;
        mark = received + step;
        resume();
      }
    },
    more: () =>
      new Promise<void>((resolve) => {
        if (received >= mark) {
          mark = received + step;
          resolve();
        } else waiting = resolve;
      }),
  };
}

describe('russh: logon and remote forwarding', () => {
  it('logs on with a password and moves 16 MiB each way through a port it forwards', async () => {
    const russh = await sharedServer();
    const tunnel = peerTunnel(russh);
    await tunnel.sshLogon();
    try {
      expect(tunnel.config('ServerSSHVersionString')).toMatch(/^SSH-2\.0-russh_/);
      const { uploaded, downloaded } = await transfer(tunnel, guarded(tunnel, russh), fixed(16 * MiB), fixed(16 * MiB));
      expect(uploaded).toBe(16 * MiB);
      expect(downloaded).toBe(16 * MiB);
      expect(tunnel.connected).toBe(true);
    } finally {
      await tunnel.sshLogoff();
    }
  });

  it('cancelForwarding closes the port on the server, and the connection stays up', async () => {
    const echo = await echoServer();
    const tunnel = peerTunnel(await sharedServer());
    await tunnel.sshLogon();
    try {
      const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
      const data = randomBytes(256 * 1024);
      expect((await roundTrip(port, data)).equals(data)).toBe(true);
      await tunnel.cancelForwarding('127.0.0.1', port);
      // russh-server closes the listener before it answers, so the port refuses at once.
      const refused = await connect(port).then(
        (socket) => {
          socket.destroy();
          return null;
        },
        (error: NodeJS.ErrnoException) => error.code,
      );
      expect(refused).toBe('ECONNREFUSED');
      expect(tunnel.connected).toBe(true);
      const again = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
      expect((await roundTrip(again, data)).equals(data)).toBe(true);
    } finally {
      await tunnel.sshLogoff();
      await echo.close();
    }
  });

  it('a forwarding on a non-loopback address is refused (1098) and the connection stays up', async () => {
    const tunnel = peerTunnel(await sharedServer());
    await tunnel.sshLogon();
    try {
      const error = await tunnel.requestForwarding('0.0.0.0', 0, '127.0.0.1', 9).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SshError);
      expect((error as SshError).code).toBe(Code.RequestFailure);
      expect(tunnel.connected).toBe(true);
    } finally {
      await tunnel.sshLogoff();
    }
  });

  it('logs on with an authorized ed25519 key', async () => {
    const key = generateKey(mkdtempSync(join(tmpdir(), 'revtun-russh-client-')), 'id_ed25519', 'ed25519');
    const server = await startRusshServer({ authorizedKey: key.publicLine });
    const echo = await echoServer();
    const tunnel = peerTunnel(server);
    tunnel.sshAuthMode = SshAuthMode.PublicKey;
    tunnel.sshCertStore = key.privatePath;
    tunnel.sshPassword = '';
    try {
      await tunnel.sshLogon();
      const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
      const data = randomBytes(64 * 1024);
      expect((await roundTrip(port, data)).equals(data)).toBe(true);
      expect(server.log()).toContain('public key ssh-ed25519 for');
    } finally {
      await tunnel.sshLogoff();
      await stopAll(echo, server);
    }
  });
});

/** Logs on with `cipher` and `mac` and round-trips 256 KiB; returns revtun's negotiation line. */
async function connectWith(cipher: string, mac: string): Promise<string> {
  const echo = await echoServer();
  const tunnel = peerTunnel(await sharedServer());
  tunnel.sshEncryptionAlgorithms = cipher;
  tunnel.config(`SSHMacAlgorithms=${mac}`);
  const logs: string[] = [];
  tunnel.on('log', (e) => logs.push(e.message));
  try {
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
    const data = randomBytes(256 * 1024);
    expect((await roundTrip(port, data)).equals(data)).toBe(true);
    return logs.find((line) => line.startsWith('negotiated ')) ?? '';
  } finally {
    await tunnel.sshLogoff();
    await echo.close();
  }
}

// Everything russh offers by default (no SHA-1, no CBC); every provider implements all of it.
describe('russh: ciphers and MACs', () => {
  const CIPHERS = ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes256-ctr', 'aes192-ctr', 'aes128-ctr'];
  const MACS = ['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512', 'hmac-sha2-256'];

  it.each(CIPHERS)('cipher %s', async (cipher) => {
    expect(provider.ciphers.has(cipher)).toBe(true);
    const aead = provider.ciphers.get(cipher)!.aead;
    expect(await connectWith(cipher, 'hmac-sha2-256')).toContain(`cipher=${cipher}/${cipher} mac=${aead ? 'aead/aead' : 'hmac-sha2-256/hmac-sha2-256'}`);
  });

  it.each(MACS)('MAC %s', async (mac) => {
    expect(await connectWith('aes128-ctr', mac)).toContain(`cipher=aes128-ctr/aes128-ctr mac=${mac}/${mac}`);
  });
});

describe('russh: key re-exchange while revtun is sending', () => {
  it('exchangeKeys() five times during a continuous upload', async () => {
    const russh = await sharedServer();
    const tunnel = peerTunnel(russh);
    await tunnel.sshLogon();
    try {
      const guard = guarded(tunnel, russh);
      // Each exchange starts once another 256 KiB has arrived since the last one finished,
      // and the target keeps writing until all five are done: the channel is busy throughout.
      const flowing = progress(256 * 1024);
      let explicit = 0;
      const rekeying = (async () => {
        for (let i = 0; i < 5; i++) {
          await guard(flowing.more());
          await guard(tunnel.exchangeKeys());
          if (!tunnel.connected) throw new Error(`the connection was gone after exchangeKeys() #${i + 1}`);
          explicit++;
        }
      })();
      const stop = rekeying.catch(() => undefined);
      const [{ uploaded }] = await Promise.all([transfer(tunnel, guard, (socket) => sendUntil(socket, stop), fixed(0), flowing.onChunk), rekeying]);
      expect(explicit).toBe(5);
      // Each call started one of ours: neither side's byte limit (1 GiB) comes near.
      expect(rekeyCounts(tunnel)).toEqual({ byUs: 5, byServer: 0 });
      expect(uploaded).toBeGreaterThanOrEqual(5 * 256 * 1024);
      expect(tunnel.connected).toBe(true);
    } finally {
      await tunnel.sshLogoff();
    }
  });

  it('KeyRenegotiationThreshold=16384 (its minimum) during a 16 MiB upload', async () => {
    const russh = await sharedServer();
    const tunnel = peerTunnel(russh);
    tunnel.config('KeyRenegotiationThreshold=16384');
    await tunnel.sshLogon();
    try {
      const { uploaded } = await transfer(tunnel, guarded(tunnel, russh), fixed(16 * MiB), fixed(0));
      expect(uploaded).toBe(16 * MiB);
      // Between two exchanges of ours at most the threshold, a packet and one window (russh
      // grants 2 MiB) go out, so 16 MiB guarantee 7 of them; each must complete.
      expect(rekeyCounts(tunnel).byUs).toBeGreaterThanOrEqual(7);
      expect(tunnel.connected).toBe(true);
    } finally {
      await tunnel.sshLogoff();
    }
  });

  it('started by russh (--rekey-bytes 1 MiB) during a 16 MiB transfer each way', async () => {
    const server = await startRusshServer({ rekeyBytes: MiB });
    const tunnel = peerTunnel(server);
    try {
      await tunnel.sshLogon();
      const { uploaded, downloaded } = await transfer(tunnel, guarded(tunnel, server), fixed(16 * MiB), fixed(16 * MiB));
      expect(uploaded).toBe(16 * MiB);
      expect(downloaded).toBe(16 * MiB);
      // russh asks after 1 MiB read; until our KEXINIT reaches it, at most one window (2 MiB)
      // more arrives. So each exchange covers at most ~3 MiB of the 16 MiB it reads: at least 5.
      const { byUs, byServer } = rekeyCounts(tunnel);
      expect(byUs).toBe(0);
      expect(byServer).toBeGreaterThanOrEqual(5);
      expect(tunnel.connected).toBe(true);
    } finally {
      await tunnel.sshLogoff();
      await server.stop();
    }
  });
});
