// Resolved FencePolicy (defaults applied, durations in ms) and the node half's process configuration.
import { parseDuration, type FencePolicySpec, type NetworkAction, type NetworkName, NETWORKS } from '../api/index.js';
import { resolveHardware, type ResolvedHardware } from './hardware/rules.js';

export interface ResolvedObserver {
  address: string;
  tokenSecret?: string;
  insecureSkipVerify: boolean;
  caSecret?: string;
}

export interface ResolvedNetworkRule {
  observers: ResolvedObserver[];
  action: NetworkAction;
}

export interface ResolvedPolicy {
  networks: Partial<Record<NetworkName, ResolvedNetworkRule>>;
  detection: {
    intervalMs: number;
    failureThreshold: number;
    recoveryGracePeriodMs: number;
    healthyDelayMs: number;
    novaNodeSideCheck?: string;
    /** SSH command checking nova-compute on the node (only when novaNodeSideCheck is empty). */
    novaNodeSideCommand?: string;
    novaNodeSideIntervalMs: number;
    corroboration: { sshCommand?: string; timeoutMs: number; requireSsh: boolean };
  };
  recovery: {
    commands: { storage?: string; management?: string; tenant?: string; novaCompute?: string };
    attempts: number;
    timeoutMs: number;
    settleTimeMs: number;
    powerOn: boolean;
  };
  fencing: { powerOffTimeoutMs: number; powerWaitMs: number; pollIntervalMs: number; ipmiTimeoutMs: number; forceDownService: boolean };
  evacuation: { enabled: boolean; targetHost?: string; concurrency: number; perServerTimeoutMs: number; metadataKey?: string; microversion: string; resetStuckServers: boolean };
  safety: { maxUnhealthy: number | string; maxConcurrentRemediations: number; paused: boolean; dryRun: boolean };
  hardware: ResolvedHardware;
  drain: { concurrency: number; perServerTimeoutMs: number; targetHosts: string[]; microversion: string; whenEmpty: 'LeaveDisabled' | 'PowerOff' };
  notifications: {
    email?: { smtpHost: string; smtpPort: number; secure: boolean; from: string; to: string[]; credentialsSecret?: string };
    webhook?: { url: string };
    minIntervalMs: number;
  };
}

export const DEFAULT_ACTIONS: Record<NetworkName, NetworkAction> = { storage: 'RecoverThenFence', management: 'Notify', tenant: 'Notify' };

export const DEFAULT_NODE_SIDE_COMMAND = 'systemctl is-active --quiet nova-compute';

const dur = (v: string | undefined, def: string): number => parseDuration(v ?? def);

