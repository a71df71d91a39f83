// Evacuation, one tick at a time: plans from Nova's server list (intent recorded first), requests
// evacuations with bounded concurrency and per-server preconditions, and tracks each through its
// migration. Before (re)requesting a server it asks Nova where the server is and whether an
// evacuation migration already exists, so a restart never evacuates a server twice.
import type { ComputeNodeStatus, EvacuatedServer } from '../api/index.js';
import type { NovaClient, NovaMigration, NovaServer } from '../clients/nova.js';
import { compareMicroversion, parseMicroversion, type ResolvedPolicy } from './config.js';

type Evacuation = NonNullable<ComputeNodeStatus['evacuation']>;
export const MAX_TRACKED_SERVERS = 200;

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

/** Plans the evacuation: every server on the host (optionally those with the metadata key). */
export async function planEvacuation(nova: NovaClient, host: string, policy: ResolvedPolicy, now: number): Promise<Evacuation> {
  const servers = (await nova.listServers(host)).filter((s) => !policy.evacuation.metadataKey || (s.metadata && policy.evacuation.metadataKey in s.metadata));
  const mv = await nova.use(policy.evacuation.microversion);
  return {
    startedAt: new Date(now).toISOString(),
    microversion: mv,
    total: Math.min(servers.length, MAX_TRACKED_SERVERS),
    done: 0,
    failed: 0,
    servers: servers.slice(0, MAX_TRACKED_SERVERS).map((s) => ({ id: s.id, from: host, state: 'pending' as const, wasActive: s.status === 'ACTIVE' })),
  };
}

const GOOD_VM = new Set(['active', 'stopped', 'error']);

function latest(migs: NovaMigration[]): NovaMigration | undefined {
  return [...migs].sort((a, b) => Number(b.id) - Number(a.id))[0];
}

function recount(e: Evacuation): Evacuation {
  return { ...e, done: e.servers.filter((s) => s.state === 'done').length, failed: e.servers.filter((s) => s.state === 'failed' || s.state === 'skipped').length };
}

/** Progress of one server already requested (or found moved): returns the updated record. */
async function check(nova: NovaClient, s: EvacuatedServer, server: NovaServer | undefined, mig: NovaMigration | undefined, micro: string): Promise<EvacuatedServer> {
  const host = server?.['OS-EXT-SRV-ATTR:host'] ?? undefined;
  const task = server?.['OS-EXT-STS:task_state'] ?? null;
  const vm = server?.['OS-EXT-STS:vm_state'];
  if (!server) return { ...s, state: 'failed', error: 'server no longer exists in Nova' };
  if (mig && (mig.status === 'failed' || mig.status === 'error')) return { ...s, state: 'failed', migrationId: String(mig.id), error: `migration ${mig.id} ${mig.status}` };
  if (vm === 'error' && !task && (!host || host === s.from)) return { ...s, state: 'failed', ...(mig ? { migrationId: String(mig.id) } : {}), error: 'vm_state error' };
  if (host && host !== s.from && !task && (!mig || mig.status === 'done' || mig.status === 'completed')) {
    const out: EvacuatedServer = { ...s, state: 'done', to: host, ...(mig ? { migrationId: String(mig.id) } : {}) };
    delete out.error;
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

/**
 * One tick. Returns the updated record and whether every server reached a final state.
 * `io.write` is called with the intent (state `requested`) before each POST evacuate.
 */
export async function evacuationTick(nova: NovaClient, e0: Evacuation, host: string, policy: ResolvedPolicy, io: EvacuationIo): Promise<{ evacuation: Evacuation; finished: boolean }> {
  let e = structuredClone(e0);
  const deadline = Date.parse(e.startedAt) + policy.evacuation.perServerTimeoutMs * Math.max(1, Math.ceil(e.total / policy.evacuation.concurrency));
  const migrations = await nova.migrations({ sourceCompute: host, type: 'evacuation' });
  const migOf = (id: string) => latest(migrations.filter((m) => m.instance_uuid === id && m.source_compute === host));
  // 1. Progress of requested servers (and re-checks after a restart).
  for (let i = 0; i < e.servers.length; i++) {
    const s = e.servers[i]!;
    if (s.state !== 'requested') continue;
    let server: NovaServer | undefined;
    try {
      server = await nova.getServer(s.id);
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
    }
    const mig = migOf(s.id);
    let next = await check(nova, s, server, mig, e.microversion);
    const noTrace = next.state === 'requested' && !mig && server && server['OS-EXT-SRV-ATTR:host'] === s.from && !server['OS-EXT-STS:task_state'];
    // When the intent was recorded (older records: when the evacuation started).
    const since = Date.parse(s.requestedAt ?? e.startedAt);
    if (noTrace && s.answer !== 'accepted' && io.now() - since >= (io.settleMs ?? DEFAULT_SETTLE_MS)) {
      // Recorded, no answer seen, and no trace in Nova for the whole settle window: the request never
      // reached Nova (a restart between intent and request): request again.
      next = { ...s, state: 'pending' };
      delete next.answer;
      delete next.requestedAt;
      io.log('evacuation request not found in Nova for the settle window; will request again', { server: s.id, requestedAt: s.requestedAt, answer: s.answer ?? 'not known to be sent' });
    } else if (noTrace && s.answer !== 'accepted') {
      // Outcome unknown (maybe still in flight from a stopped leader): ask Nova again next tick, never re-send yet.
      next = { ...s };
    } else if (next.state === 'requested' && io.now() > deadline) {
      next = { ...s, state: 'failed', error: `timed out after ${policy.evacuation.perServerTimeoutMs} ms per server` };
    }
    e.servers[i] = next;
  }
  e = recount(e);
  // 2. Start pending servers up to the concurrency limit.
  let inFlight = e.servers.filter((s) => s.state === 'requested').length;
  for (let i = 0; i < e.servers.length && inFlight < policy.evacuation.concurrency && !io.aborted?.(); i++) {
    const s = e.servers[i]!;
    if (s.state !== 'pending') continue;
    let server: NovaServer | undefined;
    try {
      server = await nova.getServer(s.id);
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
    }
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
    if (task) continue; // busy: try again next tick (Nova would answer 409)
    if (!GOOD_VM.has(vm)) {
      e.servers[i] = { ...s, state: 'skipped', error: `vm_state ${vm} cannot be evacuated` };
      continue;
    }
    // Intent first: once written, a restart treats this request as sent with an unknown outcome.
    e.servers[i] = { ...s, state: 'requested', requestedAt: new Date(io.now()).toISOString() };
    delete e.servers[i]!.answer;
    await io.write(recount(e));
    try {
      await nova.evacuate(s.id, { ...(policy.evacuation.targetHost ? { host: policy.evacuation.targetHost } : {}), microversion: e.microversion });
      e.servers[i] = { ...e.servers[i]!, answer: 'accepted' };
      inFlight++;
    } catch (err) {
      const status = (err as { status?: number }).status ?? 0;
      if (status === 409) {
        // Nova refused it (busy): nothing was started; ask again later.
        io.log('evacuate refused (409); will request again', { server: s.id, err: (err as Error).message });
        e.servers[i] = { ...s, state: 'pending' };
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
  e = recount(e);
  const finished = e.servers.every((s) => s.state === 'done' || s.state === 'failed' || s.state === 'skipped');
  return { evacuation: e, finished };
}
