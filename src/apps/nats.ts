// The app half's NATS connection (heartbeats in, and start/stop out when sendVia is nats):
// reconnects forever, and says so in the log when it drops or comes back.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { AppsProcessConfig } from './config.js';

export async function connectNats(c: AppsProcessConfig['nats'], log: Logger): Promise<NatsConnection> {
  const nats = await connect({
    servers: c.servers,
    ...(c.user ? { user: c.user, pass: c.pass ?? '' } : {}),
    ...(c.token ? { token: c.token } : {}),
    name: 'hm9k-apps',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: true,
  });
  void (async () => {
    for await (const s of nats.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') log.warn({ nats: s.type }, `NATS ${s.type}`);
    }
  })().catch(() => undefined);
  return nats;
}
