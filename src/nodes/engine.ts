// The node half's imperative shell: informers, monitors, the ComputeNode reconciler (runs the pure
// fence state machine and executes its actions, intent first), the FencePolicy reconciler and
// notifications.
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import {
  FENCE_FINALIZER,
  GROUP,
  VERSION,
  type ComputeNode,
  type ComputeNodeStatus,
  type Condition,
  type FencePolicy,
  type FencePolicyStatus,
  NETWORKS,
} from '../api/index.js';
import { IpmiError } from '../clients/ipmi.js';
import { SshError } from '../clients/ssh.js';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '../kube/client.js';
import { ConflictError, keyOf, type Informer, type Runtime, type WorkQueue } from '../kube/contract.js';
import { resolvePolicy, validatePolicy, type NodesProcessConfig, type ResolvedPolicy } from './config.js';
import type { NodeDeps } from './deps.js';
import { evacuationTick, planEvacuation } from './evacuate.js';
import { IN_FLIGHT_PHASES, applyOutcome, decide, isStorm, isUnhealthy, stepState } from './fence/machine.js';
import type { Action, FleetSummary, NodeSnapshot, Outcome } from './fence/types.js';
import { matchesSelector } from './match.js';
import { NetworkMonitor, type FleetView, type PolicyEntry } from './monitors/network.js';
import { NodeSideMonitor } from './monitors/nodeside.js';
import { NovaMonitor } from './monitors/nova.js';
import { PowerMonitor } from './monitors/power.js';
import { HardwareMonitor } from './monitors/hardware.js';
import { applyMigrateAnswer, classifyMigrateError, drainSummary, drainTick, type Drain } from './drain/machine.js';
import { readDrainView } from './drain/nova.js';
import { THRESHOLD_STATES } from '../clients/ipmi-sensors.js';
import { Notifier } from './notify.js';
import { ObservationStore } from './observations.js';

class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A fence is in progress (hm9k's finalizer holds the ComputeNode until it reaches Fenced or FenceFailed). */
export function fenceInProgress(s: ComputeNodeStatus | undefined): boolean {
  return !!s?.fence && (s.phase === 'Fencing' || s.phase === 'Evacuating');
}

function equalJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, sortKeys(x)]));
  return v;
}

interface PolicyCacheEntry {
  generation: number | undefined;
  resourceVersion: string | undefined;
  resolved?: ResolvedPolicy;
  problems: string[];
}

export interface EngineOptions {
  now?: () => number;
}

export class NodesEngine implements FleetView {
  readonly store = new ObservationStore();
  readonly network: NetworkMonitor;
  readonly novaMonitor: NovaMonitor;
  readonly power: PowerMonitor;
  readonly nodeSide: NodeSideMonitor;
  readonly hardware: HardwareMonitor;
  private readonly objects: CustomObjectsApi;
  private monitorsStarted = false;
  readonly notifier: Notifier;
  private readonly nodesInf: Informer<ComputeNode>;
  private readonly policiesInf: Informer<FencePolicy>;
  private readonly policyCache = new Map<string, PolicyCacheEntry>();
  private readonly mutex = new Mutex();
  private readonly inFlight = new Set<string>();
  /** Evacuation ticks between their first request and the write of their outcome. */
  private readonly evacuationsInFlight = new Set<Promise<void>>();
  private nodeQueue!: WorkQueue;
  private policyQueue!: WorkQueue;
  private readonly log: Logger;
  private readonly m: { decisions: Counter; actions: Counter; errors: Counter; notifications: Counter; phase: Gauge; storm: Gauge; drains: Counter; sensor: Gauge };
  private readonly now: () => number;
  private stopped = false;

  constructor(private readonly runtime: Runtime, private readonly config: NodesProcessConfig, private readonly deps: NodeDeps, opts: EngineOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.log = runtime.logger('nodes');
    const reg = runtime.metrics;
    const mk = <T>(name: string, make: () => T): T => (reg.getSingleMetric(name) as T | undefined) ?? make();
    this.m = {
      decisions: mk('hm9k_nodes_decisions_total', () => new Counter({ name: 'hm9k_nodes_decisions_total', help: 'Fence state machine decisions by resulting phase.', labelNames: ['phase'], registers: [reg] })),
      actions: mk('hm9k_nodes_actions_total', () => new Counter({ name: 'hm9k_nodes_actions_total', help: 'Actions executed by type and result.', labelNames: ['type', 'result'], registers: [reg] })),
      errors: mk('hm9k_nodes_source_errors_total', () => new Counter({ name: 'hm9k_nodes_source_errors_total', help: 'Errors reading a source (nova, bmc, consul).', labelNames: ['source'], registers: [reg] })),
      notifications: mk('hm9k_nodes_notifications_total', () => new Counter({ name: 'hm9k_nodes_notifications_total', help: 'Email notifications by result.', labelNames: ['result'], registers: [reg] })),
      phase: mk('hm9k_nodes_phase', () => new Gauge({ name: 'hm9k_nodes_phase', help: 'ComputeNodes per phase.', labelNames: ['phase'], registers: [reg] })),
      storm: mk('hm9k_nodes_storm_active', () => new Gauge({ name: 'hm9k_nodes_storm_active', help: '1 while a FencePolicy is in storm protection (no node is fenced).', labelNames: ['policy'], registers: [reg] })),
      drains: mk('hm9k_nodes_drains_total', () => new Counter({ name: 'hm9k_nodes_drains_total', help: 'Drains (live migration of a host) by result: started, empty, incomplete, handedOver, undrained.', labelNames: ['result'], registers: [reg] })),
      sensor: mk('hm9k_nodes_hardware_sensor_state', () => new Gauge({ name: 'hm9k_nodes_hardware_sensor_state', help: 'BMC sensor threshold state per node and sensor: 0 ok, 1 nonCritical, 2 critical, 3 nonRecoverable, -1 unknown (BMC unreadable).', labelNames: ['node', 'sensor'], registers: [reg] })),
    };
    this.nodesInf = runtime.informer('ComputeNode');
    this.policiesInf = runtime.informer('FencePolicy');
    this.network = new NetworkMonitor(deps, this.store, this, runtime.logger('nodes-network'), this.now);
    deps.consul.onError = () => this.m.errors.inc({ source: 'consul' });
    this.novaMonitor = new NovaMonitor(deps, this.store, this, this.network, runtime.logger('nodes-nova'), this.m.errors, this.now);
    this.nodeSide = new NodeSideMonitor(deps, this.store, this, runtime.logger('nodes-nodeside'), this.m.errors, this.now, runtime.signal, () => runtime.leader.isLeader());
    this.objects = runtime.kubeConfig.makeApiClient(CustomObjectsApi);
    this.power = new PowerMonitor(deps, this.store, this, runtime.logger('nodes-power'), this.m.errors, this.now, () => runtime.leader.isLeader() && !this.stopped);
    this.notifier = new Notifier(deps, runtime.events, runtime.logger('nodes-notify'), config, this.m.notifications, this.now);
    // Hardware health (issue 12 item 1): leader only, sharing the fleet-wide BMC semaphore with the
    // power reads and fences (the IPMI client also runs one session per BMC at a time).
    this.hardware = new HardwareMonitor(
      { ipmi: deps.ipmi, bmcTarget: (n) => deps.bmcTarget(n), limit: (fn) => deps.ipmiSem.run(fn) },
      () => this.nodesInf.list(),
      {
        rulesOf: (n) => {
          const p = this.policyOf(n)?.policy;
          return p?.hardware.enabled ? p.hardware : null;
        },
        onDecision: (name, d) => {
          const sensors = this.hardware.readings(name).filter((r) => r.readable).at(-1);
          this.store.setHardware(name, d, sensors?.readable ? sensors.sensors : undefined);
          this.sensorGauges(name);
        },
        onSel: (name, fresh, notices, lastId) => this.onSel(name, fresh, notices, lastId),
      },
      runtime.logger('nodes-hardware'),
      () => runtime.leader.isLeader() && !this.stopped,
      // The sweep is cheap (it reads only the nodes whose policy interval has passed): it runs often so
      // a short interval is honoured.
      { tickMs: 500 },
      this.m.errors,
      this.now,
    );
  }

