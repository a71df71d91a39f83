// ComputeNode and FencePolicy: the node half's resources (compute-node HA).
import { Type, type Static, StringEnum, Duration, PositiveDuration, durationAtLeast, Int, Bool, Str, Timestamp, Conditions, SecretName, IntOrPercent, withRules, StringMap } from './schema.js';
import type { TOptional, TUnsafe } from '@sinclair/typebox';

export const NETWORKS = ['management', 'storage', 'tenant'] as const;
export type NetworkName = (typeof NETWORKS)[number];
export const PHASES = ['Healthy', 'Degraded', 'Suspect', 'Recovering', 'Draining', 'Drained', 'Fencing', 'Evacuating', 'Fenced', 'FenceFailed', 'Maintenance', 'Unknown'] as const;
export type Phase = (typeof PHASES)[number];
export const NETWORK_ACTIONS = ['Notify', 'Recover', 'RecoverThenFence'] as const;
export type NetworkAction = (typeof NETWORK_ACTIONS)[number];
/** What a hardware condition causes (issue 12): nothing, an operator notification, or a drain by live migration. */
export const HARDWARE_ACTIONS = ['Ignore', 'Notify', 'Drain'] as const;
export type HardwareAction = (typeof HARDWARE_ACTIONS)[number];
/**
 * Hardware conditions read from the BMC (sensor threshold states and discrete sensor states) and the
 * default action of each. Defaults follow the compute-HA design (compute-ha.md: CPU temperature high
 * enough to take the host down -> move its servers away while it runs); everything else is Notify.
 */
export const HARDWARE_CONDITIONS = {
  cpuTemperatureCritical: { default: 'Drain', description: 'A CPU temperature sensor at or past its critical threshold (critical or non-recoverable).' },
  powerRedundancyLost: { default: 'Drain', description: 'Power supply redundancy lost or degraded (one more PSU failure takes the host down).' },
  powerSupplyFailure: { default: 'Notify', description: 'A power supply reports failure, predictive failure, AC lost or a configuration error.' },
  fanFailure: { default: 'Notify', description: 'A fan at or past a critical threshold, or a discrete fan fault (critical transition, absent, fan redundancy lost).' },
  driveFault: { default: 'Notify', description: 'A drive slot reports a fault, a predictive failure, a failed array or an aborted rebuild.' },
  memoryUncorrectable: { default: 'Notify', description: 'Uncorrectable ECC memory errors.' },
  processorError: { default: 'Notify', description: 'A processor reports IERR or a thermal trip.' },
  sensorCritical: { default: 'Notify', description: 'Any other threshold sensor at or past critical.' },
  sensorNonCritical: { default: 'Notify', description: 'Any threshold sensor (CPU temperature included) past a non-critical threshold.' },
} as const satisfies Record<string, { default: HardwareAction; description: string }>;
export type HardwareCondition = keyof typeof HARDWARE_CONDITIONS;

export const UP_DOWN_UNKNOWN = ['up', 'down', 'unknown'] as const;
export type UpDownUnknown = (typeof UP_DOWN_UNKNOWN)[number];
export const POWER_STATES = ['on', 'off', 'unknown'] as const;
export type PowerState = (typeof POWER_STATES)[number];

/** Annotation on a ComputeNode that acknowledges a fence; its value must equal status.fence.id. */
export const ACK_FENCE_ANNOTATION = 'hm9k.io/acknowledge-fence';
/** hm9k's own finalizer, present on a ComputeNode only while a fence is in progress. */
export const FENCE_FINALIZER = 'hm9k.io/finalizer';
/** Operator drain (issue 12 item 5): `kubectl annotate cn <node> hm9k.io/drain=<reason>`; a new value starts a new drain. */
export const DRAIN_ANNOTATION = 'hm9k.io/drain';
/** Returns a drained host to service: its value must equal status.drain.id. */
export const UNDRAIN_ANNOTATION = 'hm9k.io/undrain';
/** Nova disabled_reason prefix of a drain; the full reason is `hm9k drain <drain id>`. */
export const DRAIN_REASON_PREFIX = 'hm9k drain ';
/** Nova disabled_reason prefix; the full reason is `hm9k fence <fence id>`. */
export const FENCE_REASON_PREFIX = 'hm9k fence ';

const HOST_PATTERN = '^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$';

