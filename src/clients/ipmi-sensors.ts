// Pure parsers for ipmitool's sensor and SEL listings (`sdr elist`, `sensor`, `sel elist`), and the
// classification of what they say into threshold states and discrete hardware faults. No I/O here:
// the client (ipmi.ts) runs ipmitool, these functions turn its text into typed observations.
//
// Formats are ipmitool 1.8.x (lib/ipmi_sdr.c ipmi_sdr_print_sensor_eventonly/_fc in "extended"
// mode, lib/ipmi_sensor.c ipmi_sensor_print_fc_threshold, lib/ipmi_sel.c ipmi_sel_print_std_entry):
// pipe-separated columns. A line that does not fit is returned in `rejected` (the caller counts and
// logs it once) and never guessed at. Discrete state texts are ipmitool's sensor-specific offset
// strings (include/ipmitool/ipmi_sel_supp.h, IPMI 2.0 table 42-3).

/** Threshold state of a sensor (IPMI 2.0 section 36.3); `unknown` when there is no reading. */
export const THRESHOLD_STATES = ['ok', 'nonCritical', 'critical', 'nonRecoverable', 'unknown'] as const;
export type ThresholdState = (typeof THRESHOLD_STATES)[number];

/** The discrete faults the hardware rules know (issue 12). */
export const HARDWARE_FAULTS = ['fan', 'powerSupply', 'powerRedundancy', 'driveSlot', 'memoryUncorrectable', 'processor'] as const;
export type HardwareFault = (typeof HARDWARE_FAULTS)[number];

export interface Thresholds {
  lowerNonRecoverable?: number;
  lowerCritical?: number;
  lowerNonCritical?: number;
  upperNonCritical?: number;
  upperCritical?: number;
  upperNonRecoverable?: number;
}

/** One line of `ipmitool sdr elist`. */
export interface SdrEntry {
  name: string;
  /** Sensor number (the `01h` column). */
  number: number;
  /** Threshold state from the status column (`ok`, `unc`, `lcr`...); `unknown` for `ns`/`na`. */
  state: ThresholdState;
  /** Entity id and instance (`3.1` = processor 1; IPMI 2.0 table 43-13). */
  entity: { id: number; instance: number };
  /** The reading column verbatim (`45 degrees C`, `Presence detected, Failure detected`). */
  reading: string;
  /** Numeric reading when the reading column is `<number> <unit>`. */
  value?: number;
  unit?: string;
  /** Asserted discrete states (the reading column split on commas) when it is not a number. */
  states: string[];
}

/** One line of `ipmitool sensor`. */
export interface SensorEntry {
  name: string;
  value?: number;
  unit: string;
  /** `discrete` sensors have no threshold state. */
  discrete: boolean;
  state: ThresholdState;
  thresholds: Thresholds;
}

/** One line of `ipmitool sel elist`. */
export interface SelEntry {
  /** SEL record id (ipmitool prints it in hex). */
  id: number;
  /** `MM/DD/YYYY HH:MM:SS`, or `Pre-Init <seconds>` before the BMC's clock was set. */
  time: string;
  /** Sensor type and name (`Temperature CPU Temp`). */
  sensor: string;
  event: string;
  asserted: boolean;
  detail: string;
}

export interface Parsed<T> {
  entries: T[];
  /** Lines that did not parse (bounded, for one log line and a counter). */
  rejected: string[];
}

const MAX_REJECTED = 20;
const MAX_FIELD = 256;

function lines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trimEnd()).filter((l) => l.trim() !== '');
}

function reject(rejected: string[], line: string): void {
  if (rejected.length < MAX_REJECTED) rejected.push(line.slice(0, 200));
}

function cleanField(s: string): string | undefined {
  const t = s.trim();
  // Control characters or absurd lengths are not ipmitool's output: refuse rather than store them.
  if (t.length > MAX_FIELD || /[\u0000-\u001f\u007f]/.test(t)) return undefined;
  return t;
}

/** ipmitool's status abbreviations: ok, nc/cr/nr (sensor), lnc/unc/lcr/ucr/lnr/unr (sdr). */
export function thresholdState(s: string): ThresholdState | undefined {
  const t = s.trim().toLowerCase();
  if (t === 'ok') return 'ok';
  if (t === 'ns' || t === 'na' || t === '') return 'unknown';
  const m = /^[lu]?(nc|cr|nr)$/.exec(t);
  if (!m) return undefined;
  return m[1] === 'nc' ? 'nonCritical' : m[1] === 'cr' ? 'critical' : 'nonRecoverable';
}

