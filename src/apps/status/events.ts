// Events of the app half: one per start/stop outcome on the app's DesiredApp (or the policy when
// the app has none), and the guards on the AppHealthPolicy (stop hold raised, a release annotation
// that names another hold, a hold released; the shrink guard). Each hold is reported once.
import { RELEASE_STOP_HOLD_ANNOTATION, type AppHealthPolicy, type DesiredApp } from '../../api/index.js';
import type { Logger } from 'pino';
import type { EventRecorder } from '../../kube/contract.js';
import type { FetchOutcome, ShrinkHold } from '../fetcher/index.js';
import type { StopBudgetState } from '../guards/index.js';
import type { SendRecord } from '../sender/index.js';

export interface AppEventsDeps {
  events: EventRecorder;
  policy: () => AppHealthPolicy | undefined;
  objectFor: (app: string) => DesiredApp | undefined;
  releaseAnnotation: () => string | undefined;
}

/** `START`/`STOP` + the reason in CamelCase: StartMissing, StopDuplicate, StopEvacuationComplete. */
export const actionReason = (r: SendRecord) => {
  const verb = r.message.kind === 'start' ? 'Start' : 'Stop';
  return `${verb}${r.message.reason.split('_').map((w) => w[0] + w.slice(1).toLowerCase()).join('')}`.slice(0, 128);
};

/** One structured line per start/stop outcome sent to the Cloud Controller: info, error when it failed. */
export function logAction(logger: Logger, r: SendRecord): void {
  const m = r.message;
  logger[r.outcome === 'failed' ? 'error' : 'info'](
    { action: m.kind, app: m.appGuid, version: m.version, index: m.index, reason: m.reason, outcome: r.outcome, messageId: m.messageId, ...(r.detail ? { detail: r.detail } : {}) },
    `${m.kind} ${m.appGuid}[${m.index}] ${r.outcome}`,
  );
}

export class AppEvents {
  private holdReported: string | undefined;
  private releaseReported: string | undefined;
  private staleReported: string | undefined;

  constructor(private readonly deps: AppEventsDeps) {}

  /** A start or stop was sent, dropped or failed (held ones are reported with the hold). */
  action(r: SendRecord): void {
    if (r.outcome === 'held') return;
    const regarding = this.deps.objectFor(r.message.appGuid) ?? this.deps.policy();
    if (!regarding) return;
    const verb = r.message.kind === 'start' ? 'Start' : 'Stop';
    const type = r.outcome === 'failed' ? 'Warning' : 'Normal';
    this.deps.events.record(regarding, type, actionReason(r), verb, `${r.outcome}: ${r.message.kind} ${r.message.appGuid} index ${r.message.index} (${r.message.reason})${r.detail ? `: ${r.detail}` : ''}`.slice(0, 1000));
  }

  /** After each sender run: a new stop hold, a stale release annotation, a release. */
  holds(budget: StopBudgetState, shrinkHold: ShrinkHold | undefined): void {
    const p = this.deps.policy();
    const hold = budget.hold;
    if (!p) return;
    const { events } = this.deps;
    if (hold && hold.id !== this.holdReported) {
      this.holdReported = hold.id;
      events.record(p, 'Warning', 'StopHold', 'HoldStops', `${hold.reason}. Every stop is held, starts go on; release with: kubectl annotate ahp ${p.metadata.name} ${RELEASE_STOP_HOLD_ANNOTATION}=${hold.id} --overwrite`.slice(0, 1000));
    }
    const ann = this.deps.releaseAnnotation();
    if (hold && ann && ann !== hold.id && ann !== shrinkHold?.id && `${hold.id}/${ann}` !== this.staleReported) {
      this.staleReported = `${hold.id}/${ann}`;
      events.record(p, 'Warning', 'StaleStopHoldRelease', 'HoldStops', `The annotation ${RELEASE_STOP_HOLD_ANNOTATION}=${ann} does not name the current hold ${hold.id}: stops stay held.`);
    }
    if (shrinkHold?.kind === 'baseline' && shrinkHold.id !== this.holdReported) {
      this.holdReported = shrinkHold.id;
      events.record(p, 'Warning', 'ShrinkGuard', 'HoldStops', `${shrinkHold.reason}. Every stop is held, starts go on; release with: kubectl annotate ahp ${p.metadata.name} ${RELEASE_STOP_HOLD_ANNOTATION}=${shrinkHold.id} --overwrite`.slice(0, 1000));
    }
    const rel = budget.releasedHoldId;
    if (rel && rel !== this.releaseReported) {
      this.releaseReported = rel;
      events.record(p, 'Normal', 'StopHoldReleased', 'ReleaseStops', `Stop hold ${rel} released by annotation: the held stops are sent.`);
    }
  }

  /** The shrink guard refused a fetch (the recorder deduplicates repeats). */
  shrinkGuard(outcome: FetchOutcome, hold: ShrinkHold | undefined): void {
    const p = this.deps.policy();
    if (outcome.guarded && p) this.deps.events.record(p, 'Warning', 'ShrinkGuard', 'KeepLastGoodDesiredState', `${outcome.guarded.reason} (id ${hold?.id})`);
  }
}
