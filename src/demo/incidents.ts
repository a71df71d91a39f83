// The scripted incidents. Each one changes the world the way the real failure would, waits for
// hm9k to react, and asserts the outcome from the simulators' records (Cloud Controller requests,
// DEA fleet, Nova, BMC power, captured mail), the resources' status and the Events: which actions
// were taken and which were not. Each ends by restoring the world, so any order works.
import { CustomObjectsApi } from '../kube/client.js';
import { ACK_FENCE_ANNOTATION, GROUP, UNDRAIN_ANNOTATION, VERSION, type AppHealthPolicy, type ComputeNode, type DesiredApp, type FencePolicy } from '../api/index.js';
import type { AppsDump } from '../apps/dump.js';
import type { Narrator, Observer } from './narrator.js';
import { CREDENTIALS, NAMESPACE, type DemoWorld } from './world.js';
import { mailText } from '../devenv/smtp.js';

export { mailText };

export interface Ctx {
  world: DemoWorld;
  n: Narrator;
  obs: Observer;
  custom: CustomObjectsApi;
  appsApiUrl: string;
  /** Aborted on Ctrl-C / SIGTERM. */
  signal: AbortSignal;
}

export class IncidentFailed extends Error {}

/** Assertions of one incident: each is narrated; the first failure ends the incident. */
export class Checks {
  readonly failures: string[] = [];
  passed = 0;
  constructor(private readonly n: Narrator, private readonly signal: AbortSignal, private readonly flush: () => Promise<void> = async () => undefined) {}

  that(ok: boolean, what: string, detail?: string): void {
    if (ok) {
      this.passed++;
      this.n.say('check', `ok    ${what}`);
    } else {
      const msg = `${what}${detail ? ` (${detail})` : ''}`;
      this.failures.push(msg);
      this.n.say('check', `FAIL  ${msg}`);
    }
  }

  /** Waits until fn returns a truthy value; throws IncidentFailed with `what` after timeoutMs. */
  async until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, detail?: () => string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      if (this.signal.aborted) throw new IncidentFailed('interrupted');
      try {
        const v = await fn();
        if (v) {
          await this.flush();
          return v;
        }
      } catch (err) {
        last = err;
      }
      if (Date.now() > deadline) {
        const msg = `timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}${last ? `: ${(last as Error).message}` : ''}${detail ? `; ${detail()}` : ''}`;
        this.failures.push(msg);
        this.n.say('check', `FAIL  ${msg}`);
        throw new IncidentFailed(msg);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export interface Incident {
  name: string;
  title: string;
  /** Runs the incident; returns the one-line outcome. */
  run(ctx: Ctx, check: Checks): Promise<string>;
}

// ---------------------------------------------------------------------------------------------
// helpers

type StartBody = { droplet: string; version: string; instance_index: number };
type StopBody = StartBody & { instance_guid: string; is_duplicate: boolean };

const getNode = async (c: Ctx, name: string) => (await c.custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name })) as ComputeNode;
const getPolicy = async (c: Ctx, name: string) => (await c.custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', name })) as FencePolicy;
const getApp = async (c: Ctx, name: string) => (await c.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NAMESPACE, plural: 'desiredapps', name })) as DesiredApp;
const listAhp = async (c: Ctx) => ((await c.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'apphealthpolicies' })) as { items: AppHealthPolicy[] }).items;

async function appsDump(c: Ctx): Promise<AppsDump> {
  const res = await fetch(new URL('/dump', c.appsApiUrl), {
    headers: { accept: 'application/json', authorization: `Basic ${Buffer.from(`${CREDENTIALS.apiUser}:${CREDENTIALS.apiPassword}`).toString('base64')}` },
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) throw new Error(`GET /dump: HTTP ${res.status}`);
  return (await res.json()) as AppsDump;
}

const cond = (o: { status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] } }, type: string) => o.status?.conditions?.find((x) => x.type === type);

function nodeSummary(n: ComputeNode): string {
  const s = n.status ?? {};
  return `${n.metadata.name}: ${s.phase ?? '?'}${s.waitingFor ? ` (${s.waitingFor})` : ''}`;
}

