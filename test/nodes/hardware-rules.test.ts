// The pure hardware decision (issue 12): readings history + rules -> Ok | Notify | Drain.
import { describe, expect, it } from 'vitest';
import type { HardwareSensor, SelEntry, ThresholdState } from '../../src/clients/ipmi-sensors.js';
import { evaluateHardware, findings, resolveHardware, selNotices, type HardwareReading } from '../../src/nodes/hardware/rules.js';

const cpu = (state: ThresholdState, value = 50): HardwareSensor => ({ name: 'CPU Temp', number: 1, kind: 'cpuTemperature', state, value, unit: 'degrees C', states: [], faults: [] });
const fan = (state: ThresholdState): HardwareSensor => ({ name: 'Fan1', number: 2, kind: 'fan', state, value: 400, unit: 'RPM', states: [], faults: [] });
const volt = (state: ThresholdState): HardwareSensor => ({ name: '12V', number: 9, kind: 'other', state, value: 10, unit: 'Volts', states: [], faults: [] });
const red = (lost: boolean): HardwareSensor => ({ name: 'PSU Redundancy', number: 5, kind: 'other', state: 'ok', states: [lost ? 'Redundancy Lost' : 'Fully Redundant'], faults: lost ? ['powerRedundancy'] : [] });
const ecc = (): HardwareSensor => ({ name: 'DIMM ECC', number: 7, kind: 'other', state: 'ok', states: ['Uncorrectable ECC'], faults: ['memoryUncorrectable'] });
const ok = (...sensors: HardwareSensor[]): HardwareReading => ({ at: 0, readable: true, sensors });
const dead: HardwareReading = { at: 0, readable: false, error: 'BMC not answering' };
const defaults = resolveHardware(undefined);

describe('resolveHardware', () => {
  it('defaults: CPU temperature critical and PSU redundancy lost drain, the rest notify, 3 samples, 60s', () => {
    expect(defaults).toMatchObject({ enabled: true, intervalMs: 60_000, samples: 3 });
    expect(defaults.rules).toEqual({
      cpuTemperatureCritical: 'Drain', powerRedundancyLost: 'Drain', powerSupplyFailure: 'Notify', fanFailure: 'Notify', driveFault: 'Notify',
      memoryUncorrectable: 'Notify', processorError: 'Notify', sensorCritical: 'Notify', sensorNonCritical: 'Notify',
    });
    expect(resolveHardware({ samples: 5, interval: '10s', rules: { sensorNonCritical: 'Ignore' } })).toMatchObject({ samples: 5, intervalMs: 10_000, rules: { sensorNonCritical: 'Ignore', cpuTemperatureCritical: 'Drain' } });
  });
});

describe('findings of one reading', () => {
  it.each([
    ['CPU critical', [cpu('critical')], ['cpuTemperatureCritical']],
    ['CPU non-recoverable counts as critical', [cpu('nonRecoverable')], ['cpuTemperatureCritical']],
    ['CPU non-critical', [cpu('nonCritical')], ['sensorNonCritical']],
    ['fan critical is a fan failure', [fan('critical')], ['fanFailure']],
    ['another sensor critical', [volt('critical')], ['sensorCritical']],
    ['unknown is no finding', [cpu('unknown'), volt('unknown')], []],
    ['redundancy lost', [red(true)], ['powerRedundancyLost']],
    ['uncorrectable ECC', [ecc()], ['memoryUncorrectable']],
    ['all ok', [cpu('ok'), fan('ok'), red(false)], []],
  ] as const)('%s', (_n, sensors, want) => {
    expect(findings([...sensors]).map((f) => f.condition)).toEqual(want);
  });
});

