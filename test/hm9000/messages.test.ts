// HM9000's wire formats are shared by the sender, the CC client and the simulators: what hm9k
// builds, the simulators accept (and act on), and what the DEA simulator publishes, hm9k parses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { CcClient } from '../../src/clients/cc.js';
import { CC_SEND_PATH_RE, EXITED_SUBJECT, HEARTBEAT_SUBJECT, ccStartPath, ccStopPath, startMessage, stopMessage } from '../../src/hm9000/messages.js';
import { parseExited, parseHeartbeat } from '../../src/hm9000/parse.js';
import { CloudControllerSim } from '../../src/sim/cc.js';
import { DeaFleet } from '../../src/sim/dea.js';

/** Records what the DEA simulator publishes (no server needed for the format). */
const recordingNats = () => {
  const published: { subject: string; data: string }[] = [];
  return { published, nc: { publish: (subject: string, data: string) => void published.push({ subject, data }) } as unknown as NatsConnection };
};

describe('DEA simulator -> hm9k parsers', () => {
  it('a heartbeat and a droplet.exited from the DEA simulator parse as HM9000 messages', () => {
    const { published, nc } = recordingNats();
    const fleet = new DeaFleet({ nats: nc, count: 1, heartbeatPeriodMs: 1000 });
    const dea = fleet.deaIds()[0]!;
    const guid = fleet.place(dea, 'app', 'v1', 2);
    fleet.publishHeartbeat(dea);
    fleet.crash(guid);
    const hb = published.find((p) => p.subject === HEARTBEAT_SUBJECT)!;
    const parsed = parseHeartbeat(hb.data);
    expect(parsed).toEqual({ ok: true, value: { dea, droplets: [expect.objectContaining({ droplet: 'app', version: 'v1', instance: guid, index: 2, state: 'RUNNING', cc_partition: 'default' })] } });
    const exited = published.find((p) => p.subject === EXITED_SUBJECT)!;
    expect(parseExited(exited.data)).toMatchObject({ ok: true, value: { droplet: 'app', version: 'v1', instance: guid, index: 2, reason: 'CRASHED' } });
  });
});

describe('hm9k start/stop bodies -> CC simulator', () => {
  let cc: CloudControllerSim;
  let client: CcClient;
  const started: string[] = [];
  const stopped: string[] = [];
  beforeAll(async () => {
    cc = new CloudControllerSim({
      dea: {
        startInstance: (app, version, index) => (started.push(`${app}/${version}/${index}`), 'new-guid'),
        stopInstances: (_app, guids) => (stopped.push(...guids), guids.length),
      },
    });
    await cc.listen();
    client = new CcClient({ url: cc.url, bulkUser: 'bulk_api', bulkPassword: 'bulk-password', internalUser: 'internal_api', internalPassword: 'internal-password', timeoutMs: 5000, batchSize: 50 });
    cc.setApp({ guid: 'web', version: 'v1', instances: 2, state: 'STARTED', package_state: 'STAGED' });
  });
  afterAll(async () => cc.close());

  it('builds the bodies with HM9000 field names', () => {
    expect(startMessage({ messageId: 'm1', appGuid: 'web', version: 'v1', index: 1 })).toEqual({ message_id: 'm1', droplet: 'web', version: 'v1', instance_index: 1 });
    expect(stopMessage({ messageId: 'm2', appGuid: 'web', version: 'v1', index: 5, instanceGuid: 'i5' }, true)).toEqual({ message_id: 'm2', droplet: 'web', version: 'v1', instance_guid: 'i5', instance_index: 5, is_duplicate: true });
    expect(CC_SEND_PATH_RE.exec(ccStartPath('a/b'))?.slice(1)).toEqual(['start', 'a%2Fb']);
    expect(CC_SEND_PATH_RE.exec(ccStopPath('web'))?.slice(1)).toEqual(['stop', 'web']);
  });

  it('CC executes a start and a stop sent by the CC client', async () => {
    await client.sendStart(startMessage({ messageId: 'm1', appGuid: 'web', version: 'v1', index: 1 }));
    await client.sendStop(stopMessage({ messageId: 'm2', appGuid: 'web', version: 'v1', index: 5, instanceGuid: 'i5' }, false));
    expect(started).toEqual(['web/v1/1']);
    expect(stopped).toEqual(['i5']);
    expect(cc.requests.filter((r) => r.endpoint === 'start' || r.endpoint === 'stop').map((r) => [r.endpoint, r.executed])).toEqual([['start', true], ['stop', true]]);
  });
});
