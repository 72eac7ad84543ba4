// Prometheus metrics for one tunnel (prom-client, in a Registry of its own so an application's
// default registry is neither polluted nor relied on), and the tunnel's health: up only while
// the connection is logged on and every forwarding asked for is listening. metrics-server.ts
// serves both over HTTP; an application can mount `registry` in its own server instead.
//
// Values that the tunnel already knows (connected, channels, forwardings, bytes) are read when
// scraped; the rest are counted from its events, from the moment createMetrics is called.

import { Counter, Gauge, Registry } from 'prom-client';
import type { SSHReverseTunnel } from './tunnel.js';
import type { ErrorEvent, KeyExchangeEvent, KeepAliveEvent, TunnelStateEvent } from './events.js';
import { Code } from '../protocol/errors.js';

/** Options of createMetrics: which registry to use and what counts as healthy. */
export interface TunnelMetricsOptions {
  /** Where the collectors are registered; default a new Registry. */
  registry?: Registry;
  /**
   * How many forwardings must be listening for the tunnel to be healthy. Default: every
   * forwarding the tunnel was granted, reduced only by cancelForwarding; one given up after a
   * reconnect (error 10057) still counts, as down. The CLI passes the number of -R given, so
   * one the server refused at the start counts as down too.
   */
  expectedForwardings?: number;
}

/** What /healthz answers: healthy (200) or not (503), and the one line it says. */
export interface TunnelHealth {
  healthy: boolean;
  /** One short line saying why: "ok: connected, 2 of 2 forwardings up", "not connected (reconnecting)", ... */
  reason: string;
}

/** What createMetrics returns: the registry holding the revtun_ collectors, the health rule, and a way to stop. */
export interface TunnelMetrics {
  readonly registry: Registry;
  /** Whether the tunnel is connected with every expected forwarding listening, and why not. */
  health(): TunnelHealth;
  /** Stops counting the tunnel's events and removes the collectors from the registry. */
  detach(): void;
}

/** The metric names, all prefixed revtun_ (README "Running as a service" lists them). */
const NAMES = [
  'revtun_connected',
  'revtun_reconnects_total',
  'revtun_reconnect_attempts_total',
  'revtun_forwardings_up',
  'revtun_forwardings_expected',
  'revtun_channels_open',
  'revtun_channel_bytes_received_total',
  'revtun_channel_bytes_sent_total',
  'revtun_keepalive_rtt_seconds',
  'revtun_keepalives_answered_total',
  'revtun_key_exchanges_total',
] as const;

/**
 * Registers revtun's collectors for `tunnel` and starts counting its events. A registry can hold
 * one tunnel's metrics (the names are fixed): give each tunnel its own registry.
 */
