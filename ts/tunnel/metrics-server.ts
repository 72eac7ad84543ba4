// A small HTTP server for a tunnel's metrics (metrics.ts): GET /metrics in Prometheus text
// format, GET /healthz (200 while healthy, 503 otherwise, with a one-line reason). It listens
// only on the address it is given, and a request that fails gets a 500 instead of an
// exception in the server's callback.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SSHReverseTunnel } from './tunnel.js';
import { createMetrics, type TunnelMetrics, type TunnelMetricsOptions } from './metrics.js';

/** Options of serveMetrics: where to listen, and createMetrics' options. */
export interface ServeMetricsOptions extends TunnelMetricsOptions {
  /** The address to listen on; default (also for '') 127.0.0.1: loopback, a scraper on the same machine. */
  host?: string;
  /** The port; 0 lets the system pick (read it back from `port`). */
  port: number;
}

/** A listening metrics server (serveMetrics): /metrics in Prometheus text format, and /healthz. */
export interface MetricsServer {
  readonly metrics: TunnelMetrics;
  /** The address and port listened on. */
  readonly host: string;
  readonly port: number;
  /** Stops listening, ends open scrape connections and detaches the metrics from the tunnel. */
  close(): Promise<void>;
}

/** Serves `tunnel`'s metrics and health on host:port; resolves once listening (rejects if it cannot bind). */
export async function serveMetrics(tunnel: SSHReverseTunnel, options: ServeMetricsOptions): Promise<MetricsServer> {
  const metrics = createMetrics(tunnel, options);
  const server = createServer((request, response) => {
    answer(metrics, request, response).catch((error: unknown) => failed(response, error));
  });
  // A scraper that resets its connection is its own affair, not the tunnel's.
  server.on('clientError', (_error, socket) => socket.destroy());
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // || and not ??: Node takes host '' as every interface; an empty setting must not expose the metrics.
      server.listen({ host: options.host || '127.0.0.1', port: options.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    metrics.detach();
    throw error;
  }
  const address = server.address() as AddressInfo;
  let closing: Promise<void> | null = null;
  return {
    metrics,
    host: address.address,
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        metrics.detach();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function answer(metrics: TunnelMetrics, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, 'text/plain; charset=utf-8', 'only GET\n');
  if (path === '/metrics') return send(response, 200, metrics.registry.contentType, await metrics.registry.metrics());
  if (path === '/healthz') {
    const { healthy, reason } = metrics.health();
    return send(response, healthy ? 200 : 503, 'text/plain; charset=utf-8', `${reason}\n`);
  }
  send(response, 404, 'text/plain; charset=utf-8', 'not found: try /metrics or /healthz\n');
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  response.end(body);
}

function failed(response: ServerResponse, error: unknown): void {
  try {
    if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', `metrics failed: ${(error as Error)?.message ?? String(error)}\n`);
    else response.destroy();
  } catch {
    response.destroy();
  }
}
