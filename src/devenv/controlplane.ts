// A real local Kubernetes control plane: etcd + kube-apiserver on free loopback ports with generated
// certificates, RBAC, an admin client certificate, a kubeconfig, and hm9k's CRDs installed.
// Used by the tests' global setup and by `hm9k demo`. Binaries come from KUBEBUILDER_ASSETS or
// from the cache that scripts/build-tools.sh fills (~/.cache/hm9k/bin).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import https from 'node:https';
import { freePort, isAlive, killGroup, startProcess, waitFor } from './procs.js';
import { allCrds } from '../api/index.js';

export function binDir(): string {
  return process.env.HM9K_CACHE ? join(process.env.HM9K_CACHE, 'bin') : join(homedir(), '.cache', 'hm9k', 'bin');
}

export function findBinary(name: 'kube-apiserver' | 'etcd' | 'helm'): string {
  const assets = process.env.KUBEBUILDER_ASSETS;
  const candidates = [...(assets && name !== 'helm' ? [join(assets, name)] : []), join(binDir(), name)];
  for (const c of candidates) if (existsSync(c)) return c;
  throw new Error(`${name} not found (looked in ${candidates.join(', ')}); run: bash scripts/build-tools.sh`);
}

export interface ControlPlaneState {
  dir: string;
  etcdPort: number;
  etcdPeerPort: number;
  apiPort: number;
  etcdPid: number;
  apiPid: number;
  kubeconfig: string;
  apiExtraFlags: string[];
}

const openssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });

