// Hardware health decisions (issue 12): a pure function of (the BMC readings history, the policy's
// hardware rules) -> Ok | Notify | Drain with the reasons. No I/O: the hardware monitor
// (monitors/hardware.ts) reads the BMCs and keeps the history; whoever acts on a Drain is elsewhere.
import { HARDWARE_CONDITIONS, parseDuration, type FencePolicySpec, type HardwareAction, type HardwareCondition } from '../../api/index.js';
import { atLeast, selFault, type HardwareFault, type HardwareSensor, type SelEntry } from '../../clients/ipmi-sensors.js';

export interface ResolvedHardware {
  enabled: boolean;
  intervalMs: number;
  /** Consecutive readable readings a condition must hold (FencePolicy hardware.samples). */
  samples: number;
  rules: Record<HardwareCondition, HardwareAction>;
}

/** Applies the schema defaults of FencePolicy `hardware` (src/api/nodes.ts HARDWARE_CONDITIONS). */
export function resolveHardware(spec: FencePolicySpec['hardware']): ResolvedHardware {
  const h = spec ?? {};
  const rules = Object.fromEntries(
    (Object.keys(HARDWARE_CONDITIONS) as HardwareCondition[]).map((k) => [k, h.rules?.[k] ?? HARDWARE_CONDITIONS[k].default]),
  ) as Record<HardwareCondition, HardwareAction>;
  return { enabled: h.enabled ?? true, intervalMs: parseDuration(h.interval ?? '60s'), samples: h.samples ?? 3, rules };
}

/** One read of one BMC: its sensors, or why it could not be read (never a guess). */
export type HardwareReading =
  | { at: number; readable: true; sensors: HardwareSensor[] }
  | { at: number; readable: false; error: string };

/** A condition seen on one sensor. */
export interface HardwareFinding {
  condition: HardwareCondition;
  sensor: string;
  detail: string;
}

export interface HardwareReason extends HardwareFinding {
  action: Exclude<HardwareAction, 'Ignore'>;
  /** Consecutive readable readings it held in (at least `samples` for a reason). */
  samples: number;
}

export interface HardwareDecision {
  action: 'Ok' | 'Notify' | 'Drain';
  /** `unknown` when the latest read failed: nothing is decided on old readings then. */
  bmc: 'readable' | 'unknown';
  error?: string;
  /** Conditions that held long enough, with the action of each (Ignore rules left out). */
  reasons: HardwareReason[];
  /** Conditions seen in the latest reading that have not held `samples` readings yet. */
  pending: (HardwareFinding & { samples: number })[];
}

const FAULT_CONDITION: Record<HardwareFault, HardwareCondition> = {
  powerRedundancy: 'powerRedundancyLost',
  powerSupply: 'powerSupplyFailure',
  fan: 'fanFailure',
  driveSlot: 'driveFault',
  memoryUncorrectable: 'memoryUncorrectable',
  processor: 'processorError',
};

function reading(s: HardwareSensor): string {
  return s.value === undefined ? s.states.join(', ') : `${s.value} ${s.unit ?? ''}`.trim();
}

/** The conditions one reading shows, one per (condition, sensor). */
export function findings(sensors: HardwareSensor[]): HardwareFinding[] {
  const out: HardwareFinding[] = [];
  for (const s of sensors) {
    // Threshold states (IPMI 2.0 section 36.3): critical or worse is the sensor's kind of fault,
    // non-critical is an early warning on any sensor.
    if (atLeast(s.state, 'critical')) {
      const condition: HardwareCondition = s.kind === 'cpuTemperature' ? 'cpuTemperatureCritical' : s.kind === 'fan' ? 'fanFailure' : 'sensorCritical';
      out.push({ condition, sensor: s.name, detail: `${s.name} ${reading(s)} is ${s.state}` });
    } else if (s.state === 'nonCritical') {
      out.push({ condition: 'sensorNonCritical', sensor: s.name, detail: `${s.name} ${reading(s)} is nonCritical` });
    }
    for (const f of s.faults) {
      const condition = FAULT_CONDITION[f];
      if (!out.some((x) => x.condition === condition && x.sensor === s.name)) out.push({ condition, sensor: s.name, detail: `${s.name}: ${s.states.join(', ')}` });
    }
  }
  return out;
}

const RANK = { Ok: 0, Notify: 1, Drain: 2 } as const;

/**
 * The decision over a node's readings, oldest first. A condition counts once it held in the last
 * `samples` readable readings (a single spike is not a fault); unreadable readings in between
 * neither count nor clear (the BMC's silence says nothing about the hardware). When the latest read
 * failed, the decision is Ok with bmc `unknown`: hm9k never acts on what it cannot see now.
 */
export function evaluateHardware(history: readonly HardwareReading[], rules: ResolvedHardware): HardwareDecision {
  const latest = history.at(-1);
  if (!latest) return { action: 'Ok', bmc: 'unknown', error: 'not read yet', reasons: [], pending: [] };
  if (!latest.readable) return { action: 'Ok', bmc: 'unknown', error: latest.error, reasons: [], pending: [] };
  const known = history.filter((r): r is Extract<HardwareReading, { readable: true }> => r.readable);
  const sets = known.map((r) => new Set(findings(r.sensors).map((f) => `${f.condition}\u0000${f.sensor}`)));
  const reasons: HardwareReason[] = [];
  const pending: HardwareDecision['pending'] = [];
  let action: HardwareDecision['action'] = 'Ok';
  for (const f of findings(latest.sensors)) {
    const rule = rules.rules[f.condition];
    if (rule === 'Ignore') continue;
    const key = `${f.condition}\u0000${f.sensor}`;
    let n = 0;
    for (let i = sets.length - 1; i >= 0 && sets[i]!.has(key); i--) n++;
    if (n < rules.samples) {
      pending.push({ ...f, samples: n });
      continue;
    }
    reasons.push({ ...f, action: rule, samples: n });
    if (RANK[rule] > RANK[action]) action = rule;
  }
  return { action, bmc: 'readable', reasons, pending };
}

/** A new SEL entry worth telling the operators about, with the condition it records. */
export interface SelNotice {
  entry: SelEntry;
  condition: HardwareCondition;
}

/**
 * New SEL entries that record a fault whose rule is not Ignore. A SEL entry is history, not a
 * present state: it is notified once and never drains by itself (the sensors decide that).
 */
export function selNotices(fresh: readonly SelEntry[], rules: ResolvedHardware): SelNotice[] {
  const out: SelNotice[] = [];
  for (const e of fresh) {
    const fault = selFault(e);
    const condition = fault ? FAULT_CONDITION[fault] : thresholdCondition(e);
    if (condition && rules.rules[condition] !== 'Ignore') out.push({ entry: e, condition });
  }
  return out;
}

/** Threshold crossings logged in the SEL ("Upper Critical going high" on a temperature sensor). */
function thresholdCondition(e: SelEntry): HardwareCondition | undefined {
  if (!e.asserted) return undefined;
  const m = /^(Upper|Lower) (Non-critical|Critical|Non-recoverable) going (high|low)$/i.exec(e.event);
  if (!m) return undefined;
  if (/^non-critical$/i.test(m[2]!)) return 'sensorNonCritical';
  if (/^Temperature\b/.test(e.sensor) && /\b(CPU|Proc)/i.test(e.sensor)) return 'cpuTemperatureCritical';
  if (/^Fan\b/.test(e.sensor)) return 'fanFailure';
  return 'sensorCritical';
}
