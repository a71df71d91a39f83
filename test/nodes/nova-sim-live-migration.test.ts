// The Nova simulator's os-migrateLive: Nova's request schema per microversion, its error codes, and
// live-migration migration records (issue 12 item 7). Raw HTTP, as Nova's API would be called.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NovaSim, type SimServer } from '../../src/sim/nova.js';
import { waitFor } from '../../src/devenv/children.js';

const sim = new NovaSim({ migrationStepMs: 20, serviceDownTimeMs: 60_000 });
let token = '';

async function call(method: string, path: string, mv: string, body?: unknown): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers poked at by path
  const r = await fetch(`${sim.url}/compute/v2.1${path}`, {
    method, headers: { 'x-auth-token': token, 'openstack-api-version': `compute ${mv}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}
const live = (s: SimServer, mv: string, b: unknown) => call('POST', `/servers/${s.id}/action`, mv, { 'os-migrateLive': b });

beforeAll(async () => {
  await sim.start();
  for (const h of ['cmp1', 'cmp2', 'cmp3']) sim.addHost(h);
  const r = await fetch(`${sim.url}/identity/v3/auth/tokens`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'hm9k', password: 'secret', domain: { name: 'Default' } } } }, scope: { project: { name: 'admin', domain: { name: 'Default' } } } } }),
  });
  token = r.headers.get('x-subject-token')!;
});
afterAll(async () => { await sim.stop(); });

describe('os-migrateLive request schema per microversion', () => {
  it.each([
    ['2.1 needs disk_over_commit', '2.1', { block_migration: false, host: null }, 400, /'disk_over_commit' is a required property/],
    ['2.1 has no "auto"', '2.1', { block_migration: 'auto', disk_over_commit: false, host: null }, 400, /not valid under any of the given schemas/],
    ['2.1 full body', '2.1', { block_migration: 'False', disk_over_commit: false, host: null }, 202, undefined],
    ['2.25 drops disk_over_commit', '2.25', { block_migration: 'auto', disk_over_commit: false, host: null }, 400, /'disk_over_commit' was unexpected/],
    ['2.25 needs host (null lets the scheduler choose)', '2.25', { block_migration: 'auto' }, 400, /'host' is a required property/],
    ['2.25 auto', '2.25', { block_migration: 'auto', host: null }, 202, undefined],
    ['2.29 has no force', '2.29', { block_migration: 'auto', host: 'cmp2', force: true }, 400, /'force' was unexpected/],
    ['2.30 force', '2.30', { block_migration: 'auto', host: 'cmp2', force: false }, 202, undefined],
    ['2.30 force must be a boolean', '2.30', { block_migration: 'auto', host: 'cmp2', force: 'yes' }, 400, /is not of type 'boolean'/],
    ['2.68 removes force', '2.68', { block_migration: 'auto', host: 'cmp2', force: false }, 400, /'force' was unexpected/],
    ['2.96 auto', '2.96', { block_migration: 'auto', host: null }, 202, undefined],
    ['block_migration nonsense', '2.96', { block_migration: 'maybe', host: null }, 400, /block_migration|not valid/],
    ['not an object', '2.96', 'go', 400, /is not of type 'object'/],
  ] as const)('%s', async (_n, mv, b, status, message) => {
    const s = sim.addServer('cmp1');
    const r = await live(s, mv, b);
    expect(r.status).toBe(status);
    if (message) expect(r.body.badRequest.message).toMatch(message);
    else expect(r.body).toBeUndefined();
  });
});

describe('os-migrateLive errors and records', () => {
  it('400 for an unknown host; 409 for a server that is not ACTIVE/PAUSED or busy', async () => {
    const s = sim.addServer('cmp1');
    const nf = await live(s, '2.96', { block_migration: 'auto', host: 'nowhere' });
    expect(nf.status).toBe(400);
    expect(nf.body.badRequest.message).toBe('Compute host nowhere could not be found.');
    for (const [vm_state, task_state] of [['stopped', null], ['error', null], ['active', 'rebuilding']] as const) {
      const t = sim.addServer('cmp1', { vm_state, task_state });
      const r = await live(t, '2.96', { block_migration: 'auto', host: null });
      expect(r.status).toBe(409);
      expect(r.body.conflictingRequest.message).toMatch(/Cannot 'os-migrateLive' instance .* while it is in (vm_state|task_state)/);
    }
  });

  it('No valid host: a 400 before 2.34; from 2.34 accepted, the migration errors and the server stays ACTIVE where it was', async () => {
    const lone = new NovaSim({ migrationStepMs: 10 });
    await lone.start();
    try {
      lone.addHost('solo1');
      lone.addHost('solo2');
      lone.services.get('solo2')!.status = 'disabled';
      const s = lone.addServer('solo1');
      const tok = await (await fetch(`${lone.url}/identity/v3/auth/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'hm9k', password: 'secret' } } } } }) })).headers.get('x-subject-token')!;
      const post = (mv: string) => fetch(`${lone.url}/compute/v2.1/servers/${s.id}/action`, { method: 'POST', headers: { 'x-auth-token': tok, 'openstack-api-version': `compute ${mv}`, 'content-type': 'application/json' }, body: JSON.stringify({ 'os-migrateLive': { block_migration: 'auto', host: null } }) });
      const old = await post('2.33');
      expect(old.status).toBe(400);
      expect((await old.json()).badRequest.message).toMatch(/^No valid host was found/);
      expect((await post('2.34')).status).toBe(202);
      await waitFor(() => lone.migrations.some((m) => m.instance_uuid === s.id && m.status === 'error'), 'live migration error');
      expect(lone.servers.get(s.id)).toMatchObject({ host: 'solo1', vm_state: 'active', task_state: null });
    } finally {
      await lone.stop();
    }
  });

  it('a live migration moves the server while it stays ACTIVE, with a live-migration record in os-migrations', async () => {
    const s = sim.addServer('cmp3', { name: 'db' });
    const r = await live(s, '2.96', { block_migration: 'auto', host: 'cmp2' });
    expect(r.status).toBe(202);
    const during = await call('GET', `/servers/${s.id}`, '2.96');
    expect(during.body.server).toMatchObject({ status: 'MIGRATING', 'OS-EXT-STS:task_state': 'migrating', 'OS-EXT-STS:vm_state': 'active' });
    await waitFor(() => sim.servers.get(s.id)!.task_state === null, 'live migration done');
    const after = await call('GET', `/servers/${s.id}`, '2.96');
    expect(after.body.server).toMatchObject({ status: 'ACTIVE', 'OS-EXT-SRV-ATTR:host': 'cmp2' });
    const migs = await call('GET', '/os-migrations?migration_type=live-migration&source_compute=cmp3', '2.96');
    expect(migs.status).toBe(200);
    expect(migs.body.migrations).toEqual([expect.objectContaining({ instance_uuid: s.id, migration_type: 'live-migration', status: 'completed', source_compute: 'cmp3', dest_compute: 'cmp2' })]);
    const evac = await call('GET', '/os-migrations?migration_type=evacuation&source_compute=cmp3', '2.96');
    expect(evac.body.migrations).toEqual([]);
  });

  it('a failing live migration errors and leaves the server ACTIVE on its host', async () => {
    const s = sim.addServer('cmp3');
    sim.failLiveMigrationOf.add(s.id);
    expect((await live(s, '2.96', { block_migration: 'auto', host: null })).status).toBe(202);
    await waitFor(() => sim.migrations.some((m) => m.instance_uuid === s.id && m.status === 'error'), 'live migration error');
    expect(sim.servers.get(s.id)).toMatchObject({ host: 'cmp3', vm_state: 'active', task_state: null });
  });
});
