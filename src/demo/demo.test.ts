// The demo's pure parts: the samples in examples/ (valid, and substituted only where the world's
// locations go), incident selection, mail decoding, the live table, the assertion helper, and the
// missing-prerequisites report. The whole demo runs in test/system/demo.test.ts.
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { AppHealthPolicySpec, ComputeNodeSpec, FencePolicySpec, NETWORKS, type ComputeNode, type DesiredApp, type FencePolicy } from '../api/index.js';
import type { World as ComputeWorld } from '../devenv/compute-world.js';
import { Checks, IncidentFailed, INCIDENTS, mailText, selectIncidents } from './incidents.js';
import { Narrator, renderTable } from './narrator.js';
import { missingReport } from './preflight.js';
import { readExamples, substituteComputeNode, substituteFencePolicy } from './resources.js';

const examples = () => readExamples('examples');

const fakeWorld = {
  consul: { management: { url: 'http://127.0.0.1:1001' }, storage: { url: 'http://127.0.0.1:1002' }, tenant: { url: 'http://127.0.0.1:1003' } },
  sshd: { dir: '/tmp/sshd-x', user: 'demo' },
  smtp: { host: '127.0.0.1', port: 2525 },
  node: (host: string) => (/^cmp[1-6]$/.test(host) ? { bmc: { address: '127.0.0.1', port: 40000 + Number(host.slice(3)) }, sshPort: 50000 + Number(host.slice(3)) } : undefined),
} as unknown as ComputeWorld;

describe('examples/', () => {
  it('hold valid samples: one AppHealthPolicy, one FencePolicy, six ComputeNodes it selects', () => {
    const ex = examples();
    expect([...Value.Errors(AppHealthPolicySpec, ex.appHealthPolicy.spec)]).toEqual([]);
    expect([...Value.Errors(FencePolicySpec, ex.fencePolicy.spec)]).toEqual([]);
    expect(ex.computeNodes.map((n) => n.metadata.name)).toEqual(['cmp1', 'cmp2', 'cmp3', 'cmp4', 'cmp5', 'cmp6']);
    for (const n of ex.computeNodes) {
      expect([...Value.Errors(ComputeNodeSpec, n.spec)]).toEqual([]);
      for (const [k, v] of Object.entries(ex.fencePolicy.spec.nodeSelector?.matchLabels ?? {})) expect(n.metadata.labels?.[k]).toBe(v);
    }
    expect(ex.fencePolicy.spec.networks.storage?.action).toBe('RecoverThenFence');
  });

  it('are substituted only in the fields that name the world', () => {
    const ex = examples();
    const fp = substituteFencePolicy(ex.fencePolicy, fakeWorld);
    for (const n of NETWORKS) expect(fp.spec.networks[n]?.consul).toEqual([{ address: fakeWorld.consul[n].url }]);
    expect(fp.spec.detection?.corroboration?.sshCommand).toBe('/tmp/sshd-x/check.sh storage');
    expect(fp.spec.recovery?.commands?.storage).toBe('/tmp/sshd-x/recover.sh storage');
    expect(fp.spec.notifications?.email).toMatchObject({ smtpHost: '127.0.0.1', smtpPort: 2525, to: ['ops@example.org'] });
    // Timings and safety come from the file as written.
    expect(fp.spec.detection?.interval).toBe(ex.fencePolicy.spec.detection?.interval);
    expect(fp.spec.safety).toEqual(ex.fencePolicy.spec.safety);
    expect(ex.fencePolicy.spec.networks.storage?.consul[0]?.address).toBe('http://127.0.0.1:8501'); // the sample is untouched
    const cn = substituteComputeNode(ex.computeNodes[2]!, fakeWorld);
    expect(cn.spec.bmc).toMatchObject({ address: '127.0.0.1', port: 40003, credentialsSecret: 'bmc-credentials', cipherSuite: 3 });
    expect(cn.spec.ssh).toMatchObject({ port: 50003, user: 'demo', credentialsSecret: 'ssh-recovery' });
  });

  it('a sample that lacks a field the demo substitutes is an error naming it', () => {
    const fp = structuredClone(examples().fencePolicy) as FencePolicy;
    delete fp.spec.detection!.corroboration;
    expect(() => substituteFencePolicy(fp, fakeWorld)).toThrow(/spec\.detection\.corroboration is missing/);
    const cn = structuredClone(examples().computeNodes[0]!) as ComputeNode;
    cn.spec.host = 'cmp9';
    expect(() => substituteComputeNode(cn, fakeWorld)).toThrow(/host cmp9/);
  });
});

