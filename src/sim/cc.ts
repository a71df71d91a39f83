// A Cloud Controller simulator, faithful to the parts HM9000 talks to:
// - GET /bulk/apps?batch_size=N&bulk_token={...} (basic auth; paged by id with bulk_token {"id":N},
//   ending on an empty page; or the newer one-page generation that ignores batch_size),
//   GET /bulk/counts?model=user;
// - POST /internal/dea/hm9000/{start,stop}/{appGuid} (basic auth; 200 "{}"), re-validated as CC
//   does and forwarded to the DEA fleet; also NATS hm9000.start / hm9000.stop (classic);
// - failure injection: 401, 500, timeouts, bad JSON, empty or partial answers, on any page or
//   endpoint; every request recorded.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { AppState, PackageState } from '../api/index.js';
import type { DeaDirector } from './dea.js';
import { CC_SEND_PATH_RE, START_SUBJECT, STOP_SUBJECT, type StartMessage, type StopMessage } from '../hm9000/messages.js';

export interface SimApp {
  guid: string;
  version: string;
  instances: number;
  state: AppState;
  package_state: PackageState;
  memory?: number;
  updated_at?: string;
}

export type CcFailure =
  /** `times`: how many requests fail (default 1; -1 = until clearFailures). */
  | { kind: 'unauthorized' | 'serverError' | 'badJson' | 'timeout'; endpoint: 'bulk' | 'start' | 'stop'; page?: number; times?: number }
  /** 200 with no results on the first page (or `page`): an empty answer / a partial one. */
  | { kind: 'empty'; endpoint: 'bulk'; page?: number; times?: number }
  /** The connection is reset: before CC did anything (`reset`), or after it executed the start/stop (`resetAfter`). */
  | { kind: 'reset' | 'resetAfter'; endpoint: 'bulk' | 'start' | 'stop'; page?: number; times?: number }
  /** The page's body is cut in the middle (a connection closed mid-answer). */
  | { kind: 'truncated'; endpoint: 'bulk'; page?: number; times?: number }
  /** The page answers the bulk_token it was asked with, instead of advancing it (a stuck cursor). */
  | { kind: 'duplicateToken'; endpoint: 'bulk'; page?: number; times?: number }
  /** The request is held unanswered until `dropHeld()` (the client dies mid-send): CC carries it out
   *  first (`executeFirst`) or never. */
  | { kind: 'hold'; endpoint: 'start' | 'stop'; executeFirst?: boolean; page?: undefined; times?: number };

export interface CcRequest {
  at: number;
  method: string;
  path: string;
  endpoint: 'bulk' | 'counts' | 'start' | 'stop' | 'other';
  via: 'http' | 'nats';
  status: number;
  body?: unknown;
  /** For start/stop: whether CC executed it after re-validating. */
  executed?: boolean;
}

export interface CcSimOptions {
  bulkUser?: string;
  bulkPassword?: string;
  internalUser?: string;
  internalPassword?: string;
  /** 'paged' (classic, honours batch_size) or 'onePage' (newer CCs, everything in one page). */
  generation?: 'paged' | 'onePage';
  dea?: DeaDirector;
  nats?: NatsConnection;
}

export class CloudControllerSim {
  readonly apps = new Map<string, SimApp & { id: number }>();
  readonly requests: CcRequest[] = [];
  private failures: (CcFailure & { left: number })[] = [];
  private server: Server | undefined;
  private subs: Subscription[] = [];
  private nextId = 1;
  private hanging = new Set<ServerResponse>();
  /** Requests held by a `hold` failure, oldest first, until `dropHeld()`. */
  readonly held: CcRequest[] = [];
  private heldSockets: { destroy(): void }[] = [];
  url = '';
  readonly opts: Required<Omit<CcSimOptions, 'dea' | 'nats'>> & Pick<CcSimOptions, 'dea' | 'nats'>;

  constructor(opts: CcSimOptions = {}) {
    this.opts = {
      bulkUser: 'bulk_api',
      bulkPassword: 'bulk-password',
      internalUser: 'internal_api',
      internalPassword: 'internal-password',
      generation: 'paged',
      ...opts,
    };
  }

  setApp(app: SimApp): void {
    const prev = this.apps.get(app.guid);
    this.apps.set(app.guid, { memory: 256, ...app, updated_at: new Date().toISOString(), id: prev?.id ?? this.nextId++ });
    this.byId = undefined;
  }

