// The app half's data model: DEA heartbeats, CC desired state, crash counts and pending messages,
// using HM9000's field names where they travel on the wire.
import type { AppState, PackageState, CrashBackoff } from '../api/index.js';

// The wire formats (heartbeats, droplet.exited, start/stop bodies) are HM9000's: src/hm9000/messages.ts.
import type { DropletHeartbeat, InstanceState } from '../hm9000/messages.js';
export {
  EXIT_REASONS,
  INSTANCE_STATES,
  type DeaHeartbeat,
  type DropletExited,
  type DropletHeartbeat,
  type ExitReason,
  type InstanceState,
  type StartMessage,
  type StopMessage,
} from '../hm9000/messages.js';

/** An instance as the actual state knows it: the heartbeat plus the DEA that reported it. */
export interface InstanceHeartbeat extends DropletHeartbeat {
  dea_guid: string;
}

/**
 * An app's instances as the store hands them out (a list that never changes), with what the
 * analyzer's settled check would otherwise find by reading every instance, worked out once when
 * the list is made: `runningVersion` is the version all of them run when every one is RUNNING and
 * no two share an index (else undefined), `maxIndex` their highest index. At a million instances
 * the check then reads no instance of a settled app (issue 14 item 8). Lists made elsewhere (tests)
 * lack both, and the check reads the instances.
 */
export interface InstanceView extends ReadonlyArray<InstanceHeartbeat> {
  readonly runningVersion?: string | undefined;
  readonly maxIndex?: number;
}

/** One app as CC's bulk API describes it. */
export interface DesiredAppState {
  appGuid: string;
  version: string;
  instances: number;
  state: AppState;
  packageState: PackageState;
  memory?: number;
  updatedAt?: string;
}

/** Overrides a person may set on a DesiredApp object. */
export interface AppOverrides {
  paused?: boolean;
  crashBackoff?: CrashBackoff;
}

export interface CrashCount {
  appGuid: string;
  version: string;
  index: number;
  count: number;
  /** ms epoch of the first crash counted. */
  createdAt: number;
  /** ms epoch of the last increment; the count expires 2 x maxBackoff after it. */
  updatedAt: number;
}

export type StartReason = 'MISSING' | 'CRASHED' | 'EVACUATION';
export type StopReason = 'EXTRA' | 'DUPLICATE' | 'EVACUATION_COMPLETE';

interface PendingBase {
  messageId: string;
  appGuid: string;
  version: string;
  index: number;
  /** ms epoch when it becomes due. */
  sendOn: number;
  /** ms epoch when the analyzer queued it (absent in messages stored by older versions). */
  queuedAt?: number;
  /** ms epoch when it was sent; 0 = not yet. */
  sentOn: number;
  /**
   * ms epoch when a send was begun: stored (etcd) before the request goes out, so that a leader
   * that takes over knows this message may have reached CC although sentOn says 0 (its predecessor
   * died before the answer or before storing it).
   */
  attemptedAt?: number;
  /** After sending, the message stays (blocking a re-enqueue) until sentOn + keepAlive. */
  keepAliveMs: number;
  skipVerification: boolean;
}

export interface PendingStart extends PendingBase {
  kind: 'start';
  reason: StartReason;
  priority: number;
  /**
   * A CRASHED start: the crash count its enqueue raised, and the record it replaced (none if there
   * was none), so that a start dropped unsent gives its increment back (issue 10 item 2).
   */
  crashCount?: { raised: CrashCount; previous?: CrashCount };
}

export interface PendingStop extends PendingBase {
  kind: 'stop';
  reason: StopReason;
  instanceGuid: string;
}

export type PendingMessage = PendingStart | PendingStop;

export interface PendingActions {
  /** Keyed by startKey(app, version, index). */
  starts: Map<string, PendingStart>;
  /** Keyed by instance guid. */
  stops: Map<string, PendingStop>;
}

export const startKey = (appGuid: string, version: string, index: number) => `${appGuid}/${version}/${index}`;
export const crashKey = startKey;
export const emptyPending = (): PendingActions => ({ starts: new Map(), stops: new Map() });

/** A desired app is acted upon when STARTED and its package is STAGED or PENDING. */
export const isDesired = (d: DesiredAppState | undefined): d is DesiredAppState =>
  !!d && d.state === 'STARTED' && (d.packageState === 'STAGED' || d.packageState === 'PENDING');

export const isStartingOrRunning = (s: InstanceState) => s === 'STARTING' || s === 'RUNNING';
