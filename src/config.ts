// Process configuration for `hm9k run`: defaults < YAML file (--config) < environment (HM9K_*) < flags.
// Validated once at start; every problem is reported with its path, all at once.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { Value } from '@sinclair/typebox/value';
import { Type, type Static, Str, Int, Bool, Duration, StringEnum } from './api/schema.js';

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
      { enabled: Bool('Run the app half (HM9000\'s job).', false) },
      { additionalProperties: true, default: {}, description: 'The app half; see README Configuration.' },
    ),
    nodes: Type.Object(
      { enabled: Bool('Run the node half (compute-node HA).', false) },
      { additionalProperties: true, default: {}, description: 'The node half; see README Configuration.' },
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
        resync: Duration('Periodic relist, a safety net.', '10m'),
      },
      { default: {}, description: 'List/watch loop.' },
    ),
  },
  { additionalProperties: false },
);
export type ProcessConfig = Static<typeof ProcessConfigSchema> & {
  apps: { enabled: boolean; [k: string]: unknown };
  nodes: { enabled: boolean; [k: string]: unknown };
};

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

type Json = Record<string, unknown>;

/** Sets `a.b.c` in obj, creating objects on the way. Values are parsed as JSON when they look like it. */
export function setPath(obj: Json, path: string, raw: string): void {
  const parts = path.split('.').filter(Boolean);
  let cur: Json = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = {};
    cur = cur[p] as Json;
  }
  cur[parts[parts.length - 1]!] = coerce(raw);
}

function coerce(raw: string): unknown {
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
    problems.push(`${where}: ${e.message}${e.value !== undefined && typeof e.value !== 'object' ? ` (got ${JSON.stringify(e.value)})` : ''}`);
  }
  if (problems.length) throw new ConfigError([...new Set(problems)]);
  return withDefaults as ProcessConfig;
}
