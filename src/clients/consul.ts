// Consul client: one pair of blocking queries per cluster observer (health/state/any filtered on
// serfHealth and the configured check ids, plus the node catalog) for the whole fleet, shared by
// every policy naming the same observer. An unreachable or leaderless observer, or a node absent
// from its catalog, is `unknown`, never `down`.
import { EventEmitter } from 'node:events';
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import Consul from 'consul';
import type { UpDownUnknown } from '../api/index.js';
import { DEFAULT_API_LIMITS, type RejectHook } from './limits.js';

export class ConsulError extends Error {
  override name = 'ConsulError';
  constructor(message: string, public readonly kind: 'unreachable' | 'leaderless' | 'forbidden' | 'http' | 'malformed' | 'tooLarge') {
    super(message);
  }
}

export interface ObserverView {
  address: string;
  /** Both loops answered since their last error. */
  healthy: boolean;
  error?: string;
  /** When the last successful answer arrived (ms). */
  lastSuccess: number;
  /** node -> check id -> status */
  checks: Map<string, Map<string, string>>;
  catalog: Set<string>;
  /** Consul left nodes out of the catalog answer (X-Consul-Results-Filtered-By-ACLs): the token lacks node:read. */
  filteredByAcls?: boolean;
}

export interface ConsulWatcherOptions {
  address: string;
  token?: string;
  /** Blocking query wait. */
  waitMs?: number;
  /** Minimum time between two iterations of a loop (rate limit). */
  minLoopMs?: number;
  /** Extra check ids to include (e.g. a nova-compute service check). */
  checkIds?: string[];
  /** Backoff after an error. */
  errorBackoffMs?: number;
  /** Largest answer body accepted (bytes; default 16 MiB): a bigger one is cut off and is an error. */
  maxBodyBytes?: number;
  /** Counts rejected answers (hm9k_nodes_api_rejected_total). */
  onReject?: RejectHook;
  now?: () => number;
}

/**
 * The part of papi (the consul package's HTTP layer) used to bound answers: an `onRequest` extension
 * (papi's documented `_ext`) sees the request just before it is sent, with the http/https module it
 * will use, which is wrapped so that the response's bytes are counted as they arrive.
 */
interface PapiRequest { transport: { request(o: RequestOptions): ClientRequest } }
interface PapiClient { _ext(event: 'onRequest', fn: (request: PapiRequest, next: () => void) => void): void }

function boundResponses(client: PapiClient, max: number, onTooLarge: () => void): void {
  client._ext('onRequest', (request, next) => {
    const transport = request.transport;
    request.transport = {
      request(o: RequestOptions) {
        const req = transport.request(o);
        req.on('response', (res: IncomingMessage) => {
          res.on('error', () => undefined); // the destroy below ends it; papi reports the request's error
          const refuse = (declared?: number) => {
            onTooLarge();
            req.destroy(new ConsulError(`answer larger than ${max} bytes${declared !== undefined ? ` (Content-Length ${declared})` : ''} (nodes.maxResponseBytes): refused`, 'tooLarge'));
          };
          const declared = Number(res.headers['content-length'] ?? NaN);
          if (Number.isFinite(declared) && declared > max) return refuse(declared);
          let n = 0;
          res.on('data', (chunk: Buffer) => {
            n += chunk.length;
            if (n > max) { n = -Infinity; refuse(); }
          });
        });
        return req;
      },
    };
    next();
  });
}

function classify(err: unknown): ConsulError {
  const e = err as { message?: string; statusCode?: number; code?: string; response?: { statusCode?: number; body?: unknown } };
  const status = e.statusCode ?? e.response?.statusCode;
  const body = typeof e.response?.body === 'string' ? e.response.body : '';
  const msg = `${e.message ?? String(err)}${body ? `: ${body}` : ''}`;
  if (/No cluster leader/i.test(msg)) return new ConsulError('No cluster leader', 'leaderless');
  if (status === 403) return new ConsulError(`permission denied: ${msg}`, 'forbidden');
  if (status) return new ConsulError(`HTTP ${status}: ${msg}`, 'http');
  return new ConsulError(`unreachable: ${msg}`, 'unreachable');
}

