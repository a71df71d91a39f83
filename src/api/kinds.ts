// The four custom resources: names, scopes, printer columns and their CRDs, generated from the
// TypeBox schemas in this folder (the single source of truth; crds/*.yaml are generated from here).
import type { TSchema } from '@sinclair/typebox';
import { Type } from './schema.js';
import { AppHealthPolicySpec, AppHealthPolicyStatus, DesiredAppSpec, DesiredAppStatus } from './apps.js';
import { ComputeNodeSpec, ComputeNodeStatus, FencePolicySpec, FencePolicyStatus } from './nodes.js';

export const GROUP = 'hm9k.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const CATEGORY = 'hm9k';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'date' | 'boolean' | 'number';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface KindInfo {
  kind: string;
  plural: string;
  singular: string;
  shortName: string;
  namespaced: boolean;
  description: string;
  spec: TSchema;
  status: TSchema;
  columns: PrinterColumn[];
}

const cond = (type: string) => `.status.conditions[?(@.type=="${type}")].status`;
const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

export const KINDS = {
  AppHealthPolicy: {
    kind: 'AppHealthPolicy', plural: 'apphealthpolicies', singular: 'apphealthpolicy', shortName: 'ahp', namespaced: false,
    description: "Settings of hm9k's app half (HM9000's job) and its one place to look when nothing happens.",
    spec: AppHealthPolicySpec, status: AppHealthPolicyStatus,
    columns: [
      { name: 'Followed', type: 'string', jsonPath: cond('Followed'), description: 'The app half follows this policy (False: another one exists and apps.policyName names none).' },
      { name: 'Actual-Fresh', type: 'string', jsonPath: cond('ActualStateFresh'), description: 'DEA heartbeats are fresh.' },
      { name: 'Desired-Fresh', type: 'string', jsonPath: cond('DesiredStateFresh'), description: 'A complete CC fetch is fresh.' },
      { name: 'Apps', type: 'integer', jsonPath: '.status.counts.desiredApps' },
      { name: 'Running', type: 'integer', jsonPath: '.status.counts.running' },
      { name: 'Missing', type: 'integer', jsonPath: '.status.counts.missing' },
      { name: 'Crashed', type: 'integer', jsonPath: '.status.counts.crashed' },
      { name: 'Hold', type: 'string', jsonPath: '.status.stopHold.id', description: 'Stop hold id, when stops are held.' },
      age,
    ],
  },
  DesiredApp: {
    kind: 'DesiredApp', plural: 'desiredapps', singular: 'desiredapp', shortName: 'da', namespaced: true,
    description: "One Cloud Foundry app's desired state, projected from the Cloud Controller's bulk API (name = app guid).",
    spec: DesiredAppSpec, status: DesiredAppStatus,
    columns: [
      { name: 'Desired', type: 'integer', jsonPath: '.spec.instances' },
      { name: 'Running', type: 'integer', jsonPath: '.status.running' },
      { name: 'Crashed', type: 'integer', jsonPath: '.status.crashed' },
      { name: 'State', type: 'string', jsonPath: '.spec.state' },
      { name: 'Converged', type: 'string', jsonPath: cond('Converged') },
      age,
    ],
  },
  ComputeNode: {
    kind: 'ComputeNode', plural: 'computenodes', singular: 'computenode', shortName: 'cn', namespaced: false,
    description: 'One OpenStack hypervisor watched by hm9k (name = nova-compute host).',
    spec: ComputeNodeSpec, status: ComputeNodeStatus,
    columns: [
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Mgmt', type: 'string', jsonPath: '.status.networks.management.state' },
      { name: 'Storage', type: 'string', jsonPath: '.status.networks.storage.state' },
      { name: 'Tenant', type: 'string', jsonPath: '.status.networks.tenant.state' },
      { name: 'Nova', type: 'string', jsonPath: '.status.nova.apiState' },
      { name: 'Power', type: 'string', jsonPath: '.status.power.state' },
      { name: 'Servers', type: 'integer', jsonPath: '.status.servers' },
      { name: 'Left', type: 'integer', jsonPath: '.status.drain.left', description: 'Drain: servers not yet live-migrated.' },
      { name: 'Migrated', type: 'integer', jsonPath: '.status.drain.migrated', description: 'Drain: servers live-migrated.' },
      { name: 'Failed', type: 'integer', jsonPath: '.status.drain.failed', description: 'Drain: servers that need an operator.' },
      { name: 'Hardware', type: 'string', jsonPath: '.status.hardware.state', priority: 1 },
      { name: 'Waiting-For', type: 'string', jsonPath: '.status.waitingFor', priority: 1 },
      age,
    ],
  },
  FencePolicy: {
    kind: 'FencePolicy', plural: 'fencepolicies', singular: 'fencepolicy', shortName: 'fp', namespaced: false,
    description: 'GitOps-managed rules for the ComputeNodes its selector matches: detection, recovery, fencing, evacuation, safety, notifications.',
    spec: FencePolicySpec, status: FencePolicyStatus,
    columns: [
      { name: 'Matched', type: 'integer', jsonPath: '.status.matchedNodes' },
      { name: 'Healthy', type: 'integer', jsonPath: '.status.healthyNodes' },
      { name: 'Unhealthy', type: 'integer', jsonPath: '.status.unhealthyNodes' },
      { name: 'In-Flight', type: 'integer', jsonPath: '.status.remediationsInFlight' },
      { name: 'Storm', type: 'string', jsonPath: cond('StormActive') },
      { name: 'Ready', type: 'string', jsonPath: cond('Ready') },
      age,
    ],
  },
} as const satisfies Record<string, KindInfo>;

export type KindName = keyof typeof KINDS;

/** Strips TypeBox's symbol keys and returns plain JSON (what the apiserver sees). */
function plain(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema));
}

export function crdFor(info: KindInfo): Record<string, unknown> {
  const root = Type.Object(
    {
      apiVersion: Type.Optional(Type.String({ description: 'APIVersion of this representation of an object.' })),
      kind: Type.Optional(Type.String({ description: 'Kind of this object.' })),
      metadata: Type.Optional(Type.Object({})),
      spec: info.spec,
      status: Type.Optional(info.status),
    },
    { description: info.description },
  );
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${info.plural}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'hm9k' } },
    spec: {
      group: GROUP,
      names: {
        kind: info.kind,
        listKind: `${info.kind}List`,
        plural: info.plural,
        singular: info.singular,
        shortNames: [info.shortName],
        categories: [CATEGORY],
      },
      scope: info.namespaced ? 'Namespaced' : 'Cluster',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: info.columns,
          schema: { openAPIV3Schema: plain(root) },
        },
      ],
    },
  };
}

export const allCrds = (): Record<string, unknown>[] => Object.values(KINDS).map((k) => crdFor(k));