export const ComputeNodeSpec = Type.Object(
  {
    host: Str('The nova-compute service host name.', { pattern: HOST_PATTERN }),
    consulNode: Type.Optional(
      Type.Object(
        {
          management: Type.Optional(Str('Consul node name on the management network (default: host).', { pattern: HOST_PATTERN })),
          storage: Type.Optional(Str('Consul node name on the storage network (default: host).', { pattern: HOST_PATTERN })),
          tenant: Type.Optional(Str('Consul node name on the tenant network (default: host).', { pattern: HOST_PATTERN })),
        },
        { description: 'The node\'s name in each Consul cluster, when it differs from host.' },
      ),
    ),
    bmc: Type.Optional(
      Type.Object(
        {
          address: Str('BMC address (IP or host name).', { pattern: HOST_PATTERN }),
          port: Type.Optional(Int('BMC RMCP+ UDP port.', { minimum: 1, maximum: 65535, default: 623 })),
          cipherSuite: Type.Optional(Int('IPMI cipher suite (17 preferred on real BMCs; 3 for OpenIPMI).', { minimum: 0, maximum: 17, default: 17 })),
          privilege: Type.Optional(StringEnum(['ADMINISTRATOR', 'OPERATOR'] as const, { description: 'IPMI privilege level.', default: 'ADMINISTRATOR' })),
          credentialsSecret: SecretName('Secret with keys `username` and `password` for the BMC.'),
        },
        { description: 'The node\'s BMC, reached with ipmitool over lanplus.' },
      ),
    ),
    ssh: Type.Optional(
      Type.Object(
        {
          address: Str('Management network address for SSH.', { pattern: HOST_PATTERN }),
          port: Type.Optional(Int('SSH port.', { minimum: 1, maximum: 65535, default: 22 })),
          user: Type.Optional(Str('SSH user.', { pattern: '^[a-z_][a-z0-9_-]{0,31}$', default: 'root' })),
          credentialsSecret: SecretName('Secret with keys `privateKey` and `knownHosts` (the host key is always verified).'),
        },
        { description: 'SSH access used for recovery and corroboration commands.' },
      ),
    ),
    maintenance: Type.Optional(Bool('Exclude this node from every action while true.', false)),
  },
  { description: 'One hypervisor. Its labels select the FencePolicy that governs it. Write access is root on the hypervisor.' },
);
export type ComputeNodeSpec = Static<typeof ComputeNodeSpec>;

const NetworkStatus = Type.Object(
  {
    state: StringEnum(UP_DOWN_UNKNOWN, { description: 'up, down, or unknown (Consul unreachable, leaderless, or node absent).' }),
    since: Type.Optional(Timestamp('When the state began.')),
    reason: Type.Optional(Str('Why, when not up.', { maxLength: 512 })),
  },
  { description: 'One network as Consul sees it.' },
);

const FenceStep = Type.Object({
  name: StringEnum(['powerOff', 'confirmOff', 'forceDown', 'disable', 'evacuate'] as const, { description: 'Step.' }),
  state: StringEnum(['pending', 'succeeded', 'failed', 'skipped'] as const, { description: 'Outcome.' }),
  at: Type.Optional(Timestamp('When the outcome was recorded.')),
  message: Type.Optional(Str('Detail.', { maxLength: 512 })),
});

export const EvacuatedServer = Type.Object({
  id: Str('Server uuid.', { maxLength: 64 }),
  from: Str('Source host.', { maxLength: 253 }),
  to: Type.Optional(Str('Destination host.', { maxLength: 253 })),
  state: StringEnum(['pending', 'requested', 'done', 'failed', 'skipped'] as const, { description: 'Evacuation state.' }),
  migrationId: Type.Optional(Str('Nova migration id.', { maxLength: 64 })),
  answer: Type.Optional(
    StringEnum(['accepted', 'unknown'] as const, {
      description:
        "Nova's answer to the evacuate request: accepted, or unknown (sent, no answer: timeout, lost connection, 5xx, shutdown). Absent while the request is recorded but not known to be sent. A request not accepted is issued again only after Nova showed no trace of it (no evacuation migration for this fence, server still on the host, no task_state) for the whole settle window after `since`.",
    }),
  ),
  wasActive: Type.Optional(Bool('The server was ACTIVE before evacuation.')),
  since: Type.Optional(Timestamp('When the server was requested, or first found busy (a task_state set) while pending: its deadline is since + perServerTimeout.')),
  reset: Type.Optional(Bool('hm9k reset the server\'s stuck state with os-resetState (evacuation.resetStuckServers).')),
  error: Type.Optional(Str('Why it failed.', { maxLength: 512 })),
});
export type EvacuatedServer = Static<typeof EvacuatedServer>;

