// The compute-node half of `hm9k dump`: a pure rendering of ComputeNode objects (as the API server
// holds them) into the operator's view: networks, nova service, power, phase, fence and evacuation
// records, and what hm9k is waiting for.
import type { ComputeNode, FencePolicy } from '../api/index.js';
import { ACK_FENCE_ANNOTATION, UNDRAIN_ANNOTATION } from '../api/index.js';

export interface NodeDump {
  name: string;
  host: string;
  phase: string;
  phaseSince?: string;
  maintenance: boolean;
  waitingFor?: string;
  networks: Record<'management' | 'storage' | 'tenant', { state: string; since?: string; reason?: string }>;
  nova: { apiState: string; status?: string; forcedDown?: boolean; disabledReason?: string; nodeSide?: string };
  power: { state: string; readAt?: string; error?: string };
  servers?: number;
  recovery?: NonNullable<ComputeNode['status']>['recovery'];
  fence?: NonNullable<ComputeNode['status']>['fence'];
  evacuation?: NonNullable<ComputeNode['status']>['evacuation'];
  hardware?: NonNullable<ComputeNode['status']>['hardware'];
  drain?: NonNullable<ComputeNode['status']>['drain'];
  acknowledgement?: string;
  conditions: { type: string; status: string; reason: string; message: string }[];
}

export function nodeDump(cn: ComputeNode): NodeDump {
  const s = cn.status ?? {};
  const net = (n: 'management' | 'storage' | 'tenant') => {
    const v = s.networks?.[n];
    return v ? { state: v.state, ...(v.since ? { since: v.since } : {}), ...(v.reason ? { reason: v.reason } : {}) } : { state: 'unknown' };
  };
  const ack = cn.metadata.annotations?.[ACK_FENCE_ANNOTATION];
  return {
    name: cn.metadata.name,
    host: cn.spec.host,
    phase: s.phase ?? 'Unknown',
    ...(s.phaseSince ? { phaseSince: s.phaseSince } : {}),
    maintenance: cn.spec.maintenance === true,
    ...(s.waitingFor ? { waitingFor: s.waitingFor } : {}),
    networks: { management: net('management'), storage: net('storage'), tenant: net('tenant') },
    nova: s.nova ?? { apiState: 'unknown' },
    power: s.power ?? { state: 'unknown' },
    ...(s.servers !== undefined ? { servers: s.servers } : {}),
    ...(s.recovery ? { recovery: s.recovery } : {}),
    ...(s.fence ? { fence: s.fence } : {}),
    ...(s.evacuation ? { evacuation: s.evacuation } : {}),
    ...(s.hardware ? { hardware: s.hardware } : {}),
    ...(s.drain ? { drain: s.drain } : {}),
    ...(ack ? { acknowledgement: ack } : {}),
    conditions: (s.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message })),
  };
}

export function ago(iso: string | undefined, now: Date): string {
  if (!iso) return '';
  const sec = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  if (sec < 120) return `${sec}s ago`;
  if (sec < 7200) return `${Math.round(sec / 60)}m ago`;
  return `${Math.round(sec / 3600)}h ago`;
}

const mark = (state: string) => ({ succeeded: 'ok', failed: 'FAILED', pending: '...', skipped: 'skipped' })[state] ?? state;

