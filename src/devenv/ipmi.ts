// A real OpenIPMI ipmi_sim BMC per simulated node (compute-ha.md section 4): lan.conf, the emulator
// file and a chassis_control script whose state lives in files a test can read and change.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile, chmod, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, killChild, waitFor } from './children.js';

export const BMC_USER = 'admin';
export const BMC_PASSWORD = 'secret';

export async function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface SimBmc {
  name: string;
  address: string;
  port: number;
  dir: string;
  power(): Promise<'on' | 'off'>;
  setPower(state: 'on' | 'off'): Promise<void>;
  /** Make power-on requests fail (the host stays off). */
  refusePowerOn(refuse: boolean): Promise<void>;
  /** Make power-off requests be ignored (the host stays on). */
  ignorePowerOff(ignore: boolean): Promise<void>;
  /** Every chassis command the BMC received, in order (`power 0`, `power 1`, `reset 1`, `shutdown 1`). */
  commands(): Promise<string[]>;
  /** The emulated hardware sensors (their SDRs are in the BMC's repository; ipmitool reads them). */
  readonly sensors: typeof SIM_SENSORS;
  /** CPU temperature in degrees C (0-255); crossing a threshold logs a SEL event as a real BMC would. */
  setCpuTemperature(celsius: number): Promise<void>;
  /** Fan speed in RPM (multiples of 100). */
  setFanRpm(rpm: number): Promise<void>;
  /** Assert or deassert one discrete state of a discrete sensor (logs a SEL event). */
  setDiscrete(sensor: DiscreteSensor, state: string, asserted: boolean): Promise<void>;
  /** PSU redundancy: `full` (Fully Redundant), `lost` (Redundancy Lost), `degraded`. */
  setPsuRedundancy(state: 'full' | 'lost' | 'degraded'): Promise<void>;
  /** Append a raw SEL record (type 0x02 system event: 13 bytes after the record type). */
  addSelEvent(bytes: number[]): Promise<void>;
  /** Run emulator commands (ipmi_sim_cmd(5)) on the running BMC through its console. */
  console(commands: string[]): Promise<string[]>;
  /** Stop the BMC process: it no longer answers (a dead BMC). */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const CHASSIS = `#!/bin/sh
# chassis_control for ipmi_sim: <prog> <mc> get power | set power 0|1 | set reset 1 | set shutdown 1
D=$(dirname "$0")
case "$2" in
  get)
    if [ "$(cat "$D/power")" = on ]; then echo "power:1"; else echo "power:0"; fi ;;
  set)
    echo "$3 $4" >> "$D/commands"
    case "$3" in
      power)
        if [ "$4" = 1 ]; then
          [ -e "$D/refuse-on" ] || echo on > "$D/power"
        else
          [ -e "$D/ignore-off" ] || echo off > "$D/power"
        fi ;;
      shutdown) [ -e "$D/ignore-off" ] || echo off > "$D/power" ;;
      reset) : ;;
    esac ;;
esac
exit 0
`;

// ---- Emulated sensors ------------------------------------------------------------------------------
// Each sensor is an SDR (IPMI 2.0 section 43.1, full sensor record, type 01h) in the BMC's main
// repository plus a sensor in ipmi_sim (`sensor_add`) that holds its value and thresholds, so
// `ipmitool sdr elist`, `sensor` and `sel elist` read them as they would a real BMC's.

const MC = '0x20';

interface ThresholdSensorDef { number: number; name: string; type: number; entity: number; unit: number; m: number; initial: number;
  /** Raw threshold bytes: unr, ucr, unc, lnr, lcr, lnc (0 = not enabled). */ thresholds: [number, number, number, number, number, number] }
interface DiscreteSensorDef { number: number; name: string; type: number; entity: number; reading: number;
  /** Offset of each state (ipmitool's text, ipmi_sel_supp.h) and which are asserted at start. */ states: Record<string, number>; initial: string[] }

/** Per node: CPU temperature, a fan, two PSUs and their redundancy, a drive slot, DIMM ECC, CPU status. */
export const SIM_SENSORS = {
  cpuTemp: { number: 1, name: 'CPU Temp', type: 0x01, entity: 3, unit: 1 /* degrees C */, m: 1, initial: 45, thresholds: [100, 90, 80, 0, 0, 0] } as ThresholdSensorDef,
  fan: { number: 2, name: 'Fan1', type: 0x04, entity: 29, unit: 18 /* RPM */, m: 100, initial: 60, thresholds: [0, 0, 0, 0, 5, 10] } as ThresholdSensorDef,
  psu1: { number: 3, name: 'PSU1 Status', type: 0x08, entity: 10, reading: 0x6f, states: { 'Presence detected': 0, 'Failure detected': 1, 'Predictive failure': 2, 'Power Supply AC lost': 3 }, initial: ['Presence detected'] } as DiscreteSensorDef,
  psu2: { number: 4, name: 'PSU2 Status', type: 0x08, entity: 10, reading: 0x6f, states: { 'Presence detected': 0, 'Failure detected': 1, 'Predictive failure': 2, 'Power Supply AC lost': 3 }, initial: ['Presence detected'] } as DiscreteSensorDef,
  psuRedundancy: { number: 5, name: 'PSU Redundancy', type: 0x08, entity: 10, reading: 0x0b, states: { 'Fully Redundant': 0, 'Redundancy Lost': 1, 'Redundancy Degraded': 2 }, initial: ['Fully Redundant'] } as DiscreteSensorDef,
  drive0: { number: 6, name: 'Drive 0', type: 0x0d, entity: 4, reading: 0x6f, states: { 'Drive Present': 0, 'Drive Fault': 1, 'Predictive Failure': 2 }, initial: ['Drive Present'] } as DiscreteSensorDef,
  memory: { number: 7, name: 'DIMM ECC', type: 0x0c, entity: 32, reading: 0x6f, states: { 'Correctable ECC': 0, 'Uncorrectable ECC': 1 }, initial: [] } as DiscreteSensorDef,
  cpu0: { number: 8, name: 'CPU0 Status', type: 0x07, entity: 3, reading: 0x6f, states: { IERR: 0, 'Thermal Trip': 1, 'Presence detected': 7 }, initial: ['Presence detected'] } as DiscreteSensorDef,
} as const;
export type DiscreteSensor = 'psu1' | 'psu2' | 'psuRedundancy' | 'drive0' | 'memory' | 'cpu0';

const hex = (b: number[]) => b.map((x) => `0x${x.toString(16).padStart(2, '0')}`).join(' ');

/** Full sensor record bytes (header included; ipmi_sim assigns the record id). */
export function fullSensorRecord(o: { number: number; name: string; type: number; entity: number; reading: number; unit?: number; m?: number; thresholds?: number[] }): number[] {
  const id = [...Buffer.from(o.name, 'ascii')].slice(0, 16);
  const threshold = o.reading === 0x01;
  const body = [
    0x20, 0x00, o.number, o.entity, 0x01,
    0x7f, // initialization: scanning, events, thresholds, hysteresis, type enabled
    threshold ? 0x68 : 0x40, // capabilities: auto re-arm; thresholds readable and settable
    o.type, o.reading,
    // assertion/lower mask, deassertion/upper mask, reading/settable+readable mask
    ...(threshold ? [0x95, 0x0a, 0x95, 0x0a, 0x3f, 0x3f] : [0xff, 0x7f, 0xff, 0x7f, 0xff, 0x7f]),
    0x00, o.unit ?? 0, 0x00, 0x00, // unsigned, base unit, no modifier, linear
    (o.m ?? 1) & 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, // M, tolerance, B, accuracy, R/B exponents 0
    0x00, 0, 0, 0, 0xff, 0x00, // analog flags, nominal, normal max/min, sensor max/min
    ...(o.thresholds ?? [0, 0, 0, 0, 0, 0]),
    0, 0, 0, 0, 0, // hysteresis +/-, reserved x2, OEM
    0xc0 | id.length, ...id, // 8-bit ASCII id string
  ];
  return [0x00, 0x00, 0x51, 0x01, body.length, ...body];
}

function sensorCommands(): string[] {
  const out: string[] = [];
  for (const d of Object.values(SIM_SENSORS)) {
    if ('thresholds' in d) {
      out.push(`main_sdr_add ${MC} ${hex(fullSensorRecord({ ...d, reading: 0x01 }))}`);
      out.push(`sensor_add ${MC} 0 ${d.number} ${d.type} 0x01`);
      const enabled = d.thresholds.map((t) => (t ? '1' : '0')).join('');
      out.push(`sensor_set_threshold ${MC} 0 ${d.number} settable ${enabled} ${d.thresholds.join(' ')}`);
      out.push(`sensor_set_value ${MC} 0 ${d.number} ${d.initial} 0`);
    } else {
      out.push(`main_sdr_add ${MC} ${hex(fullSensorRecord(d))}`);
      out.push(`sensor_add ${MC} 0 ${d.number} ${d.type} ${d.reading}`);
      for (const s of d.initial) out.push(`sensor_set_bit ${MC} 0 ${d.number} ${d.states[s]} 1 0`);
    }
  }
  return out;
}

/** Sends emulator commands to ipmi_sim's console (lan.conf `console`) and returns each one's output. */
export async function simConsole(port: number, commands: string[], timeoutMs = 5000): Promise<string[]> {
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    const outputs: string[] = [];
    let i = -1; // -1: waiting for the first prompt
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`ipmi_sim console on ${port}: no prompt within ${timeoutMs} ms`)); }, timeoutMs);
    const done = (err?: Error) => { clearTimeout(timer); s.end(); if (err) reject(err); else resolve(outputs); };
    // Commands are sent one at a time, each after the previous prompt; the session ends after the
    // last prompt so ipmi_sim never writes to a socket already closed.
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
    s.on('data', (d: Buffer) => {
      // Telnet negotiation bytes (IAC ...) come first; the prompt is "> ".
      buf += d.toString('latin1').replace(/\xff[\xfb-\xfe]./g, '');
      while (buf.includes('> ')) {
        const at = buf.indexOf('> ');
        const chunk = buf.slice(0, at);
        buf = buf.slice(at + 2);
        if (i >= 0) {
          // The console echoes the command line, then prints the command's output.
          const text = chunk.split(/\r?\n\r?/).slice(1).join('\n').trim();
          if (/^\*\*/m.test(text)) return done(new Error(`ipmi_sim rejected "${commands[i]}": ${text}`));
          outputs.push(text);
        }
        i++;
        if (i >= commands.length) return done();
        s.write(`${commands[i]}\n`);
      }
    });
  });
}