/** Applies every default of the FencePolicy schema; durations become milliseconds. Throws on invalid durations. */
export function resolvePolicy(spec: FencePolicySpec): ResolvedPolicy {
  const networks: ResolvedPolicy['networks'] = {};
  for (const n of NETWORKS) {
    const rule = spec.networks?.[n];
    if (!rule) continue;
    networks[n] = {
      observers: rule.consul.map((o) => ({
        address: o.address.replace(/\/$/, ''),
        ...(o.tokenSecret ? { tokenSecret: o.tokenSecret } : {}),
        insecureSkipVerify: o.insecureSkipVerify ?? false,
        ...(o.caSecret ? { caSecret: o.caSecret } : {}),
      })),
      action: rule.action ?? DEFAULT_ACTIONS[n],
    };
  }
  const d = spec.detection ?? {};
  const r = spec.recovery ?? {};
  const f = spec.fencing ?? {};
  const e = spec.evacuation ?? {};
  const s = spec.safety ?? {};
  const no = spec.notifications ?? {};
  const cmds = r.commands ?? {};
  return {
    networks,
    detection: {
      intervalMs: dur(d.interval, '10s'),
      failureThreshold: d.failureThreshold ?? 3,
      recoveryGracePeriodMs: dur(d.recoveryGracePeriod, '60s'),
      healthyDelayMs: dur(d.healthyDelay, '30s'),
      ...(d.novaNodeSideCheck ? { novaNodeSideCheck: d.novaNodeSideCheck } : {}),
      ...(!d.novaNodeSideCheck && (d.novaNodeSideCommand ?? DEFAULT_NODE_SIDE_COMMAND) ? { novaNodeSideCommand: d.novaNodeSideCommand ?? DEFAULT_NODE_SIDE_COMMAND } : {}),
      novaNodeSideIntervalMs: dur(d.novaNodeSideInterval, '60s'),
      corroboration: {
        ...(d.corroboration?.sshCommand ? { sshCommand: d.corroboration.sshCommand } : {}),
        timeoutMs: dur(d.corroboration?.timeout, '20s'),
        requireSsh: d.corroboration?.requireSsh ?? false,
      },
    },
    recovery: {
      commands: {
        storage: cmds.storage ?? 'systemctl restart storage-network',
        ...(cmds.management ? { management: cmds.management } : {}),
        ...(cmds.tenant ? { tenant: cmds.tenant } : {}),
        novaCompute: cmds.novaCompute ?? 'systemctl restart nova-compute',
      },
      attempts: r.attempts ?? 2,
      timeoutMs: dur(r.timeout, '60s'),
      settleTimeMs: dur(r.settleTime, '30s'),
      powerOn: r.powerOn ?? true,
    },
    fencing: {
      powerOffTimeoutMs: dur(f.powerOffTimeout, '20s'),
      powerWaitMs: dur(f.powerWait, '2s'),
      pollIntervalMs: dur(f.pollInterval, '1s'),
      ipmiTimeoutMs: dur(f.ipmiTimeout, '15s'),
      forceDownService: f.forceDownService ?? true,
    },
    evacuation: {
      enabled: e.enabled ?? true,
      ...(e.targetHost ? { targetHost: e.targetHost } : {}),
      concurrency: e.concurrency ?? 3,
      perServerTimeoutMs: dur(e.perServerTimeout, '5m'),
      ...(e.metadataKey ? { metadataKey: e.metadataKey } : {}),
      microversion: e.microversion ?? '2.94',
      resetStuckServers: e.resetStuckServers ?? false,
    },
    safety: {
      maxUnhealthy: s.maxUnhealthy ?? '30%',
      maxConcurrentRemediations: s.maxConcurrentRemediations ?? 1,
      paused: s.paused ?? false,
      dryRun: s.dryRun ?? false,
    },
    hardware: resolveHardware(spec.hardware),
    drain: {
      concurrency: spec.drain?.concurrency ?? 2,
      perServerTimeoutMs: dur(spec.drain?.perServerTimeout, '10m'),
      targetHosts: [...(spec.drain?.targetHosts ?? [])],
      microversion: spec.drain?.microversion ?? '2.53',
      whenEmpty: spec.drain?.whenEmpty ?? 'LeaveDisabled',
    },
    notifications: {
      ...(no.email
        ? {
            email: {
              smtpHost: no.email.smtpHost,
              smtpPort: no.email.smtpPort ?? 587,
              secure: no.email.secure ?? false,
              from: no.email.from,
              to: [...no.email.to],
              ...(no.email.credentialsSecret ? { credentialsSecret: no.email.credentialsSecret } : {}),
            },
          }
        : {}),
      ...(no.webhook ? { webhook: { url: no.webhook.url } } : {}),
      minIntervalMs: dur(no.minInterval, '15m'),
    },
  };
}

/** Validation beyond the schema; returns human-readable problems (empty when valid). */
export function validatePolicy(spec: FencePolicySpec): string[] {
  const problems: string[] = [];
  let p: ResolvedPolicy;
  try {
    p = resolvePolicy(spec);
  } catch (err) {
    return [(err as Error).message];
  }
  if (Object.keys(p.networks).length === 0) problems.push('networks must name at least one of management, storage, tenant');
  try {
    maxUnhealthyAllowed(p.safety.maxUnhealthy, 10);
  } catch (err) {
    problems.push((err as Error).message);
  }
  const mv = parseMicroversion(p.evacuation.microversion);
  if (!mv || compareMicroversion(mv, [2, 53]) < 0) problems.push(`evacuation.microversion ${p.evacuation.microversion} is below 2.53, the oldest hm9k speaks`);
  const dmv = parseMicroversion(p.drain.microversion);
  if (!dmv || compareMicroversion(dmv, [2, 53]) < 0) problems.push(`drain.microversion ${p.drain.microversion} is below 2.53, the oldest hm9k speaks`);
  if (p.fencing.pollIntervalMs <= 0) problems.push('fencing.pollInterval must be positive');
  if (p.fencing.powerOffTimeoutMs < p.fencing.powerWaitMs) problems.push('fencing.powerOffTimeout must be at least fencing.powerWait');
  if (p.detection.intervalMs <= 0) problems.push('detection.interval must be positive');
  if (p.detection.novaNodeSideCommand && p.detection.novaNodeSideIntervalMs < 1000) problems.push('detection.novaNodeSideInterval must be at least 1s (one SSH session per node per period)');
  for (const [n, rule] of Object.entries(p.networks)) {
    if (rule && rule.action !== 'Notify' && !p.recovery.commands[n as NetworkName]) {
      problems.push(`networks.${n}.action ${rule.action} needs recovery.commands.${n}`);
    }
  }
  return problems;
}

/**
 * The most unhealthy nodes allowed before a storm is declared. Percentages round down, never in
 * favour of fencing: 30% of 5 nodes is 1.
 */
export function maxUnhealthyAllowed(value: number | string, total: number): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) throw new Error(`maxUnhealthy ${value} must be a non-negative integer`);
    return value;
  }
  const m = /^([0-9]+)(%?)$/.exec(value);
  if (!m) throw new Error(`maxUnhealthy ${JSON.stringify(value)} must be an integer or a percentage such as "30%"`);
  const n = Number(m[1]);
  if (m[2] !== '%') return n;
  if (n > 100) throw new Error(`maxUnhealthy ${value} is above 100%`);
  return Math.floor((total * n) / 100);
}

