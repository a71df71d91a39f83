// The controller runtime: import from here (or from contract.ts for the interfaces only).
export * from './contract.js';
export { createRuntime, type RuntimeOptions, type ManagedRuntime, type LeaderElectionOptions } from './runtime.js';
export { ReflectorInformer, DEFAULT_INFORMER_CONFIG, diffCache, type InformerConfig } from './informer.js';
export { pathListerWatcher, kubeGetJson, HttpError, type ListerWatcher, type ListPage, type RawWatchEvent } from './listwatch.js';
export { Queue, RateLimiter, DEFAULT_RATE_LIMITER, type RateLimiterConfig } from './workqueue.js';
export { ControllerRunner, type ControllerOptions } from './controller.js';
export { RateLimitedStatusWriter, customObjectsStatusClient, statusPatch, effectiveStatus, DEFAULT_STATUS_CONFIG, type StatusWriterConfig, type StatusClient } from './status.js';
export { RateLimitedEventRecorder, EventFilter, eventsV1Sink, truncateUtf8, DEFAULT_EVENT_CONFIG, type EventRecorderConfig, type EventSink } from './events.js';
export {
  LeaseElector,
  decideLease,
  releaseRecord,
  recordOf,
  coordinationLeaseClient,
  validateLeaderConfig,
  DEFAULT_LEADER_CONFIG,
  type LeaderElectionConfig,
  type LeaseRecord,
  type LeaseDecision,
  type Observation,
  type LeaseClient,
} from './leader.js';
export { createRootLogger, loggerFactory, type LogOptions } from './log.js';
export { startProbeServer, startMetricsServer } from './server.js';
export { resourceFor, collectionPath, apiVersionOf, CORE, type ResourceRef } from './resources.js';
export { deepEqual, mergePatch, compareResourceVersions, Backoff, TokenBucket } from './util.js';
