// Nova client: microversion negotiation (2.53 or newer), os-services (list, force-down, disable
// with reason, enable), servers on a host with paging, evacuate, os-migrations, os-start.
// Token via KeystoneClient; re-authenticates once on 401; retries idempotent requests on 5xx.
//
// Paging is Nova's: a list answers at most `max_limit` items (whatever `limit` asked for) and says
// there is more with a `*_links` entry `rel: next` whose href carries the marker (the last item's
// id). hm9k follows every next link, taking only the marker from it: the request goes to the
// catalog endpoint with hm9k's own parameters, so an answer can never send the token elsewhere.
// os-services is not paged by Nova; os-migrations is from microversion 2.59 (hm9k asks for it there
// when Nova speaks it, else Nova returns the whole list at once). Bodies and page counts are bounded
// (src/clients/limits.ts).
import { compareMicroversion, parseMicroversion } from '../nodes/config.js';
import { KeystoneClient, OpenStackError, faultMessage, faultName } from './keystone.js';
import { BodyTooLargeError, DEFAULT_API_LIMITS, readBodyBounded, type RejectHook, type RejectReason } from './limits.js';

export { OpenStackError };

export const MIN_MICROVERSION = '2.53';
/** os-migrations is paged (limit, marker, migrations_links) and carries uuid from this microversion. */
export const MIGRATIONS_PAGED_MICROVERSION = '2.59';

export interface NovaService {
  id: string;
  binary: string;
  host: string;
  zone?: string;
  status: 'enabled' | 'disabled';
  state: 'up' | 'down';
  updated_at?: string | null;
  disabled_reason?: string | null;
  forced_down?: boolean;
}

export interface NovaServer {
  id: string;
  name?: string;
  status: string;
  'OS-EXT-SRV-ATTR:host'?: string | null;
  'OS-EXT-SRV-ATTR:hypervisor_hostname'?: string | null;
  'OS-EXT-STS:vm_state'?: string;
  'OS-EXT-STS:task_state'?: string | null;
  locked?: boolean;
  metadata?: Record<string, string>;
}

export interface NovaMigration {
  id: number | string;
  uuid?: string;
  instance_uuid: string;
  source_compute: string;
  dest_compute?: string | null;
  status: string;
  migration_type: string;
  created_at?: string;
  updated_at?: string;
}

export interface NovaOptions {
  timeoutMs?: number;
  /** Retries of idempotent requests (GET, PUT) on 5xx and network errors. */
  retries?: number;
  retryDelayMs?: number;
  /** Largest response body (bytes) and most pages of one list; defaults in src/clients/limits.ts. */
  maxBodyBytes?: number;
  maxPages?: number;
  /** Page size asked for; Nova caps it at its max_limit. */
  pageSize?: number;
  /** Counts rejected answers (hm9k_nodes_api_rejected_total). */
  onReject?: RejectHook;
}

interface Link {
  rel?: unknown;
  href?: unknown;
}

export class NovaClient {
  private negotiated: string | undefined;
  constructor(private readonly keystone: KeystoneClient, private readonly opts: NovaOptions = {}) {}

  /** Highest microversion both sides speak, capped at `want`; throws when Nova is older than 2.53. */
  async microversion(): Promise<string> {
    if (this.negotiated) return this.negotiated;
    const root = await this.keystone.endpoint('compute');
    const res = await this.raw('GET', `${root}/`, undefined, undefined, true);
    const v = (res as { version?: { version?: string; min_version?: string } }).version;
    const max = typeof v?.version === 'string' ? parseMicroversion(v.version) : undefined;
    if (!max) throw new OpenStackError('Nova version document lacks version.version (microversions unsupported)', 200, undefined, 'malformed');
    if (compareMicroversion(max, parseMicroversion(MIN_MICROVERSION)!) < 0) {
      throw new OpenStackError(`Nova supports microversions up to ${v!.version}; hm9k needs ${MIN_MICROVERSION} or newer`, 0, undefined, 'config');
    }
    this.negotiated = v!.version!;
    return this.negotiated;
  }

