// Parsers of ipmitool's sensor and SEL listings: table tests over real output captured from ipmi_sim
// (test/nodes/fixtures/ipmi, made by src/devenv/ipmi.ts's sensors) and hostile lines.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  faultOf, joinSensors, newSelEntries, parseSdrElist, parseSelElist, parseSensorList, selFault, thresholdState,
} from '../../src/clients/ipmi-sensors.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/ipmi/${name}.txt`, import.meta.url), 'utf8');
const read = (tag: string) => joinSensors(parseSdrElist(fixture(`${tag}-sdr-elist`)).entries, parseSensorList(fixture(`${tag}-sensor`)).entries);
const byName = (tag: string) => new Map(read(tag).map((s) => [s.name, s]));

describe('ipmitool status abbreviations', () => {
  it.each([
    ['ok', 'ok'], ['nc', 'nonCritical'], ['unc', 'nonCritical'], ['lnc', 'nonCritical'], ['cr', 'critical'], ['ucr', 'critical'],
    ['lcr', 'critical'], ['nr', 'nonRecoverable'], ['unr', 'nonRecoverable'], ['lnr', 'nonRecoverable'], ['ns', 'unknown'], ['na', 'unknown'],
    ['bogus', undefined], ['xcr', undefined], ['0x0100', undefined],
  ] as const)('%s -> %s', (s, want) => {
    expect(thresholdState(s)).toBe(want);
  });
});

