// The app half's Prometheus metrics: HM9000's gauges and counters (hm9000.md section 6) under
// Prometheus names (-1 when not fresh), freshness ages, sender outcomes, guards, malformed input.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AnalysisCounts } from '../analyzer/index.js';

const GAUGES: Record<keyof AnalysisCounts, [string, string]> = {
  appsWithAllInstancesReporting: ['hm9k_apps_with_all_instances_reporting', 'NumberOfAppsWithAllInstancesReporting'],
  appsWithMissingInstances: ['hm9k_apps_with_missing_instances', 'NumberOfAppsWithMissingInstances'],
  undesiredRunningApps: ['hm9k_undesired_running_apps', 'NumberOfUndesiredRunningApps'],
  runningInstances: ['hm9k_running_instances', 'NumberOfRunningInstances'],
  missingIndices: ['hm9k_missing_indices', 'NumberOfMissingIndices'],
  crashedInstances: ['hm9k_crashed_instances', 'NumberOfCrashedInstances'],
  crashedIndices: ['hm9k_crashed_indices', 'NumberOfCrashedIndices'],
  desiredApps: ['hm9k_desired_apps', 'NumberOfDesiredApps'],
  desiredInstances: ['hm9k_desired_instances', 'NumberOfDesiredInstances'],
  desiredAppsPendingStaging: ['hm9k_desired_apps_pending_staging', 'NumberOfDesiredAppsPendingStaging'],
  skippedApps: ['hm9k_apps_skipped', 'hm9k: apps not analysed because their desired instances exceed guards.maxInstancesPerApp'],
  unconfirmedRemovals: ['hm9k_apps_unconfirmed_removals', 'hm9k: apps the latest bulk fetch omits but the one before desired; their instances are not stopped until a second fetch also omits them'],
};

export const REASON_COUNTERS = {
  MISSING: 'StartMissing',
  CRASHED: 'StartCrashed',
  EVACUATION: 'StartEvacuating',
  EXTRA: 'StopExtra',
  DUPLICATE: 'StopDuplicate',
  EVACUATION_COMPLETE: 'StopEvacuationComplete',
} as const;

export class AppsMetrics {
  readonly gauges: Record<keyof AnalysisCounts, Gauge>;
  readonly actions: Counter<'hm9000' | 'kind' | 'reason'>;
  readonly receivedHeartbeats: Counter;
  readonly savedHeartbeats: Counter;
  readonly malformed: Counter<'subject'>;
  readonly otherPartition: Counter<'subject'>;
  readonly sender: Counter<'outcome'>;
  readonly actualFreshnessAge: Gauge;
  readonly desiredFreshnessAge: Gauge;
  readonly actualFresh: Gauge;
  readonly desiredFresh: Gauge;
  readonly shrinkGuardActive: Gauge;
  readonly stopHoldActive: Gauge;
  readonly fetches: Counter<'outcome'>;
  readonly fastPath: Counter<'reason'>;
  readonly intakeBroken: Counter<'why'>;

  constructor(registry: Registry) {
    const reg = { registers: [registry] };
    const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
    this.gauges = Object.fromEntries(
      Object.entries(GAUGES).map(([k, [name, hm]]) => [k, get(name, () => new Gauge({ name, help: `${hm.startsWith('hm9k: ') ? hm.slice(6) : `HM9000 ${hm}`}; -1 when state is not fresh.`, ...reg }))]),
    ) as Record<keyof AnalysisCounts, Gauge>;
    for (const g of Object.values(this.gauges)) g.set(-1);
    this.actions = get('hm9k_app_actions_total', () => new Counter({ name: 'hm9k_app_actions_total', help: 'Start/stop messages sent to CC, by HM9000 counter name (StartMissing, StartCrashed, StartEvacuating, StopExtra, StopDuplicate, StopEvacuationComplete).', labelNames: ['hm9000', 'kind', 'reason'] as const, ...reg }));
    this.receivedHeartbeats = get('hm9k_received_heartbeats_total', () => new Counter({ name: 'hm9k_received_heartbeats_total', help: 'HM9000 ReceivedHeartbeats.', ...reg }));
    this.savedHeartbeats = get('hm9k_saved_heartbeats_total', () => new Counter({ name: 'hm9k_saved_heartbeats_total', help: 'HM9000 SavedHeartbeats: heartbeats applied after keeping the newest per DEA.', ...reg }));
    this.malformed = get('hm9k_malformed_messages_total', () => new Counter({ name: 'hm9k_malformed_messages_total', help: 'Malformed messages ignored, by subject.', labelNames: ['subject'] as const, ...reg }));
    this.otherPartition = get('hm9k_other_partition_messages_total', () => new Counter({ name: 'hm9k_other_partition_messages_total', help: 'Heartbeats and droplet.exited messages ignored because they carry only other cc_partitions than the policy\'s ccPartition, by subject.', labelNames: ['subject'] as const, ...reg }));
    this.sender = get('hm9k_sender_messages_total', () => new Counter({ name: 'hm9k_sender_messages_total', help: 'Sender outcomes: sent, failed (kept for retry), dropped (verification), held (stop hold), dryRun.', labelNames: ['outcome'] as const, ...reg }));
    this.actualFreshnessAge = get('hm9k_actual_freshness_age_seconds', () => new Gauge({ name: 'hm9k_actual_freshness_age_seconds', help: 'Age of the unbroken heartbeat streak; -1 without one.', ...reg }));
    this.desiredFreshnessAge = get('hm9k_desired_freshness_age_seconds', () => new Gauge({ name: 'hm9k_desired_freshness_age_seconds', help: 'Seconds since the last complete bulk fetch; -1 without one.', ...reg }));
    this.actualFresh = get('hm9k_actual_state_fresh', () => new Gauge({ name: 'hm9k_actual_state_fresh', help: '1 when the actual state is fresh.', ...reg }));
    this.desiredFresh = get('hm9k_desired_state_fresh', () => new Gauge({ name: 'hm9k_desired_state_fresh', help: '1 when the desired state is fresh.', ...reg }));
    this.shrinkGuardActive = get('hm9k_shrink_guard_active', () => new Gauge({ name: 'hm9k_shrink_guard_active', help: '1 while the shrink guard keeps the last good desired state.', ...reg }));
    this.stopHoldActive = get('hm9k_stop_hold_active', () => new Gauge({ name: 'hm9k_stop_hold_active', help: '1 while every stop is held by the stop budget.', ...reg }));
    this.fetches = get('hm9k_bulk_fetches_total', () => new Counter({ name: 'hm9k_bulk_fetches_total', help: 'Bulk API fetches, by outcome (complete, failed, guarded).', labelNames: ['outcome'] as const, ...reg }));
    this.fastPath = get('hm9k_fast_path_total', () => new Counter({ name: 'hm9k_fast_path_total', help: 'droplet.exited messages that triggered an immediate analysis, by reason.', labelNames: ['reason'] as const, ...reg }));
    this.intakeBroken = get('hm9k_heartbeat_intake_broken_total', () => new Counter({ name: 'hm9k_heartbeat_intake_broken_total', help: 'Times heartbeats were lost because NATS dropped the connection (disconnect, including a slow consumer) or flagged the subscription slow; each revokes actual freshness.', labelNames: ['why'] as const, ...reg }));
  }

  setCounts(counts: AnalysisCounts): void {
    for (const [k, g] of Object.entries(this.gauges)) g.set(counts[k as keyof AnalysisCounts]);
  }
}
