// What the demo prints while it runs: a narrative of timestamped lines (what the world did, what
// hm9k did, as the simulators recorded it and as hm9k's Events tell it) and a compact live table of
// the nodes and apps, printed when it changes.
import { CustomObjectsApi, EventsV1Api, type KubeConfig } from '../kube/client.js';
import { GROUP, VERSION, type ComputeNode, type DesiredApp, type FencePolicy } from '../api/index.js';
import type { ComputeService } from '../devenv/compute-api.js';
import { NAMESPACE, type DemoWorld } from './world.js';

export type Tag = 'demo' | 'world' | 'hm9k' | 'event' | 'check' | 'result' | 'mail';

export class Narrator {
  readonly t0 = Date.now();
  constructor(private readonly write: (s: string) => void) {}

  say(tag: Tag, text: string): void {
    const ts = new Date().toISOString().slice(11, 23);
    this.write(`${ts}  ${tag.padEnd(6)} ${text}\n`);
  }

  /** Lines printed as they are, each indented (tables, mails, commands). */
  block(lines: string[], indent = '  '): void {
    this.write(`${lines.map((l) => `${indent}${l}`).join('\n')}\n`);
  }

  raw(s: string): void {
    this.write(s);
  }
}

export interface SeenEvent {
  namespace: string;
  kind: string;
  name: string;
  type: string;
  reason: string;
  note: string;
  at: number;
}

type StartStopBody = { droplet?: string; version?: string; instance_index?: number; instance_guid?: string; is_duplicate?: boolean };

/** Polls the world's records and the API server; narrates what changed; keeps the Events for the checks. */
export class Observer {
  readonly events: SeenEvent[] = [];
  nodes: ComputeNode[] = [];
  apps: DesiredApp[] = [];
  policies: FencePolicy[] = [];
  private seenEvents = new Set<string>();
  private cursor = { cc: 0, fleet: 0, mails: 0, recover: 0, migrations: 0 };
  private power = new Map<string, string>();
  private migrationState = new Map<string, string>();
  private service = new Map<string, string>();
  private lastTable = '';
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private custom: CustomObjectsApi;
  private eventsApi: EventsV1Api;
  /** While false, table changes are tracked but not printed. */
  tableEnabled = false;
  /** Shows every mail's text as it arrives (the checks print the ones that matter anyway). */
  onMail: ((subject: string, to: string[], raw: string) => void) | undefined;