  /** The microversion to use for a request that wants `want`: min(want, server max). */
  async use(want: string): Promise<string> {
    const max = parseMicroversion(await this.microversion())!;
    const w = parseMicroversion(want);
    if (!w) throw new OpenStackError(`invalid microversion ${want}`, 0, undefined, 'config');
    if (compareMicroversion(w, parseMicroversion(MIN_MICROVERSION)!) < 0) return MIN_MICROVERSION;
    return compareMicroversion(w, max) <= 0 ? want : `${max[0]}.${max[1]}`;
  }

  async listServices(host?: string): Promise<NovaService[]> {
    const q = new URLSearchParams({ binary: 'nova-compute', ...(host ? { host } : {}) });
    const r = (await this.call('GET', `/os-services?${q}`, undefined, MIN_MICROVERSION)) as { services?: NovaService[] };
    if (!Array.isArray(r.services)) throw new OpenStackError('os-services: no services array', 200, undefined, 'malformed');
    const bad = r.services.findIndex((x) => !validService(x));
    if (bad >= 0) throw this.reject('malformed', `os-services: services[${bad}] lacks id, host, status or state`, 'malformed');
    return r.services.map(serviceWithStringId);
  }

  async updateService(id: string, body: { status?: 'enabled' | 'disabled'; disabled_reason?: string; forced_down?: boolean }): Promise<NovaService> {
    const r = (await this.call('PUT', `/os-services/${encodeURIComponent(id)}`, body, MIN_MICROVERSION)) as { service?: NovaService };
    if (!validService(r.service)) throw new OpenStackError('os-services PUT: no service in answer', 200, undefined, 'malformed');
    return serviceWithStringId(r.service!);
  }

  async forceDown(id: string, forced: boolean): Promise<NovaService> {
    return this.updateService(id, { forced_down: forced });
  }

  async disable(id: string, reason: string): Promise<NovaService> {
    return this.updateService(id, { status: 'disabled', disabled_reason: reason.slice(0, 255) });
  }

  async enable(id: string): Promise<NovaService> {
    return this.updateService(id, { status: 'enabled' });
  }

  /** Every server on `host` (all tenants; every host when undefined), following every `servers_links` next page. */
  async listServers(host: string | undefined, pageSize = this.opts.pageSize ?? 1000): Promise<NovaServer[]> {
    return this.listPaged<NovaServer>('/servers/detail', { all_tenants: '1', ...(host ? { host } : {}), limit: String(pageSize) }, 'servers', MIN_MICROVERSION, validServer);
  }

  /**
   * GETs `path` page after page while the answer has a `<key>_links` entry with rel next. Refuses
   * (typed error, counted) a next link without a marker, a marker seen before (a loop), and more
   * than maxPages pages.
   */
  private async listPaged<T>(path: string, params: Record<string, string>, key: string, microversion: string, valid: (x: unknown) => boolean): Promise<T[]> {
    const out: T[] = [];
    const maxPages = this.opts.maxPages ?? DEFAULT_API_LIMITS.maxPages;
    const seen = new Set<string>();
    let marker: string | undefined;
    for (let page = 1; ; page++) {
      const q = new URLSearchParams({ ...params, ...(marker ? { marker } : {}) });
      const r = (await this.call('GET', `${path}?${q}`, undefined, microversion)) as Record<string, unknown>;
      const items = r[key];
      if (!Array.isArray(items)) throw this.reject('malformed', `${path.slice(1)}: no ${key} array`, 'malformed');
      // One broken entry rejects the list whole (a partial list of servers would look like fewer servers).
      const bad = items.findIndex((x) => !valid(x));
      if (bad >= 0) throw this.reject('malformed', `${path.slice(1)}: ${key}[${bad}] is not a well-formed entry`, 'malformed');
      out.push(...(items as T[]));
      const next = nextMarker(r[`${key}_links`]);
      if (next === undefined) return out;
      if (next === null) throw this.reject('bad_paging', `${path.slice(1)}: a ${key}_links next link without a marker`, 'malformed');
      if (seen.has(next)) throw this.reject('bad_paging', `${path.slice(1)}: paging loops (marker ${next} seen before)`, 'malformed');
      if (page >= maxPages) throw this.reject('too_many_pages', `${path.slice(1)}: more than ${maxPages} pages (nodes.maxPages); the list was not used`, 'tooManyPages');
      seen.add(next);
      marker = next;
    }
  }