export const DRAIN_SERVER_STATES = ['pending', 'requested', 'migrated', 'failed', 'skipped'] as const;
export const DrainedServer = Type.Object({
  id: Str('Server uuid.', { maxLength: 64 }),
  state: StringEnum(DRAIN_SERVER_STATES, {
    description: 'pending (not requested yet), requested (os-migrateLive recorded before it was sent), migrated (its host changed, no task_state), failed (the migration failed or missed its deadline) or skipped (it cannot be live-migrated: paused... see error). Failed and skipped servers need an operator and stay listed.',
  }),
  to: Type.Optional(Str('Destination host.', { maxLength: 253 })),
  migrationId: Type.Optional(Str('Nova live-migration migration id.', { maxLength: 64 })),
  answer: Type.Optional(StringEnum(['accepted', 'unknown'] as const, { description: "Nova's answer to os-migrateLive: accepted (202) or unknown (no answer: timeout, 5xx, shutdown). A request not accepted is sent again only after Nova showed no trace of it for the settle window." })),
  since: Type.Optional(Timestamp('When it was requested (its deadline is since + drain.perServerTimeout).')),
  error: Type.Optional(Str('Why it failed or was skipped.', { maxLength: 512 })),
});
export type DrainedServer = Static<typeof DrainedServer>;

const SensorSummary = Type.Object({
  name: Str('Sensor name as the BMC reports it.', { maxLength: 64 }),
  kind: Type.Optional(StringEnum(['cpuTemperature', 'temperature', 'fan', 'other'] as const, { description: 'Sensor kind.' })),
  state: StringEnum(['ok', 'nonCritical', 'critical', 'nonRecoverable', 'unknown'] as const, { description: 'Threshold state (IPMI 2.0 section 36.3); discrete sensors: ok unless a fault state is asserted (critical).' }),
  reading: Type.Optional(Str('The reading (only while not ok, so that steady state writes nothing).', { maxLength: 128 })),
});

