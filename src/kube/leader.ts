// Lease leader election with client-go semantics (coordination.k8s.io/v1). The decision is a pure
// function of (lease record, what we observed and when, now, identity); the elector is its shell:
// take over only after the holder's record stayed unchanged for a full lease duration on our clock;
// write with resourceVersion (409 = lost the race); a leader that cannot renew within renewDeadline
// stops leading at once and calls onLost (default: process.exit(1), as controller-runtime);
// release on graceful shutdown.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from './client.js';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { LeaderElection } from './contract.js';
import { errorMessage, gauge, sleep, statusCodeOf, withTimeout } from './util.js';

export interface LeaderElectionConfig {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** Timeout of one API request (default renewDeadline / 2). */
  requestTimeoutMs?: number;
}

export const DEFAULT_LEADER_CONFIG: LeaderElectionConfig = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };
const JITTER = 1.2;

export function validateLeaderConfig(c: LeaderElectionConfig): void {
  if (!(c.leaseDurationMs > c.renewDeadlineMs)) throw new Error(`leader election: leaseDuration (${c.leaseDurationMs} ms) must be greater than renewDeadline (${c.renewDeadlineMs} ms)`);
  if (!(c.renewDeadlineMs > JITTER * c.retryPeriodMs)) throw new Error(`leader election: renewDeadline (${c.renewDeadlineMs} ms) must be greater than ${JITTER} x retryPeriod (${c.retryPeriodMs} ms)`);
  if (!(c.retryPeriodMs > 0)) throw new Error('leader election: retryPeriod must be positive');
  if (c.leaseDurationMs < 1000) throw new Error('leader election: leaseDuration must be at least 1 s (the Lease stores whole seconds)');
}

/** The leader election record of a Lease (times as RFC 3339 strings). */
export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions: number;
}

/** When (local clock, ms) we first saw a given record. */
export interface Observation {
  fingerprint: string;
  at: number;
}

export type LeaseDecision =
  | { action: 'create'; record: LeaseRecord }
  | { action: 'update'; record: LeaseRecord; renew: boolean }
  | { action: 'wait'; holder: string; expiresAt: number };

export const fingerprint = (r: LeaseRecord): string =>
  JSON.stringify([r.holderIdentity, r.leaseDurationSeconds, r.acquireTime ?? '', r.renewTime ?? '', r.leaseTransitions]);

const iso = (ms: number): string => new V1MicroTime(ms).toISOString();

/**
 * Pure: what to do with the Lease. `current` undefined = no Lease yet. Returns the decision and the
 * observation to keep (a changed record restarts the clock).
 */
export function decideLease(input: {
  current: LeaseRecord | undefined;
  observed: Observation | undefined;
  now: number;
  identity: string;
  leaseDurationMs: number;
}): { decision: LeaseDecision; observed: Observation | undefined } {
  const { current, now, identity } = input;
  const durationSeconds = Math.max(1, Math.ceil(input.leaseDurationMs / 1000));
  if (!current) {
    const record = { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: iso(now), renewTime: iso(now), leaseTransitions: 0 };
    return { decision: { action: 'create', record }, observed: input.observed };
  }
  const fp = fingerprint(current);
  const observed = input.observed?.fingerprint === fp ? input.observed : { fingerprint: fp, at: now };
  const mine = current.holderIdentity === identity;
  if (current.holderIdentity && !mine) {
    const expiresAt = observed.at + Math.max(1, current.leaseDurationSeconds) * 1000;
    if (expiresAt > now) return { decision: { action: 'wait', holder: current.holderIdentity, expiresAt }, observed };
  }
  const record: LeaseRecord = {
    holderIdentity: identity,
    leaseDurationSeconds: durationSeconds,
    acquireTime: mine ? (current.acquireTime ?? iso(now)) : iso(now),
    renewTime: iso(now),
    leaseTransitions: mine ? current.leaseTransitions : current.leaseTransitions + 1,
  };
  return { decision: { action: 'update', record, renew: mine }, observed };
}

/** Pure: the record written on graceful release (client-go: empty holder, 1 s duration). */
export function releaseRecord(current: LeaseRecord, now: number): LeaseRecord {
  return { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: iso(now), renewTime: iso(now), leaseTransitions: current.leaseTransitions };
}

const timeStr = (t: unknown): string | undefined => (typeof t === 'string' ? t : t instanceof Date ? t.toISOString() : undefined);

export function recordOf(lease: V1Lease): LeaseRecord {
  const s = lease.spec ?? {};
  return {
    holderIdentity: s.holderIdentity ?? '',
    leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
    acquireTime: timeStr(s.acquireTime),
    renewTime: timeStr(s.renewTime),
    leaseTransitions: s.leaseTransitions ?? 0,
  };
}

