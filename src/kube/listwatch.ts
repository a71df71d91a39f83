// The two calls a reflector needs, by API path: a paginated LIST (plain HTTP GET with the
// kubeconfig's credentials) and a WATCH on client-node's Watch. Injected into the Informer so
// that its loop can be tested against a fake.
import http from 'node:http';
import https from 'node:https';
import { Watch, type KubeConfig } from './client.js';
import type { KubeObject } from './contract.js';

export interface ListPage<T> {
  items: T[];
  resourceVersion: string;
  continue?: string;
}

export interface ListOptions {
  limit?: number;
  continue?: string;
  labelSelector?: string;
  timeoutMs?: number;
}

export interface WatchOptions {
  resourceVersion: string;
  timeoutSeconds: number;
  allowWatchBookmarks: boolean;
  labelSelector?: string;
}

/** One raw watch event: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR (object = metav1.Status). */
export type RawWatchEvent = { type: string; object: unknown };

export interface WatchHandle {
  abort(): void;
}

export interface ListerWatcher<T extends KubeObject = KubeObject> {
  /** Human-readable identity for logs and metrics (the collection path). */
  readonly path: string;
  list(opts: ListOptions): Promise<ListPage<T>>;
  /**
   * Opens a watch; `onEvent` runs per event; `onDone` runs once when the stream ends (err is
   * undefined/null for a clean close). The returned handle stops the watch (onDone may follow).
   */
  watch(opts: WatchOptions, onEvent: (ev: RawWatchEvent) => void, onDone: (err?: unknown) => void): Promise<WatchHandle>;
}

/** An error with the HTTP status, like client-node's ApiException. */
export class HttpError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly body?: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** GET a JSON document from the API server with the kubeconfig's credentials. */
export async function kubeGetJson(kc: KubeConfig, path: string, timeoutMs = 60_000): Promise<unknown> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  const opts: https.RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  const mod = url.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { ...opts, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const code = res.statusCode ?? 0;
        if (code < 200 || code >= 300) {
          let msg = res.statusMessage ?? `HTTP ${code}`;
          try {
            msg = (JSON.parse(body) as { message?: string }).message ?? msg;
          } catch {
            /* not JSON */
          }
          return reject(new HttpError(code, `GET ${url.pathname}: ${code} ${msg}`, body));
        }
        try {
          resolve(JSON.parse(body));
        } catch (e) {
          reject(new Error(`GET ${url.pathname}: malformed JSON (${(e as Error).message})`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url.pathname}: timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The real ListerWatcher for a collection path, e.g. `/apis/hm9k.io/v1alpha1/computenodes`. */
export function pathListerWatcher<T extends KubeObject>(kc: KubeConfig, path: string, kind?: string, apiVersion?: string): ListerWatcher<T> {
  const watcher = new Watch(kc);
  return {
    path,
    async list(opts) {
      const doc = (await kubeGetJson(
        kc,
        path + query({ limit: opts.limit, continue: opts.continue, labelSelector: opts.labelSelector }),
        opts.timeoutMs,
      )) as { items?: T[]; metadata?: { resourceVersion?: string; continue?: string } };
      if (!doc || !Array.isArray(doc.items) || !doc.metadata?.resourceVersion) {
        throw new Error(`LIST ${path}: malformed list (no items or resourceVersion)`);
      }
      // A list's items carry neither kind nor apiVersion; fill them in as a watch would.
      const items = doc.items.map((o) => (kind && !o.kind ? { ...o, kind, apiVersion } : o));
      return { items, resourceVersion: doc.metadata.resourceVersion, continue: doc.metadata.continue || undefined };
    },
    async watch(opts, onEvent, onDone) {
      const ctrl = await watcher.watch(
        path,
        {
          resourceVersion: opts.resourceVersion,
          allowWatchBookmarks: opts.allowWatchBookmarks,
          timeoutSeconds: opts.timeoutSeconds,
          labelSelector: opts.labelSelector,
        },
        (type, object) => onEvent({ type, object }),
        (err) => onDone(err ?? undefined),
      );
      return { abort: () => ctrl.abort() };
    },
  };
}
