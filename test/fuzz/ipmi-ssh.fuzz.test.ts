// Fuzz: ipmitool output (stdout, stderr, exit code) through the real IpmiClient (a stand-in
// ipmitool script prints the generated output), and known_hosts lines through knownHostMatches.
// ipmitool: a power status is `on` or `off` only when the output says so, with exit 0; anything else
// is an IpmiError with a kind (the power monitor counts it in hm9k_nodes_source_errors_total
// {source="bmc"}), never a guess; power on/off resolves only on a "Chassis Power Control" answer.
// hm9k parses only `chassis power` output: it reads no sdr or sel (nothing to fuzz there).
// known_hosts: never a throw; a key that is not on a line for this host never matches; a plain,
// [host]:port or hashed line holding the key does; junk lines around it change nothing.
import { createHmac } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpmiClient, IpmiError } from '../../src/clients/ipmi.js';
import { knownHostMatches } from '../../src/clients/ssh.js';
import { budget, check } from './support.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hm9k-fuzz-ipmi-'));
  await writeFile(join(dir, 'ipmitool'), `#!/bin/sh\ncat "${dir}/out"\ncat "${dir}/err" >&2\nexit $(cat "${dir}/code")\n`);
  await chmod(join(dir, 'ipmitool'), 0o755);
});
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

const line = fc.oneof(
  fc.constantFrom('Chassis Power is on', 'Chassis Power is off', 'Chassis Power is On', 'Chassis Power is unknown', 'Chassis Power Control: Down/Off', 'Chassis Power Control: Up/On',
    'Error: Unable to establish IPMI v2 / RMCP+ session', 'Set Session Privilege Level to ADMINISTRATOR failed', 'Invalid data field in request', 'RAKP 2 HMAC is invalid', 'Get Auth Capabilities error', ''),
  fc.string({ maxLength: 80 }),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')),
);
const output = fc.record({
  out: fc.oneof({ weight: 5, arbitrary: fc.array(line, { maxLength: 4 }).map((l) => l.join('\n')) }, { weight: 1, arbitrary: fc.integer({ min: 70_000, max: 300_000 }).map((n) => 'x'.repeat(n)) }),
  err: fc.array(line, { maxLength: 3 }).map((l) => l.join('\n')),
  code: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.constantFrom(1, 2, 127, 255) }),
});

const RUNS = 100;
describe('fuzz: ipmitool output', () => {
  it('found: ipmitool failing with a huge first line gives a bounded error message (it is recorded in the fence record)', async () => {
    const client = new IpmiClient({ ipmitoolPath: join(dir, 'ipmitool'), timeoutMs: 5000 });
    await writeFile(join(dir, 'out'), 'x'.repeat(70_000));
    await writeFile(join(dir, 'err'), '');
    await writeFile(join(dir, 'code'), '1');
    const err = await client.powerStatus({ address: '127.0.0.1', port: 1, username: 'u', password: 'p' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpmiError);
    expect((err as IpmiError).message.length).toBeLessThan(512);
  });

  it('power status / power off: on|off only when ipmitool said so, else a typed IpmiError', { timeout: budget(RUNS, 60) }, async () => {
    const client = new IpmiClient({ ipmitoolPath: join(dir, 'ipmitool'), timeoutMs: 5000 });
    const target = { address: '127.0.0.1', port: 1, username: 'u', password: 'p', cipherSuite: 3 };
    let errors = 0;
    await check('ipmitool chassis power', fc.asyncProperty(output, async (o) => {
      await writeFile(join(dir, 'out'), o.out);
      await writeFile(join(dir, 'err'), o.err);
      await writeFile(join(dir, 'code'), String(o.code));
      try {
        const s = await client.powerStatus(target);
        expect(o.code).toBe(0);
        expect(o.out.slice(0, 65536 + 4096)).toMatch(new RegExp(`Chassis Power is ${s}`, 'i'));
      } catch (err) {
        expect(err).toBeInstanceOf(IpmiError);
        expect(['timeout', 'auth', 'unreachable', 'invalid', 'spawn', 'unexpected']).toContain((err as IpmiError).kind);
        expect((err as IpmiError).message.length).toBeLessThan(2000);
        errors++;
      }
      try {
        await client.power(target, 'off');
        expect(o.code).toBe(0);
        expect(o.out).toMatch(/Chassis Power Control: /i);
      } catch (err) {
        expect(err).toBeInstanceOf(IpmiError);
      }
    }), RUNS);
    expect(errors).toBeGreaterThan(0);
  });
});

const b64 = fc.uint8Array({ minLength: 16, maxLength: 40 }).map((b) => Buffer.from(b).toString('base64'));
const hostname = fc.constantFrom('10.0.0.5', 'cmp1.example.org', '127.0.0.1');
const junkLine = fc.oneof(
  fc.string({ maxLength: 120 }),
  fc.tuple(fc.constantFrom('@revoked', '@cert-authority', '#', '|1|', '|1|abc|', '!'), fc.string({ maxLength: 60 })).map(([a, b]) => `${a}${b}`),
  fc.tuple(fc.array(fc.string({ maxLength: 12 }), { maxLength: 3 }), fc.constantFrom('ssh-ed25519', 'ssh-rsa', ''), b64).map(([h, t, k]) => `${h.join(',')} ${t} ${k}`),
);

const RUNS_KH = 2000;
describe('fuzz: known_hosts', () => {
  it('never throws; matches only a line for this host holding the key', { timeout: budget(RUNS_KH, 2) }, async () => {
    await check('known_hosts', fc.property(fc.array(junkLine, { maxLength: 8 }), hostname, fc.constantFrom(22, 2222), b64, fc.option(fc.constantFrom('plain', 'bracket', 'hashed', 'list', 'negated')), fc.nat(), (junk, host, port, key, form, at) => {
      // The key never appears in junk (then junk alone must not match).
      const lines = junk.filter((l) => !l.includes(key));
      expect(knownHostMatches(lines.join('\n'), host, port, key)).toBe(false);
      if (!form) return;
      const name = port === 22 ? host : `[${host}]:${port}`;
      const salt = Buffer.from('0123456789abcdef0123').toString('base64');
      const hosts = form === 'hashed' ? `|1|${salt}|${createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64')}`
        : form === 'list' ? `other,${name}` : form === 'negated' ? `!${name}` : form === 'bracket' ? `[${host}]:${port}` : name;
      const good = `${hosts} ssh-ed25519 ${key}`;
      const all = [...lines];
      all.splice(at % (all.length + 1), 0, good);
      const expected = form !== 'negated';
      expect(knownHostMatches(all.join('\r\n'.slice(at % 2)), host, port, key)).toBe(expected);
    }), RUNS_KH);
  });
});