  private reject(reason: RejectReason, message: string, kind: OpenStackError['kind']): OpenStackError {
    this.opts.onReject?.('nova', reason);
    return new OpenStackError(`nova ${message}`, 200, undefined, kind);
  }

  async getServer(id: string): Promise<NovaServer> {
    const r = (await this.call('GET', `/servers/${encodeURIComponent(id)}`, undefined, MIN_MICROVERSION)) as { server?: NovaServer };
    if (!validServer(r.server)) throw new OpenStackError('servers/{id}: no server', 200, undefined, 'malformed');
    return r.server!;
  }

  /** POST evacuate (not retried: not idempotent). Returns the microversion used. */
  async evacuate(id: string, opts: { host?: string; microversion: string }): Promise<string> {
    const mv = await this.use(opts.microversion);
    await this.call('POST', `/servers/${encodeURIComponent(id)}/action`, { evacuate: { ...(opts.host ? { host: opts.host } : {}) } }, mv);
    return mv;
  }

  /**
   * POST os-migrateLive (not retried: not idempotent). From 2.25 the body is `block_migration: "auto"`
   * and `host` (null: the scheduler chooses; a named host is still checked by the scheduler, no
   * `force`). Returns the microversion used; refuses below 2.25 (no "auto").
   */
  async migrateLive(id: string, opts: { host?: string; microversion: string }): Promise<string> {
    const mv = await this.use(opts.microversion);
    if (compareMicroversion(parseMicroversion(mv)!, [2, 25]) < 0) throw new OpenStackError(`os-migrateLive needs microversion 2.25 or newer (got ${mv})`, 0, undefined, 'config');
    await this.call('POST', `/servers/${encodeURIComponent(id)}/action`, { 'os-migrateLive': { block_migration: 'auto', host: opts.host ?? null } }, mv);
    return mv;
  }

  async startServer(id: string): Promise<void> {
    await this.call('POST', `/servers/${encodeURIComponent(id)}/action`, { 'os-start': null }, MIN_MICROVERSION);
  }

  /** os-resetState (admin): sets vm_state and clears a stuck task_state. Not retried. */
  async resetState(id: string, state: 'error' | 'active'): Promise<void> {
    await this.call('POST', `/servers/${encodeURIComponent(id)}/action`, { 'os-resetState': { state } }, MIN_MICROVERSION);
  }

  /** Migrations matching `q`, every page (paged by Nova from 2.59, which hm9k then uses). */
  async migrations(q: { sourceCompute?: string; instanceUuid?: string; type?: string }): Promise<NovaMigration[]> {
    const p: Record<string, string> = {
      ...(q.type ? { migration_type: q.type } : {}),
      ...(q.sourceCompute ? { source_compute: q.sourceCompute } : {}),
      ...(q.instanceUuid ? { instance_uuid: q.instanceUuid } : {}),
    };
    const mv = await this.use(MIGRATIONS_PAGED_MICROVERSION);
    if (mv !== MIGRATIONS_PAGED_MICROVERSION) {
      const r = (await this.call('GET', `/os-migrations?${new URLSearchParams(p)}`, undefined, MIN_MICROVERSION)) as { migrations?: NovaMigration[] };
      if (!Array.isArray(r.migrations)) throw this.reject('malformed', 'os-migrations: no migrations array', 'malformed');
      const bad = r.migrations.findIndex((x) => !validMigration(x));
      if (bad >= 0) throw this.reject('malformed', `os-migrations: migrations[${bad}] is not a well-formed entry`, 'malformed');
      return r.migrations;
    }
    return this.listPaged<NovaMigration>('/os-migrations', { ...p, limit: String(this.opts.pageSize ?? 1000) }, 'migrations', mv, validMigration);
  }

  private async call(method: string, path: string, body: unknown, microversion: string): Promise<unknown> {
    await this.microversion();
    const root = await this.keystone.endpoint('compute');
    return this.raw(method, `${root}${path}`, body, microversion, method === 'GET' || method === 'PUT');
  }

