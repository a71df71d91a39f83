// Configuration of the app half: the AppHealthPolicy spec resolved into milliseconds (with HM9000's
// production defaults), and the process configuration (connections and credentials).
import { parseDuration, type AppHealthPolicySpec, type CrashBackoff } from '../api/index.js';

export interface CrashBackoffConfig {
  crashesBeforeBackoff: number;
  startingBackoffMs: number;
  maxBackoffMs: number;
  /** 0 = never give up (HM9000). */
  giveUpAfter: number;
  /** Uniform jitter within +-this on backed-off delays (Ruby HM's delay_time_noise); 0 = none (HM9000). */
  delayNoiseMs: number;
}

export interface AppsConfig {
  paused: boolean;
  /** The Cloud Controller partition acted on (Ruby HM / dea_ng cc_partition). */
  ccPartition: string;
  dryRun: boolean;
  heartbeatPeriodMs: number;
  presenceTtlMs: number;
  actualFreshnessTtlMs: number;
  desiredFreshnessTtlMs: number;
  gracePeriodMs: number;
  fetchIntervalMs: number;
  fetchTimeoutMs: number;
  analyzeIntervalMs: number;
  sendIntervalMs: number;
  flushIntervalMs: number;
  keepAliveMs: number;
  bulkBatchSize: number;
  crashBackoff: CrashBackoffConfig;
  messageLimit: number;
  /** Stops sent per run at most (hm9k; HM9000 had no bound). */
  stopLimit: number;
  guards: { maxShrinkPercent: number; maxStopPercent: number; stopWindowMs: number; minStopsForHold: number; maxInstancesPerApp: number };
  /** DesiredApp projection writes (hm9k): bounded-parallel and rate-limited. */
  projection: { maxInFlight: number; writesPerSecond: number };
}

/** HM9000's production values (and src/api/apps.ts defaults). */
export const DEFAULTS = {
  ccPartition: 'default',
  heartbeatPeriod: '10s',
  presenceTTL: '30s',
  actualFreshnessTTL: '30s',
  desiredFreshnessTTL: '120s',
  gracePeriod: '30s',
  fetchInterval: '60s',
  fetchTimeout: '30s',
  analyzeInterval: '10s',
  sendInterval: '10s',
  flushInterval: '1s',
  keepAlive: '30s',
  bulkBatchSize: 5000,
  crashesBeforeBackoff: 3,
  startingBackoff: '30s',
  maxBackoff: '960s',
  giveUpAfter: 0,
  delayNoise: '0s',
  messageLimit: 60,
  stopLimit: 60,
  maxShrinkPercent: 30,
  maxStopPercent: 20,
  stopWindow: '5m',
  minStopsForHold: 5,
  maxInstancesPerApp: 100_000,
  projectionMaxInFlight: 10,
  projectionWritesPerSecond: 100,
} as const;

export function resolveCrashBackoff(cb: CrashBackoff | undefined, base?: CrashBackoffConfig): CrashBackoffConfig {
  return {
    crashesBeforeBackoff: cb?.crashesBeforeBackoff ?? base?.crashesBeforeBackoff ?? DEFAULTS.crashesBeforeBackoff,
    startingBackoffMs: cb?.startingBackoff ? parseDuration(cb.startingBackoff) : (base?.startingBackoffMs ?? parseDuration(DEFAULTS.startingBackoff)),
    maxBackoffMs: cb?.maxBackoff ? parseDuration(cb.maxBackoff) : (base?.maxBackoffMs ?? parseDuration(DEFAULTS.maxBackoff)),
    giveUpAfter: cb?.giveUpAfter ?? base?.giveUpAfter ?? DEFAULTS.giveUpAfter,
    delayNoiseMs: cb?.delayNoise ? parseDuration(cb.delayNoise) : (base?.delayNoiseMs ?? parseDuration(DEFAULTS.delayNoise)),
  };
}

