// Consul HTTP API simulator: the endpoints hm9k uses, with blocking-query semantics
// (X-Consul-Index, ?index=&wait=), ACLs as Consul enforces them with default_policy deny, and the
// failure modes hm9k must read as "unknown": unreachable (listener closed), leaderless (500 "No
// cluster leader"), node absent from the catalog.
//
// ACLs (Consul 1.x): the token comes from X-Consul-Token, `Authorization: Bearer` or `?token=`. A
// secret Consul does not know is 403 "ACL not found". No token is the anonymous token (no rights
// here). Catalog and health reads are not refused for lack of node:read: Consul filters the
// results (the nodes the token may not read are left out) and sets
// X-Consul-Results-Filtered-By-ACLs: true. Writes without the right are 403 "Permission denied".
// /v1/status/leader needs no token.
//
// Why a simulator and not real Consul: Consul 1.16.x cannot be built from published Go modules on
// this machine. Its go.mod relies on replace directives to in-repo submodules; the published versions
// it names do not build it (github.com/hashicorp/consul/envoyextensions v0.4.1 is unknown to the
// checksum database, and troubleshoot v0.3.1 lacks the troubleshoot/ports package 1.16.6 imports).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type CheckStatus = 'passing' | 'warning' | 'critical';

interface SimCheck {
  CheckID: string;
  Name: string;
  Status: CheckStatus;
  Output: string;
  ServiceID: string;
  ServiceName: string;
  CreateIndex: number;
  ModifyIndex: number;
}

interface SimNode {
  name: string;
  address: string;
  checks: Map<string, SimCheck>;
  createIndex: number;
  modifyIndex: number;
}

/** What one ACL token may do (the subset the endpoints here check). */
export interface ConsulSimToken {
  /** node:read on every node (true), on names with this prefix (string), or none (false). */
  nodeRead: boolean | string;
}

export interface ConsulSimOptions {
  datacenter?: string;
  /** Shortcut: ACLs on, one token (this secret) with node:read on every node. */
  aclToken?: string;
  /** ACLs on (default policy deny): the tokens Consul knows, by secret. */
  aclTokens?: Record<string, ConsulSimToken>;
  /** Upper bound of a blocking wait (Consul caps at 10m). */
  maxWaitMs?: number;
}

function parseWait(v: string | null): number {
  if (!v) return 300_000;
  const m = /^([0-9]+)(ms|s|m)?$/.exec(v);
  if (!m) return 300_000;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

/** A tiny subset of Consul's filter language: `Field == "v"` joined by `or` / `and`. */
export function matchFilter(filter: string | null, check: Record<string, unknown>): boolean {
  if (!filter) return true;
  const orParts = filter.split(/\s+or\s+/i);
  return orParts.some((part) =>
    part.split(/\s+and\s+/i).every((term) => {
      const m = /^\s*\(?\s*([A-Za-z]+)\s*(==|!=)\s*"([^"]*)"\s*\)?\s*$/.exec(term);
      if (!m) throw new Error(`Failed to create boolean expression evaluator: invalid filter ${JSON.stringify(term)}`);
      const v = String(check[m[1]!] ?? '');
      return m[2] === '==' ? v === m[3] : v !== m[3];
    }));
}

export class ConsulSim {
  private nodes = new Map<string, SimNode>();
  private index = 1;
  private waiters = new Set<() => void>();
  private server: Server | undefined;
  leader = true;
  port = 0;
  /** Count of requests per path (benchmarks: requests per minute in steady state). */
  readonly requestCount = new Map<string, number>();

  /** Requests refused or filtered by ACLs (403 or filtered results). */
  aclDenied = 0;

  constructor(private readonly o: ConsulSimOptions = {}) {}

  private get acl(): Record<string, ConsulSimToken> | undefined {
    if (!this.o.aclToken && !this.o.aclTokens) return undefined;
    return { ...(this.o.aclToken ? { [this.o.aclToken]: { nodeRead: true } } : {}), ...(this.o.aclTokens ?? {}) };
  }

