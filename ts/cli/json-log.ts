// `revtun --json` (LogFormat json): one JSON object per line on standard output for each change
// of state and each forwarded connection, for log shippers and supervisors to read without
// parsing English. Every object starts with `time` (ISO 8601) and `event`; the README's table
// lists every event and field, and the field names are kept stable. Human messages still go
// to standard error. Only what the tunnel already reports goes out: host, user, ports,
// algorithms, error codes and their descriptions, never a password, passphrase or key.

import type { SSHReverseTunnel } from '../tunnel/tunnel.js';
import { Code } from '../protocol/errors.js';
import type { KeyExchangeEvent } from '../tunnel/events.js';
import type { RemoteForwardSpec } from './args.js';

/** The event names, as they appear in the `event` field. */
export type JsonEventName = 'connected' | 'forward_up' | 'forward_failed' | 'connection_opened' | 'connection_closed' | 'down' | 'reconnecting' | 'stopped' | 'fatal';

type JsonValue = string | number | boolean | null;

/** Builds one line: `time` and `event` first, then the event's fields in the order given. */
export function formatJsonEvent(time: Date, event: JsonEventName, fields: Record<string, JsonValue>): string {
  return JSON.stringify({ time: time.toISOString(), event, ...fields });
}

/** A -R target as the messages name it: host:port, a socket path, or socks for a dynamic forwarding. */
export function forwardTarget(host: string, port: number, dynamic: boolean): string {
  if (dynamic) return 'socks';
  if (host.includes('/')) return host;
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** A -R argument written back the way ssh reads it: [bind_address:]port[:target]. */
export function forwardSpecText(forward: Pick<RemoteForwardSpec, 'bindAddress' | 'port' | 'host' | 'hostPort' | 'dynamic'>): string {
  const listen = forward.bindAddress.includes('/') ? forward.bindAddress : `${forward.bindAddress.includes(':') ? `[${forward.bindAddress}]` : forward.bindAddress}:${forward.port}`;
  return forward.dynamic ? listen : `${listen}:${forwardTarget(forward.host, forward.hostPort, false)}`;
}

export interface JsonLogTarget {
  /** The host as the user named it, and where the connection goes. */
  host: string;
  port: number;
  user: string;
}

/** What main.ts reports itself: the tunnel has no event for these. */
export interface JsonLog {
  /** A -R forwarding is listening: on the port asked for, or on the one the server allocated for port 0. */
  forwardUp(forward: RemoteForwardSpec, allocatedPort: number): void;
  /** A -R forwarding the server refused at the start; revtun goes on without it. */
  forwardFailed(forward: RemoteForwardSpec, code: number, description: string): void;
  /** revtun is about to exit with status 255 for this reason; nothing is written after it. */
  fatal(code: number, description: string): void;
}

/**
 * Writes the JSON event lines for `tunnel` through `write` (one line each, no newline) from
 * now on. `now` is the clock for `time` (tests pass a fixed one).
 */
export function attachJsonLog(tunnel: SSHReverseTunnel, target: JsonLogTarget, write: (line: string) => void, now: () => Date = () => new Date()): JsonLog {
  const emit = (event: JsonEventName, fields: Record<string, JsonValue>) => write(formatJsonEvent(now(), event, fields));
  let algorithms: KeyExchangeEvent | null = null;
  let everConnected = false;
  // Whether this connection's `connected` line is out: after a reconnect the tunnel reports
  // 'up' only once the forwardings are restored, and their lines must follow it, not precede it.
  let connectedWritten = false;
  // After `fatal` the process is on its way out: the logoff's 'closed' is no `stopped`.
  let ended = false;
  // Where each open forwarded connection came from, for its close line (the channel is gone by then).
  const open = new Map<number, { originAddress: string; originPort: number; target: string }>();

  tunnel.on('keyExchange', (e) => {
    if (e.initial) algorithms = e;
  });
  const writeConnected = () => {
    if (connectedWritten) return;
    connectedWritten = true;
    emit('connected', {
      server: target.host,
      port: target.port,
      user: target.user,
      reconnect: everConnected,
      kex: algorithms?.kex ?? null,
      hostKeyAlgorithm: algorithms?.hostKey ?? null,
      cipher: algorithms?.cipherClientToServer ?? null,
      mac: algorithms?.macClientToServer ?? null,
      compression: algorithms?.compressionClientToServer ?? null,
    });
    everConnected = true;
  };
  tunnel.on('tunnelState', (e) => {
    switch (e.state) {
      case 'up':
        writeConnected();
        return;
      case 'down':
        connectedWritten = false;
        open.clear();
        emit('down', { code: e.error.code, description: e.error.message });
        return;
      case 'reconnecting':
        emit('reconnecting', { attempt: e.attempt, delayMs: e.delayMs, code: e.error.code, description: e.error.message });
        return;
      case 'closed':
        // A failed logon or a lost connection is reported by main.ts as fatal, with its exit.
        if (everConnected && e.error === null && !ended) emit('stopped', {});
        return;
    }
  });
  tunnel.on('forwardingRestored', (e) => {
    // The first restored forwarding means the logon succeeded: say so before it.
    writeConnected();
    emit('forward_up', {
      spec: forwardSpecText({ bindAddress: e.address, port: e.requestedPort, host: e.forwardingHost, hostPort: e.forwardingPort, dynamic: e.dynamic }),
      bindAddress: e.address,
      requestedPort: e.requestedPort,
      allocatedPort: e.boundPort,
      target: forwardTarget(e.forwardingHost, e.forwardingPort, e.dynamic),
      restored: true,
    });
  });
  tunnel.on('error', (e) => {
    if (e.errorCode !== Code.TunnelReconnectLimit) return;
    // A forwarding given up after a reconnect. The event does not say which; the tunnel drops
    // it from `forwardings` right after emitting, so the one missing a microtask later is it.
    const before = [...tunnel.forwardings];
    queueMicrotask(() => {
      for (const f of before.filter((f) => !tunnel.forwardings.includes(f))) {
        emit('forward_failed', {
          spec: forwardSpecText({ bindAddress: f.address, port: f.port, host: f.forwardingHost, hostPort: f.forwardingPort, dynamic: f.dynamic }),
          code: e.errorCode,
          description: e.description,
        });
      }
    });
  });
  tunnel.on('sshChannelOpened', (e) => {
    const channel = tunnel.sshChannels.find((c) => c.channelId === e.channelId);
    if (!channel) return;
    const info = {
      originAddress: channel.originAddress,
      originPort: channel.originPort,
      target: channel.forwardingHost || channel.forwardingPort ? forwardTarget(channel.forwardingHost, channel.forwardingPort, false) : 'socks',
    };
    open.set(e.channelId, info);
    emit('connection_opened', { channel: e.channelId, ...info, listenAddress: channel.connectedAddress, listenPort: channel.connectedPort });
  });
  tunnel.on('sshChannelClosed', (e) => {
    const info = open.get(e.channelId);
    if (!info) return; // refused before it opened
    open.delete(e.channelId);
    emit('connection_closed', { channel: e.channelId, ...info, bytesToTarget: e.bytesReceived, bytesFromTarget: e.bytesSent });
  });

  return {
    forwardUp(forward, allocatedPort) {
      emit('forward_up', {
        spec: forwardSpecText(forward),
        bindAddress: forward.bindAddress,
        requestedPort: forward.port,
        allocatedPort: forward.port === 0 ? allocatedPort : forward.port,
        target: forwardTarget(forward.host, forward.hostPort, forward.dynamic),
        restored: false,
      });
    },
    forwardFailed(forward, code, description) {
      emit('forward_failed', { spec: forwardSpecText(forward), code, description });
    },
    fatal(code, description) {
      ended = true;
      emit('fatal', { code, description });
    },
  };
}

/**
 * A writer of lines to standard output that never throws: a closed pipe (the reader went away)
 * ends the JSON output instead of the tunnel, and says so once on standard error.
 */
export function stdoutLines(stderr: (message: string) => void): (line: string) => void {
  let broken = false;
  process.stdout.on('error', (error) => {
    if (broken) return;
    broken = true;
    stderr(`revtun: standard output failed (${error.message}); JSON events are no longer written`);
  });
  return (line) => {
    if (!broken) process.stdout.write(`${line}\n`);
  };
}
