// The controller runtime's public surface. src/apps and src/nodes program against these interfaces;
// src/kube implements them (runtime.ts builds one Runtime per process).
import type { KubeConfig } from './client.js';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { KindName, AppHealthPolicy, DesiredApp, ComputeNode, FencePolicy } from '../api/index.js';

export type { Logger };

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; generation?: number; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; finalizers?: string[]; deletionTimestamp?: string; creationTimestamp?: string };
  spec?: unknown;
  status?: unknown;
}

export interface ResourceByKind {
  AppHealthPolicy: AppHealthPolicy;
  DesiredApp: DesiredApp;
  ComputeNode: ComputeNode;
  FencePolicy: FencePolicy;
}

/** Cache key: `namespace/name`, or `name` for cluster-scoped objects (as client-go). */
export type ObjectKey = string;
export const keyOf = (o: { metadata: { name: string; namespace?: string } }): ObjectKey =>
  o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;

export type WatchEventType = 'add' | 'update' | 'delete';

/** A list/watch loop and its in-memory cache. */
export interface Informer<T extends KubeObject> {
  get(key: ObjectKey): T | undefined;
  list(): T[];
  /** Handlers run synchronously; enqueue keys only and reconcile from the cache. */
  on(event: WatchEventType, handler: (obj: T, old?: T) => void): void;
  hasSynced(): boolean;
  waitForSync(signal?: AbortSignal): Promise<void>;
  /** Resolves when the cache holds the object at `resourceVersion` or newer (own write visible). */
  waitForVersion(key: ObjectKey, resourceVersion: string, timeoutMs?: number): Promise<void>;
}

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
}

export interface ReconcileResult {
  /** Reconcile this key again after this many milliseconds. */
  requeueAfterMs?: number;
}

export interface Controller {
  name: string;
  /** Called with one key at a time; never concurrently for the same key. Throw to retry with backoff. */
  reconcile(key: ObjectKey): Promise<ReconcileResult | void>;
}

export interface WorkQueue {
  add(key: ObjectKey): void;
  addAfter(key: ObjectKey, delayMs: number): void;
  addRateLimited(key: ObjectKey): void;
  forget(key: ObjectKey): void;
  len(): number;
}

export interface StatusWriter {
  /**
   * Merge-patches `status` of the object when it differs from the cached status (deep compare);
   * retries conflicts; rate-limited per object and under a global budget. Returns true when written.
   */
  patchStatus<K extends KindName>(kind: K, obj: ResourceByKind[K], status: NonNullable<ResourceByKind[K]['status']>): Promise<boolean>;
  /**
   * Writes status with an update carrying the object's resourceVersion (never a blind merge),
   * for intent records. Throws ConflictError on 409. Returns the stored object.
   */
  updateStatus<K extends KindName>(kind: K, obj: ResourceByKind[K]): Promise<ResourceByKind[K]>;
}

export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** Thrown by reconcile for an error that retrying cannot fix: logged and counted, not retried. */
export class TerminalError extends Error {
  override name = 'TerminalError';
}

export type EventType = 'Normal' | 'Warning';
export interface EventRecorder {
  /** events.k8s.io/v1 Event about `regarding`; deduplicated and rate-limited per object and reason. */
  record(regarding: KubeObject & { kind?: string; apiVersion?: string }, type: EventType, reason: string, action: string, note: string): void;
}

export interface LeaderElection {
  isLeader(): boolean;
  /** The Lease holder identity of this process. */
  identity: string;
  /** The Lease's leaseTransitions when this process acquired it (for intent records). */
  transitions(): number;
  /** Resolves once this process leads (immediately when it does). */
  waitForLeadership(signal?: AbortSignal): Promise<void>;
}

/** What a subsystem (apps, nodes) gets from the process. */
export interface Runtime {
  kubeConfig: KubeConfig;
  /** hm9k's own namespace: Secrets, Leases and Events live here. */
  namespace: string;
  logger(component: string): Logger;
  metrics: Registry;
  informer<K extends KindName>(kind: K, options?: InformerOptions): Informer<ResourceByKind[K]>;
  /** Registers a controller: its own work queue, `workers` reconcile workers, metrics. */
  addController(controller: Controller, options?: { workers?: number }): WorkQueue;
  status: StatusWriter;
  events: EventRecorder;
  leader: LeaderElection;
  /** Readiness contributors: /readyz is ready when every check returns true. */
  addReadinessCheck(name: string, check: () => boolean): void;
  /** Aborted on SIGTERM or when leadership is lost. */
  signal: AbortSignal;
}