  private tokenOf(req: IncomingMessage, url: URL): string | undefined {
    const h = req.headers['x-consul-token'];
    if (typeof h === 'string' && h) return h;
    const auth = req.headers.authorization;
    if (auth && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '');
    return url.searchParams.get('token') || undefined;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  private bump() {
    this.index++;
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  /** Registers a node with its serfHealth check passing. */
  addNode(name: string, address = '127.0.0.1'): void {
    this.index++;
    const n: SimNode = { name, address, checks: new Map(), createIndex: this.index, modifyIndex: this.index };
    n.checks.set('serfHealth', { CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing', Output: 'Agent alive and reachable', ServiceID: '', ServiceName: '', CreateIndex: this.index, ModifyIndex: this.index });
    this.nodes.set(name, n);
    this.bump();
  }

  /** A member that left gracefully is removed from the catalog. */
  removeNode(name: string): void {
    if (this.nodes.delete(name)) this.bump();
  }

  setCheck(node: string, checkId: string, status: CheckStatus, serviceName = ''): void {
    const n = this.nodes.get(node);
    if (!n) throw new Error(`no node ${node}`);
    const old = n.checks.get(checkId);
    if (old?.Status === status) return;
    this.index++;
    n.checks.set(checkId, {
      CheckID: checkId, Name: checkId === 'serfHealth' ? 'Serf Health Status' : `Service '${serviceName}' check`, Status: status,
      Output: checkId === 'serfHealth' ? (status === 'passing' ? 'Agent alive and reachable' : 'Agent not live or unreachable') : status,
      ServiceID: serviceName, ServiceName: serviceName, CreateIndex: old?.CreateIndex ?? this.index, ModifyIndex: this.index,
    });
    n.modifyIndex = this.index;
    this.bump();
  }

  /** The node's agent is alive (serfHealth passing) or failed (critical). */
  setAlive(node: string, alive: boolean): void {
    this.setCheck(node, 'serfHealth', alive ? 'passing' : 'critical');
  }

  setLeader(leader: boolean): void {
    this.leader = leader;
    this.bump();
  }

  async start(port = this.port): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Closes the listener and every connection: the cluster is unreachable until start(). */
  async stop(): Promise<void> {
    for (const w of this.waiters) w();
    this.waiters.clear();
    if (!this.server) return;
    const s = this.server;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private send(res: ServerResponse, code: number, body: unknown, extra: Record<string, string> = {}) {
    if (res.destroyed) return;
    const text = typeof body === 'string' && code >= 400 ? body : JSON.stringify(body);
    res.writeHead(code, {
      'content-type': code >= 400 ? 'text/plain; charset=utf-8' : 'application/json',
      'x-consul-index': String(this.index),
      'x-consul-knownleader': String(this.leader),
      'x-consul-lastcontact': '0',
      ...extra,
    });
    res.end(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', this.url);
    const path = url.pathname;
    this.requestCount.set(path, (this.requestCount.get(path) ?? 0) + 1);
    if (path === '/v1/status/leader' && req.method === 'GET') return this.send(res, 200, this.leader ? '127.0.0.1:8300' : '');
    const acl = this.acl;
    // node:read on a node name: everything without ACLs; with ACLs, what the token grants.
    let canRead: (node: string) => boolean = () => true;
    if (acl) {
      const secret = this.tokenOf(req, url);
      if (secret !== undefined && !(secret in acl)) {
        this.aclDenied++;
        return this.send(res, 403, 'ACL not found');
      }
      const right = secret === undefined ? false : acl[secret]!.nodeRead;
      canRead = (node) => right === true || (typeof right === 'string' && node.startsWith(right));
      if (req.method !== 'GET') {
        this.aclDenied++;
        return this.send(res, 403, 'Permission denied');
      }
    }
    if (req.method !== 'GET') return this.send(res, 405, 'method not allowed');
    const known = path === '/v1/catalog/nodes' || /^\/v1\/health\/state\/(any|passing|warning|critical)$/.test(path) || /^\/v1\/health\/node\/[^/]+$/.test(path);
    if (!known) return this.send(res, 404, 'Not found');
    // Blocking query.
    const want = Number(url.searchParams.get('index') ?? '0');
    if (want > 0 && want >= this.index && this.leader) {
      const wait = Math.min(parseWait(url.searchParams.get('wait')), this.o.maxWaitMs ?? 600_000);
      // Consul adds up to wait/16 of jitter; keep it deterministic here.
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { this.waiters.delete(done); resolve(); }, wait);
        const done = () => { clearTimeout(t); resolve(); };
        this.waiters.add(done);
        req.once('close', () => { clearTimeout(t); this.waiters.delete(done); resolve(); });
      });
    }
    if (res.destroyed) return;
    if (!this.leader && !url.searchParams.has('stale')) return this.send(res, 500, 'No cluster leader');
    const dc = this.o.datacenter ?? 'dc1';
    const readable = [...this.nodes.values()].filter((n) => canRead(n.name));
    const filtered = readable.length < this.nodes.size;
    if (filtered) this.aclDenied++;
    const send = (body: unknown) => this.send(res, 200, body, filtered ? { 'x-consul-results-filtered-by-acls': 'true' } : {});
    if (path === '/v1/catalog/nodes') {
      return send(readable.sort((a, b) => a.name.localeCompare(b.name)).map((n) => ({
        ID: '', Node: n.name, Address: n.address, Datacenter: dc, TaggedAddresses: { lan: n.address, wan: n.address }, Meta: {}, CreateIndex: n.createIndex, ModifyIndex: n.modifyIndex,
      })));
    }
    const all = readable.flatMap((n) => [...n.checks.values()].map((c) => ({ Node: n.name, ...c, Type: c.CheckID === 'serfHealth' ? '' : 'ttl', Definition: {}, Namespace: 'default' })));
    const m = /^\/v1\/health\/node\/([^/]+)$/.exec(path);
    if (m) return send(all.filter((c) => c.Node === decodeURIComponent(m[1]!)));
    const state = path.split('/').pop();
    let out;
    try {
      out = all.filter((c) => (state === 'any' || c.Status === state) && matchFilter(url.searchParams.get('filter'), c));
    } catch (err) {
      return this.send(res, 400, (err as Error).message);
    }
    return send(out);
  }
}
