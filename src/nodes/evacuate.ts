// Evacuation, one tick at a time: plans from Nova's server list (intent recorded first), requests
// evacuations with bounded concurrency and per-server preconditions, and tracks each through its
// migration. Before (re)requesting a server it asks Nova where the server is and whether an
// evacuation migration of this fence already exists, so a restart never evacuates a server twice.
//
// The record stays bounded however many servers the host has (issue 9 item 8): servers are planned in
// id order, at most WORK_WINDOW in progress in the list; failed ones stay listed (up to MAX_LISTED_FAILED,
// the rest counted in omitted.failed); evacuated ones are dropped first when room is needed (counted in
// omitted.done). Counts stay exact: done and failed include the omitted ones, total is every server.
import type { ComputeNodeStatus, EvacuatedServer } from '../api/index.js';
import type { NovaClient, NovaMigration, NovaServer } from '../clients/nova.js';
import { compareMicroversion, parseMicroversion, type ResolvedPolicy } from './config.js';

type Evacuation = NonNullable<ComputeNodeStatus['evacuation']>;
/** The status list's maxItems (src/api/nodes.ts). */
export const MAX_LISTED_SERVERS = 200;
/** Failed servers kept in the list; more are counted in omitted.failed. */
export const MAX_LISTED_FAILED = 100;
/** Pending and requested servers in the list at once (>= the highest evacuation.concurrency, 50). */
export const WORK_WINDOW = MAX_LISTED_SERVERS - MAX_LISTED_FAILED;

export interface EvacuationIo {
  /** Persists status (update with resourceVersion) before the next external call. */
  write(evacuation: Evacuation): Promise<void>;
  now(): number;
  log(msg: string, extra?: Record<string, unknown>): void;
  /**
   * How long a request whose outcome is unknown (recorded, maybe sent, no answer seen) must show no
   * trace in Nova before it is issued again: a request still in flight (the sender was stopped while
   * waiting for Nova) lands within it. Default 60 s (twice the default HTTP timeout).
   */
  settleMs?: number;
  /** True once the process is shutting down: no new request is started (those sent are waited for). */
  aborted?(): boolean;
}

const DEFAULT_SETTLE_MS = 60_000;

const iso = (ms: number) => new Date(ms).toISOString();
const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function eligible(servers: NovaServer[], policy: ResolvedPolicy): NovaServer[] {
  const key = policy.evacuation.metadataKey;
  return servers.filter((s) => !key || (s.metadata && key in s.metadata)).sort(byId);
}

const isWork = (s: EvacuatedServer) => s.state === 'pending' || s.state === 'requested';
const isFailed = (s: EvacuatedServer) => s.state === 'failed' || s.state === 'skipped';

/**
 * Takes servers after the cursor into the list while the work window has room, dropping evacuated
 * entries (counted in omitted.done) when the list is full.
 */
function fill(e: Evacuation, candidates: NovaServer[], host: string): Evacuation {
  const out = structuredClone(e);
  const omitted = out.omitted ?? { done: 0, failed: 0 };
  let work = out.servers.filter(isWork).length;
  for (const s of candidates) {
    if (work >= WORK_WINDOW) break;
    if (out.cursor !== undefined && s.id <= out.cursor) continue;
    if (out.servers.length >= MAX_LISTED_SERVERS) {
      const i = out.servers.findIndex((x) => x.state === 'done');
      if (i < 0) break; // cannot happen: failed <= MAX_LISTED_FAILED and work < WORK_WINDOW
      out.servers.splice(i, 1);
      omitted.done++;
    }
    out.servers.push({ id: s.id, from: host, state: 'pending', wasActive: s.status === 'ACTIVE' });
    out.cursor = s.id;
    out.planned = (out.planned ?? 0) + 1;
    work++;
  }
  if (omitted.done || omitted.failed) out.omitted = omitted;
  // A host never gains servers while fenced (forced down, disabled); if it did, they are counted too.
  out.total = Math.max(out.total, out.planned ?? out.servers.length);
  return out;
}

