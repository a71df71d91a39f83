// Keystone v3 + Nova simulator: the endpoints hm9k uses, with the real status codes, fault bodies and
// microversion rules (compute-ha.md section 2). For the tests and `hm9k demo`. Listens on 127.0.0.1.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface SimServer {
  id: string;
  name: string;
  host: string;
  vm_state: 'active' | 'stopped' | 'error' | 'building' | 'paused';
  task_state: string | null;
  metadata: Record<string, string>;
  locked: boolean;
}

export interface SimService {
  id: string;
  host: string;
  zone: string;
  status: 'enabled' | 'disabled';
  disabled_reason: string | null;
  forced_down: boolean;
  /** Last time nova-compute on the host reported (ms). */
  lastSeen: number;
}

export interface SimMigration {
  id: number;
  uuid: string;
  instance_uuid: string;
  source_compute: string;
  dest_compute: string | null;
  /** Evacuation: accepted, pre-migrating, done, completed | failed. Live migration: accepted, queued, preparing, running, completed | error. */
  status: 'accepted' | 'pre-migrating' | 'done' | 'completed' | 'failed' | 'error' | 'queued' | 'preparing' | 'running';
  migration_type: 'evacuation' | 'live-migration';
  created_at: string;
  updated_at: string;
}

export interface NovaSimOptions {
  username?: string;
  password?: string;
  projectName?: string;
  /** Highest microversion the simulated Nova speaks. */
  maxMicroversion?: string;
  tokenTtlMs?: number;
  /** Nova's service_down_time. */
  serviceDownTimeMs?: number;
  /** Time of each migration phase (accepted -> pre-migrating -> done). */
  migrationStepMs?: number;
  region?: string;
  /**
   * Nova's [api] max_limit: the most items one list answer holds, whatever `limit` asks (default
   * 1000 like Nova). A full page carries `*_links` rel next with the last item's id as marker.
   */
  maxLimit?: number;
}

const STATUS_OF: Record<SimServer['vm_state'], string> = { active: 'ACTIVE', stopped: 'SHUTOFF', error: 'ERROR', building: 'BUILD', paused: 'PAUSED' };

/** Nova's fault body; `mv`: the negotiated microversion, whose headers real Nova sends on errors too. */
function fault(res: ServerResponse, code: number, name: string, message: string, mv?: string) {
  res.writeHead(code, { 'content-type': 'application/json; charset=UTF-8', ...(mv ? mvHeaders(mv) : {}) });
  res.end(JSON.stringify({ [name]: { code, message } }));
}

function mvHeaders(mv: string): Record<string, string> {
  return { 'openstack-api-version': `compute ${mv}`, 'x-openstack-nova-api-version': mv, vary: 'OpenStack-API-Version, X-OpenStack-Nova-API-Version' };
}

/** jsonschema's message for properties a schema does not allow, as Nova words it. */
function extraProps(keys: string[]): string {
  return `Additional properties are not allowed (${keys.map((k) => `'${k}'`).join(', ')} ${keys.length > 1 ? 'were' : 'was'} unexpected)`;
}

