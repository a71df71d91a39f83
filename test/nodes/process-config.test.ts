// `hm9k run --nodes` process configuration: the default SMTP notification target and the server
// count period map into NodesProcessConfig; bad values are refused with their path.
import { describe, expect, it } from 'vitest';
import { nodesProcessConfig } from '../../src/cli/run.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { nodesConfig } from '../../src/nodes/config.js';

describe('nodes process configuration', () => {
  it('maps nodes.smtpDefault (defaults applied) and serverCountInterval', () => {
    const c = loadConfig({ overrides: { nodes: { enabled: true, serverCountInterval: '6s', smtpDefault: { smtpHost: 'mail.example.org', from: 'hm9k@example.org', to: ['ops@example.org'], credentialsSecret: 'smtp-creds' } } } });
    const n = nodesProcessConfig(c);
    expect(n.smtpDefault).toEqual({ smtpHost: 'mail.example.org', smtpPort: 587, secure: false, from: 'hm9k@example.org', to: ['ops@example.org'], credentialsSecret: 'smtp-creds' });
    expect(n.serverCountIntervalMs).toBe(6000);
  });

  it('has no default SMTP target unless configured', () => {
    const n = nodesProcessConfig(loadConfig({ overrides: { nodes: { enabled: true } } }));
    expect(n.smtpDefault).toBeUndefined();
    expect(n.serverCountIntervalMs).toBe(60_000);
  });

  it('takes it from the environment too', () => {
    const c = loadConfig({ env: { HM9K_NODES__SMTP_DEFAULT__SMTP_HOST: '127.0.0.1', HM9K_NODES__SMTP_DEFAULT__SMTP_PORT: '2525', HM9K_NODES__SMTP_DEFAULT__FROM: 'a@b.c', HM9K_NODES__SMTP_DEFAULT__TO: '["x@y.z","w@y.z"]' } });
    expect(nodesProcessConfig(c).smtpDefault).toEqual({ smtpHost: '127.0.0.1', smtpPort: 2525, secure: false, from: 'a@b.c', to: ['x@y.z', 'w@y.z'] });
  });

  it.each([
    [{ smtpHost: 'mail', from: 'not-an-address', to: ['ops@example.org'] }, 'nodes.smtpDefault.from'],
    [{ smtpHost: 'mail', from: 'a@b.c', to: [] }, 'nodes.smtpDefault.to'],
    [{ from: 'a@b.c', to: ['ops@example.org'] }, 'nodes.smtpDefault.smtpHost'],
    [{ smtpHost: 'mail', smtpPort: 70000, from: 'a@b.c', to: ['ops@example.org'] }, 'nodes.smtpDefault.smtpPort'],
    [{ smtpHost: 'mail', from: 'a@b.c', to: ['ops@example.org'], password: 'x' }, 'nodes.smtpDefault'],
  ])('refuses %j naming %s', (smtpDefault, path) => {
    let err: unknown;
    try {
      loadConfig({ overrides: { nodes: { enabled: true, smtpDefault } } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.some((p) => p.startsWith(path))).toBe(true);
  });

  it.each(['101%', '150%', '1000%'])('refuses nodes.globalMaxUnhealthy %s at start (above 100%%), like a FencePolicy', (globalMaxUnhealthy) => {
    let err: unknown;
    try {
      loadConfig({ overrides: { nodes: { enabled: true, globalMaxUnhealthy } } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toContain(`nodes.globalMaxUnhealthy: ${globalMaxUnhealthy} is above 100% (the global storm ceiling must be at most 100%)`);
    // A caller building the node half's configuration directly is refused the same way.
    expect(() => nodesConfig({ namespace: 'x', cloudsSecret: 'c', cloudName: 'c', globalMaxUnhealthy })).toThrow(/globalMaxUnhealthy: .* is above 100%/);
  });

  it.each(['100%', '0%', 7])('accepts nodes.globalMaxUnhealthy %s', (globalMaxUnhealthy) => {
    expect(nodesProcessConfig(loadConfig({ overrides: { nodes: { enabled: true, globalMaxUnhealthy } } })).globalMaxUnhealthy).toBe(globalMaxUnhealthy);
  });

  it('maps the answer limits and the Keystone token settings (defaults and overrides)', () => {
    expect(nodesProcessConfig(loadConfig({ overrides: { nodes: { enabled: true } } }))).toMatchObject({ maxResponseBytes: 16 * 1024 * 1024, maxPages: 1000, tokenRefreshPercent: 80, tokenRetryIntervalMs: 5000 });
    const c = loadConfig({ env: { HM9K_NODES__MAX_RESPONSE_BYTES: '1048576', HM9K_NODES__MAX_PAGES: '20', HM9K_NODES__TOKEN_REFRESH_PERCENT: '90', HM9K_NODES__TOKEN_RETRY_INTERVAL: '2s' } });
    expect(nodesProcessConfig(c)).toMatchObject({ maxResponseBytes: 1_048_576, maxPages: 20, tokenRefreshPercent: 90, tokenRetryIntervalMs: 2000 });
    expect(() => loadConfig({ overrides: { nodes: { tokenRefreshPercent: 100 } } })).toThrow(/nodes.tokenRefreshPercent/);
    expect(() => loadConfig({ overrides: { nodes: { maxPages: 0 } } })).toThrow(/nodes.maxPages/);
  });
});