function generateCerts(dir: string): void {
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3', '-subj', '/CN=hm9k-local-ca']);
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default\nextendedKeyUsage=serverAuth\n');
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'apiserver.key', '-out', 'apiserver.csr', '-subj', '/CN=kube-apiserver']);
  openssl(dir, ['x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'apiserver.crt', '-days', '3', '-extfile', 'san.cnf']);
  writeFileSync(join(dir, 'client.cnf'), 'extendedKeyUsage=clientAuth\n');
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'admin.key', '-out', 'admin.csr', '-subj', '/O=system:masters/CN=hm9k-admin']);
  openssl(dir, ['x509', '-req', '-in', 'admin.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'admin.crt', '-days', '3', '-extfile', 'client.cnf']);
  openssl(dir, ['genrsa', '-out', 'sa.key', '2048']);
  openssl(dir, ['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

function kubeconfigText(dir: string, apiPort: number): string {
  const b64 = (f: string) => readFileSync(join(dir, f)).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: hm9k-local
  cluster:
    server: https://127.0.0.1:${apiPort}
    certificate-authority-data: ${b64('ca.crt')}
users:
- name: hm9k-admin
  user:
    client-certificate-data: ${b64('admin.crt')}
    client-key-data: ${b64('admin.key')}
contexts:
- name: hm9k-local
  context: {cluster: hm9k-local, user: hm9k-admin, namespace: default}
current-context: hm9k-local
`;
}

/** A small HTTPS client with the admin certificate, independent of client-node (used for readiness and CRD install). */
export function adminRequest(s: ControlPlaneState, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: s.apiPort,
        path,
        method,
        ca: readFileSync(join(s.dir, 'ca.crt')),
        cert: readFileSync(join(s.dir, 'admin.crt')),
        key: readFileSync(join(s.dir, 'admin.key')),
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        timeout: 10_000,
      },
      (res) => {
        let data = '';
        res.on('data', (c: Buffer) => (data += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

export class LocalControlPlane {
  private constructor(readonly state: ControlPlaneState, private readonly stateFile: string) {}

  /** Attaches to a control plane another process started (the tests' global setup). */
  static attach(stateFile: string): LocalControlPlane {
    return new LocalControlPlane(JSON.parse(readFileSync(stateFile, 'utf8')) as ControlPlaneState, stateFile);
  }

  static async start(opts: { dir?: string; apiExtraFlags?: string[]; installCrds?: boolean } = {}): Promise<LocalControlPlane> {
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'hm9k-cp-'));
    mkdirSync(dir, { recursive: true });
    generateCerts(dir);
    const state: ControlPlaneState = {
      dir,
      etcdPort: await freePort(),
      etcdPeerPort: await freePort(),
      apiPort: await freePort(),
      etcdPid: 0,
      apiPid: 0,
      kubeconfig: join(dir, 'kubeconfig'),
      apiExtraFlags: opts.apiExtraFlags ?? [],
    };
    const cp = new LocalControlPlane(state, join(dir, 'state.json'));
    try {
      await cp.startEtcd();
      await cp.startApiserver();
      writeFileSync(state.kubeconfig, kubeconfigText(dir, state.apiPort), { mode: 0o600 });
      if (opts.installCrds !== false) await cp.installCrds();
    } catch (err) {
      await cp.stop();
      throw err;
    }
    return cp;
  }

  get stateFilePath(): string {
    return this.stateFile;
  }

  private save(): void {
    writeFileSync(this.stateFile, JSON.stringify(this.state, null, 2));
  }

  async startEtcd(): Promise<void> {
    const s = this.state;
    const data = join(s.dir, 'etcd-data');
    const etcd = startProcess(
      findBinary('etcd'),
      [
        '--data-dir', data,
        '--listen-client-urls', `http://127.0.0.1:${s.etcdPort}`,
        '--advertise-client-urls', `http://127.0.0.1:${s.etcdPort}`,
        '--listen-peer-urls', `http://127.0.0.1:${s.etcdPeerPort}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${s.etcdPeerPort}`,
        '--initial-cluster', `default=http://127.0.0.1:${s.etcdPeerPort}`,
        '--unsafe-no-fsync',
        '--quota-backend-bytes', String(2 * 1024 ** 3),
      ],
      join(s.dir, 'etcd.log'),
    );
    s.etcdPid = etcd.pid;
    this.save();
    await waitFor('etcd health', async () => {
      const res = await fetch(`http://127.0.0.1:${s.etcdPort}/health`);
      return res.ok;
    }, 30_000);
  }

  async startApiserver(extraFlags: string[] = this.state.apiExtraFlags): Promise<void> {
    const s = this.state;
    s.apiExtraFlags = extraFlags;
    const api = startProcess(
      findBinary('kube-apiserver'),
      [
        '--advertise-address=127.0.0.1',
        '--bind-address=127.0.0.1',
        `--secure-port=${s.apiPort}`,
        `--etcd-servers=http://127.0.0.1:${s.etcdPort}`,
        `--cert-dir=${s.dir}`,
        `--tls-cert-file=${join(s.dir, 'apiserver.crt')}`,
        `--tls-private-key-file=${join(s.dir, 'apiserver.key')}`,
        `--client-ca-file=${join(s.dir, 'ca.crt')}`,
        `--service-account-key-file=${join(s.dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(s.dir, 'sa.key')}`,
        '--service-account-issuer=https://kubernetes.default.svc',
        '--service-cluster-ip-range=10.0.0.0/24',
        '--disable-admission-plugins=ServiceAccount',
        '--allow-privileged=true',
        '--authorization-mode=RBAC',
        '--enable-priority-and-fairness=false',
        '--endpoint-reconciler-type=none',
        ...extraFlags,
      ],
      join(s.dir, 'kube-apiserver.log'),
    );
    s.apiPid = api.pid;
    this.save();
    await waitFor(
      'kube-apiserver /readyz',
      async () => {
        if (!isAlive(s.apiPid)) throw new Error(`kube-apiserver exited; see ${join(s.dir, 'kube-apiserver.log')}`);
        return (await adminRequest(s, 'GET', '/readyz')).status === 200;
      },
      90_000,
      250,
    );
  }

  async stopApiserver(): Promise<void> {
    await killGroup(this.state.apiPid, 10_000);
  }

  async restartApiserver(extraFlags?: string[]): Promise<void> {
    await this.stopApiserver();
    await this.startApiserver(extraFlags);
  }

  /** Compacts etcd at its current revision, so that older resourceVersions answer 410 Gone. */
  async compactEtcd(): Promise<number> {
    const base = `http://127.0.0.1:${this.state.etcdPort}`;
    const range = await fetch(`${base}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('/').toString('base64'), range_end: Buffer.from('0').toString('base64'), limit: 1 }) });
    const rev = Number(((await range.json()) as { header: { revision: string } }).header.revision);
    const res = await fetch(`${base}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision: rev, physical: true }) });
    if (!res.ok) throw new Error(`etcd compaction failed: ${res.status} ${await res.text()}`);
    return rev;
  }

  async installCrds(): Promise<void> {
    const s = this.state;
    for (const crd of allCrds()) {
      const name = (crd.metadata as { name: string }).name;
      const existing = await adminRequest(s, 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      const res =
        existing.status === 200
          ? await adminRequest(s, 'PUT', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`, {
              ...crd,
              metadata: { ...(crd.metadata as object), resourceVersion: (JSON.parse(existing.body) as { metadata: { resourceVersion: string } }).metadata.resourceVersion },
            })
          : await adminRequest(s, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
      if (res.status >= 300) throw new Error(`installing CRD ${name}: ${res.status} ${res.body}`);
    }
    for (const crd of allCrds()) {
      const name = (crd.metadata as { name: string }).name;
      await waitFor(`CRD ${name} established`, async () => {
        const res = await adminRequest(s, 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
        const conds = (JSON.parse(res.body) as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions ?? [];
        return conds.some((c) => c.type === 'Established' && c.status === 'True');
      }, 30_000);
    }
  }

  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    await killGroup(this.state.apiPid, 10_000);
    await killGroup(this.state.etcdPid, 10_000);
    if (!opts.keepDir) rmSync(this.state.dir, { recursive: true, force: true });
  }
}