  updateApp(guid: string, patch: Partial<SimApp>): void {
    const prev = this.apps.get(guid);
    if (!prev) throw new Error(`no app ${guid}`);
    this.setApp({ ...prev, ...patch });
  }

  deleteApp(guid: string): void {
    this.apps.delete(guid);
    this.byId = undefined;
  }

  /**
   * The apps in id order (CC pages by id), rebuilt only after a change. Map order is id order: an id
   * is given on first insert and a re-set keeps its key's place. Paging is then a binary search per
   * page, not a sort and a scan (330,000 apps in pages of 500 were quadratic).
   */
  private byId: (SimApp & { id: number })[] | undefined;
  private appsById(): (SimApp & { id: number })[] {
    return (this.byId ??= [...this.apps.values()]);
  }

  inject(f: CcFailure): void {
    this.failures.push({ ...f, left: f.times === -1 ? Number.POSITIVE_INFINITY : (f.times ?? 1) });
  }

  clearFailures(): void {
    this.failures = [];
  }

  /** The held requests' connections are closed unanswered, as when their client's process is killed. */
  dropHeld(): number {
    const n = this.heldSockets.length;
    for (const s of this.heldSockets) s.destroy();
    this.heldSockets = [];
    return n;
  }

  private takeFailure(endpoint: string, page?: number, which: (kind: CcFailure['kind']) => boolean = () => true): CcFailure | undefined {
    const f = this.failures.find((x) => x.endpoint === endpoint && x.left > 0 && (x.page === undefined || x.page === page) && which(x.kind));
    if (!f) return undefined;
    f.left--;
    if (f.left <= 0) this.failures = this.failures.filter((x) => x !== f);
    return f;
  }

