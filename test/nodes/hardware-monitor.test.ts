// The hardware monitor against a real ipmi_sim BMC read by ipmitool: leader only, samples before a
// condition counts, the SEL cursor across a restart, an unreadable BMC is unknown (never a fault).
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ComputeNode } from '../../src/api/index.js';
import { IpmiClient, type BmcTarget } from '../../src/clients/ipmi.js';
import type { SelEntry } from '../../src/clients/ipmi-sensors.js';
import { resolveHardware, type HardwareDecision, type SelNotice } from '../../src/nodes/hardware/rules.js';
import { HardwareMonitor } from '../../src/nodes/monitors/hardware.js';
import { BMC_PASSWORD, BMC_USER, startBmc, type SimBmc } from '../support/ipmi.js';

const log = pino({ level: 'silent' });
const node = { metadata: { name: 'cmp-hw' }, spec: { host: 'cmp-hw', bmc: { address: '127.0.0.1', credentialsSecret: 'x' } } } as unknown as ComputeNode;

describe('hardware monitor against ipmi_sim', () => {
  let bmc: SimBmc;
  let target: BmcTarget;
  const real = new IpmiClient({ timeoutMs: 8000, retransmitSeconds: 1, retries: 1 });
  let calls = 0;
  const ipmi = {
    readSensors: (t: BmcTarget) => { calls++; return real.readSensors(t); },
    readSel: (t: BmcTarget) => { calls++; return real.readSel(t); },
  };
  beforeAll(async () => {
    bmc = await startBmc('cmp-hw');
    target = { address: bmc.address, port: bmc.port, username: BMC_USER, password: BMC_PASSWORD, cipherSuite: 3 };
  });
  afterAll(async () => {
    await bmc?.stop();
  });

  function monitor(active: () => boolean, cursor?: number, failSel = false) {
    const decisions: HardwareDecision[] = [];
    const sels: { fresh: SelEntry[]; notices: SelNotice[]; lastId: number | undefined }[] = [];
    const rules = { ...resolveHardware({ samples: 2 }), intervalMs: 0 };
    const m = new HardwareMonitor(
      { ipmi, bmcTarget: async () => target, limit: (fn) => fn() },
      () => [node],
      {
        rulesOf: () => rules,
        onDecision: (_n, d) => decisions.push(d),
        onSel: async (_n, fresh, notices, lastId) => {
          if (failSel) throw new Error('status write failed');
          sels.push({ fresh, notices, lastId });
        },
      },
      log,
      active,
    );
    m.setSelCursor('cmp-hw', cursor);
    return { m, decisions, sels };
  }

  it('a standby never talks to the BMC', async () => {
    const { m, decisions } = monitor(() => false);
    calls = 0;
    await m.sweep();
    await m.read(node, resolveHardware(undefined));
    expect(calls).toBe(0);
    expect(decisions).toEqual([]);
  });

  it('CPU temperature critical drains only after samples readings; the SEL is reported once, across a restart', async () => {
    const { m, decisions, sels } = monitor(() => true);
    await m.sweep();
    expect(decisions.at(-1)).toMatchObject({ action: 'Ok', bmc: 'readable', reasons: [], pending: [] });
    // First look: the cursor starts at the SEL's end, nothing is reported.
    expect(sels).toHaveLength(1);
    expect(sels[0]!.fresh).toEqual([]);
    const baseline = sels[0]!.lastId;
    expect(m.selCursor('cmp-hw')).toBe(baseline);

    await bmc.setCpuTemperature(95);
    await m.sweep();
    expect(decisions.at(-1)).toMatchObject({ action: 'Ok', pending: [{ condition: 'cpuTemperatureCritical', samples: 1 }] });
    expect(sels.at(-1)!.notices.map((n) => n.condition)).toEqual(['sensorNonCritical', 'cpuTemperatureCritical']);
    const afterHeat = sels.length;
    await m.sweep();
    expect(decisions.at(-1)).toMatchObject({ action: 'Drain', reasons: [{ condition: 'cpuTemperatureCritical', action: 'Drain', samples: 2, detail: 'CPU Temp 95 degrees C is critical' }] });
    expect(sels).toHaveLength(afterHeat); // nothing new in the SEL: nothing reported again

    // A restart: a new monitor seeded with the persisted cursor reports only what is new.
    const persisted = m.selCursor('cmp-hw');
    const again = monitor(() => true, persisted);
    await again.m.sweep();
    expect(again.sels).toEqual([]);
    await bmc.setDiscrete('memory', 'Uncorrectable ECC', true);
    await again.m.sweep();
    expect(again.sels).toHaveLength(1);
    expect(again.sels[0]!.fresh.map((e) => e.event)).toEqual(['Uncorrectable ECC']);
    expect(again.sels[0]!.notices.map((n) => n.condition)).toEqual(['memoryUncorrectable']);
    await bmc.setDiscrete('memory', 'Uncorrectable ECC', false);
    await bmc.setCpuTemperature(45);
  });

  it('entries the caller could not persist come again with the next read', async () => {
    const first = monitor(() => true);
    await first.m.sweep();
    const cursor = first.m.selCursor('cmp-hw');
    const failing = monitor(() => true, cursor, true);
    await bmc.setDiscrete('drive0', 'Drive Fault', true);
    await failing.m.sweep();
    expect(failing.m.selCursor('cmp-hw')).toBe(cursor);
    const ok = monitor(() => true, failing.m.selCursor('cmp-hw'));
    await ok.m.sweep();
    expect(ok.sels[0]!.notices.map((n) => n.condition)).toEqual(['driveFault']);
    await bmc.setDiscrete('drive0', 'Drive Fault', false);
  });

  it('a dead BMC is unknown, never a fault, and no decision is taken on older readings', async () => {
    const { m, decisions } = monitor(() => true);
    await bmc.setCpuTemperature(95);
    await m.sweep();
    await m.sweep();
    expect(decisions.at(-1)!.action).toBe('Drain');
    await bmc.kill();
    try {
      const quick = new IpmiClient({ timeoutMs: 1500, retransmitSeconds: 1, retries: 1 });
      const dead = new HardwareMonitor(
        { ipmi: quick, bmcTarget: async () => target, limit: (fn) => fn() },
        () => [node],
        { rulesOf: () => ({ ...resolveHardware({ samples: 2 }), intervalMs: 0 }), onDecision: (_n, d) => decisions.push(d), onSel: async () => {} },
        log,
        () => true,
      );
      await dead.sweep();
      expect(decisions.at(-1)).toMatchObject({ action: 'Ok', bmc: 'unknown', reasons: [] });
      expect(decisions.at(-1)!.error).toMatch(/BMC|timed out/);
    } finally {
      await bmc.start();
      await bmc.setCpuTemperature(45);
    }
  });
});