  constructor(private readonly world: DemoWorld, kc: KubeConfig, private readonly n: Narrator) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.eventsApi = kc.makeApiClient(EventsV1Api);
  }

  start(): void {
    // Skip what happened before the narration began (the initial placement).
    this.cursor = { cc: this.world.cc.requests.length, fleet: this.world.fleet.log.length, mails: this.world.compute.smtp.mails.length, recover: this.world.compute.recoverCalls.length, migrations: 0 };
    void this.world.nova.services().then((list) => { for (const s of list) if (!this.service.has(s.host)) this.service.set(s.host, serviceText(s)); }).catch(() => undefined);
    const fast = async () => {
      if (this.stopped) return;
      await this.flush();
      if (!this.stopped) this.timers.push(setTimeout(() => void fast(), 200));
    };
    const slow = async () => {
      if (this.stopped) return;
      try {
        await this.pollKube();
      } catch {
        /* the apiserver is going away or slow: next round */
      }
      if (!this.stopped) this.timers.push(setTimeout(() => void slow(), 1000));
    };
    void fast();
    void slow();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
  }

  private worldChain: Promise<void> = Promise.resolve();
  private novaPolledAt = 0;

  /** Narrates whatever the world recorded up to now (the checks call it first, so the story reads in order). */
  flush(): Promise<void> {
    this.worldChain = this.worldChain.then(() => this.pollWorld()).catch(() => undefined);
    return this.worldChain;
  }

  private async pollWorld(): Promise<void> {
    const { cc, fleet, compute, nova } = this.world;
    for (; this.cursor.cc < cc.requests.length; this.cursor.cc++) {
      const r = cc.requests[this.cursor.cc]!;
      if ((r.endpoint !== 'start' && r.endpoint !== 'stop') || r.status === 0) {
        if (r.status === 0) break; // still being handled
        continue;
      }
      const b = (r.body ?? {}) as StartStopBody;
      const what = r.endpoint === 'start' ? `start ${b.droplet}[${b.instance_index}] ${b.version}` : `stop ${b.droplet}[${b.instance_index}] ${b.version}${b.is_duplicate ? ' (duplicate)' : ''}`;
      this.n.say('hm9k', `-> Cloud Controller: ${what}${r.status !== 200 ? ` -> HTTP ${r.status}` : r.executed ? '' : ' (CC declined: no longer valid)'}`);
    }
    for (; this.cursor.fleet < fleet.log.length; this.cursor.fleet++) {
      const e = fleet.log[this.cursor.fleet]!;
      if (e.op === 'start') this.n.say('world', `${e.dea} starts ${e.appGuid}[${e.index}]`);
      else if (e.op === 'stop') this.n.say('world', `${e.dea} stops ${e.appGuid}[${e.index}]`);
      else if (e.op === 'crash') this.n.say('world', `${e.appGuid}[${e.index}] CRASHED on ${e.dea}`);
    }
    for (const node of compute.nodes) {
      const p = await node.bmc.power();
      const prev = this.power.get(node.name);
      if (prev !== undefined && prev !== p) this.n.say('world', `BMC of ${node.name}: chassis power ${prev} -> ${p}`);
      this.power.set(node.name, p);
    }
    for (; this.cursor.recover < compute.recoverCalls.length; this.cursor.recover++) {
      const [host, what] = compute.recoverCalls[this.cursor.recover]!.split(':');
      this.n.say('hm9k', `-> ssh ${host}: recovery command "recover.sh ${what}"`);
    }
    // Nova through the compute API (real Nova: its REST API, so at most once a second).
    if (Date.now() - this.novaPolledAt >= (nova.real ? 1000 : 0)) {
      this.novaPolledAt = Date.now();
      const [migrations, servers, services] = await Promise.all([nova.migrations(), nova.servers(), nova.services()]);
      const byId = new Map(servers.map((x) => [x.id, x]));
      for (const m of migrations) {
        const prev = this.migrationState.get(m.id);
        if (prev === m.status) continue;
        this.migrationState.set(m.id, m.status);
        const server = byId.get(m.serverId);
        const name = server ? `${server.name} (${m.serverId.slice(0, 8)})` : m.serverId.slice(0, 8);
        const live = m.type === 'live-migration';
        if (prev === undefined) this.n.say('hm9k', `-> Nova: ${live ? 'live-migrate' : 'evacuate'} ${name} from ${m.source}`);
        if (m.status === 'done' || m.status === 'completed' || m.status === 'failed' || m.status === 'error') {
          if (prev !== 'done' || m.status === 'failed') this.n.say('world', `Nova: ${live ? 'live migration' : 'evacuation'} of ${name} ${m.status}${m.dest ? ` (now on ${m.dest})` : ''}`);
        }
      }
      for (const s of services) {
        const t = serviceText(s);
        if (this.service.get(s.host) !== t) {
          this.n.say('world', `Nova: nova-compute on ${s.host} is now ${t}`);
          this.service.set(s.host, t);
        }
      }
    }
    for (; this.cursor.mails < compute.smtp.mails.length; this.cursor.mails++) {
      const m = compute.smtp.mails[this.cursor.mails]!;
      this.n.say('mail', `to ${m.to.join(', ')}: "${m.subject}"`);
      this.onMail?.(m.subject, m.to, m.raw);
    }
  }

  private async pollKube(): Promise<void> {
    const list = async <T>(plural: string, namespace?: string): Promise<T[]> =>
      ((namespace
        ? await this.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural })
        : await this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural })) as { items: T[] }).items;
    const [nodes, apps, policies, events] = await Promise.all([
      list<ComputeNode>('computenodes'),
      list<DesiredApp>('desiredapps', NAMESPACE),
      list<FencePolicy>('fencepolicies'),
      this.eventsApi.listEventForAllNamespaces({}),
    ]);
    this.nodes = nodes.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name, undefined, { numeric: true }));
    this.apps = apps.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    this.policies = policies;
    const fresh = events.items
      .filter((e) => e.metadata?.uid && !this.seenEvents.has(`${e.metadata.uid}/${e.series?.count ?? 0}`))
      .sort((a, b) => eventTime(a) - eventTime(b));
    for (const e of fresh) {
      this.seenEvents.add(`${e.metadata!.uid}/${e.series?.count ?? 0}`);
      const ev: SeenEvent = {
        namespace: e.metadata?.namespace ?? '',
        kind: e.regarding?.kind ?? '',
        name: e.regarding?.name ?? '',
        type: e.type ?? '',
        reason: e.reason ?? '',
        note: e.note ?? '',
        at: eventTime(e),
      };
      this.events.push(ev);
      // Starts and stops are already narrated from the Cloud Controller's side.
      if (ev.kind === 'DesiredApp' && /^(Start|Stop)/.test(ev.reason) && ev.type === 'Normal') continue;
      this.n.say('event', `${ev.type === 'Warning' ? 'Warning ' : ''}${ev.kind}/${ev.name} ${ev.reason}: ${ev.note.split('\n')[0]!.slice(0, 200)}`);
    }
    const table = renderTable(this.nodes, this.apps, this.policies);
    if (table !== this.lastTable && this.tableEnabled) this.printTable(table);
  }

  /** Prints the table now (even if unchanged). */
  printTable(table = renderTable(this.nodes, this.apps, this.policies)): void {
    this.lastTable = table;
    const ts = new Date().toISOString().slice(11, 19);
    this.n.block([`.- ${ts} ${'-'.repeat(84)}`, ...table.split('\n').map((l) => `| ${l}`), `'${'-'.repeat(96)}`], '    ');
  }

  eventsFor(kind: string, name: string, since = 0): SeenEvent[] {
    return this.events.filter((e) => e.kind === kind && e.name === name && e.at >= since - 2000);
  }
}