export function createMetrics(tunnel: SSHReverseTunnel, options: TunnelMetricsOptions = {}): TunnelMetrics {
  const registry = options.registry ?? new Registry();
  // The tunnel forgets a forwarding it gave up on (10057) as it forgets a cancelled one; only
  // the cancelled one is no longer wanted, so the given-up ones are counted here.
  let givenUp = 0;
  const expected = () => options.expectedForwardings ?? tunnel.forwardings.length + givenUp;
  const registers = [registry];

  new Gauge({
    name: 'revtun_connected',
    help: '1 while the SSH connection is logged on, 0 while connecting, reconnecting or stopped.',
    registers,
    collect() {
      this.set(tunnel.connected ? 1 : 0);
    },
  });
  const reconnects = new Counter({ name: 'revtun_reconnects_total', help: 'Connections re-established after the link was lost.', registers });
  const attempts = new Counter({ name: 'revtun_reconnect_attempts_total', help: 'Reconnect attempts started, successful or not.', registers });
  new Gauge({
    name: 'revtun_forwardings_up',
    help: 'Remote forwardings the server is listening for on the current connection.',
    registers,
    collect() {
      this.set(tunnel.forwardingsListening);
    },
  });
  new Gauge({
    name: 'revtun_forwardings_expected',
    help: 'Remote forwardings that should be listening (the tunnel is healthy when all are up).',
    registers,
    collect() {
      this.set(expected());
    },
  });
  new Gauge({
    name: 'revtun_channels_open',
    help: 'Forwarded connections (SSH channels) open now.',
    registers,
    collect() {
      this.set(tunnel.sshChannelCount);
    },
  });
  // The tunnel's totals only grow; the counters are moved up to them at each scrape.
  new Counter({
    name: 'revtun_channel_bytes_received_total',
    help: 'Channel payload bytes received from the server (what remote clients sent towards the local targets).',
    registers,
    collect() {
      this.inc(Math.max(0, tunnel.channelBytes.received - seen.received));
      seen.received = tunnel.channelBytes.received;
    },
  });
  new Counter({
    name: 'revtun_channel_bytes_sent_total',
    help: 'Channel payload bytes sent to the server (what the local targets answered).',
    registers,
    collect() {
      this.inc(Math.max(0, tunnel.channelBytes.sent - seen.sent));
      seen.sent = tunnel.channelBytes.sent;
    },
  });
  // Counted from here on: bytes moved before createMetrics are not this registry's.
  const seen = { ...tunnel.channelBytes };
  const roundTrip = new Gauge({ name: 'revtun_keepalive_rtt_seconds', help: 'Round trip of the last answered keep-alive request (0 until the first answer; see ServerAliveInterval).', registers });
  const keepAlivesAnswered = new Counter({ name: 'revtun_keepalives_answered_total', help: 'Keep-alive requests the server answered.', registers });
  const keyExchanges = new Counter({
    name: 'revtun_key_exchanges_total',
    help: 'Key exchanges completed: initiator "initial" (each connection\'s first), "client" (a re-key revtun began) or "server".',
    labelNames: ['initiator'] as const,
    registers,
  });
  for (const initiator of ['initial', 'client', 'server']) keyExchanges.inc({ initiator }, 0);

  let reconnecting = false;
  const onState = (e: TunnelStateEvent) => {
    if (e.state === 'closed') givenUp = 0; // the tunnel's forwardings went with the connection
    if (e.state === 'reconnecting') attempts.inc();
    if (e.state === 'up' && reconnecting) reconnects.inc();
    if (e.state === 'down' || e.state === 'reconnecting') reconnecting = true;
    if (e.state === 'up' || e.state === 'closed') reconnecting = false;
  };
  const onKeepAlive = (e: KeepAliveEvent) => {
    roundTrip.set(e.roundTripMs / 1000);
    keepAlivesAnswered.inc();
  };
  const onKeyExchange = (e: KeyExchangeEvent) => keyExchanges.inc({ initiator: e.initial ? 'initial' : e.byServer ? 'server' : 'client' });
  const onError = (e: ErrorEvent) => {
    if (e.errorCode === Code.TunnelReconnectLimit) givenUp++;
  };
  tunnel.on('tunnelState', onState);
  tunnel.on('error', onError);
  tunnel.on('keepAlive', onKeepAlive);
  tunnel.on('keyExchange', onKeyExchange);

  return {
    registry,
    health() {
      return tunnelHealth(tunnel.connected, reconnecting, tunnel.forwardingsListening, expected());
    },
    detach() {
      tunnel.off('tunnelState', onState);
      tunnel.off('error', onError);
      tunnel.off('keepAlive', onKeepAlive);
      tunnel.off('keyExchange', onKeyExchange);
      for (const name of NAMES) registry.removeSingleMetric(name);
    },
  };
}

/** The health rule, on its own so it can be tested without a tunnel. */
export function tunnelHealth(connected: boolean, reconnecting: boolean, forwardingsUp: number, forwardingsExpected: number): TunnelHealth {
  if (!connected) return { healthy: false, reason: reconnecting ? 'not connected (reconnecting)' : 'not connected' };
  // A tunnel that forwards nothing serves no one: healthy would hide a forgotten -R.
  if (forwardingsExpected === 0) return { healthy: false, reason: 'connected, but no forwardings requested' };
  const count = `${forwardingsUp} of ${forwardingsExpected} forwardings up`;
  if (forwardingsUp < forwardingsExpected) return { healthy: false, reason: `connected, but only ${count}` };
  return { healthy: true, reason: `ok: connected, ${count}` };
}
