// The fence state machine: a pure function of (node snapshot, policy, fleet summary, context).
// No I/O, no clock reads: `ctx.now` is the only time. The shell writes `status` first (intent) and
// then runs `actions`, reporting each outcome through applyOutcome.
import {
  ACK_FENCE_ANNOTATION,
  FENCE_REASON_PREFIX,
  NETWORKS,
  type ComputeNodeStatus,
  type Condition,
  type NetworkName,
  type Phase,
} from '../../api/index.js';
import { maxUnhealthyAllowed, type ResolvedPolicy } from '../config.js';
import { drainActive, drainRules, handOver, type DrainCtx } from '../drain/machine.js';
import type { Action, DecideContext, Decision, FleetSummary, NodeSnapshot, Outcome } from './types.js';

type FenceRecord = NonNullable<ComputeNodeStatus['fence']>;
type StepName = FenceRecord['steps'][number]['name'];
type StepState = FenceRecord['steps'][number]['state'];

const iso = (ms: number) => new Date(ms).toISOString();
const ms = (t: string | undefined) => (t ? Date.parse(t) : NaN);

/** Phases that count towards maxConcurrentRemediations (a drain counts too: issue 12 item 5). */
export const IN_FLIGHT_PHASES: readonly Phase[] = ['Recovering', 'Draining', 'Fencing', 'Evacuating'];

export function fenceIdFor(name: string, now: number): string {
  // Deterministic from (node, time): unique per node since one fence per node is latched.
  return `${name.slice(0, 40)}-${now.toString(36)}`;
}

export function isStorm(value: number | string, total: number, unhealthy: number): boolean {
  return unhealthy > maxUnhealthyAllowed(value, total);
}

export function stepState(fence: FenceRecord | undefined, name: StepName): StepState | undefined {
  return fence?.steps.find((s) => s.name === name)?.state;
}

function setStep(fence: FenceRecord, name: StepName, state: StepState, now: number, message?: string): FenceRecord {
  const steps = fence.steps.filter((s) => s.name !== name);
  steps.push({ name, state, at: iso(now), ...(message ? { message: message.slice(0, 512) } : {}) });
  const order: StepName[] = ['powerOff', 'confirmOff', 'forceDown', 'disable', 'evacuate'];
  steps.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  return { ...fence, steps };
}