/** Python's repr of a small JSON value, as Nova's validation messages print the value. */
function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return `'${v}'`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `'${k}': ${pyRepr(x)}`).join(', ')}}`;
  return String(v);
}

function mvNum(v: string): number {
  const [a, b] = v.split('.').map(Number);
  return (a ?? 0) * 1000 + (b ?? 0);
}

export class NovaSim {
  readonly servers = new Map<string, SimServer>();
  readonly services = new Map<string, SimService>();
  readonly migrations: SimMigration[] = [];
  /** Hosts whose nova-compute is running and reporting. */
  private alive = new Map<string, boolean>();
  private aliveProbe: ((host: string) => boolean) | undefined;
  private tokens = new Map<string, number>();
  private server: Server | undefined;
  private timers = new Set<NodeJS.Timeout>();
  private migrationSeq = 0;
  /** Requests seen: `${method} ${path}`. */
  readonly requests: string[] = [];
  /** POST /identity/v3/auth/tokens requests received (successful or not). */
  tokenRequests = 0;
  /** Injected failures. */
  failNext: { status: number; count: number; match?: RegExp } | undefined;
  delayMs = 0;
  /** Servers whose evacuation fails (migration failed, vm_state error). */
  readonly failEvacuationOf = new Set<string>();
  /**
   * Called with every request (`METHOD /path`) before it is handled; a test can act at an exact point
   * (e.g. kill the controller when its first evacuate arrives: Nova still carries it out).
   */
  onRequest: ((what: string) => void | Promise<void>) | undefined;
  /**
   * Called once a server action's body has been read, before Nova carries it out (`evacuate`,
   * `os-start`, ...). Awaited: a test can hold a request in nova-api; it is carried out afterwards
   * even when the client has gone meanwhile (nova-api finishes a request it has read).
   */
  beforeAction: ((serverId: string, action: string) => void | Promise<void>) | undefined;
  /** Servers whose evacuation stays in pre-migrating until removed from this set. */
  readonly stallEvacuationOf = new Set<string>();
  /** Servers whose live migration fails (migration error; the server stays ACTIVE on its host, as in Nova). */
  readonly failLiveMigrationOf = new Set<string>();
  port = 0;
  private o: Required<Omit<NovaSimOptions, 'region'>> & { region: string };

  constructor(opts: NovaSimOptions = {}) {
    this.o = {
      username: opts.username ?? 'hm9k', password: opts.password ?? 'secret', projectName: opts.projectName ?? 'admin',
      maxMicroversion: opts.maxMicroversion ?? '2.96', tokenTtlMs: opts.tokenTtlMs ?? 3_600_000,
      serviceDownTimeMs: opts.serviceDownTimeMs ?? 60_000, migrationStepMs: opts.migrationStepMs ?? 200, region: opts.region ?? 'RegionOne',
      maxLimit: opts.maxLimit ?? 1000,
    };
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  cloudsYaml(cloud = 'sim'): string {
    return [
      'clouds:',
      `  ${cloud}:`,
      '    auth:',
      `      auth_url: ${this.url}/identity/v3`,
      `      username: ${this.o.username}`,
      `      password: ${this.o.password}`,
      `      project_name: ${this.o.projectName}`,
      '      user_domain_name: Default',
      '      project_domain_name: Default',
      `    region_name: ${this.o.region}`,
      '    interface: public',
      '',
    ].join('\n');
  }

  addHost(host: string, alive = true): SimService {
    const svc: SimService = { id: randomUUID(), host, zone: 'nova', status: 'enabled', disabled_reason: null, forced_down: false, lastSeen: Date.now() };
    this.services.set(host, svc);
    this.alive.set(host, alive);
    return svc;
  }

  addServer(host: string, opts: Partial<Omit<SimServer, 'id' | 'host'>> = {}): SimServer {
    const s: SimServer = { id: randomUUID(), name: opts.name ?? `vm-${this.servers.size + 1}`, host, vm_state: opts.vm_state ?? 'active', task_state: opts.task_state ?? null, metadata: opts.metadata ?? {}, locked: opts.locked ?? false };
    this.servers.set(s.id, s);
    return s;
  }

  /** nova-compute on `host` starts or stops reporting. Starting it completes `done` evacuation migrations (Nova's cleanup at startup). */
  setAlive(host: string, alive: boolean): void {
    const was = this.isAlive(host);
    this.alive.set(host, alive);
    if (alive && !was) this.computeStarted(host);
  }

  /** Couple nova-compute liveness to the simulated world (e.g. BMC power). */
  setAliveProbe(probe: (host: string) => boolean): void {
    this.aliveProbe = probe;
  }

  private isAlive(host: string): boolean {
    const base = this.alive.get(host) ?? false;
    return base && (this.aliveProbe ? this.aliveProbe(host) : true);
  }

  private computeStarted(host: string) {
    for (const m of this.migrations) {
      if (m.source_compute === host && m.status === 'done') { m.status = 'completed'; m.updated_at = new Date().toISOString(); }
    }
    for (const s of this.servers.values()) if (s.host === host) { /* evacuated instances are gone from the host */ }
  }

  private lastAlive = new Map<string, boolean>();

  serviceState(svc: SimService): 'up' | 'down' {
    const alive = this.isAlive(svc.host);
    const was = this.lastAlive.get(svc.host);
    this.lastAlive.set(svc.host, alive);
    if (alive) {
      const wasDown = Date.now() - svc.lastSeen > this.o.serviceDownTimeMs;
      svc.lastSeen = Date.now();
      // nova-compute (re)started: it cleans up evacuated instances (done -> completed).
      if (wasDown || was === false) this.computeStarted(svc.host);
    }
    if (svc.forced_down) return 'down';
    return Date.now() - svc.lastSeen > this.o.serviceDownTimeMs ? 'down' : 'up';
  }

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((err: Error) => fault(res, 500, 'computeFault', err.message));
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }

  private later(ms: number, fn: () => void) {
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    this.timers.add(t);
  }

  private async body(req: IncomingMessage): Promise<unknown> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    if (!raw) return undefined;
    return JSON.parse(raw);
  }

  private json(res: ServerResponse, code: number, body: unknown, mv?: string) {
    res.writeHead(code, { 'content-type': 'application/json', ...(mv ? mvHeaders(mv) : {}) });
    res.end(body === undefined ? '' : JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const path = url.pathname;
    this.requests.push(`${req.method} ${path}`);
    if (this.onRequest) await this.onRequest(`${req.method} ${path}`);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failNext && this.failNext.count > 0 && (!this.failNext.match || this.failNext.match.test(`${req.method} ${path}`))) {
      this.failNext.count--;
      return fault(res, this.failNext.status, this.failNext.status === 503 ? 'serviceUnavailable' : 'computeFault', 'injected failure');
    }
    if (path === '/identity/v3/auth/tokens' && req.method === 'POST') { this.tokenRequests++; return this.auth(req, res); }
    if (!path.startsWith('/compute/v2.1')) return fault(res, 404, 'itemNotFound', 'not found');
    const token = req.headers['x-auth-token'];
    const exp = typeof token === 'string' ? this.tokens.get(token) : undefined;
    if (!exp || exp < Date.now()) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': `Keystone uri="${this.url}/identity"` });
      res.end(JSON.stringify({ error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } }));
      return;
    }
    const sub = path.slice('/compute/v2.1'.length) || '/';
    if (sub === '/' && req.method === 'GET') {
      return this.json(res, 200, { version: { id: 'v2.1', status: 'CURRENT', version: this.o.maxMicroversion, min_version: '2.1', updated: '2013-07-23T11:33:21Z', links: [] } });
    }
    // Microversion negotiation.
    const hdr = (req.headers['openstack-api-version'] as string | undefined)?.replace(/^compute\s+/, '') ?? (req.headers['x-openstack-nova-api-version'] as string | undefined) ?? '2.1';
    const mv = hdr === 'latest' ? this.o.maxMicroversion : hdr;
    // Real Nova: an unreadable version is a 400 (no version headers); a readable one outside 2.1..max a 406.
    if (!/^[0-9]+\.[0-9]+$/.test(mv)) return fault(res, 400, 'badRequest', `API Version String ${mv} is of invalid format. Must be of format MajorNum.MinorNum.`);
    if (!/^2\.[0-9]+$/.test(mv) || mvNum(mv) < mvNum('2.1') || mvNum(mv) > mvNum(this.o.maxMicroversion)) {
      return fault(res, 406, 'computeFault', `Version ${mv} is not supported by the API. Minimum is 2.1 and maximum is ${this.o.maxMicroversion}.`, mv);
    }
    let body: unknown;
    try {
      body = await this.body(req);
    } catch {
      return fault(res, 400, 'badRequest', 'Malformed request body', mv);
    }
    let m: RegExpExecArray | null;
    if (sub === '/os-services' && req.method === 'GET') {
      const extra = [...new Set(url.searchParams.keys())].filter((k) => k !== 'host' && k !== 'binary');
      if (extra.length && mvNum(mv) >= 2075) return fault(res, 400, 'badRequest', extraProps(extra), mv);
      const host = url.searchParams.get('host');
      const binary = url.searchParams.get('binary');
      const list = [...this.services.values()].filter((s) => (!host || s.host === host) && (!binary || binary === 'nova-compute'));
      return this.json(res, 200, { services: list.map((s) => this.serviceView(s, mv)) }, mv);
    }
    if ((m = /^\/os-services\/([^/]+)$/.exec(sub)) && req.method === 'PUT') {
      const b = (body ?? {}) as { status?: string; disabled_reason?: string; forced_down?: boolean };
      // Before 2.53 the URL names the action (enable, disable, force-down) and the body the host: an id there fails that schema.
      if (mvNum(mv) < 2053) return fault(res, 400, 'badRequest', "'host' is a required property", mv);
      // The body schema is checked before the service is looked up (real Nova's order).
      const extra = Object.keys(b).filter((k) => !['status', 'disabled_reason', 'forced_down'].includes(k));
      if (extra.length) return fault(res, 400, 'badRequest', extraProps(extra), mv);
      const svc = [...this.services.values()].find((s) => s.id === m![1]);
      if (!svc) return fault(res, 404, 'itemNotFound', `Service ${m[1]} could not be found.`, mv);
      if (Object.keys(b).length === 0) return fault(res, 400, 'badRequest', 'Invalid input for field/attribute.', mv);
      if (b.status !== undefined && b.status !== 'enabled' && b.status !== 'disabled') return fault(res, 400, 'badRequest', `Invalid input for field/attribute status. Value: ${b.status}.`, mv);
      if (b.disabled_reason !== undefined && (b.status !== 'disabled' || b.disabled_reason.length < 1 || b.disabled_reason.length > 255)) {
        return fault(res, 400, 'badRequest', 'Specifying a disabled reason is not supported unless disabling the service.', mv);
      }
      if (b.forced_down === false && svc.forced_down) {
        const pending = this.migrations.filter((x) => x.source_compute === svc.host && x.status === 'done');
        // Real Nova's words (Zed, nova/api/openstack/compute/services.py).
        if (pending.length) return fault(res, 400, 'badRequest', `Unable to force up host ${svc.host} as \`done\` evacuation migration records remain associated with the host. Ensure the compute service has been restarted, allowing these records to move to \`completed\` before retrying this request.`, mv);
      }
      if (b.status === 'enabled') { svc.status = 'enabled'; svc.disabled_reason = null; }
      if (b.status === 'disabled') { svc.status = 'disabled'; svc.disabled_reason = b.disabled_reason ?? null; }
      if (b.forced_down !== undefined) svc.forced_down = b.forced_down;
      return this.json(res, 200, { service: this.serviceView(svc, mv) }, mv);
    }
    if (sub === '/servers/detail' && req.method === 'GET') {
      const allTenants = url.searchParams.get('all_tenants');
      const host = allTenants ? url.searchParams.get('host') : null;
      const limit = this.pageLimit(url);
      if (typeof limit === 'string') return fault(res, 400, 'badRequest', limit, mv);
      const marker = url.searchParams.get('marker');
      let list = [...this.servers.values()].filter((s) => !host || s.host === host).sort((a, b) => a.id.localeCompare(b.id));
      if (marker) {
        const i = list.findIndex((s) => s.id === marker);
        if (i < 0) return fault(res, 400, 'badRequest', `marker [${marker}] not found`, mv);
        list = list.slice(i + 1);
      }
      const page = list.slice(0, limit);
      return this.json(res, 200, { servers: page.map((s) => this.serverView(s)), ...this.links('servers', url, limit, page.map((s) => s.id)) }, mv);
    }
    if ((m = /^\/servers\/([^/]+)$/.exec(sub)) && req.method === 'GET') {
      const s = this.servers.get(m[1]!);
      if (!s) return fault(res, 404, 'itemNotFound', `Instance ${m[1]} could not be found.`, mv);
      return this.json(res, 200, { server: this.serverView(s) }, mv);
    }
    if ((m = /^\/servers\/([^/]+)\/action$/.exec(sub)) && req.method === 'POST') {
      const s = this.servers.get(m[1]!);
      if (!s) return fault(res, 404, 'itemNotFound', `Instance ${m[1]} could not be found.`, mv);
      const b = (body ?? {}) as Record<string, unknown>;
      if (this.beforeAction) await this.beforeAction(s.id, Object.keys(b)[0] ?? '');
      if ('evacuate' in b) return this.evacuate(res, s, (b.evacuate ?? {}) as { host?: string; force?: boolean; onSharedStorage?: boolean }, mv);
      if ('os-migrateLive' in b) return this.migrateLive(res, s, b['os-migrateLive'], mv);
      if ('os-start' in b) {
        if (s.vm_state !== 'stopped' || s.task_state) return fault(res, 409, 'conflictingRequest', `Cannot 'start' instance ${s.id} while it is in vm_state ${s.vm_state}`, mv);
        s.vm_state = 'active';
        return this.json(res, 202, undefined, mv);
      }
      if ('os-resetState' in b) {
        // Admin action: sets vm_state and clears task_state (Nova's reset-state), answers 202.
        const st = (b['os-resetState'] as { state?: unknown } | null)?.state;
        if (st !== 'active' && st !== 'error') return fault(res, 400, 'badRequest', `Invalid input for field/attribute state. Value: ${String(st)}. '${String(st)}' is not one of ['active', 'error']`, mv);
        s.vm_state = st;
        s.task_state = null;
        return this.json(res, 202, undefined, mv);
      }
      return fault(res, 400, 'badRequest', `There is no such action: ${Object.keys(b)[0] ?? ''}`, mv);
    }
    if (sub === '/os-migrations' && req.method === 'GET') {
      const q = url.searchParams;
      let list = this.migrations.filter((x) =>
        (!q.get('migration_type') || x.migration_type === q.get('migration_type')) &&
        (!q.get('source_compute') || x.source_compute === q.get('source_compute')) &&
        (!q.get('instance_uuid') || x.instance_uuid === q.get('instance_uuid')));
      const view = (x: SimMigration) => ({ ...x, ...(mvNum(mv) >= 2059 ? {} : { uuid: undefined }) });
      // Before 2.59 os-migrations is not paged: the whole list, limit and marker ignored.
      if (mvNum(mv) < 2059) return this.json(res, 200, { migrations: list.map(view) }, mv);
      const limit = this.pageLimit(url);
      if (typeof limit === 'string') return fault(res, 400, 'badRequest', limit, mv);
      // Nova's order: created_at desc, id desc; the marker is the migration's uuid.
      list = [...list].sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id - a.id);
      const marker = q.get('marker');
      if (marker) {
        const i = list.findIndex((x) => x.uuid === marker);
        if (i < 0) return fault(res, 400, 'badRequest', `Marker ${marker} could not be found.`, mv);
        list = list.slice(i + 1);
      }
      const page = list.slice(0, limit);
      return this.json(res, 200, { migrations: page.map(view), ...this.links('migrations', url, limit, page.map((x) => x.uuid)) }, mv);
    }
    return fault(res, 404, 'itemNotFound', `The resource could not be found.`);
  }

  /**
   * Nova's query schema (limit: '^[0-9]*$') and common.get_limit_and_marker: absent = max_limit, never
   * above it; 0 is an empty page (real Zed answers `limit=0` with no items and no links).
   */
  private pageLimit(url: URL): number | string {
    const raw = url.searchParams.get('limit');
    if (raw === null) return this.o.maxLimit;
    if (!/^[0-9]*$/.test(raw)) return `Invalid input for query parameters limit. Value: ${raw}. '${raw}' does not match '^[0-9]*$'`;
    return Math.min(raw === '' ? this.o.maxLimit : Number(raw), this.o.maxLimit);
  }

  /**
   * Nova's ViewBuilder._get_collection_links: a full page gets `<name>_links` [{rel: next, href}],
   * the href being the same request (parameters sorted) with marker = the last item's id.
   */
  private links(name: string, url: URL, limit: number, ids: string[]): Record<string, unknown> {
    if (!limit || ids.length !== limit) return {};
    const params = new URLSearchParams([...url.searchParams].filter(([k]) => k !== 'marker').sort(([a], [b]) => a.localeCompare(b)));
    params.set('marker', ids.at(-1)!);
    return { [`${name}_links`]: [{ rel: 'next', href: `${this.url}${url.pathname}?${params}` }] };
  }

  private auth(req: IncomingMessage, res: ServerResponse) {
    void this.body(req).then((b) => {
      const user = (b as { auth?: { identity?: { password?: { user?: { name?: string; password?: string } } } } })?.auth?.identity?.password?.user;
      if (!user || user.name !== this.o.username || user.password !== this.o.password) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } }));
        return;
      }
      const token = `gAAAA${randomUUID().replace(/-/g, '')}`;
      const expires = Date.now() + this.o.tokenTtlMs;
      this.tokens.set(token, expires);
      res.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': token });
      res.end(JSON.stringify({
        token: {
          methods: ['password'], expires_at: new Date(expires).toISOString(), issued_at: new Date().toISOString(),
          project: { name: this.o.projectName, id: 'p1', domain: { name: 'Default', id: 'default' } },
          roles: [{ name: 'admin', id: 'r1' }],
          catalog: [
            { type: 'compute', name: 'nova', endpoints: ['public', 'internal', 'admin'].map((i) => ({ interface: i, region_id: this.o.region, region: this.o.region, url: `${this.url}/compute/v2.1` })) },
            { type: 'identity', name: 'keystone', endpoints: [{ interface: 'public', region_id: this.o.region, url: `${this.url}/identity` }] },
          ],
        },
      }));
    }, () => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 400, title: 'Bad Request', message: 'Malformed JSON' } }));
    });
  }

  /** Expire every token (tests of re-authentication on 401). */
  revokeTokens(): void {
    this.tokens.clear();
  }

  private serviceView(s: SimService, mv: string) {
    return {
      id: mvNum(mv) >= 2053 ? s.id : 1, binary: 'nova-compute', host: s.host, zone: s.zone, status: s.status, state: this.serviceState(s),
      updated_at: new Date(s.lastSeen).toISOString(), disabled_reason: s.disabled_reason, forced_down: s.forced_down,
    };
  }

  private serverView(s: SimServer) {
    return {
      id: s.id, name: s.name, status: s.task_state === 'rebuilding' ? 'REBUILD' : s.task_state === 'migrating' ? 'MIGRATING' : STATUS_OF[s.vm_state],
      'OS-EXT-SRV-ATTR:host': s.host, 'OS-EXT-SRV-ATTR:hypervisor_hostname': s.host,
      'OS-EXT-STS:vm_state': s.vm_state, 'OS-EXT-STS:task_state': s.task_state, locked: s.locked, metadata: s.metadata,
    };
  }

  private evacuate(res: ServerResponse, s: SimServer, b: { host?: string; force?: boolean; onSharedStorage?: boolean }, mv: string) {
    const n = mvNum(mv);
    // Real Nova's order (Zed, evacuate.py): the body schema, the target host, then the source's service.
    const invalid = (detail: string) => fault(res, 400, 'badRequest', `Invalid input for field/attribute evacuate. Value: ${pyRepr(b)}. ${detail}`, mv);
    const allowed = ['host', 'adminPass', ...(n < 2014 ? ['onSharedStorage'] : []), ...(n >= 2029 && n < 2068 ? ['force'] : [])];
    const extra = Object.keys(b).filter((k) => !allowed.includes(k));
    if (extra.length) return invalid(extraProps(extra));
    if (n < 2014 && b.onSharedStorage === undefined) return invalid("'onSharedStorage' is a required property");
    if (b.host !== undefined) {
      if (!this.services.has(b.host)) return fault(res, 404, 'itemNotFound', `Compute host ${b.host} not found.`, mv);
      if (b.host === s.host) return fault(res, 400, 'badRequest', 'The target host can\'t be the same one.', mv);
    }
    const src = this.services.get(s.host);
    if (src && this.serviceState(src) === 'up') return fault(res, 400, 'badRequest', `Compute service of ${s.host} is still in use.`, mv);
    if (!['active', 'stopped', 'error'].includes(s.vm_state) || s.task_state) {
      return fault(res, 409, 'conflictingRequest', `Cannot 'evacuate' instance ${s.id} while it is in ${s.task_state ? `task_state ${s.task_state}` : `vm_state ${s.vm_state}`}`, mv);
    }
    const target = b.host ?? [...this.services.values()].find((x) => x.host !== s.host && x.status === 'enabled' && !x.forced_down && this.serviceState(x) === 'up')?.host;
    const now = new Date().toISOString();
    const mig: SimMigration = { id: ++this.migrationSeq, uuid: randomUUID(), instance_uuid: s.id, source_compute: s.host, dest_compute: target ?? null, status: 'accepted', migration_type: 'evacuation', created_at: now, updated_at: now };
    this.migrations.push(mig);
    const wasVm = s.vm_state;
    s.task_state = 'rebuilding';
    const step = this.o.migrationStepMs;
    const touch = () => { mig.updated_at = new Date().toISOString(); };
    // Forward only: under load both timers can fire in one turn, in either order.
    this.later(step, () => { if (mig.status === 'accepted') { mig.status = 'pre-migrating'; touch(); } });
    const finish = () => {
      if (this.stallEvacuationOf.has(s.id)) return this.later(step, finish);
      if (!target || this.failEvacuationOf.has(s.id)) {
        mig.status = 'failed'; touch();
        s.vm_state = 'error'; s.task_state = null;
        return;
      }
      mig.status = 'done'; touch();
      s.host = target; s.task_state = null;
      s.vm_state = n >= 2095 ? 'stopped' : wasVm === 'error' ? 'active' : wasVm;
    };
    this.later(step * 2, finish);
    return this.json(res, 200, n >= 2014 ? {} : { adminPass: 'x' }, mv);
  }

  /**
   * os-migrateLive with Nova's request schema per microversion (nova/api/openstack/compute/schemas/
   * migrate_server.py): 2.1 requires block_migration (boolean), disk_over_commit (boolean) and host
   * (string or null); 2.25 drops disk_over_commit and allows block_migration "auto"; 2.30 adds force;
   * 2.68 removes it. Errors as Nova's API maps them (migrate_server.py _migrate_live): host not found
   * 400, instance not ACTIVE/PAUSED or busy 409, source compute down 400; before 2.34 the scheduler
   * runs in the request (NoValidHost is a 400), from 2.34 the conductor runs it asynchronously (the
   * request is accepted and the migration ends in `error`, the server stays where it was).
   */
  private migrateLive(res: ServerResponse, s: SimServer, raw: unknown, mv: string) {
    const n = mvNum(mv);
    const bad = (detail: string) => fault(res, 400, 'badRequest', `Invalid input for field/attribute os-migrateLive. ${detail}`);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad(`Value: ${JSON.stringify(raw)}. ${JSON.stringify(raw)} is not of type 'object'`);
    const b = raw as Record<string, unknown>;
    const allowed = ['block_migration', 'host', ...(n < 2025 ? ['disk_over_commit'] : []), ...(n >= 2030 && n < 2068 ? ['force'] : [])];
    const extra = Object.keys(b).filter((k) => !allowed.includes(k));
    if (extra.length) return fault(res, 400, 'badRequest', `Additional properties are not allowed (${extra.map((k) => `'${k}'`).join(', ')} ${extra.length > 1 ? 'were' : 'was'} unexpected)`);
    const required = n < 2025 ? ['block_migration', 'disk_over_commit', 'host'] : ['block_migration', 'host'];
    for (const k of required) if (!(k in b)) return bad(`Value: ${JSON.stringify(b)}. '${k}' is a required property`);
    // parameter_types.boolean: true/false and their string spellings; "auto" only from 2.25.
    const isBool = (v: unknown) => typeof v === 'boolean' || (typeof v === 'string' && ['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'].includes(v.toLowerCase()));
    if (!(isBool(b.block_migration) || (n >= 2025 && b.block_migration === 'auto'))) return bad(`Value: ${JSON.stringify(b.block_migration)}. ${JSON.stringify(b.block_migration)} is not valid under any of the given schemas`);
    if (n < 2025 && !isBool(b.disk_over_commit)) return bad(`Value: ${JSON.stringify(b.disk_over_commit)}. ${JSON.stringify(b.disk_over_commit)} is not valid under any of the given schemas`);
    if ('force' in b && typeof b.force !== 'boolean') return bad(`Value: ${JSON.stringify(b.force)}. ${JSON.stringify(b.force)} is not of type 'boolean'`);
    const host = b.host;
    if (host !== null && (typeof host !== 'string' || host.length < 1 || host.length > 255)) return bad(`Value: ${JSON.stringify(host)}. ${JSON.stringify(host)} is not valid under any of the given schemas`);
    if (host !== null && !this.services.has(host)) return fault(res, 400, 'badRequest', `Compute host ${host} could not be found.`);
    if (!['active', 'paused'].includes(s.vm_state) || s.task_state) {
      return fault(res, 409, 'conflictingRequest', `Cannot 'os-migrateLive' instance ${s.id} while it is in ${s.task_state ? `task_state ${s.task_state}` : `vm_state ${s.vm_state}`}`);
    }
    const src = this.services.get(s.host);
    if (!src || this.serviceState(src) !== 'up') return fault(res, 400, 'badRequest', `Compute service of ${s.host} is unavailable at this time.`);
    const usable = (x: SimService) => x.host !== s.host && x.status === 'enabled' && !x.forced_down && this.serviceState(x) === 'up';
    // A named host is checked by the scheduler unless forced (2.30-2.67 force=true skips it).
    const dest = host !== null
      ? (host !== s.host && (b.force === true || usable(this.services.get(host)!)) && this.serviceState(this.services.get(host)!) === 'up' ? host : undefined)
      : [...this.services.values()].find(usable)?.host;
    const noValidHost = `No valid host was found. ${host !== null ? `Host ${host} is not usable` : 'There are not enough hosts available.'}`;
    if (!dest && n < 2034) return fault(res, 400, 'badRequest', noValidHost);
    const now = new Date().toISOString();
    const mig: SimMigration = { id: ++this.migrationSeq, uuid: randomUUID(), instance_uuid: s.id, source_compute: s.host, dest_compute: dest ?? host ?? null, status: 'accepted', migration_type: 'live-migration', created_at: now, updated_at: now };
    this.migrations.push(mig);
    s.task_state = 'migrating';
    const step = this.o.migrationStepMs;
    const touch = () => { mig.updated_at = new Date().toISOString(); };
    const order: SimMigration['status'][] = ['accepted', 'queued', 'preparing', 'running'];
    // Forward only (timers may fire in one turn in either order under load).
    const advance = (to: SimMigration['status']) => { if (order.indexOf(mig.status) >= 0 && order.indexOf(mig.status) < order.indexOf(to)) { mig.status = to; touch(); } };
    this.later(step, () => advance('queued'));
    this.later(step * 2, () => advance('preparing'));
    this.later(step * 3, () => advance('running'));
    const finish = () => {
      if (!dest || this.failLiveMigrationOf.has(s.id)) {
        // A failed live migration leaves the server running where it was (Nova rolls back).
        mig.status = 'error'; touch();
        s.task_state = null;
        return;
      }
      mig.status = 'completed'; touch();
      s.host = dest; s.task_state = null;
    };
    this.later(step * 4, finish);
    return this.json(res, 202, undefined, mv);
  }
}