function leaseBody(name: string, namespace: string, r: LeaseRecord, meta?: V1Lease['metadata']): V1Lease {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { ...(meta ?? {}), name, namespace },
    spec: {
      holderIdentity: r.holderIdentity,
      leaseDurationSeconds: r.leaseDurationSeconds,
      acquireTime: r.acquireTime ? new V1MicroTime(r.acquireTime) : undefined,
      renewTime: r.renewTime ? new V1MicroTime(r.renewTime) : undefined,
      leaseTransitions: r.leaseTransitions,
    },
  };
}

export interface LeaseClient {
  get(namespace: string, name: string): Promise<V1Lease | undefined>;
  create(namespace: string, lease: V1Lease): Promise<V1Lease>;
  replace(namespace: string, name: string, lease: V1Lease): Promise<V1Lease>;
}

export function coordinationLeaseClient(kc: KubeConfig): LeaseClient {
  const api = kc.makeApiClient(CoordinationV1Api);
  return {
    async get(namespace, name) {
      try {
        return await api.readNamespacedLease({ namespace, name });
      } catch (err) {
        if (statusCodeOf(err) === 404) return undefined;
        throw err;
      }
    },
    create: (namespace, body) => api.createNamespacedLease({ namespace, body }),
    replace: (namespace, name, body) => api.replaceNamespacedLease({ namespace, name, body }),
  };
}

export interface LeaderElectorOptions extends Partial<LeaderElectionConfig> {
  namespace: string;
  name: string;
  /** Default `<hostname>_<uuid>`, as controller-runtime. */
  identity?: string;
  logger: Logger;
  metrics?: Registry;
  /** Called once when leadership is lost (renew deadline passed). Default: process.exit(1). */
  onLost?: () => void;
  onStartedLeading?: () => void;
}

export const defaultIdentity = (): string => `${process.env.POD_NAME || hostname()}_${randomUUID()}`;

export class LeaseElector implements LeaderElection {
  readonly identity: string;
  readonly config: Required<LeaderElectionConfig>;
  private leader = false;
  private lost = false;
  private stopping = false;
  private acquiredTransitions = 0;
  private observed?: Observation;
  private lastLease?: V1Lease;
  private lastRenewSentAt = 0;
  private deadline?: NodeJS.Timeout;
  private waiters: (() => void)[] = [];
  private readonly stopCtl = new AbortController();
  private running?: Promise<void>;
  private readonly log: Logger;
  private readonly m;

  constructor(
    private readonly client: LeaseClient,
    private readonly opts: LeaderElectorOptions,
  ) {
    const base = { ...DEFAULT_LEADER_CONFIG };
    for (const k of ['leaseDurationMs', 'renewDeadlineMs', 'retryPeriodMs', 'requestTimeoutMs'] as const) {
      if (opts[k] !== undefined) base[k] = opts[k];
    }
    this.config = { ...base, requestTimeoutMs: base.requestTimeoutMs ?? Math.max(1, Math.floor(base.renewDeadlineMs / 2)) };
    validateLeaderConfig(this.config);
    this.identity = opts.identity ?? defaultIdentity();
    this.log = opts.logger.child({ lease: `${opts.namespace}/${opts.name}`, identity: this.identity });
    const reg = opts.metrics ?? new Registry();
    this.m = { master: gauge(reg, 'leader_election_master_status', 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master.', ['name']) };
    this.m.master.set({ name: opts.name }, 0);
  }

  isLeader(): boolean {
    return this.leader;
  }
  transitions(): number {
    return this.acquiredTransitions;
  }
  waitForLeadership(signal?: AbortSignal): Promise<void> {
    if (this.leader) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(new Error('aborted while waiting for leadership'));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(done);
    });
  }

  start(): void {
    if (this.running) return;
    this.running = this.loop().catch((err) => this.log.error({ err: errorMessage(err) }, 'leader election loop died'));
  }

  /** Stops electing; a leader releases the Lease (others may take over at once). */
  async stop(release = true): Promise<void> {
    this.stopping = true;
    this.stopCtl.abort();
    await this.running;
    if (this.leader && release && !this.lost) await this.release();
    clearTimeout(this.deadline);
    this.setLeader(false);
  }

