// The drain state machine (issue 12 item 4): live migration of a host's servers while it still runs.
// Pure, like fence/machine.ts: no I/O, `now` is the only time. Two halves:
//  - drainRules: the node-level decisions, run inside the fence machine's decide() once the base
//    flow says the host itself is fine (every watched network up, power not off, no fence): start,
//    disable nova-compute, migrate, finish (leave disabled, or power off as a fence), undrain, and
//    the hand-over to the fence path when the host fails mid-drain.
//  - drainTick / applyMigrateAnswer: the per-server rules over one read of Nova (servers on the host,
//    live-migration migrations, the servers already requested), which the shell (engine.ts) executes,
//    intent first.
// Each rule cites its source: "#12.n" is issue 12 item n; masakari / Nova references are named.
import {
  DRAIN_ANNOTATION,
  DRAIN_REASON_PREFIX,
  UNDRAIN_ANNOTATION,
  type ComputeNodeStatus,
  type DrainedServer,
  type Phase,
} from '../../api/index.js';
import type { NovaMigration, NovaServer } from '../../clients/nova.js';
import type { ResolvedPolicy } from '../config.js';
import type { Action, DecideContext, NodeSnapshot } from '../fence/types.js';

export type Drain = NonNullable<ComputeNodeStatus['drain']>;

const iso = (ms: number) => new Date(ms).toISOString();
/** The status list's maxItems (src/api/nodes.ts DrainedServer list). */
export const MAX_DRAIN_SERVERS = 200;

export function drainIdFor(name: string, now: number): string {
  return `${name.slice(0, 40)}-d${now.toString(36)}`;
}

/** What the fence machine lends the drain rules (its phase, Event, notification and gate helpers). */
export interface DrainCtx {
  node: NodeSnapshot;
  policy: ResolvedPolicy;
  c: DecideContext;
  status: ComputeNodeStatus;
  actions: Action[];
  phase(p: Phase, waitingFor?: string): void;
  event(type: 'Normal' | 'Warning', reason: string, note: string): void;
  notify(key: string, severity: 'info' | 'warning' | 'critical', what: string, body: string): void;
  /** Why a new remediation may not start (paused, storm, concurrency), or undefined. */
  gate(): string | undefined;
  /** paused or dry run: no external action (issue 9 item 5). */
  hold(): 'policy paused' | 'dry run' | undefined;
  /** Records what a hold is holding (the Paused condition). */
  held(what: string): void;
  /** Starts a fence with this reason (the whenEmpty PowerOff path). */
  startFence(reason: string): void;
}

const isFinal = (s: DrainedServer) => s.state === 'migrated' || s.state === 'failed' || s.state === 'skipped';

export function recount(d: Drain): Drain {
  const migrated = d.servers.filter((s) => s.state === 'migrated').length;
  const failed = d.servers.filter((s) => s.state === 'failed' || s.state === 'skipped').length;
  const total = Math.max(d.total, d.servers.length);
  return { ...d, total, migrated, failed, left: total - migrated - failed };
}

/** A drain still moving servers (not finished, not handed over). */
export function drainActive(d: Drain | undefined): boolean {
  return !!d && !d.result;
}

function serverLine(s: DrainedServer): string {
  return `  ${s.id}: ${s.state}${s.to ? ` -> ${s.to}` : ''}${s.error ? ` (${s.error})` : ''}`;
}

export function drainSummary(d: Drain): string {
  return `${d.migrated} of ${d.total} server(s) live-migrated, ${d.failed} need an operator, ${d.left} left`;
}

/** Why a drain should start now, or undefined: the operator annotation (#12.5) or a hardware Drain rule (#12.3). */
function trigger(x: DrainCtx): { source: 'operator' | 'hardware'; reason: string; operatorReason?: string } | undefined {
  const ann = x.node.annotations[DRAIN_ANNOTATION]?.trim();
  // #12.5: an annotation value starts one drain; the value that was undrained never starts another
  // (the annotation may stay in place), a new value does.
  if (ann && ann !== x.status.undrained?.operatorReason) return { source: 'operator', reason: `operator drain (${DRAIN_ANNOTATION}=${ann.slice(0, 200)})`, operatorReason: ann.slice(0, 256) };
  const hw = x.node.obs.hardware?.decision;
  // #12.3/#12.4: a Drain rule that held `samples` readings, on a BMC readable now (never on old data).
  if (hw?.action === 'Drain' && hw.bmc === 'readable' && !x.status.undrained?.hardwareHeld) {
    return { source: 'hardware', reason: `hardware: ${hw.reasons.filter((r) => r.action === 'Drain').map((r) => r.detail).join('; ').slice(0, 400)}` };
  }
  return undefined;
}

