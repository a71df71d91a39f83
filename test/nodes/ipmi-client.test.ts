// The IPMI client against a real OpenIPMI ipmi_sim with ipmitool.
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