  private sensorGauges(name: string): void {
    const o = this.store.get(name).hardware;
    if (!o) return;
    const unknown = o.decision.bmc === 'unknown';
    for (const s of o.sensors) {
      const st = s.faults.length && s.state === 'ok' ? 'critical' : s.state;
      this.m.sensor.set({ node: name, sensor: s.name }, unknown || st === 'unknown' ? -1 : THRESHOLD_STATES.indexOf(st));
    }
  }

  /** SEL cursor first into status (a restart never reports an entry twice), then one email per noteworthy entry. */
  private async onSel(name: string, fresh: import('../clients/ipmi-sensors.js').SelEntry[], notices: import('./hardware/rules.js').SelNotice[], lastId: number | undefined): Promise<void> {
    const node = this.nodesInf.get(name);
    if (!node || lastId === undefined) return;
    if (node.status?.hardware?.selCursor !== lastId) {
      const hw = { ...(node.status?.hardware ?? { state: 'unknown' as const }), selCursor: lastId };
      await this.runtime.status.patchStatus('ComputeNode', node, { ...node.status, hardware: hw });
    }
    this.store.setSelCursor(name, lastId);
    const policy = this.policyOf(node)?.policy ?? null;
    for (const n of notices) {
      const e = n.entry;
      await this.notifier.notify(node, policy, {
        type: 'notify', key: `sel-${e.id}`, severity: 'warning', subject: `[hm9k] ${name}: BMC event log: ${e.sensor} ${e.event}`.slice(0, 200),
        body: `Node: ${name} (nova host ${node.spec.host})\nA new System Event Log entry on the BMC (${n.condition}):\n  #${e.id} ${e.sensor}: ${e.event}${e.asserted ? ' (asserted)' : ' (deasserted)'}\nA SEL entry is history: hm9k notifies it once and acts on the sensors only.`,
      });
    }
    if (fresh.length) this.log.info({ node: name, entries: fresh.length, notices: notices.length, cursor: lastId }, 'new SEL entries');
  }

