// HM9000's evacuator as a pure rule (src/apps/analyzer/evacuation.ts).
import { describe, expect, it } from 'vitest';
import { evacuationStart, type EvacuationInput } from '../../src/apps/analyzer/evacuation.js';
import type { DropletExited, InstanceHeartbeat, PendingStart } from '../../src/apps/types.js';

const NOW = 1_700_000_000_000;
const cfg = { paused: false, keepAliveMs: 30_000 };
const exit = (p: Partial<DropletExited> = {}): DropletExited => ({ droplet: 'web', version: 'v1', instance: 'i1', index: 1, reason: 'DEA_EVACUATION', ...p });
const input = (p: Partial<EvacuationInput> = {}): EvacuationInput => ({
  fresh: true,
  desired: { appGuid: 'web', version: 'v1', instances: 3, state: 'STARTED', packageState: 'STAGED' },
  instances: [],
  queued: undefined,
  appPaused: false,
  ...p,
});
const running = (p: Partial<InstanceHeartbeat> = {}): InstanceHeartbeat => ({ droplet: 'web', version: 'v1', instance: 'i9', index: 1, state: 'RUNNING', state_timestamp: 1, dea_guid: 'd2', ...p });
const queued = (p: Partial<PendingStart> = {}): PendingStart => ({ kind: 'start', messageId: 'q', appGuid: 'web', version: 'v1', index: 1, sendOn: NOW + 30_000, sentOn: 0, keepAliveMs: 30_000, skipVerification: false, reason: 'MISSING', priority: 0.5, ...p });

describe('evacuationStart', () => {
  it('starts the index at once, unverified, priority 2', () => {
    expect(evacuationStart(exit(), input(), NOW, cfg)).toMatchObject({ kind: 'start', appGuid: 'web', version: 'v1', index: 1, sendOn: NOW, sentOn: 0, skipVerification: true, reason: 'EVACUATION', priority: 2, keepAliveMs: 30_000 });
    expect(evacuationStart(exit({ reason: 'DEA_SHUTDOWN' }), input(), NOW, cfg)?.reason).toBe('EVACUATION');
  });

  it.each([
    ['a crash (the analyzer handles it)', exit({ reason: 'CRASHED' }), input(), cfg],
    ['a stop', exit({ reason: 'STOPPED' }), input(), cfg],
    ['state not fresh', exit(), input({ fresh: false }), cfg],
    ['policy paused', exit(), input(), { ...cfg, paused: true }],
    ['app paused', exit(), input({ appPaused: true }), cfg],
    ['app not desired', exit(), input({ desired: { appGuid: 'web', version: 'v1', instances: 3, state: 'STOPPED', packageState: 'STAGED' } }), cfg],
    ['another version desired', exit({ version: 'v0' }), input(), cfg],
    ['index scaled away', exit({ index: 3 }), input(), cfg],
    ['the index runs elsewhere', exit(), input({ instances: [running()] }), cfg],
    ['an evacuation start already queued', exit(), input({ queued: queued({ reason: 'EVACUATION' }) }), cfg],
    ['a start already sent', exit(), input({ queued: queued({ sentOn: NOW - 1 }) }), cfg],
  ])('nothing for %s', (_n, e, i, c) => {
    expect(evacuationStart(e, i, NOW, c)).toBeUndefined();
  });

  it('replaces a MISSING start not yet sent, and ignores a crashed instance of that index', () => {
    expect(evacuationStart(exit(), input({ queued: queued(), instances: [running({ state: 'CRASHED' })] }), NOW, cfg)?.sendOn).toBe(NOW);
  });
});
