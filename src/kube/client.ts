// The parts of @kubernetes/client-node that hm9k uses, from one module. The build bundles this file
// with the library inside, tree-shaken (scripts/bundle.mjs): the library's index loads every
// generated API and model of Kubernetes, about 80 MB of RSS, more than HM9000's whole process
// (issue 14 item 9). Everything in src/ imports the library through here, so that one copy of it
// (bundled or not) serves the whole process: KubeConfig, the API classes and Watch must come from
// the same copy.
export { CoordinationV1Api, CoreV1Api, CustomObjectsApi, EventsV1Api, KubeConfig, PatchStrategy, V1MicroTime, Watch, setHeaderOptions } from '@kubernetes/client-node';
export type * from '@kubernetes/client-node';
