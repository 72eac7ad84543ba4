// The revtun keywords for running as a service: LogFormat (text or json: one JSON object per
// event on standard output, json-log.ts) and MetricsListen (where to serve Prometheus metrics
// and /healthz, ../tunnel/metrics.ts). Both are accepted with -o and in ssh_config, as the
// tunnel's own settings are; ssh itself would refuse them, so a file shared with ssh lists them
// in IgnoreUnknown.

import { UsageError } from './args.js';

/** The keywords, spelt as the README and `revtun -G` (in lower case) show them. */
export const OPS_KEYWORDS = ['LogFormat', 'MetricsListen'] as const;

export type LogFormat = 'text' | 'json';

/** LogFormat's value; absent: text. */
export function parseLogFormat(value: string | undefined): LogFormat {
  if (value === undefined) return 'text';
  const format = value.toLowerCase();
  if (format !== 'text' && format !== 'json') throw new UsageError(`Bad LogFormat '${value}' (text or json)`);
  return format;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** Loopback unless asked: metrics say how busy a tunnel is and where it leads. */
const DEFAULT_METRICS_HOST = '127.0.0.1';

/**
 * MetricsListen's value: `port` (on 127.0.0.1), `host:port`, or `[address]:port` for IPv6.
 * "none" (as ssh spells "off") and absence both mean no metrics server.
 */
export function parseMetricsListen(value: string | undefined): ListenAddress | null {
  if (value === undefined || value.toLowerCase() === 'none') return null;
  const bad = (): never => {
    throw new UsageError(`Bad MetricsListen '${value}' (port, host:port or [address]:port)`);
  };
  const match = /^(?:\[([0-9A-Fa-f:.%\w]+)\]:|([^:[\]\s]+):)?(\d+)$/.exec(value.trim()) ?? bad();
  const port = Number(match[3]);
  if (port < 1 || port > 65535) bad();
  return { host: match[1] ?? match[2] ?? DEFAULT_METRICS_HOST, port };
}