/**
 * Why the process-wide ceiling `nodes.globalMaxUnhealthy` is invalid, or undefined when it is valid.
 * The same rule as a FencePolicy's maxUnhealthy: a percentage above 100% is refused at start, not
 * clamped (it would say "never a storm", which nobody means to configure).
 */
export function nodesGlobalCeilingProblem(value: number | string): string | undefined {
  try {
    maxUnhealthyAllowed(value, 10);
    return undefined;
  } catch (err) {
    return `nodes.globalMaxUnhealthy: ${(err as Error).message.replace(/^maxUnhealthy /, '')} (the global storm ceiling must be at most 100%)`;
  }
}

export function parseMicroversion(v: string): [number, number] | undefined {
  const m = /^([0-9]+)\.([0-9]+)$/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export function compareMicroversion(a: [number, number], b: [number, number]): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
}

/** The node half's process configuration (Helm values and flags, not resource fields). */
export interface NodesProcessConfig {
  /** hm9k's namespace: every Secret is looked up here only. */
  namespace: string;
  /** Secret holding clouds.yaml (key `clouds.yaml`) and the cloud to use in it. */
  cloudsSecret: string;
  cloudName: string;
  /** Global ceiling of unhealthy nodes across all policies (int or percent). */
  globalMaxUnhealthy: number | string;
  /** Concurrency limits. */
  maxParallelIpmi: number;
  maxParallelSsh: number;
  /** Global cap on nodes being recovered/fenced at once, across policies. */
  maxConcurrentRemediations: number;
  /** Consul blocking query wait and minimum spacing of loop iterations. */
  consulWaitMs: number;
  consulMinLoopMs: number;
  /** Power monitor period (BMC status read). */
  powerPollIntervalMs: number;
  /** Nova service monitor period. */
  novaPollIntervalMs: number;
  /** Period of the fleet-wide server count (status.servers): one paged servers/detail list. */
  serverCountIntervalMs: number;
  /** Path of ipmitool. */
  ipmitoolPath: string;
  /** HTTP timeout of one Nova/Keystone request. */
  httpTimeoutMs: number;
  /** Largest Nova/Keystone/Consul answer body accepted (bytes); a larger one is refused and counted. */
  maxResponseBytes: number;
  /** Most pages followed in one paged Nova list; more is refused (the list is not used) and counted. */
  maxPages: number;
  /** Keystone tokens are refreshed when this percentage of their lifetime has passed. */
  tokenRefreshPercent: number;
  /** Keystone: no second 401-driven re-authentication, and no retry of a failed refresh, within this. */
  tokenRetryIntervalMs: number;
  /** Notification email used when a policy names none. */
  smtpDefault?: { smtpHost: string; smtpPort: number; secure: boolean; from: string; to: string[]; credentialsSecret?: string };
  /** Node reconcile workers. */
  workers: number;
  /** Interval at which healthy nodes are re-evaluated even without changes. */
  resyncMs: number;
  /** A failed notification email is retried after this, doubling up to emailRetryMaxMs. */
  emailRetryInitialMs: number;
  emailRetryMaxMs: number;
  /** Attempts of one email before it is given up. */
  emailRetries: number;
}

export const DEFAULT_NODES_CONFIG: Omit<NodesProcessConfig, 'namespace' | 'cloudsSecret' | 'cloudName'> = {
  globalMaxUnhealthy: '50%',
  maxParallelIpmi: 8,
  maxParallelSsh: 8,
  maxConcurrentRemediations: 3,
  consulWaitMs: 300_000,
  consulMinLoopMs: 1000,
  powerPollIntervalMs: 60_000,
  novaPollIntervalMs: 10_000,
  serverCountIntervalMs: 60_000,
  ipmitoolPath: 'ipmitool',
  httpTimeoutMs: 30_000,
  maxResponseBytes: 16 * 1024 * 1024,
  maxPages: 1000,
  tokenRefreshPercent: 80,
  tokenRetryIntervalMs: 5000,
  workers: 4,
  resyncMs: 30_000,
  emailRetryInitialMs: 5000,
  emailRetryMaxMs: 300_000,
  emailRetries: 12,
};

/** The node half's configuration with defaults applied; throws on an invalid global storm ceiling. */
export function nodesConfig(partial: Partial<NodesProcessConfig> & Pick<NodesProcessConfig, 'namespace' | 'cloudsSecret' | 'cloudName'>): NodesProcessConfig {
  const c = { ...DEFAULT_NODES_CONFIG, ...partial };
  const problem = nodesGlobalCeilingProblem(c.globalMaxUnhealthy);
  if (problem) throw new Error(problem);
  return c;
}