  start(): void {
    this.nodeQueue = this.runtime.addController({ name: 'computenode', reconcile: (k) => this.reconcileNode(k) }, { workers: this.config.workers });
    this.policyQueue = this.runtime.addController({ name: 'fencepolicy', reconcile: (k) => this.reconcilePolicy(k) }, { workers: 1 });
    const enqueueNode = (o: ComputeNode) => this.nodeQueue.add(keyOf(o));
    this.nodesInf.on('add', enqueueNode);
    this.nodesInf.on('update', enqueueNode);
    this.nodesInf.on('delete', (o) => {
      const name = o.metadata.name;
      for (const s of this.store.get(name).hardware?.sensors ?? []) this.m.sensor.remove({ node: name, sensor: s.name });
      this.store.delete(name);
      this.inFlight.delete(name);
      this.hardware.forget(name);
      this.enqueueAllPolicies();
    });
    const policyChanged = (p: FencePolicy) => {
      this.policyCache.delete(p.metadata.name);
      this.policyQueue.add(keyOf(p));
      for (const n of this.nodesInf.list()) this.nodeQueue.add(keyOf(n));
      void this.network.sync().catch((err: Error) => this.log.error({ err: err.message }, 'network monitor sync failed'));
      if (this.monitorsStarted) this.nodeSide.sync();
    };
    this.policiesInf.on('add', policyChanged);
    this.policiesInf.on('update', policyChanged);
    this.policiesInf.on('delete', policyChanged);
    this.store.onChange((name) => this.nodeQueue?.add(name));
    // A network just went down: read the BMC now, so that a host that simply lost power is seen as
    // powered off (power-on path) before the network failure reaches Suspect.
    this.store.onNetworkDown((name) => {
      const n = this.nodesInf.get(name);
      if (n?.spec.bmc && !n.spec.maintenance && !this.stopped) void this.power.read(n);
    });
    void (async () => {
      await Promise.all([this.nodesInf.waitForSync(this.runtime.signal), this.policiesInf.waitForSync(this.runtime.signal)]);
      if (this.stopped) return;
      await this.network.sync();
      this.novaMonitor.start();
      this.power.start();
      // A standby reads no BMC; once it leads, read every BMC at once instead of waiting a period.
      void this.runtime.leader.waitForLeadership(this.runtime.signal).then(() => this.power.poll(), () => undefined);
      this.monitorsStarted = true;
      this.nodeSide.sync();
      // The SEL cursors persisted in status: entries up to them are never reported again.
      for (const n of this.nodesInf.list()) {
        const c = n.status?.hardware?.selCursor;
        if (c !== undefined && this.hardware.selCursor(n.metadata.name) === undefined) this.hardware.setSelCursor(n.metadata.name, c);
      }
      this.hardware.start();
      void this.runtime.leader.waitForLeadership(this.runtime.signal).then(() => this.hardware.sweep(), () => undefined);
    })().catch((err: Error) => { if (!this.stopped) this.log.error({ err: err.message }, 'nodes monitors failed to start'); });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // Runs before the Lease is released (a runtime stop hook): evacuate requests still open end by
    // their own HTTP timeout and their outcome (accepted or unknown) is written first. If the pod is
    // killed before that, the intent already written is read as "outcome unknown" by the next leader.
    if (this.evacuationsInFlight.size) {
      this.log.info({ inFlight: this.evacuationsInFlight.size }, 'waiting for evacuate requests in flight before releasing the Lease');
      let t: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.evacuationsInFlight]), new Promise((r) => (t = setTimeout(r, this.config.httpTimeoutMs + 2_000)))]);
      clearTimeout(t);
    }
    this.novaMonitor.stop();
    this.power.stop();
    // Reads in flight end (bounded by the IPMI timeout) and report nothing: the next leader reads on
    // from the cursor in status.
    await this.hardware.stop();
    this.nodeSide.stop();
    this.notifier.stop();
    await this.network.stop();
    await this.deps.stop();
  }

  // FleetView ---------------------------------------------------------------------------------
  nodes(): ComputeNode[] {
    return this.nodesInf.list();
  }

  private policyEntry(p: FencePolicy): PolicyCacheEntry {
    const c = this.policyCache.get(p.metadata.name);
    if (c && c.resourceVersion === p.metadata.resourceVersion) return c;
    const problems = validatePolicy(p.spec);
    let resolved: ResolvedPolicy | undefined;
    if (!problems.length) resolved = resolvePolicy(p.spec);
    const e: PolicyCacheEntry = { generation: p.metadata.generation, resourceVersion: p.metadata.resourceVersion, ...(resolved ? { resolved } : {}), problems };
    this.policyCache.set(p.metadata.name, e);
    return e;
  }

  policies(): PolicyEntry[] {
    return this.policiesInf.list().flatMap((p) => {
      const e = this.policyEntry(p);
      return e.resolved ? [{ name: p.metadata.name, policy: e.resolved }] : [];
    });
  }

  private match(node: ComputeNode): { entry: PolicyEntry | null; reason?: string } {
    const matching = this.policiesInf.list().filter((p) => matchesSelector(p.spec.nodeSelector, node.metadata.labels));
    if (matching.length === 0) return { entry: null, reason: 'no FencePolicy matches this node' };
    if (matching.length > 1) return { entry: null, reason: `matched by ${matching.length} FencePolicies (${matching.map((p) => p.metadata.name).sort().join(', ')}): no action until exactly one matches` };
    const p = matching[0]!;
    const e = this.policyEntry(p);
    if (!e.resolved) return { entry: null, reason: `FencePolicy ${p.metadata.name} is invalid: ${e.problems.join('; ')}` };
    return { entry: { name: p.metadata.name, policy: e.resolved } };
  }

  policyOf(node: ComputeNode): PolicyEntry | null {
    return this.match(node).entry;
  }

  private snapshot(node: ComputeNode, clone = true): NodeSnapshot {
    return {
      name: node.metadata.name,
      spec: node.spec,
      annotations: node.metadata.annotations ?? {},
      ...(node.metadata.generation !== undefined ? { generation: node.metadata.generation } : {}),
      status: node.status ?? {},
      obs: clone ? this.store.snapshot(node.metadata.name) : this.store.get(node.metadata.name),
    };
  }

  private phaseOf(n: ComputeNode): string | undefined {
    return n.status?.phase;
  }

  private fleet(name: string, policyName: string | undefined): FleetSummary {
    const all = this.nodesInf.list();
    const s: FleetSummary = { policy: { matched: 0, unhealthy: 0, inFlight: 0, draining: 0 }, global: { total: 0, unhealthy: 0, inFlight: 0, draining: 0 } };
    for (const n of all) {
      if (n.spec.maintenance) continue;
      const pe = this.policyOf(n);
      const unhealthy = isUnhealthy(this.snapshot(n, false), pe?.policy ?? null);
      const busy = n.metadata.name !== name && (this.inFlight.has(n.metadata.name) || IN_FLIGHT_PHASES.includes(this.phaseOf(n) as never));
      const draining = busy && this.phaseOf(n) === 'Draining';
      s.global.total++;
      if (unhealthy) s.global.unhealthy++;
      if (busy) s.global.inFlight++;
      if (draining) s.global.draining!++;
      if (pe && pe.name === policyName) {
        s.policy.matched++;
        if (unhealthy) s.policy.unhealthy++;
        if (busy) s.policy.inFlight++;
        if (draining) s.policy.draining!++;
      }
    }
    return s;
  }

  private enqueueAllPolicies() {
    for (const p of this.policiesInf.list()) this.policyQueue?.add(keyOf(p));
  }

  // ComputeNode reconciler --------------------------------------------------------------------
  private async write(node: ComputeNode, status: ComputeNodeStatus, intent: boolean): Promise<ComputeNode> {
    if (equalJson(node.status ?? {}, status)) return node;
    if (!intent) {
      await this.runtime.status.patchStatus('ComputeNode', node, status);
      return node;
    }
    const stored = await this.runtime.status.updateStatus('ComputeNode', { ...node, status });
    if (stored.metadata.resourceVersion) {
      await this.nodesInf.waitForVersion(keyOf(stored), stored.metadata.resourceVersion, 10_000).catch(() => undefined);
    }
    return stored;
  }

  /**
   * Adds or removes hm9k's finalizer with a merge patch carrying the resourceVersion (a stale view
   * gets 409 and is retried), then waits until the cache shows it. Only metadata.finalizers changes.
   */
  private async setFinalizer(node: ComputeNode, present: boolean): Promise<ComputeNode> {
    const list = node.metadata.finalizers ?? [];
    if (list.includes(FENCE_FINALIZER) === present) return node;
    const finalizers = present ? [...list, FENCE_FINALIZER] : list.filter((f) => f !== FENCE_FINALIZER);
    const stored = (await this.objects.patchClusterCustomObject(
      { group: GROUP, version: VERSION, plural: 'computenodes', name: node.metadata.name, body: { metadata: { resourceVersion: node.metadata.resourceVersion, finalizers } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as ComputeNode;
    this.log.info({ node: node.metadata.name, finalizer: FENCE_FINALIZER, present }, present ? 'finalizer added: fence in progress' : 'finalizer removed');
    if (stored.metadata.resourceVersion) await this.nodesInf.waitForVersion(keyOf(stored), stored.metadata.resourceVersion, 10_000).catch(() => undefined);
    return stored;
  }

  async reconcileNode(key: string): Promise<{ requeueAfterMs?: number } | void> {
    let node = this.nodesInf.get(key);
    if (!node) return;
    if (node.metadata.deletionTimestamp && !fenceInProgress(node.status)) {
      // Being deleted with no fence in progress: start nothing; let it go.
      if (node.metadata.finalizers?.includes(FENCE_FINALIZER)) await this.setFinalizer(node, false);
      this.inFlight.delete(node.metadata.name);
      return;
    }
    const { entry, reason } = this.match(node);
    const policy = entry?.policy ?? null;
    const prevPhase = node.status?.phase;
    const prevDrain = node.status?.drain;
    const decision = await this.mutex.run(async () => {
      const d = decide(this.snapshot(node!), policy, this.fleet(node!.metadata.name, entry?.name), {
        now: this.now(),
        lease: { holder: this.runtime.leader.identity, transitions: this.runtime.leader.transitions() },
        globalMaxUnhealthy: this.config.globalMaxUnhealthy,
        globalMaxConcurrentRemediations: this.config.maxConcurrentRemediations,
        ...(reason ? { noPolicyReason: reason } : {}),
      });
      if (d.inFlight) this.inFlight.add(node!.metadata.name);
      else this.inFlight.delete(node!.metadata.name);
      const external = d.actions.some((a) => a.type !== 'notify' && a.type !== 'event' && a.type !== 'corroborate');
      const fenceChanged = !equalJson(node!.status?.fence, d.status.fence);
      // Intent first: an update carrying resourceVersion (and the fence record's Lease holder).
      node = await this.write(node!, d.status, external || fenceChanged);
      // A fence in progress holds the object (finalizer) before its first external effect, so a
      // ComputeNode deleted mid-fence finishes the fence before it goes.
      if (fenceInProgress(d.status) && !node!.metadata.finalizers?.includes(FENCE_FINALIZER)) node = await this.setFinalizer(node!, true);
      return d;
    });
    this.m.decisions.inc({ phase: decision.status.phase ?? 'none' });
    if (prevPhase !== decision.status.phase) this.enqueueAllPolicies();
    // The decision's Events first, so that `kubectl describe` lists a decision before its outcome.
    const ordered = [...decision.actions.filter((a) => a.type === 'event'), ...decision.actions.filter((a) => a.type !== 'event')];
    for (const a of ordered) {
      if (this.stopped || this.runtime.signal.aborted) break;
      node = await this.execute(node, a, policy);
    }
    this.countDrain(prevDrain, node.status?.drain);
    if (!fenceInProgress(node.status) && node.metadata.finalizers?.includes(FENCE_FINALIZER) && !this.runtime.signal.aborted) {
      node = await this.setFinalizer(this.latest(node), false);
    }
    const phase = node.status?.phase ?? decision.status.phase;
    const interval = policy?.detection.intervalMs ?? this.config.resyncMs;
    if (phase === 'Fencing' || phase === 'Evacuating' || phase === 'Draining') return { requeueAfterMs: Math.max(200, Math.min(interval, 2000)) };
    if (phase === 'Healthy' || phase === 'Maintenance' || (phase === 'Fenced' && !node.status?.fence?.acknowledged)) return { requeueAfterMs: this.config.resyncMs };
    return { requeueAfterMs: interval };
  }

  /** hm9k_nodes_drains_total{result}: a drain started, ended (empty, incomplete, handedOver) or undrained. */
  private countDrain(before: Drain | undefined, after: Drain | undefined): void {
    if (after && before?.id !== after.id) this.m.drains.inc({ result: 'started' });
    if (after?.result && (before?.id !== after.id || !before.result)) this.m.drains.inc({ result: after.result });
    if (before && !after) this.m.drains.inc({ result: 'undrained' });
  }

  /** The newer of `node` and the cached copy. */
  private latest(node: ComputeNode): ComputeNode {
    const fresh = this.nodesInf.get(keyOf(node));
    return fresh && fresh.metadata.resourceVersion && node.metadata.resourceVersion && BigInt(fresh.metadata.resourceVersion) > BigInt(node.metadata.resourceVersion) ? fresh : node;
  }

  private async outcome(node: ComputeNode, o: Outcome): Promise<ComputeNode> {
    const base = this.latest(node);
    return this.write(base, applyOutcome(base.status ?? {}, o, this.now()), true);
  }

  /**
   * Every decision and every action's outcome is an Event and one structured log line: info, or
   * error for a failure (the Event type alone cannot tell: a Fence decision is a Warning too).
   */
  private event(node: ComputeNode, type: 'Normal' | 'Warning', reason: string, note: string): void {
    this.runtime.events.record(node, type, reason, reason, note);
    const failed = /(Failed|Incomplete|Unavailable)$/.test(reason);
    this.log[failed ? 'error' : 'info']({ node: node.metadata.name, event: reason, type }, note);
  }

  private async execute(node: ComputeNode, a: Action, policy: ResolvedPolicy | null): Promise<ComputeNode> {
    const name = node.metadata.name;
    const log = this.log.child({ node: name, action: a.type });
    const done = (result: string) => this.m.actions.inc({ type: a.type, result });
    try {
      switch (a.type) {
        case 'event':
          this.event(node, a.eventType, a.reason, a.note);
          return node;
        case 'notify':
          await this.notifier.notify(node, policy, a);
          return node;
        case 'corroborate': {
          if (!node.spec.ssh || !a.command) {
            this.store.setCorroboration(name, { network: a.network, at: this.now(), result: 'notConfigured', detail: !node.spec.ssh ? 'no spec.ssh' : 'no corroboration.sshCommand' });
            done('notConfigured');
            return node;
          }
          const target = await this.deps.sshTarget(node);
          try {
            const r = await this.deps.sshSem.run(() => this.deps.ssh.exec(target, a.command!, a.timeoutMs, this.runtime.signal));
            const works = r.exitCode === 0;
            const detail = `exit ${r.exitCode}${r.stdout ? `: ${r.stdout.trim().slice(0, 200)}` : ''}`;
            this.store.setCorroboration(name, { network: a.network, at: this.now(), result: works ? 'works' : 'failing', detail });
            done(works ? 'works' : 'failing');
            this.event(node, works ? 'Normal' : 'Warning', works ? 'NotCorroborated' : 'Corroborated',
              works
                ? `SSH check on the node says its ${a.network} network works (${detail}): the Consul agent is broken, not the network; not fencing`
                : `SSH check on the node confirms the ${a.network} network failure (${detail})`);
          } catch (err) {
            this.store.setCorroboration(name, { network: a.network, at: this.now(), result: 'unreachable', detail: (err as Error).message });
            done('unreachable');
            this.event(node, 'Warning', 'CorroborationUnavailable', `SSH check of the ${a.network} network could not run: ${(err as Error).message.slice(0, 300)}`);
          }
          return node;
        }
        case 'recover': {
          let o: Outcome;
          try {
            const target = await this.deps.sshTarget(node);
            const r = await this.deps.sshSem.run(() => this.deps.ssh.exec(target, a.command, a.timeoutMs, this.runtime.signal));
            o = { type: 'recover', ok: r.exitCode === 0, message: `exit ${r.exitCode}${r.stderr ? `: ${r.stderr.trim().slice(0, 200)}` : ''}` };
          } catch (err) {
            o = { type: 'recover', ok: false, message: err instanceof SshError ? `${err.kind}: ${err.message}` : (err as Error).message };
          }
          if (!o.ok && this.interrupted()) return this.leavePending(node, a, log, o.message);
          done(o.ok ? 'ok' : 'failed');
          log.info({ kind: a.kind, attempt: a.attempt, ok: o.ok, message: o.message }, 'recovery attempt');
          this.event(node, o.ok ? 'Normal' : 'Warning', o.ok ? 'RecoveryCommandSucceeded' : 'RecoveryCommandFailed', `recovery attempt ${a.attempt} (${a.kind}): ${o.message}`);
          return this.outcome(node, o);
        }
        case 'powerOn': {
          let o: Outcome;
          try {
            // The power-on rule, checked again against the outside world: never a host hm9k fenced.
            if (node.status?.fence) throw new Error('fence record present: never powering on');
            const target = await this.deps.bmcTarget(node);
            await this.deps.ipmiSem.run(() => this.deps.ipmi.power(target, 'on', this.runtime.signal));
            o = { type: 'powerOn', ok: true, message: 'power on requested' };
          } catch (err) {
            o = { type: 'powerOn', ok: false, message: (err as Error).message };
          }
          if (!o.ok && this.interrupted()) return this.leavePending(node, a, log, o.message);
          done(o.ok ? 'ok' : 'failed');
          this.event(node, o.ok ? 'Normal' : 'Warning', o.ok ? 'PowerOnRequested' : 'PowerOnFailed', `power-on attempt ${a.attempt}: ${o.message}`);
          const next = await this.outcome(node, o);
          void this.power.read(next);
          return next;
        }
        case 'powerOff': {
          if (!policy) return node;
          let o: Outcome;
          try {
            const target = await this.deps.bmcTarget(node);
            const r = await this.deps.ipmiSem.run(() => this.deps.ipmi.fenceOff(target, policy.fencing, this.runtime.signal));
            o = { type: 'powerOff', ok: r.confirmed, confirmed: r.confirmed, message: r.message };
            if (r.confirmed) this.store.setPower(name, 'off', this.now());
          } catch (err) {
            o = { type: 'powerOff', ok: false, confirmed: false, message: err instanceof IpmiError ? `BMC ${err.kind}: ${err.message}` : (err as Error).message };
          }
          // Shutdown killed ipmitool mid-fence: that is no answer from the BMC, so not "not confirmed"
          // (FenceFailed would make an operator acknowledge a host that is really off, with nothing
          // evacuated). The step stays pending; the next leader re-reads the BMC and carries on.
          if (!o.confirmed && this.interrupted()) return this.leavePending(node, a, log, o.message);
          done(o.confirmed ? 'confirmed' : 'failed');
          this.event(node, o.confirmed ? 'Normal' : 'Warning', o.confirmed ? 'PowerOffConfirmed' : 'PowerOffFailed',
            `fence ${a.fenceId}: ${o.confirmed ? o.message : `power-off not confirmed (${o.message}); nothing will be evacuated`}`);
          return this.outcome(node, o);
        }
        case 'forceDown':
        case 'disable': {
          let o: Outcome;
          try {
            this.assertPowerOffConfirmed(node);
            const nova = await this.deps.novaClient();
            const svc = (await nova.listServices(node.spec.host)).find((s) => s.host === node.spec.host);
            if (!svc) throw new Error(`no nova-compute service for host ${node.spec.host}`);
            if (a.type === 'forceDown') await nova.forceDown(svc.id, true);
            else await nova.disable(svc.id, a.reason);
            o = { type: a.type, ok: true, message: a.type === 'forceDown' ? 'forced_down=true' : `disabled: ${a.reason}` };
          } catch (err) {
            o = { type: a.type, ok: false, message: (err as Error).message };
          }
          done(o.ok ? 'ok' : 'failed');
          this.event(node, o.ok ? 'Normal' : 'Warning', a.type === 'forceDown' ? (o.ok ? 'ServiceForcedDown' : 'ForceDownFailed') : (o.ok ? 'ServiceDisabled' : 'DisableFailed'),
            `fence ${a.fenceId}: ${o.ok ? `nova-compute ${o.message}` : o.message.slice(0, 300)}`);
          return this.outcome(node, o);
        }
        case 'evacuate':
          return await this.evacuate(node, policy!);
        case 'drainDisable':
        case 'drainEnable': {
          let o: Outcome;
          try {
            const nova = await this.deps.novaClient();
            const svc = (await nova.listServices(node.spec.host)).find((s) => s.host === node.spec.host);
            if (!svc) throw new Error(`no nova-compute service for host ${node.spec.host}`);
            if (a.type === 'drainDisable') await nova.disable(svc.id, a.reason);
            else if (svc.status !== 'enabled') await nova.enable(svc.id);
            o = { type: a.type, ok: true, message: a.type === 'drainDisable' ? `disabled: ${a.reason}` : 'enabled' };
          } catch (err) {
            o = { type: a.type, ok: false, message: (err as Error).message };
          }
          done(o.ok ? 'ok' : 'failed');
          this.event(node, o.ok ? 'Normal' : 'Warning', a.type === 'drainDisable' ? (o.ok ? 'DrainServiceDisabled' : 'DrainDisableFailed') : (o.ok ? 'Undrained' : 'UndrainFailed'),
            `drain ${a.drainId}: ${o.ok ? (a.type === 'drainDisable' ? `nova-compute ${o.message}` : 'nova-compute enabled again: the host is back in service') : o.message.slice(0, 300)}`);
          const next = await this.outcome(node, o);
          if (o.ok && a.type === 'drainEnable') {
            await this.notifier.notify(next, policy, { type: 'notify', key: `undrained-${a.drainId}`, severity: 'info', subject: `[hm9k] ${name}: returned to service`, body: `Drain ${a.drainId} was ended with ${'hm9k.io/undrain'}; nova-compute is enabled again.` });
          }
          return next;
        }
        case 'drainTick':
          return await this.drainTick(node, policy!);
        case 'returnToService': {
          let o: Outcome;
          try {
            const nova = await this.deps.novaClient();
            const open = (await nova.migrations({ sourceCompute: node.spec.host, type: 'evacuation' })).filter((m) => m.status === 'done');
            const svc = (await nova.listServices(node.spec.host)).find((s) => s.host === node.spec.host);
            if (!svc) throw new Error(`no nova-compute service for host ${node.spec.host}`);
            if (open.length) {
              o = { type: 'returnToService', ok: false, waiting: true, message: `nova-compute has not restarted yet (${open.length} evacuation migration(s) still done)` };
            } else {
              try {
                if (svc.forced_down) await nova.forceDown(svc.id, false);
                if (svc.status !== 'enabled') await nova.enable(svc.id);
                o = { type: 'returnToService', ok: true, waiting: false, message: 'un-forced and enabled' };
              } catch (err) {
                const st = (err as { status?: number }).status;
                o = { type: 'returnToService', ok: false, waiting: true, message: st === 400 ? `Nova refused to un-force (400): nova-compute has not restarted yet` : (err as Error).message };
              }
            }
          } catch (err) {
            o = { type: 'returnToService', ok: false, waiting: true, message: (err as Error).message };
          }
          done(o.ok ? 'ok' : 'waiting');
          const next = await this.outcome(node, o);
          if (o.ok) {
            this.event(next, 'Normal', 'ReturnedToService', `fence ${a.fenceId} cleared; nova-compute un-forced and enabled`);
            await this.notifier.notify(next, policy, { type: 'notify', key: `returned-${a.fenceId}`, severity: 'info', subject: `[hm9k] ${name}: returned to service`, body: `Fence ${a.fenceId} was acknowledged, the host is up, nova-compute was un-forced and enabled. The node is Healthy.` });
          }
          return next;
        }
      }
    } catch (err) {
      done('error');
      // A status write that met a newer version (409) is retried on a fresh read: not an error.
      if (err instanceof ConflictError) log.info({ err: err.message }, 'status changed meanwhile: deciding again on a fresh read');
      else log.error({ err: (err as Error).message }, 'action failed');
      throw err;
    }
  }

  /** Shutting down (SIGTERM, or leadership lost): calls in progress were cut short by runtime.signal. */
  private interrupted(): boolean {
    return this.stopped || this.runtime.signal.aborted;
  }

  /**
   * An action cut short by shutdown is not a result: record nothing, so its intent (already written)
   * stays pending for the next leader, which reads the outside world again before acting.
   */
  private leavePending(node: ComputeNode, a: Action, log: Logger, message: string): ComputeNode {
    this.m.actions.inc({ type: a.type, result: 'interrupted' });
    log.warn({ message }, 'action interrupted by shutdown: no outcome recorded, its intent stays pending for the next leader');
    return node;
  }

  private assertPowerOffConfirmed(node: ComputeNode): void {
    const f = node.status?.fence;
    if (!f || stepState(f, 'confirmOff') !== 'succeeded' || !f.powerOffConfirmedAt) {
      throw new Error('refusing: power-off not confirmed for this fence');
    }
  }

  private async evacuate(node: ComputeNode, policy: ResolvedPolicy): Promise<ComputeNode> {
    this.assertPowerOffConfirmed(node);
    const nova = await this.deps.novaClient();
    if (!node.status?.evacuation) {
      const plan = await planEvacuation(nova, node.spec.host, policy, this.now());
      this.store.setServers(node.metadata.name, plan.total);
      node = await this.write(node, { ...node.status, evacuation: plan, servers: plan.total }, true);
      this.event(node, 'Normal', 'EvacuationStarted', `evacuating ${plan.total} server(s) from ${node.spec.host} at microversion ${plan.microversion}, ${policy.evacuation.concurrency} at a time${policy.evacuation.targetHost ? ` to ${policy.evacuation.targetHost}` : ''}`);
    }
    // Registered until its outcome is written, so that shutdown releases the Lease only after the
    // evacuate requests in flight have ended (or been recorded with an unknown outcome).
    let finish!: () => void;
    const tracked = new Promise<void>((r) => (finish = r));
    this.evacuationsInFlight.add(tracked);
    let r: Awaited<ReturnType<typeof evacuationTick>>;
    try {
      r = await evacuationTick(nova, node.status!.evacuation!, node.spec.host, policy, {
        now: this.now,
        log: (msg, extra) => this.log.info({ node: node.metadata.name, ...extra }, msg),
        write: async (e) => { node = await this.write(node, { ...node.status, evacuation: e }, true); },
        // A request with no answer is re-sent only after twice the HTTP timeout without a trace in Nova.
        settleMs: 2 * this.config.httpTimeoutMs,
        aborted: () => this.interrupted(),
      });
      node = await this.write(node, { ...node.status, evacuation: r.evacuation }, true);
    } finally {
      this.evacuationsInFlight.delete(tracked);
      finish();
    }
    if (r.finished) {
      const e = r.evacuation;
      node = await this.outcome(node, { type: 'evacuationFinished', ok: e.failed === 0, message: `${e.done}/${e.total} done, ${e.failed} failed` });
      this.event(node, e.failed ? 'Warning' : 'Normal', e.failed ? 'EvacuationIncomplete' : 'EvacuationDone', evacuationSummary(e));
      this.m.actions.inc({ type: 'evacuate', result: e.failed ? 'partial' : 'ok' });
    }
    return node;
  }

  /**
   * One drain tick (issue 12 item 4): one read of Nova, the pure per-server rules (drain/machine.ts),
   * the intent written, then os-migrateLive per server, then each answer recorded.
   */
  private async drainTick(node: ComputeNode, policy: ResolvedPolicy): Promise<ComputeNode> {
    const d0 = node.status?.drain;
    if (!d0 || d0.result) return node;
    const nova = await this.deps.novaClient();
    const host = node.spec.host;
    const view = await readDrainView(nova, host, d0, policy);
    const { onHost, microversion } = view;
    const { drain, requests } = drainTick(d0, host, view, policy, { now: this.now(), settleMs: 2 * this.config.httpTimeoutMs });
    this.store.setServers(node.metadata.name, onHost.length);
    // Intent first: the servers about to be requested are `requested` in status before any call.
    node = await this.write(node, { ...node.status, drain, servers: onHost.length }, true);
    if (!d0.planned && drain.planned) this.event(node, 'Normal', 'DrainPlanned', `drain ${drain.id}: ${drain.total} server(s) on ${host} to live-migrate at microversion ${drain.microversion}, ${policy.drain.concurrency} at a time`);
    let d: Drain = drain;
    let finish!: () => void;
    const tracked = new Promise<void>((r) => (finish = r));
    this.evacuationsInFlight.add(tracked);
    try {
      for (const r of requests) {
        if (this.interrupted()) break; // recorded as requested with no answer: the next leader asks Nova first
        try {
          await nova.migrateLive(r.id, { ...(r.host ? { host: r.host } : {}), microversion: d.microversion ?? microversion });
          d = applyMigrateAnswer(d, r.id, { kind: 'accepted' }, this.now());
          this.log.info({ node: node.metadata.name, server: r.id, host: r.host ?? 'scheduler' }, 'live migration requested');
        } catch (err) {
          const a = classifyMigrateError(err);
          d = applyMigrateAnswer(d, r.id, a, this.now());
          this.log.warn({ node: node.metadata.name, server: r.id, answer: a.kind, err: (err as Error).message }, 'os-migrateLive not accepted');
        }
      }
      if (requests.length) node = await this.write(node, { ...this.latest(node).status, drain: d }, true);
    } finally {
      this.evacuationsInFlight.delete(tracked);
      finish();
    }
    for (const s of d.servers) {
      const was = d0.servers.find((x) => x.id === s.id);
      if (s.state === was?.state) continue;
      if (s.state === 'migrated') this.log.info({ node: node.metadata.name, server: s.id, to: s.to }, 'server live-migrated');
      if (s.state === 'failed' || s.state === 'skipped') this.event(node, 'Warning', 'LiveMigrationFailed', `drain ${d.id}: server ${s.id} ${s.state}: ${s.error ?? ''}`.slice(0, 1000));
    }
    if (d.result && !d0.result) this.log.info({ node: node.metadata.name, drain: d.id, result: d.result }, `drain finished: ${drainSummary(d)}`);
    return node;
  }

  // FencePolicy reconciler --------------------------------------------------------------------
  async reconcilePolicy(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const fp = this.policiesInf.get(key);
    if (!fp) return;
    const e = this.policyEntry(fp);
    const matched = this.nodesInf.list().filter((n) => matchesSelector(fp.spec.nodeSelector, n.metadata.labels));
    const governed = matched.filter((n) => !n.spec.maintenance);
    const unhealthy = governed.filter((n) => isUnhealthy(this.snapshot(n, false), e.resolved ?? null));
    const healthy = governed.filter((n) => n.status?.phase === 'Healthy').length;
    const inFlight = governed.filter((n) => IN_FLIGHT_PHASES.includes(n.status?.phase as never)).length;
    const storm = e.resolved ? isStorm(e.resolved.safety.maxUnhealthy, governed.length, unhealthy.length) : false;
    const all = this.nodesInf.list().filter((n) => !n.spec.maintenance);
    const globalUnhealthy = all.filter((n) => isUnhealthy(this.snapshot(n, false), this.policyOf(n)?.policy ?? null)).length;
    const globalStorm = isStorm(this.config.globalMaxUnhealthy, all.length, globalUnhealthy);
    const now = this.now();
    const conds = fp.status?.conditions ?? [];
    const set = (list: Condition[], type: string, status: Condition['status'], reason: string, message: string): Condition[] => {
      const old = list.find((c) => c.type === type);
      const c: Condition = { type, status, reason, message, lastTransitionTime: old && old.status === status ? old.lastTransitionTime : iso(now), ...(fp.metadata.generation !== undefined ? { observedGeneration: fp.metadata.generation } : {}) };
      return [...list.filter((x) => x.type !== type), c].sort((a, b) => a.type.localeCompare(b.type));
    };
    let c = set(conds, 'Ready', e.problems.length ? 'False' : 'True', e.problems.length ? 'Invalid' : 'Valid', e.problems.length ? e.problems.join('; ') : 'policy is valid');
    const stormActive = storm || globalStorm;
    // Right after start no Consul cluster has answered yet: every node is unknown, so unhealthy, and
    // fencing is blocked as it must be; but that is not a storm to alarm anyone about.
    const watched = NETWORKS.filter((net) => e.resolved?.networks[net]);
    const awaiting = unhealthy.filter((n) => {
      const obs = this.snapshot(n, false).obs.networks;
      return watched.some((net) => obs[net] === undefined);
    }).length;
    const observing = stormActive && awaiting === unhealthy.length;
    c = set(c, 'StormActive', stormActive ? 'True' : 'False', observing ? 'AwaitingObservations' : stormActive ? (storm ? 'TooManyUnhealthy' : 'GlobalCeiling') : 'WithinLimits',
      observing
        ? `waiting for the first Consul observations of ${awaiting} of ${governed.length} nodes: no node is fenced`
        : stormActive
        ? `${storm ? `${unhealthy.length} of ${governed.length} nodes unhealthy exceeds maxUnhealthy ${e.resolved?.safety.maxUnhealthy}` : `${globalUnhealthy} of ${all.length} nodes unhealthy exceeds the global ceiling ${this.config.globalMaxUnhealthy}`}: no node is fenced`
        : `${unhealthy.length} of ${governed.length} nodes unhealthy`);
    const paused = !!e.resolved && (e.resolved.safety.paused || e.resolved.safety.dryRun);
    c = set(c, 'Paused', paused ? 'True' : 'False', e.resolved?.safety.paused ? 'Paused' : e.resolved?.safety.dryRun ? 'DryRun' : 'Active', e.resolved?.safety.paused ? 'policy paused: no action' : e.resolved?.safety.dryRun ? 'dry run: decisions are reported, nothing is done' : 'acting');
    this.m.storm.set({ policy: fp.metadata.name }, stormActive && !observing ? 1 : 0);
    const prevStorm = conds.find((x) => x.type === 'StormActive');
    const wasStorm = prevStorm?.status === 'True' && prevStorm.reason !== 'AwaitingObservations';
    if (stormActive && !observing && !wasStorm) this.runtime.events.record(fp, 'Warning', 'StormActive', 'StormProtection', c.find((x) => x.type === 'StormActive')!.message);
    if (!stormActive && wasStorm) this.runtime.events.record(fp, 'Normal', 'StormEnded', 'StormProtection', `storm over: ${c.find((x) => x.type === 'StormActive')!.message}; fencing allowed again`);
    const status: FencePolicyStatus = {
      ...(fp.metadata.generation !== undefined ? { observedGeneration: fp.metadata.generation } : {}),
      matchedNodes: matched.length,
      healthyNodes: healthy,
      unhealthyNodes: unhealthy.length,
      remediationsInFlight: inFlight,
      unhealthy: unhealthy.map((n) => n.metadata.name).sort().slice(0, 50),
      conditions: c,
    };
    if (!equalJson(fp.status ?? {}, status)) await this.runtime.status.patchStatus('FencePolicy', fp, status);
    this.m.phase.reset();
    for (const n of this.nodesInf.list()) this.m.phase.inc({ phase: n.status?.phase ?? 'none' });
    return { requeueAfterMs: this.config.resyncMs };
  }
}

/** One line per outcome kind: where the servers went, which failed and why (bounded for an Event note). */
export function evacuationSummary(e: NonNullable<ComputeNodeStatus['evacuation']>): string {
  const to = new Map<string, number>();
  for (const s of e.servers) if (s.state === 'done' && s.to) to.set(s.to, (to.get(s.to) ?? 0) + 1);
  const failed = e.servers.filter((s) => s.state === 'failed' || s.state === 'skipped');
  const parts = [`${e.done} of ${e.total} server(s) evacuated${to.size ? ` (${[...to].map(([h, n]) => `${n} to ${h}`).join(', ')})` : ''}`];
  // e.failed, not the list: the list is bounded (failures beyond it are in e.omitted), the count exact.
  if (e.failed) parts.push(`${e.failed} failed: ${failed.slice(0, 5).map((s) => `${s.id} ${s.state}${s.error ? ` (${s.error.slice(0, 80)})` : ''}`).join('; ')}${e.failed > 5 ? '; ...' : ''}`);
  return parts.join('; ');
}