  private async raw(method: string, url: string, body: unknown, microversion: string | undefined, idempotent: boolean): Promise<unknown> {
    const retries = idempotent ? (this.opts.retries ?? 2) : 0;
    let reauthed = false;
    for (let attempt = 0; ; attempt++) {
      const token = await this.keystone.authToken();
      let res: Response;
      let text: string;
      try {
        res = await fetch(url, {
          method,
          headers: {
            'x-auth-token': token,
            accept: 'application/json',
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...(microversion ? { 'openstack-api-version': `compute ${microversion}`, 'x-openstack-nova-api-version': microversion } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000),
        });
        text = await readBodyBounded(res, this.opts.maxBodyBytes ?? DEFAULT_API_LIMITS.maxBodyBytes);
      } catch (err) {
        if (err instanceof BodyTooLargeError) {
          // Not retried: the same server would send the same answer.
          throw this.reject('body_too_large', `${method} ${new URL(url).pathname}: ${err.message} (nodes.maxResponseBytes)`, 'tooLarge');
        }
        const e = err as Error;
        const timeout = e.name === 'TimeoutError' || e.name === 'AbortError';
        if (attempt < retries) { await delay(this.opts.retryDelayMs ?? 500); continue; }
        throw new OpenStackError(`nova ${method} ${new URL(url).pathname} ${timeout ? 'timed out' : `failed: ${e.message}`}`, 0, undefined, timeout ? 'timeout' : 'network');
      }
      if (res.status === 401 && !reauthed) {
        reauthed = true;
        this.keystone.invalidate(token);
        attempt--;
        continue;
      }
      if (res.status >= 500 && attempt < retries) { await delay(this.opts.retryDelayMs ?? 500); continue; }
      if (res.status >= 400) {
        throw new OpenStackError(`nova ${method} ${new URL(url).pathname}: HTTP ${res.status} ${faultMessage(text)}`, res.status, faultName(text));
      }
      if (!text) return {};
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        this.opts.onReject?.('nova', 'malformed');
        throw new OpenStackError(`nova ${method} ${new URL(url).pathname}: malformed JSON`, res.status, undefined, 'malformed');
      }
      // Every Nova answer hm9k reads is an object (`null`, a number or a list is not an answer).
      if (!isObject(parsed)) {
        this.opts.onReject?.('nova', 'malformed');
        throw new OpenStackError(`nova ${method} ${new URL(url).pathname}: answer is not a JSON object`, res.status, undefined, 'malformed');
      }
      return parsed;
    }
  }
}

const isObject = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x);
const str = (x: unknown) => typeof x === 'string' && x.length > 0;
const optStr = (x: unknown) => x === undefined || x === null || typeof x === 'string';
/** The fields hm9k reads of each entry, with their types (Nova's own; anything else is malformed). */
const validService = (x: unknown) => isObject(x) && (str(x.id) || Number.isInteger(x.id)) && str(x.host) && (x.status === 'enabled' || x.status === 'disabled') && (x.state === 'up' || x.state === 'down') && optStr(x.disabled_reason);
/**
 * A service id as the string hm9k's types say it is: an integer id (Nova before 2.53, or a proxy
 * that re-encodes) is accepted and turned into its decimal string (found by the Nova fuzz suite: the
 * number passed through as a "string").
 */
const serviceWithStringId = (s: NovaService): NovaService => (typeof s.id === 'string' ? s : { ...s, id: String(s.id) });
const validServer = (x: unknown) => isObject(x) && str(x.id) && optStr(x.status) && optStr(x['OS-EXT-SRV-ATTR:host']) && optStr(x['OS-EXT-STS:task_state']) && (x.metadata === undefined || isObject(x.metadata));
const validMigration = (x: unknown) => isObject(x) && (str(x.id) || Number.isInteger(x.id)) && str(x.instance_uuid) && typeof x.status === 'string' && optStr(x.source_compute) && optStr(x.dest_compute);

/**
 * The marker of the rel=next link in a `*_links` array: undefined when there is no next page, null
 * when the next link carries no marker.
 */
export function nextMarker(links: unknown): string | null | undefined {
  if (!Array.isArray(links)) return undefined;
  const next = (links as Link[]).find((l) => l && l.rel === 'next');
  if (!next) return undefined;
  if (typeof next.href !== 'string') return null;
  let marker: string | null;
  try {
    marker = new URL(next.href, 'http://nova.invalid/').searchParams.get('marker');
  } catch {
    return null;
  }
  return marker ? marker : null;
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
