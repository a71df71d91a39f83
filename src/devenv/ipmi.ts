// A real OpenIPMI ipmi_sim BMC per simulated node (compute-ha.md section 4): lan.conf, the emulator
// file and a chassis_control script whose state lives in files a test can read and change.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile, chmod, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killChild } from './children.js';

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

export async function startBmc(name: string): Promise<SimBmc> {
  const dir = await mkdtemp(join(tmpdir(), `hm9k-bmc-${name}-`));
  const port = await freeUdpPort();
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
    `  user 2 true "${BMC_USER}" "${BMC_PASSWORD}" admin 10 none md2 md5 straight`,
    '',
  ].join('\n'));
  await writeFile(join(dir, 'bmc.emu'), [
    'mc_setbmc 0x20',
    'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr',
    'sel_enable 0x20 1000 0x0a',
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
    ignorePowerOff: (r) => flag('ignore-off', r),
    async start() {
      if (child) return;
      child = spawn('ipmi_sim', ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'bmc.emu'), '-s', join(dir, 'state'), '-n'], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr?.on('data', () => {});
      // ipmi_sim binds its UDP port right away; give it a moment and check it is alive.
      await new Promise((r) => setTimeout(r, 300));
      if (child.exitCode !== null) throw new Error(`ipmi_sim for ${name} exited with ${child.exitCode}`);
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