export function resolveAppsConfig(spec?: AppHealthPolicySpec): AppsConfig {
  const t = spec?.timings ?? {};
  const d = (v: string | undefined, def: string) => parseDuration(v ?? def);
  return {
    paused: spec?.paused ?? false,
    ccPartition: spec?.ccPartition ?? DEFAULTS.ccPartition,
    dryRun: spec?.dryRun ?? false,
    heartbeatPeriodMs: d(t.heartbeatPeriod, DEFAULTS.heartbeatPeriod),
    presenceTtlMs: d(t.presenceTTL, DEFAULTS.presenceTTL),
    actualFreshnessTtlMs: d(t.actualFreshnessTTL, DEFAULTS.actualFreshnessTTL),
    desiredFreshnessTtlMs: d(t.desiredFreshnessTTL, DEFAULTS.desiredFreshnessTTL),
    gracePeriodMs: d(t.gracePeriod, DEFAULTS.gracePeriod),
    fetchIntervalMs: d(t.fetchInterval, DEFAULTS.fetchInterval),
    fetchTimeoutMs: d(t.fetchTimeout, DEFAULTS.fetchTimeout),
    analyzeIntervalMs: d(t.analyzeInterval, DEFAULTS.analyzeInterval),
    sendIntervalMs: d(t.sendInterval, DEFAULTS.sendInterval),
    flushIntervalMs: d(t.flushInterval, DEFAULTS.flushInterval),
    keepAliveMs: d(t.keepAlive, DEFAULTS.keepAlive),
    bulkBatchSize: spec?.bulkBatchSize ?? DEFAULTS.bulkBatchSize,
    crashBackoff: resolveCrashBackoff(spec?.crashBackoff),
    messageLimit: spec?.sender?.messageLimit ?? DEFAULTS.messageLimit,
    stopLimit: spec?.sender?.stopLimit ?? DEFAULTS.stopLimit,
    guards: {
      maxShrinkPercent: spec?.guards?.maxShrinkPercent ?? DEFAULTS.maxShrinkPercent,
      maxStopPercent: spec?.guards?.maxStopPercent ?? DEFAULTS.maxStopPercent,
      stopWindowMs: d(spec?.guards?.stopWindow, DEFAULTS.stopWindow),
      minStopsForHold: spec?.guards?.minStopsForHold ?? DEFAULTS.minStopsForHold,
      maxInstancesPerApp: spec?.guards?.maxInstancesPerApp ?? DEFAULTS.maxInstancesPerApp,
    },
    projection: {
      maxInFlight: spec?.projection?.maxInFlight ?? DEFAULTS.projectionMaxInFlight,
      writesPerSecond: spec?.projection?.writesPerSecond ?? DEFAULTS.projectionWritesPerSecond,
    },
  };
}

/** Every period divided by `factor` (tests run the world at 1/10 timings or faster). */
export function scaleTimings(c: AppsConfig, factor: number): AppsConfig {
  const s = (ms: number) => Math.max(1, Math.round(ms / factor));
  return {
    ...c,
    heartbeatPeriodMs: s(c.heartbeatPeriodMs),
    presenceTtlMs: s(c.presenceTtlMs),
    actualFreshnessTtlMs: s(c.actualFreshnessTtlMs),
    desiredFreshnessTtlMs: s(c.desiredFreshnessTtlMs),
    gracePeriodMs: s(c.gracePeriodMs),
    fetchIntervalMs: s(c.fetchIntervalMs),
    fetchTimeoutMs: s(c.fetchTimeoutMs),
    analyzeIntervalMs: s(c.analyzeIntervalMs),
    sendIntervalMs: s(c.sendIntervalMs),
    flushIntervalMs: s(c.flushIntervalMs),
    keepAliveMs: s(c.keepAliveMs),
    crashBackoff: { ...c.crashBackoff, startingBackoffMs: s(c.crashBackoff.startingBackoffMs), maxBackoffMs: s(c.crashBackoff.maxBackoffMs), delayNoiseMs: c.crashBackoff.delayNoiseMs > 0 ? s(c.crashBackoff.delayNoiseMs) : 0 },
    guards: { ...c.guards, stopWindowMs: s(c.guards.stopWindowMs) },
  };
}

/** Process configuration: connections and credentials (Helm values and Secrets), never resource fields. */
export interface AppsProcessConfig {
  nats: { servers: string[]; user?: string; pass?: string; token?: string };
  cc: {
    url: string;
    /** Basic auth for /internal/dea/hm9000/{start,stop} (CC's internal API user). */
    internalUser: string;
    internalPassword: string;
    /** Basic auth for /bulk/apps (CC's bulk API user). */
    bulkUser: string;
    bulkPassword: string;
  };
  sendVia: 'http' | 'nats';
  store: { kind: 'memory' } | { kind: 'etcd'; endpoints: string[]; prefix?: string };
  api: {
    /** 5155 in production; 0 picks a free port (tests). */
    port: number;
    host?: string;
    user: string;
    password: string;
    /** Serve POST /dea/heartbeat (re-published on NATS). Default false: NATS is the intake. */
    heartbeatEndpoint?: boolean;
    /** Require basic auth on POST /dea/heartbeat. Default true (HM9000 had none: forged heartbeats). */
    heartbeatAuth?: boolean;
    /** Credentials DEAs use for /dea/heartbeat; default: user and password above. */
    heartbeatUser?: string;
    heartbeatPassword?: string;
  };
  /** Namespace of the DesiredApp objects the fetcher manages. */
  desiredAppNamespace: string;
  /** Project DesiredApp objects and write status through the runtime (default true). */
  projectDesiredApps?: boolean;
  /** Name of the AppHealthPolicy to follow; default: the only one (see src/apps/policy.ts). */
  policyName?: string;
  /** Spec used when no AppHealthPolicy object exists (defaults otherwise). */
  defaultSpec?: AppHealthPolicySpec;
  /** Overrides the resolved config (tests use scaleTimings). */
  configOverride?: (c: AppsConfig) => AppsConfig;
}