export const ComputeNodeStatus = Type.Object(
  {
    observedGeneration: Type.Optional(Int('The generation last acted upon.', { minimum: 0 })),
    phase: Type.Optional(StringEnum(PHASES, { description: 'Where the node is in hm9k\'s life cycle.' })),
    phaseSince: Type.Optional(Timestamp('When the phase began.')),
    waitingFor: Type.Optional(Str('What hm9k is waiting for before its next step.', { maxLength: 512 })),
    networks: Type.Optional(
      Type.Object({ management: Type.Optional(NetworkStatus), storage: Type.Optional(NetworkStatus), tenant: Type.Optional(NetworkStatus) }, { description: 'Per network state.' }),
    ),
    nova: Type.Optional(
      Type.Object(
        {
          apiState: StringEnum(UP_DOWN_UNKNOWN, { description: 'nova-compute state in the Nova API.' }),
          status: Type.Optional(StringEnum(['enabled', 'disabled'] as const, { description: 'Service status.' })),
          forcedDown: Type.Optional(Bool('forced_down in Nova.')),
          disabledReason: Type.Optional(Str('disabled_reason in Nova.', { maxLength: 255 })),
          nodeSide: Type.Optional(StringEnum(UP_DOWN_UNKNOWN, { description: 'nova-compute as seen on the node.' })),
        },
        { description: 'The nova-compute service.' },
      ),
    ),
    power: Type.Optional(
      Type.Object(
        {
          state: StringEnum(POWER_STATES, { description: 'Chassis power as the BMC reports it.' }),
          readAt: Type.Optional(Timestamp('When it was read.')),
          error: Type.Optional(Str('Why it could not be read.', { maxLength: 512 })),
        },
        { description: 'Power state.' },
      ),
    ),
    servers: Type.Optional(Int('Servers on this host per Nova.', { minimum: 0 })),
    returnedFenceId: Type.Optional(
      Str('The last fence hm9k returned to service: a Nova disabled reason naming it is a stale read (taken before the service was re-enabled), never a reason to rebuild the latch.', { maxLength: 64 }),
    ),
    watchedHealthyAt: Type.Optional(
      Timestamp('When hm9k saw this node Healthy and began watching it without a gap (no Unknown, Maintenance, missing policy or fence since): the positive evidence a power-on needs. Empty on a new or re-created ComputeNode.'),
    ),
    recovery: Type.Optional(
      Type.Object(
        {
          attempts: Int('Recovery attempts in the current failure.', { minimum: 0 }),
          kind: Type.Optional(Str('What was recovered (storageNetwork, novaCompute, powerOn...).', { maxLength: 64 })),
          lastAttempt: Type.Optional(Timestamp('When the last attempt ran.')),
          lastResult: Type.Optional(Str('Outcome of the last attempt.', { maxLength: 512 })),
        },
        { description: 'Recovery attempts.' },
      ),
    ),
    fence: Type.Optional(
      Type.Object(
        {
          id: Str('Fence id: acknowledge with annotation hm9k.io/acknowledge-fence=<id>.', { maxLength: 64 }),
          reason: Str('Why the node was fenced.', { maxLength: 512 }),
          startedAt: Timestamp('When the fence began (intent recorded).'),
          leaseHolder: Str('The replica that held the Lease.', { maxLength: 253 }),
          leaseTransitions: Int('The Lease transition count then.', { minimum: 0 }),
          powerOffConfirmedAt: Type.Optional(Timestamp('When the BMC confirmed power off.')),
          steps: Type.Array(FenceStep, { maxItems: 8, description: 'Each step\'s outcome.' }),
          acknowledged: Type.Optional(Bool('An operator acknowledged this fence.')),
        },
        { description: 'The fence record (intent first, then each step).' },
      ),
    ),
    evacuation: Type.Optional(
      Type.Object(
        {
          startedAt: Timestamp('When evacuation began.'),
          microversion: Str('Nova microversion used.', { maxLength: 16 }),
          total: Int('Servers to evacuate.', { minimum: 0 }),
          done: Int('Servers evacuated.', { minimum: 0 }),
          failed: Int('Servers that failed or were skipped (they need an operator).', { minimum: 0 }),
          priorMigrationId: Type.Optional(Str('Highest evacuation migration id Nova held for the host when this evacuation was planned: only later migrations belong to this fence.', { maxLength: 64 })),
          planned: Type.Optional(Int('Servers taken into the record so far; the rest are read from Nova in id order as room frees up.', { minimum: 0 })),
          cursor: Type.Optional(Str('Id of the last server planned (servers are planned in id order).', { maxLength: 64 })),
          omitted: Type.Optional(
            Type.Object(
              { done: Int('Evacuated servers no longer listed.', { minimum: 0 }), failed: Int('Failed servers not listed (more than the list holds).', { minimum: 0 }) },
              { description: 'Finished servers not in the list (counted in done and failed), so the list stays bounded and the counts exact.' },
            ),
          ),
          servers: Type.Array(EvacuatedServer, { maxItems: 200, description: 'Servers in progress and those that failed first, then evacuated ones while room allows (at most 200).' }),
        },
        { description: 'The evacuation record.' },
      ),
    ),
    hardware: Type.Optional(
      Type.Object(
        {
          state: StringEnum(['ok', 'notify', 'drain', 'unknown'] as const, { description: 'The hardware decision: ok, notify (a Notify rule holds), drain (a Drain rule holds), unknown (the BMC could not be read: never a fault).' }),
          error: Type.Optional(Str('Why the BMC could not be read.', { maxLength: 512 })),
          reasons: Type.Optional(Type.Array(Str('A condition that held for hardware.samples readings.', { maxLength: 256 }), { maxItems: 16, description: 'Conditions behind the state.' })),
          sensors: Type.Optional(Type.Array(SensorSummary, { maxItems: 64, description: 'Every sensor and its state at the last readable reading.' })),
          selCursor: Type.Optional(Int('Id of the last System Event Log entry reported (-1: the SEL was empty): entries up to it are never reported again, across restarts.', { minimum: -1 })),
        },
        { description: 'Hardware health read from the BMC (FencePolicy hardware).' },
      ),
    ),
    drain: Type.Optional(
      Type.Object(
        {
          id: Str('Drain id: return the host to service with annotation hm9k.io/undrain=<id>.', { maxLength: 64 }),
          reason: Str('Why the host is drained.', { maxLength: 512 }),
          source: StringEnum(['hardware', 'operator'] as const, { description: 'A hardware Drain rule or the hm9k.io/drain annotation.' }),
          operatorReason: Type.Optional(Str('The hm9k.io/drain annotation value that started it.', { maxLength: 256 })),
          startedAt: Timestamp('When the drain began (intent recorded).'),
          leaseHolder: Str('The replica that held the Lease.', { maxLength: 253 }),
          leaseTransitions: Int('The Lease transition count then.', { minimum: 0 }),
          disabled: StringEnum(['pending', 'succeeded', 'failed'] as const, { description: 'nova-compute disabled with reason `hm9k drain <id>` (no new server lands on the host).' }),
          disableMessage: Type.Optional(Str('Outcome of the last disable call.', { maxLength: 512 })),
          microversion: Type.Optional(Str('Nova microversion of os-migrateLive.', { maxLength: 16 })),
          priorMigrationId: Type.Optional(Str('Highest live-migration id Nova held for the host when the drain was planned: only later ones belong to this drain.', { maxLength: 64 })),
          planned: Type.Optional(Bool('The servers on the host were read from Nova into the list.')),
          total: Int('Servers to live-migrate.', { minimum: 0 }),
          migrated: Int('Servers live-migrated.', { minimum: 0 }),
          failed: Int('Servers failed or skipped (they need an operator).', { minimum: 0 }),
          left: Int('Servers not yet migrated, failed or skipped.', { minimum: 0 }),
          servers: Type.Array(DrainedServer, { maxItems: 200, description: 'Every server of the drain (at most 200).' }),
          finishedAt: Type.Optional(Timestamp('When every server reached a final state, or the drain was handed over.')),
          result: Type.Optional(
            StringEnum(['empty', 'incomplete', 'handedOver'] as const, { description: 'empty (every server live-migrated), incomplete (some need an operator), handedOver (the host failed during the drain: the fence path evacuates what is still there).' }),
          ),
          enable: Type.Optional(StringEnum(['pending', 'failed'] as const, { description: 'Undrain in progress: nova-compute being enabled again.' })),
        },
        { description: 'The drain record: live migration of every server while the host still runs (issue 12).' },
      ),
    ),
    undrained: Type.Optional(
      Type.Object(
        {
          id: Str('The last drain returned to service.', { maxLength: 64 }),
          at: Timestamp('When.'),
          operatorReason: Type.Optional(Str('The hm9k.io/drain value of that drain: the same value never starts a drain again.', { maxLength: 256 })),
          hardwareHeld: Type.Optional(Bool('A hardware Drain rule still held at undrain: no new hardware drain until the hardware reads non-Drain once.')),
        },
        { description: 'The last undrain (so an annotation left in place or a persisting fault does not drain the host again at once).' },
      ),
    ),
    conditions: Type.Optional(Conditions),
  },
  { description: 'Observed state of the node and what hm9k does about it.' },
);
export type ComputeNodeStatus = Static<typeof ComputeNodeStatus>;

