// A real OpenSSH sshd on a loopback high port, with a generated host key and a user key, running
// as the current user. Commands the tests run are scripts in `dir` whose behaviour the test controls.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort as freeTcpPort } from './procs.js';
import { killChild } from './children.js';

const run = promisify(execFile);

// A free loopback TCP port, under the name its callers import from here.
export { freeTcpPort };

export interface SimSshd {
  host: string;
  port: number;
  /** Additional ports the same sshd listens on (scripts tell them apart by $SSH_CONNECTION). */
  extraPorts: number[];
  user: string;
  dir: string;
  privateKey: string;
  knownHosts: string;
  /** A second, unrelated host key line (for mismatch tests). */
  wrongKnownHosts: string;
  /** Writes an executable script at dir/<name> and returns its path. */
  script(name: string, body: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startSshd(opts: { extraPorts?: number } = {}): Promise<SimSshd> {
  const dir = await mkdtemp(join(tmpdir(), 'hm9k-sshd-'));
  await chmod(dir, 0o755);
  const port = await freeTcpPort();
  const extra: number[] = [];
  for (let i = 0; i < (opts.extraPorts ?? 0); i++) extra.push(await freeTcpPort());
  const user = userInfo().username;
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other_host_key')]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'user_key')]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'user_key.pub')));
  await chmod(join(dir, 'authorized_keys'), 0o600);
  const hostPub = (await readFile(join(dir, 'host_key.pub'), 'utf8')).trim().split(/\s+/);
  const otherPub = (await readFile(join(dir, 'other_host_key.pub'), 'utf8')).trim().split(/\s+/);
  await writeFile(join(dir, 'sshd_config'), [
    `Port ${port}`,
    ...extra.map((p) => `Port ${p}`),
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, 'host_key')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin prohibit-password',
    'UsePAM no',
    'StrictModes no',
    'LogLevel ERROR',
    `SetEnv HM9K_SIM_DIR=${dir}`,
    '',
  ].join('\n'));
  if (user === 'root') await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  // Wait until the port accepts connections.
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${stderr}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`sshd did not listen: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host: '127.0.0.1', port, extraPorts: extra, user, dir,
    privateKey: await readFile(join(dir, 'user_key'), 'utf8'),
    knownHosts: [port, ...extra].map((p) => `[127.0.0.1]:${p} ${hostPub[0]} ${hostPub[1]}\n`).join(''),
    wrongKnownHosts: `[127.0.0.1]:${port} ${otherPub[0]} ${otherPub[1]}\n`,
    async script(name, body) {
      const p = join(dir, name);
      await writeFile(p, `#!/bin/sh\n${body}\n`);
      await chmod(p, 0o755);
      return p;
    },
    async stop() {
      await killChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
