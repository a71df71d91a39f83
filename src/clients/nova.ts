// Nova client: microversion negotiation (2.53 or newer), os-services (list, force-down, disable
// with reason, enable), servers on a host with paging, evacuate, os-migrations, os-start.
// Token via KeystoneClient; re-authenticates once on 401; retries idempotent requests on 5xx.
import { compareMicroversion, parseMicroversion } from '../nodes/config.js';
import { KeystoneClient, OpenStackError, faultMessage, faultName } from './keystone.js';

export { OpenStackError };

export const MIN_MICROVERSION = '2.53';

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
    const max = v?.version ? parseMicroversion(v.version) : undefined;
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
    return r.services;
  }

  async updateService(id: string, body: { status?: 'enabled' | 'disabled'; disabled_reason?: string; forced_down?: boolean }): Promise<NovaService> {
    const r = (await this.call('PUT', `/os-services/${encodeURIComponent(id)}`, body, MIN_MICROVERSION)) as { service?: NovaService };
    if (!r.service) throw new OpenStackError('os-services PUT: no service in answer', 200, undefined, 'malformed');
    return r.service;
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

  /** Every server on `host` (all tenants; every host when undefined), following limit/marker pages. */
  async listServers(host: string | undefined, pageSize = 1000): Promise<NovaServer[]> {
    const out: NovaServer[] = [];
    let marker: string | undefined;
    for (let page = 0; page < 10_000; page++) {
      const q = new URLSearchParams({ all_tenants: '1', ...(host ? { host } : {}), limit: String(pageSize), ...(marker ? { marker } : {}) });
      const r = (await this.call('GET', `/servers/detail?${q}`, undefined, MIN_MICROVERSION)) as { servers?: NovaServer[] };
      if (!Array.isArray(r.servers)) throw new OpenStackError('servers/detail: no servers array', 200, undefined, 'malformed');
      out.push(...r.servers);
      if (r.servers.length < pageSize) return out;
      const last = r.servers.at(-1)!.id;
      if (last === marker) return out;
      marker = last;
    }
    return out;
  }

  async getServer(id: string): Promise<NovaServer> {
    const r = (await this.call('GET', `/servers/${encodeURIComponent(id)}`, undefined, MIN_MICROVERSION)) as { server?: NovaServer };
    if (!r.server) throw new OpenStackError('servers/{id}: no server', 200, undefined, 'malformed');
    return r.server;
  }

  /** POST evacuate (not retried: not idempotent). Returns the microversion used. */
  async evacuate(id: string, opts: { host?: string; microversion: string }): Promise<string> {
    const mv = await this.use(opts.microversion);
    await this.call('POST', `/servers/${encodeURIComponent(id)}/action`, { evacuate: { ...(opts.host ? { host: opts.host } : {}) } }, mv);
    return mv;
  }

  async startServer(id: string): Promise<void> {
    await this.call('POST', `/servers/${encodeURIComponent(id)}/action`, { 'os-start': null }, MIN_MICROVERSION);
  }

  /** os-resetState (admin): sets vm_state and clears a stuck task_state. Not retried. */
  async resetState(id: string, state: 'error' | 'active'): Promise<void> {
    await this.call('POST', `/servers/${encodeURIComponent(id)}/action`, { 'os-resetState': { state } }, MIN_MICROVERSION);
  }

  async migrations(q: { sourceCompute?: string; instanceUuid?: string; type?: string }): Promise<NovaMigration[]> {
    const p = new URLSearchParams({
      ...(q.type ? { migration_type: q.type } : {}),
      ...(q.sourceCompute ? { source_compute: q.sourceCompute } : {}),
      ...(q.instanceUuid ? { instance_uuid: q.instanceUuid } : {}),
    });
    const r = (await this.call('GET', `/os-migrations?${p}`, undefined, MIN_MICROVERSION)) as { migrations?: NovaMigration[] };
    if (!Array.isArray(r.migrations)) throw new OpenStackError('os-migrations: no migrations array', 200, undefined, 'malformed');
    return r.migrations;
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
        text = await res.text();
      } catch (err) {
        const e = err as Error;
        const timeout = e.name === 'TimeoutError' || e.name === 'AbortError';
        if (attempt < retries) { await delay(this.opts.retryDelayMs ?? 500); continue; }
        throw new OpenStackError(`nova ${method} ${new URL(url).pathname} ${timeout ? 'timed out' : `failed: ${e.message}`}`, 0, undefined, timeout ? 'timeout' : 'network');
      }
      if (res.status === 401 && !reauthed) {
        reauthed = true;
        this.keystone.invalidate();
        attempt--;
        continue;
      }
      if (res.status >= 500 && attempt < retries) { await delay(this.opts.retryDelayMs ?? 500); continue; }
      if (res.status >= 400) {
        throw new OpenStackError(`nova ${method} ${new URL(url).pathname}: HTTP ${res.status} ${faultMessage(text)}`, res.status, faultName(text));
      }
      if (!text) return {};
      try {
        return JSON.parse(text);
      } catch {
        throw new OpenStackError(`nova ${method} ${new URL(url).pathname}: malformed JSON`, res.status, undefined, 'malformed');
      }
    }
  }
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