function num(s: string): number | undefined {
  const t = s.trim();
  if (!/^-?[0-9]+(\.[0-9]+)?$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

export function parseSdrElist(text: string): Parsed<SdrEntry> {
  const entries: SdrEntry[] = [];
  const rejected: string[] = [];
  for (const line of lines(text)) {
    const f = line.split('|').map(cleanField);
    if (f.length !== 5 || f.some((x) => x === undefined)) { reject(rejected, line); continue; }
    const [name, idCol, statusCol, entityCol, reading] = f as string[];
    const id = /^([0-9a-f]{1,2})h$/i.exec(idCol!);
    const ent = /^([0-9]{1,3})\.([0-9]{1,3})$/.exec(entityCol!);
    const state = thresholdState(statusCol!);
    if (!name || !id || !ent || state === undefined) { reject(rejected, line); continue; }
    const e: SdrEntry = { name, number: parseInt(id[1]!, 16), state, entity: { id: Number(ent[1]), instance: Number(ent[2]) }, reading: reading!, states: [] };
    const m = /^(-?[0-9]+(?:\.[0-9]+)?)\s+(.+)$/.exec(reading!);
    const v = m ? num(m[1]!) : undefined;
    if (m && v !== undefined) {
      e.value = v;
      e.unit = m[2]!;
    } else if (!/^(No Reading|Disabled|Not Readable|Unavailable)$/i.test(reading!) && !/^0x[0-9a-f]+$/i.test(reading!)) {
      e.states = reading!.split(',').map((s) => s.trim()).filter(Boolean);
    }
    if (e.value === undefined && e.states.length === 0 && state !== 'ok') e.state = 'unknown';
    if (e.value === undefined && /^(No Reading|Disabled|Not Readable|Unavailable)$/i.test(reading!)) e.state = 'unknown';
    entries.push(e);
  }
  return { entries, rejected };
}

export function parseSensorList(text: string): Parsed<SensorEntry> {
  const entries: SensorEntry[] = [];
  const rejected: string[] = [];
  for (const line of lines(text)) {
    const f = line.split('|').map(cleanField);
    if (f.length !== 10 || f.some((x) => x === undefined)) { reject(rejected, line); continue; }
    const [name, valueCol, unit, statusCol, lnr, lcr, lnc, unc, ucr, unr] = f as string[];
    if (!name) { reject(rejected, line); continue; }
    const discrete = unit === 'discrete';
    let state: ThresholdState | undefined;
    if (discrete) state = 'ok';
    else state = thresholdState(statusCol!);
    if (state === undefined) { reject(rejected, line); continue; }
    const value = discrete ? undefined : num(valueCol!);
    if (!discrete && value === undefined) state = 'unknown';
    const thresholds: Thresholds = {};
    const put = (k: keyof Thresholds, s: string) => { const v = num(s); if (v !== undefined) thresholds[k] = v; };
    put('lowerNonRecoverable', lnr!); put('lowerCritical', lcr!); put('lowerNonCritical', lnc!);
    put('upperNonCritical', unc!); put('upperCritical', ucr!); put('upperNonRecoverable', unr!);
    entries.push({ name, ...(value === undefined ? {} : { value }), unit: unit!, discrete, state, thresholds });
  }
  return { entries, rejected };
}

export function parseSelElist(text: string): Parsed<SelEntry> {
  const entries: SelEntry[] = [];
  const rejected: string[] = [];
  for (const line of lines(text)) {
    if (/^SEL has no entries/i.test(line.trim())) continue;
    const f = line.split('|').map(cleanField);
    if (f.length < 6 || f.length > 7 || f.some((x) => x === undefined)) { reject(rejected, line); continue; }
    const [idCol, date, time, sensor, event, dir, detail] = f as string[];
    const id = /^[0-9a-f]{1,4}$/i.test(idCol!) ? parseInt(idCol!, 16) : NaN;
    if (!Number.isInteger(id) || !/^(Asserted|Deasserted)$/.test(dir!) || !sensor || !event) { reject(rejected, line); continue; }
    entries.push({ id, time: `${date} ${time}`, sensor: sensor!, event: event!, asserted: dir === 'Asserted', detail: detail ?? '' });
  }
  return { entries, rejected };
}

// IPMI 2.0 table 43-13 entity ids.
const ENTITY_PROCESSOR = 3;
const ENTITY_DRIVE_BAY = 4;
const ENTITY_POWER_SUPPLY = 10;
const ENTITY_FAN = 29;

/**
 * The fault a discrete state text means, given what the sensor is (entity, name or SEL sensor
 * column). Texts are ipmitool's (ipmi_sel_supp.h): Power Supply "Failure detected", "Predictive
 * failure", "Power Supply AC lost", "AC lost or out-of-range", "Config Error"; Redundancy "Redundancy
 * Lost", "Redundancy Degraded", "Non-Redundant..."; Drive Slot "Drive Fault", "Predictive Failure",
 * "In Failed Array", "Rebuild/Remap Aborted"; Memory "Uncorrectable ECC"; Processor "IERR",
 * "Thermal Trip"; Fan (generic severity) "Transition to Critical/Non-recoverable", "Device Absent"
 * on a fan. Correctable ECC, presence and "Fully Redundant" are not faults.
 */
export function faultOf(state: string, what: { entity?: number; name: string }): HardwareFault | undefined {
  const s = state.trim();
  const n = what.name;
  const isPsu = what.entity === ENTITY_POWER_SUPPLY || /^Power Supply\b|\bPSU|\bPS[0-9]/i.test(n);
  const isFan = what.entity === ENTITY_FAN || /^Fan\b|\bfan/i.test(n);
  const isDrive = what.entity === ENTITY_DRIVE_BAY || /^Drive Slot|\bdrive|\bdisk|\bHDD/i.test(n);
  if (/^Uncorrectable ECC/i.test(s)) return 'memoryUncorrectable';
  if (/^(IERR|Thermal Trip)$/i.test(s)) return 'processor';
  if (/^(Redundancy Lost|Redundancy Degraded|Non-Redundant)/i.test(s)) return isPsu ? 'powerRedundancy' : isFan ? 'fan' : undefined;
  if (isDrive && /^(Drive Fault|Predictive Failure|In Failed Array|In Critical Array|Rebuild\/Remap Aborted)$/i.test(s)) return 'driveSlot';
  if (isPsu && /^(Failure detected|Predictive failure|Power Supply AC lost|AC lost or out-of-range|AC out-of-range, but present|Config Error)$/i.test(s)) return 'powerSupply';
  if (isFan && /^(Transition to (Critical|Non-recoverable)|Device Absent)/i.test(s)) return 'fan';
  return undefined;
}

export type SensorKind = 'cpuTemperature' | 'temperature' | 'fan' | 'other';

/** One sensor as the hardware monitor sees it: `sdr elist` joined with `sensor` by name. */
export interface HardwareSensor {
  name: string;
  number: number;
  kind: SensorKind;
  state: ThresholdState;
  value?: number;
  unit?: string;
  thresholds?: Thresholds;
  /** Asserted discrete states, verbatim. */
  states: string[];
  /** Faults those states mean. */
  faults: HardwareFault[];
}

function kindOf(e: SdrEntry): SensorKind {
  const unit = e.unit ?? '';
  if (/degrees C/i.test(unit)) return e.entity.id === ENTITY_PROCESSOR || /\bcpu|\bproc/i.test(e.name) ? 'cpuTemperature' : 'temperature';
  if (/RPM/i.test(unit) || e.entity.id === ENTITY_FAN) return 'fan';
  return 'other';
}

/**
 * Joins `sdr elist` (sensor number, entity, discrete states) with `sensor` (thresholds, and the
 * threshold state it computed from them). The worse of the two threshold states is kept: they are
 * two reads a moment apart, and a state seen in either is real.
 */
export function joinSensors(sdr: SdrEntry[], sensors: SensorEntry[]): HardwareSensor[] {
  const byName = new Map(sensors.map((s) => [s.name, s]));
  return sdr.map((e) => {
    const s = byName.get(e.name);
    const states = e.states;
    const faults = [...new Set(states.map((st) => faultOf(st, { entity: e.entity.id, name: e.name })).filter((f): f is HardwareFault => f !== undefined))];
    const state = s && !s.discrete ? worse(e.state, s.state) : e.state;
    return {
      name: e.name, number: e.number, kind: kindOf(e), state,
      ...(e.value === undefined ? {} : { value: e.value }),
      ...(e.unit === undefined ? {} : { unit: e.unit }),
      ...(s && !s.discrete && Object.keys(s.thresholds).length ? { thresholds: s.thresholds } : {}),
      states, faults,
    };
  });
}

const RANK: Record<ThresholdState, number> = { unknown: 0, ok: 1, nonCritical: 2, critical: 3, nonRecoverable: 4 };
export function worse(a: ThresholdState, b: ThresholdState): ThresholdState {
  return RANK[a] >= RANK[b] ? a : b;
}
/** True when `s` is at least as severe as `min` (unknown is never severe). */
export function atLeast(s: ThresholdState, min: ThresholdState): boolean {
  return s !== 'unknown' && RANK[s] >= RANK[min];
}

/** The fault an asserted SEL entry records, if any (the sensor column starts with the type text). */
export function selFault(e: SelEntry): HardwareFault | undefined {
  if (!e.asserted) return undefined;
  return faultOf(e.event, { name: e.sensor });
}

/**
 * SEL entries after the cursor (the last id already reported). Record ids are not ordered by
 * time after a clear, so "new" is "listed after the cursor's entry"; when the cursor's entry is
 * gone the SEL was cleared (or wrapped) and every entry is new. Returns the new cursor.
 */
export function newSelEntries(entries: SelEntry[], lastId: number | undefined): { fresh: SelEntry[]; lastId: number | undefined } {
  const last = entries.at(-1)?.id ?? lastId;
  if (lastId === undefined) return { fresh: entries, lastId: last };
  const i = entries.findIndex((e) => e.id === lastId);
  return { fresh: i < 0 ? entries : entries.slice(i + 1), lastId: last };
}
