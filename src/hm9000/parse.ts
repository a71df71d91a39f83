// Validation of DEA messages (formats in ./messages.ts). A malformed message is rejected whole
// (applying part of a heartbeat would drop the instances it failed to list).
import { EXIT_REASONS, INSTANCE_STATES, type DeaHeartbeat, type DropletExited } from './messages.js';

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isIndex = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;

function json(text: string | Uint8Array): Parsed<unknown> {
  const s = typeof text === 'string' ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8');
  if (s.trim().length === 0) return { ok: false, error: 'empty body' };
  try {
    return { ok: true, value: JSON.parse(s) };
  } catch (e) {
    return { ok: false, error: `not JSON: ${(e as Error).message}` };
  }
}

export function parseHeartbeat(raw: string | Uint8Array): Parsed<DeaHeartbeat> {
  const j = json(raw);
  if (!j.ok) return j;
  const v = j.value as Record<string, unknown>;
  if (!v || typeof v !== 'object' || Array.isArray(v)) return { ok: false, error: 'not an object' };
  if (!isStr(v.dea)) return { ok: false, error: 'missing "dea"' };
  if (!Array.isArray(v.droplets)) return { ok: false, error: 'missing "droplets" list' };
  for (const [n, d] of (v.droplets as Record<string, unknown>[]).entries()) {
    if (!d || typeof d !== 'object') return { ok: false, error: `droplets[${n}] is not an object` };
    if (!isStr(d.droplet) || !isStr(d.version) || !isStr(d.instance)) return { ok: false, error: `droplets[${n}]: droplet, version and instance must be strings` };
    if (!isIndex(d.index)) return { ok: false, error: `droplets[${n}]: index must be an integer >= 0` };
    if (!INSTANCE_STATES.includes(d.state as never)) return { ok: false, error: `droplets[${n}]: unknown state ${JSON.stringify(d.state)}` };
    if (typeof d.state_timestamp !== 'number' || !Number.isFinite(d.state_timestamp)) return { ok: false, error: `droplets[${n}]: state_timestamp must be a number` };
    if (d.cc_partition != null && typeof d.cc_partition !== 'string') return { ok: false, error: `droplets[${n}]: cc_partition must be a string` };
  }
  return { ok: true, value: v as unknown as DeaHeartbeat };
}

export function parseExited(raw: string | Uint8Array): Parsed<DropletExited> {
  const j = json(raw);
  if (!j.ok) return j;
  const v = j.value as Record<string, unknown>;
  if (!v || typeof v !== 'object' || Array.isArray(v)) return { ok: false, error: 'not an object' };
  if (!isStr(v.droplet) || !isStr(v.instance)) return { ok: false, error: 'droplet and instance must be strings' };
  if (!EXIT_REASONS.includes(v.reason as never)) return { ok: false, error: `unknown reason ${JSON.stringify(v.reason)}` };
  if (v.index !== undefined && !isIndex(v.index)) return { ok: false, error: 'index must be an integer >= 0' };
  // The store copies crash_timestamp into the instance's state_timestamp: a number or nothing (dea_ng
  // sends null for fields it has no value for; that is not malformed).
  for (const k of ['crash_timestamp', 'exit_status'] as const) {
    if (v[k] != null && (typeof v[k] !== 'number' || !Number.isFinite(v[k]))) return { ok: false, error: `${k} must be a number` };
  }
  if (v.exit_description != null && typeof v.exit_description !== 'string') return { ok: false, error: 'exit_description must be a string' };
  if (v.cc_partition != null && typeof v.cc_partition !== 'string') return { ok: false, error: 'cc_partition must be a string' };
  return { ok: true, value: { ...(v as unknown as DropletExited), version: typeof v.version === 'string' ? v.version : '', index: (v.index as number | undefined) ?? 0 } };
}