  private async loop(): Promise<void> {
    const signal = this.stopCtl.signal;
    while (!signal.aborted && !this.leader) {
      if (await this.tryAcquireOrRenew()) break;
      await sleep(this.config.retryPeriodMs * (1 + Math.random() * (JITTER - 1)), signal);
    }
    if (signal.aborted || !this.leader) return;
    while (!signal.aborted && this.leader) {
      await sleep(this.config.retryPeriodMs, signal);
      if (signal.aborted || !this.leader) break;
      await this.tryAcquireOrRenew();
    }
  }

  private setLeader(v: boolean): void {
    this.leader = v;
    this.m.master.set({ name: this.opts.name }, v ? 1 : 0);
  }

  private armDeadline(): void {
    clearTimeout(this.deadline);
    const due = this.lastRenewSentAt + this.config.renewDeadlineMs - Date.now();
    this.deadline = setTimeout(() => this.loseLeadership(), Math.max(0, due));
  }

  private loseLeadership(): void {
    if (!this.leader || this.lost) return;
    this.lost = true;
    this.setLeader(false);
    if (this.stopping) {
      this.log.warn('lease not renewed in time while shutting down; not releasing it');
      return;
    }
    this.log.error({ renewDeadlineMs: this.config.renewDeadlineMs }, 'leader election lost: could not renew the lease in time');
    const onLost =
      this.opts.onLost ??
      (() => {
        process.exit(1);
      });
    onLost();
  }

  /** One round; true when we hold the Lease afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name } = this.opts;
    const sentAt = Date.now();
    const t = this.config.requestTimeoutMs;
    try {
      // Fast path, as client-go: a leader updates its last known Lease without reading first.
      if (this.leader && this.lastLease) {
        const { decision } = decideLease({ current: recordOf(this.lastLease), observed: this.observed, now: sentAt, identity: this.identity, leaseDurationMs: this.config.leaseDurationMs });
        if (decision.action === 'update') {
          try {
            const stored = await withTimeout(this.client.replace(namespace, name, leaseBody(name, namespace, decision.record, this.lastLease.metadata)), t, 'renew lease');
            return this.succeeded(stored, sentAt);
          } catch (err) {
            if (statusCodeOf(err) !== 409) throw err;
            // someone else wrote the Lease: fall through to a read
          }
        }
      }
      const lease = await withTimeout(this.client.get(namespace, name), t, 'get lease');
      if (this.stopCtl.signal.aborted && !this.leader) return false;
      const now = Date.now();
      const { decision, observed } = decideLease({ current: lease ? recordOf(lease) : undefined, observed: this.observed, now, identity: this.identity, leaseDurationMs: this.config.leaseDurationMs });
      this.observed = observed;
      if (decision.action === 'wait') {
        this.log.debug({ holder: decision.holder }, 'lease held by another');
        return false;
      }
      if (decision.action === 'create') {
        const stored = await withTimeout(this.client.create(namespace, leaseBody(name, namespace, decision.record)), t, 'create lease');
        return this.succeeded(stored, sentAt);
      }
      const stored = await withTimeout(this.client.replace(namespace, name, leaseBody(name, namespace, decision.record, lease?.metadata)), t, 'update lease');
      return this.succeeded(stored, sentAt);
    } catch (err) {
      const code = statusCodeOf(err);
      if (code === 409) this.log.debug('lease: lost the race (409)');
      else this.log.warn({ err: errorMessage(err) }, this.leader ? 'failed to renew lease' : 'failed to acquire lease');
      return false;
    }
  }

  private succeeded(stored: V1Lease, sentAt: number): boolean {
    if (this.lost) return false;
    const rec = recordOf(stored);
    if (rec.holderIdentity !== this.identity) return false;
    this.lastLease = stored;
    this.observed = { fingerprint: fingerprint(rec), at: Date.now() };
    this.lastRenewSentAt = sentAt;
    if (!this.leader) {
      if (this.stopCtl.signal.aborted) return false;
      this.acquiredTransitions = rec.leaseTransitions;
      this.setLeader(true);
      this.log.info({ transitions: rec.leaseTransitions }, 'became leader');
      this.armDeadline();
      const ws = this.waiters;
      this.waiters = [];
      for (const w of ws) w();
      this.opts.onStartedLeading?.();
    } else {
      this.armDeadline();
    }
    return true;
  }

  private async release(): Promise<void> {
    const { namespace, name } = this.opts;
    if (!this.lastLease) return;
    try {
      await withTimeout(
        this.client.replace(namespace, name, leaseBody(name, namespace, releaseRecord(recordOf(this.lastLease), Date.now()), this.lastLease.metadata)),
        this.config.requestTimeoutMs,
        'release lease',
      );
      this.log.info('released the lease');
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'could not release the lease');
    }
  }
}
