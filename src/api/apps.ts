// AppHealthPolicy and DesiredApp: the app half's resources (HM9000's job).
import { Type, type Static, StringEnum, Duration, PositiveDuration, durationAtLeast, Int, Bool, Str, Timestamp, Conditions, withRules } from './schema.js';

export const APP_STATES = ['STARTED', 'STOPPED'] as const;
export const PACKAGE_STATES = ['STAGED', 'PENDING', 'FAILED'] as const;
export type AppState = (typeof APP_STATES)[number];
export type PackageState = (typeof PACKAGE_STATES)[number];

/** Annotation on the AppHealthPolicy that releases a stop hold; its value must equal status.stopHold.id. */
export const RELEASE_STOP_HOLD_ANNOTATION = 'hm9k.io/release-stop-hold';
/** Label on DesiredApp objects that hm9k's fetcher created and manages. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';

export const CrashBackoff = Type.Object(
  {
    crashesBeforeBackoff: Type.Optional(Int('Crashes that are restarted at once before backoff starts (HM9000: 3).', { minimum: 0, maximum: 1000, default: 3 })),
    startingBackoff: Type.Optional(PositiveDuration('Delay after the first backed-off crash; it doubles with every crash (HM9000: 30s).', '30s')),
    maxBackoff: Type.Optional(PositiveDuration('Longest delay between restarts (HM9000: 960s). Crash counts expire 2 x maxBackoff after their last increment.', '960s')),
    giveUpAfter: Type.Optional(Int('Stop restarting an instance after this many crashes (0 = never give up, as HM9000; Diego gives up at 200).', { minimum: 0, default: 0 })),
    delayNoise: Type.Optional(
      Duration(
        "Random jitter on backed-off crash restarts: each delay moves by a uniform amount within +-delayNoise (never below 0), so that many instances crashing together are not restarted in lockstep (the Ruby health manager's delay_time_noise, 5s there). Restarts without backoff stay immediate. 0 keeps HM9000's deterministic delays.",
        '0s',
      ),
    ),
  },
  {
    description: 'Crash backoff: how soon a crashed instance is restarted.',
    'x-kubernetes-validations': [
      durationAtLeast('maxBackoff', 'startingBackoff', 'crashBackoff.maxBackoff must be at least crashBackoff.startingBackoff'),
      durationAtLeast('maxBackoff', 'delayNoise', 'crashBackoff.delayNoise must be at most crashBackoff.maxBackoff'),
    ],
  },
);
export type CrashBackoff = Static<typeof CrashBackoff>;

export const AppHealthPolicySpec = Type.Object(
  {
    paused: Type.Optional(Bool('Decide nothing and send nothing while true; freshness and status are still reported.', false)),
    dryRun: Type.Optional(Bool('Decide and report (Events, metrics, status) but send nothing to the Cloud Controller.', false)),
    ccPartition: Type.Optional(
      Str(
        "The Cloud Controller partition acted on (the Ruby health manager's and dea_ng's cc_partition): heartbeat entries and droplet.exited messages of other partitions are ignored, counted (hm9k_other_partition_messages_total) and reported (condition OtherPartitions, one log line per partition). While heartbeats show instances of other partitions only, hm9k does not act. Entries without a partition count as this one.",
        { minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', default: 'default' },
      ),
    ),
    timings: Type.Optional(
      Type.Object(
        {
          heartbeatPeriod: Type.Optional(PositiveDuration('How often DEAs send heartbeats (HM9000: 10s).', '10s')),
          presenceTTL: Type.Optional(PositiveDuration('A DEA whose heartbeats stop for this long is gone, with all its instances (HM9000: 30s).', '30s')),
          actualFreshnessTTL: Type.Optional(PositiveDuration('Actual state is fresh after heartbeats flowed without a gap longer than this, for at least this long (HM9000: 30s).', '30s')),
          desiredFreshnessTTL: Type.Optional(PositiveDuration('Desired state is fresh when a complete fetch succeeded within this window (HM9000: 120s).', '120s')),
          gracePeriod: Type.Optional(Duration('A missing instance is started only after this grace (HM9000: 30s).', '30s')),
          fetchInterval: Type.Optional(PositiveDuration("How often the Cloud Controller's bulk API is fetched (HM9000: 60s).", '60s')),
          fetchTimeout: Type.Optional(PositiveDuration('Timeout of one bulk API page request (production: 30s).', '30s')),
          analyzeInterval: Type.Optional(PositiveDuration('How often the analyzer runs (HM9000: 10s).', '10s')),
          sendInterval: Type.Optional(PositiveDuration('How often the sender runs (HM9000: 10s).', '10s')),
          flushInterval: Type.Optional(PositiveDuration('How often buffered heartbeats are applied to the actual state (HM9000: 1s).', '1s')),
          keepAlive: Type.Optional(PositiveDuration('How long a sent crash/evacuation start or stop blocks a duplicate (HM9000: 30s).', '30s')),
        },
        {
          description: 'Periods, TTLs and windows. Defaults are HM9000\'s production values.',
          'x-kubernetes-validations': [
            durationAtLeast('presenceTTL', 'heartbeatPeriod', 'presenceTTL must be at least heartbeatPeriod (else every DEA is gone between two heartbeats; HM9000: 3 x 10s)'),
            durationAtLeast('actualFreshnessTTL', 'heartbeatPeriod', 'actualFreshnessTTL must be at least heartbeatPeriod (else actual state is never fresh)'),
            durationAtLeast('desiredFreshnessTTL', 'fetchInterval', 'desiredFreshnessTTL must be at least fetchInterval (else desired state goes stale between two fetches)'),
          ],
        },
      ),
    ),
    bulkBatchSize: Type.Optional(Int('Page size asked of the bulk API (newer CCs ignore it).', { minimum: 1, maximum: 100000, default: 5000 })),
    crashBackoff: Type.Optional(CrashBackoff),
    sender: Type.Optional(
      Type.Object(
        {
          messageLimit: Type.Optional(Int('At most this many starts are sent per sender run (HM9000: 60).', { minimum: 1, default: 60 })),
          stopLimit: Type.Optional(Int("At most this many stops are sent per sender run; the rest wait for the next run (HM9000 had no bound; hm9k uses HM9000's message limit, 60). Every message is verified against the current state just before it is sent.", { minimum: 1, default: 60 })),
        },
        { description: 'Sender limits.' },
      ),
    ),
    guards: Type.Optional(
      Type.Object(
        {
          maxShrinkPercent: Type.Optional(Int('If the desired instances shrink by more than this share in one fetch, hm9k keeps acting on the last good desired state and reports it.', { minimum: 0, maximum: 100, default: 30 })),
          maxStopPercent: Type.Optional(Int('If the stops due in one window exceed this share of running instances, every stop is held until an operator releases the hold.', { minimum: 0, maximum: 100, default: 20 })),
          stopWindow: Type.Optional(PositiveDuration('The window over which stops are counted for the stop budget.', '5m')),
          minStopsForHold: Type.Optional(Int('The stop budget never holds fewer stops than this in a window (small fleets).', { minimum: 0, default: 5 })),
          maxInstancesPerApp: Type.Optional(Int('An app whose desired instance count exceeds this is not analysed (nothing started or stopped for it) and is reported (condition AppsSkipped, metric hm9k_apps_skipped): an absurd count from the Cloud Controller must not block the others (hm9k).', { minimum: 1, default: 100000 })),
        },
        { description: 'Guards against a wrong mass stop.' },
      ),
    ),
    projection: Type.Optional(
      Type.Object(
        {
          maxInFlight: Type.Optional(Int('DesiredApp writes (create, update, delete) in flight at once.', { minimum: 1, default: 10 })),
          writesPerSecond: Type.Optional(Int('DesiredApp writes started per second at most: creating 100,000 objects after a fresh start must leave the apiserver healthy. Projection never holds back fetching, analysis or sending.', { minimum: 1, default: 100 })),
        },
        { description: 'How hard the DesiredApp projection (a view of the desired state, not an input) may write to the apiserver.' },
      ),
    ),
  },
  { description: 'Settings of the app half. Connections and credentials are process configuration, not fields here.' },
);
export type AppHealthPolicySpec = Static<typeof AppHealthPolicySpec>;

export const AppCounts = Type.Object(
  {
    desiredApps: Int('Apps desired (STARTED).', { minimum: -1 }),
    desiredInstances: Int('Instances desired.', { minimum: -1 }),
    running: Int('Instances running or starting.', { minimum: -1 }),
    missing: Int('Desired indices with no instance.', { minimum: -1 }),
    crashed: Int('Crashed instances.', { minimum: -1 }),
    undesired: Int('Apps running that are not desired.', { minimum: -1 }),
    pendingStarts: Int('Starts queued.', { minimum: 0 }),
    pendingStops: Int('Stops queued.', { minimum: 0 }),
  },
  { description: 'Counts from the last analysis; -1 when state is not fresh.' },
);
export type AppCounts = Static<typeof AppCounts>;

export const AppHealthPolicyStatus = Type.Object(
  {
    observedGeneration: Type.Optional(Int('The generation last acted upon.', { minimum: 0 })),
    conditions: Type.Optional(Conditions),
    counts: Type.Optional(AppCounts),
    lastCompleteFetch: Type.Optional(Timestamp('When the last complete bulk fetch finished.')),
    stopHold: Type.Optional(
      Type.Object(
        {
          id: Str('Hold id: annotate the policy with hm9k.io/release-stop-hold=<id> to release it.', { maxLength: 64 }),
          reason: Str('Why stops are held.', { maxLength: 1024 }),
          since: Timestamp('When the hold began.'),
          stopsHeld: Int('Stops held.', { minimum: 0 }),
        },
        { description: 'Set while every stop is held by the stop budget.' },
      ),
    ),
    releasedHoldId: Type.Optional(Str('The last hold id an operator released.', { maxLength: 64 })),
    sender: Type.Optional(
      Type.Object(
        {
          sent: Int('Messages sent since start.', { minimum: 0 }),
          failed: Int('Sends that failed and were kept for retry.', { minimum: 0 }),
          lastError: Type.Optional(Str('The last send error.', { maxLength: 1024 })),
        },
        { description: 'Sender outcomes.' },
      ),
    ),
  },
  { description: 'Observed state of the app half.' },
);
export type AppHealthPolicyStatus = Static<typeof AppHealthPolicyStatus>;

export const DesiredAppSpec = withRules(
  Type.Object(
    {
      appGuid: Str('The Cloud Foundry app guid (written by hm9k).', { pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$' }),
      version: Str('The app version guid CC desires (written by hm9k).', { minLength: 1, maxLength: 128 }),
      instances: Int('Desired instance count (written by hm9k).', { minimum: 0, maximum: 100000 }),
      state: StringEnum(APP_STATES, { description: 'Desired app state (written by hm9k).' }),
      packageState: StringEnum(PACKAGE_STATES, { description: 'Staging state of the package (written by hm9k).' }),
      paused: Type.Optional(Bool('Override a person may set: no actions for this app while true.', false)),
      crashBackoff: Type.Optional(CrashBackoff),
    },
    { description: "One Cloud Foundry app's desired state, projected from the Cloud Controller. Only `paused` and `crashBackoff` are for people." },
  ),
  [{ rule: 'self.appGuid.size() > 0', message: 'appGuid must not be empty' }],
);
export type DesiredAppSpec = Static<typeof DesiredAppSpec>;

export const AppActionRecord = Type.Object(
  {
    kind: StringEnum(['start', 'stop'] as const, { description: 'Start or stop.' }),
    reason: Str('Why (MISSING, CRASHED, EVACUATION, EXTRA, DUPLICATE, EVACUATION_COMPLETE).', { maxLength: 64 }),
    index: Int('Instance index.', { minimum: 0 }),
    time: Timestamp('When it was sent.'),
    outcome: StringEnum(['sent', 'failed', 'dryRun', 'dropped'] as const, { description: 'What happened.' }),
    message: Type.Optional(Str('Detail.', { maxLength: 512 })),
  },
  { description: 'The last action hm9k took for this app.' },
);

export const DesiredAppStatus = Type.Object(
  {
    observedGeneration: Type.Optional(Int('The generation last acted upon.', { minimum: 0 })),
    running: Type.Optional(Int('Instances running.', { minimum: 0 })),
    starting: Type.Optional(Int('Instances starting.', { minimum: 0 })),
    crashed: Type.Optional(Int('Crashed instances.', { minimum: 0 })),
    missing: Type.Optional(Int('Desired indices with no instance.', { minimum: 0 })),
    flapping: Type.Optional(
      Type.Array(
        Type.Object({ index: Int('Instance index.', { minimum: 0 }), crashCount: Int('Crashes counted.', { minimum: 0 }) }),
        { maxItems: 20, description: 'Indices that crashed repeatedly (at most 20).' },
      ),
    ),
    lastAction: Type.Optional(AppActionRecord),
    conditions: Type.Optional(Conditions),
  },
  { description: 'Observed state of the app.' },
);
export type DesiredAppStatus = Static<typeof DesiredAppStatus>;