/** Moves failed entries beyond MAX_LISTED_FAILED out of the list (counted in omitted.failed). */
function bound(e: Evacuation): Evacuation {
  let failed = 0;
  let dropped = 0;
  const servers = e.servers.filter((s) => {
    if (!isFailed(s)) return true;
    if (++failed <= MAX_LISTED_FAILED) return true;
    dropped++;
    return false;
  });
  if (!dropped) return e;
  const omitted = e.omitted ?? { done: 0, failed: 0 };
  return { ...e, servers, omitted: { ...omitted, failed: omitted.failed + dropped } };
}

/** Plans the evacuation: every server on the host (optionally those with the metadata key). */
export async function planEvacuation(nova: NovaClient, host: string, policy: ResolvedPolicy, now: number): Promise<Evacuation> {
  // Migrations Nova already holds for this host belong to earlier fences (issue 9 item 6): only
  // later ids (Nova's ids only grow) count for this one. Read before any request of this fence.
  const prior = (await nova.migrations({ sourceCompute: host, type: 'evacuation' })).filter((m) => m.source_compute === host);
  const floor = prior.reduce((max, m) => Math.max(max, Number(m.id) || 0), 0);
  const servers = eligible(await nova.listServers(host), policy);
  const mv = await nova.use(policy.evacuation.microversion);
  return fill({
    startedAt: iso(now),
    microversion: mv,
    total: servers.length,
    done: 0,
    failed: 0,
    planned: 0,
    priorMigrationId: String(floor),
    servers: [],
  }, servers, host);
}

const GOOD_VM = new Set(['active', 'stopped', 'error']);

function latest(migs: NovaMigration[]): NovaMigration | undefined {
  return [...migs].sort((a, b) => Number(b.id) - Number(a.id))[0];
}

/**
 * This fence's migrations: ids above the floor recorded at plan time. Ids, not times, so clock skew
 * between hm9k and Nova cannot move a migration across fences. Records from before the floor existed
 * count every migration (the old, cautious reading: never request twice).
 */
function ofThisFence(e: Evacuation, m: NovaMigration): boolean {
  return e.priorMigrationId === undefined || Number(m.id) > Number(e.priorMigrationId);
}

function recount(e: Evacuation): Evacuation {
  const o = e.omitted ?? { done: 0, failed: 0 };
  return { ...e, done: o.done + e.servers.filter((s) => s.state === 'done').length, failed: o.failed + e.servers.filter(isFailed).length };
}

/** Progress of one server already requested (or found moved): returns the updated record. */
async function check(nova: NovaClient, s: EvacuatedServer, server: NovaServer | undefined, mig: NovaMigration | undefined, micro: string): Promise<EvacuatedServer> {
  const host = server?.['OS-EXT-SRV-ATTR:host'] ?? undefined;
  const task = server?.['OS-EXT-STS:task_state'] ?? null;
  const vm = server?.['OS-EXT-STS:vm_state'];
  if (!server) return { ...s, state: 'failed', error: 'server no longer exists in Nova' };
  if (mig && (mig.status === 'failed' || mig.status === 'error')) return { ...s, state: 'failed', migrationId: String(mig.id), error: `migration ${mig.id} ${mig.status}` };
  if (vm === 'error' && !task && (!host || host === s.from) && !(s.reset && !mig)) return { ...s, state: 'failed', ...(mig ? { migrationId: String(mig.id) } : {}), error: 'vm_state error' };
  if (host && host !== s.from && !task && (!mig || mig.status === 'done' || mig.status === 'completed')) {
    const out: EvacuatedServer = { ...s, state: 'done', to: host, ...(mig ? { migrationId: String(mig.id) } : {}) };
    delete out.error;
    delete out.since;
    delete out.answer;
    // At 2.95+ evacuated servers end up stopped: start again those that were active.
    if (s.wasActive && compareMicroversion(parseMicroversion(micro)!, [2, 95]) >= 0 && vm === 'stopped') {
      try {
        await nova.startServer(s.id);
      } catch (err) {
        out.error = `evacuated but restart failed: ${(err as Error).message}`.slice(0, 512);
      }
    }
    return out;
  }
  return { ...s, state: 'requested', ...(mig ? { migrationId: String(mig.id) } : {}) };
}

