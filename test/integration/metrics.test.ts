// createMetrics and serveMetrics from the library, on a tunnel to a real sshd: the collectors
// live in the registry given (never prom-client's global one), follow the bytes a forwarded
// connection moves (read back with prom-client's own getMetricsAsJSON), /healthz follows the
// forwardings, and a collector that fails costs a 500, not the process.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Gauge, Registry, register as globalRegistry } from 'prom-client';
import { createMetrics, serveMetrics, type SSHReverseTunnel, type ChannelClosedEvent, type ErrorEvent } from '../../ts/index.js';
import { startSshd, startSshdWithEcho, stopAll, type Sshd } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { roundTrip } from '../helpers/streams.js';

let sshd: Sshd;
let echo: Awaited<ReturnType<typeof startSshdWithEcho>>['echo'];
beforeAll(async () => {
  ({ sshd, echo } = await startSshdWithEcho());
});
afterAll(() => stopAll(echo, sshd));

/** A metric's value (the sample without labels, or the one with `labels`) from prom-client's JSON. */
async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const wanted = Object.entries(labels);
  return metric?.values.find((v) => wanted.every(([k, want]) => v.labels[k] === want))?.value;
}

async function loggedOn(): Promise<SSHReverseTunnel> {
  const tunnel = makeTunnel(sshd);
  await tunnel.sshLogon();
  return tunnel;
}

describe('createMetrics', () => {
  it('registers in the registry given, not the global one, and counts what a forwarded connection moves', async () => {
    const tunnel = await loggedOn();
    const registry = new Registry();
    const metrics = createMetrics(tunnel, { registry });
    try {
      expect(metrics.registry).toBe(registry);
      expect(await globalRegistry.getSingleMetric('revtun_connected')).toBeUndefined();
      expect(await metricValue(registry, 'revtun_connected')).toBe(1);
      // Connected with nothing to forward is not a working tunnel.
      expect(metrics.health()).toEqual({ healthy: false, reason: 'connected, but no forwardings requested' });

      const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
      expect(await metricValue(registry, 'revtun_forwardings_up')).toBe(1);
      expect(metrics.health()).toEqual({ healthy: true, reason: 'ok: connected, 1 of 1 forwardings up' });
      const closed = new Promise<ChannelClosedEvent>((resolve) => tunnel.once('sshChannelClosed', resolve));
      const data = randomBytes(50_000);
      expect((await roundTrip(port, data)).length).toBe(data.length);
      const event = await closed;
      // The echo answers every byte: as much went each way, and the event and the counters agree.
      expect(event).toMatchObject({ bytesReceived: data.length, bytesSent: data.length });
      expect(await metricValue(registry, 'revtun_channel_bytes_received_total')).toBe(data.length);
      expect(await metricValue(registry, 'revtun_channel_bytes_sent_total')).toBe(data.length);
      expect(await metricValue(registry, 'revtun_channels_open')).toBe(0);
      expect(tunnel.channelBytes).toEqual({ sent: data.length, received: data.length });

      // One forwarding is expected; once it is cancelled the tunnel is connected but not healthy.
      const strict = createMetrics(tunnel, { expectedForwardings: 1 });
      expect(strict.health().healthy).toBe(true);
      await tunnel.cancelForwarding('127.0.0.1', port);
      expect(strict.health()).toEqual({ healthy: false, reason: 'connected, but only 0 of 1 forwardings up' });
      strict.detach();
      // The default follows cancelForwarding: nothing is wanted any more.
      expect(metrics.health()).toEqual({ healthy: false, reason: 'connected, but no forwardings requested' });
    } finally {
      metrics.detach();
      await tunnel.sshLogoff();
    }
    expect(await registry.getMetricsAsJSON()).toEqual([]);
  });
});

describe('default health after a reconnect', () => {
  it('a forwarding given up after a reconnect (10057) still counts as expected, so the tunnel is not healthy', async () => {
    const own = await startSshd();
    const tunnel = makeTunnel(own, { config: ['AutoReconnect=1', 'MaxRetryCount=0', 'RetryInterval=1'] });
    const metrics = createMetrics(tunnel);
    try {
      await tunnel.sshLogon();
      await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
      expect(metrics.health().healthy).toBe(true);
      // The server comes back refusing every forwarding: the restore fails and is retried.
      // Once the first retry has run, MaxRetryCount 1 makes the next one give up (10057).
      tunnel.on('reconnectAttempt', (e) => {
        if (e.retryType === 1) tunnel.config('MaxRetryCount=1');
      });
      const gaveUp = new Promise<ErrorEvent>((resolve) => tunnel.on('error', (e) => e.errorCode === 10057 && resolve(e)));
      own.setConfig(['PermitListen none']);
      await own.restart();
      expect((await gaveUp).errorCode).toBe(10057);
      expect(tunnel.connected).toBe(true);
      expect(tunnel.forwardings).toEqual([]);
      expect(metrics.health()).toEqual({ healthy: false, reason: 'connected, but only 0 of 1 forwardings up' });
    } finally {
      metrics.detach();
      await tunnel.sshLogoff().catch(() => undefined);
      await own.stop();
    }
  });
});

describe('serveMetrics', () => {
  it('listens on 127.0.0.1 unless told otherwise, answers a failing collector with 500 and keeps serving, and closes', async () => {
    const tunnel = await loggedOn();
    const registry = new Registry();
    const server = await serveMetrics(tunnel, { port: 0, registry });
    try {
      expect(server.host).toBe('127.0.0.1');
      const health = await fetch(`http://127.0.0.1:${server.port}/healthz`);
      expect(health.status).toBe(503);
      expect(await health.text()).toBe('connected, but no forwardings requested\n');
      new Gauge({
        name: 'app_broken',
        help: 'A collector that fails.',
        registers: [registry],
        collect() {
          throw new Error('collector broke');
        },
      });
      const failed = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(failed.status).toBe(500);
      expect(await failed.text()).toMatch(/collector broke/);
      expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(503);
      expect((await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
      await server.close(); // twice is harmless
      await tunnel.sshLogoff();
    }
    await expect(fetch(`http://127.0.0.1:${server.port}/healthz`)).rejects.toThrow();
  });

  it('rejects when the port is taken, and leaves nothing registered', async () => {
    const tunnel = makeTunnel(sshd);
    const registry = new Registry();
    const first = await serveMetrics(tunnel, { port: 0 });
    try {
      await expect(serveMetrics(tunnel, { port: first.port, registry })).rejects.toThrow(/EADDRINUSE/);
      expect(await registry.getMetricsAsJSON()).toEqual([]);
    } finally {
      await first.close();
    }
  });

  it("treats host '' as the default 127.0.0.1, not as every interface", async () => {
    const tunnel = makeTunnel(sshd);
    const server = await serveMetrics(tunnel, { host: '', port: 0 });
    try {
      expect(server.host).toBe('127.0.0.1');
    } finally {
      await server.close();
    }
  });
});
