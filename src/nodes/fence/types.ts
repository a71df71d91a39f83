// Inputs and outputs of the pure fence state machine.
import type { ComputeNodeSpec, ComputeNodeStatus, NetworkName, PowerState, UpDownUnknown } from '../../api/index.js';
import type { HardwareSensor } from '../../clients/ipmi-sensors.js';
import type { HardwareDecision } from '../hardware/rules.js';

/** The hardware monitor's latest decision for a node and the sensors of its last readable reading. */
export interface HardwareObservation {
  decision: HardwareDecision;
  sensors: HardwareSensor[];
  /** The SEL cursor the monitor holds (persisted in status.hardware.selCursor). */
  selCursor?: number;
}

/** One network as the Consul observers see one node, merged by the network monitor. */
export interface NetworkObservation {
  /** up: every answering observer says alive; down: at least one says failed/absent-with-leader and none says alive... see monitor. */
  state: UpDownUnknown;
  /** When the current state began (ms). */
  since: number;
  /** Consecutive samples (blocking query results / interval ticks) that saw the network down. */
  consecutiveDown: number;
  observersUp: number;
  observersDown: number;
  observersUnknown: number;
  reason?: string;
}

export interface NovaObservation {
  apiState: UpDownUnknown;
  status?: 'enabled' | 'disabled';
  forcedDown?: boolean;
  disabledReason?: string;
  /** nova-compute as seen on the node (Consul service check or SSH), unknown when not checked. */
  nodeSide: UpDownUnknown;
  /** Evacuation migrations from this host that are not yet completed (accepted, pre-migrating, running, done). */
  evacuationMigrations: number;
  /** Servers on this host. */
  servers?: number;
}

export interface PowerObservation {
  state: PowerState;
  /** When this state was first read (ms); unchanged while the state stays the same. */
  since: number;
  error?: string;
}

export type CorroborationResult = 'failing' | 'works' | 'unreachable' | 'notConfigured';

export interface CorroborationObservation {
  network: NetworkName;
  at: number;
  result: CorroborationResult;
  detail?: string;
}

export interface NodeObservations {
  networks: Partial<Record<NetworkName, NetworkObservation>>;
  nova?: NovaObservation;
  power?: PowerObservation;
  corroboration?: CorroborationObservation;
  /** Servers on the host per Nova (the fleet-wide periodic count, or the evacuation plan). */
  servers?: number;
  /** nova-compute on the node as the SSH command reports it (when no Consul check is configured). */
  nodeSideSsh?: { state: UpDownUnknown; at: number; detail?: string };
  hardware?: HardwareObservation;
}

export interface NodeSnapshot {
  name: string;
  spec: ComputeNodeSpec;
  annotations: Record<string, string>;
  generation?: number;
  status: ComputeNodeStatus;
  obs: NodeObservations;
}

export interface FleetSummary {
  /**
   * Nodes matched by this node's policy; unhealthy counts unknown as unhealthy; inFlight excludes
   * this node; draining (part of inFlight) counts other nodes in a live-migration drain.
   */
  policy: { matched: number; unhealthy: number; inFlight: number; draining?: number };
  global: { total: number; unhealthy: number; inFlight: number; draining?: number };
}

export interface DecideContext {
  now: number;
  /** The Lease holder and its transition count, carried by intent records. */
  lease: { holder: string; transitions: number };
  globalMaxUnhealthy: number | string;
  globalMaxConcurrentRemediations: number;
  /** Why there is no policy (none matches, or two match); set when policy is null. */
  noPolicyReason?: string;
}

export type Severity = 'info' | 'warning' | 'critical';

export type Action =
  | { type: 'notify'; key: string; severity: Severity; subject: string; body: string }
  | { type: 'event'; eventType: 'Normal' | 'Warning'; reason: string; note: string }
  | { type: 'corroborate'; network: NetworkName; command?: string; timeoutMs: number }
  | { type: 'recover'; kind: NetworkName | 'novaCompute'; command: string; attempt: number; timeoutMs: number }
  | { type: 'powerOn'; attempt: number }
  | { type: 'powerOff'; fenceId: string }
  | { type: 'forceDown'; fenceId: string }
  | { type: 'disable'; fenceId: string; reason: string }
  | { type: 'evacuate'; fenceId: string }
  | { type: 'returnToService'; fenceId: string }
  | { type: 'drainDisable'; drainId: string; reason: string }
  | { type: 'drainTick'; drainId: string }
  | { type: 'drainEnable'; drainId: string };

export interface Decision {
  /** The next status: written first (intent), before any action runs. */
  status: ComputeNodeStatus;
  actions: Action[];
  /** The node is being remediated (counts towards maxConcurrentRemediations). */
  inFlight: boolean;
  /** The node counts as unhealthy for storm protection. */
  unhealthy: boolean;
}

/** Step outcomes the shell reports back; applyOutcome folds them into status. */
export type Outcome =
  | { type: 'recover'; ok: boolean; message: string }
  | { type: 'powerOn'; ok: boolean; message: string }
  | { type: 'powerOff'; ok: boolean; confirmed: boolean; message: string }
  | { type: 'forceDown'; ok: boolean; message: string }
  | { type: 'disable'; ok: boolean; message: string }
  | { type: 'evacuationFinished'; ok: boolean; message: string }
  | { type: 'returnToService'; ok: boolean; waiting: boolean; message: string }
  | { type: 'drainDisable'; ok: boolean; message: string }
  | { type: 'drainEnable'; ok: boolean; message: string };
