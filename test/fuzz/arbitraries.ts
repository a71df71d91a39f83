// Valid DEA messages (fast-check arbitraries): the base that the fuzzers and the flood fault mutate.
import fc from 'fast-check';
import { EXIT_REASONS, INSTANCE_STATES } from '../../src/hm9000/messages.js';

const ident = fc.string({ minLength: 1, maxLength: 12 });
export const validDroplet = fc.record({
  droplet: ident, version: ident, instance: ident, index: fc.nat({ max: 20 }),
  state: fc.constantFrom(...INSTANCE_STATES), state_timestamp: fc.double({ noNaN: true, noDefaultInfinity: true, min: 0, max: 2e9 }),
}, { requiredKeys: ['droplet', 'version', 'instance', 'index', 'state', 'state_timestamp'] });
export const validHeartbeat = fc.record({ dea: ident, droplets: fc.array(validDroplet, { maxLength: 6 }) });
export const validExited = fc.record({
  droplet: ident, version: ident, instance: ident, index: fc.nat({ max: 20 }), reason: fc.constantFrom(...EXIT_REASONS),
  exit_status: fc.integer({ min: -1, max: 255 }), exit_description: fc.string({ maxLength: 20 }), crash_timestamp: fc.integer({ min: 0, max: 2e9 }),
}, { requiredKeys: ['droplet', 'instance', 'reason'] });