export function renderNodes(nodes: ComputeNode[], policies: FencePolicy[], now: Date): string {
  const lines: string[] = [];
  lines.push(`Compute nodes: ${nodes.length}`);
  for (const p of [...policies].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const st = p.status ?? {};
    const storm = st.conditions?.find((c) => c.type === 'StormActive');
    lines.push(
      `  policy ${p.metadata.name}: matched=${st.matchedNodes ?? '?'} healthy=${st.healthyNodes ?? '?'} unhealthy=${st.unhealthyNodes ?? '?'} in-flight=${st.remediationsInFlight ?? 0}` +
        `${storm?.status === 'True' ? `  STORM: ${storm.message}` : ''}${p.spec.safety?.paused ? '  PAUSED' : ''}${p.spec.safety?.dryRun ? '  DRY-RUN' : ''}`,
    );
  }
  for (const cn of [...nodes].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const d = nodeDump(cn);
    lines.push('');
    lines.push(`${d.name} (host ${d.host})  phase=${d.phase}${d.phaseSince ? ` since ${ago(d.phaseSince, now)}` : ''}${d.maintenance ? '  [maintenance]' : ''}`);
    if (d.waitingFor) lines.push(`  waiting for  ${d.waitingFor}`);
    const n = (k: 'management' | 'storage' | 'tenant') => {
      const v = d.networks[k];
      return `${k}=${v.state}${v.state !== 'up' && v.since ? ` (${ago(v.since, now)}${v.reason ? `: ${v.reason}` : ''})` : ''}`;
    };
    lines.push(`  networks     ${n('management')}  ${n('storage')}  ${n('tenant')}`);
    lines.push(
      `  nova         api=${d.nova.apiState}${d.nova.status ? ` ${d.nova.status}` : ''}${d.nova.forcedDown ? ' forced-down' : ''}` +
        `${d.nova.disabledReason ? ` reason="${d.nova.disabledReason}"` : ''}  node-side=${d.nova.nodeSide ?? 'unknown'}`,
    );
    lines.push(`  power        ${d.power.state}${d.power.readAt ? ` (read ${ago(d.power.readAt, now)})` : ''}${d.power.error ? `  error: ${d.power.error}` : ''}`);
    if (d.servers !== undefined) lines.push(`  servers      ${d.servers}`);
    if (d.hardware) {
      const h = d.hardware;
      const bad = (h.sensors ?? []).filter((x) => x.state !== 'ok');
      lines.push(`  hardware     ${h.state}${h.error ? `  error: ${h.error}` : ''}  sensors: ${(h.sensors ?? []).length} (${bad.length ? bad.map((x) => `${x.name} ${x.state}${x.reading ? ` ${x.reading}` : ''}`).join('; ') : 'all ok'})${h.selCursor !== undefined ? `  SEL cursor ${h.selCursor}` : ''}`);
      for (const r of h.reasons ?? []) lines.push(`               ${r}`);
    }
    if (d.drain) {
      const dr = d.drain;
      lines.push(`  drain        ${dr.id} ${ago(dr.startedAt, now)} (${dr.source}): ${dr.reason}`);
      lines.push(`               disable ${mark(dr.disabled)}; ${dr.migrated}/${dr.total} live-migrated, ${dr.failed} need an operator, ${dr.left} left${dr.result ? `; result ${dr.result}` : ''}${dr.microversion ? ` (microversion ${dr.microversion})` : ''}`);
      for (const x of dr.servers) lines.push(`               ${x.id}  ${x.state}${x.to ? ` -> ${x.to}` : ''}${x.migrationId ? `  migration ${x.migrationId}` : ''}${x.error ? `  ${x.error}` : ''}`);
      if (dr.result && dr.result !== 'handedOver') lines.push(`               return to service: kubectl annotate cn ${d.name} ${UNDRAIN_ANNOTATION}=${dr.id}`);
    }
    if (d.recovery && d.recovery.attempts > 0) {
      lines.push(`  recovery     ${d.recovery.attempts} attempt(s)${d.recovery.kind ? ` of ${d.recovery.kind}` : ''}${d.recovery.lastAttempt ? `, last ${ago(d.recovery.lastAttempt, now)}` : ''}${d.recovery.lastResult ? `: ${d.recovery.lastResult}` : ''}`);
    }
    if (d.fence) {
      const f = d.fence;
      lines.push(`  fence        ${f.id} ${ago(f.startedAt, now)} by ${f.leaseHolder} (lease transitions ${f.leaseTransitions}): ${f.reason}`);
      lines.push(`               ${f.steps.map((s) => `${s.name} ${mark(s.state)}${s.state === 'failed' && s.message ? ` (${s.message})` : ''}`).join(', ') || 'no step yet'}`);
      if (f.powerOffConfirmedAt) lines.push(`               power off confirmed ${ago(f.powerOffConfirmedAt, now)}`);
      if (d.phase === 'Fenced' && !f.acknowledged) lines.push(`               acknowledge after repair: kubectl annotate cn ${d.name} ${ACK_FENCE_ANNOTATION}=${f.id}`);
    }
    if (d.evacuation) {
      const e = d.evacuation;
      lines.push(`  evacuation   ${e.done}/${e.total} done, ${e.failed} failed (microversion ${e.microversion}, ${ago(e.startedAt, now)})`);
      for (const s of e.servers) lines.push(`               ${s.id}  ${s.from} -> ${s.to ?? '?'}  ${s.state}${s.error ? `  ${s.error}` : ''}`);
      // The list is bounded; the counts are exact (issue 9 item 8).
      const notListed = [e.omitted?.done ? `${e.omitted.done} evacuated` : '', e.omitted?.failed ? `${e.omitted.failed} failed` : '', (e.planned ?? e.total) < e.total ? `${e.total - (e.planned ?? e.total)} not yet planned` : ''].filter(Boolean);
      if (notListed.length) lines.push(`               not listed: ${notListed.join(', ')}`);
    }
    for (const c of d.conditions.filter((c) => c.status !== 'True' || c.type === 'Fenced')) {
      if (c.type === 'Fenced' && c.status !== 'True') continue;
      lines.push(`  condition    ${c.type}=${c.status} ${c.reason}: ${c.message}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