describe('evaluateHardware', () => {
  const three = { ...defaults, samples: 3 };
  it.each([
    ['no readings: unknown, Ok', [], 'Ok', 'unknown', [], []],
    ['one critical spike is pending, not a Drain', [ok(cpu('ok')), ok(cpu('ok')), ok(cpu('critical'))], 'Ok', 'readable', [], ['cpuTemperatureCritical:1']],
    ['three critical readings drain', [ok(cpu('critical')), ok(cpu('critical')), ok(cpu('critical'))], 'Drain', 'readable', ['cpuTemperatureCritical:Drain:3'], []],
    ['a recovery in between restarts the count', [ok(cpu('critical')), ok(cpu('ok')), ok(cpu('critical')), ok(cpu('critical'))], 'Ok', 'readable', [], ['cpuTemperatureCritical:2']],
    ['an unreadable read in between neither counts nor clears', [ok(cpu('critical')), dead, ok(cpu('critical')), ok(cpu('critical'))], 'Drain', 'readable', ['cpuTemperatureCritical:Drain:3'], []],
    ['latest read failed: Ok, bmc unknown, never a Drain on old readings', [ok(cpu('critical')), ok(cpu('critical')), ok(cpu('critical')), dead], 'Ok', 'unknown', [], []],
    ['non-critical held: Notify', [ok(cpu('nonCritical')), ok(cpu('nonCritical')), ok(cpu('nonCritical'))], 'Notify', 'readable', ['sensorNonCritical:Notify:3'], []],
    ['critical after non-critical: the warning counts from its first sample, the critical from its own', [ok(cpu('nonCritical')), ok(cpu('nonCritical')), ok(cpu('critical'))], 'Ok', 'readable', [], ['cpuTemperatureCritical:1']],
    ['PSU redundancy lost held: Drain', [ok(red(true)), ok(red(true)), ok(red(true))], 'Drain', 'readable', ['powerRedundancyLost:Drain:3'], []],
    ['the worst action wins, every reason listed', [ok(red(true), ecc()), ok(red(true), ecc()), ok(red(true), ecc())], 'Drain', 'readable', ['powerRedundancyLost:Drain:3', 'memoryUncorrectable:Notify:3'], []],
  ] as const)('%s', (_n, history, action, bmc, reasons, pending) => {
    const d = evaluateHardware([...history], three);
    expect(d.action).toBe(action);
    expect(d.bmc).toBe(bmc);
    expect(d.reasons.map((r) => `${r.condition}:${r.action}:${r.samples}`)).toEqual(reasons);
    expect(d.pending.map((r) => `${r.condition}:${r.samples}`)).toEqual(pending);
  });

  it('rules change the action: Ignore drops the condition, samples 1 acts on the first reading', () => {
    const h = [ok(cpu('critical'))];
    expect(evaluateHardware(h, { ...defaults, samples: 1 }).action).toBe('Drain');
    expect(evaluateHardware(h, { ...defaults, samples: 1, rules: { ...defaults.rules, cpuTemperatureCritical: 'Notify' } }).action).toBe('Notify');
    const ignored = evaluateHardware(h, { ...defaults, samples: 1, rules: { ...defaults.rules, cpuTemperatureCritical: 'Ignore' } });
    expect(ignored).toMatchObject({ action: 'Ok', reasons: [], pending: [] });
  });

  it('the reason says which sensor and what it read', () => {
    const d = evaluateHardware([ok(cpu('critical', 93))], { ...defaults, samples: 1 });
    expect(d.reasons[0]).toMatchObject({ sensor: 'CPU Temp', detail: 'CPU Temp 93 degrees C is critical' });
  });
});

describe('selNotices', () => {
  const e = (id: number, sensor: string, event: string, asserted = true): SelEntry => ({ id, time: '', sensor, event, asserted, detail: '' });
  it('faults and threshold crossings are notified once; deasserted, presence and ignored ones are not', () => {
    const fresh = [
      e(1, 'Memory DIMM ECC', 'Uncorrectable ECC'),
      e(2, 'Temperature CPU Temp', 'Upper Critical going high'),
      e(3, 'Power Supply PSU Redundancy', 'Redundancy Lost'),
      e(4, 'Power Supply PSU Redundancy', 'Fully Redundant', false),
      e(5, 'Drive Slot / Bay Drive 0', 'Drive Present'),
      e(6, 'Temperature CPU Temp', 'Upper Non-critical going high'),
      e(7, 'Fan Fan1', 'Lower Critical going low'),
      e(8, 'Voltage 12V', 'Lower Critical going low'),
    ];
    expect(selNotices(fresh, defaults).map((n) => `${n.entry.id}:${n.condition}`)).toEqual([
      '1:memoryUncorrectable', '2:cpuTemperatureCritical', '3:powerRedundancyLost', '6:sensorNonCritical', '7:fanFailure', '8:sensorCritical',
    ]);
    const quiet = { ...defaults, rules: { ...defaults.rules, sensorNonCritical: 'Ignore' as const, memoryUncorrectable: 'Ignore' as const } };
    expect(selNotices(fresh, quiet).map((n) => n.entry.id)).toEqual([2, 3, 7, 8]);
  });
});
