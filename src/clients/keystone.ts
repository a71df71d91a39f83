// Keystone v3 password auth: token cache, re-authentication before expiry and once on 401 (by the
// caller through invalidate()), service catalog lookup. Credentials come from clouds.yaml.
import { parse as parseYaml } from 'yaml';

export interface CloudConfig {
  authUrl: string;
  username: string;
  password: string;
  userDomainName: string;
  projectName: string;
  projectDomainName: string;
  regionName?: string;
  interface: 'public' | 'internal' | 'admin';
}

export class OpenStackError extends Error {
  override name = 'OpenStackError';
  constructor(
    message: string,
    /** HTTP status; 0 for network errors and timeouts. */
    public readonly status: number,
    public readonly fault?: string,
    public readonly kind: 'http' | 'timeout' | 'network' | 'malformed' | 'config' = 'http',
  ) {
    super(message);
  }
}

/** Reads one cloud from a clouds.yaml document. */
export function parseCloudsYaml(text: string, cloud: string): CloudConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new OpenStackError(`clouds.yaml: ${(err as Error).message}`, 0, undefined, 'config');
  }
  const c = (doc as { clouds?: Record<string, unknown> })?.clouds?.[cloud] as
    | { auth?: Record<string, string>; region_name?: string; interface?: string }
    | undefined;
  if (!c?.auth) throw new OpenStackError(`clouds.yaml has no cloud ${JSON.stringify(cloud)} with an auth section`, 0, undefined, 'config');
  const a = c.auth;
  for (const k of ['auth_url', 'username', 'password', 'project_name']) {
    if (!a[k]) throw new OpenStackError(`clouds.yaml cloud ${cloud}: auth.${k} is required`, 0, undefined, 'config');
  }
  const iface = (c.interface ?? 'public') as CloudConfig['interface'];
  return {
    authUrl: a.auth_url!.replace(/\/+$/, ''),
    username: a.username!,
    password: a.password!,
    userDomainName: a.user_domain_name ?? a.domain_name ?? 'Default',
    projectName: a.project_name!,
    projectDomainName: a.project_domain_name ?? a.domain_name ?? 'Default',
    ...(c.region_name ? { regionName: c.region_name } : {}),
    interface: ['public', 'internal', 'admin'].includes(iface) ? iface : 'public',
  };
}

interface CatalogEntry {
  type: string;
  endpoints: { interface: string; region_id?: string; region?: string; url: string }[];
}

export interface KeystoneOptions {
  timeoutMs?: number;
  /** Re-authenticate this long before the token expires. */
  refreshBeforeMs?: number;
  now?: () => number;
}

export class KeystoneClient {
  private token: { value: string; expiresAt: number; catalog: CatalogEntry[] } | undefined;
  private inflight: Promise<void> | undefined;
  constructor(private readonly cloud: CloudConfig, private readonly opts: KeystoneOptions = {}) {}

  private now() {
    return (this.opts.now ?? Date.now)();
  }

  invalidate(): void {
    this.token = undefined;
  }

  async authToken(): Promise<string> {
    await this.ensure();
    return this.token!.value;
  }

  async endpoint(type: string): Promise<string> {
    await this.ensure();
    const entry = this.token!.catalog.find((e) => e.type === type);
    const ep = entry?.endpoints.find((e) => e.interface === this.cloud.interface && (!this.cloud.regionName || (e.region_id ?? e.region) === this.cloud.regionName));
    if (!ep) throw new OpenStackError(`no ${this.cloud.interface} ${type} endpoint${this.cloud.regionName ? ` in region ${this.cloud.regionName}` : ''} in the catalog`, 0, undefined, 'config');
    return ep.url.replace(/\/+$/, '');
  }

  private async ensure(): Promise<void> {
    const refresh = this.opts.refreshBeforeMs ?? 300_000;
    if (this.token && this.token.expiresAt - refresh > this.now()) return;
    this.inflight ??= this.authenticate().finally(() => { this.inflight = undefined; });
    await this.inflight;
  }

  private async authenticate(): Promise<void> {
    const c = this.cloud;
    const body = {
      auth: {
        identity: { methods: ['password'], password: { user: { name: c.username, domain: { name: c.userDomainName }, password: c.password } } },
        scope: { project: { name: c.projectName, domain: { name: c.projectDomainName } } },
      },
    };
    const url = `${c.authUrl}${/\/v3$/.test(c.authUrl) ? '' : '/v3'}/auth/tokens`;
    let res: Response;
    try {
      res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000) });
    } catch (err) {
      const e = err as Error;
      const timeout = e.name === 'TimeoutError' || e.name === 'AbortError';
      throw new OpenStackError(`keystone ${timeout ? 'timed out' : `unreachable: ${e.message}`}`, 0, undefined, timeout ? 'timeout' : 'network');
    }
    const text = await res.text();
    if (res.status !== 201 && res.status !== 200) {
      throw new OpenStackError(`keystone authentication failed: HTTP ${res.status} ${faultMessage(text)}`, res.status, faultName(text));
    }
    const token = res.headers.get('x-subject-token');
    let parsed: { token?: { expires_at?: string; catalog?: CatalogEntry[] } };
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new OpenStackError('keystone returned malformed JSON', res.status, undefined, 'malformed');
    }
    const expiresAt = Date.parse(parsed.token?.expires_at ?? '');
    if (!token || !Number.isFinite(expiresAt) || !Array.isArray(parsed.token?.catalog)) {
      throw new OpenStackError('keystone token response lacks X-Subject-Token, expires_at or catalog', res.status, undefined, 'malformed');
    }
    this.token = { value: token, expiresAt, catalog: parsed.token!.catalog! };
  }
}

export function faultName(text: string): string | undefined {
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    return Object.keys(j)[0];
  } catch {
    return undefined;
  }
}

export function faultMessage(text: string): string {
  try {
    const j = JSON.parse(text) as Record<string, { message?: string } | undefined>;
    const first = Object.values(j)[0];
    if (first && typeof first === 'object' && typeof first.message === 'string') return first.message;
  } catch {
    /* not JSON */
  }
  return text.slice(0, 200);
}
