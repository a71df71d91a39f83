// Cloud Controller client: the bulk API (desired state) and HM9000's start/stop endpoints.
// Typed errors; every request has a timeout; any failed page aborts the whole fetch.
import { APP_STATES, PACKAGE_STATES } from '../api/index.js';
import type { DesiredAppState } from '../apps/types.js';
import { ccStartPath, ccStopPath, type StartMessage, type StopMessage } from '../hm9000/messages.js';
import { HttpAgents, httpRequest } from './http-request.js';

export type CcErrorKind = 'unauthorized' | 'status' | 'badJson' | 'timeout' | 'network' | 'invalid';

export class CcError extends Error {
  override name = 'CcError';
  constructor(
    readonly kind: CcErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface CcClientOptions {
  url: string;
  bulkUser: string;
  bulkPassword: string;
  internalUser: string;
  internalPassword: string;
  timeoutMs: number;
  batchSize: number;
  /** Safety stop for a CC that never ends paging. */
  maxPages?: number;
}

export interface FetchResult {
  apps: Map<string, DesiredAppState>;
  pages: number;
}

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

export class CcClient {
  private readonly agents = new HttpAgents();

  constructor(public opts: CcClientOptions) {}

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agents.destroy();
  }

  private async request(method: string, path: string, auth: string, body?: unknown, signal?: AbortSignal): Promise<{ status: number; text: string }> {
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    const sig = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      return await httpRequest(this.agents, {
        method,
        url: new URL(path, this.opts.url),
        headers: { authorization: auth, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: sig,
      });
    } catch (err) {
      if (timeout.aborted) throw new CcError('timeout', `${method} ${path}: no answer within ${this.opts.timeoutMs} ms`);
      throw new CcError('network', `${method} ${path}: ${(err as Error).message}`);
    }
  }

  /**
   * Pages GET /bulk/apps until an empty page (paged CCs) or a page that adds no new app (CCs that
   * ignore batch_size and answer everything in one page). Any failed page throws: nothing partial.
   */
  async fetchDesired(signal?: AbortSignal): Promise<FetchResult> {
    const apps = new Map<string, DesiredAppState>();
    const auth = basic(this.opts.bulkUser, this.opts.bulkPassword);
    let token: unknown = {};
    const maxPages = this.opts.maxPages ?? 100_000;
    for (let page = 1; page <= maxPages; page++) {
      const path = `/bulk/apps?batch_size=${this.opts.batchSize}&bulk_token=${encodeURIComponent(JSON.stringify(token))}`;
      const { status, text } = await this.request('GET', path, auth, undefined, signal);
      if (status === 401 || status === 403) throw new CcError('unauthorized', `bulk API page ${page}: ${status} (check the bulk API credentials)`, status);
      if (status !== 200) throw new CcError('status', `bulk API page ${page}: HTTP ${status}`, status);
      let body: { results?: unknown; bulk_token?: unknown };
      try {
        body = JSON.parse(text);
      } catch (e) {
        throw new CcError('badJson', `bulk API page ${page}: not JSON (${(e as Error).message})`);
      }
      if (!body || typeof body !== 'object' || !body.results || typeof body.results !== 'object' || Array.isArray(body.results)) {
        throw new CcError('invalid', `bulk API page ${page}: no "results" object`);
      }
      const entries = Object.entries(body.results as Record<string, Record<string, unknown>>);
      if (entries.length === 0) return { apps, pages: page };
      let added = 0;
      for (const [guid, r] of entries) {
        const app = parseBulkApp(guid, r);
        if (typeof app === 'string') throw new CcError('invalid', `bulk API page ${page}: app ${guid}: ${app}`);
        if (!apps.has(guid)) added++;
        apps.set(guid, app);
      }
      // A page that adds no new app ends the fetch only when it is page 2 of a CC that answers
      // everything on every page (newer CCs ignore batch_size). Later, it means the cursor did not
      // advance (page N answered the bulk_token it was asked with, so page N+1 repeated page N):
      // what came so far is partial and must not be used.
      if (added === 0) {
        if (page === 2) return { apps, pages: page };
        throw new CcError('invalid', `bulk API page ${page}: repeats page ${page - 1} (bulk_token ${JSON.stringify(token).slice(0, 100)} did not advance); nothing partial is used`);
      }
      if (body.bulk_token === undefined) return { apps, pages: page };
      token = body.bulk_token;
    }
    throw new CcError('invalid', `bulk API did not stop paging after ${maxPages} pages`);
  }

  /** GET /bulk/counts?model=user (readiness probe of CC only). */
  async userCount(): Promise<number> {
    const { status, text } = await this.request('GET', '/bulk/counts?model=user', basic(this.opts.bulkUser, this.opts.bulkPassword));
    if (status !== 200) throw new CcError(status === 401 ? 'unauthorized' : 'status', `bulk counts: HTTP ${status}`, status);
    try {
      return Number(JSON.parse(text).counts.user);
    } catch {
      throw new CcError('badJson', 'bulk counts: not JSON');
    }
  }

  async sendStart(msg: StartMessage, signal?: AbortSignal): Promise<void> {
    await this.post(ccStartPath(msg.droplet), msg, signal);
  }

  async sendStop(msg: StopMessage, signal?: AbortSignal): Promise<void> {
    await this.post(ccStopPath(msg.droplet), msg, signal);
  }

  private async post(path: string, body: unknown, signal?: AbortSignal): Promise<void> {
    const { status } = await this.request('POST', path, basic(this.opts.internalUser, this.opts.internalPassword), body, signal);
    if (status === 401 || status === 403) throw new CcError('unauthorized', `POST ${path}: ${status}`, status);
    if (status !== 200) throw new CcError('status', `POST ${path}: HTTP ${status}`, status);
  }
}

function parseBulkApp(guid: string, r: Record<string, unknown>): DesiredAppState | string {
  if (!r || typeof r !== 'object') return 'not an object';
  if (typeof r.version !== 'string' || r.version === '') return 'missing version';
  if (!Number.isInteger(r.instances) || (r.instances as number) < 0) return 'instances must be an integer >= 0';
  if (!APP_STATES.includes(r.state as never)) return `unknown state ${JSON.stringify(r.state)}`;
  if (!PACKAGE_STATES.includes(r.package_state as never)) return `unknown package_state ${JSON.stringify(r.package_state)}`;
  return {
    appGuid: guid,
    version: r.version,
    instances: r.instances as number,
    state: r.state as DesiredAppState['state'],
    packageState: r.package_state as DesiredAppState['packageState'],
    ...(typeof r.memory === 'number' ? { memory: r.memory } : {}),
    ...(typeof r.updated_at === 'string' ? { updatedAt: r.updated_at } : {}),
  };
}
