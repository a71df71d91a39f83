// The Nova simulator answers as real Nova does. Every expectation here was recorded from real Nova
// (Debian bookworm's nova-api 26.2, Zed, microversion up to 2.93, max_limit 2, src/devenv/openstack.ts)
// with `node scripts/compare-nova.mjs <keystone-v3-url> admin <password> admin`, which prints the same
// requests' answers for any Nova; the simulator differed on each of these before it was fixed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeystoneClient, parseCloudsYaml } from '../../src/clients/keystone.js';
import { NovaSim } from '../../src/sim/nova.js';

const FAKE = '00000000-0000-0000-0000-000000000000';

describe('Nova simulator vs real Nova (Zed 26.2): status codes, fault bodies, headers, paging', () => {
  const sim = new NovaSim({ maxLimit: 2, maxMicroversion: '2.93' });
  let ks: KeystoneClient;
  let up = '';
  beforeAll(async () => {
    await sim.start();
    for (const h of ['cmp1', 'cmp2']) sim.addHost(h);
    up = sim.addServer('cmp1', { name: 'a0' }).id;
    sim.addServer('cmp1', { name: 'a1' });
    sim.addServer('cmp2', { name: 'b0' });
    ks = new KeystoneClient(parseCloudsYaml(sim.cloudsYaml('sim'), 'sim'));
  });
  afterAll(async () => { await sim.stop(); });

  const call = async (method: string, path: string, body?: unknown, mv = '2.93') => {
    const res = await fetch(`${sim.url}/compute/v2.1${path}`, {
      method, headers: { 'x-auth-token': await ks.authToken(), 'openstack-api-version': `compute ${mv}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, version: res.headers.get('openstack-api-version'), body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  };
  const fault = (status: number, name: string, message: string, version: string | null = 'compute 2.93') => ({ status, version, body: { [name]: { code: status, message } } });

  it('fault answers carry the negotiated microversion header, as real Nova sends it', async () => {
    expect((await call('GET', `/servers/${FAKE}`)).version).toBe('compute 2.93');
  });

  it('404 bodies name the missing object', async () => {
    expect(await call('GET', `/servers/${FAKE}`)).toEqual(fault(404, 'itemNotFound', `Instance ${FAKE} could not be found.`));
    expect(await call('PUT', `/os-services/${FAKE}`, { status: 'enabled' })).toEqual(fault(404, 'itemNotFound', `Service ${FAKE} could not be found.`));
  });

  it('limit: the query schema\'s 400 for a non-number or a negative one; limit=0 is an empty page without links', async () => {
    expect(await call('GET', '/servers/detail?all_tenants=1&limit=abc')).toEqual(fault(400, 'badRequest', "Invalid input for query parameters limit. Value: abc. 'abc' does not match '^[0-9]*$'"));
    expect(await call('GET', '/os-migrations?limit=-1')).toEqual(fault(400, 'badRequest', "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'"));
    expect(await call('GET', '/servers/detail?all_tenants=1&limit=0')).toEqual({ status: 200, version: 'compute 2.93', body: { servers: [] } });
    // max_limit 2 caps limit 5, and a full page links the next one (real: "next /v2.1/servers/detail?all_tenants=1&limit=5&marker=<id>").
    const page = await call('GET', '/servers/detail?all_tenants=1&limit=5');
    expect((page.body!.servers as unknown[]).length).toBe(2);
    const next = new URL((page.body!.servers_links as { rel: string; href: string }[])[0]!.href);
    expect([...next.searchParams.keys()]).toEqual(['all_tenants', 'limit', 'marker']);
  });

  it('microversions: an unreadable one is a 400 without version headers, 2.0 (below the minimum) a 406', async () => {
    expect(await call('GET', '/os-services', undefined, 'abc')).toEqual(fault(400, 'badRequest', 'API Version String abc is of invalid format. Must be of format MajorNum.MinorNum.', null));
    expect(await call('GET', '/os-services', undefined, '2.0')).toEqual(fault(406, 'computeFault', 'Version 2.0 is not supported by the API. Minimum is 2.1 and maximum is 2.93.', 'compute 2.0'));
  });

  it('os-services: unknown query parameters are a 400 (2.75+); PUT checks the body schema before the lookup; before 2.53 the id URL fails the old schema', async () => {
    expect(await call('GET', '/os-services?foo=bar')).toEqual(fault(400, 'badRequest', "Additional properties are not allowed ('foo' was unexpected)"));
    expect(await call('PUT', `/os-services/${FAKE}`, { foo: 1 })).toEqual(fault(400, 'badRequest', "Additional properties are not allowed ('foo' was unexpected)"));
    expect(await call('PUT', `/os-services/${FAKE}`, {})).toEqual(fault(404, 'itemNotFound', `Service ${FAKE} could not be found.`));
    expect(await call('PUT', `/os-services/${FAKE}`, { status: 'enabled' }, '2.52')).toEqual(fault(400, 'badRequest', "'host' is a required property", 'compute 2.52'));
  });

  it('evacuate: the body schema first, then the target host (404), then the source still in use (400)', async () => {
    expect(await call('POST', `/servers/${up}/action`, { evacuate: { bogus: 1 } })).toEqual(fault(400, 'badRequest', "Invalid input for field/attribute evacuate. Value: {'bogus': 1}. Additional properties are not allowed ('bogus' was unexpected)"));
    expect(await call('POST', `/servers/${up}/action`, { evacuate: { force: true } })).toEqual(fault(400, 'badRequest', "Invalid input for field/attribute evacuate. Value: {'force': True}. Additional properties are not allowed ('force' was unexpected)"));
    expect(await call('POST', `/servers/${up}/action`, { evacuate: { host: 'nosuchhost' } })).toEqual(fault(404, 'itemNotFound', 'Compute host nosuchhost not found.'));
    expect(await call('POST', `/servers/${up}/action`, { evacuate: {} })).toEqual(fault(400, 'badRequest', 'Compute service of cmp1 is still in use.'));
    expect(await call('POST', `/servers/${up}/action`, { nosuchaction: {} })).toEqual(fault(400, 'badRequest', 'There is no such action: nosuchaction'));
  });

  it('forcing a host up while `done` evacuations remain: real Nova\'s 400 and words', async () => {
    const svc = sim.services.get('cmp2')!;
    const b0 = [...sim.servers.values()].find((s) => s.name === 'b0')!;
    sim.setAlive('cmp2', false);
    expect((await call('PUT', `/os-services/${svc.id}`, { forced_down: true })).status).toBe(200);
    expect((await call('POST', `/servers/${b0.id}/action`, { evacuate: {} })).status).toBe(200);
    for (let i = 0; i < 100 && sim.migrations.at(-1)?.status !== 'done'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await call('PUT', `/os-services/${svc.id}`, { forced_down: false })).toEqual(fault(400, 'badRequest', 'Unable to force up host cmp2 as `done` evacuation migration records remain associated with the host. Ensure the compute service has been restarted, allowing these records to move to `completed` before retrying this request.'));
  });
});