export async function startBmc(name: string): Promise<SimBmc> {
  const dir = await mkdtemp(join(tmpdir(), `hm9k-bmc-${name}-`));
  const port = await freeUdpPort();
  const consolePort = await freePort();
  await mkdir(join(dir, 'state'));
  await writeFile(join(dir, 'power'), 'on\n');
  const script = join(dir, 'chassis.sh');
  await writeFile(script, CHASSIS);
  await chmod(script, 0o755);
  const guid = Buffer.from(name.padEnd(16, '0').slice(0, 16)).toString('hex');
  await writeFile(join(dir, 'lan.conf'), [
    `name "${name}"`,
    'set_working_mc 0x20',
    '  startlan 1',
    `    addr 127.0.0.1 ${port}`,
    '    priv_limit admin',
    '    allowed_auths_callback none md2 md5 straight',
    '    allowed_auths_user none md2 md5 straight',
    '    allowed_auths_operator none md2 md5 straight',
    '    allowed_auths_admin none md2 md5 straight',
    `    guid ${guid}`,
    '  endlan',
    `  chassis_control "${script} 0x20"`,
    // The emulator console (loopback only, test worlds only) lets the world change sensors at run time.
    `  console 127.0.0.1 ${consolePort}`,
    `  user 2 true "${BMC_USER}" "${BMC_PASSWORD}" admin 10 none md2 md5 straight`,
    '',
  ].join('\n'));
  await writeFile(join(dir, 'bmc.emu'), [
    'mc_setbmc 0x20',
    // No persist_sdr: the SDRs below are added at every start (persisting them would duplicate them).
    'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02',
    'sel_enable 0x20 1000 0x0a',
    ...sensorCommands(),
    'mc_enable 0x20',
    '',
  ].join('\n'));
  let child: ChildProcess | undefined;
  const flag = async (file: string, on: boolean) => {
    if (on) await writeFile(join(dir, file), '1');
    else await rm(join(dir, file), { force: true });
  };
  const bmc: SimBmc = {
    name, address: '127.0.0.1', port, dir,
    async power() {
      return (await readFile(join(dir, 'power'), 'utf8')).trim() === 'on' ? 'on' : 'off';
    },
    async setPower(state) {
      await writeFile(join(dir, 'power'), `${state}\n`);
    },
    async commands() {
      const f = join(dir, 'commands');
      return existsSync(f) ? (await readFile(f, 'utf8')).split('\n').filter(Boolean) : [];
    },
    refusePowerOn: (r) => flag('refuse-on', r),
    sensors: SIM_SENSORS,
    console: (commands) => simConsole(consolePort, commands),
    async setCpuTemperature(c) {
      if (!Number.isInteger(c) || c < 0 || c > 255) throw new Error(`CPU temperature ${c} is not a byte`);
      await bmc.console([`sensor_set_value ${MC} 0 ${SIM_SENSORS.cpuTemp.number} ${c} 1`]);
    },
    async setFanRpm(rpm) {
      const raw = Math.round(rpm / SIM_SENSORS.fan.m);
      if (raw < 0 || raw > 255) throw new Error(`fan speed ${rpm} out of range`);
      await bmc.console([`sensor_set_value ${MC} 0 ${SIM_SENSORS.fan.number} ${raw} 1`]);
    },
    async setDiscrete(sensor, state, asserted) {
      const d = SIM_SENSORS[sensor];
      const bit = d.states[state];
      if (bit === undefined) throw new Error(`${d.name} has no state "${state}" (${Object.keys(d.states).join(', ')})`);
      await bmc.console([`sensor_set_bit ${MC} 0 ${d.number} ${bit} ${asserted ? 1 : 0} 1`]);
    },
    async setPsuRedundancy(state) {
      const d = SIM_SENSORS.psuRedundancy;
      const bit = d.states[state === 'full' ? 'Fully Redundant' : state === 'lost' ? 'Redundancy Lost' : 'Redundancy Degraded']!;
      await bmc.console([`sensor_set_bit_clr_rest ${MC} 0 ${d.number} ${bit} 1 1`]);
    },
    async addSelEvent(bytes) {
      if (bytes.length !== 13 || bytes.some((b) => !Number.isInteger(b) || b < 0 || b > 255)) throw new Error('a SEL record is 13 bytes after its type');
      await bmc.console([`sel_add ${MC} 0x02 ${hex(bytes)}`]);
    },
    ignorePowerOff: (r) => flag('ignore-off', r),
    async start() {
      if (child) return;
      child = spawn('ipmi_sim', ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'bmc.emu'), '-s', join(dir, 'state'), '-n'], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr?.on('data', (d: Buffer) => { if (process.env.HM9K_BMC_DEBUG) process.stderr.write(d); });
      // ipmi_sim binds its UDP port and console right away; wait for the console (it is up once the
      // emulator file, sensors included, has run).
      const c = child;
      await waitFor(async () => {
        if (c.exitCode !== null) throw new Error(`ipmi_sim for ${name} exited with ${c.exitCode}`);
        // A real console session (prompt read, then a clean close): a bare connect-and-drop makes
        // ipmi_sim write its telnet greeting to a closed socket and die of SIGPIPE.
        return simConsole(consolePort, [], 1000).then(() => true, () => false);
      }, `ipmi_sim console of ${name}`, 10_000);
    },
    async kill() {
      const c = child;
      child = undefined;
      await killChild(c, 'SIGKILL');
    },
    async stop() {
      await bmc.kill();
      if (existsSync(dir)) await rm(dir, { recursive: true, force: true });
    },
  };
  await bmc.start();
  return bmc;
}
