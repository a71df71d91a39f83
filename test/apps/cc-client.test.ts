// The CC client against the CC simulator over real HTTP: both bulk API generations and every failure path.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CcClient, CcError } from '../../src/clients/cc.js';
import { CloudControllerSim } from '../../src/sim/cc.js';

let cc: CloudControllerSim;
let client: CcClient;

async function setup(generation: 'paged' | 'onePage') {
  cc = new CloudControllerSim({ generation });
  await cc.listen();
  for (let i = 0; i < 7; i++) cc.setApp({ guid: `app-${i}`, version: `v${i}`, instances: i + 1, state: i === 6 ? 'STOPPED' : 'STARTED', package_state: 'STAGED' });
  client = new CcClient({ url: cc.url, bulkUser: 'bulk_api', bulkPassword: 'bulk-password', internalUser: 'internal_api', internalPassword: 'internal-password', timeoutMs: 300, batchSize: 3 });
}

describe.each(['paged', 'onePage'] as const)('bulk API, %s generation', (generation) => {
  beforeEach(() => setup(generation));
  afterEach(() => cc.close());

  it('fetches every app with basic auth and bulk_token', async () => {
    const r = await client.fetchDesired();
    expect([...r.apps.keys()].sort()).toEqual(['app-0', 'app-1', 'app-2', 'app-3', 'app-4', 'app-5', 'app-6']);
    expect(r.apps.get('app-2')).toMatchObject({ version: 'v2', instances: 3, state: 'STARTED', packageState: 'STAGED' });
    expect(r.pages).toBe(generation === 'paged' ? 4 : 2);
    if (generation === 'paged') expect(cc.requests.map((q) => decodeURIComponent(q.path.split('bulk_token=')[1]!))).toEqual(['{}', '{"id":3}', '{"id":6}', '{"id":7}']);
  });
});

describe('bulk API failures abort the whole fetch', () => {
  beforeEach(() => setup('paged'));
  afterEach(() => cc.close());
  it.each([
    ['401 on the first page', { kind: 'unauthorized', endpoint: 'bulk', page: 1 }, 'unauthorized'],
    ['500 mid-paging', { kind: 'serverError', endpoint: 'bulk', page: 2 }, 'status'],
    ['bad JSON mid-paging', { kind: 'badJson', endpoint: 'bulk', page: 2 }, 'badJson'],
    ['timeout on the last page', { kind: 'timeout', endpoint: 'bulk', page: 3 }, 'timeout'],
  ] as const)('%s', async (_n, failure, kind) => {
    cc.inject(failure);
    const err = await client.fetchDesired().catch((e) => e);
    expect(err).toBeInstanceOf(CcError);
    expect(err.kind).toBe(kind);
  });
  it('wrong credentials', async () => {
    client.opts.bulkPassword = 'wrong';
    await expect(client.fetchDesired()).rejects.toMatchObject({ kind: 'unauthorized', status: 401 });
  });
  it('a CC that is down', async () => {
    await cc.close();
    await expect(client.fetchDesired()).rejects.toMatchObject({ kind: 'network' });
    await cc.listen();
  });
  it('an invalid entry aborts (nothing partial)', async () => {
    cc.setApp({ guid: 'bad', version: 'v', instances: -1 as never, state: 'STARTED', package_state: 'STAGED' });
    await expect(client.fetchDesired()).rejects.toMatchObject({ kind: 'invalid' });
  });
  it('a 200 empty answer is a complete (empty) fetch: the shrink guard judges it', async () => {
    cc.inject({ kind: 'empty', endpoint: 'bulk', page: 1 });
    expect((await client.fetchDesired()).apps.size).toBe(0);
  });
});

describe('hm9000 endpoints', () => {
  beforeEach(() => setup('paged'));
  afterEach(() => cc.close());
  const start = { message_id: 'm', droplet: 'app-1', version: 'v1', instance_index: 0 };
  it('posts start/stop with basic auth; CC answers 200', async () => {
    await client.sendStart(start);
    await client.sendStop({ message_id: 'n', droplet: 'app-1', version: 'v1', instance_guid: 'g', instance_index: 5, is_duplicate: false });
    expect(cc.starts()[0]!.body).toEqual(start);
    expect(cc.stops()).toHaveLength(1);
  });
  it.each([
    ['401', { kind: 'unauthorized', endpoint: 'start' }, 'unauthorized'],
    ['500', { kind: 'serverError', endpoint: 'start' }, 'status'],
    ['timeout', { kind: 'timeout', endpoint: 'start' }, 'timeout'],
  ] as const)('%s is a failure', async (_n, failure, kind) => {
    cc.inject(failure);
    await expect(client.sendStart(start)).rejects.toMatchObject({ kind });
  });
});