describe('incidents', () => {
  it('are selected by name, list or all; an unknown name is refused with the known ones', () => {
    expect(selectIncidents('all').map((i) => i.name)).toEqual(['dea-dies', 'crash-loop', 'rollout', 'storage-lost', 'bmc-dead', 'storm', 'hardware-degraded']);
    expect(selectIncidents('storm, rollout').map((i) => i.name)).toEqual(['storm', 'rollout']);
    expect(selectIncidents('none')).toEqual([]);
    expect(() => selectIncidents('dea-dies,nope')).toThrow(/unknown incident "nope"; known: all, dea-dies/);
    expect(INCIDENTS.every((i) => i.title.length > 10)).toBe(true);
  });

  it('checks record failures; a wait that times out fails the incident with what it waited for', async () => {
    const lines: string[] = [];
    const check = new Checks(new Narrator((s) => lines.push(s)), new AbortController().signal);
    check.that(true, 'a thing held');
    check.that(false, 'another did not', 'detail');
    await expect(check.until('the impossible', () => false, 300, () => 'last seen: nothing')).rejects.toBeInstanceOf(IncidentFailed);
    expect(check.passed).toBe(1);
    expect(check.failures).toEqual(['another did not (detail)', expect.stringMatching(/timed out after 0s waiting for the impossible; last seen: nothing/)]);
    expect(lines.join('')).toMatch(/check  ok    a thing held/);
    expect(lines.join('')).toMatch(/check  FAIL  another did not \(detail\)/);
  });

  it('a wait ends at once when the demo is interrupted', async () => {
    const ac = new AbortController();
    const check = new Checks(new Narrator(() => undefined), ac.signal);
    ac.abort();
    await expect(check.until('x', () => false, 60_000)).rejects.toThrow(/interrupted/);
  });
});

describe('mail', () => {
  it('decodes headers and a quoted-printable body', () => {
    const raw = 'From: hm9k@example.org\r\nTo: ops@example.org\r\nSubject: [hm9k] cmp1:\r\n fenced\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nhm9k fenced this node: storage network=\r\n down =E2=80=94 see\r\nkubectl annotate computenode cmp1 hm9k.io/acknowledge-fence=3Dcmp1-x\r\n';
    const m = mailText(raw);
    expect(m.headers.subject).toBe('[hm9k] cmp1: fenced');
    expect(m.body).toBe('hm9k fenced this node: storage network down — see\nkubectl annotate computenode cmp1 hm9k.io/acknowledge-fence=cmp1-x');
  });
});

describe('live table', () => {
  it('shows nodes (phase, networks, power, servers) beside apps (desired, running, crashed) and a storm', () => {
    const node = (name: string, phase: string, storage: 'up' | 'down', power: 'on' | 'off' | 'unknown'): ComputeNode => ({
      apiVersion: 'hm9k.io/v1alpha1', kind: 'ComputeNode', metadata: { name }, spec: { host: name },
      status: { phase: phase as 'Healthy', networks: { management: { state: 'up' }, storage: { state: storage }, tenant: { state: 'up' } }, power: { state: power }, servers: 2 },
    });
    const app: DesiredApp = {
      apiVersion: 'hm9k.io/v1alpha1', kind: 'DesiredApp', metadata: { name: 'crashy', namespace: 'hm9k' },
      spec: { appGuid: 'crashy', version: 'crashy-v1', instances: 2, state: 'STARTED', packageState: 'STAGED' },
      status: { running: 1, crashed: 1, conditions: [{ type: 'Flapping', status: 'True', reason: 'CrashLoop', message: '', lastTransitionTime: '2024-01-01T00:00:00Z' }] },
    };
    const storm: FencePolicy = { apiVersion: 'hm9k.io/v1alpha1', kind: 'FencePolicy', metadata: { name: 'compute' }, spec: { networks: {} }, status: { conditions: [{ type: 'StormActive', status: 'True', reason: 'x', message: '', lastTransitionTime: '2024-01-01T00:00:00Z' }] } };
    const t = renderTable([node('cmp1', 'Fenced', 'down', 'off'), node('cmp2', 'FenceFailed', 'down', 'unknown')], [app], [storm]).split('\n');
    expect(t[0]).toMatch(/^NODE\s+PHASE\s+MGMT\s+STOR\s+TEN\s+POWER\s+SERVERS\s+APP\s+DESIRED\s+RUNNING\s+CRASHED/);
    expect(t[1]).toMatch(/^cmp1\s+Fenced\s+up\s+DOWN\s+up\s+off\s+2\s+crashy\s+2\s+1\s+1\s+v1\s+FLAPPING$/);
    expect(t[2]).toMatch(/^cmp2\s+FenceFailed\s+up\s+DOWN\s+up\s+unknown\s+2$/);
    expect(t[3]).toBe('STORM ACTIVE (compute)');
  });
});

describe('preflight', () => {
  it('names what is missing, its Debian package and the script that installs it', () => {
    const text = missingReport([
      { name: 'ipmi_sim', what: "OpenIPMI's ipmi_sim", script: 'scripts/install-deps.sh', pkg: 'openipmi' },
      { name: 'kube-apiserver', what: 'kube-apiserver in /x/bin', script: 'scripts/build-tools.sh' },
    ]);
    expect(text).toMatch(/ipmi_sim: OpenIPMI's ipmi_sim \(Debian package openipmi\); installed by scripts\/install-deps\.sh/);
    expect(text).toMatch(/kube-apiserver: kube-apiserver in \/x\/bin; installed by scripts\/build-tools\.sh/);
    expect(text.indexOf('bash scripts/install-deps.sh')).toBeLessThan(text.indexOf('bash scripts/build-tools.sh'));
    expect(text).toMatch(/--install/);
  });
});
