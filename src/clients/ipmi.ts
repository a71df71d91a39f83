// IPMI client: ipmitool as a child process over lanplus, password only through IPMI_PASSWORD (-E),
// an outer timeout around every call, output parsed into typed results and errors.
import { spawn } from 'node:child_process';
import type { PowerState } from '../api/index.js';
import { joinSensors, parseSdrElist, parseSelElist, parseSensorList, type HardwareSensor, type SelEntry } from './ipmi-sensors.js';

export interface BmcTarget {
  address: string;
  port?: number;
  username: string;
  password: string;
  cipherSuite?: number;
  privilege?: 'ADMINISTRATOR' | 'OPERATOR';
}

export type IpmiErrorKind = 'timeout' | 'auth' | 'unreachable' | 'invalid' | 'spawn' | 'unexpected';

export class IpmiError extends Error {
  override name = 'IpmiError';
  constructor(public readonly kind: IpmiErrorKind, message: string, public readonly stderr = '') {
    super(message);
  }
}

export interface IpmiOptions {
  /** Path of ipmitool. */
  ipmitoolPath?: string;
  /** Outer timeout of one call (ms); the child is killed when it expires. */
  timeoutMs?: number;
  /** ipmitool -N (seconds between retransmits) and -R (retries) to keep the inner timeout short. */
  retransmitSeconds?: number;
  retries?: number;
}

export type PowerCommand = 'status' | 'on' | 'off' | 'cycle' | 'reset' | 'soft';

/** Reads: the sensor repository with states, the sensors with thresholds, the System Event Log. */
export type ReadCommand = ['sdr', 'elist'] | ['sensor'] | ['sel', 'elist'];

export function ipmitoolArgs(t: BmcTarget, cmd: PowerCommand | ReadCommand, o: IpmiOptions = {}): string[] {
  const args = ['-I', 'lanplus', '-H', t.address, '-p', String(t.port ?? 623), '-U', t.username, '-E', '-L', t.privilege ?? 'ADMINISTRATOR'];
  if (t.cipherSuite !== undefined) args.push('-C', String(t.cipherSuite));
  args.push('-N', String(o.retransmitSeconds ?? 1), '-R', String(o.retries ?? 2));
  if (Array.isArray(cmd)) args.push(...cmd);
  else args.push('chassis', 'power', cmd);
  return args;
}

function classify(stderr: string, code: number | null): IpmiError {
  const s = stderr.trim();
  // Bounded: the message ends up in logs, Events and the fence record (status fields have a maxLength).
  const first = (s.split('\n').find((l) => l.trim()) ?? `exit ${code}`).slice(0, 300);
  if (/password|authcode|unauthorized name|RAKP|Invalid user|privilege level/i.test(s)) return new IpmiError('auth', `BMC refused the credentials: ${first}`, s);
  if (/Unable to establish|Insufficient resources|no response|Get Auth Capabilities|timeout|Address lookup/i.test(s)) return new IpmiError('unreachable', `BMC not answering: ${first}`, s);
  if (/Invalid data field|Invalid command|not supported/i.test(s)) return new IpmiError('invalid', `BMC rejected the command: ${first}`, s);
  return new IpmiError('unexpected', `ipmitool failed (exit ${code}): ${first}`, s);
}

/** Output limits: power answers are one line; a SEL of a few thousand entries is a few hundred KB. */
const MAX_POWER_OUTPUT = 65_536;
const MAX_READ_OUTPUT = 4 * 1024 * 1024;

