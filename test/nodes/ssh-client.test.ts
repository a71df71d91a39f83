// The SSH client against a real sshd on loopback.
import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkKnownHost, knownHostMatches, SshClient, SshError, type SshTarget } from '../../src/clients/ssh.js';
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
  // known_hosts markers, against the real sshd: the host key itself is on a trusted line too.
  const hostKeyLine = () => sshd.knownHosts.split('\n')[0]!; // "[127.0.0.1]:<port> ssh-ed25519 AAAA..."
  const keyPart = () => hostKeyLine().split(/\s+/).slice(1).join(' ');
  it('refuses a host key marked @revoked, although another line lists it for the host', async () => {
    const kh = `${sshd.knownHosts}@revoked * ${keyPart()}\n`;
    const err = await ssh.exec({ ...t, knownHosts: kh }, 'true', 10_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshError);
    expect((err as SshError).kind).toBe('hostKey');
    expect((err as SshError).message).toMatch(/@revoked/);
  });
  it('a @revoked line applies whatever its host pattern (a revoked key is accepted nowhere)', async () => {
    const kh = `@revoked other.example.org ${keyPart()}\n${sshd.knownHosts}`;
    const err = await ssh.exec({ ...t, knownHosts: kh }, 'true', 10_000).catch((e: unknown) => e);
    expect((err as SshError).kind).toBe('hostKey');
    expect((err as SshError).message).toMatch(/@revoked/);
  });
  it('a @revoked line for another key does not block the trusted one', async () => {
    const other = sshd.wrongKnownHosts.trim().split(/\s+/).slice(1).join(' ');
    const r = await ssh.exec({ ...t, knownHosts: `@revoked * ${other}\n${sshd.knownHosts}` }, 'echo ok', 10_000);
    expect(r.stdout).toBe('ok\n');
  });
  it('@cert-authority lines are not trusted (host certificates unsupported): refused with the reason', async () => {
    const kh = `@cert-authority * ${keyPart()}\n`;
    const err = await ssh.exec({ ...t, knownHosts: kh }, 'true', 10_000).catch((e: unknown) => e);
    expect((err as SshError).kind).toBe('hostKey');
    expect((err as SshError).message).toMatch(/@cert-authority.*does not verify host certificates/);
  });
  it('host patterns: wildcards match, a negated pattern excludes the line', () => {
    expect(knownHostMatches('10.0.0.* ssh-ed25519 K\n', '10.0.0.7', 22, 'K')).toBe(true);
    expect(knownHostMatches('[10.0.0.?]:2222 ssh-ed25519 K\n', '10.0.0.7', 2222, 'K')).toBe(true);
    expect(knownHostMatches('10.0.0.*,!10.0.0.7 ssh-ed25519 K\n', '10.0.0.7', 22, 'K')).toBe(false);
    expect(checkKnownHost('10.0.0.7 ssh-ed25519 K\n@revoked 192.0.2.1 ssh-ed25519 K\n', '10.0.0.7', 22, 'K')).toEqual({ verdict: 'revoked' });
  });
});
