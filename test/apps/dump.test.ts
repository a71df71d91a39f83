// `hm9k dump` for the app half, end to end: the app half's API server serves GET /dump (basic auth)
// for a known actual/desired state, and `node bin/hm9k.js dump` (a real process; the password
// reaches it through HM9K_APPS__API__PASSWORD only) renders it as text and as JSON. The nodes part
// of the dump comes from the shared kube-apiserver.
import { spawn } from 'node:child_process';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiServer } from '../../src/apps/apiserver/index.js';
import { buildAppsDump, type AppsDump } from '../../src/apps/dump.js';
import { MemoryStore } from '../../src/apps/store/memory.js';
import { desiredIsFresh } from '../../src/apps/store/freshness.js';
import type { DesiredAppState, PendingStart, PendingStop } from '../../src/apps/types.js';
import { controlPlane } from '../support/controlplane.js';

const hasControlPlane = !!process.env.HM9K_CP_STATE;
const NOW = Date.UTC(2024, 4, 1, 12, 0, 0);
let dumpAt = NOW;
let store: MemoryStore;
let api: ApiServer;

const desired = (appGuid: string, instances: number, p: Partial<DesiredAppState> = {}): [string, DesiredAppState] => [appGuid, { appGuid, version: `${appGuid}-v1`, instances, state: 'STARTED', packageState: 'STAGED', ...p }];
const hb = (droplet: string, instance: string, index: number, state: 'RUNNING' | 'CRASHED' | 'STARTING' | 'EVACUATING', version = `${droplet}-v1`) => ({ droplet, version, instance, index, state, state_timestamp: NOW / 1000 - 100 });
const start = (appGuid: string, index: number, reason: PendingStart['reason'], dueInMs: number, sentOn = 0): PendingStart => ({ kind: 'start', messageId: `m-${appGuid}-${index}`, appGuid, version: `${appGuid}-v1`, index, sendOn: NOW + dueInMs, sentOn, keepAliveMs: 30_000, skipVerification: false, reason, priority: 0.3 });
const stop = (appGuid: string, index: number, instanceGuid: string, reason: PendingStop['reason'], dueInMs: number): PendingStop => ({ kind: 'stop', messageId: `s-${instanceGuid}`, appGuid, version: `${appGuid}-v1`, index, instanceGuid, sendOn: NOW + dueInMs, sentOn: 0, keepAliveMs: 30_000, skipVerification: false, reason });

function knownWorld(): MemoryStore {
  const s = new MemoryStore(30_000);
  s.setDesired(new Map([desired('web', 3), desired('pend', 1, { packageState: 'PENDING' }), desired('halted', 1, { state: 'STOPPED' })]), NOW - 20_000);
  // web: [0] twice (a duplicate), [1] missing, [2] crashed; gone: not desired but running; halted: STOPPED, still running
  s.applyHeartbeat({ dea: 'dea-a', droplets: [hb('web', 'i-web-0a', 0, 'RUNNING'), hb('web', 'i-web-2', 2, 'CRASHED'), hb('halted', 'i-halted-0', 0, 'RUNNING')] }, NOW - 5000);
  s.applyHeartbeat({ dea: 'dea-b', droplets: [hb('web', 'i-web-0b', 0, 'RUNNING'), hb('gone', 'i-gone-0', 0, 'RUNNING', 'gone-v7')] }, NOW - 5000);
  s.recordFlush(NOW - 35_000);
  s.recordFlush(NOW - 10_000);
  s.putCrashCounts([{ appGuid: 'web', version: 'web-v1', index: 2, count: 4, createdAt: NOW - 600_000, updatedAt: NOW - 60_000 }]);
  s.putPending([
    start('web', 1, 'MISSING', 20_000),
    start('web', 2, 'CRASHED', 60_000),
    start('pend', 0, 'EVACUATION', 0, NOW - 1000),
    stop('web', 0, 'i-web-0b', 'DUPLICATE', 120_000),
    stop('halted', 0, 'i-halted-0', 'EXTRA', -500),
  ]);
  return s;
}

