// What `revtun` runs beside the tunnel for operators: the JSON event lines (LogFormat json,
// json-log.ts) and the metrics and /healthz server (MetricsListen, ../tunnel/metrics-server.ts).
// main.ts starts them once the options are read and closes them before it exits.

import type { SSHReverseTunnel } from '../tunnel/tunnel.js';
import { serveMetrics, type MetricsServer } from '../tunnel/metrics-server.js';
import { attachJsonLog, stdoutLines, type JsonLog, type JsonLogTarget } from './json-log.js';
import { parseLogFormat, parseMetricsListen } from './ops-options.js';

export interface Operations {
  /** The JSON event log, or null with LogFormat text. */
  readonly json: JsonLog | null;
  /** Stops the metrics server, if one runs. */
  close(): Promise<void>;
}

/**
 * Reads LogFormat and MetricsListen from the options (lower-case names, as parseArgs keeps
 * them) and starts what they ask for. A bad value is a UsageError; a port that cannot be had
 * rejects with the reason.
 */
export async function startOperations(
  tunnel: SSHReverseTunnel,
  options: ReadonlyMap<string, string>,
  target: JsonLogTarget,
  forwardingsRequested: number,
  warn: (line: string) => void,
): Promise<Operations> {
  const format = parseLogFormat(options.get('logformat'));
  const listen = parseMetricsListen(options.get('metricslisten'));
  let server: MetricsServer | null = null;
  if (listen) {
    try {
      server = await serveMetrics(tunnel, { host: listen.host, port: listen.port, expectedForwardings: forwardingsRequested });
    } catch (error) {
      const where = listen.host.includes(':') ? `[${listen.host}]:${listen.port}` : `${listen.host}:${listen.port}`;
      throw new Error(`cannot serve metrics on ${where}: ${(error as Error).message}`, { cause: error });
    }
  }
  const json = format === 'json' ? attachJsonLog(tunnel, target, stdoutLines(warn)) : null;
  return {
    json,
    close: async () => {
      await server?.close();
    },
  };
}