/**
 * The drain rules, run by decide() after the base flow. `hostOk`: the base flow left the host
 * Healthy or Degraded with every watched network up and power not off (a drain moves servers off a
 * running host; a failing one belongs to the fence path). Returns true when a drain owns the phase.
 */
export function drainRules(x: DrainCtx, hostOk: boolean): boolean {
  const owned = drainRulesInner(x, hostOk);
  // #12.5: an undrain naming another drain is stale (like a stale fence acknowledgement): ignored,
  // said once (Event) and in waitingFor while it stays.
  const d = x.status.drain;
  const undrain = x.node.annotations[UNDRAIN_ANNOTATION]?.trim();
  if (owned && d && undrain && undrain !== d.id && undrain !== x.status.undrained?.id) {
    const note = `${UNDRAIN_ANNOTATION}=${undrain.slice(0, 80)} does not match drain id ${d.id}: ignored`;
    if (!x.node.status.waitingFor?.includes(note)) x.event('Warning', 'UndrainRejected', note);
    x.status.waitingFor = `${x.status.waitingFor ? `${x.status.waitingFor}; ` : ''}${note}`.slice(0, 512);
  }
  return owned;
}

function drainRulesInner(x: DrainCtx, hostOk: boolean): boolean {
  const { status, c, node, policy } = x;
  const hw = node.obs.hardware?.decision;
  // #12.5: a persisting hardware fault at undrain does not drain again until it has cleared once.
  if (status.undrained?.hardwareHeld && hw?.bmc === 'readable' && hw.action !== 'Drain') {
    status.undrained = { ...status.undrained };
    delete status.undrained.hardwareHeld;
  }
  // Rebuild a lost drain record from Nova's marker (as the fence latch is, architecture: the latch
  // also lives in Nova): the host stays disabled and its servers are read from Nova again.
  const marker = node.obs.nova?.disabledReason;
  const markerId = marker?.startsWith(DRAIN_REASON_PREFIX) ? marker.slice(DRAIN_REASON_PREFIX.length).trim() : undefined;
  if (!status.drain && markerId && markerId !== status.undrained?.id && node.obs.nova?.status === 'disabled') {
    status.drain = recount({
      id: markerId, reason: 'rebuilt from the Nova disabled_reason marker', source: 'operator', startedAt: iso(c.now),
      leaseHolder: c.lease.holder, leaseTransitions: c.lease.transitions, disabled: 'succeeded', total: 0, migrated: 0, failed: 0, left: 0, servers: [],
    });
    x.event('Warning', 'DrainRebuilt', `Nova shows "${marker}": drain record rebuilt; servers still on the host are read from Nova again`);
  }
  let d = status.drain;
  if (!d) {
    const t = trigger(x);
    if (!t) return false;
    if (!hostOk) return false; // the base flow owns a failing host (#12.4: the fence path)
    const what = `would drain (${t.reason})`;
    // #12.5: no drain when Nova is unreadable (nothing may be decided blind: architecture).
    const nova = node.obs.nova;
    const blocked = !nova || nova.apiState === 'unknown' ? 'Nova unreadable' : x.gate() ?? (policy.safety.dryRun ? 'dry run' : undefined);
    if (blocked) {
      if (x.hold()) x.held(what);
      const waiting = `${what}; held: ${blocked}`;
      if (node.status.waitingFor !== waiting.slice(0, 512)) x.event('Warning', 'DrainHeld', waiting);
      x.phase(status.phase ?? 'Healthy', waiting);
      x.notify(`drain-held-${t.source}`, 'warning', 'drain held', `${what}.\nhm9k did not start it: ${blocked}.`);
      return true;
    }
    const id = drainIdFor(node.name, c.now);
    d = status.drain = recount({
      id, reason: t.reason.slice(0, 512), source: t.source, ...(t.operatorReason ? { operatorReason: t.operatorReason } : {}), startedAt: iso(c.now),
      leaseHolder: c.lease.holder, leaseTransitions: c.lease.transitions, disabled: 'pending', total: 0, migrated: 0, failed: 0, left: 0, servers: [],
    });
    x.phase('Draining', 'disabling nova-compute with the drain marker');
    x.actions.push({ type: 'drainDisable', drainId: id, reason: `${DRAIN_REASON_PREFIX}${id}` });
    x.event('Warning', 'DrainStarted', `drain ${id}: ${t.reason}; disabling nova-compute and live-migrating every server`);
    // #12.6: an email when a drain starts.
    x.notify(`drain-start-${id}`, 'warning', 'draining (live migration)',
      `hm9k is draining this host while it still runs: ${t.reason}\n` +
      `nova-compute is disabled ("${DRAIN_REASON_PREFIX}${id}") and every server is live-migrated, ${policy.drain.concurrency} at a time` +
      `${policy.drain.targetHosts.length ? ` to ${policy.drain.targetHosts.join(', ')}` : ' (the scheduler picks the hosts)'}.\n` +
      `When it is done: ${policy.drain.whenEmpty === 'PowerOff' ? 'the host is powered off through the BMC (a fence).' : 'the host stays disabled for maintenance.'}\n` +
      `Return it to service later with:\n  kubectl annotate computenode ${node.name} ${UNDRAIN_ANNOTATION}=${id}`);
    return true;
  }
  if (d.result === 'handedOver') return false; // the fence path has it
  if (!hostOk) {
    // The host is failing (or unknown) mid-drain: nothing more is requested; the base flow decides
    // (Suspect, recovery, fence). Migrations already running continue in Nova and are read later.
    if (drainActive(d)) status.waitingFor = `${status.waitingFor ?? status.phase}; drain ${d.id} held while the host is not healthy`.slice(0, 512);
    return false;
  }
  // #12.5 undrain: the annotation names this drain; only once no migration is in flight.
  const undrain = node.annotations[UNDRAIN_ANNOTATION]?.trim();
  if (undrain === d.id) {
    const inFlight = d.servers.filter((s) => s.state === 'requested').length;
    if (inFlight) {
      x.phase('Draining', `undrain requested: waiting for ${inFlight} live migration(s) in flight`);
      return true;
    }
    const h = x.hold();
    if (h) {
      x.held(`would return drain ${d.id} to service`);
      x.phase(d.result ? 'Drained' : 'Draining', `${h}: would enable nova-compute (undrain ${d.id})`);
      return true;
    }
    status.drain = { ...d, enable: 'pending' };
    x.phase(d.result ? 'Drained' : 'Draining', 'undrain: enabling nova-compute');
    x.actions.push({ type: 'drainEnable', drainId: d.id });
    return true;
  }
  const h = x.hold();
  if (d.disabled !== 'succeeded') {
    if (h) {
      x.held(`drain ${d.id}: would disable nova-compute`);
      x.phase('Draining', `${h}: would disable nova-compute (drain ${d.id}); held`);
      return true;
    }
    // A PUT of the same state: repeating it is harmless (the disable step is idempotent).
    x.phase('Draining', `disabling nova-compute with the drain marker${d.disableMessage && d.disabled === 'failed' ? ` (last try: ${d.disableMessage})` : ''}`);
    x.actions.push({ type: 'drainDisable', drainId: d.id, reason: `${DRAIN_REASON_PREFIX}${d.id}` });
    return true;
  }
  if (!d.result) {
    if (h) {
      x.held(`drain ${d.id}: would live-migrate servers`);
      x.phase('Draining', `${h}: live migrations held (${drainSummary(d)})`);
      return true;
    }
    x.phase('Draining', d.planned ? `live-migrating: ${drainSummary(d)}` : 'reading the servers on the host from Nova');
    x.actions.push({ type: 'drainTick', drainId: d.id });
    return true;
  }
  // Finished (#12.4): every server migrated, failed or skipped.
  const arrived = node.status.phase !== 'Drained';
  const empty = d.result === 'empty';
  if (arrived) {
    const hands = d.servers.filter((s) => s.state === 'failed' || s.state === 'skipped');
    x.event(empty ? 'Normal' : 'Warning', empty ? 'DrainComplete' : 'DrainIncomplete', `drain ${d.id}: ${drainSummary(d)}`);
    // #12.6: an email when the drain ends, with the servers that need hands.
    x.notify(`drain-end-${d.id}`, empty ? 'info' : 'warning', empty ? `drained, ${d.migrated} server(s) live-migrated` : `drain incomplete, ${d.failed} server(s) need an operator`,
      `Drain ${d.id} (${d.reason}) is over: ${drainSummary(d)}.\n` +
      (hands.length ? `Servers that need your attention (still on the host):\n${hands.map(serverLine).join('\n')}\n` : '') +
      (d.migrated ? `Live-migrated:\n${d.servers.filter((s) => s.state === 'migrated').slice(0, 50).map(serverLine).join('\n')}\n` : '') +
      (empty && policy.drain.whenEmpty === 'PowerOff' ? 'The host is empty: hm9k powers it off through the BMC (drain.whenEmpty PowerOff).\n' : `nova-compute stays disabled ("${DRAIN_REASON_PREFIX}${d.id}").\n`) +
      `Return it to service with:\n  kubectl annotate computenode ${node.name} ${UNDRAIN_ANNOTATION}=${d.id}`);
  }
  if (empty && policy.drain.whenEmpty === 'PowerOff') {
    if (!node.spec.bmc) {
      x.phase('Drained', 'drained; whenEmpty PowerOff but the node has no spec.bmc: left disabled');
      return true;
    }
    const g = x.gate() ?? (h ? h : undefined);
    if (g) {
      if (h) x.held(`drain ${d.id}: would power the empty host off`);
      x.phase('Drained', `drained; power-off held: ${g}`);
      return true;
    }
    // #12.4: power off through the BMC, confirmed, as a fence (the fence path: latched until acknowledged).
    x.startFence(`drain ${d.id} finished, host empty: powered off per drain.whenEmpty PowerOff`);
    return true;
  }
  x.phase('Drained', `drained (${drainSummary(d)}); nova-compute left disabled: return to service with ${UNDRAIN_ANNOTATION}=${d.id}`);
  return true;
}