/** Every ComputeNode Healthy (the world is back to normal after a node incident). */
async function allNodesHealthy(c: Ctx, check: Checks, timeoutMs = novaMs(c, 60_000)): Promise<void> {
  let last: ComputeNode[] = [];
  await check.until('every compute node Healthy', async () => {
    last = ((await c.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes' })) as { items: ComputeNode[] }).items;
    return last.length > 0 && last.every((n) => n.status?.phase === 'Healthy');
  }, timeoutMs, () => last.filter((n) => n.status?.phase !== 'Healthy').map(nodeSummary).join('; '));
}

function showMail(n: Narrator, raw: string): void {
  const { headers, body } = mailText(raw);
  n.block([
    `+-- mail ----------------------------------------------------------------------`,
    `| From: ${headers.from ?? ''}`,
    `| To: ${headers.to ?? ''}`,
    `| Subject: ${headers.subject ?? ''}`,
    '|',
    ...body.split('\n').map((l) => `| ${l}`),
    `+------------------------------------------------------------------------------`,
  ], '    ');
}

async function annotate(c: Ctx, name: string, key: string, value: string): Promise<void> {
  const cur = await getNode(c, name);
  cur.metadata.annotations = { ...cur.metadata.annotations, [key]: value };
  await c.custom.replaceClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name, body: cur });
}

let rolloutSeq = 1;

/**
 * Node incidents in this demo run, per node. An incident played again picks the least used node: the
 * Event recorder gives each object a budget (burst 25, then one per 5 minutes, as client-go), which one
 * fence story nearly spends, so on a node that already had one the Events are not required.
 */
const nodeUse = new Map<string, number>();
/** Identical Events (object, reason, note) are recorded once per 10 minutes: a replayed storm is not told twice. */
let stormPlays = 0;

function pickNode(c: Ctx, preferred: string[], avoid: Set<string> = new Set()): { name: string; firstTime: boolean } {
  const all = c.world.compute.nodes.map((n) => n.name);
  const names = all.some((n) => !avoid.has(n)) ? all.filter((n) => !avoid.has(n)) : all;
  const order = [...preferred.filter((p) => names.includes(p)), ...names.filter((n) => !preferred.includes(n))];
  const name = [...order].sort((a, b) => (nodeUse.get(a) ?? 0) - (nodeUse.get(b) ?? 0) || order.indexOf(a) - order.indexOf(b))[0]!;
  const firstTime = !nodeUse.get(name);
  nodeUse.set(name, (nodeUse.get(name) ?? 0) + 1);
  return { name, firstTime };
}