export class IpmiClient {
  /** The tail of each BMC's call queue: one session per BMC at a time (BMCs have few session slots). */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: IpmiOptions = {}) {}

  private run(t: BmcTarget, cmd: PowerCommand | ReadCommand, signal?: AbortSignal): Promise<string> {
    const key = `${t.address}:${t.port ?? 623}`;
    const prev = this.queues.get(key) ?? Promise.resolve();
    const mine = prev.catch(() => undefined).then(() => this.spawnOnce(t, cmd, signal));
    const tail = mine.catch(() => undefined);
    this.queues.set(key, tail);
    void tail.then(() => { if (this.queues.get(key) === tail) this.queues.delete(key); });
    return mine;
  }

  private spawnOnce(t: BmcTarget, cmd: PowerCommand | ReadCommand, signal?: AbortSignal): Promise<string> {
    const timeoutMs = this.opts.timeoutMs ?? 15_000;
    const label = Array.isArray(cmd) ? cmd.join(' ') : `chassis power ${cmd}`;
    const maxOut = Array.isArray(cmd) ? MAX_READ_OUTPUT : MAX_POWER_OUTPUT;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new IpmiError('timeout', 'aborted'));
        return;
      }
      let child;
      try {
        child = spawn(this.opts.ipmitoolPath ?? 'ipmitool', ipmitoolArgs(t, cmd, this.opts), {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', IPMI_PASSWORD: t.password },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (err) {
        reject(new IpmiError('spawn', `cannot run ipmitool: ${(err as Error).message}`));
        return;
      }
      let out = '';
      let errOut = '';
      let done = false;
      const finish = (f: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        f();
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(() => reject(new IpmiError('timeout', `ipmitool ${label} to ${t.address}:${t.port ?? 623} timed out after ${timeoutMs} ms`)));
      }, timeoutMs);
      const onAbort = () => {
        child.kill('SIGKILL');
        finish(() => reject(new IpmiError('timeout', 'aborted')));
      };
      signal?.addEventListener('abort', onAbort);
      let tooLarge = false;
      child.stdout.on('data', (d: Buffer) => {
        if (out.length + d.length > maxOut) {
          // Never a truncated listing: the newest SEL entries are at the end.
          tooLarge = true;
          child.kill('SIGKILL');
          return;
        }
        out += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => { if (errOut.length < 65536) errOut += d.toString(); });
      child.on('error', (err) => finish(() => reject(new IpmiError('spawn', `cannot run ipmitool: ${err.message}`))));
      child.on('close', (code) => finish(() => {
        if (tooLarge) reject(new IpmiError('unexpected', `ipmitool ${label} answered more than ${maxOut} bytes`));
        else if (code === 0) resolve(out);
        else reject(classify((errOut || out).slice(0, 4096), code));
      }));
    });
  }

  /** Reads chassis power: `on` or `off`; anything else is an IpmiError (never a guess). */
  async powerStatus(t: BmcTarget, signal?: AbortSignal): Promise<Exclude<PowerState, 'unknown'>> {
    const out = await this.run(t, 'status', signal);
    const m = /Chassis Power is (on|off)/i.exec(out);
    if (!m) throw new IpmiError('unexpected', `unparseable power status: ${JSON.stringify(out.trim().slice(0, 200))}`);
    return m[1]!.toLowerCase() as 'on' | 'off';
  }

  /**
   * Reads the BMC's sensors: `sdr elist` (numbers, entities, discrete states) then `sensor`
   * (thresholds), one after the other on the BMC's queue. Unparseable lines are returned, not guessed.
   */
  async readSensors(t: BmcTarget, signal?: AbortSignal): Promise<{ sensors: HardwareSensor[]; rejected: string[] }> {
    const sdr = parseSdrElist(await this.run(t, ['sdr', 'elist'], signal));
    const list = parseSensorList(await this.run(t, ['sensor'], signal));
    if (sdr.entries.length === 0 && sdr.rejected.length > 0) {
      throw new IpmiError('unexpected', `unparseable sdr elist: ${JSON.stringify(sdr.rejected[0])}`);
    }
    return { sensors: joinSensors(sdr.entries, list.entries), rejected: [...sdr.rejected, ...list.rejected] };
  }

  /** Reads the System Event Log (`sel elist`), oldest first. */
  async readSel(t: BmcTarget, signal?: AbortSignal): Promise<{ entries: SelEntry[]; rejected: string[] }> {
    return parseSelElist(await this.run(t, ['sel', 'elist'], signal));
  }

  async power(t: BmcTarget, cmd: Exclude<PowerCommand, 'status'>, signal?: AbortSignal): Promise<void> {
    const out = await this.run(t, cmd, signal);
    if (!/Chassis Power Control: (Up\/On|Down\/Off|Cycle|Reset|Soft)/i.test(out)) {
      throw new IpmiError('unexpected', `unexpected answer to power ${cmd}: ${JSON.stringify(out.trim().slice(0, 200))}`);
    }
  }

  /**
   * Fence the way fence_ipmilan does: read status (already off = fenced), power off, wait
   * powerWait, poll until off or powerOffTimeout. Resolves `{ confirmed }`; confirmed is true only
   * when the BMC reported off. An unreadable status is an error, never a confirmation.
   */
  async fenceOff(t: BmcTarget, o: { powerWaitMs: number; pollIntervalMs: number; powerOffTimeoutMs: number }, signal?: AbortSignal): Promise<{ confirmed: boolean; alreadyOff: boolean; message: string }> {
    const initial = await this.powerStatus(t, signal);
    if (initial === 'off') return { confirmed: true, alreadyOff: true, message: 'already off (BMC reports Chassis Power is off)' };
    await this.power(t, 'off', signal);
    await sleep(o.powerWaitMs, signal);
    const deadline = Date.now() + o.powerOffTimeoutMs;
    let lastErr: Error | undefined;
    for (;;) {
      try {
        const s = await this.powerStatus(t, signal);
        if (s === 'off') return { confirmed: true, alreadyOff: false, message: 'powered off and confirmed by the BMC' };
        lastErr = undefined;
      } catch (err) {
        lastErr = err as Error;
      }
      if (Date.now() >= deadline) {
        return { confirmed: false, alreadyOff: false, message: lastErr ? `power state unreadable: ${lastErr.message}` : 'timed out waiting to power OFF' };
      }
      await sleep(o.pollIntervalMs, signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new IpmiError('timeout', 'aborted'));
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(new IpmiError('timeout', 'aborted')); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
