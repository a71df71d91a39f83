// The IPMI client against a real OpenIPMI ipmi_sim with ipmitool.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpmiClient, IpmiError, ipmitoolArgs, type BmcTarget } from '../../src/clients/ipmi.js';
import { BMC_PASSWORD, BMC_USER, startBmc, type SimBmc } from '../support/ipmi.js';

describe('IPMI client against ipmi_sim', () => {
  let bmc: SimBmc;
  let target: BmcTarget;
  const ipmi = new IpmiClient({ timeoutMs: 8000, retransmitSeconds: 1, retries: 1 });
  beforeAll(async () => {
    bmc = await startBmc('cmp-ipmi');
    target = { address: bmc.address, port: bmc.port, username: BMC_USER, password: BMC_PASSWORD, cipherSuite: 3 };
  });
  afterAll(async () => {
    await bmc?.stop();
  });

  it('never puts the password on the command line', () => {
    const args = ipmitoolArgs(target, 'status');
    expect(args.join(' ')).not.toContain(BMC_PASSWORD);
    expect(args).toContain('-E');
    expect(args).toEqual(expect.arrayContaining(['-C', '3', '-p', String(bmc.port), '-L', 'ADMINISTRATOR']));
  });

  it('reads power status, powers off and on', async () => {
    expect(await ipmi.powerStatus(target)).toBe('on');
    await ipmi.power(target, 'off');
    expect(await bmc.power()).toBe('off');
    expect(await ipmi.powerStatus(target)).toBe('off');
    await ipmi.power(target, 'on');
    expect(await ipmi.powerStatus(target)).toBe('on');
  });

  it('fences: power off confirmed by polling; already off counts as fenced', async () => {
    const o = { powerWaitMs: 100, pollIntervalMs: 100, powerOffTimeoutMs: 2000 };
    const r = await ipmi.fenceOff(target, o);
    expect(r).toMatchObject({ confirmed: true, alreadyOff: false });
    expect(await bmc.power()).toBe('off');
    const again = await ipmi.fenceOff(target, o);
    expect(again).toMatchObject({ confirmed: true, alreadyOff: true });
    await bmc.setPower('on');
  });

  it('a host that ignores power off is not confirmed', async () => {
    await bmc.ignorePowerOff(true);
    try {
      const r = await ipmi.fenceOff(target, { powerWaitMs: 50, pollIntervalMs: 100, powerOffTimeoutMs: 500 });
      expect(r.confirmed).toBe(false);
      expect(r.message).toMatch(/timed out/);
    } finally {
      await bmc.ignorePowerOff(false);
    }
  });

  it('reads sensors and the SEL as from a real BMC; the test world changes them at run time', async () => {
    const before = await ipmi.readSensors(target);
    expect(before.rejected).toEqual([]);
    const cpu = () => before.sensors.find((s) => s.name === 'CPU Temp');
    expect(cpu()).toMatchObject({ kind: 'cpuTemperature', state: 'ok', value: 45, thresholds: { upperCritical: 90 } });
    expect(before.sensors.map((s) => s.name)).toEqual(Object.values(bmc.sensors).map((s) => s.name));
    const sel0 = (await ipmi.readSel(target)).entries;

    await bmc.setCpuTemperature(93);
    await bmc.setPsuRedundancy('lost');
    await bmc.setDiscrete('memory', 'Uncorrectable ECC', true);
    await bmc.addSelEvent([0, 0, 0, 0, 0x20, 0, 0x04, 0x07, 0x08, 0x6f, 0x01, 0xff, 0xff]);
    const after = await ipmi.readSensors(target);
    const by = new Map(after.sensors.map((s) => [s.name, s]));
    expect(by.get('CPU Temp')).toMatchObject({ state: 'critical', value: 93 });
    expect(by.get('PSU Redundancy')!.faults).toEqual(['powerRedundancy']);
    expect(by.get('DIMM ECC')!.faults).toEqual(['memoryUncorrectable']);
    const sel = (await ipmi.readSel(target)).entries;
    const fresh = sel.slice(sel0.length);
    expect(fresh.map((e) => e.event)).toEqual(expect.arrayContaining(['Upper Critical going high', 'Redundancy Lost', 'Uncorrectable ECC', 'Thermal Trip']));
    expect(fresh.at(-1)).toMatchObject({ sensor: 'Processor CPU0 Status', event: 'Thermal Trip', asserted: true });

    await bmc.setCpuTemperature(45);
    await bmc.setPsuRedundancy('full');
    await bmc.setDiscrete('memory', 'Uncorrectable ECC', false);
    expect((await ipmi.readSensors(target)).sensors.every((s) => s.faults.length === 0 && s.state === 'ok')).toBe(true);
  });

  it('a console command the emulator rejects is an error in the test world, not silence', async () => {
    await expect(bmc.console(['no_such_command'])).rejects.toThrow(/rejected/);
    await expect(bmc.setDiscrete('memory', 'Melted', true)).rejects.toThrow(/no state/);
  });

  it('one session per BMC at a time: concurrent calls to one BMC run one after the other', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hm9k-fake-ipmitool-'));
    try {
      const fake = join(dir, 'ipmitool');
      const log = join(dir, 'log');
      // Records start/end of each call and the arguments (to check the password is never among them).
      await writeFile(fake, `#!/bin/sh\necho "start $*" >> ${log}\nsleep 0.2\necho "end" >> ${log}\necho "Chassis Power is on"\n`);
      await chmod(fake, 0o755);
      const c = new IpmiClient({ ipmitoolPath: fake, timeoutMs: 5000 });
      await Promise.all([c.powerStatus(target), c.readSel(target), c.powerStatus(target)]);
      const lines = (await readFile(log, 'utf8')).trim().split('\n');
      expect(lines.map((l) => l.split(' ')[0])).toEqual(['start', 'end', 'start', 'end', 'start', 'end']);
      expect(lines.join('\n')).not.toContain(BMC_PASSWORD);
      expect(lines[2]).toMatch(/ sel elist$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('wrong password is a typed error', async () => {
    const err = await ipmi.powerStatus({ ...target, password: 'wrong' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpmiError);
    expect(['auth', 'unreachable']).toContain((err as IpmiError).kind);
  });

  it('a dead BMC times out (outer timeout) and is never read as off', async () => {
    await bmc.kill();
    try {
      const quick = new IpmiClient({ timeoutMs: 1500, retransmitSeconds: 1, retries: 5 });
      const err = await quick.powerStatus(target).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IpmiError);
      expect(['timeout', 'unreachable']).toContain((err as IpmiError).kind);
      const fence = await quick.fenceOff(target, { powerWaitMs: 10, pollIntervalMs: 10, powerOffTimeoutMs: 10 }).catch((e: unknown) => e);
      expect(fence).toBeInstanceOf(IpmiError);
    } finally {
      await bmc.start();
    }
  });
});