async function getServer(nova: NovaClient, id: string): Promise<NovaServer | undefined> {
  try {
    return await nova.getServer(id);
  } catch (err) {
    if ((err as { status?: number }).status !== 404) throw err;
    return undefined;
  }
}

/**
 * One tick. Returns the updated record and whether every server reached a final state.
 * `io.write` is called with the intent (state `requested`) before each POST evacuate.
 */
export async function evacuationTick(nova: NovaClient, e0: Evacuation, host: string, policy: ResolvedPolicy, io: EvacuationIo): Promise<{ evacuation: Evacuation; finished: boolean }> {
  let e = structuredClone(e0);
  const timeout = policy.evacuation.perServerTimeoutMs;
  // Every non-final state has a deadline (issue 9 item 7): since + perServerTimeout; records written
  // before `since` existed keep the old whole-evacuation deadline.
  const legacyDeadline = Date.parse(e.startedAt) + timeout * Math.max(1, Math.ceil(e.total / policy.evacuation.concurrency));
  const deadlineOf = (s: EvacuatedServer) => (s.since ? Date.parse(s.since) + timeout : legacyDeadline);
  const migrations = (await nova.migrations({ sourceCompute: host, type: 'evacuation' })).filter((m) => m.source_compute === host && ofThisFence(e, m));
  const migOf = (id: string) => latest(migrations.filter((m) => m.instance_uuid === id));
  // 1. Progress of requested servers (and re-checks after a restart).
  for (let i = 0; i < e.servers.length; i++) {
    const s = e.servers[i]!;
    if (s.state !== 'requested') continue;
    const server = await getServer(nova, s.id);
    const mig = migOf(s.id);
    let next = await check(nova, s, server, mig, e.microversion);
    const noTrace = next.state === 'requested' && !mig && server && server['OS-EXT-SRV-ATTR:host'] === s.from && !server['OS-EXT-STS:task_state'];
    // When the intent was recorded (older records: when the evacuation started).
    const sentAt = Date.parse(s.since ?? e.startedAt);
    if (noTrace && s.answer !== 'accepted' && io.now() - sentAt >= (io.settleMs ?? DEFAULT_SETTLE_MS)) {
      // Recorded, no answer seen, and no trace in Nova for the whole settle window: the request never
      // reached Nova (a restart between intent and request): request again.
      next = { ...s, state: 'pending' };
      delete next.since;
      delete next.answer;
      io.log('evacuation request not found in Nova for the settle window; will request again', { server: s.id, since: s.since, answer: s.answer ?? 'not known to be sent' });
    } else if (noTrace && s.answer !== 'accepted') {
      // Outcome unknown (maybe still in flight from a stopped leader): ask Nova again next tick, never re-send yet.
      next = { ...s };
    } else if (next.state === 'requested' && io.now() > deadlineOf(s)) {
      next = { ...s, state: 'failed', error: `not evacuated within perServerTimeout (${timeout} ms)${server?.['OS-EXT-STS:task_state'] ? `, task_state ${server['OS-EXT-STS:task_state']}` : ''}: needs an operator` };
    }
    e.servers[i] = next;
  }
  e = recount(e);
  // 2. Start pending servers up to the concurrency limit.
  let inFlight = e.servers.filter((s) => s.state === 'requested').length;
  for (let i = 0; i < e.servers.length && inFlight < policy.evacuation.concurrency && !io.aborted?.(); i++) {
    const s = e.servers[i]!;
    if (s.state !== 'pending') continue;
    const server = await getServer(nova, s.id);
    if (!server) {
      e.servers[i] = { ...s, state: 'skipped', error: 'server no longer exists in Nova' };
      continue;
    }
    const mig = migOf(s.id);
    const hostNow = server['OS-EXT-SRV-ATTR:host'];
    if ((mig && mig.status !== 'failed' && mig.status !== 'error') || (hostNow && hostNow !== s.from)) {
      // Already evacuated or being evacuated: never request twice.
      e.servers[i] = await check(nova, { ...s, state: 'requested' }, server, mig, e.microversion);
      if (e.servers[i]!.state === 'requested') inFlight++;
      continue;
    }
    const vm = server['OS-EXT-STS:vm_state'] ?? '';
    const task = server['OS-EXT-STS:task_state'];
    if (task) {
      // Busy (Nova would answer 409): wait, but not forever.
      const since = s.since ?? iso(io.now());
      if (io.now() <= Date.parse(since) + timeout) {
        e.servers[i] = { ...s, since };
        continue;
      }
      if (policy.evacuation.resetStuckServers && !s.reset) {
        // masakari's way out: reset to error (clears task_state), then evacuate once more.
        e.servers[i] = { ...s, reset: true, since: iso(io.now()) };
        await io.write(recount(e));
        try {
          await nova.resetState(s.id, 'error');
          io.log('stuck server reset with os-resetState', { server: s.id, task });
        } catch (err) {
          e.servers[i] = { ...s, reset: true, state: 'failed', error: `task_state ${task} for more than ${timeout} ms and os-resetState failed: ${(err as Error).message}`.slice(0, 512) };
        }
        continue;
      }
      e.servers[i] = { ...s, state: 'failed', error: `task_state ${task} for more than ${timeout} ms${s.reset ? ' (after os-resetState)' : ''}: needs an operator` };
      continue;
    }
    if (!GOOD_VM.has(vm)) {
      e.servers[i] = { ...s, state: 'skipped', error: `vm_state ${vm} cannot be evacuated` };
      continue;
    }
    // Intent first: once written, a restart treats this request as sent with an unknown outcome.
    e.servers[i] = { ...s, state: 'requested', since: iso(io.now()) };
    delete e.servers[i]!.answer;
    await io.write(recount(e));
    try {
      await nova.evacuate(s.id, { ...(policy.evacuation.targetHost ? { host: policy.evacuation.targetHost } : {}), microversion: e.microversion });
      e.servers[i] = { ...e.servers[i]!, answer: 'accepted' };
      inFlight++;
    } catch (err) {
      const status = (err as { status?: number }).status ?? 0;
      if (status === 409) {
        // Busy: Nova refused it, nothing was started; ask again later, under the same busy deadline.
        io.log('evacuate refused as busy (409); will retry', { server: s.id, err: (err as Error).message });
        e.servers[i] = { ...s, state: 'pending', since: s.since ?? iso(io.now()) };
      } else if (status >= 500 || status === 0) {
        // Sent, no usable answer (timeout, lost connection, 5xx): the outcome is unknown. The progress
        // check asks Nova and re-sends only after the settle window without a trace.
        io.log('evacuate outcome unknown; will re-check in Nova before any new request', { server: s.id, err: (err as Error).message });
        e.servers[i] = { ...e.servers[i]!, answer: 'unknown' };
        inFlight++;
      } else {
        e.servers[i] = { ...s, state: 'failed', error: (err as Error).message.slice(0, 512) };
      }
    }
  }
  e = bound(recount(e));
  // 3. Take more servers from Nova as room frees up (hosts with more servers than the list holds).
  const planned = e.planned ?? e.servers.length;
  if (planned < e.total && e.servers.filter(isWork).length < WORK_WINDOW) {
    const before = e.planned ?? 0;
    e = fill(e, eligible(await nova.listServers(host), policy), host);
    if ((e.planned ?? 0) === before) {
      // None left after the cursor: the rest left the host by other hands (deleted, or moved by an
      // operator) before their turn. Counted as failed: someone should look at them.
      const gone = e.total - before;
      io.log('servers no longer on the host before their turn', { count: gone });
      const omitted = e.omitted ?? { done: 0, failed: 0 };
      e = { ...e, planned: e.total, omitted: { ...omitted, failed: omitted.failed + gone } };
    }
    e = recount(e);
  }
  const finished = e.servers.every((s) => !isWork(s)) && (e.planned ?? e.servers.length) >= e.total;
  return { evacuation: e, finished };
}