const ConsulObserver = Type.Object(
  {
    address: Str('Consul HTTP endpoint, e.g. http://10.0.0.5:8500.', { pattern: '^https?://[^\\s/]+(:[0-9]+)?/?$' }),
    tokenSecret: Type.Optional(SecretName('Secret with key `token` (sent as X-Consul-Token).')),
    insecureSkipVerify: Type.Optional(Bool('Skip TLS verification (testing only).', false)),
    caSecret: Type.Optional(SecretName('Secret with key `ca.crt` to verify the endpoint.')),
  },
  { description: 'One Consul observer of a network.' },
);

const NetworkRule = Type.Object(
  {
    consul: Type.Array(ConsulObserver, { minItems: 1, maxItems: 5, description: 'Consul endpoints that observe this network; more than one lets hm9k corroborate.' }),
    action: Type.Optional(StringEnum(NETWORK_ACTIONS, { description: 'What to do when the network fails on a node: Notify; Recover (run the recovery command, then notify); RecoverThenFence (recover, and if that fails fence and evacuate).' })),
  },
  { description: 'How one network is watched and what its failure triggers.' },
);

const LabelSelector = Type.Object(
  {
    matchLabels: Type.Optional(StringMap('Labels that must match exactly.')),
    matchExpressions: Type.Optional(
      Type.Array(
        Type.Object({
          key: Str('Label key.'),
          operator: StringEnum(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const, { description: 'Operator.' }),
          values: Type.Optional(Type.Array(Type.String(), { maxItems: 64 })),
        }),
        { maxItems: 16, description: 'Label expressions.' },
      ),
    ),
  },
  { description: 'Which ComputeNodes this policy governs (an empty selector selects all).' },
);

