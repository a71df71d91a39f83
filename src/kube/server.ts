// Probes (/healthz, /readyz; default :8081) and Prometheus /metrics (default :8080), as
// controller-runtime serves them.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export type Check = () => boolean;

export interface ProbeServerOptions {
  host: string;
  port: number;
  /** Liveness: all must be true. */
  healthChecks: Map<string, Check>;
  /** Readiness: all must be true. */
  readyChecks: Map<string, Check>;
}

function runChecks(checks: Map<string, Check>): { ok: boolean; lines: string[] } {
  const lines: string[] = [];
  let ok = true;
  for (const [name, check] of checks) {
    let pass = false;
    try {
      pass = check();
    } catch {
      pass = false;
    }
    if (!pass) ok = false;
    lines.push(`[${pass ? '+' : '-'}]${name} ${pass ? 'ok' : 'failed'}`);
  }
  return { ok, lines };
}

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export interface RunningServer {
  port: number;
  close(): Promise<void>;
}

function closer(server: http.Server): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
}

export async function startProbeServer(o: ProbeServerOptions): Promise<RunningServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const verbose = url.searchParams.has('verbose');
    let checks: Map<string, Check> | undefined;
    if (url.pathname === '/healthz' || url.pathname === '/livez') checks = o.healthChecks;
    else if (url.pathname === '/readyz') checks = o.readyChecks;
    if (!checks) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const { ok, lines } = runChecks(checks);
    const body = verbose || !ok ? `${lines.join('\n')}\n${ok ? 'ok' : `${url.pathname.slice(1)} check failed`}\n` : 'ok';
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
  });
  const port = await listen(server, o.host, o.port);
  return { port, close: closer(server) };
}

export async function startMetricsServer(o: { host: string; port: number; registry: Registry }): Promise<RunningServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    o.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': o.registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  const port = await listen(server, o.host, o.port);
  return { port, close: closer(server) };
}