describe('real ipmi_sim output', () => {
  it('a healthy BMC: every sensor ok, numbers, entities, thresholds and discrete states read', () => {
    const sdr = parseSdrElist(fixture('initial-sdr-elist'));
    expect(sdr.rejected).toEqual([]);
    expect(sdr.entries).toHaveLength(8);
    const list = parseSensorList(fixture('initial-sensor'));
    expect(list.rejected).toEqual([]);
    const s = byName('initial');
    expect(s.get('CPU Temp')).toMatchObject({ number: 1, kind: 'cpuTemperature', state: 'ok', value: 45, unit: 'degrees C', thresholds: { upperNonCritical: 80, upperCritical: 90, upperNonRecoverable: 100 }, faults: [] });
    expect(s.get('Fan1')).toMatchObject({ kind: 'fan', state: 'ok', value: 6000, thresholds: { lowerCritical: 500, lowerNonCritical: 1000 } });
    expect(s.get('PSU Redundancy')).toMatchObject({ states: ['Fully Redundant'], faults: [] });
    expect(s.get('DIMM ECC')).toMatchObject({ state: 'ok', states: [], faults: [] });
    expect([...s.values()].every((x) => x.state === 'ok' && x.faults.length === 0)).toBe(true);
    expect(parseSelElist(fixture('initial-sel-elist')).entries).toEqual([]);
  });

  it('a warm CPU is non-critical and a slow fan is critical (lower threshold)', () => {
    const s = byName('warm');
    expect(s.get('CPU Temp')).toMatchObject({ state: 'nonCritical', value: 85 });
    expect(s.get('Fan1')).toMatchObject({ state: 'critical', value: 400 });
  });

  it('a failing host: every discrete fault is recognised', () => {
    const s = byName('failing');
    expect(s.get('CPU Temp')).toMatchObject({ state: 'nonRecoverable', value: 102 });
    expect(s.get('PSU1 Status')!.faults).toEqual([]);
    expect(s.get('PSU2 Status')).toMatchObject({ states: ['Presence detected', 'Failure detected'], faults: ['powerSupply'] });
    expect(s.get('PSU Redundancy')!.faults).toEqual(['powerRedundancy']);
    expect(s.get('Drive 0')!.faults).toEqual(['driveSlot']);
    expect(s.get('DIMM ECC')!.faults).toEqual(['memoryUncorrectable']);
    expect(s.get('CPU0 Status')!.faults).toEqual(['processor']);
  });

  it('SEL entries: hex ids, Pre-Init times, direction, detail; faults of asserted entries only', () => {
    const sel = parseSelElist(fixture('failing-sel-elist'));
    expect(sel.rejected).toEqual([]);
    expect(sel.entries.map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(sel.entries[3]).toMatchObject({ sensor: 'Temperature CPU Temp', event: 'Upper Critical going high', asserted: true, detail: 'Reading 102 > Threshold 90 degrees C' });
    expect(sel.entries[6]).toMatchObject({ event: 'Fully Redundant', asserted: false });
    expect(sel.entries.map(selFault)).toEqual([
      undefined, undefined, undefined, undefined, undefined, 'powerSupply', undefined, 'powerRedundancy', 'driveSlot', 'memoryUncorrectable', 'processor', 'processor', undefined,
    ]);
  });
});

describe('hostile and odd lines', () => {
  it('sdr elist: wrong column count, bad id, bad entity, bad status, control characters are rejected, not guessed', () => {
    const r = parseSdrElist([
      'CPU Temp         | 01h | ok  |  3.1 | 45 degrees C',
      'Extra | 02h | ok | 3.1 | 1 C | more',
      'BadId | zzh | ok | 3.1 | 1 C',
      'BadEnt | 03h | ok | x.1 | 1 C',
      'BadState | 04h | weird | 3.1 | 1 C',
      'Ctl\u0007 | 05h | ok | 3.1 | 1 C',
      'Error: Unable to establish IPMI v2 / RMCP+ session',
      `${'A'.repeat(300)} | 06h | ok | 3.1 | 1 C`,
      'NoRead           | 07h | ns  |  7.1 | No Reading',
      'Disabled         | 08h | ok  |  7.1 | Disabled',
    ].join('\n'));
    expect(r.entries.map((e) => [e.name, e.state])).toEqual([['CPU Temp', 'ok'], ['NoRead', 'unknown'], ['Disabled', 'unknown']]);
    expect(r.rejected).toHaveLength(7);
  });

  it('sensor: na reading is unknown, never ok; a malformed line is rejected', () => {
    const r = parseSensorList([
      'CPU Temp         | na         | degrees C  | na    | na        | na        | na        | 80.000    | 90.000    | 100.000',
      'Short | 1 | C',
      'Bad | 1.0 | C | maybe | na | na | na | na | na | na',
    ].join('\n'));
    expect(r.entries).toEqual([{ name: 'CPU Temp', unit: 'degrees C', discrete: false, state: 'unknown', thresholds: { upperNonCritical: 80, upperCritical: 90, upperNonRecoverable: 100 } }]);
    expect(r.rejected).toHaveLength(2);
  });

  it('sel elist: "no entries", bad ids and directions, OEM records are rejected or skipped', () => {
    const r = parseSelElist([
      'SEL has no entries',
      '  1f | 12/01/2026 | 22:50:01 | Memory DIMM ECC | Uncorrectable ECC | Asserted',
      '  zz | 12/01/2026 | 22:50:01 | Memory DIMM ECC | Uncorrectable ECC | Asserted',
      '  20 | 12/01/2026 | 22:50:01 | Memory DIMM ECC | Uncorrectable ECC | Sideways',
      '  21 | 12/01/2026 | 22:50:01 | OEM record c0 | 000000 | 0102030405',
      '12345 | 12/01/2026 | 22:50:01 | Memory DIMM ECC | Uncorrectable ECC | Asserted',
    ].join('\n'));
    expect(r.entries).toEqual([{ id: 0x1f, time: '12/01/2026 22:50:01', sensor: 'Memory DIMM ECC', event: 'Uncorrectable ECC', asserted: true, detail: '' }]);
    expect(r.rejected).toHaveLength(4);
  });

  it('faults need the right sensor: "Drive Fault" on a PSU or "Failure detected" on a fan is no listed fault', () => {
    expect(faultOf('Failure detected', { entity: 10, name: 'PS1' })).toBe('powerSupply');
    expect(faultOf('Failure detected', { entity: 29, name: 'Fan2' })).toBeUndefined();
    expect(faultOf('Drive Fault', { entity: 10, name: 'PSU1' })).toBeUndefined();
    expect(faultOf('Redundancy Lost', { entity: 29, name: 'Fan Redundancy' })).toBe('fan');
    expect(faultOf('Redundancy Lost', { entity: 7, name: 'Board' })).toBeUndefined();
    expect(faultOf('Correctable ECC', { entity: 32, name: 'DIMM' })).toBeUndefined();
    expect(faultOf('Transition to Critical from less severe', { entity: 29, name: 'Fan3' })).toBe('fan');
  });
});

describe('SEL cursor', () => {
  const e = (id: number) => ({ id, time: '', sensor: 'Memory x', event: 'Uncorrectable ECC', asserted: true, detail: '' });
  it.each([
    ['first read reports everything', [1, 2, 3], undefined, [1, 2, 3], 3],
    ['after the cursor only', [1, 2, 3, 4], 2, [3, 4], 4],
    ['nothing new', [1, 2, 3], 3, [], 3],
    ['cleared SEL (cursor gone): everything is new', [1, 2], 9, [1, 2], 2],
    ['empty SEL keeps the cursor', [], 7, [], 7],
    ['ids wrapped: listed order, not id order', [0xfffe, 0xffff, 1], 0xffff, [1], 1],
  ] as const)('%s', (_n, ids, last, fresh, next) => {
    const r = newSelEntries(ids.map(e), last);
    expect(r.fresh.map((x) => x.id)).toEqual(fresh);
    expect(r.lastId).toBe(next);
  });
});