  async listen(port = 0): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    if (this.opts.nats) {
      const nc = this.opts.nats;
      this.subs.push(nc.subscribe(START_SUBJECT, { callback: (_e, m) => this.natsMessage('start', m.string()) }));
      this.subs.push(nc.subscribe(STOP_SUBJECT, { callback: (_e, m) => this.natsMessage('stop', m.string()) }));
    }
    return this.url;
  }

  async close(): Promise<void> {
    for (const s of this.subs) s.unsubscribe();
    for (const r of this.hanging) r.destroy();
    this.dropHeld();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  starts(): CcRequest[] {
    return this.requests.filter((r) => r.endpoint === 'start' && r.status === 200);
  }

  stops(): CcRequest[] {
    return this.requests.filter((r) => r.endpoint === 'stop' && r.status === 200);
  }

  private authorized(req: IncomingMessage, user: string, pass: string): boolean {
    return req.headers.authorization === `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://cc');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const rec: CcRequest = { at: Date.now(), method: req.method ?? '', path: url.pathname + url.search, endpoint: 'other', via: 'http', status: 0 };
    this.requests.push(rec);
    const send = (status: number, body: string) => {
      rec.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    };
    const fail = (f: CcFailure | undefined): boolean => {
      if (!f) return false;
      if (f.kind === 'unauthorized') send(401, '');
      else if (f.kind === 'serverError') send(500, '{"error":"internal server error"}');
      else if (f.kind === 'badJson') send(200, '{"results": {"broken"');
      else if (f.kind === 'timeout') {
        rec.status = -1;
        this.hanging.add(res);
        res.once('close', () => this.hanging.delete(res));
      } else if (f.kind === 'reset') {
        rec.status = -2;
        req.socket.destroy();
      } else return false;
      return true;
    };

    if (req.method === 'GET' && url.pathname === '/bulk/apps') {
      rec.endpoint = 'bulk';
      if (!this.authorized(req, this.opts.bulkUser, this.opts.bulkPassword)) return send(401, '');
      let token: { id?: number } = {};
      try {
        token = JSON.parse(url.searchParams.get('bulk_token') ?? '{}');
      } catch {
        return send(400, '{"error":"bad bulk_token"}');
      }
      const batch = Number(url.searchParams.get('batch_size') ?? '500');
      const all = this.appsById();
      // The first app after the token's id (binary search: `all` is in id order).
      const after = token.id ?? 0;
      let lo = 0;
      for (let hi = all.length; lo < hi; ) {
        const mid = (lo + hi) >>> 1;
        if (all[mid]!.id <= after) lo = mid + 1;
        else hi = mid;
      }
      const pageNo = this.opts.generation === 'paged' ? Math.floor(lo / Math.max(1, batch)) + 1 : 1;
      const f = this.takeFailure('bulk', pageNo);
      if (fail(f)) return;
      if (f?.kind === 'empty') return send(200, JSON.stringify({ results: {}, bulk_token: {} }));
      const page = this.opts.generation === 'paged' ? all.slice(lo, lo + Math.max(1, batch)) : all;
      const results = Object.fromEntries(page.map((a) => [a.guid, { id: a.guid, version: a.version, instances: a.instances, state: a.state, package_state: a.package_state, memory: a.memory, updated_at: a.updated_at }]));
      const last = page[page.length - 1];
      const next = f?.kind === 'duplicateToken' ? token : this.opts.generation === 'paged' ? { id: last ? last.id : (token.id ?? 0) } : {};
      const body = JSON.stringify({ results, bulk_token: next });
      if (f?.kind === 'truncated') return send(200, body.slice(0, Math.floor(body.length / 2)));
      return send(200, body);
    }
    if (req.method === 'GET' && url.pathname === '/bulk/counts') {
      rec.endpoint = 'counts';
      if (!this.authorized(req, this.opts.bulkUser, this.opts.bulkPassword)) return send(401, '');
      return send(200, JSON.stringify({ counts: { user: 1 } }));
    }
    const m = CC_SEND_PATH_RE.exec(url.pathname);
    if (req.method === 'POST' && m) {
      const kind = m[1] as 'start' | 'stop';
      rec.endpoint = kind;
      if (!this.authorized(req, this.opts.internalUser, this.opts.internalPassword)) return send(401, '');
      if (fail(this.takeFailure(kind, undefined, (k) => k !== 'resetAfter' && k !== 'hold'))) return;
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return send(400, '{"error":"invalid JSON"}');
      }
      rec.body = body;
      const f = this.takeFailure(kind, undefined, (k) => k === 'resetAfter' || k === 'hold');
      if (f?.kind === 'hold') {
        rec.status = -4;
        rec.executed = f.executeFirst ? (kind === 'start' ? this.doStart(body as StartMessage) : this.doStop(body as StopMessage)) : false;
        this.held.push(rec);
        this.heldSockets.push(req.socket);
        return;
      }
      rec.executed = kind === 'start' ? this.doStart(body as StartMessage) : this.doStop(body as StopMessage);
      if (f?.kind === 'resetAfter') {
        // CC did it; the answer never arrives.
        rec.status = -3;
        req.socket.destroy();
        return;
      }
      return send(200, '{}');
    }
    send(404, '{"error":"not found"}');
  }

  private natsMessage(kind: 'start' | 'stop', text: string): void {
    const rec: CcRequest = { at: Date.now(), method: 'NATS', path: `hm9000.${kind}`, endpoint: kind, via: 'nats', status: 200 };
    try {
      rec.body = JSON.parse(text);
    } catch {
      rec.status = 400;
      this.requests.push(rec);
      return;
    }
    rec.executed = kind === 'start' ? this.doStart(rec.body as StartMessage) : this.doStop(rec.body as StopMessage);
    this.requests.push(rec);
  }

  /** CC refuses a start for a missing/unstaged/stopped app, a wrong version, or index >= instances. */
  private doStart(msg: StartMessage): boolean {
    const app = this.apps.get(msg.droplet);
    if (!app || app.state !== 'STARTED' || app.package_state !== 'STAGED') return false;
    if (app.version !== msg.version || msg.instance_index >= app.instances) return false;
    return this.opts.dea?.startInstance(app.guid, app.version, msg.instance_index) !== undefined;
  }

  /** CC executes a stop when the app is gone/stopped/failed, is_duplicate, wrong version, or index >= instances. */
  private doStop(msg: StopMessage): boolean {
    const app = this.apps.get(msg.droplet);
    const ok = !app || app.state !== 'STARTED' || app.package_state === 'FAILED' || msg.is_duplicate || app.version !== msg.version || msg.instance_index >= app.instances;
    if (!ok) return false;
    this.opts.dea?.stopInstances(msg.droplet, [msg.instance_guid]);
    return true;
  }
}
