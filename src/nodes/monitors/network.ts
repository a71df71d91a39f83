// Network monitor: Consul blocking queries (shared watchers) sampled once per policy interval into
// per-node network observations. Unreachable/leaderless observers and absent nodes are unknown.
// A watcher that Consul refuses (403: a rotated or revoked ACL token) makes the monitor read its
// token Secret again, past any cache, at most once per resync period; a changed token rebuilds the
// policy's watchers (the signature carries a digest of the tokens, never the tokens).
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { NETWORKS, type ComputeNode, type NetworkName, type UpDownUnknown } from '../../api/index.js';
import type { ConsulWatcher } from '../../clients/consul.js';
import { requireKey } from '../../clients/secrets.js';
import type { ResolvedPolicy } from '../config.js';
import type { NodeDeps } from '../deps.js';
import type { ObservationStore } from '../observations.js';

export interface PolicyEntry {
  name: string;
  policy: ResolvedPolicy;
}

export interface FleetView {
  nodes(): ComputeNode[];
  /** The single policy governing the node, or null (none, or several). */
  policyOf(node: ComputeNode): PolicyEntry | null;
  policies(): PolicyEntry[];
}

/** Merges several observers' opinions. Disagreement is reported as down with observersUp > 0 (never fenced on). */
export function mergeObservers(opinions: { state: UpDownUnknown; reason?: string }[]): { state: UpDownUnknown; up: number; down: number; unknown: number; reason?: string } {
  const up = opinions.filter((o) => o.state === 'up').length;
  const down = opinions.filter((o) => o.state === 'down').length;
  const unknown = opinions.length - up - down;
  const reasons = opinions.filter((o) => o.state !== 'up' && o.reason).map((o) => o.reason!);
  const state: UpDownUnknown = down > 0 ? 'down' : up > 0 ? 'up' : 'unknown';
  return { state, up, down, unknown, ...(reasons.length ? { reason: reasons.join('; ').slice(0, 500) } : {}) };
}

interface PolicyWatch {
  signature: string;
  watchers: Partial<Record<NetworkName, ConsulWatcher[]>>;
  timer: NodeJS.Timeout | undefined;
  /** Some observer of this policy authenticates with a token from a Secret. */
  usesTokens?: boolean;
}

export class NetworkMonitor {
  private readonly watches = new Map<string, PolicyWatch>();
  private stopped = false;
  private syncing: Promise<void> | undefined;
  private again = false;
  private retry: NodeJS.Timeout | undefined;
  /** Next pass reads token Secrets past the cache (a watcher was refused). */
  private freshSecrets = false;
  /** Earliest time a refused watcher may trigger another fresh Secret read. */
  private tokenRecheckAfter = 0;

  constructor(private readonly deps: NodeDeps, private readonly store: ObservationStore, private readonly fleet: FleetView, private readonly log: Logger, private readonly now = () => Date.now()) {}

