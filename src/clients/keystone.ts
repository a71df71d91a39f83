// Keystone v3 password auth: token cache, service catalog lookup. Credentials come from clouds.yaml.
// Refresh is relative to the token's own lifetime (issued_at -> expires_at, measured on Keystone's
// clock and applied from the moment the token arrived, so clock skew does not matter): at
// `refreshFraction` of it (default 0.8, like keystoneauth's "about to expire" margin scaled to the
// lifetime), single-flight. A 401 drops the token once; a token that was itself fetched after a 401
// is not dropped again within `minReauthIntervalMs`, so a Nova that rejects every token cannot make
// hm9k authenticate on every call (the storm of issue 9: 846 token requests in 188 s). With no usable
// token, failures back off (authRetryMs doubling up to minReauthIntervalMs) instead of one request per call.
import { parse as parseYaml } from 'yaml';
import { BodyTooLargeError, DEFAULT_API_LIMITS, readBodyBounded, type RejectHook } from './limits.js';

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
    public readonly kind: 'http' | 'timeout' | 'network' | 'malformed' | 'config' | 'tooLarge' | 'tooManyPages' = 'http',
  ) {
    super(message);
  }
}

/** The catalog entries hm9k can read (a type and endpoints with interface and url strings); others are dropped. */
function wellFormedCatalog(list: unknown[]): CatalogEntry[] {
  const obj = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object';
  return list.filter(obj).filter((e) => typeof e.type === 'string' && Array.isArray(e.endpoints)).map((e) => ({
    type: e.type as string,
    endpoints: (e.endpoints as unknown[]).filter(obj).filter((x) => typeof x.interface === 'string' && typeof x.url === 'string')
      .map((x) => ({ interface: x.interface as string, url: x.url as string, ...(typeof x.region_id === 'string' ? { region_id: x.region_id } : {}), ...(typeof x.region === 'string' ? { region: x.region } : {}) })),
  }));
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
  /** Refresh when this share of the token's lifetime has passed (0 < f < 1; default 0.8). */
  refreshFraction?: number;
  /**
   * A token fetched after a 401 is not dropped again by another 401 for this long, and a failed
   * refresh is retried after this long while the current token is still valid (default 5 s).
   */
  minReauthIntervalMs?: number;
  /**
   * With no usable token, a failed authentication is answered from memory for this long before
   * Keystone is asked again; the wait doubles with each failure up to minReauthIntervalMs (default 250 ms).
   */
  authRetryMs?: number;
  /** Largest token answer accepted (bytes; the catalog can be large, but not unbounded). */
  maxBodyBytes?: number;
  /** Counts rejected answers (hm9k_nodes_api_rejected_total). */
  onReject?: RejectHook;
  now?: () => number;
}

interface Token {
  value: string;
  catalog: CatalogEntry[];
  /** Local time the token arrived. */
  receivedAt: number;
  /** Local time at which to fetch the next one. */
  refreshAt: number;
  /** Local time it expires (received + lifetime). */
  expiresAt: number;
  /** Fetched because the previous one got a 401. */
  after401: boolean;
}

export class KeystoneClient {
  private token: Token | undefined;
  private inflight: Promise<void> | undefined;
  private next401 = false;
  /** The last failed authentication while no token was usable, and when to try again. */
  private failure: { error: unknown; delayMs: number; retryAt: number } | undefined;
  /** Token requests sent (for tests and the bench). */
  authentications = 0;
  constructor(private readonly cloud: CloudConfig, private readonly opts: KeystoneOptions = {}) {
    const f = opts.refreshFraction ?? 0.8;
    if (!(f > 0 && f < 1)) throw new OpenStackError(`keystone refreshFraction ${f} must be between 0 and 1`, 0, undefined, 'config');
  }

  private now() {
    return (this.opts.now ?? Date.now)();
  }

