// Process configuration for `hm9k run`: defaults < YAML file (--config) < environment (HM9K_*) < flags.
// Validated once at start; every problem is reported with its path, all at once.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { Value } from '@sinclair/typebox/value';
import { Type, type Static, Str, Int, Bool, Duration, StringEnum, DURATION_PATTERN } from './api/schema.js';
import { nodesGlobalCeilingProblem } from './nodes/config.js';

export const ProcessConfigSchema = Type.Object(
  {
    namespace: Str("hm9k's own namespace: Secrets, Leases and Events live here.", { default: 'hm9k-system', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }),
    podName: Str('This replica\'s identity (Lease holder, Event reportingInstance).', { default: '' }),
    kubeconfig: Str('Path of a kubeconfig; empty = in-cluster, then ~/.kube/config.', { default: '' }),
    logLevel: StringEnum(['trace', 'debug', 'info', 'warn', 'error'] as const, { description: 'Log level.', default: 'info' }),
    metricsPort: Int('Prometheus /metrics port.', { minimum: 0, maximum: 65535, default: 8080 }),
    healthPort: Int('/healthz and /readyz port.', { minimum: 0, maximum: 65535, default: 8081 }),
    bindAddress: Str('Address the metrics and health servers listen on.', { default: '0.0.0.0' }),
    apps: Type.Object(
      {
        enabled: Bool("Run the app half (HM9000's job).", false),
        nats: Type.Object(
          {
            servers: Type.Array(Str('NATS URL.', { pattern: '^(nats|tls)://' }), { default: ['nats://127.0.0.1:4222'], minItems: 1, description: 'NATS servers of the CF foundation.' }),
            user: Type.Optional(Str('NATS user.')),
            password: Type.Optional(Str('NATS password (set through HM9K_APPS__NATS__PASSWORD from a Secret).')),
            token: Type.Optional(Str('NATS token.')),
          },
          { default: {}, additionalProperties: false },
        ),
        cc: Type.Object(
          {
            url: Str('Cloud Controller base URL.', { default: '', pattern: '^$|^https?://' }),
            internalUser: Str("User of CC's internal API (/internal/dea/hm9000).", { default: '' }),
            internalPassword: Str('Its password (HM9K_APPS__CC__INTERNAL_PASSWORD).', { default: '' }),
            bulkUser: Str("User of CC's bulk API.", { default: '' }),
            bulkPassword: Str('Its password (HM9K_APPS__CC__BULK_PASSWORD).', { default: '' }),
          },
          { default: {}, additionalProperties: false },
        ),
        sendVia: StringEnum(['http', 'nats'] as const, { default: 'http', description: 'Send start/stop to CC over HTTP or NATS (hm9000.start/stop).' }),
        store: Type.Object(
          {
            kind: StringEnum(['memory', 'etcd'] as const, { default: 'memory', description: 'Actual-state store.' }),
            endpoints: Type.Array(Str('etcd URL.', { pattern: '^https?://' }), { default: [], description: 'etcd endpoints (kind etcd).' }),
            prefix: Str('Key prefix in etcd.', { default: '/hm9k/' }),
          },
          { default: {}, additionalProperties: false },
        ),
        api: Type.Object(
          {
            port: Int('Port of /bulk_app_state (and /dea/heartbeat).', { minimum: 0, maximum: 65535, default: 5155 }),
            host: Str('Listen address.', { default: '0.0.0.0' }),
            user: Str('Basic auth user CC uses for /bulk_app_state.', { default: '' }),
            password: Str('Its password (HM9K_APPS__API__PASSWORD).', { default: '' }),
            heartbeatEndpoint: Bool('Accept POST /dea/heartbeat (DEAs that cannot reach NATS; re-published on NATS). Off by default: NATS dea.heartbeat is the intake.', false),
            heartbeatAuth: Bool('Require basic auth on POST /dea/heartbeat (HM9000 had none: anyone reaching the port could forge a heartbeat). Turning it off is allowed only with host on loopback.', true),
            heartbeatUser: Str('Basic auth user DEAs use for /dea/heartbeat (empty: the API user).', { default: '' }),
            heartbeatPassword: Str('Its password (HM9K_APPS__API__HEARTBEAT_PASSWORD; empty: the API password).', { default: '' }),
          },
          { default: {}, additionalProperties: false },
        ),
        desiredAppNamespace: Str('Namespace of DesiredApp objects (default: namespace).', { default: '' }),
        policyName: Str('AppHealthPolicy to follow. Empty: the only one there is (none: the defaults); with two or more and none named the app half follows none, acts on nothing and is not ready.', { default: '' }),
      },
      { default: {}, additionalProperties: false, description: 'The app half.' },
    ),
    nodes: Type.Object(
      {
        enabled: Bool('Run the node half (compute-node HA).', false),
        cloudsSecret: Str('Secret with key clouds.yaml (in namespace).', { default: 'openstack-clouds' }),
        cloudName: Str('Cloud in clouds.yaml.', { default: 'openstack' }),
        globalMaxUnhealthy: Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^[0-9]+%$' })], { default: '50%', description: 'Never fence above this many unhealthy nodes across all policies.' }),
        maxConcurrentRemediations: Int('Nodes recovered or fenced at once across all policies.', { minimum: 1, default: 3 }),
        maxParallelIpmi: Int('Concurrent ipmitool calls.', { minimum: 1, default: 8 }),
        maxParallelSsh: Int('Concurrent SSH sessions.', { minimum: 1, default: 8 }),
        consulWait: Duration('Consul blocking query wait.', '5m'),
        consulMinLoop: Duration('Minimum spacing of Consul query loops.', '1s'),
        powerPollInterval: Duration('BMC power state read period.', '60s'),
        novaPollInterval: Duration('Nova service read period.', '10s'),
        httpTimeout: Duration('Timeout of one Nova/Keystone request.', '30s'),
        maxResponseBytes: Int('Largest Nova, Keystone or Consul answer body accepted, in bytes; a larger one is refused (hm9k_nodes_api_rejected_total).', { minimum: 65_536, default: 16 * 1024 * 1024 }),
        maxPages: Int('Most pages followed in one paged Nova list (each at most Nova\'s max_limit items); more is refused, the list is not used.', { minimum: 1, default: 1000 }),
        tokenRefreshPercent: Int('Keystone tokens are refreshed when this percentage of their lifetime (issued_at to expires_at) has passed.', { minimum: 10, maximum: 95, default: 80 }),
        tokenRetryInterval: Duration('A token fetched after a 401 is not dropped by another 401, and a failed refresh is not retried (the valid token is kept), for this long.', '5s'),
        resync: Duration('Healthy nodes are re-evaluated at least this often.', '30s'),
        emailRetryInitial: Duration('A notification email that failed is sent again after this, the wait doubling with each failure up to emailRetryMax.', '5s'),
        emailRetryMax: Duration('Longest wait between two attempts of a failed notification email.', '5m'),
        emailRetries: Int('Attempts of one notification email before it is given up (logged at error, hm9k_nodes_notifications_total{result="gave_up"}).', { minimum: 1, default: 12 }),
        ipmitoolPath: Str('Path of ipmitool.', { default: 'ipmitool' }),
        workers: Int('Node reconcile workers.', { minimum: 1, default: 4 }),
        serverCountInterval: Duration('Period of the fleet-wide server count in Nova (ComputeNode status.servers).', '60s'),
        smtpDefault: Type.Optional(
          Type.Object(
            {
              smtpHost: Str('SMTP server host.', { pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$' }),
              smtpPort: Int('SMTP port.', { minimum: 1, maximum: 65535, default: 587 }),
              secure: Bool('Implicit TLS (port 465).', false),
              from: Str('Sender address.', { pattern: '^[^@\\s]+@[^@\\s]+$' }),
              to: Type.Array(Str('Recipient address.', { pattern: '^[^@\\s]+@[^@\\s]+$' }), { minItems: 1, maxItems: 20, description: 'Recipients.' }),
              credentialsSecret: Type.Optional(Str('Secret (in namespace) with keys username and password.', { pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', maxLength: 253 })),
            },
            { additionalProperties: false, description: 'Email for node notifications when a FencePolicy names none.' },
          ),
        ),
      },
      { default: {}, additionalProperties: false, description: 'The node half.' },
    ),
    leaderElection: Type.Object(
      {
        enabled: Bool('Elect one leader per half through a Lease.', true),
        leaseName: Str('Lease name; default hm9k-apps or hm9k-nodes.', { default: '' }),
        leaseDuration: Duration('Lease duration (client-go: 15s).', '15s'),
        renewDeadline: Duration('A leader that cannot renew within this exits (client-go: 10s).', '10s'),
        retryPeriod: Duration('Time between acquire/renew attempts (client-go: 2s).', '2s'),
      },
      { default: {}, description: 'Leader election.' },
    ),
    watch: Type.Object(
      {
        timeout: Duration('Server-side watch timeout before a re-watch.', '5m'),
        watchdog: Duration('Re-watch when no event or bookmark arrived for this long.', '10m'),
        resync: Duration('Periodic full relist, a safety net. Each is a LIST of every object (21 pages at 10,000 DesiredApps), so it is rare: watches resume from their last version and relist only on 410 Gone, as client-go does.', '24h'),
      },
      { default: {}, description: 'List/watch loop.' },
    ),
  },
  { additionalProperties: false },
);
export type ProcessConfig = Static<typeof ProcessConfigSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

type Json = Record<string, unknown>;

/** Configuration keys whose values are credentials: named in errors, never shown. */
const SECRET_KEY = /(password|token|secret|key)$/i;

/**
 * Sets `a.b.c` in obj, creating objects on the way. The value is read as the schema's type at that
 * path: a string field keeps the text as given (a password "12345" or "{abc" stays a string), a
 * number or boolean field is parsed, a list or object field is read as JSON.
 */
export function setPath(obj: Json, path: string, raw: string): void {
  const parts = path.split('.').filter(Boolean);
  let cur: Json = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = {};
    cur = cur[p] as Json;
  }
  cur[parts[parts.length - 1]!] = coerce(raw, schemaAt(parts));
}

/** The schema of a configuration path, or undefined when the path is not a known key. */
function schemaAt(parts: string[]): SchemaLike | undefined {
  let s: SchemaLike | undefined = ProcessConfigSchema as unknown as SchemaLike;
  for (const p of parts) s = s?.properties?.[p] as SchemaLike | undefined;
  return s;
}

function coerce(raw: string, schema: SchemaLike | undefined): unknown {
  if (schema?.type === 'string') return raw;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  if (/^-?[0-9]+$/.test(raw)) return Number(raw);
  if (/^[[{]/.test(raw)) {
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  }
  return raw;
}

/** HM9K_LOG_LEVEL -> logLevel; HM9K_APPS__CC__URL -> apps.cc.url (double underscore nests). */
export function envToPaths(env: NodeJS.ProcessEnv): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith('HM9K_') || v === undefined || k === 'HM9K_CONFIG') continue;
    const path = k
      .slice(5)
      .split('__')
      .map((seg) => seg.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()))
      .join('.');
    // Only names whose first segment is a configuration key: HM9K_CACHE, HM9K_KUBECONFIG and the
    // like belong to the scripts and tests, not to `hm9k run`.
    if (!(path.split('.')[0]! in ProcessConfigSchema.properties)) continue;
    out.push([path, v]);
  }
  return out;
}

export function deepMerge(a: Json, b: Json): Json {
  const out: Json = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev) ? deepMerge(prev as Json, v as Json) : v;
  }
  return out;
}