function hm9kDump(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('node', ['bin/hm9k.js', 'dump', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HM9K_APPS__API__PASSWORD: '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe.skipIf(!hasControlPlane)('hm9k dump (apps)', () => {
  let url: string;
  let kubeconfig: string;
  beforeAll(async () => {
    store = knownWorld();
    api = new ApiServer({
      port: 0,
      user: 'hm',
      password: 's3cret-pw',
      store,
      isFresh: () => store.actualFreshness.isFresh(dumpAt),
      publishHeartbeat: () => undefined,
      malformed: () => undefined,
      logger: pino({ level: 'silent' }),
      dump: () => buildAppsDump(store, dumpAt, desiredIsFresh(store.lastCompleteFetch(), dumpAt, 120_000)),
    });
    await api.start();
    url = `http://127.0.0.1:${api.port}`;
    kubeconfig = controlPlane().state.kubeconfig;
  });
  afterAll(() => api?.stop());

  it('GET /dump needs basic auth', async () => {
    expect((await fetch(`${url}/dump`)).status).toBe(401);
    expect((await fetch(`${url}/dump`, { headers: { authorization: `Basic ${Buffer.from('hm:wrong').toString('base64')}` } })).status).toBe(401);
    const ok = await fetch(`${url}/dump`, { headers: { authorization: `Basic ${Buffer.from('hm:s3cret-pw').toString('base64')}` } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as AppsDump).apps.map((a) => a.appGuid)).toEqual(['gone', 'halted', 'pend', 'web']);
  });

  it('text: freshness first, then per app desired, instances by index (MISSING), crash counts, pending starts with countdowns, pending stops', async () => {
    dumpAt = NOW;
    const r = await hm9kDump(['--apps-url', url, '--apps-user', 'hm', '--kubeconfig', kubeconfig], { HM9K_APPS__API__PASSWORD: 's3cret-pw' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const appsPart = r.stdout.slice(0, r.stdout.indexOf('\n\n', r.stdout.lastIndexOf('pending stop')));
    expect(appsPart).toBe(
      [
        'Apps: actual state FRESH, desired state FRESH (last complete fetch 2024-05-01T11:59:40.000Z), 2 DEA(s), 4 app(s)',
        '',
        'gone  NOT DESIRED',
        '  [0] RUNNING on dea-b',
        '',
        'halted  desired: 1 x halted-v1 STOPPED/STAGED',
        '  [0] RUNNING on dea-a',
        '  pending stop [0] i-halted-0 EXTRA due',
        '',
        'pend  desired: 1 x pend-v1 STARTED/PENDING',
        '  [0] MISSING',
        '  pending start [0] EVACUATION sent (keep-alive)',
        '',
        'web  desired: 3 x web-v1 STARTED/STAGED',
        '  [0] RUNNING on dea-a, RUNNING on dea-b',
        '  [1] MISSING',
        '  [2] CRASHED on dea-a',
        '  crash count [2] 4',
        '  pending start [1] MISSING in 20s',
        '  pending start [2] CRASHED in 60s',
        '  pending stop [0] i-web-0b DUPLICATE in 120s',
      ].join('\n'),
    );
    expect(r.stdout).not.toContain('s3cret-pw');
  });

  it('text a minute later: NOT FRESH, countdowns moved on', async () => {
    dumpAt = NOW + 50_000;
    const r = await hm9kDump(['--apps-url', url, '--apps-user', 'hm', '--kubeconfig', kubeconfig], { HM9K_APPS__API__PASSWORD: 's3cret-pw' });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('Apps: actual state NOT FRESH, desired state FRESH (last complete fetch 2024-05-01T11:59:40.000Z), 2 DEA(s), 4 app(s)');
    expect(r.stdout).toContain('  pending start [1] MISSING due\n');
    expect(r.stdout).toContain('  pending start [2] CRASHED in 10s\n');
    expect(r.stdout).toContain('  pending stop [0] i-web-0b DUPLICATE in 70s\n');
  });

  it('--json: the same dump as data', async () => {
    dumpAt = NOW;
    const r = await hm9kDump(['--json', '--apps-url', url, '--apps-user', 'hm', '--kubeconfig', kubeconfig], { HM9K_APPS__API__PASSWORD: 's3cret-pw' });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { apps: AppsDump; nodes: unknown[] };
    expect(Array.isArray(out.nodes)).toBe(true);
    expect(out.apps).toEqual(JSON.parse(JSON.stringify(buildAppsDump(store, NOW, true))));
    expect(out.apps).toMatchObject({ actualFresh: true, desiredFresh: true, deas: 2 });
    const web = out.apps.apps.find((a) => a.appGuid === 'web')!;
    expect(web.desired).toEqual({ version: 'web-v1', instances: 3, state: 'STARTED', packageState: 'STAGED' });
    expect(web.instances.map((i) => [i.index, i.state, i.dea])).toEqual([[0, 'RUNNING', 'dea-a'], [0, 'RUNNING', 'dea-b'], [2, 'CRASHED', 'dea-a']]);
    expect(web.crashCounts).toEqual([{ version: 'web-v1', index: 2, count: 4 }]);
    expect(web.pendingStarts).toEqual([
      { version: 'web-v1', index: 1, reason: 'MISSING', dueInMs: 20_000, sent: false },
      { version: 'web-v1', index: 2, reason: 'CRASHED', dueInMs: 60_000, sent: false },
    ]);
    expect(web.pendingStops).toEqual([{ version: 'web-v1', index: 0, instance: 'i-web-0b', reason: 'DUPLICATE', dueInMs: 120_000, sent: false }]);
  });

  it('a wrong or missing password fails with a message naming 401, and no password on the command line is accepted', async () => {
    const wrong = await hm9kDump(['--apps-url', url, '--apps-user', 'hm', '--kubeconfig', kubeconfig], { HM9K_APPS__API__PASSWORD: 'nope' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/HTTP 401/);
    // The hint names what exists (issue 10): --apps-user, and the variable the password is read from.
    expect(wrong.stderr).toMatch(/check --apps-user or HM9K_APPS__API__USER, and the password in HM9K_APPS__API__PASSWORD or the variable --apps-password-env names/);
    expect(wrong.stderr).not.toMatch(/--apps-password[^-]/);
    const flag = await hm9kDump(['--apps-url', url, '--apps-user', 'hm', '--apps-password', 's3cret-pw', '--kubeconfig', kubeconfig], {});
    expect(flag.code).toBe(2); // a usage error
    expect(flag.stderr).toMatch(/unknown option '--apps-password'/);
  });
});