function serviceText(s: ComputeService): string {
  return `${s.status}${s.forcedDown ? ', forced down' : ''}${s.disabledReason ? ` ("${s.disabledReason}")` : ''}`;
}

function eventTime(e: { eventTime?: unknown; metadata?: { creationTimestamp?: unknown } }): number {
  const t = e.eventTime ?? e.metadata?.creationTimestamp;
  const ms = t instanceof Date ? t.getTime() : typeof t === 'string' ? Date.parse(t) : NaN;
  return Number.isFinite(ms) ? ms : Date.now();
}

const pad = (s: string | number | undefined, n: number) => String(s ?? '-').padEnd(n);
const net = (v: string | undefined) => (v === 'up' ? 'up' : v === 'down' ? 'DOWN' : v === 'unknown' ? '??' : '-');

/** The live table: nodes on the left, apps on the right. */
export function renderTable(nodes: ComputeNode[], apps: DesiredApp[], policies: FencePolicy[]): string {
  const left = [`${pad('NODE', 6)}${pad('PHASE', 12)}${pad('MGMT', 5)}${pad('STOR', 5)}${pad('TEN', 5)}${pad('POWER', 8)}${pad('SERVERS', 8)}`];
  for (const n of nodes) {
    const s = n.status ?? {};
    left.push(`${pad(n.metadata.name, 6)}${pad(s.phase ?? '', 12)}${pad(net(s.networks?.management?.state), 5)}${pad(net(s.networks?.storage?.state), 5)}${pad(net(s.networks?.tenant?.state), 5)}${pad(s.power?.state ?? '-', 8)}${pad(s.servers, 8)}`);
  }
  const right = [`${pad('APP', 9)}${pad('DESIRED', 8)}${pad('RUNNING', 8)}${pad('CRASHED', 8)}${pad('VERSION', 8)}`];
  for (const a of apps) {
    const s = a.status ?? {};
    const flapping = s.conditions?.find((c) => c.type === 'Flapping')?.status === 'True';
    right.push(`${pad(a.metadata.name, 9)}${pad(a.spec.state === 'STARTED' ? a.spec.instances : 0, 8)}${pad((s.running ?? 0) + (s.starting ?? 0), 8)}${pad(s.crashed ?? 0, 8)}${pad(a.spec.version.replace(`${a.spec.appGuid}-`, ''), 8)}${flapping ? 'FLAPPING' : ''}`);
  }
  const storm = policies.filter((p) => p.status?.conditions?.find((c) => c.type === 'StormActive')?.status === 'True').map((p) => `STORM ACTIVE (${p.metadata.name})`);
  const rows: string[] = [];
  for (let i = 0; i < Math.max(left.length, right.length); i++) rows.push(`${(left[i] ?? '').padEnd(51)}  ${right[i] ?? ''}`.trimEnd());
  if (storm.length) rows.push(storm.join(', '));
  return rows.join('\n');
}