export const FencePolicySpec = withRules(
  Type.Object(
    {
      nodeSelector: Type.Optional(LabelSelector),
      networks: Type.Object(
        { management: Type.Optional(NetworkRule), storage: Type.Optional(NetworkRule), tenant: Type.Optional(NetworkRule) },
        { description: 'Per network Consul observers and failure actions. Defaults: storage RecoverThenFence; management and tenant Notify.' },
      ),
      detection: Type.Optional(
        Type.Object(
          {
            interval: Type.Optional(PositiveDuration('Sampling interval.', '10s')),
            failureThreshold: Type.Optional(Int('Consecutive failing samples before a node is Suspect.', { minimum: 1, maximum: 100, default: 3 })),
            recoveryGracePeriod: Type.Optional(Duration('Time a failure may heal by itself before hm9k acts.', '60s')),
            healthyDelay: Type.Optional(Duration('Time a node must look healthy before it is Healthy again.', '30s')),
            novaNodeSideCheck: Type.Optional(Str('Consul service check id that reports nova-compute on the node; empty uses novaNodeSideCommand over SSH.', { maxLength: 128 })),
            novaNodeSideCommand: Type.Optional(
              Str(
                'Command run over SSH (spec.ssh) to check nova-compute on the node when novaNodeSideCheck is empty. LSB status codes: exit 0 = running, exit 3 = not running (what systemctl is-active returns for an inactive or failed unit); any other exit, or an SSH failure, = unknown (never acted on). An empty string disables the check.',
                { maxLength: 1024, default: 'systemctl is-active --quiet nova-compute' },
              ),
            ),
            novaNodeSideInterval: Type.Optional(PositiveDuration('Period of the SSH nova-compute check (at most maxParallelSsh sessions at once across the fleet).', '60s')),
            corroboration: Type.Optional(
              Type.Object(
                {
                  sshCommand: Type.Optional(Str('Command run over SSH on the management network; exit 0 means the storage network works from the node.', { maxLength: 1024 })),
                  timeout: Type.Optional(PositiveDuration('Timeout of the corroboration command.', '20s')),
                  requireSsh: Type.Optional(Bool('Refuse to fence when the SSH corroboration cannot run at all (unreachable counts as corroborating only when false).', false)),
                },
                { description: 'Confirmation of a failure by a path that does not go through the failing Consul agent.' },
              ),
            ),
          },
          { description: 'How failures are detected.' },
        ),
      ),
      recovery: Type.Optional(
        Type.Object(
          {
            commands: Type.Optional(
              Type.Object(
                {
                  storage: Type.Optional(Str('Restarts the storage network.', { maxLength: 1024, default: 'systemctl restart storage-network' })),
                  management: Type.Optional(Str('Restarts the management network.', { maxLength: 1024 })),
                  tenant: Type.Optional(Str('Restarts the tenant network.', { maxLength: 1024 })),
                  novaCompute: Type.Optional(Str('Restarts nova-compute.', { maxLength: 1024, default: 'systemctl restart nova-compute' })),
                },
                { description: 'Recovery commands run over SSH, per failure kind.' },
              ),
            ),
            attempts: Type.Optional(Int('Recovery attempts before giving up (and fencing, under RecoverThenFence).', { minimum: 0, maximum: 10, default: 2 })),
            timeout: Type.Optional(PositiveDuration('Timeout of one recovery command.', '60s')),
            settleTime: Type.Optional(Duration('Time allowed after a recovery attempt for the failure to clear.', '30s')),
            powerOn: Type.Optional(Bool('Power on a host found powered off (never one hm9k powered off or fenced).', true)),
          },
          { description: 'Recovery before any fence.' },
        ),
      ),
      fencing: Type.Optional(
        Type.Object(
          {
            powerOffTimeout: Type.Optional(PositiveDuration('How long to wait for the BMC to report off.', '20s')),
            powerWait: Type.Optional(Duration('Wait after the power-off command before polling.', '2s')),
            pollInterval: Type.Optional(PositiveDuration('Power status polling interval.', '1s')),
            ipmiTimeout: Type.Optional(PositiveDuration('Outer timeout of one ipmitool call.', '15s')),
            forceDownService: Type.Optional(Bool('Force nova-compute down after power-off is confirmed.', true)),
          },
          {
            description: 'Fencing through the BMC.',
            'x-kubernetes-validations': [
              durationAtLeast('powerOffTimeout', 'powerWait', 'powerOffTimeout must be at least powerWait (hm9k waits powerWait before it polls for off)'),
              durationAtLeast('powerOffTimeout', 'pollInterval', 'powerOffTimeout must be at least pollInterval (else the BMC is never polled)'),
            ],
          },
        ),
      ),
      evacuation: Type.Optional(
        Type.Object(
          {
            enabled: Type.Optional(Bool('Evacuate the servers of a fenced host.', true)),
            targetHost: Type.Optional(Str('Evacuate to this host (default: the scheduler chooses).', { pattern: HOST_PATTERN })),
            concurrency: Type.Optional(Int('Servers evacuated at once.', { minimum: 1, maximum: 50, default: 3 })),
            perServerTimeout: Type.Optional(PositiveDuration('Time one server may take.', '5m')),
            metadataKey: Type.Optional(Str('Evacuate only servers with this metadata key (default: all).', { maxLength: 255 })),
            microversion: Type.Optional(Str('Nova microversion for evacuate (2.94 or lower keeps power state).', { pattern: '^2\\.[0-9]{1,3}$', default: '2.94' })),
            resetStuckServers: Type.Optional(
              Bool('A server still busy (task_state set) or unfinished after perServerTimeout is reported failed; when true, hm9k first resets a busy one with os-resetState (state error, as masakari does) and evacuates it once more.', false),
            ),
          },
          { description: 'Evacuation of a fenced host\'s servers.' },
        ),
      ),
      safety: Type.Optional(
        Type.Object(
          {
            maxUnhealthy: Type.Optional(IntOrPercent('Above this many unhealthy (or unknown) nodes no node is fenced (StormActive).', '30%')),
            maxConcurrentRemediations: Type.Optional(Int('Nodes recovered or fenced at once.', { minimum: 1, maximum: 100, default: 1 })),
            paused: Type.Optional(Bool('Act on nothing; observe and report only.', false)),
            dryRun: Type.Optional(Bool('Decide and report, act on nothing.', false)),
          },
          { description: 'Safety limits.' },
        ),
      ),
      drain: Type.Optional(
        Type.Object(
          {
            concurrency: Type.Optional(Int('Servers live-migrated at once.', { minimum: 1, maximum: 20, default: 2 })),
            perServerTimeout: Type.Optional(PositiveDuration('Time one live migration may take before the server is reported failed.', '10m')),
            targetHosts: Type.Optional(Type.Array(Type.String({ pattern: HOST_PATTERN, maxLength: 253 }), { maxItems: 20, description: 'Live-migrate to these hosts (round robin; the scheduler still checks each). Default: the scheduler chooses.' })),
            microversion: Type.Optional(Str('Nova microversion of os-migrateLive (block_migration "auto" needs 2.25; hm9k speaks 2.53 or newer; Nova\'s own maximum when lower).', { pattern: '^2\\.[0-9]{1,3}$', default: '2.53' })),
            whenEmpty: Type.Optional(StringEnum(['LeaveDisabled', 'PowerOff'] as const, { description: 'Once every server is live-migrated: leave nova-compute disabled for maintenance, or power the host off through the BMC (a fence: confirmed off, latched until acknowledged).', default: 'LeaveDisabled' })),
          },
          { description: 'Drain: live migration of a host\'s servers while it still runs (hardware Drain rules, hm9k.io/drain annotation).' },
        ),
      ),
      hardware: Type.Optional(
        withRules(
          Type.Object(
            {
              enabled: Type.Optional(Bool('Read each node\'s BMC sensors (`ipmitool sdr elist`, `sensor`) and System Event Log (`sel elist`) on the interval, leader only, one session per BMC at a time.', true)),
              interval: Type.Optional(PositiveDuration('Period of the sensor and SEL reads of one BMC.', '60s')),
              samples: Type.Optional(Int('Consecutive readable readings a condition must hold before it counts (a single spike is not a fault); an unreadable BMC neither counts nor clears.', { minimum: 1, maximum: 100, default: 3 })),
              rules: Type.Optional(
                Type.Object(
                  Object.fromEntries(
                    Object.entries(HARDWARE_CONDITIONS).map(([k, v]) => [k, Type.Optional(StringEnum(HARDWARE_ACTIONS, { description: `${v.description} Ignore, Notify, or Drain (live-migrate the servers away while the host runs).`, default: v.default }))]),
                  ) as Record<HardwareCondition, TOptional<TUnsafe<HardwareAction>>>,
                  { description: 'The action of each hardware condition. A new SEL entry recording one of these faults is notified once (it is history, never a Drain by itself).' },
                ),
              ),
            },
            { description: 'Hardware health read from the BMC over IPMI.' },
          ),
          [
            {
              // Drain moves every server: one sample of one sensor must not be enough (issue 12).
              rule: `!has(self.samples) || self.samples >= 2 || !(${Object.entries(HARDWARE_CONDITIONS)
                .map(([k, v]) => (v.default === 'Drain' ? `!has(self.rules) || !has(self.rules.${k}) || self.rules.${k} == 'Drain'` : `(has(self.rules) && has(self.rules.${k}) && self.rules.${k} == 'Drain')`))
                .map((r) => `(${r})`)
                .join(' || ')})`,
              message: 'hardware.samples must be at least 2 while any condition is Drain (a single reading is not a fault)',
            },
          ],
        ),
      ),
      notifications: Type.Optional(
        Type.Object(
          {
            email: Type.Optional(
              Type.Object({
                smtpHost: Str('SMTP server host.', { pattern: HOST_PATTERN }),
                smtpPort: Type.Optional(Int('SMTP port.', { minimum: 1, maximum: 65535, default: 587 })),
                secure: Type.Optional(Bool('Use implicit TLS (port 465).', false)),
                from: Str('Sender address.', { pattern: '^[^@\\s]+@[^@\\s]+$' }),
                to: Type.Array(Type.String({ pattern: '^[^@\\s]+@[^@\\s]+$' }), { minItems: 1, maxItems: 20, description: 'Recipients.' }),
                credentialsSecret: Type.Optional(SecretName('Secret with keys `username` and `password`.')),
              }, { description: 'Email to operators.' }),
            ),
            webhook: Type.Optional(Type.Object({ url: Str('URL to POST JSON notifications to.', { pattern: '^https?://' }) }, { description: 'Webhook.' })),
            minInterval: Type.Optional(Duration('The same notification about a node is sent at most once per this interval.', '15m')),
          },
          { description: 'Operator notifications (Kubernetes Events are always written).' },
        ),
      ),
    },
    { description: 'Rules for the ComputeNodes its selector matches. Managed by GitOps. Write access is root on the hypervisors.' },
  ),
  [
    {
      rule: 'has(self.networks.management) || has(self.networks.storage) || has(self.networks.tenant)',
      message: 'networks must name at least one of management, storage, tenant',
    },
  ],
);
export type FencePolicySpec = Static<typeof FencePolicySpec>;

export const FencePolicyStatus = Type.Object(
  {
    observedGeneration: Type.Optional(Int('The generation last acted upon.', { minimum: 0 })),
    matchedNodes: Type.Optional(Int('Nodes the selector matches.', { minimum: 0 })),
    healthyNodes: Type.Optional(Int('Healthy nodes.', { minimum: 0 })),
    unhealthyNodes: Type.Optional(Int('Unhealthy or unknown nodes.', { minimum: 0 })),
    remediationsInFlight: Type.Optional(Int('Nodes being recovered, fenced or evacuated.', { minimum: 0 })),
    unhealthy: Type.Optional(Type.Array(Type.String(), { maxItems: 50, description: 'Names of unhealthy nodes (at most 50).' })),
    conditions: Type.Optional(Conditions),
  },
  { description: 'Observed state of the policy.' },
);
export type FencePolicyStatus = Static<typeof FencePolicyStatus>;
