// In-memory observations per node, fed by the monitors and read by the reconciler.
import type { NetworkName, UpDownUnknown } from '../api/index.js';
import type { HardwareSensor } from '../clients/ipmi-sensors.js';
import type { HardwareDecision } from './hardware/rules.js';
import type { CorroborationObservation, HardwareObservation, NetworkObservation, NodeObservations, NovaObservation, PowerObservation } from './fence/types.js';

/** What of a hardware observation is news (sensor values moving inside their thresholds are not). */
function hardwareKey(h: HardwareObservation | undefined): string {
  if (!h) return '';
  const d = h.decision;
  return JSON.stringify([d.action, d.bmc, d.error, d.reasons.map((r) => [r.condition, r.sensor, r.action]), d.pending.map((p) => [p.condition, p.sensor, p.samples]),
    h.sensors.map((s) => [s.name, s.state, s.faults, s.state !== 'ok' ? s.value : undefined]), h.selCursor]);
}

export class ObservationStore {
  private readonly nodes = new Map<string, NodeObservations>();
  private readonly listeners: ((node: string) => void)[] = [];
  private readonly downListeners: ((node: string, net: NetworkName) => void)[] = [];

  /** Called when a network of a node turns down (first down sample), e.g. to read the BMC at once. */
  onNetworkDown(fn: (node: string, net: NetworkName) => void): void {
    this.downListeners.push(fn);
  }

  onChange(fn: (node: string) => void): void {
    this.listeners.push(fn);
  }

  private changed(node: string) {
    for (const l of this.listeners) l(node);
  }

  get(node: string): NodeObservations {
    let o = this.nodes.get(node);
    if (!o) this.nodes.set(node, (o = { networks: {} }));
    return o;
  }

  snapshot(node: string): NodeObservations {
    return structuredClone(this.get(node));
  }

  delete(node: string): void {
    this.nodes.delete(node);
  }

  names(): string[] {
    return [...this.nodes.keys()];
  }

  /**
   * One sample of a network (one tick of the policy interval). Counts consecutive down samples;
   * `since` moves only when the state changes. Returns true when something changed.
   */
  sampleNetwork(node: string, net: NetworkName, s: { state: UpDownUnknown; up: number; down: number; unknown: number; reason?: string }, now: number): boolean {
    const o = this.get(node);
    const prev = o.networks[net];
    const next: NetworkObservation = {
      state: s.state,
      since: prev && prev.state === s.state ? prev.since : now,
      consecutiveDown: s.state === 'down' ? (prev?.state === 'down' ? prev.consecutiveDown + 1 : 1) : 0,
      observersUp: s.up,
      observersDown: s.down,
      observersUnknown: s.unknown,
      ...(s.reason ? { reason: s.reason } : {}),
    };
    o.networks[net] = next;
    if (next.state === 'down' && prev?.state !== 'down') for (const l of this.downListeners) l(node, net);
    const changed = !prev || prev.state !== next.state || prev.consecutiveDown !== next.consecutiveDown || prev.observersUp !== next.observersUp || prev.reason !== next.reason;
    if (changed) this.changed(node);
    return changed;
  }

  dropNetwork(node: string, net: NetworkName): void {
    const o = this.get(node);
    if (o.networks[net]) {
      delete o.networks[net];
      this.changed(node);
    }
  }

  setNova(node: string, nova: NovaObservation): void {
    const o = this.get(node);
    const same = JSON.stringify(o.nova) === JSON.stringify(nova);
    o.nova = nova;
    if (!same) this.changed(node);
  }

  setPower(node: string, state: PowerObservation['state'], now: number, error?: string): void {
    const o = this.get(node);
    const prev = o.power;
    const next: PowerObservation = { state, since: prev && prev.state === state ? prev.since : now, ...(error && state === 'unknown' ? { error } : {}) };
    o.power = next;
    if (!prev || prev.state !== state || prev.error !== next.error) this.changed(node);
  }

  /** Servers on the host per Nova. */
  setServers(node: string, count: number): void {
    const o = this.get(node);
    if (o.servers === count) return;
    o.servers = count;
    this.changed(node);
  }

  /** nova-compute on the node per the SSH command; also folded into the Nova observation at once. */
  setNodeSideSsh(node: string, state: UpDownUnknown, at: number, detail?: string): void {
    const o = this.get(node);
    const prev = o.nodeSideSsh?.state;
    o.nodeSideSsh = { state, at, ...(detail ? { detail } : {}) };
    if (o.nova && o.nova.nodeSide !== state) o.nova = { ...o.nova, nodeSide: state };
    if (prev !== state) this.changed(node);
  }

  /** The hardware monitor's decision; `sensors` are those of the last readable reading (kept while unreadable). */
  setHardware(node: string, decision: HardwareDecision, sensors: HardwareSensor[] | undefined): void {
    const o = this.get(node);
    const before = hardwareKey(o.hardware);
    o.hardware = { decision, sensors: sensors ?? o.hardware?.sensors ?? [], ...(o.hardware?.selCursor !== undefined ? { selCursor: o.hardware.selCursor } : {}) };
    if (hardwareKey(o.hardware) !== before) this.changed(node);
  }

  /** The SEL cursor once persisted (no reconcile: status already has it). */
  setSelCursor(node: string, lastId: number | undefined): void {
    const o = this.get(node);
    if (!o.hardware || lastId === undefined) return;
    o.hardware = { ...o.hardware, selCursor: lastId };
  }

  setCorroboration(node: string, c: CorroborationObservation): void {
    this.get(node).corroboration = c;
    this.changed(node);
  }
}