/** Watches one Consul observer with blocking queries; emits 'change' when its view changes. */
export class ConsulWatcher extends EventEmitter {
  private readonly consul: Consul;
  private stopped = true;
  private readonly ctxs = new Set<EventEmitter>();
  private healthOk = false;
  private catalogOk = false;
  private loops: Promise<void>[] = [];
  private timers = new Set<{ t: NodeJS.Timeout; r: () => void }>();
  readonly view: ObserverView;
  /** Requests issued (for the steady-state request-rate benchmark). */
  requests = 0;

  constructor(private readonly o: ConsulWatcherOptions) {
    super();
    const u = new URL(o.address);
    this.consul = new Consul({
      host: u.hostname,
      port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)),
      secure: u.protocol === 'https:',
      ...(o.token ? { defaults: { token: o.token } } : {}),
    });
    boundResponses(this.consul as unknown as PapiClient, o.maxBodyBytes ?? DEFAULT_API_LIMITS.maxBodyBytes, () => o.onReject?.('consul', 'body_too_large'));
    this.view = { address: o.address, healthy: false, error: 'not yet answered', lastSuccess: 0, checks: new Map(), catalog: new Set() };
  }

  private now() {
    return (this.o.now ?? Date.now)();
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loops = [this.loop('health'), this.loop('catalog')];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const c of this.ctxs) c.emit('cancel');
    for (const x of this.timers) { clearTimeout(x.t); x.r(); }
    this.timers.clear();
    await Promise.allSettled(this.loops);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      const x = { t: setTimeout(() => { this.timers.delete(x); r(); }, ms), r };
      this.timers.add(x);
    });
  }

  private filter(): string {
    const ids = ['serfHealth', ...(this.o.checkIds ?? [])];
    return ids.map((id) => `CheckID == "${id.replace(/"/g, '')}"`).join(' or ');
  }

  private async loop(kind: 'health' | 'catalog'): Promise<void> {
    let index = 0n;
    const wait = this.o.waitMs ?? 300_000;
    while (!this.stopped) {
      const started = this.now();
      const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
      this.ctxs.add(ctx);
      try {
        const common = { index: index.toString(), wait: `${wait}ms`, timeout: wait + wait / 16 + 10_000, ctx };
        this.requests++;
        const [res, body] = (kind === 'health'
          ? await this.consul.health.state({ state: 'any', filter: this.filter(), ...common } as never)
          : await this.consul.catalog.node.list(common as never)) as unknown as [{ headers: Record<string, string> }, unknown];
        if (!Array.isArray(body)) { this.o.onReject?.('consul', 'malformed'); throw new ConsulError('answer is not a JSON array', 'malformed'); }
        const next = BigInt(res.headers['x-consul-index'] ?? '0');
        index = next < index || next <= 0n ? 0n : next;
        const changed = kind === 'health' ? this.applyHealth(body) : this.applyCatalog(body);
        if (kind === 'catalog') this.view.filteredByAcls = /^true$/i.test(res.headers['x-consul-results-filtered-by-acls'] ?? '');
        if (kind === 'health') this.healthOk = true; else this.catalogOk = true;
        const wasHealthy = this.view.healthy;
        this.view.lastSuccess = this.now();
        this.view.healthy = this.healthOk && this.catalogOk;
        if (this.view.healthy) delete this.view.error;
        if (changed || wasHealthy !== this.view.healthy) this.emit('change');
      } catch (err) {
        this.ctxs.delete(ctx);
        if (this.stopped) return;
        const e = err instanceof ConsulError ? err : classify(err);
        index = 0n;
        if (kind === 'health') this.healthOk = false; else this.catalogOk = false;
        const was = this.view.healthy;
        this.view.healthy = false;
        this.view.error = e.message;
        if (was || this.listenerCount('error') === 0) this.emit('change');
        this.emit('observerError', e);
        await this.sleep(this.o.errorBackoffMs ?? 2000);
        continue;
      }
      this.ctxs.delete(ctx);
      const elapsed = this.now() - started;
      const min = this.o.minLoopMs ?? 1000;
      if (elapsed < min && !this.stopped) await this.sleep(min - elapsed);
    }
  }

  private applyHealth(body: unknown[]): boolean {
    const checks = new Map<string, Map<string, string>>();
    for (const raw of body) {
      const c = raw as { Node?: unknown; CheckID?: unknown; Status?: unknown };
      if (typeof c.Node !== 'string' || typeof c.CheckID !== 'string' || typeof c.Status !== 'string') continue;
      let m = checks.get(c.Node);
      if (!m) checks.set(c.Node, (m = new Map()));
      m.set(c.CheckID, c.Status);
    }
    const same = checks.size === this.view.checks.size && [...checks].every(([n, m]) => {
      const o = this.view.checks.get(n);
      return o && o.size === m.size && [...m].every(([k, v]) => o.get(k) === v);
    });
    this.view.checks = checks;
    return !same;
  }

  private applyCatalog(body: unknown[]): boolean {
    const names = new Set(body.map((n) => (n as { Node?: unknown }).Node).filter((n): n is string => typeof n === 'string'));
    const same = names.size === this.view.catalog.size && [...names].every((n) => this.view.catalog.has(n));
    this.view.catalog = names;
    return !same;
  }

  /** This observer's opinion of one node's network. */
  nodeState(node: string, maxAgeMs?: number): { state: UpDownUnknown; reason?: string } {
    const v = this.view;
    if (!v.healthy) return { state: 'unknown', reason: `${v.address}: ${v.error ?? 'not answering'}` };
    // The reason names the moment, not the age: it must not change while the state does not, or
    // every sample would rewrite every node's status.
    if (maxAgeMs !== undefined && this.now() - v.lastSuccess > maxAgeMs) return { state: 'unknown', reason: `${v.address}: no answer since ${new Date(v.lastSuccess).toISOString()}` };
    if (!v.catalog.has(node)) return { state: 'unknown', reason: `${v.address}: node ${node} absent from the catalog${v.filteredByAcls ? ' (results filtered by ACLs: the token may lack node:read)' : ''}` };
    const serf = v.checks.get(node)?.get('serfHealth');
    if (serf === 'passing') return { state: 'up' };
    if (serf === 'critical') return { state: 'down', reason: `${v.address}: serfHealth critical` };
    return { state: 'unknown', reason: `${v.address}: serfHealth ${serf ?? 'missing'}` };
  }

  /** Status of another check on the node (e.g. the nova-compute service check). */
  checkState(node: string, checkId: string): UpDownUnknown {
    if (!this.view.healthy || !this.view.catalog.has(node)) return 'unknown';
    const s = this.view.checks.get(node)?.get(checkId);
    return s === 'passing' ? 'up' : s === 'critical' ? 'down' : 'unknown';
  }
}

