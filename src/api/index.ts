// Typed objects for the four kinds. Every module imports resource types from here.
import type { Static } from '@sinclair/typebox';
import type { AppHealthPolicySpec, AppHealthPolicyStatus, DesiredAppSpec, DesiredAppStatus } from './apps.js';
import type { ComputeNodeSpec, ComputeNodeStatus, FencePolicySpec, FencePolicyStatus } from './nodes.js';
import type { Condition } from './schema.js';

export * from './apps.js';
export * from './nodes.js';
export * from './kinds.js';
export { parseDuration, formatDuration } from './duration.js';
export type { Condition } from './schema.js';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: unknown[];
}

export interface Resource<Spec, Status> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

export type AppHealthPolicy = Resource<Static<typeof AppHealthPolicySpec>, Static<typeof AppHealthPolicyStatus>>;
export type DesiredApp = Resource<Static<typeof DesiredAppSpec>, Static<typeof DesiredAppStatus>>;
export type ComputeNode = Resource<Static<typeof ComputeNodeSpec>, Static<typeof ComputeNodeStatus>>;
export type FencePolicy = Resource<Static<typeof FencePolicySpec>, Static<typeof FencePolicyStatus>>;
export type AnyResource = AppHealthPolicy | DesiredApp | ComputeNode | FencePolicy;
