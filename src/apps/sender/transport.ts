// How start/stop messages reach Cloud Controller: its internal HTTP API (default) or, as classic
// HM9000 could, NATS hm9000.start / hm9000.stop. Formats: src/hm9000/messages.ts.
import type { NatsConnection } from '@nats-io/transport-node';
import type { CcClient } from '../../clients/cc.js';
import { START_SUBJECT, STOP_SUBJECT } from '../../hm9000/messages.js';
import type { Transport } from './index.js';

export const httpTransport = (cc: CcClient): Transport => ({ sendStart: (m) => cc.sendStart(m), sendStop: (m) => cc.sendStop(m) });

export const natsTransport = (nats: NatsConnection): Transport => ({
  sendStart: async (m) => nats.publish(START_SUBJECT, JSON.stringify(m)),
  sendStop: async (m) => nats.publish(STOP_SUBJECT, JSON.stringify(m)),
});
