// HM9000's wire formats, in one place: what DEAs publish (dea.heartbeat, droplet.exited), what the
// health manager sends Cloud Controller (start/stop bodies, over HTTP or NATS) and where. The app
// half's listener and sender, the CC client and the CC/DEA simulators all import them from here
// (none reaches into another). Validation of what DEAs send: ./parse.ts. Field names are HM9000's / dea_ng's (shared/reference/hm9000.md).

/** NATS subjects. */
export const HEARTBEAT_SUBJECT = 'dea.heartbeat';
export const EXITED_SUBJECT = 'droplet.exited';
/** Classic NATS transport of start/stop to CC (HM9000's `sender` with `-nats`). */
export const START_SUBJECT = 'hm9000.start';
export const STOP_SUBJECT = 'hm9000.stop';

/** CC's internal endpoints for start/stop over HTTP (basic auth, 200 "{}"). */
export const ccStartPath = (droplet: string) => `/internal/dea/hm9000/start/${encodeURIComponent(droplet)}`;
export const ccStopPath = (droplet: string) => `/internal/dea/hm9000/stop/${encodeURIComponent(droplet)}`;
/** Matches both CC endpoints: [, 'start' | 'stop', droplet (still encoded)]. */
export const CC_SEND_PATH_RE = /^\/internal\/dea\/hm9000\/(start|stop)\/([^/]+)$/;

export const INSTANCE_STATES = ['STARTING', 'RUNNING', 'CRASHED', 'EVACUATING'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

/** One droplet entry of a DEA heartbeat (NATS `dea.heartbeat`). */
export interface DropletHeartbeat {
  cc_partition?: string;
  droplet: string;
  version: string;
  instance: string;
  index: number;
  state: InstanceState;
  /** seconds (float), as DEAs send it */
  state_timestamp: number;
}

export interface DeaHeartbeat {
  dea: string;
  droplets: DropletHeartbeat[];
}

export const EXIT_REASONS = ['STOPPED', 'CRASHED', 'DEA_SHUTDOWN', 'DEA_EVACUATION'] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

/** NATS `droplet.exited`. */
export interface DropletExited {
  /** The Cloud Controller partition of the DEA (dea_ng; absent from some DEAs). */
  cc_partition?: string;
  droplet: string;
  version: string;
  instance: string;
  index: number;
  reason: ExitReason;
  exit_status?: number;
  exit_description?: string;
  crash_timestamp?: number;
}

/** Start message sent to CC (HTTP body or NATS hm9000.start). */
export interface StartMessage {
  message_id: string;
  droplet: string;
  version: string;
  instance_index: number;
}

/** Stop message sent to CC (HTTP body or NATS hm9000.stop). */
export interface StopMessage {
  message_id: string;
  droplet: string;
  version: string;
  instance_guid: string;
  instance_index: number;
  is_duplicate: boolean;
}

export const startMessage = (m: { messageId: string; appGuid: string; version: string; index: number }): StartMessage => ({
  message_id: m.messageId,
  droplet: m.appGuid,
  version: m.version,
  instance_index: m.index,
});

export const stopMessage = (m: { messageId: string; appGuid: string; version: string; index: number; instanceGuid: string }, isDuplicate: boolean): StopMessage => ({
  message_id: m.messageId,
  droplet: m.appGuid,
  version: m.version,
  instance_guid: m.instanceGuid,
  instance_index: m.index,
  is_duplicate: isDuplicate,
});