export interface ConfigSources {
  file?: string;
  env?: NodeJS.ProcessEnv;
  sets?: [string, string][];
  overrides?: Json;
}

export function loadConfig(src: ConfigSources): ProcessConfig {
  let merged: Json = {};
  const problems: string[] = [];
  const file = src.file ?? src.env?.HM9K_CONFIG;
  if (file) {
    try {
      const doc: unknown = parseYaml(readFileSync(file, 'utf8'));
      if (doc !== null && doc !== undefined) {
        if (typeof doc !== 'object' || Array.isArray(doc)) problems.push(`${file}: the configuration file must hold a YAML mapping`);
        else merged = doc as Json;
      }
    } catch (err) {
      problems.push(`${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const layer: Json = {};
  for (const [p, v] of [...envToPaths(src.env ?? {}), ...(src.sets ?? [])]) setPath(layer, p, v);
  merged = deepMerge(deepMerge(merged, layer), src.overrides ?? {});
  const withDefaults = Value.Default(ProcessConfigSchema, Value.Clone(merged)) as Json;
  for (const e of Value.Errors(ProcessConfigSchema, withDefaults)) {
    const where = e.path ? e.path.slice(1).replace(/\//g, '.') : '(root)';
    // Never echo a secret's value, even a wrongly typed one.
    const shown = e.value !== undefined && typeof e.value !== 'object' && !SECRET_KEY.test(where);
    problems.push(`${where}: ${explain(e.schema as SchemaLike, e.message, e.path)}${shown ? ` (got ${JSON.stringify(e.value)})` : ''}`);
  }
  if (!problems.length) problems.push(...crossChecks(withDefaults as ProcessConfig));
  if (problems.length) throw new ConfigError([...new Set(problems)]);
  return withDefaults as ProcessConfig;
}

interface SchemaLike {
  type?: string;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  properties?: Record<string, unknown>;
  anyOf?: SchemaLike[];
}

/** A schema error in words a person can act on: the allowed values or the expected form. */
export function explain(schema: SchemaLike, fallback: string, path: string): string {
  if (schema.enum) return `must be one of: ${schema.enum.join(', ')}`;
  if (schema.pattern === DURATION_PATTERN) return 'must be a duration such as 5m, 30s or 1h30m (a number and a unit: ms, s, m, h)';
  if (schema.properties && /^Unexpected property/.test(fallback)) {
    const key = path.split('/').pop();
    return `"${key}" is not a configuration key here; known keys: ${Object.keys(schema.properties).join(', ')}`;
  }
  if (schema.anyOf?.some((s) => s.type === 'integer') && schema.anyOf.some((s) => s.pattern === '^[0-9]+%$')) return 'must be a count (an integer >= 0) or a percentage such as "50%"';
  if (schema.pattern) return `must match ${schema.pattern}`;
  const range = [schema.minimum !== undefined ? `>= ${schema.minimum}` : '', schema.maximum !== undefined ? `<= ${schema.maximum}` : ''].filter(Boolean).join(' and ');
  if (schema.type === 'integer') return `must be an integer${range ? ` ${range}` : ''}`;
  if (schema.type === 'number') return `must be a number${range ? ` ${range}` : ''}`;
  if (schema.type === 'boolean') return 'must be true or false';
  if (schema.type === 'array' && schema.minItems) return `must list at least ${schema.minItems}`;
  return fallback;
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || /^127\./.test(host);

/** What the schema cannot say: fields required only when a half is enabled. */
function crossChecks(c: ProcessConfig): string[] {
  const p: string[] = [];
  if (c.apps.enabled) {
    if (!c.apps.cc.url) p.push('apps.cc.url: required when the app half runs (HM9K_APPS__CC__URL)');
    if (!c.apps.cc.bulkUser || !c.apps.cc.bulkPassword) p.push('apps.cc.bulkUser/bulkPassword: required to fetch desired state from /bulk/apps');
    if (c.apps.sendVia === 'http' && (!c.apps.cc.internalUser || !c.apps.cc.internalPassword)) p.push('apps.cc.internalUser/internalPassword: required to send start/stop over HTTP (or set apps.sendVia=nats)');
    if (!c.apps.api.user || !c.apps.api.password) p.push('apps.api.user/password: required for /bulk_app_state basic auth');
    if (c.apps.api.heartbeatEndpoint && !c.apps.api.heartbeatAuth && !isLoopback(c.apps.api.host)) {
      p.push(`apps.api.heartbeatAuth: false is allowed only with apps.api.host on loopback (now ${c.apps.api.host}): without it anyone who reaches the port can forge DEA heartbeats`);
    }
    if (c.apps.store.kind === 'etcd' && c.apps.store.endpoints.length === 0) p.push('apps.store.endpoints: at least one etcd endpoint is required with store.kind=etcd');
  }
  // The same rule as a FencePolicy's maxUnhealthy (src/nodes/config.ts): above 100% the ceiling could never hold.
  const g = nodesGlobalCeilingProblem(c.nodes.globalMaxUnhealthy);
  if (g) p.push(g);
  return p;
}
