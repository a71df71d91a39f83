// Figures the benchmarks read from outside hm9k: the apiserver's own request counters
// (apiserver_request_total by verb and resource, from its /metrics) and a process's CPU and RSS
// (from /proc), never from hm9k's own counters.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { KubeConfig } from '../src/kube/client.js';

export type RequestCounts = Map<string, number>; // "VERB resource" -> count

export async function apiserverRequests(kc: KubeConfig): Promise<RequestCounts> {
  const server = new URL(kc.getCurrentCluster()!.server);
  const opts: https.RequestOptions = { hostname: server.hostname, port: server.port, path: '/metrics', method: 'GET' };
  await kc.applyToHTTPSOptions(opts);
  const text = await new Promise<string>((resolve, reject) => {
    const req = https.request(opts, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.end();
  });
  const out: RequestCounts = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!labels.resource) continue; // non-resource (/metrics, /healthz): the bench's own probes
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** Requests between two snapshots, scaled to per minute, nonzero only. */
export function perMinute(a: RequestCounts, b: RequestCounts, ms: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of b) {
    const d = v - (a.get(k) ?? 0);
    if (d > 0) out[k] = Math.round((d / ms) * 60_000 * 10) / 10;
  }
  return out;
}

export const isWrite = (key: string) => /^(POST|PUT|PATCH|DELETE|CREATE|UPDATE|APPLY) /.test(key);

const TICKS = 100; // USER_HZ on Linux
/** CPU seconds (user + system) used so far by a process. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS;
}

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Requests in an audit log (Metadata level) from byte `from` on, by who made them: "verb resource" -> count. */
export interface AuditCounts {
  /** Every identity but the apiserver's own (in the benches, hm9k: the bench makes no resource request meanwhile). */
  clients: RequestCounts;
  /** The apiserver's own loopback client (system:apiserver): its controllers, not hm9k. */
  apiserver: RequestCounts;
  /** The log's size, where the next count starts. */
  end: number;
}

interface AuditEvent {
  stage?: string;
  verb?: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string };
}

export function auditRequests(file: string, from = 0): AuditCounts {
  const all = readFileSync(file);
  const out: AuditCounts = { clients: new Map(), apiserver: new Map(), end: all.length };
  for (const line of all.subarray(from).toString('utf8').split('\n')) {
    if (!line) continue;
    const e = JSON.parse(line) as AuditEvent;
    if (!e.objectRef?.resource || !e.verb) continue;
    // A watch counts when it opens (it completes minutes later, or never in the window); anything else when answered.
    if (e.stage !== (e.verb === 'watch' ? 'ResponseStarted' : 'ResponseComplete')) continue;
    const counts = e.user?.username === 'system:apiserver' ? out.apiserver : out.clients;
    const key = `${e.verb.toUpperCase()} ${e.objectRef.resource}${e.objectRef.subresource ? `/${e.objectRef.subresource}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return out;
}

/** Counts over `ms`, per minute, nonzero only. */
export function countsPerMinute(c: RequestCounts, ms: number): Record<string, number> {
  return perMinute(new Map(), c, ms);
}
