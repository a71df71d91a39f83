#!/usr/bin/env node
// Prints how a Nova answers the requests whose status codes, fault bodies, headers and paging hm9k
// depends on, so that real Nova and the simulator (src/sim/nova.ts) can be compared line by line:
//   node scripts/compare-nova.mjs <keystone-v3-url> <user> <password> <project>
// e.g. against a devenv OpenStack (HM9K_KEEP_OPENSTACK=1; password "secret", user and project admin)
// and against a NovaSim (user hm9k). Harmless on a live cloud: every write it sends is refused
// (unknown ids, bad bodies, an evacuation of a server whose host is up). The answers recorded from
// real Zed are asserted against the simulator in test/nodes/nova-sim-parity.test.ts.
const [ks, user, pw, project] = process.argv.slice(2);
const r = await fetch(`${ks}/auth/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: user, domain: { id: 'default' }, password: pw } } }, scope: { project: { name: project, domain: { id: 'default' } } } } }) });
const token = r.headers.get('x-subject-token');
const cat = (await r.json()).token.catalog;
const nova = cat.find((c) => c.type === 'compute').endpoints.find((e) => e.interface === 'public').url.replace(/\/$/, '');
const call = async (method, path, body, mv = '2.93') => {
  const res = await fetch(`${nova}${path}`, { method, headers: { 'x-auth-token': token, 'openstack-api-version': `compute ${mv}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  const t = await res.text(); let j; try { j = JSON.parse(t); } catch { j = t.slice(0, 80); }
  return { status: res.status, body: j, h: res.headers.get('openstack-api-version'), ct: res.headers.get('content-type') };
};
const fake = '00000000-0000-0000-0000-000000000000';
const show = async (label, p, body, method = body ? 'POST' : 'GET', mv) => { const x = await call(method, p, body, mv); const b = x.body; const brief = b && typeof b === 'object' ? Object.fromEntries(Object.entries(b).map(([k, v]) => [k, k.endsWith('_links') ? v.map((l) => `${l.rel} ${l.href.replace(/^https?:\/\/[^/]+/, '')}`) : Array.isArray(v) ? `[${v.length}]` : v])) : b; console.log(label, '|', x.status, '|', x.h, '|', x.ct, '|', JSON.stringify(brief).slice(0, 500)); };
await show('detail marker bad', `/servers/detail?all_tenants=1&marker=${fake}`);
await show('detail limit abc', '/servers/detail?all_tenants=1&limit=abc');
await show('detail limit -1', '/servers/detail?all_tenants=1&limit=-1');
await show('detail limit 0', '/servers/detail?all_tenants=1&limit=0');
await show('detail limit 1', '/servers/detail?all_tenants=1&limit=1');
await show('detail limit 5 (over max)', '/servers/detail?all_tenants=1&limit=5');
await show('detail host nosuch', '/servers/detail?all_tenants=1&host=nosuch');
await show('detail', '/servers/detail?all_tenants=1');
await show('migr limit abc', '/os-migrations?limit=abc');
await show('migr limit -1', '/os-migrations?limit=-1');
await show('migr limit 0', '/os-migrations?limit=0');
await show('migr old mv limit', '/os-migrations?limit=1', undefined, 'GET', '2.58');
await show('services host nosuch', '/os-services?binary=nova-compute&host=nosuch');
await show('services bad query', '/os-services?foo=bar');
await show('services put no body keys', `/os-services/${fake}`, {}, 'PUT');
await show('services put old mv', `/os-services/${fake}`, { status: 'enabled' }, 'PUT', '2.52');
await show('mv garbage', '/os-services', undefined, 'GET', 'abc');
await show('mv 2.0', '/os-services', undefined, 'GET', '2.0');
const list = await call('GET', '/servers/detail?all_tenants=1&limit=1');
const sid = list.body.servers?.[0]?.id;
console.log('server', sid, list.body.servers?.[0]?.['OS-EXT-SRV-ATTR:host']);
if (sid) {
  await show('evacuate on up host', `/servers/${sid}/action`, { evacuate: {} });
  await show('evacuate bad body', `/servers/${sid}/action`, { evacuate: { bogus: 1 } });
  await show('evacuate force at 2.93', `/servers/${sid}/action`, { evacuate: { force: true } });
  await show('no such action', `/servers/${sid}/action`, { nosuchaction: {} });
  await show('evacuate unknown host', `/servers/${sid}/action`, { evacuate: { host: 'nosuchhost' } });
  await show('os-start on active', `/servers/${sid}/action`, { 'os-start': null });
  await show('resetState bad', `/servers/${sid}/action`, { 'os-resetState': { state: 'bogus' } });
  await show('server get', `/servers/${sid}`);
}