/** An Event hm9k must record; when an earlier incident already told the same story it is looked for but not required. */
async function expectEvent(c: Ctx, check: Checks, kind: string, name: string, reason: string, since: number, required: boolean): Promise<void> {
  const seen = () => c.obs.eventsFor(kind, name, since).some((e) => e.reason === reason);
  if (required) {
    await check.until(`${reason} Event on ${kind.toLowerCase()}/${name}`, seen, 30_000);
    check.that(true, `Event ${reason} on ${kind.toLowerCase()}/${name}`);
    return;
  }
  const deadline = Date.now() + 5000;
  while (!seen() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  c.n.say('check', seen() ? `ok    Event ${reason} on ${kind.toLowerCase()}/${name}` : `note  no new ${reason} Event on ${kind.toLowerCase()}/${name}: the recorder tells an identical story once per 10 minutes and each object at most 25 times, then once per 5 minutes`);
}

// ---------------------------------------------------------------------------------------------
// the incidents

const deaDies: Incident = {
  name: 'dea-dies',
  title: 'a DEA dies silently -> its instances are restarted on the other DEAs',
  async run(c, check) {
    const { fleet, cc } = c.world;
    const alive = new Set(fleet.instances().map((i) => i.dea));
    const victim = [...alive].sort((a, b) => fleet.instances().filter((i) => i.dea === b && i.appGuid !== 'crashy').length - fleet.instances().filter((i) => i.dea === a && i.appGuid !== 'crashy').length)[0]!;
    const lost = fleet.instances().filter((i) => i.dea === victim && i.state === 'RUNNING');
    const startsBefore = cc.starts().length;
    const stopsBefore = cc.stops().length;
    const t0 = Date.now();
    c.n.say('world', `${victim} dies silently: no more heartbeats, no exit messages (it ran ${lost.map((i) => `${i.appGuid}[${i.index}]`).join(', ')})`);
    fleet.kill(victim);
    const runningAt = (app: string, index: number) => fleet.instances(app).some((i) => i.index === index && i.state === 'RUNNING' && i.dea !== victim);
    await check.until('the lost instances running again on other DEAs', () => lost.every((i) => runningAt(i.appGuid, i.index)), 60_000,
      () => `still missing: ${lost.filter((i) => !runningAt(i.appGuid, i.index)).map((i) => `${i.appGuid}[${i.index}]`).join(', ')}`);
    const starts = cc.starts().slice(startsBefore).map((r) => r.body as StartBody);
    for (const i of lost) check.that(starts.some((s) => s.droplet === i.appGuid && s.instance_index === i.index && s.version === i.version), `hm9k asked CC to start ${i.appGuid}[${i.index}], now on ${fleet.instances(i.appGuid).find((x) => x.index === i.index)?.dea}`);
    const lostKeys = new Set(lost.map((i) => `${i.appGuid}/${i.index}`));
    const extra = starts.filter((s) => !lostKeys.has(`${s.droplet}/${s.instance_index}`) && s.droplet !== 'crashy');
    check.that(extra.length === 0, 'no start for any instance that was not lost', extra.map((s) => `${s.droplet}[${s.instance_index}]`).join(', '));
    check.that(cc.stops().length === stopsBefore, 'nothing stopped');
    const apps = [...new Set(lost.map((i) => i.appGuid))];
    await check.until('StartMissing Events on the affected DesiredApps', () => apps.every((a) => c.obs.eventsFor('DesiredApp', a, t0).some((e) => e.reason === 'StartMissing')), 30_000);
    check.that(true, `StartMissing Events on ${apps.map((a) => `desiredapp/${a}`).join(', ')}`);
    await check.until('DesiredApp status shows every desired instance running', async () => {
      for (const a of apps) {
        const o = await getApp(c, a);
        if ((o.status?.running ?? 0) < o.spec.instances) return false;
      }
      return true;
    }, 30_000);
    check.that(true, `DesiredApp status: ${apps.join(', ')} fully running`);
    const replacement = fleet.addDea();
    c.n.say('world', `an operator replaces ${victim} with an empty ${replacement}`);
    return `${lost.length} instances of the dead ${victim} restarted on other DEAs (${starts.length} starts, 0 stops)`;
  },
};

const crashLoop: Incident = {
  name: 'crash-loop',
  title: 'an app crash-loops -> restarted at once 3 times, then with backoff (Flapping)',
  async run(c, check) {
    const { fleet, cc } = c.world;
    const app = 'crashy';
    // Index 0: when no index of an app runs, HM9000 restarts index 0 only.
    const index = 0;
    const otherIndex = 1;
    const version = cc.apps.get(app)!.version;
    const target = await check.until(`${app}[${index}] running`, () => fleet.instances(app).find((i) => i.index === index && i.state === 'RUNNING'), 120_000);
    const other = await check.until(`${app}[${otherIndex}] running`, () => fleet.instances(app).find((i) => i.index === otherIndex && i.state === 'RUNNING'), 60_000);
    // A crash count from an earlier crash loop is remembered for 2 x maxBackoff after its last crash.
    const countBefore = (await appsDump(c)).apps.find((a) => a.appGuid === app)?.crashCounts.find((x) => x.index === index && x.version === version)?.count ?? 0;
    const startsBefore = cc.starts().length;
    const stopsBefore = cc.stops().length;
    const t0 = Date.now();
    c.n.say('world', `${app} gets a bad configuration: ${app}[${index}] crashes now, and again after every start`);
    if (countBefore) c.n.say('demo', `hm9k still remembers ${countBefore} crashes of ${app}[${index}] from an earlier crash loop: backoff starts earlier`);
    fleet.crashOnStart.add(app);
    try {
      fleet.crash(target.guid);
      const flapping = await check.until(`desiredapp/${app} Flapping=True for index ${index}`, async () => {
        const o = await getApp(c, app);
        return cond(o, 'Flapping')?.status === 'True' && o.status?.flapping?.some((f) => f.index === index && f.crashCount > countBefore) ? o : undefined;
      }, 60_000);
      check.that(true, `desiredapp/${app} condition Flapping=True: ${cond(flapping, 'Flapping')?.message ?? ''}`);
      // Backoff: a crash count past crashesBeforeBackoff and a pending restart that waits.
      const backoff = await check.until('a restart pending with a backoff delay (hm9k dump)', async () => {
        const d = (await appsDump(c)).apps.find((a) => a.appGuid === app);
        const count = d?.crashCounts.find((x) => x.index === index && x.version === version)?.count ?? 0;
        const pending = d?.pendingStarts.find((p) => p.index === index && !p.sent && p.dueInMs > 500);
        return count >= Math.max(4, countBefore + 1) && pending ? { count, dueInMs: pending.dueInMs } : undefined;
      }, 90_000);
      const starts = cc.starts().slice(startsBefore).map((r) => r.body as StartBody).filter((s) => s.droplet === app);
      const immediate = Math.max(0, 3 - countBefore);
      const ofIndex = starts.filter((s) => s.instance_index === index).length;
      check.that(ofIndex >= immediate, `restarted at once ${immediate} times before backoff (${ofIndex} starts of ${app}[${index}] so far)`);
      check.that(true, `crash count ${backoff.count}: next restart of ${app}[${index}] waits ${(backoff.dueInMs / 1000).toFixed(1)}s (backoff doubles per crash)`);
      check.that(!starts.some((s) => s.instance_index !== index), `${app}[${otherIndex}] not restarted`);
      check.that(fleet.instances(app).some((i) => i.guid === other.guid && i.state === 'RUNNING'), `${app}[${otherIndex}] kept running (same instance)`);
      check.that(cc.stops().length === stopsBefore, 'nothing stopped (crashed instances are never stopped)');
      await check.until(`StartCrashed Event on desiredapp/${app}`, () => c.obs.eventsFor('DesiredApp', app).some((e) => e.reason === 'StartCrashed'), 30_000);
      check.that(true, `StartCrashed Event on desiredapp/${app}${c.obs.eventsFor('DesiredApp', app, t0).some((e) => e.reason === 'StartCrashed') ? '' : ' (recorded at the first crash loop; identical Events are not repeated)'}`);
      return `${app}[${index}] restarted at once ${Math.min(immediate, ofIndex)} times, then backoff (crash count ${backoff.count}, next restart in ${(backoff.dueInMs / 1000).toFixed(1)}s); Flapping=True; ${app}[${otherIndex}] untouched`;
    } finally {
      fleet.crashOnStart.delete(app);
      c.n.say('world', `the configuration of ${app} is fixed: its next restart (at the backoff slot) will stay up`);
    }
  },
};

const rollout: Incident = {
  name: 'rollout',
  title: 'a new version is rolled out -> new instances started, then the old ones stopped',
  async run(c, check) {
    const { fleet, cc } = c.world;
    const app = 'api';
    const desired = cc.apps.get(app)!;
    const from = desired.version;
    const to = `${app}-v${++rolloutSeq}`;
    const old = fleet.instances(app).filter((i) => i.version === from);
    const startsBefore = cc.starts().length;
    const stopsBefore = cc.stops().length;
    const t0 = Date.now();
    c.n.say('world', `cf push ${app}: the Cloud Controller now desires ${desired.instances} x ${to} (was ${from})`);
    cc.updateApp(app, { version: to });
    const done = () => {
      const now = fleet.instances(app);
      return now.filter((i) => i.version === to && i.state === 'RUNNING').length === desired.instances && !now.some((i) => i.version === from);
    };
    await check.until(`${desired.instances} x ${to} running and no ${from} left`, done, 60_000,
      () => fleet.instances(app).map((i) => `${i.version}[${i.index}] ${i.state}`).join(', '));
    const starts = cc.starts().slice(startsBefore).filter((r) => (r.body as StartBody).droplet === app);
    const stops = cc.stops().slice(stopsBefore);
    for (let i = 0; i < desired.instances; i++) check.that(starts.some((r) => (r.body as StartBody).version === to && (r.body as StartBody).instance_index === i), `start ${app}[${i}] ${to}`);
    for (const o of old) check.that(stops.some((r) => (r.body as StopBody).instance_guid === o.guid), `stop old ${app}[${o.index}] ${from}`);
    const lastStart = Math.max(...starts.map((r) => r.at));
    const firstStop = Math.min(...stops.filter((r) => (r.body as StopBody).droplet === app).map((r) => r.at));
    check.that(firstStop >= lastStart, 'the old instances were stopped only after every new one had been started');
    const others = stops.filter((r) => (r.body as StopBody).droplet !== app);
    check.that(others.length === 0, 'no other app stopped', others.map((r) => (r.body as StopBody).droplet).join(', '));
    const ahp = (await listAhp(c))[0];
    check.that(!!ahp && !ahp.status?.stopHold, 'no stop hold (the stops stayed within the stop budget)');
    check.that(!c.obs.events.some((e) => e.at >= t0 - 2000 && e.reason === 'ShrinkGuard'), 'no shrink guard (a version change of 3 of 13 instances is within maxShrinkPercent)');
    await check.until(`desiredapp/${app} spec.version ${to}`, async () => (await getApp(c, app)).spec.version === to, 30_000);
    check.that(true, `desiredapp/${app} spec.version is ${to} (projected from CC)`);
    return `${app} rolled from ${from} to ${to}: ${desired.instances} started, then ${old.length} old stopped; nothing else stopped`;
  },
};

/** A tenant boots servers on `name` until it runs at least `count` (so there is something to evacuate). */
async function bootServers(c: Ctx, name: string, count: number): Promise<void> {
  const have = (await c.world.nova.servers()).filter((s) => s.host === name).length;
  const names = Array.from({ length: Math.max(0, count - have) }, (_, i) => `app-${Date.now().toString(36)}-${have + i}`);
  for (const s of names) c.n.say('world', `a tenant boots ${s} on ${name}`);
  if (names.length) await c.world.nova.bootServers(name, names);
}

/** Seconds an outcome that needs Nova may take: real Nova on a loaded machine is slower than the simulator. */
const novaMs = (c: Ctx, simMs: number) => (c.world.nova.real ? simMs * 4 : simMs);

const storageLost: Incident = {
  name: 'storage-lost',
  title: 'a compute node loses its storage network and cannot be repaired -> fenced, evacuated, operators mailed',
  async run(c, check) {
    const w = c.world.compute;
    const { name, firstTime } = pickNode(c, ['cmp1', 'cmp3', 'cmp2']);
    const node = w.node(name)!;
    await allNodesHealthy(c, check);
    await bootServers(c, name, 2);
    const nova = c.world.nova;
    const servers = (await nova.servers()).filter((s) => s.host === name);
    const migrationsBefore = (await nova.evacuations()).length;
    const mailsBefore = w.smtp.mails.length;
    const t0 = Date.now();
    await w.setRecoveryFails(name, true);
    node.broken.storage = true;
    c.n.say('world', `${name} loses its storage network (a dead NIC): restarting the network on the host will not help`);
    let last: ComputeNode | undefined;
    const fenced = await check.until(`${name} Fenced`, async () => {
      last = await getNode(c, name);
      return last.status?.phase === 'Fenced' ? last : undefined;
    }, novaMs(c, 90_000), () => (last ? nodeSummary(last) : ''));
    const fence = fenced.status!.fence!;
    check.that(w.recoverCalls.includes(`${name}:storage`), 'recovery tried first (restart the storage network over SSH): it failed');
    check.that((await node.bmc.power()) === 'off', `fenced: ipmi_sim reports ${name} chassis power off`);
    check.that(!!fence.powerOffConfirmedAt, `power-off confirmed by the BMC at ${fence.powerOffConfirmedAt}`);
    check.that(fence.steps.every((s) => s.state === 'succeeded'), `fence ${fence.id} steps: ${fence.steps.map((s) => `${s.name}=${s.state}`).join(', ')}`);
    const svc = (await nova.service(name))!;
    check.that(svc.forcedDown && svc.status === 'disabled' && svc.disabledReason === `hm9k fence ${fence.id}`, `${nova.real ? 'real ' : ''}Nova: nova-compute on ${name} forced down and disabled ("${svc.disabledReason}")`);
    const now = new Map((await nova.servers()).map((s) => [s.id, s]));
    check.that(servers.every((s) => now.get(s.id)?.host !== name), `every server evacuated (${servers.map((s) => `${s.name} -> ${now.get(s.id)?.host}`).join(', ')})`);
    const migs = (await nova.evacuations()).slice(migrationsBefore);
    check.that(migs.length === servers.length && new Set(migs.map((m) => m.serverId)).size === servers.length, `one evacuation per server (${migs.length}, from Nova's os-migrations)`);
    check.that(migs.every((m) => m.source === name), `no server of another node moved`);
    const mv = fenced.status?.evacuation?.microversion;
    check.that(servers.every((s) => now.get(s.id)?.status === s.status), `every server kept its power state (${servers.map((s) => `${s.name} ${s.status}`).join(', ')}; microversion ${mv ?? '?'}${nova.real ? ': Zed offers at most 2.93, hm9k negotiated down from 2.94' : ''})`);
    check.that(fenced.status?.evacuation?.done === servers.length && fenced.status.evacuation.failed === 0, `status.evacuation: ${fenced.status?.evacuation?.done}/${fenced.status?.evacuation?.total} done`);
    const others = w.nodes.filter((n) => n.name !== name);
    const powers = await Promise.all(others.map((n) => n.bmc.power()));
    check.that(powers.every((p) => p === 'on'), 'every other node still powered on');
    const mail = await check.until('the fence email', () => w.smtp.mails.slice(mailsBefore).find((m) => m.subject.includes(name) && m.subject.includes('fenced')), 30_000);
    check.that(mail.raw.includes(fence.id), `email "${mail.subject}" to ${mail.to.join(', ')} names the fence id`);
    showMail(c.n, mail.raw);
    await expectEvent(c, check, 'ComputeNode', name, 'Fenced', t0, firstTime);

    // The operator repairs the host, powers it on and acknowledges the fence by its id.
    c.n.say('world', `an operator repairs ${name}'s storage network, powers it on and acknowledges: kubectl annotate cn ${name} ${ACK_FENCE_ANNOTATION}=${fence.id}`);
    await w.setRecoveryFails(name, false);
    node.broken.storage = false;
    await node.bmc.setPower('on');
    await annotate(c, name, ACK_FENCE_ANNOTATION, fence.id);
    await check.until(`${name} Healthy again`, async () => (await getNode(c, name)).status?.phase === 'Healthy', novaMs(c, 60_000));
    const back = (await nova.service(name))!;
    check.that(!back.forcedDown && back.status === 'enabled', `${name} back in service (nova-compute un-forced and enabled)`);
    return `${name} fenced (ipmi_sim: power off), nova-compute forced down, ${servers.length} servers evacuated by ${nova.real ? 'real Nova' : 'the Nova simulator'}, operators mailed; back in service after the acknowledgement`;
  },
};

const bmcDead: Incident = {
  name: 'bmc-dead',
  title: "a node's BMC stops answering while the node fails -> nothing evacuated, operators told (FenceFailed)",
  async run(c, check) {
    const w = c.world.compute;
    const { name, firstTime } = pickNode(c, ['cmp2', 'cmp3', 'cmp1']);
    const node = w.node(name)!;
    await allNodesHealthy(c, check);
    await bootServers(c, name, 2);
    const nova = c.world.nova;
    const servers = (await nova.servers()).filter((s) => s.host === name).map((s) => s.id);
    const migrationsBefore = (await nova.evacuations()).length;
    const mailsBefore = w.smtp.mails.length;
    const t0 = Date.now();
    await node.bmc.kill();
    await w.setRecoveryFails(name, true);
    node.broken.storage = true;
    c.n.say('world', `${name}'s BMC stops answering (ipmi_sim killed), and ${name} loses its storage network`);
    let last: ComputeNode | undefined;
    const failed = await check.until(`${name} FenceFailed`, async () => {
      last = await getNode(c, name);
      return last.status?.phase === 'FenceFailed' ? last : undefined;
    }, 90_000, () => (last ? nodeSummary(last) : ''));
    const fence = failed.status!.fence!;
    const step = fence.steps.find((s) => s.state === 'failed');
    check.that(!!step, `fence ${fence.id}: ${step?.name} failed (${step?.message ?? ''})`);
    check.that(!failed.status?.evacuation && (await nova.evacuations()).length === migrationsBefore, 'nothing evacuated (power-off could not be confirmed)');
    const now = new Map((await nova.servers()).map((s) => [s.id, s]));
    check.that(servers.every((id) => now.get(id)?.host === name), `the ${servers.length} servers of ${name} stay where they are`);
    const svc = (await nova.service(name))!;
    check.that(!svc.forcedDown && svc.status === 'enabled', 'nova-compute not forced down, not disabled');
    const mail = await check.until('the FENCE FAILED email', () => w.smtp.mails.slice(mailsBefore).find((m) => m.subject.includes(name) && m.subject.includes('FENCE FAILED')), 30_000);
    check.that(mailText(mail.raw).body.includes('NOT evacuated'), `operators told: "${mail.subject}"`);
    showMail(c.n, mail.raw);
    await expectEvent(c, check, 'ComputeNode', name, 'PhaseFenceFailed', t0, firstTime);

    c.n.say('world', `an operator replaces the BMC, repairs ${name}'s storage network and acknowledges fence ${fence.id}`);
    await node.bmc.start();
    await w.setRecoveryFails(name, false);
    node.broken.storage = false;
    await annotate(c, name, ACK_FENCE_ANNOTATION, fence.id);
    await check.until(`${name} Healthy again`, async () => (await getNode(c, name)).status?.phase === 'Healthy', novaMs(c, 60_000));
    check.that((await nova.evacuations()).length === migrationsBefore, `${name} Healthy again; still nothing evacuated`);
    return `${name}: power-off could not be confirmed -> FenceFailed; nothing evacuated, nothing forced down; operators mailed`;
  },
};

const storm: Incident = {
  name: 'storm',
  title: 'a partition makes half the nodes look failed -> storm protection holds, nothing fenced',
  async run(c, check) {
    const w = c.world.compute;
    await allNodesHealthy(c, check);
    const names = w.nodes.slice(Math.floor(w.nodes.length / 2)).map((n) => n.name);
    for (const n of names) nodeUse.set(n, (nodeUse.get(n) ?? 0) + 1);
    const firstTime = stormPlays++ === 0;
    const policyName = c.obs.policies[0]?.metadata.name ?? 'compute';
    const nova = c.world.nova;
    const migrationsBefore = (await nova.evacuations()).length;
    const recoverBefore = w.recoverCalls.length;
    const t0 = Date.now();
    for (const name of names) await w.setRecoveryFails(name, true);
    for (const name of names) w.node(name)!.broken.storage = true;
    c.n.say('world', `a storage switch partitions ${names.join(', ')} (${names.length} of ${w.nodes.length} nodes) from the storage network`);
    const p = await check.until(`fencepolicy/${policyName} StormActive=True`, async () => {
      const p = await getPolicy(c, policyName);
      return cond(p, 'StormActive')?.status === 'True' ? p : undefined;
    }, 60_000);
    check.that(true, `StormActive=True: ${cond(p, 'StormActive')?.message ?? ''}`);
    let last: ComputeNode[] = [];
    await check.until('every failed node held by the storm', async () => {
      last = await Promise.all(names.map((n) => getNode(c, n)));
      return last.every((n) => n.status?.waitingFor?.includes('storm'));
    }, 60_000, () => last.map(nodeSummary).join('; '));
    for (const n of last) check.that(!n.status?.fence && n.status?.phase !== 'Fencing', `${n.metadata.name} ${n.status?.phase}, not fenced: ${n.status?.waitingFor}`);
    const powers = await Promise.all(w.nodes.map((n) => n.bmc.power()));
    check.that(powers.every((x) => x === 'on'), 'every node still powered on');
    check.that((await nova.evacuations()).length === migrationsBefore, 'nothing evacuated');
    check.that((await nova.services()).every((s) => !s.forcedDown), 'no nova-compute forced down');
    await expectEvent(c, check, 'FencePolicy', policyName, 'StormActive', t0, firstTime);

    c.n.say('world', 'the partition heals');
    for (const name of names) {
      w.node(name)!.broken.storage = false;
      await w.setRecoveryFails(name, false);
    }
    await allNodesHealthy(c, check);
    await check.until(`fencepolicy/${policyName} StormActive=False`, async () => cond(await getPolicy(c, policyName), 'StormActive')?.status === 'False', 30_000);
    check.that((await nova.evacuations()).length === migrationsBefore && (await Promise.all(w.nodes.map((n) => n.bmc.power()))).every((x) => x === 'on'), 'partition healed: every node Healthy, nothing was fenced or evacuated');
    return `${names.length} of ${w.nodes.length} nodes looked failed -> StormActive; nothing fenced, powered off or evacuated (recovery commands run: ${w.recoverCalls.length - recoverBefore})`;
  },
};

const hardwareDegraded: Incident = {
  name: 'hardware-degraded',
  title: "a node's CPU temperature climbs past critical -> drained by live migration while it runs, left disabled, operators mailed",
  async run(c, check) {
    const w = c.world.compute;
    // A host whose servers all run: live migration moves running servers only (Nova answers 409 for a
    // SHUTOFF one), and real Nova's scheduler may have placed storage-lost's stopped server anywhere.
    const notRunning = new Set((await c.world.nova.servers()).filter((s) => s.status !== 'ACTIVE').map((s) => s.host));
    const { name, firstTime } = pickNode(c, ['cmp3', 'cmp2', 'cmp1'], notRunning);
    const node = w.node(name)!;
    await allNodesHealthy(c, check);
    await bootServers(c, name, 10);
    const nova = c.world.nova;
    const servers = (await nova.servers()).filter((s) => s.host === name);
    const migrationsBefore = (await nova.migrations()).length;
    const mailsBefore = w.smtp.mails.length;
    const t0 = Date.now();
    await node.bmc.setCpuTemperature(95);
    c.n.say('world', `${name}'s CPU temperature climbs to 95 C (ipmi_sim: critical at 90 C): the host still runs, for now`);
    const phases = new Set<string>();
    let last: ComputeNode | undefined;
    const drained = await check.until(`${name} Drained`, async () => {
      last = await getNode(c, name);
      if (last.status?.phase) phases.add(last.status.phase);
      return last.status?.phase === 'Drained' ? last : undefined;
    }, novaMs(c, 120_000), () => (last ? nodeSummary(last) : ''));
    const emptyMs = Date.now() - t0;
    const d = drained.status!.drain!;
    check.that(drained.status?.hardware?.state === 'drain', `hardware: ${(drained.status?.hardware?.reasons ?? []).join('; ')}`);
    check.that(phases.has('Draining') || c.obs.eventsFor('ComputeNode', name, t0).some((e) => e.reason === 'DrainStarted'), `${name} was Draining (${d.id}), then Drained`);
    const svc = (await nova.service(name))!;
    check.that(svc.status === 'disabled' && !svc.forcedDown && svc.disabledReason === `hm9k drain ${d.id}`, `${nova.real ? 'real ' : ''}Nova: nova-compute on ${name} disabled ("${svc.disabledReason}"), not forced down`);
    const now = new Map((await nova.servers()).map((s) => [s.id, s]));
    check.that(servers.every((s) => { const x = now.get(s.id); return !!x && x.host !== name && x.status === 'ACTIVE'; }),
      `every server live-migrated and still ACTIVE (${servers.map((s) => `${s.name} -> ${now.get(s.id)?.host}`).join(', ')})`);
    const migs = (await nova.migrations()).slice(migrationsBefore);
    check.that(migs.every((m) => m.type === 'live-migration'), `no evacuation: ${migs.length} live migrations, 0 evacuations`);
    check.that(migs.length === servers.length && new Set(migs.map((m) => m.serverId)).size === servers.length, `one live migration per server (${migs.length} for ${servers.length})`);
    check.that(d.result === 'empty' && d.migrated === servers.length && d.failed === 0, `status.drain: ${d.migrated}/${d.total} live-migrated, ${d.failed} failed, ${d.left} left`);
    check.that((await node.bmc.power()) === 'on', `${name} still powered on (drained, not fenced: drain.whenEmpty LeaveDisabled)`);
    await check.until('the drain-start email', () => w.smtp.mails.slice(mailsBefore).find((m) => m.subject.includes(name) && m.subject.includes('draining')), 30_000);
    const mail = await check.until('the drain-end email', () => w.smtp.mails.slice(mailsBefore).find((m) => m.subject.includes(name) && m.subject.includes('drained')), 30_000);
    check.that(mail.raw.includes(d.id), `email "${mail.subject}" names the drain id`);
    showMail(c.n, mail.raw);
    await expectEvent(c, check, 'ComputeNode', name, 'DrainComplete', t0, firstTime);
    c.n.say('demo', `[figures] CPU temperature critical -> host empty (${servers.length} servers, drain.concurrency 3) in ${(emptyMs / 1000).toFixed(1)} s (hardware interval 2s x samples 2)`);

    c.n.say('world', `an operator replaces the fan of ${name} (the CPU cools to 45 C) and returns it: kubectl annotate cn ${name} ${UNDRAIN_ANNOTATION}=${d.id}`);
    await node.bmc.setCpuTemperature(45);
    await check.until(`${name} hardware ok`, async () => (await getNode(c, name)).status?.hardware?.state === 'ok', 60_000);
    await annotate(c, name, UNDRAIN_ANNOTATION, d.id);
    await check.until(`${name} Healthy again`, async () => { const n = await getNode(c, name); return n.status?.phase === 'Healthy' && !n.status.drain; }, novaMs(c, 60_000));
    check.that((await nova.service(name))!.status === 'enabled', `${name} back in service (nova-compute enabled)`);
    check.that((await nova.migrations()).length === migrationsBefore + servers.length, 'nothing else migrated or evacuated');
    return `${name} drained by live migration in ${(emptyMs / 1000).toFixed(1)} s: ${servers.length} servers moved while ACTIVE, none evacuated, left disabled, operators mailed; back in service after ${UNDRAIN_ANNOTATION}`;
  },
};

export const INCIDENTS: Incident[] = [deaDies, crashLoop, rollout, storageLost, bmcDead, storm, hardwareDegraded];

export function selectIncidents(spec: string): Incident[] {
  if (spec === 'all') return INCIDENTS;
  if (spec === 'none' || spec === '') return [];
  const out: Incident[] = [];
  for (const name of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = INCIDENTS.find((x) => x.name === name);
    if (!i) throw new Error(`unknown incident ${JSON.stringify(name)}; known: all, ${INCIDENTS.map((x) => x.name).join(', ')}`);
    out.push(i);
  }
  return out;
}