/** Shares one watcher per (address, token) across every policy that names it. */
export class ConsulPool {
  private readonly watchers = new Map<string, { w: ConsulWatcher; refs: number }>();
  /** Called with every observer error (the node half counts them in hm9k_nodes_source_errors_total{source="consul"}). */
  onError: ((address: string, err: ConsulError) => void) | undefined;
  constructor(private readonly defaults: Omit<ConsulWatcherOptions, 'address' | 'token'> = {}) {}

  acquire(address: string, token: string | undefined, checkIds: string[] = []): ConsulWatcher {
    const key = `${address}\u0000${token ?? ''}\u0000${[...checkIds].sort().join(',')}`;
    let e = this.watchers.get(key);
    if (!e) {
      e = { w: new ConsulWatcher({ ...this.defaults, address, ...(token ? { token } : {}), checkIds }), refs: 0 };
      this.watchers.set(key, e);
      e.w.on('observerError', (err: ConsulError) => this.onError?.(address, err));
      e.w.start();
    }
    e.refs++;
    return e.w;
  }

  all(): ConsulWatcher[] {
    return [...this.watchers.values()].map((e) => e.w);
  }

  async release(w: ConsulWatcher): Promise<void> {
    for (const [k, e] of this.watchers) {
      if (e.w !== w) continue;
      if (--e.refs <= 0) {
        this.watchers.delete(k);
        await e.w.stop();
      }
    }
  }

  async stop(): Promise<void> {
    const all = [...this.watchers.values()];
    this.watchers.clear();
    await Promise.all(all.map((e) => e.w.stop()));
  }
}