/** #12.4: the host failed mid-drain; the fence path takes over and evacuates only what is still there. */
export function handOver(x: Pick<DrainCtx, 'status' | 'c' | 'event'>): void {
  const d = x.status.drain;
  if (!d || d.result) return;
  x.status.drain = recount({ ...d, result: 'handedOver', finishedAt: iso(x.c.now) });
  x.event('Warning', 'DrainHandedOver', `drain ${d.id} handed over to the fence path: ${drainSummary(x.status.drain)}; servers still on the host are evacuated, migrated ones are not touched`);
}

// Per-server rules ---------------------------------------------------------------------------

/** One read of Nova for one drain tick. */
export interface DrainView {
  /** Servers whose host is the draining host (GET /servers/detail?host=). */
  onHost: NovaServer[];
  /** Listed servers not on the host any more, by id: where they are now (null: 404, deleted). */
  elsewhere: Map<string, NovaServer | null>;
  /** live-migration migrations from this host (GET /os-migrations?migration_type=live-migration&source_compute=). */
  migrations: NovaMigration[];
  /** The microversion os-migrateLive is sent at (min(policy, Nova's max)). */
  microversion: string;
}

export interface MigrateRequest {
  id: string;
  host?: string;
}

/** Servers of the record that are not on the host: the shell looks each up (GET /servers/{id}). */
export function lookupsNeeded(d: Drain, onHost: readonly NovaServer[]): string[] {
  const here = new Set(onHost.map((s) => s.id));
  return d.servers.filter((s) => !isFinal(s) && !here.has(s.id)).map((s) => s.id);
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function latest(migs: NovaMigration[]): NovaMigration | undefined {
  return [...migs].sort((a, b) => Number(b.id) - Number(a.id))[0];
}

/** Nova's terminal failure states of a migration (nova/objects/migration.py). */
const MIG_FAILED = new Set(['error', 'failed', 'cancelled']);

/** Why a server cannot be live-migrated now (#12.4: paused, shelved, error... reported), or undefined. */
function notMigratable(s: NovaServer): string | undefined {
  const vm = s['OS-EXT-STS:vm_state'] ?? s.status.toLowerCase();
  // Only running servers are live-migrated (the issue lists paused as one to report: a paused guest
  // is left for its owner). Nova itself answers 409 for stopped, shelved, error and the rest.
  if (vm !== 'active') return `vm_state ${vm}: cannot be live-migrated (move it by hand, e.g. cold migration)`;
  return undefined;
}

export interface TickInput {
  now: number;
  /** A request with no answer is sent again only after this long without a trace in Nova. */
  settleMs: number;
}

/**
 * One tick over one read of Nova: plans the servers (first tick), tracks requested ones through
 * their migration and their host, picks the next ones up to the concurrency. Returns the new record
 * (intent: the servers to request are already `requested` with `since`) and the requests to send.
 */
export function drainTick(d0: Drain, host: string, view: DrainView, policy: ResolvedPolicy, io: TickInput): { drain: Drain; requests: MigrateRequest[] } {
  let d = structuredClone(d0);
  const now = io.now;
  const timeout = policy.drain.perServerTimeoutMs;
  if (!d.planned) {
    // #12.4 plan: every server on the host, in id order. Live migrations Nova already holds for the
    // host belong to earlier drains: only later ids (Nova's ids only grow) count for this one.
    const floor = view.migrations.reduce((m, x) => Math.max(m, Number(x.id) || 0), 0);
    d = { ...d, planned: true, microversion: view.microversion, priorMigrationId: String(floor), total: view.onHost.length };
  }
  const prior = Number(d.priorMigrationId ?? 0);
  const migs = view.migrations.filter((m) => m.source_compute === host && Number(m.id) > prior);
  const migOf = (id: string) => latest(migs.filter((m) => m.instance_uuid === id));
  // Never forgotten (#12.4): a server found on the host and not in the record is added (a host that
  // is disabled gets none from the scheduler, but a migration back or an operator's move can).
  const known = new Set(d.servers.map((s) => s.id));
  for (const s of [...view.onHost].sort(byId)) {
    if (known.has(s.id) || d.servers.length >= MAX_DRAIN_SERVERS) continue;
    d.servers.push({ id: s.id, state: 'pending' });
  }
  d.total = Math.max(d.total, d.servers.length);
  const onHost = new Map(view.onHost.map((s) => [s.id, s]));
  const where = (id: string): NovaServer | null | undefined => onHost.get(id) ?? view.elsewhere.get(id);
  // 1. Progress of requested servers (and re-checks after a restart: ask Nova before repeating).
  d.servers = d.servers.map((s) => {
    if (s.state !== 'requested') return s;
    const srv = where(s.id);
    const mig = migOf(s.id);
    const withMig = mig ? { migrationId: String(mig.id) } : {};
    if (srv === null) return { ...s, ...withMig, state: 'failed', error: 'server no longer exists in Nova' };
    if (srv === undefined) return s; // not read this tick: decide next tick
    const at = srv['OS-EXT-SRV-ATTR:host'];
    const task = srv['OS-EXT-STS:task_state'] ?? null;
    if (at && at !== host && !task) {
      // Migrated: its host changed and Nova is done with it (#12.4 tracking through the host).
      const out: DrainedServer = { ...s, ...withMig, state: 'migrated', to: at };
      delete out.error;
      delete out.answer;
      return out;
    }
    if (mig && MIG_FAILED.has(mig.status) && !task) {
      // Nova rolled the live migration back; the server runs on where it was: it needs an operator.
      return { ...s, ...withMig, state: 'failed', error: `live migration ${mig.id} ${mig.status}: the server still runs on ${host}` };
    }
    const sentAt = Date.parse(s.since ?? d.startedAt);
    const noTrace = !mig && at === host && !task;
    if (noTrace && s.answer !== 'accepted' && now - sentAt >= io.settleMs) {
      // Recorded, no answer seen and no trace in Nova for the settle window: the request never
      // reached Nova (a restart between intent and request): it is requested again.
      const out: DrainedServer = { ...s, state: 'pending' };
      delete out.since;
      delete out.answer;
      return out;
    }
    if (now > sentAt + timeout) {
      return { ...s, ...withMig, state: 'failed', error: `not live-migrated within drain.perServerTimeout (${timeout} ms)${task ? `, task_state ${task}` : ''}${mig ? `, migration ${mig.id} ${mig.status}` : ''}: needs an operator` };
    }
    return { ...s, ...withMig };
  });
  // 2. Start pending servers up to the concurrency (#12.4 bounded concurrency).
  const requests: MigrateRequest[] = [];
  let inFlight = d.servers.filter((s) => s.state === 'requested').length;
  const targets = policy.drain.targetHosts;
  let rr = d.servers.filter((s) => s.state !== 'pending').length;
  d.servers = d.servers.map((s) => {
    if (s.state !== 'pending' || inFlight >= policy.drain.concurrency) return s;
    const srv = where(s.id);
    if (srv === undefined) return s;
    if (srv === null) return { ...s, state: 'skipped', error: 'server no longer exists in Nova' };
    const mig = migOf(s.id);
    const at = srv['OS-EXT-SRV-ATTR:host'];
    if ((mig && !MIG_FAILED.has(mig.status)) || (at && at !== host)) {
      // Already being migrated, or moved: never requested twice; tracked from here.
      inFlight++;
      return { ...s, state: 'requested', since: s.since ?? iso(now), ...(mig ? { migrationId: String(mig.id) } : {}) };
    }
    const why = notMigratable(srv);
    if (why) return { ...s, state: 'skipped', error: why };
    const task = srv['OS-EXT-STS:task_state'];
    if (!task && s.since && now > Date.parse(s.since) + timeout) {
      // Refused as busy (409) for the whole deadline: reported, never retried forever.
      return { ...s, state: 'skipped', error: `os-migrateLive refused for more than drain.perServerTimeout${s.error ? ` (${s.error})` : ''}`.slice(0, 512) };
    }
    if (task) {
      // Busy (Nova would answer 409): wait, under the per-server deadline (#12.4: task_state reported).
      const since = s.since ?? iso(now);
      if (now > Date.parse(since) + timeout) return { ...s, state: 'skipped', error: `task_state ${task} for more than drain.perServerTimeout: cannot be live-migrated` };
      return { ...s, since };
    }
    inFlight++;
    // Intent first: once written, a restart treats this request as sent with an unknown outcome.
    const host2 = targets.length ? targets[rr++ % targets.length] : undefined;
    requests.push({ id: s.id, ...(host2 ? { host: host2 } : {}) });
    const out: DrainedServer = { ...s, state: 'requested', since: iso(now) };
    delete out.answer;
    delete out.error;
    return out;
  });
  d = recount(d);
  if (d.servers.every(isFinal)) {
    const stillThere = view.onHost.filter((s) => !d.servers.some((x) => x.id === s.id && x.state === 'migrated')).length;
    d = { ...d, finishedAt: iso(now), result: d.failed === 0 && stillThere === 0 ? 'empty' : 'incomplete' };
  }
  return { drain: d, requests };
}

/** Nova's answer to one os-migrateLive, folded into the record. */
export type MigrateAnswer =
  | { kind: 'accepted' }
  /** Timeout, lost connection, 5xx, shutdown: sent, outcome unknown. */
  | { kind: 'unknown'; message: string }
  /** 409: busy or in a state Nova refuses now. */
  | { kind: 'conflict'; message: string }
  /** Any other 4xx: host not found, No valid host (before 2.34), bad request. */
  | { kind: 'refused'; status: number; message: string };

export function classifyMigrateError(err: unknown): MigrateAnswer {
  const status = (err as { status?: number }).status ?? 0;
  const message = ((err as Error).message ?? String(err)).slice(0, 400);
  if (status === 409) return { kind: 'conflict', message };
  if (status >= 400 && status < 500) return { kind: 'refused', status, message };
  return { kind: 'unknown', message };
}

export function applyMigrateAnswer(d: Drain, id: string, a: MigrateAnswer, now: number): Drain {
  const servers = d.servers.map((s): DrainedServer => {
    if (s.id !== id) return s;
    switch (a.kind) {
      case 'accepted':
        return { ...s, answer: 'accepted' };
      case 'unknown':
        // The progress check asks Nova; re-sent only after the settle window without a trace.
        return { ...s, answer: 'unknown', error: a.message.slice(0, 512) };
      case 'conflict': {
        // Nothing was started: asked again next tick, under the deadline counted from the first try.
        const out: DrainedServer = { ...s, state: 'pending', since: s.since ?? iso(now), error: `409: ${a.message}`.slice(0, 512) };
        delete out.answer;
        return out;
      }
      case 'refused': {
        const out: DrainedServer = { ...s, state: 'failed', error: `${a.status}: ${a.message}`.slice(0, 512) };
        delete out.answer;
        return out;
      }
    }
  });
  return recount({ ...d, servers });
}
