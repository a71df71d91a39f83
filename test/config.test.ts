// hm9k run's configuration: layering and clear errors.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, envToPaths, loadConfig } from '../src/config.js';

const file = (text: string) => {
  const f = join(mkdtempSync(join(tmpdir(), 'hm9k-cfg-')), 'config.yaml');
  writeFileSync(f, text);
  return f;
};

describe('process configuration', () => {
  it('applies defaults', () => {
    const c = loadConfig({});
    expect(c.namespace).toBe('hm9k-system');
    expect(c.healthPort).toBe(8081);
    expect(c.metricsPort).toBe(8080);
    expect(c.leaderElection.leaseDuration).toBe('15s');
    expect(c.apps.enabled).toBe(false);
  });

  it('layers file < environment < --set < overrides', () => {
    const f = file('namespace: from-file\nlogLevel: debug\napps:\n  enabled: true\n  cc:\n    url: http://file\n    bulkUser: bulk\n    internalUser: internal\n  api:\n    user: cc\n');
    const c = loadConfig({
      file: f,
      env: { HM9K_NAMESPACE: 'from-env', HM9K_APPS__CC__URL: 'http://env', HM9K_METRICS_PORT: '9090', HM9K_APPS__CC__BULK_PASSWORD: 'b', HM9K_APPS__CC__INTERNAL_PASSWORD: 'i', HM9K_APPS__API__PASSWORD: 'a' },
      sets: [['namespace', 'from-set']],
      overrides: { healthPort: 0 },
    });
    expect(c.namespace).toBe('from-set');
    expect(c.logLevel).toBe('debug');
    expect(c.apps.cc.url).toBe('http://env');
    expect(c.apps.cc.bulkPassword).toBe('b');
    expect(c.metricsPort).toBe(9090);
    expect(c.healthPort).toBe(0);
  });

  it('keeps a string field as given: a numeric or JSON-looking password stays a string', () => {
    const c = loadConfig({ env: { HM9K_APPS__CC__BULK_PASSWORD: '12345', HM9K_APPS__API__PASSWORD: '{not json', HM9K_APPS__NATS__TOKEN: '[x]', HM9K_NAMESPACE: 'ns1', HM9K_METRICS_PORT: '9091' } });
    expect(c.apps.cc.bulkPassword).toBe('12345');
    expect(c.apps.api.password).toBe('{not json');
    expect(c.apps.nats.token).toBe('[x]');
    // Number and boolean fields are still parsed from the environment.
    expect(c.metricsPort).toBe(9091);
  });

  it('never shows a credential in an error, even a wrongly typed one', () => {
    let msg = '';
    try {
      loadConfig({ overrides: { apps: { cc: { bulkPassword: 98765 } } } });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/apps.cc.bulkPassword/);
    expect(msg).not.toMatch(/98765/);
  });

  it('maps environment names to paths', () => {
    expect(envToPaths({ HM9K_LEADER_ELECTION__LEASE_DURATION: '5s', PATH: '/bin', HM9K_CACHE: '/x', HM9K_TEST_KUBECONFIG: 'k' })).toEqual([['leaderElection.leaseDuration', '5s']]);
  });

  it('reports every problem with its path', () => {
    const f = file('logLevel: loud\nmetricsPort: 99999\nleaderElection:\n  leaseDuration: forever\nbogus: 1\n');
    let err: unknown;
    try {
      loadConfig({ file: f });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    // Each names the allowed values or the expected form (issue 10, item 7).
    expect(msg).toMatch(/logLevel: must be one of: trace, debug, info, warn, error \(got "loud"\)/);
    expect(msg).toMatch(/metricsPort: must be an integer >= 0 and <= 65535 \(got 99999\)/);
    expect(msg).toMatch(/leaderElection.leaseDuration: must be a duration such as 5m, 30s or 1h30m \(a number and a unit: ms, s, m, h\) \(got "forever"\)/);
    expect(msg).toMatch(/bogus: "bogus" is not a configuration key here; known keys: namespace, podName, /);
  });

  it('names what an enabled half is missing', () => {
    expect(() => loadConfig({ overrides: { apps: { enabled: true } } })).toThrow(/apps.cc.url: required when the app half runs/);
    expect(() => loadConfig({ overrides: { apps: { enabled: true, sendVia: 'nats', cc: { url: 'http://cc', bulkUser: 'u', bulkPassword: 'p' }, api: { user: 'u', password: 'p' }, store: { kind: 'etcd' } } } })).toThrow(
      /apps.store.endpoints: at least one etcd endpoint/,
    );
    expect(() => loadConfig({ sets: [['nodes.consulWait', 'soon']] })).toThrow(/nodes.consulWait: must be a duration such as 5m/);
    expect(() => loadConfig({ sets: [['apps.sendVia', 'carrier']] })).toThrow(/apps.sendVia: must be one of: http, nats \(got "carrier"\)/);
    expect(() => loadConfig({ sets: [['nodes.globalMaxUnhealthy', 'half']] })).toThrow(/must be a count \(an integer >= 0\) or a percentage such as "50%"/);
    expect(() => loadConfig({ sets: [['apps.enabled', 'yes']] })).toThrow(/apps.enabled: must be true or false/);
  });

  it('POST /dea/heartbeat: off by default, basic auth on; unauthenticated only on loopback (issue 14 item 5)', () => {
    const base = { enabled: true, sendVia: 'nats', cc: { url: 'http://cc', bulkUser: 'u', bulkPassword: 'p' }, api: { user: 'u', password: 'p' } };
    const d = loadConfig({}).apps.api;
    expect([d.heartbeatEndpoint, d.heartbeatAuth, d.host]).toEqual([false, true, '0.0.0.0']);
    expect(() => loadConfig({ overrides: { apps: { ...base, api: { ...base.api, heartbeatEndpoint: true, heartbeatAuth: false } } } })).toThrow(/apps.api.heartbeatAuth: false is allowed only with apps.api.host on loopback \(now 0.0.0.0\)/);
    expect(loadConfig({ overrides: { apps: { ...base, api: { ...base.api, heartbeatEndpoint: true, heartbeatAuth: false, host: '127.0.0.1' } } } }).apps.api.heartbeatAuth).toBe(false);
    expect(loadConfig({ env: { HM9K_APPS__API__HEARTBEAT_PASSWORD: 'x' } }).apps.api.heartbeatPassword).toBe('x');
  });

  it('rejects a file that is not a mapping, or is not YAML', () => {
    expect(() => loadConfig({ file: file('- a\n- b\n') })).toThrow(/must hold a YAML mapping/);
    expect(() => loadConfig({ file: file('a: [1\n') })).toThrow(ConfigError);
    expect(() => loadConfig({ file: '/nonexistent/hm9k.yaml' })).toThrow(/ENOENT/);
  });
});