  /**
   * Reconciles watchers and timers with the current policies. Single-flight: FencePolicy events and
   * start-up call this concurrently, and each pass awaits Secrets; two passes interleaving would both
   * see "not watching yet" and each start an interval timer (samples counted twice, so
   * failureThreshold 3 acting like 1-2). A call during a pass asks for one more pass and shares it.
   */
  sync(): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      try {
        do {
          this.again = false;
          await this.syncOnce();
        } while (this.again && !this.stopped);
      } finally {
        this.syncing = undefined;
      }
    })();
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    if (this.stopped) return;
    const fresh = this.freshSecrets;
    this.freshSecrets = false;
    const seen = new Set<string>();
    for (const { name, policy } of this.fleet.policies()) {
      seen.add(name);
      const tokens = await this.readTokens(name, policy, fresh);
      const digest = createHash('sha256').update(JSON.stringify([...tokens.values()])).digest('hex');
      const base = JSON.stringify([policy.networks, policy.detection.intervalMs, policy.detection.novaNodeSideCheck, digest]);
      const missingToken = [...tokens.values()].some((t) => t === null);
      // A token Secret not readable yet: the signature never matches, so the next pass (at the latest
      // one resync period later) reads it again.
      const signature = missingToken ? `${base}#token-missing` : base;
      const old = this.watches.get(name);
      if (old && old.signature === signature) continue;
      const watchers: PolicyWatch['watchers'] = {};
      for (const net of NETWORKS) {
        const rule = policy.networks[net];
        if (!rule) continue;
        const checkIds = net === 'management' && policy.detection.novaNodeSideCheck ? [policy.detection.novaNodeSideCheck] : [];
        watchers[net] = [];
        for (const o of rule.observers) {
          const token = o.tokenSecret ? tokens.get(o.tokenSecret) : undefined;
          if (token === null) continue; // unreadable: this observer counts as unknown
          watchers[net]!.push(this.deps.consul.acquire(o.address, token, checkIds));
        }
      }
      if (this.stopped) {
        // stop() ran while this pass awaited a Secret: hand back what was just acquired.
        await this.release({ signature, watchers, timer: undefined });
        return;
      }
      if (old) {
        await this.release(old);
        this.log.info({ policy: name }, 'Consul observers re-created: the policy or a token Secret changed');
      }
      const timer = setInterval(() => this.sample(name), policy.detection.intervalMs);
      timer.unref?.();
      this.watches.set(name, { signature, watchers, timer, usesTokens: tokens.size > 0 });
      this.sample(name);
      if (missingToken && !this.retry) {
        this.retry = setTimeout(() => { this.retry = undefined; void this.sync().catch(() => undefined); }, this.deps.config.resyncMs);
        this.retry.unref?.();
      }
    }
    for (const [name, w] of this.watches) {
      if (!seen.has(name)) {
        this.watches.delete(name);
        await this.release(w);
      }
    }
  }

  /** The token of every observer's Secret in the policy, by Secret name; null where unreadable. */
  private async readTokens(policyName: string, policy: ResolvedPolicy, fresh: boolean): Promise<Map<string, string | null>> {
    const tokens = new Map<string, string | null>();
    for (const net of NETWORKS) {
      for (const o of policy.networks[net]?.observers ?? []) {
        if (!o.tokenSecret || tokens.has(o.tokenSecret)) continue;
        try {
          tokens.set(o.tokenSecret, requireKey(await this.deps.secrets.get(o.tokenSecret, { fresh }), 'token', o.tokenSecret));
        } catch (err) {
          this.log.warn({ policy: policyName, network: net, secret: o.tokenSecret, err: (err as Error).message }, 'Consul token Secret unreadable; observer counts as unknown');
          tokens.set(o.tokenSecret, null);
        }
      }
    }
    return tokens;
  }

  /** A watcher with a token was refused by Consul: read the Secrets again (at most once per resync period). */
  private recheckTokens(now: number): void {
    if (now < this.tokenRecheckAfter || this.stopped) return;
    this.tokenRecheckAfter = now + this.deps.config.resyncMs;
    this.freshSecrets = true;
    this.log.info('a Consul observer refused its ACL token (403): reading the token Secrets again');
    void this.sync().catch((err: Error) => this.log.error({ err: err.message }, 'network monitor sync failed'));
  }

  private async release(w: PolicyWatch) {
    clearInterval(w.timer);
    for (const list of Object.values(w.watchers)) for (const x of list ?? []) await this.deps.consul.release(x);
  }

  /** One sample for every node governed by the policy. */
  sample(policyName: string): void {
    const w = this.watches.get(policyName);
    if (!w) return;
    const now = this.now();
    if (w.usesTokens && Object.values(w.watchers).some((list) => list?.some((x) => x.view.error?.startsWith('permission denied')))) this.recheckTokens(now);
    for (const node of this.fleet.nodes()) {
      const p = this.fleet.policyOf(node);
      if (!p || p.name !== policyName) continue;
      for (const net of NETWORKS) {
        const list = w.watchers[net];
        if (!list) {
          this.store.dropNetwork(node.metadata.name, net);
          continue;
        }
        const consulName = node.spec.consulNode?.[net] ?? node.spec.host;
        const maxAge = this.deps.config.consulWaitMs * 2 + 30_000;
        const opinions = list.length ? list.map((x) => x.nodeState(consulName, maxAge)) : [{ state: 'unknown' as const, reason: 'no usable Consul observer' }];
        this.store.sampleNetwork(node.metadata.name, net, mergeObservers(opinions), now);
      }
    }
  }

  /** nova-compute as the Consul service check on the management network reports it. */
  nodeSideNova(node: ComputeNode, checkId: string | undefined): UpDownUnknown {
    if (!checkId) return 'unknown';
    const p = this.fleet.policyOf(node);
    const w = p && this.watches.get(p.name);
    const list = w?.watchers.management ?? [];
    const name = node.spec.consulNode?.management ?? node.spec.host;
    const states = list.map((x) => x.checkState(name, checkId));
    if (states.includes('down') && !states.includes('up')) return 'down';
    if (states.includes('up') && !states.includes('down')) return 'up';
    return 'unknown';
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.syncing?.catch(() => undefined);
    for (const w of this.watches.values()) await this.release(w);
    this.watches.clear();
  }
}
