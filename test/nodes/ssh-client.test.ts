// The SSH client against a real sshd on loopback.
import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knownHostMatches, SshClient, SshError, type SshTarget } from '../../src/clients/ssh.js';
import { startSshd, type SimSshd } from '../support/sshd.js';

describe('SSH client against sshd', () => {
  let sshd: SimSshd;
  let t: SshTarget;
  const ssh = new SshClient();
  beforeAll(async () => {
    sshd = await startSshd();
    t = { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: sshd.privateKey, knownHosts: sshd.knownHosts };
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it('runs a command: exit 0 and output', async () => {
    const r = await ssh.exec(t, 'echo hello; echo err >&2', 10_000);
    expect(r).toMatchObject({ exitCode: 0, stdout: 'hello\n', stderr: 'err\n' });
  });
  it('reports a non-zero exit', async () => {
    const script = await sshd.script('fail.sh', 'echo broken; exit 3');
    const r = await ssh.exec(t, script, 10_000);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toBe('broken\n');
  });
  it('times out a hanging command', async () => {
    const err = await ssh.exec(t, 'sleep 30', 1000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshError);
    expect((err as SshError).kind).toBe('timeout');
  });
  it('rejects a host key not in known_hosts', async () => {
    const err = await ssh.exec({ ...t, knownHosts: sshd.wrongKnownHosts }, 'true', 10_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshError);
    expect((err as SshError).kind).toBe('hostKey');
  });
  it('rejects an empty known_hosts', async () => {
    const err = await ssh.exec({ ...t, knownHosts: '' }, 'true', 10_000).catch((e: unknown) => e);
    expect((err as SshError).kind).toBe('hostKey');
  });
  it('unreachable port is a typed error', async () => {
    const err = await ssh.exec({ ...t, port: 1 }, 'true', 5000).catch((e: unknown) => e);
    expect((err as SshError).kind).toBe('unreachable');
  });
  it('matches hashed known_hosts entries', () => {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('[10.0.0.1]:2222').digest('base64');
    const kh = `|1|${salt.toString('base64')}|${hash} ssh-ed25519 AAAAKEY\n`;
    expect(knownHostMatches(kh, '10.0.0.1', 2222, 'AAAAKEY')).toBe(true);
    expect(knownHostMatches(kh, '10.0.0.1', 2222, 'OTHER')).toBe(false);
    expect(knownHostMatches(kh, '10.0.0.2', 2222, 'AAAAKEY')).toBe(false);
  });
});
