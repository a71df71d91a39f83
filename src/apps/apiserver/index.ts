// The API server (hm9000.md section 4): POST /bulk_app_state for Cloud Controller (basic auth;
// `{}` when this replica's actual state is not fresh or the body is bad), POST /dea/heartbeat
// (only when heartbeatEndpoint is set: NATS is the default intake; 202, re-published on NATS so every
// replica sees it; 400 on an empty or unparseable body; basic auth unless heartbeatAuth is false,
// where HM9000 had none and any pod could forge a heartbeat), GET /dump (basic auth; what
// `hm9k dump` renders), GET /healthz and /readyz (ready only while actual state is fresh).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { MemoryStore } from '../store/memory.js';
import { parseHeartbeat } from '../../hm9000/parse.js';
import { crashKey, type InstanceHeartbeat } from '../types.js';

export interface ApiServerOptions {
  host?: string;
  port: number;
  user: string;
  password: string;
  /** Serve POST /dea/heartbeat (default false: NATS is the intake). */
  heartbeatEndpoint?: boolean;
  /** Require basic auth on POST /dea/heartbeat (default true; HM9000 had none, so anyone could forge one). */
  heartbeatAuth?: boolean;
  /** Its credentials (default: user and password). */
  heartbeatUser?: string;
  heartbeatPassword?: string;
  /** The body of GET /dump (basic auth); 404 when absent. */
  dump?: () => unknown;
  store: MemoryStore;
  isFresh: () => boolean;
  /** Publishes a heartbeat body on NATS dea.heartbeat. */
  publishHeartbeat: (body: string) => void;
  /** Counts and logs a malformed HTTP heartbeat. */
  malformed: (error: string, body: string) => void;
  /** Counts and logs a /bulk_app_state request body that is not a list of {droplet, version} (answered `{}`). */
  badRequest?: (error: string, body: string) => void;
  logger: Logger;
  maxBodyBytes?: number;
}

export interface BulkAppState {
  droplet: string;
  version: string;
  instance_heartbeats: (Omit<InstanceHeartbeat, 'cc_partition'>)[];
  crash_counts: { droplet: string; version: string; instance_index: number; crash_count: number; created_at: number }[];
}

const validBulkRequest = (body: unknown): boolean =>
  Array.isArray(body) && body.every((q) => !!q && typeof q === 'object' && typeof q.droplet === 'string' && typeof q.version === 'string');

/** The answer to /bulk_app_state for a parsed request body (pure). */
export function bulkAppState(store: MemoryStore, body: unknown, fresh: boolean): Record<string, BulkAppState> {
  const out: Record<string, BulkAppState> = {};
  if (!fresh || !Array.isArray(body)) return out;
  if (!validBulkRequest(body)) return {};
  for (const q of body as { droplet: string; version: string }[]) {
    const hbs = store.instancesOf(q.droplet).filter((i) => i.version === q.version);
    if (hbs.length === 0) continue; // apps with no heartbeats are omitted
    const crash: BulkAppState['crash_counts'] = [];
    const indices = new Set(hbs.map((h) => h.index));
    for (const index of indices) {
      const c = store.crashCounts().get(crashKey(q.droplet, q.version, index));
      if (c) crash.push({ droplet: q.droplet, version: q.version, instance_index: index, crash_count: c.count, created_at: Math.floor(c.createdAt / 1000) });
    }
    out[q.droplet] = {
      droplet: q.droplet,
      version: q.version,
      instance_heartbeats: hbs.map((h) => ({ droplet: h.droplet, version: h.version, instance: h.instance, index: h.index, state: h.state, state_timestamp: h.state_timestamp, dea_guid: h.dea_guid })),
      crash_counts: crash,
    };
  }
  return out;
}

export class ApiServer {
  private server: Server | undefined;
  port = 0;

  constructor(private readonly opts: ApiServerOptions) {}

  private authorized(req: IncomingMessage, user = this.opts.user, password = this.opts.password): boolean {
    const want = Buffer.from(`Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`);
    const got = Buffer.from(req.headers.authorization ?? '');
    return got.length === want.length && timingSafeEqual(got, want);
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        this.opts.logger.error({ err: (err as Error).message }, 'api request failed');
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.opts.port, this.opts.host ?? '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }

  private async body(req: IncomingMessage): Promise<string | undefined> {
    const max = this.opts.maxBodyBytes ?? 10 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > max) return undefined;
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /** A body above maxBodyBytes: 413, and the connection closed (the rest of the body is never read). */
  private tooLarge(res: ServerResponse): void {
    res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
    res.end(JSON.stringify({ error: `body larger than ${this.opts.maxBodyBytes ?? 10 * 1024 * 1024} bytes` }));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && path === '/healthz') return json(200, { ok: true });
    if (req.method === 'GET' && path === '/readyz') return this.opts.isFresh() ? json(200, { fresh: true }) : json(503, { fresh: false });
    if (req.method === 'POST' && path === '/bulk_app_state') {
      if (!this.authorized(req)) {
        res.writeHead(401).end();
        return;
      }
      const text = await this.body(req);
      if (text === undefined) return this.tooLarge(res);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        parsed = undefined;
        this.opts.badRequest?.(`not JSON: ${(e as Error).message}`, text);
      }
      if (parsed !== undefined && !validBulkRequest(parsed)) this.opts.badRequest?.('not a list of {droplet, version} strings', text);
      return json(200, bulkAppState(this.opts.store, parsed, this.opts.isFresh()));
    }
    if (req.method === 'GET' && path === '/dump' && this.opts.dump) {
      if (!this.authorized(req)) {
        res.writeHead(401).end();
        return;
      }
      return json(200, this.opts.dump());
    }
    if (req.method === 'POST' && path === '/dea/heartbeat' && this.opts.heartbeatEndpoint === true) {
      if (this.opts.heartbeatAuth !== false && !this.authorized(req, this.opts.heartbeatUser ?? this.opts.user, this.opts.heartbeatPassword ?? this.opts.password)) {
        req.resume();
        this.opts.malformed('refused: basic auth required', ''); // counted, logged once
        res.writeHead(401, { 'www-authenticate': 'Basic realm="hm9k"' }).end();
        return;
      }
      const text = await this.body(req);
      if (text === undefined) return this.tooLarge(res);
      const p = parseHeartbeat(text);
      if (!p.ok) {
        this.opts.malformed(p.error, text);
        return json(400, { error: p.error });
      }
      this.opts.publishHeartbeat(text);
      res.writeHead(202).end();
      return;
    }
    json(404, { error: 'not found' });
  }
}
