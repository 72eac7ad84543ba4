// Key re-exchange with channel data in flight, in both directions and from both sides,
// plus strict key exchange and the session-level settings that depend on the handshake.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sshd, startSshdWithEcho, stopAll, type EchoServer } from '../helpers/sshd.js';
import { makeTunnel, rekeyCounts } from '../helpers/tunnel.js';
import { pollUntil } from '../helpers/kernel.js';
import { connect, listen, receiveHashed, sendHashed } from '../helpers/streams.js';

const MiB = 1024 * 1024;
let sshd: Sshd;
let echo: EchoServer;
beforeAll(async () => {
  // The server asks for new keys after every 1 MiB it sends or receives.
  ({ sshd, echo } = await startSshdWithEcho({ config: ['RekeyLimit 1M'] }));
});
afterAll(() => stopAll(echo, sshd));

/** 16 MiB each way at once through a local-forwarding tunnel; returns the re-exchanges completed, by who started them. */
async function transferCountingRekeys(configure: string[], during?: (exchangeKeys: () => Promise<void>) => Promise<void>) {
  let targetReceived: Promise<{ bytes: number; sha256: string }> | undefined;
  let targetSent: Promise<string> | undefined;
  const target = await listen((socket) => {
    targetReceived = receiveHashed(socket);
    targetSent = sendHashed(socket, 16 * MiB);
  });
  const tunnel = makeTunnel(sshd, { config: configure });
  await tunnel.sshLogon();
  const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', target.port);
  const client = await connect(port);
  const clientReceived = receiveHashed(client);
  const extra = during?.(() => tunnel.exchangeKeys());
  const clientSent = await sendHashed(client, 16 * MiB);
  await extra;
  const down = await clientReceived;
  const up = await targetReceived!;
  expect(down.sha256).toBe(await targetSent!);
  expect(up.sha256).toBe(clientSent);
  expect(up.bytes).toBe(16 * MiB);
  const rekeys = rekeyCounts(tunnel);
  client.destroy();
  await tunnel.sshLogoff();
  await target.close();
  return rekeys;
}

describe('key re-exchange', () => {
  it('server-initiated (sshd RekeyLimit) during a 16 MiB transfer each way', async () => {
    const { byUs, byServer } = await transferCountingRekeys([]);
    // 32 MiB through sshd's 1 MiB limit; our own threshold (1 GiB by default) is never reached.
    expect(byServer).toBeGreaterThanOrEqual(10);
    expect(byUs).toBe(0);
  });

  it('client-initiated by KeyRenegotiationThreshold', async () => {
    // Our threshold is 256 KiB, tighter than the server's 1 MiB. How many exchanges each side
    // starts depends on how much data is in flight while one runs (at most a window each
    // way), so the bound is what 32 MiB of traffic guarantees: an exchange of ours at least
    // every 256 KiB + 2 x 2 MiB, at least 7 in all, each of them completed.
    const { byUs } = await transferCountingRekeys(['KeyRenegotiationThreshold=262144']);
    expect(byUs).toBeGreaterThanOrEqual(7);
  });

  it('exchangeKeys() in the middle of a transfer', async () => {
    let explicit = 0;
    const { byUs, byServer } = await transferCountingRekeys([], async (exchangeKeys) => {
      for (let i = 0; i < 5; i++) {
        await exchangeKeys();
        explicit++;
      }
    });
    expect(explicit).toBe(5);
    // A call made while sshd's own exchange runs waits for that one instead of starting
    // another, so not all five need be ours; but ours are, and every call saw one complete.
    expect(byUs).toBeGreaterThanOrEqual(1);
    expect(byUs + byServer).toBeGreaterThanOrEqual(5);
  });

  it('exchangeKeys() on an idle connection performs exactly one re-exchange per call', async () => {
    const tunnel = makeTunnel(sshd);
    await tunnel.sshLogon();
    expect(rekeyCounts(tunnel)).toEqual({ byUs: 0, byServer: 0 });
    await tunnel.exchangeKeys();
    expect(rekeyCounts(tunnel)).toEqual({ byUs: 1, byServer: 0 });
    await tunnel.exchangeKeys();
    expect(rekeyCounts(tunnel)).toEqual({ byUs: 2, byServer: 0 });
    expect(tunnel.connected).toBe(true);
    await tunnel.sshLogoff();
  });

  it('SSHKeyRenegotiate via config starts a re-exchange', async () => {
    const tunnel = makeTunnel(sshd);
    await tunnel.sshLogon();
    tunnel.config('SSHKeyRenegotiate');
    await pollUntil(() => rekeyCounts(tunnel).byUs === 1, 'a re-exchange of ours to complete');
    expect(rekeyCounts(tunnel)).toEqual({ byUs: 1, byServer: 0 });
    expect(tunnel.connected).toBe(true);
    await tunnel.sshLogoff();
  });
});

describe('strict key exchange', () => {
  it('is negotiated with OpenSSH by default', async () => {
    const tunnel = makeTunnel(sshd);
    expect(tunnel.config('NegotiatedStrictKex')).toBe('False');
    await tunnel.sshLogon();
    expect(tunnel.config('NegotiatedStrictKex')).toBe('True');
    expect(tunnel.config('ServerSSHVersionString')).toMatch(/^SSH-2\.0-OpenSSH_/);
    await tunnel.sshLogoff();
  });

  it('UseStrictKeyExchange=2 waits for the server KEXINIT and still negotiates strict kex with OpenSSH', async () => {
    const tunnel = makeTunnel(sshd, { config: ['UseStrictKeyExchange=2'] });
    await tunnel.sshLogon();
    expect(tunnel.config('NegotiatedStrictKex')).toBe('True');
    await tunnel.sshLogoff();
  });

  it('is not offered with UseStrictKeyExchange=0', async () => {
    const tunnel = makeTunnel(sshd, { config: ['UseStrictKeyExchange=0'] });
    await tunnel.sshLogon();
    expect(tunnel.config('NegotiatedStrictKex')).toBe('False');
    await tunnel.sshLogoff();
  });
});