function setCondition(conds: Condition[], type: string, status: Condition['status'], reason: string, message: string, now: number, generation?: number): Condition[] {
  const old = conds.find((c) => c.type === type);
  const c: Condition = {
    type,
    status,
    reason,
    message: message.slice(0, 1024),
    lastTransitionTime: old && old.status === status ? old.lastTransitionTime : iso(now),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
  return [...conds.filter((x) => x.type !== type), c].sort((a, b) => a.type.localeCompare(b.type));
}

/** Is the node unhealthy for storm counting? Unknown counts as unhealthy. */
export function isUnhealthy(node: NodeSnapshot, policy: ResolvedPolicy | null): boolean {
  if (node.spec.maintenance) return false;
  if (!policy) return true;
  for (const n of NETWORKS) {
    if (!policy.networks[n]) continue;
    const o = node.obs.networks[n];
    if (!o || o.state !== 'up') return true;
  }
  if (node.obs.power && node.obs.power.state !== 'on') return true;
  if (node.status.fence && !node.status.fence.acknowledged) return true;
  // A drained or draining host is capacity gone: it counts for storm protection (issue 12 item 5).
  if (node.status.drain && node.status.drain.result !== 'handedOver') return true;
  return false;
}

interface Ctx {
  node: NodeSnapshot;
  policy: ResolvedPolicy;
  fleet: FleetSummary;
  c: DecideContext;
  status: ComputeNodeStatus;
  actions: Action[];
  /** What a paused or dry-run policy is holding (the Paused condition says it). */
  held?: string;
  /** Why an acknowledgement was refused (the Acknowledged condition says it). */
  ackRefused?: string;
}

function subjectFor(node: NodeSnapshot, what: string) {
  return `[hm9k] ${node.name}: ${what}`;
}

function notify(x: Ctx, key: string, severity: 'info' | 'warning' | 'critical', what: string, body: string) {
  x.actions.push({ type: 'notify', key, severity, subject: subjectFor(x.node, what), body: `Node: ${x.node.name} (nova host ${x.node.spec.host})\n${body}` });
}

function event(x: Ctx, eventType: 'Normal' | 'Warning', reason: string, note: string) {
  x.actions.push({ type: 'event', eventType, reason, note });
}

function phase(x: Ctx, p: Phase, waitingFor?: string) {
  if (x.status.phase !== p) x.status.phaseSince = iso(x.c.now);
  x.status.phase = p;
  if (waitingFor) x.status.waitingFor = waitingFor.slice(0, 512);
  else delete x.status.waitingFor;
}

/**
 * Why a new remediation may not start now, or undefined when it may. Concurrency: a drain waits for
 * every remediation in flight, drains included; a recovery or a fence does not wait for drains (a
 * planned live migration elsewhere must not keep a failed host from being fenced for the length of
 * a drain); both still count draining hosts as unhealthy for the storm check.
 */
function remediationGate(x: Ctx, fence: boolean, forDrain = false): string | undefined {
  const s = x.policy.safety;
  if (s.paused) return 'policy paused';
  if (fence) {
    if (isStorm(s.maxUnhealthy, x.fleet.policy.matched, x.fleet.policy.unhealthy)) {
      return `storm: ${x.fleet.policy.unhealthy} of ${x.fleet.policy.matched} nodes unhealthy exceeds maxUnhealthy ${s.maxUnhealthy}`;
    }
    if (isStorm(x.c.globalMaxUnhealthy, x.fleet.global.total, x.fleet.global.unhealthy)) {
      return `storm: ${x.fleet.global.unhealthy} of ${x.fleet.global.total} nodes unhealthy across all policies exceeds the global ceiling ${x.c.globalMaxUnhealthy}`;
    }
  }
  const policyBusy = x.fleet.policy.inFlight - (forDrain ? 0 : x.fleet.policy.draining ?? 0);
  const globalBusy = x.fleet.global.inFlight - (forDrain ? 0 : x.fleet.global.draining ?? 0);
  if (policyBusy >= s.maxConcurrentRemediations) return `maxConcurrentRemediations (${s.maxConcurrentRemediations}) reached for the policy`;
  if (globalBusy >= x.c.globalMaxConcurrentRemediations) return `global maxConcurrentRemediations (${x.c.globalMaxConcurrentRemediations}) reached`;
  return undefined;
}

function observe(x: Ctx) {
  const { node, policy, c } = x;
  const st = x.status;
  const networks: NonNullable<ComputeNodeStatus['networks']> = {};
  for (const n of NETWORKS) {
    if (!policy.networks[n]) continue;
    const o = node.obs.networks[n];
    networks[n] = o
      ? { state: o.state, since: iso(o.since), ...(o.state !== 'up' && o.reason ? { reason: o.reason.slice(0, 512) } : {}) }
      : { state: 'unknown', reason: 'not observed yet' };
  }
  st.networks = networks;
  const nova = node.obs.nova;
  if (nova) {
    st.nova = {
      apiState: nova.apiState,
      ...(nova.status ? { status: nova.status } : {}),
      ...(nova.forcedDown !== undefined ? { forcedDown: nova.forcedDown } : {}),
      ...(nova.disabledReason ? { disabledReason: nova.disabledReason.slice(0, 255) } : {}),
      nodeSide: nova.nodeSide,
    };
  }
  const servers = node.obs.servers ?? nova?.servers;
  if (servers !== undefined) st.servers = servers;
  const p = node.obs.power;
  if (p) st.power = { state: p.state, readAt: iso(p.since), ...(p.error ? { error: p.error.slice(0, 512) } : {}) };
  observeHardware(x);
  void c;
}

const HW_STATE = { Ok: 'ok', Notify: 'notify', Drain: 'drain' } as const;

/**
 * The hardware monitor's decision into status.hardware (issue 12 item 1): the state, its reasons,
 * every sensor's state (a reading only while not ok, so steady state writes nothing) and the SEL
 * cursor. An Event (and for Notify an email) only when the known state changes: quiet otherwise.
 */
function observeHardware(x: Ctx) {
  const h = x.node.obs.hardware;
  const prev = x.node.status.hardware;
  const cursor = h?.selCursor ?? prev?.selCursor;
  if (!h) {
    if (prev) x.status.hardware = { ...prev, ...(cursor !== undefined ? { selCursor: cursor } : {}) };
    return;
  }
  const d = h.decision;
  const state = d.bmc === 'unknown' ? 'unknown' : HW_STATE[d.action];
  const sensors = h.sensors.slice(0, 64).map((s) => {
    const st = s.faults.length && s.state === 'ok' ? 'critical' : s.state;
    const reading = s.value !== undefined ? `${s.value}${s.unit ? ` ${s.unit}` : ''}` : s.states.join(', ');
    return { name: s.name.slice(0, 64), kind: s.kind, state: st, ...(st !== 'ok' && reading ? { reading: reading.slice(0, 128) } : {}) };
  });
  const reasons = d.reasons.slice(0, 16).map((r) => `${r.condition} (${r.action}): ${r.detail}`.slice(0, 256));
  x.status.hardware = {
    state,
    ...(d.error && state === 'unknown' ? { error: d.error.slice(0, 512) } : {}),
    ...(reasons.length ? { reasons } : {}),
    ...(sensors.length ? { sensors } : prev?.sensors ? { sensors: prev.sensors } : {}),
    ...(cursor !== undefined ? { selCursor: cursor } : {}),
  };
  if (state === 'unknown' || state === prev?.state || (state === 'ok' && (!prev || prev.state === 'unknown'))) return;
  const what = d.reasons.map((r) => r.detail).join('; ');
  if (state === 'ok') {
    event(x, 'Normal', 'HardwareOk', `hardware ok again (was ${prev?.state})`);
    return;
  }
  event(x, 'Warning', state === 'drain' ? 'HardwareDrain' : 'HardwareDegraded', `hardware ${state}: ${what}`.slice(0, 1024));
  if (state === 'notify') {
    notify(x, `hardware-${d.reasons.map((r) => r.condition).sort().join('-')}`, 'warning', 'hardware fault',
      `The BMC reports (each held for ${x.policy.hardware.samples} readings):\n${d.reasons.map((r) => `  ${r.condition}: ${r.detail}`).join('\n')}\nPolicy action: Notify. hm9k does nothing else; please look at the host.`);
  }
}

function conditions(x: Ctx) {
  const { now } = x.c;
  const g = x.node.generation;
  let conds = x.status.conditions ?? [];
  const nets = Object.entries(x.status.networks ?? {});
  const down = nets.filter(([, v]) => v?.state === 'down').map(([k]) => k);
  const unknown = nets.filter(([, v]) => v?.state === 'unknown').map(([k]) => k);
  const detail = (k: string) => {
    const v = (x.status.networks as Record<string, { since?: string; reason?: string } | undefined>)[k];
    return `${k}${v?.since ? ` since ${v.since}` : ''}${v?.reason ? ` (${v.reason})` : ''}`;
  };
  conds = down.length
    ? setCondition(conds, 'NetworkHealthy', 'False', 'NetworkDown', `Consul reports the node's ${down.length > 1 ? 'networks' : 'network'} down: ${down.map(detail).join('; ')}`, now, g)
    : unknown.length
      ? setCondition(conds, 'NetworkHealthy', 'Unknown', 'NetworkUnknown', `cannot tell (hm9k does not act on this): ${unknown.map(detail).join('; ')}`, now, g)
      : setCondition(conds, 'NetworkHealthy', 'True', 'AllNetworksUp', 'every watched network is up', now, g);
  const nova = x.status.nova;
  const side = `on the node: ${nova?.nodeSide === 'up' ? 'running' : nova?.nodeSide === 'down' ? 'not running' : 'not checked or unknown'}`;
  conds = !nova || nova.apiState === 'unknown'
    ? setCondition(conds, 'ServiceHealthy', 'Unknown', 'NovaUnknown', 'nova-compute state not known: Nova unreadable or the host has no nova-compute service', now, g)
    : nova.apiState === 'up' && nova.nodeSide !== 'down'
      ? setCondition(conds, 'ServiceHealthy', 'True', 'ServiceUp', `Nova reports nova-compute up (${nova.status ?? 'enabled'}); ${side}`, now, g)
      : setCondition(conds, 'ServiceHealthy', 'False', nova.forcedDown ? 'ForcedDown' : nova.apiState === 'down' ? 'ServiceDown' : 'NotRunningOnNode',
        nova.forcedDown
          ? `nova-compute forced down in Nova${nova.disabledReason ? ` and disabled ("${nova.disabledReason}")` : ''}; ${side}`
          : `Nova reports nova-compute ${nova.apiState}; ${side}`, now, g);
  const p = x.status.power;
  conds = !p || p.state === 'unknown'
    ? setCondition(conds, 'PoweredOn', 'Unknown', 'PowerUnknown', p?.error ?? 'power state not read', now, g)
    : setCondition(conds, 'PoweredOn', p.state === 'on' ? 'True' : 'False', p.state === 'on' ? 'PowerOn' : 'PowerOff', `chassis power is ${p.state}`, now, g);
  const f = x.status.fence;
  const failedFence = f && (['powerOff', 'confirmOff'] as StepName[]).some((s) => stepState(f, s) === 'failed');
  conds = f
    ? failedFence
      ? setCondition(conds, 'Fenced', 'False', 'PowerOffNotConfirmed', `fence ${f.id} failed: the BMC did not confirm power off, nothing was evacuated; check the host, then acknowledge with ${ACK_FENCE_ANNOTATION}=${f.id}`, now, g)
      : f.acknowledged
        ? setCondition(conds, 'Fenced', 'True', 'Acknowledged', `fence ${f.id} acknowledged by an operator; returning to service once every network is up and nova-compute has restarted`, now, g)
        : !f.powerOffConfirmedAt
          ? setCondition(conds, 'Fenced', 'Unknown', 'PoweringOff', `fence ${f.id} in progress (${f.reason}): powering off through the BMC`, now, g)
          : setCondition(conds, 'Fenced', 'True', 'Latched', `fence ${f.id} (${f.reason}); power-off confirmed ${f.powerOffConfirmedAt}; latched until an operator repairs the host and annotates ${ACK_FENCE_ANNOTATION}=${f.id}`, now, g)
    : setCondition(conds, 'Fenced', 'False', 'NotFenced', 'no fence in effect', now, g);
  const e = x.status.evacuation;
  if (e) {
    const complete = e.done + e.failed >= e.total;
    const failedIds = e.servers.filter((s) => s.state === 'failed' || s.state === 'skipped').map((s) => `${s.id}${s.error ? ` (${s.error})` : ''}`);
    conds = setCondition(conds, 'Evacuated', complete && e.failed === 0 ? 'True' : 'False', complete ? (e.failed ? 'EvacuationFailed' : 'EvacuationDone') : 'InProgress',
      `${e.done} of ${e.total} servers evacuated, ${e.failed} failed${failedIds.length ? `: ${failedIds.slice(0, 5).join('; ')}${failedIds.length > 5 ? '; ...' : ''}` : ''}${complete ? '' : ', the rest in progress'}`, now, g);
  } else {
    conds = conds.filter((c) => c.type !== 'Evacuated');
  }
  const hw = x.status.hardware;
  conds = !hw
    ? conds.filter((c) => c.type !== 'HardwareHealthy')
    : hw.state === 'unknown'
      ? setCondition(conds, 'HardwareHealthy', 'Unknown', 'BmcUnreadable', `BMC sensors unreadable (hm9k does not act on this): ${hw.error ?? 'no answer'}`, now, g)
      : hw.state === 'ok'
        ? setCondition(conds, 'HardwareHealthy', 'True', 'SensorsOk', 'no hardware condition holds', now, g)
        : setCondition(conds, 'HardwareHealthy', 'False', hw.state === 'drain' ? 'DrainCondition' : 'NotifyCondition', (hw.reasons ?? []).join('; ') || hw.state, now, g);
  const dr = x.status.drain;
  conds = !dr
    ? conds.filter((c) => c.type !== 'Drained')
    : setCondition(conds, 'Drained', dr.result === 'empty' ? 'True' : 'False',
      dr.result === 'empty' ? 'HostEmpty' : dr.result === 'incomplete' ? 'ServersNeedOperator' : dr.result === 'handedOver' ? 'HandedOverToFence' : 'InProgress',
      `drain ${dr.id} (${dr.reason}): ${dr.migrated} of ${dr.total} live-migrated, ${dr.failed} need an operator, ${dr.left} left${dr.result === 'handedOver' ? '; the host failed: the fence path evacuates what is still there' : ''}`, now, g);
  const hold = actionHold(x);
  conds = hold
    ? setCondition(conds, 'Paused', 'True', hold === 'dry run' ? 'DryRun' : 'PolicyPaused',
      `${hold === 'dry run' ? 'dry run: hm9k decides and reports, acts on nothing' : 'policy paused: no new external action'}${x.held ? `; holding: ${x.held}` : ''}`, now, g)
    : conds.filter((c) => c.type !== 'Paused');
  conds = x.ackRefused
    ? setCondition(conds, 'Acknowledged', 'False', 'FenceInProgress', `acknowledgement ${x.ackRefused}`, now, g)
    : conds.filter((c) => c.type !== 'Acknowledged');
  x.status.conditions = conds;
}

/**
 * Why external actions are held in every phase, or undefined (issue 9 item 5; architecture, safety:
 * "paused; dryRun (decide and report, act on nothing)"). Notifications, Events and the read-only SSH
 * corroboration still run: they report, they change nothing.
 */
function actionHold(x: Ctx): 'policy paused' | 'dry run' | undefined {
  if (x.policy.safety.paused) return 'policy paused';
  if (x.policy.safety.dryRun) return 'dry run';
  return undefined;
}

/**
 * One fence step: the action, or under paused/dryRun the same phase with a hold that says what would
 * run (the fence holds where it is and resumes when unpaused, issue 9 item 5).
 */
function fenceStep(x: Ctx, p: Phase, doing: string, what: string, action: Action): void {
  const hold = actionHold(x);
  if (!hold) {
    phase(x, p, doing);
    x.actions.push(action);
    return;
  }
  const waiting = `${hold}: would ${what}; held until ${hold === 'dry run' ? 'dryRun is off' : 'the policy is unpaused'}`;
  x.held = `${x.status.fence ? `fence ${x.status.fence.id}: ` : ''}would ${what}`;
  if (x.node.status.waitingFor !== waiting.slice(0, 512)) event(x, 'Warning', 'FenceHeld', waiting);
  phase(x, p, waiting);
}

const FINAL_PHASES: readonly Phase[] = ['Fenced', 'FenceFailed'];

const REPORTED_DONE = 50;

/** The evacuation part of the fenced email: the servers that need hands first, every one of them listed. */
function evacuationReport(e: NonNullable<ComputeNodeStatus['evacuation']>): string {
  const line = (s: (typeof e.servers)[number]) => `  ${s.id}: ${s.state}${s.to ? ` -> ${s.to}` : ''}${s.error ? ` (${s.error})` : ''}`;
  const hands = e.servers.filter((s) => s.state !== 'done');
  const done = e.servers.filter((s) => s.state === 'done');
  const omittedFailed = e.omitted?.failed ?? 0;
  const doneUnlisted = e.done - Math.min(done.length, REPORTED_DONE);
  return `Evacuation (microversion ${e.microversion}): ${e.done} done, ${e.failed} failed of ${e.total}.\n` +
    (hands.length || omittedFailed ? `Servers that need your attention:\n${hands.map(line).join('\n')}${hands.length ? '\n' : ''}` +
      (omittedFailed ? `  ... and ${omittedFailed} more failed server(s) not listed in status (see the Events and hm9k's log)\n` : '') : '') +
    (done.length ? `Evacuated:\n${done.slice(0, REPORTED_DONE).map(line).join('\n')}\n` : '') +
    (doneUnlisted > 0 ? `  ... and ${doneUnlisted} more evacuated\n` : '');
}

/** Continue, latch or end an existing fence. */
function handleFence(x: Ctx): void {
  const { node, policy } = x;
  let fence = x.status.fence!;
  // A fence loses sight of the host: no power-on evidence survives it (issue 9 item 4).
  delete x.status.watchedHealthyAt;
  const given = node.annotations[ACK_FENCE_ANNOTATION];
  const ack = given === fence.id;
  // An acknowledgement counts only once the fence has reached a final phase in an earlier decision, so
  // the fence is never cut short and its summary email has gone out (issue 9 item 12).
  const final = FINAL_PHASES.includes(node.status.phase as Phase);
  if (ack && !fence.acknowledged && !final) {
    x.ackRefused = `${ACK_FENCE_ANNOTATION}=${fence.id} refused: fence ${fence.id} is still in progress; it counts once the fence is Fenced or FenceFailed (the annotation may stay)`;
    const was = node.status.conditions?.find((c) => c.type === 'Acknowledged');
    if (was?.reason !== 'FenceInProgress') event(x, 'Warning', 'AcknowledgementRefused', `acknowledgement ${x.ackRefused}`);
  } else if (ack && !fence.acknowledged) {
    fence = { ...fence, acknowledged: true };
    event(x, 'Normal', 'FenceAcknowledged', `acknowledgement accepted: ${ACK_FENCE_ANNOTATION}=${fence.id} matches the fence id`);
  } else if (given !== undefined && !ack && !fence.acknowledged) {
    event(x, 'Warning', 'AcknowledgementRejected',
      `acknowledgement rejected as stale: ${ACK_FENCE_ANNOTATION}=${given.slice(0, 80)} does not match the current fence id ${fence.id}; the fence stays latched`);
  }
  x.status.fence = fence;
  const failed = (['powerOff', 'confirmOff'] as StepName[]).some((s) => stepState(fence, s) === 'failed');
  if (failed) {
    if (fence.acknowledged) {
      // The operator took over a failed fence: forget it (nothing was evacuated, nothing marked in Nova).
      delete x.status.fence;
      delete x.status.evacuation;
      x.status.recovery = { attempts: 0 };
      phase(x, 'Degraded', 'failed fence acknowledged; re-evaluating');
      return;
    }
    phase(x, 'FenceFailed', `power-off not confirmed; acknowledge with annotation ${ACK_FENCE_ANNOTATION}=${fence.id} once the host is safe`);
    notify(x, `fence-failed-${fence.id}`, 'critical', 'FENCE FAILED, nothing evacuated',
      `hm9k tried to fence this node (${fence.reason}) but could not confirm that it is powered off.\n` +
      `Steps: ${fence.steps.map((s) => `${s.name}=${s.state}${s.message ? ` (${s.message})` : ''}`).join('; ')}\n` +
      `Its servers were NOT evacuated. Check the host and its BMC by hand. When the host is safe, acknowledge with:\n` +
      `  kubectl annotate computenode ${node.name} ${ACK_FENCE_ANNOTATION}=${fence.id}`);
    return;
  }
  const confirmed = stepState(fence, 'confirmOff') === 'succeeded' && !!fence.powerOffConfirmedAt;
  if (!confirmed) {
    fenceStep(x, 'Fencing', 'powering off through the BMC and confirming off', 'power off through the BMC and confirm off', { type: 'powerOff', fenceId: fence.id });
    return;
  }
  // Safe-fencing rule 1 holds at every Nova step, not only at the confirmation: a host the BMC reports
  // on again (powered on by hand, or a BMC that answered wrongly) is not fenced. Nothing is forced down,
  // disabled or evacuated while it reads on; the fence holds (no second power-off) and operators are told.
  const novaStepsLeft = (policy.fencing.forceDownService && !['succeeded', 'skipped'].includes(stepState(fence, 'forceDown') ?? ''))
    || stepState(fence, 'disable') !== 'succeeded'
    || (policy.evacuation.enabled && !['succeeded', 'failed', 'skipped'].includes(stepState(fence, 'evacuate') ?? ''));
  if (novaStepsLeft && node.obs.power?.state === 'on') {
    phase(x, x.status.phase === 'Evacuating' ? 'Evacuating' : 'Fencing', 'the BMC reports power on again after the confirmed power-off: nothing forced down or evacuated until it reads off');
    notify(x, `fence-power-on-${fence.id}`, 'critical', 'powered on again during the fence, nothing evacuated',
      `hm9k powered this node off (fence ${fence.id}, confirmed at ${fence.powerOffConfirmedAt}), but its BMC now reports power on.\n` +
      `hm9k will not force nova-compute down or evacuate while the host may be running its servers.\n` +
      `Check who powered it on; power it off through the BMC to let the fence continue.`);
    return;
  }
  if (policy.fencing.forceDownService && stepState(fence, 'forceDown') !== 'succeeded' && stepState(fence, 'forceDown') !== 'skipped') {
    fenceStep(x, 'Fencing', 'forcing nova-compute down', 'force nova-compute down', { type: 'forceDown', fenceId: fence.id });
    return;
  }
  if (stepState(fence, 'disable') !== 'succeeded') {
    fenceStep(x, 'Fencing', 'disabling nova-compute with the fence marker', 'disable nova-compute with the fence marker', { type: 'disable', fenceId: fence.id, reason: `${FENCE_REASON_PREFIX}${fence.id}` });
    return;
  }
  const evac = stepState(fence, 'evacuate');
  if (policy.evacuation.enabled && evac !== 'succeeded' && evac !== 'failed' && evac !== 'skipped') {
    if (!policy.fencing.forceDownService && x.node.obs.nova?.apiState !== 'down') {
      phase(x, 'Evacuating', 'waiting for Nova to report nova-compute down (forceDownService is off)');
      return;
    }
    fenceStep(x, 'Evacuating', 'evacuating servers', 'evacuate servers', { type: 'evacuate', fenceId: fence.id });
    return;
  }
  // Fenced. The summary goes out once, on arrival, whatever the acknowledgement says (issue 9 item 12).
  if (x.status.phase !== 'Fenced') {
    const e = x.status.evacuation;
    notify(x, `fenced-${fence.id}`, 'critical', `fenced${e ? `, ${e.done}/${e.total} servers evacuated` : ''}`,
      `hm9k fenced this node: ${fence.reason}\n` +
      `Power-off confirmed by the BMC at ${fence.powerOffConfirmedAt}. nova-compute forced down and disabled ("${FENCE_REASON_PREFIX}${fence.id}").\n` +
      (e ? evacuationReport(e) : 'Evacuation is disabled by the policy.\n') +
      `hm9k will not power this host on. Repair it, then acknowledge with:\n` +
      `  kubectl annotate computenode ${node.name} ${ACK_FENCE_ANNOTATION}=${fence.id}`);
    event(x, 'Warning', 'Fenced', `fence ${fence.id} complete`);
  }
  if (!fence.acknowledged) {
    phase(x, 'Fenced', `latched: acknowledge with annotation ${ACK_FENCE_ANNOTATION}=${fence.id} after repairing the host`);
    return;
  }
  // Acknowledged: return to service once the host is repaired.
  const nets = Object.keys(policy.networks) as NetworkName[];
  const notUp = nets.filter((n) => node.obs.networks[n]?.state !== 'up');
  if (notUp.length || node.obs.power?.state !== 'on') {
    phase(x, 'Fenced', `acknowledged; waiting for the repaired host: ${notUp.length ? `networks ${notUp.join(', ')} not up` : ''}${notUp.length && node.obs.power?.state !== 'on' ? '; ' : ''}${node.obs.power?.state !== 'on' ? 'power not on' : ''}`);
    return;
  }
  if (actionHold(x)) {
    fenceStep(x, 'Fenced', 'acknowledged; returning nova-compute to service', 'return nova-compute to service', { type: 'returnToService', fenceId: fence.id });
    return;
  }
  const prevWait = x.status.waitingFor?.startsWith('returning to service:') ? x.status.waitingFor : undefined;
  phase(x, 'Fenced', prevWait ?? 'acknowledged; returning nova-compute to service');
  x.actions.push({ type: 'returnToService', fenceId: fence.id });
}

const ACTION_RANK = { Notify: 0, Recover: 1, RecoverThenFence: 2 } as const;

export function decide(node: NodeSnapshot, policy: ResolvedPolicy | null, fleet: FleetSummary, c: DecideContext): Decision {
  const status: ComputeNodeStatus = structuredClone(node.status ?? {});
  if (node.generation !== undefined) status.observedGeneration = node.generation;
  const actions: Action[] = [];
  if (!policy) {
    const x = { node, policy: null as unknown as ResolvedPolicy, fleet, c, status, actions };
    delete status.watchedHealthyAt; // not watched by any policy: the power-on evidence lapses (item 4)
    phase(x, 'Unknown', c.noPolicyReason ?? 'no FencePolicy matches this node');
    return { status, actions, inFlight: false, unhealthy: !node.spec.maintenance };
  }
  const x: Ctx = { node, policy, fleet, c, status, actions };
  observe(x);
  const before = status.phase;
  const result = (): Decision => {
    if (status.fence) {
      // The host failed mid-drain (or the drain ended in a power-off): the fence path has it (issue 12 item 4).
      if (drainActive(status.drain)) handOver({ status, c, event: (t, r, n) => event(x, t, r, n) });
    } else if (!node.spec.maintenance) {
      // A drain moves servers off a running host only: every watched network up, power not off,
      // nova-compute not down; else the base flow (Suspect, recovery, fence) decides.
      const netsUp = NETWORKS.every((n) => !policy.networks[n] || node.obs.networks[n]?.state === 'up');
      const hostOk = (status.phase === 'Healthy' || status.phase === 'Degraded') && netsUp && node.obs.power?.state !== 'off' && node.obs.nova?.apiState !== 'down';
      drainRules(drainCtx(x), hostOk);
    }
    conditions(x);
    // Start-up (or failover) before the first Consul answer: Unknown until observed is no news, so
    // no Event (the condition and status say it); the first real observation decides (issue 10).
    const awaitingFirst = status.phase === 'Unknown' && NETWORKS.some((n) => policy.networks[n] && node.obs.networks[n] === undefined);
    if (before !== status.phase && !awaitingFirst) {
      // One Event per decision where possible (the per-object Event budget is small): the phase change
      // rides on the decision's own Event, else it gets one of its own.
      const own = actions.find((a): a is Extract<Action, { type: 'event' }> => a.type === 'event');
      if (own) own.note = `${own.note} [phase ${before ?? 'none'} -> ${status.phase}]`;
      else {
        event(x, ['FenceFailed', 'Fencing', 'Fenced', 'Suspect', 'Unknown'].includes(status.phase ?? '') ? 'Warning' : 'Normal', `Phase${status.phase}`,
          `${before ?? 'none'} -> ${status.phase}${status.waitingFor ? `: ${status.waitingFor}` : ''}`);
      }
    }
    return { status, actions, inFlight: IN_FLIGHT_PHASES.includes(status.phase!), unhealthy: isUnhealthy(node, policy) };
  };

  if (node.spec.maintenance) {
    delete status.watchedHealthyAt; // an operator may do anything in maintenance (item 4)
    phase(x, 'Maintenance', 'spec.maintenance is true: no action');
    return result();
  }
  // Rebuild the latch from Nova's marker when the fence record is gone (architecture: the latch also
  // lives in Nova), except for the fence hm9k itself just returned to service: that marker is a read
  // taken before the service was re-enabled (issue 9 item 6: else a host failing again is never fenced).
  const marker = node.obs.nova?.disabledReason;
  const markerId = marker?.startsWith(FENCE_REASON_PREFIX) ? marker.slice(FENCE_REASON_PREFIX.length).trim() : undefined;
  if (!status.fence && markerId !== undefined && markerId !== status.returnedFenceId) {
    const id = markerId;
    const at = iso(c.now);
    status.fence = {
      id, reason: 'rebuilt from the Nova disabled_reason marker', startedAt: at, leaseHolder: c.lease.holder, leaseTransitions: c.lease.transitions,
      powerOffConfirmedAt: at,
      steps: (['powerOff', 'confirmOff', 'forceDown', 'disable', 'evacuate'] as StepName[]).map((name) => ({ name, state: 'skipped' as const, at, message: 'rebuilt from Nova marker' })),
    };
    status.fence.steps.find((s) => s.name === 'confirmOff')!.state = 'succeeded';
    status.fence.steps.find((s) => s.name === 'disable')!.state = 'succeeded';
    event(x, 'Warning', 'FenceRebuilt', `Nova shows "${marker}": fence latch rebuilt`);
  }
  if (status.fence) {
    handleFence(x);
    return result();
  }

  const det = policy.detection;
  const nets = Object.keys(policy.networks) as NetworkName[];
  const obsN = node.obs.networks;
  const failing = nets.filter((n) => obsN[n]?.state === 'down' && obsN[n]!.consecutiveDown >= det.failureThreshold);
  const pending = nets.filter((n) => obsN[n]?.state === 'down' && obsN[n]!.consecutiveDown < det.failureThreshold);
  const unknown = nets.filter((n) => !obsN[n] || obsN[n]!.state === 'unknown');
  const nova = node.obs.nova;
  const power = node.obs.power;
  const rec = status.recovery ?? { attempts: 0 };
  const prev = status.phase;

  const startRecovery = (kind: string) => {
    if (rec.kind !== kind) {
      status.recovery = { attempts: 0, kind };
    }
    return status.recovery ?? { attempts: 0 };
  };
  const settled = (r: { lastAttempt?: string }) => !r.lastAttempt || c.now - ms(r.lastAttempt) >= policy.recovery.settleTimeMs;

  // Power off, found while the node was healthy: power it on (the power-on rule, architecture.md).
  // It needs positive evidence, checked on every decision, not only the first (issue 9 item 4): hm9k
  // saw the node Healthy and watched it since (status.watchedHealthyAt, kept in status so it survives
  // restarts and is absent on a re-created object), and Nova is readable and shows neither hm9k's
  // fence marker nor evacuation migrations. Unknown is never evidence.
  if (power?.state === 'off' && (prev === undefined || prev === 'Healthy' || prev === 'Degraded' || prev === 'Unknown' || (prev === 'Recovering' && rec.kind === 'powerOn'))) {
    const r = startRecovery('powerOn');
    const reasons: string[] = [];
    if (!policy.recovery.powerOn) reasons.push('recovery.powerOn is false');
    if (!status.watchedHealthyAt) reasons.push('no evidence that the node was Healthy under hm9k\'s watch (new or re-created ComputeNode, or Unknown, Maintenance or fenced since)');
    if (!nova || nova.apiState === 'unknown') reasons.push('Nova state unknown: the fence marker and evacuation migrations cannot be read');
    if (nova?.disabledReason?.startsWith(FENCE_REASON_PREFIX)) reasons.push('Nova shows hm9k\'s fence marker');
    if ((nova?.evacuationMigrations ?? 0) > 0) reasons.push('evacuation migrations exist for this host');
    if (reasons.length) {
      phase(x, 'Degraded', `powered off; not powering on: ${reasons.join('; ')}`);
      notify(x, 'powered-off', 'warning', 'host is powered off', `The BMC reports chassis power off. hm9k will not power it on: ${reasons.join('; ')}.\nPlease check the host.`);
      return result();
    }
    if (r.attempts >= policy.recovery.attempts) {
      if (!settled(r)) {
        phase(x, 'Recovering', 'waiting for power-on to take effect');
        return result();
      }
      phase(x, 'Degraded', 'power-on failed; operator needed');
      notify(x, 'power-on-failed', 'critical', 'power-on FAILED', `The host was found powered off. hm9k tried to power it on ${r.attempts} time(s) through the BMC and it is still off (${r.lastResult ?? 'no result'}).\nPlease check the host and its BMC.`);
      return result();
    }
    if (!settled(r)) {
      phase(x, 'Recovering', 'waiting for power-on to take effect');
      return result();
    }
    const gate = remediationGate(x, false) ?? (policy.safety.dryRun ? 'dry run' : undefined);
    if (gate) {
      if (actionHold(x)) x.held = 'would power on through the BMC';
      phase(x, 'Degraded', `powered off; power-on held: ${gate}`);
      notify(x, 'power-on-held', 'warning', 'host powered off, power-on held', `The host is powered off. hm9k would power it on but: ${gate}.`);
      return result();
    }
    status.recovery = { attempts: r.attempts + 1, kind: 'powerOn', lastAttempt: iso(c.now), ...(r.lastResult ? { lastResult: r.lastResult } : {}) };
    phase(x, 'Recovering', 'powering on through the BMC');
    x.actions.push({ type: 'powerOn', attempt: r.attempts + 1 });
    event(x, 'Normal', 'PowerOn', `host found powered off; power-on attempt ${r.attempts + 1}`);
    return result();
  }

  if (failing.length === 0) {
    const novaIssue = nova && !nova.forcedDown && (nova.apiState === 'down' || nova.nodeSide === 'down') && unknown.length === 0 && pending.length === 0;
    if (novaIssue && policy.recovery.commands.novaCompute && node.spec.ssh) {
      return recoverFlow(x, 'novaCompute', 'Recover', `nova-compute down (api ${nova.apiState}, node ${nova.nodeSide})`, c.now, result);
    }
    if (pending.length) {
      phase(x, 'Degraded', `down below the failure threshold: ${pending.map((n) => `${n} ${obsN[n]!.consecutiveDown}/${det.failureThreshold}`).join(', ')}`);
      return result();
    }
    if (unknown.length) {
      delete status.watchedHealthyAt; // hm9k lost sight of the node: no power-on evidence (item 4)
      phase(x, 'Unknown', `network state unknown: ${unknown.map((n) => `${n}${obsN[n]?.reason ? ` (${obsN[n]!.reason})` : ''}`).join(', ')}; no action`);
      return result();
    }
    if (novaIssue) {
      phase(x, 'Degraded', 'nova-compute down; no recovery command or SSH configured');
      notify(x, 'nova-down', 'warning', 'nova-compute down', `nova-compute is down (api ${nova!.apiState}, node ${nova!.nodeSide}) and hm9k has no way to restart it.`);
      return result();
    }
    if (power && power.state !== 'on') {
      phase(x, 'Degraded', `power state ${power.state}${power.error ? `: ${power.error}` : ''}`);
      return result();
    }
    // All up.
    const upSince = Math.max(...nets.map((n) => obsN[n]!.since));
    if (prev === undefined || prev === 'Healthy' || prev === 'Unknown' || prev === 'Maintenance' || c.now - upSince >= det.healthyDelayMs) {
      if (prev === 'Recovering' || prev === 'Suspect') {
        notify(x, 'recovered', 'info', 'recovered', `Every watched network is up again${rec.kind ? ` after ${rec.attempts} recovery attempt(s) (${rec.kind})` : ''}. Nothing was fenced.`);
      }
      delete status.recovery;
      // Positive evidence for the power-on rule (item 4): every network up and the BMC read as on (a
      // power state not read yet is no evidence). Set once, so steady state stays quiet.
      if (power?.state === 'on') status.watchedHealthyAt ??= iso(c.now);
      phase(x, 'Healthy');
      return result();
    }
    phase(x, prev === 'Recovering' ? 'Recovering' : 'Degraded', 'networks up; waiting for healthyDelay');
    return result();
  }

  // A network is failing: pick the strongest action among the failing networks.
  failing.sort((a, b) => ACTION_RANK[policy.networks[b]!.action] - ACTION_RANK[policy.networks[a]!.action]);
  const net = failing[0]!;
  const rule = policy.networks[net]!;
  const since = Math.min(...failing.map((n) => obsN[n]!.since));
  const what = `${failing.join(', ')} network down (${failing.map((n) => `${n}: ${obsN[n]!.reason ?? `${obsN[n]!.observersDown} observer(s) report failed`}`).join('; ')})`;
  if (c.now - since < det.recoveryGracePeriodMs) {
    phase(x, 'Suspect', `${what}; recovery grace period`);
    return result();
  }
  if (rule.action === 'Notify') {
    phase(x, 'Degraded', `${what}; action Notify`);
    notify(x, `${net}-down`, 'warning', `${net} network down`, `${what}.\nPolicy action: Notify. hm9k does nothing else; please investigate.`);
    return result();
  }
  return recoverFlow(x, net, rule.action, what, since, result);
}

function recoverFlow(x: Ctx, kind: NetworkName | 'novaCompute', action: 'Recover' | 'RecoverThenFence', what: string, since: number, result: () => Decision): Decision {
  const { policy, c, status, node } = x;
  if (status.recovery?.kind !== kind) status.recovery = { attempts: 0, kind };
  const r = status.recovery!;
  const settled = !r.lastAttempt || c.now - ms(r.lastAttempt) >= policy.recovery.settleTimeMs;
  const command = policy.recovery.commands[kind];
  if (r.attempts < policy.recovery.attempts && command && node.spec.ssh) {
    if (!settled) {
      phase(x, 'Recovering', `${what}; waiting for recovery attempt ${r.attempts} to take effect`);
      return result();
    }
    const gate = remediationGate(x, true) ?? (policy.safety.dryRun ? 'dry run' : undefined);
    if (gate) {
      if (actionHold(x)) x.held = `would run the ${kind} recovery command`;
      phase(x, 'Suspect', `${what}; recovery held: ${gate}`);
      event(x, 'Warning', gate.startsWith('storm') ? 'RecoveryHeldStorm' : 'RecoveryHeld', `would run recovery for ${kind}, but ${gate}`);
      notify(x, `recovery-held-${kind}`, 'warning', `${kind} failure, recovery held`, `${what}.\nhm9k would run the recovery command but: ${gate}.`);
      return result();
    }
    status.recovery = { attempts: r.attempts + 1, kind, lastAttempt: iso(c.now), ...(r.lastResult ? { lastResult: r.lastResult } : {}) };
    phase(x, 'Recovering', `${what}; recovery attempt ${r.attempts + 1}/${policy.recovery.attempts}`);
    x.actions.push({ type: 'recover', kind, command, attempt: r.attempts + 1, timeoutMs: policy.recovery.timeoutMs });
    event(x, 'Normal', 'Recover', `${what}; running recovery attempt ${r.attempts + 1}`);
    return result();
  }
  if (!settled) {
    phase(x, 'Recovering', `${what}; waiting for the last recovery attempt to take effect`);
    return result();
  }
  if (action === 'Recover') {
    phase(x, 'Degraded', `${what}; recovery exhausted, operator needed`);
    notify(x, `recovery-failed-${kind}`, 'critical', `${kind} recovery FAILED`,
      `${what}.\nhm9k ran the recovery command ${r.attempts} time(s) (${r.lastResult ?? 'no result'}) and the failure persists.\nThe policy does not fence for this failure. Please repair the node.`);
    return result();
  }
  return fenceFlow(x, kind as NetworkName, what, since, result);
}

function fenceFlow(x: Ctx, net: NetworkName, what: string, since: number, result: () => Decision): Decision {
  const { policy, c, status, node } = x;
  const o = node.obs.networks[net]!;
  if (o.observersUp > 0) {
    phase(x, 'Suspect', `${what}; observers disagree (${o.observersUp} up, ${o.observersDown} down): not fencing`);
    notify(x, `observers-disagree-${net}`, 'warning', `${net} observers disagree, not fencing`, `${what}.\n${o.observersUp} Consul observer(s) still see the node alive. hm9k does not fence on a disputed failure.`);
    return result();
  }
  const fresh = Math.max(since, ms(status.recovery?.lastAttempt) || 0);
  const cor = node.obs.corroboration;
  const corroboration = policy.detection.corroboration;
  if (!cor || cor.network !== net || cor.at < fresh) {
    phase(x, 'Suspect', `${what}; corroborating over SSH`);
    x.actions.push({ type: 'corroborate', network: net, ...(corroboration.sshCommand ? { command: corroboration.sshCommand } : {}), timeoutMs: corroboration.timeoutMs });
    return result();
  }
  if (cor.result === 'works') {
    phase(x, 'Degraded', `${what}; but the node says its ${net} network works: Consul agent broken, not fencing`);
    notify(x, `agent-broken-${net}`, 'warning', `${net} Consul agent broken (network works), not fencing`,
      `${what}.\nThe SSH check run on the node over the management network says the ${net} network works${cor.detail ? ` (${cor.detail})` : ''}.\nThe Consul agent is probably broken. hm9k does not fence; please repair the agent.`);
    return result();
  }
  if ((cor.result === 'unreachable' || cor.result === 'notConfigured') && corroboration.requireSsh) {
    phase(x, 'Suspect', `${what}; SSH corroboration ${cor.result} and requireSsh: not fencing`);
    notify(x, `uncorroborated-${net}`, 'critical', `${net} failure not corroborated, not fencing`, `${what}.\nThe SSH corroboration could not run (${cor.result}${cor.detail ? `: ${cor.detail}` : ''}) and the policy requires it. Please check the node.`);
    return result();
  }
  if (!node.spec.bmc) {
    phase(x, 'Suspect', `${what}; cannot fence: no BMC configured`);
    notify(x, 'no-bmc', 'critical', 'cannot fence: no BMC', `${what}.\nRecovery failed and the policy says fence, but the node has no spec.bmc. Nothing was evacuated. Please handle the node.`);
    return result();
  }
  const gate = remediationGate(x, true);
  if (gate) {
    phase(x, 'Suspect', `${what}; fence held: ${gate}`);
    event(x, 'Warning', gate.startsWith('storm') ? 'FenceHeldStorm' : 'FenceHeld', `would fence (${what}), but ${gate}: nothing fenced`);
    notify(x, gate.startsWith('storm') ? 'storm' : `fence-held`, 'critical', `fence held (${gate.split(':')[0]})`, `${what}.\nRecovery failed and hm9k would fence this node, but: ${gate}.\nNothing was fenced.`);
    return result();
  }
  if (policy.safety.dryRun) {
    x.held = 'would fence';
    phase(x, 'Suspect', `${what}; dry run: would fence`);
    notify(x, 'dry-run-fence', 'warning', 'dry run: would fence', `${what}.\nRecovery failed and corroboration (${cor.result}) confirms it. hm9k would fence this node; dryRun is on, so it did nothing.`);
    return result();
  }
  startFence(x, what, `corroboration ${cor.result}`);
  return result();
}

/** A new fence: intent (the record, powerOff pending) first; its steps follow in handleFence. */
function startFence(x: Ctx, what: string, why: string): void {
  const { c, status, node } = x;
  const id = fenceIdFor(node.name, c.now);
  status.fence = {
    id, reason: what.slice(0, 512), startedAt: iso(c.now), leaseHolder: c.lease.holder, leaseTransitions: c.lease.transitions,
    steps: [{ name: 'powerOff', state: 'pending', at: iso(c.now) }],
  };
  delete status.evacuation;
  delete status.watchedHealthyAt;
  phase(x, 'Fencing', 'powering off through the BMC and confirming off');
  x.actions.push({ type: 'powerOff', fenceId: id });
  event(x, 'Warning', 'Fence', `fence ${id}: ${what}; ${why}`);
}

/** What the drain rules (drain/machine.ts) may use of this machine. */
function drainCtx(x: Ctx): DrainCtx {
  return {
    node: x.node, policy: x.policy, c: x.c, status: x.status, actions: x.actions,
    // The base flow may have set another phase this decision: a phase kept since the last decision
    // keeps its phaseSince (else every decision would write a new one).
    phase: (p, waitingFor) => {
      x.status.phase = p;
      x.status.phaseSince = x.node.status.phase === p && x.node.status.phaseSince ? x.node.status.phaseSince : iso(x.c.now);
      if (waitingFor) x.status.waitingFor = waitingFor.slice(0, 512);
      else delete x.status.waitingFor;
    },
    event: (t, r, n) => event(x, t, r, n),
    notify: (k, sev, what, body) => notify(x, k, sev, what, body),
    gate: () => remediationGate(x, true, true),
    hold: () => actionHold(x),
    held: (what) => { x.held = what; },
    startFence: (reason) => startFence(x, reason, 'drain.whenEmpty PowerOff'),
  };
}

/** Folds an action's outcome into status (recorded after the external call). */
export function applyOutcome(status: ComputeNodeStatus, outcome: Outcome, now: number): ComputeNodeStatus {
  const s: ComputeNodeStatus = structuredClone(status);
  switch (outcome.type) {
    case 'recover':
    case 'powerOn':
      if (s.recovery) s.recovery = { ...s.recovery, lastResult: `${outcome.ok ? 'ok' : 'failed'}: ${outcome.message}`.slice(0, 512) };
      return s;
    case 'powerOff': {
      if (!s.fence) return s;
      let f = setStep(s.fence, 'powerOff', outcome.ok ? 'succeeded' : 'failed', now, outcome.message);
      f = setStep(f, 'confirmOff', outcome.confirmed ? 'succeeded' : 'failed', now, outcome.message);
      if (outcome.confirmed) f.powerOffConfirmedAt = iso(now);
      s.fence = f;
      return s;
    }
    case 'forceDown':
    case 'disable':
      if (s.fence) s.fence = setStep(s.fence, outcome.type, outcome.ok ? 'succeeded' : 'failed', now, outcome.message);
      return s;
    case 'evacuationFinished':
      if (s.fence) s.fence = setStep(s.fence, 'evacuate', outcome.ok ? 'succeeded' : 'failed', now, outcome.message);
      return s;
    case 'drainDisable':
      if (s.drain) s.drain = { ...s.drain, disabled: outcome.ok ? 'succeeded' : 'failed', disableMessage: outcome.message.slice(0, 512) };
      return s;
    case 'drainEnable':
      if (!s.drain) return s;
      if (!outcome.ok) {
        s.drain = { ...s.drain, enable: 'failed' };
        s.waitingFor = `undrain: enabling nova-compute failed: ${outcome.message}`.slice(0, 512);
        return s;
      }
      // Returned to service (issue 12 item 5): the record goes; what it was is kept so the same
      // annotation, or a hardware fault that still holds, does not drain the host again at once.
      s.undrained = {
        id: s.drain.id, at: iso(now),
        ...(s.drain.operatorReason ? { operatorReason: s.drain.operatorReason } : {}),
        ...(s.hardware?.state === 'drain' ? { hardwareHeld: true } : {}),
      };
      delete s.drain;
      s.phase = 'Healthy';
      s.phaseSince = iso(now);
      delete s.waitingFor;
      return s;
    case 'returnToService':
      if (outcome.ok && !outcome.waiting) {
        if (s.fence) s.returnedFenceId = s.fence.id;
        delete s.fence;
        delete s.evacuation;
        // A drain handed over to (or ended in) this fence ends with it.
        if (s.drain) s.undrained = { id: s.drain.id, at: iso(now), ...(s.drain.operatorReason ? { operatorReason: s.drain.operatorReason } : {}), ...(s.hardware?.state === 'drain' ? { hardwareHeld: true } : {}) };
        delete s.drain;
        delete s.recovery;
        s.phase = 'Healthy';
        s.phaseSince = iso(now);
        delete s.waitingFor;
      } else {
        s.waitingFor = `returning to service: ${outcome.message}`.slice(0, 512);
      }
      return s;
  }
}