  /**
   * The caller got a 401 with `token`: drop it so the next call authenticates again. Ignored when
   * the token is no longer the current one (another call already replaced it), and when the current
   * one was itself fetched after a 401 less than minReauthIntervalMs ago (the 401 is then the
   * caller's to report, not a reason to ask Keystone again).
   */
  invalidate(token?: string): void {
    const t = this.token;
    if (!t || (token !== undefined && t.value !== token)) return;
    if (t.after401 && this.now() - t.receivedAt < (this.opts.minReauthIntervalMs ?? 5000)) return;
    this.token = undefined;
    this.next401 = true;
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
    if (this.token && this.now() < this.token.refreshAt) return;
    // No usable token and Keystone failed a moment ago: answer with that failure until the back-off
    // has passed, so callers polling in a loop do not each ask a Keystone that is down (issue 13:
    // ~29 token requests in 5 s from one hm9k while Keystone was down).
    const f = this.failure;
    if (f && !this.inflight && this.now() < f.retryAt && !(this.token && this.now() < this.token.expiresAt)) throw f.error;
    // Single flight: every caller waiting for a token shares one request.
    this.inflight ??= this.authenticate().then(
      () => { this.failure = undefined; },
      (err: unknown) => {
        const delay = Math.min(this.opts.minReauthIntervalMs ?? 5000, this.failure ? this.failure.delayMs * 2 : (this.opts.authRetryMs ?? 250));
        this.failure = { error: err, delayMs: delay, retryAt: this.now() + delay };
        throw err;
      },
    ).finally(() => { this.inflight = undefined; });
    try {
      await this.inflight;
    } catch (err) {
      // A failed refresh while the current token is still valid: keep using it, and ask Keystone
      // again only after minReauthIntervalMs (never once per call while Keystone is down).
      const t = this.token;
      const now = this.now();
      if (!t || now >= t.expiresAt) throw err;
      t.refreshAt = Math.min(t.expiresAt, now + (this.opts.minReauthIntervalMs ?? 5000));
    }
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
    this.authentications++;
    try {
      res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000) });
    } catch (err) {
      const e = err as Error;
      const timeout = e.name === 'TimeoutError' || e.name === 'AbortError';
      throw new OpenStackError(`keystone ${timeout ? 'timed out' : `unreachable: ${e.message}`}`, 0, undefined, timeout ? 'timeout' : 'network');
    }
    let text: string;
    try {
      text = await readBodyBounded(res, this.opts.maxBodyBytes ?? DEFAULT_API_LIMITS.maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        this.opts.onReject?.('keystone', 'body_too_large');
        throw new OpenStackError(`keystone token answer refused: ${err.message}`, res.status, undefined, 'tooLarge');
      }
      throw new OpenStackError(`keystone answer unreadable: ${(err as Error).message}`, res.status, undefined, 'network');
    }
    if (res.status !== 201 && res.status !== 200) {
      throw new OpenStackError(`keystone authentication failed: HTTP ${res.status} ${faultMessage(text)}`, res.status, faultName(text));
    }
    const token = res.headers.get('x-subject-token');
    let parsed: { token?: { expires_at?: string; issued_at?: string; catalog?: CatalogEntry[] } };
    try {
      parsed = JSON.parse(text);
    } catch {
      this.opts.onReject?.('keystone', 'malformed');
      throw new OpenStackError('keystone returned malformed JSON', res.status, undefined, 'malformed');
    }
    const receivedAt = this.now();
    const expires = Date.parse(typeof parsed?.token?.expires_at === 'string' ? parsed.token.expires_at : '');
    if (!token || !Number.isFinite(expires) || !Array.isArray(parsed.token?.catalog)) {
      this.opts.onReject?.('keystone', 'malformed');
      throw new OpenStackError('keystone token response lacks X-Subject-Token, expires_at or catalog', res.status, undefined, 'malformed');
    }
    // Lifetime on Keystone's own clock; without issued_at, from our clock (skew then counts).
    const issued = Date.parse(typeof parsed.token?.issued_at === 'string' ? parsed.token.issued_at : '');
    const lifetime = Math.max(0, expires - (Number.isFinite(issued) ? issued : Date.now()));
    const after401 = this.next401;
    this.next401 = false;
    this.token = {
      value: token, catalog: wellFormedCatalog(parsed.token!.catalog!), receivedAt, after401,
      // At most one proactive refresh a second, however short-lived Keystone's tokens are.
      refreshAt: receivedAt + Math.max(lifetime * (this.opts.refreshFraction ?? 0.8), 1000),
      expiresAt: receivedAt + lifetime,
    };
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
