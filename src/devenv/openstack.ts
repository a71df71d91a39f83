// A real OpenStack control plane from Debian bookworm's packages (Zed: Keystone 22, Nova 26, Placement 8,
// Glance 25, Neutron 21), on loopback, in a work directory, every service its own child process with
// config files written here: no systemd, nothing in /etc used. Plus one real nova-compute per compute
// node with Nova's fake virt driver (the one Nova's own functional tests run many of on one machine).
//
// Choices (issue 11), and why:
// - MariaDB, started as a plain mariadbd, not sqlite: nova-api, -conductor and -scheduler, Neutron,
//   Placement, Glance and Keystone are separate processes writing concurrently; sqlite serialises
//   writers per file and answers "database is locked" under that load (Nova's functional tests use
//   sqlite only because everything runs in ONE process there).
// - RabbitMQ, started as a plain rabbitmq-server with its own node name, ports, mnesia dir and its own
//   epmd (so that no epmd daemon outlives the stack): oslo.messaging has no broker-less transport
//   between processes.
// - neutron-server (ML2, no agents, no mechanism drivers): Nova Zed has no nova-network, and
//   evacuation (rebuild on the destination) lists the server's ports in Neutron
//   (setup_instance_network_on_host, get_instance_nw_info); servers boot with `networks: "none"`
//   (microversion 2.37) so no port is ever created. Neutron 21 in bookworm answers 500 on its first
//   GET /v2.0/ports ("type object 'Port' has no attribute 'port_forwardings'": SQLAlchemy backrefs
//   not configured yet) unless another query ran first: start() issues GET /v2.0/networks first.
// - uwsgi for the WSGI services (keystone-wsgi-public, nova-api-wsgi, placement-api) with
//   `Connection: close`: uwsgi's http-socket closes after each answer, and clients that reuse the
//   connection get ECONNRESET otherwise.
// - nova-compute is run from python3-nova's nova.cmd.compute, not Debian's nova-compute package: that
//   one depends on a hypervisor package (libvirt + qemu, or ironic); the fake driver needs neither.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { copyFile, cp, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tcpOpen } from './children.js';
import { binDir } from './controlplane.js';
import { freePort, isAlive, killGroup, startProcess, waitFor, type Started } from './procs.js';

const run = promisify(execFile);
/** Bump when the cached schema's making changes. */
const SCHEMA_REV = 2;

/** The ports a cached data directory was made with (they appear in Keystone's endpoint and Nova's cell mappings). */
interface CachedPorts { db: number; amqp: number; keystone: number }

/** Debian's Python: the services' own interpreter (a pyenv or venv python3 on the PATH lacks their modules). */
const PY = '/usr/bin/python3';
const RABBIT = '/usr/lib/rabbitmq/bin/rabbitmq-server';
const BINARIES = [
  'mariadbd', 'mariadb-install-db', 'mariadb', 'epmd', RABBIT, 'uwsgi', 'keystone-manage', '/usr/bin/keystone-wsgi-public',
  'placement-manage', '/usr/bin/placement-api', 'glance-manage', 'glance-api', 'neutron-db-manage', 'neutron-server',
  'nova-manage', '/usr/bin/nova-api-wsgi', 'nova-conductor', 'nova-scheduler',
];
/** The Debian packages that hold them (scripts/install-deps.sh installs these). */
export const OPENSTACK_PACKAGES = [
  'mariadb-server', 'rabbitmq-server', 'uwsgi-plugin-python3', 'keystone', 'placement-api', 'glance-api', 'neutron-server',
  'nova-api', 'nova-conductor', 'nova-scheduler', 'python3-pymysql',
];

function onPath(bin: string): boolean {
  if (bin.startsWith('/')) return existsSync(bin);
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => existsSync(join(d, bin))) || existsSync(join('/usr/sbin', bin));
}

/** undefined when the stack can run here, else which programs are missing (and how to get them). */
export function openStackMissing(): string | undefined {
  const missing = BINARIES.filter((b) => !onPath(b));
  if (!existsSync('/usr/lib/python3/dist-packages/nova/cmd/compute.py')) missing.push('python3-nova (nova.cmd.compute)');
  return missing.length ? `OpenStack packages missing (${missing.join(', ')}); run: bash scripts/install-deps.sh` : undefined;
}

export interface OpenStackOptions {
  /** Work directory (config, databases, logs); a new temporary one when unset. */
  dir?: string;
  /** Nova's [api] max_limit: the most items one list answer holds (Nova's default 1000). */
  maxLimit?: number;
  /** nova-compute's report_interval, seconds (Nova's default 10). */
  reportIntervalS?: number;
  /** Nova's service_down_time, seconds (Nova's default 60). */
  serviceDownTimeS?: number;
  /** Admin password for Keystone (and every service user). */
  password?: string;
}

export interface RealServer {
  id: string;
  name: string;
  status: string;
  host: string;
}

interface Service {
  name: string;
  proc: Started;
}

/** A service could not bind its port: another process took it after it was chosen. */
class PortTaken extends Error {}

const ks = (auth: string, pw: string) => [
  `auth_url = ${auth}`, 'auth_type = password', 'project_domain_name = Default', 'user_domain_name = Default',
  'project_name = service', 'username = svc', `password = ${pw}`, 'region_name = RegionOne',
].join('\n');

export class OpenStack {
  readonly dir: string;
  readonly password: string;
  readonly ports = { db: 0, epmd: 0, amqp: 0, dist: 0, keystone: 0, placement: 0, glance: 0, neutron: 0, nova: 0 };
  private services: Service[] = [];
  private computes = new Map<string, { proc: Started | undefined; paused: boolean }>();
  /** Set when start-up failed: the work directory (logs) stays for diagnosis. */
  private keepDir = false;
  private tokens = new Map<string, { value: string; at: number }>();
  imageId = '';
  flavorId = '';
  /** Seconds each phase of start() took (reported by the tests and the bench). */
  readonly timings: Record<string, number> = {};
  private o: Required<Omit<OpenStackOptions, 'dir'>>;

  /** Last resort when the owner exits without stop(): no service outlives it. */
  private readonly onExit = () => {
    for (const pid of [...this.services.map((x) => x.proc.pid), ...[...this.computes.values()].flatMap((c) => (c.proc ? [c.proc.pid] : []))]) {
      try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
    }
  };

  constructor(opts: OpenStackOptions = {}) {
    process.once('exit', this.onExit);
    this.dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'hm9k-openstack-'));
    this.o = { maxLimit: opts.maxLimit ?? 1000, reportIntervalS: opts.reportIntervalS ?? 2, serviceDownTimeS: opts.serviceDownTimeS ?? 10, password: opts.password ?? 'secret' };
    this.password = this.o.password;
  }

  get keystoneUrl() { return `http://127.0.0.1:${this.ports.keystone}/v3`; }
  get novaUrl() { return `http://127.0.0.1:${this.ports.nova}/v2.1`; }
  private get dbUrl() { return `mysql+pymysql://os:${this.o.password}@127.0.0.1:${this.ports.db}`; }
  private get amqpUrl() { return `rabbit://guest:guest@127.0.0.1:${this.ports.amqp}/`; }
  private log(name: string) { return join(this.dir, 'logs', `${name}.log`); }

  /** clouds.yaml for hm9k: the admin user of the admin project, public interface. */
  cloudsYaml(cloud = 'openstack'): string {
    return ['clouds:', `  ${cloud}:`, '    auth:', `      auth_url: ${this.keystoneUrl}`, '      username: admin', `      password: ${this.o.password}`,
      '      project_name: admin', '      user_domain_name: Default', '      project_domain_name: Default', '    region_name: RegionOne', '    interface: public', ''].join('\n');
  }

  /**
   * Starts the whole control plane and one nova-compute per host; resolves when every service answers.
   * A port taken by another process between choosing it and a service binding it (a shared machine)
   * is a start-up failure that is retried, twice, with fresh ports.
   */
  async start(hosts: string[]): Promise<void> {
    const missing = openStackMissing();
    if (missing) throw new Error(missing);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startOnce(hosts);
      } catch (err) {
        if (!(err instanceof PortTaken) || attempt >= 3) throw err;
        if (process.env.HM9K_OPENSTACK_VERBOSE) console.error(`openstack: ${err.message}; starting again with other ports`);
        await rm(this.dir, { recursive: true, force: true });
        await mkdir(this.dir, { recursive: true });
        this.keepDir = false;
        this.tokens.clear();
        process.once('exit', this.onExit);
      }
    }
  }

  private async startOnce(hosts: string[]): Promise<void> {
    const t0 = Date.now();
    const phase = (name: string, since: number) => { this.timings[name] = (Date.now() - since) / 1000; if (process.env.HM9K_OPENSTACK_VERBOSE) console.error(`openstack: ${name} ${this.timings[name]}s`); };
    // Distinct ports (the kernel may hand one out twice in a row once it is closed).
    const used = new Set<number>();
    for (const k of Object.keys(this.ports) as (keyof OpenStack['ports'])[]) {
      let p = await freePort();
      while (used.has(p)) p = await freePort();
      used.add(p);
      this.ports[k] = p;
    }
    for (const d of ['logs', 'db', 'rabbit', 'keystone/fernet', 'keystone/credential', 'nova', 'placement', 'glance/images', 'neutron']) await mkdir(join(this.dir, d), { recursive: true });
    try {
      let t = Date.now();
      await this.writeConfigs();
      const cached = await this.restoreSchema();
      await Promise.all([this.startDb(!!cached), this.startRabbit()]);
      phase('db+rabbit', t);
      t = Date.now();
      if (cached) await this.retargetPorts(cached);
      else await this.migrateAndCache();
      phase('migrations', t);
      t = Date.now();
      this.startKeystone();
      await this.waitHttp('keystone', `${this.keystoneUrl}`);
      await this.registerCatalog();
      phase('keystone', t);
      t = Date.now();
      this.startRest();
      await Promise.all([
        this.waitHttp('placement', `http://127.0.0.1:${this.ports.placement}/`),
        this.waitHttp('glance', `http://127.0.0.1:${this.ports.glance}/versions`),
        this.waitHttp('neutron', `http://127.0.0.1:${this.ports.neutron}/`),
        this.waitHttp('nova-api', `http://127.0.0.1:${this.ports.nova}/`),
      ]);
      // See the header: the first ports query would fail otherwise.
      await this.api('GET', `http://127.0.0.1:${this.ports.neutron}/v2.0/networks`);
      await this.uploadImage();
      this.flavorId = await this.createFlavor();
      phase('services', t);
      t = Date.now();
      for (const h of hosts) this.startCompute(h);
      await this.waitComputesUp(hosts);
      phase('computes', t);
      this.timings.total = (Date.now() - t0) / 1000;
    } catch (err) {
      this.keepDir = true;
      await this.stop(true);
      if (err instanceof PortTaken) throw err;
      throw new Error(`OpenStack start-up failed (logs kept in ${this.dir}/logs): ${(err as Error).message}`);
    }
  }

  private async exec(name: string, cmd: string, args: string[]): Promise<void> {
    try {
      await run(cmd, args, { cwd: this.dir, maxBuffer: 16 << 20, env: this.env() });
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`${name} ${args.filter((a) => !a.startsWith('--bootstrap-password') && a !== this.o.password).slice(-3).join(' ')} failed: ${(e.stderr ?? e.message).split('\n').filter(Boolean).slice(-5).join(' | ')}`);
    }
  }

  private async manage(cmd: string, args: string[][]): Promise<void> {
    for (const a of args) await this.exec(cmd, cmd, a);
  }

  /**
   * The schema migrations and bootstraps (minutes on a loaded 2-core machine) run once per set of
   * package versions: the MariaDB data directory and Keystone's keys are kept in ~/.cache/hm9k and
   * copied for each start; the two places that name ports (Keystone's own endpoint, Nova's cell
   * mappings) are rewritten for this run's ports (retargetPorts).
   */
  private async schemaCacheDir(): Promise<string> {
    const pkgs = ['python3-nova', 'python3-keystone', 'python3-glance', 'python3-neutron', 'python3-placement', 'mariadb-server-core'];
    const v = (await run('dpkg-query', ['-W', '-f', '${Package}=${Version};', ...pkgs])).stdout;
    const key = createHash('sha256').update(`${SCHEMA_REV};${this.o.password};${v}`).digest('hex').slice(0, 16);
    return join(binDir(), '..', `openstack-schema-${key}`);
  }

  /** Copies the cached data directory and keys into this run's; the ports they were made with, or undefined. */
  private async restoreSchema(): Promise<CachedPorts | undefined> {
    const cache = await this.schemaCacheDir();
    if (!existsSync(join(cache, 'complete'))) return undefined;
    for (const d of ['db', 'keystone/fernet', 'keystone/credential']) {
      await rm(join(this.dir, d), { recursive: true, force: true });
      await cp(join(cache, d), join(this.dir, d), { recursive: true });
    }
    return JSON.parse(await readFile(join(cache, 'ports.json'), 'utf8')) as CachedPorts;
  }

  private async retargetPorts(old: CachedPorts): Promise<void> {
    const p = this.ports;
    const q = (v: string) => `'${v.replace(/'/g, "''")}'`;
    const swap = (col: string, from: string, to: string) => `${col} = REPLACE(${col}, ${q(from)}, ${q(to)})`;
    await this.exec('mariadb', 'mariadb', ['--no-defaults', '-S', join(this.dir, 'mysql.sock'), '-uroot', '-e', [
      `UPDATE keystone.endpoint SET ${swap('url', `127.0.0.1:${old.keystone}/`, `127.0.0.1:${p.keystone}/`)}`,
      `UPDATE nova_api.cell_mappings SET ${swap('database_connection', `127.0.0.1:${old.db}/`, `127.0.0.1:${p.db}/`)}, ${swap('transport_url', `127.0.0.1:${old.amqp}/`, `127.0.0.1:${p.amqp}/`)}`,
    ].join('; ')]);
  }

  private async migrateAndCache(): Promise<void> {
    const d = this.dir;
    const cell0 = join(d, 'nova/cell0.conf');
    await writeFile(cell0, `[database]\nconnection = ${this.dbUrl}/nova_cell0\n`);
    const nc = ['--config-file', join(d, 'nova/nova.conf')];
    // In parallel (each is its own database). Nova's cell databases with --local_cell: no mappings needed.
    await Promise.all([
      this.manage('keystone-manage', [['--config-file', join(d, 'keystone/keystone.conf'), 'db_sync']]),
      this.manage('placement-manage', [['--config-file', join(d, 'placement/placement.conf'), 'db', 'sync']]),
      this.manage('glance-manage', [['--config-file', join(d, 'glance/glance-api.conf'), 'db_sync']]),
      this.manage('neutron-db-manage', [['--config-file', join(d, 'neutron/neutron.conf'), '--config-file', join(d, 'neutron/ml2.ini'), 'upgrade', 'heads']]),
      this.manage('nova-manage', [[...nc, 'api_db', 'sync'], [...nc, 'db', 'sync', '--local_cell'], [...nc, '--config-file', cell0, 'db', 'sync', '--local_cell'],
        [...nc, 'cell_v2', 'map_cell0', '--database_connection', `${this.dbUrl}/nova_cell0`], [...nc, 'cell_v2', 'create_cell', '--name', 'cell1']]),
    ]);
    const kc = ['--config-file', join(d, 'keystone/keystone.conf')];
    const me = userInfo().username;
    const group = (await run('id', ['-gn'])).stdout.trim();
    await this.manage('keystone-manage', [[...kc, 'fernet_setup', '--keystone-user', me, '--keystone-group', group],
      [...kc, 'credential_setup', '--keystone-user', me, '--keystone-group', group],
      [...kc, 'bootstrap', '--bootstrap-password', this.o.password, '--bootstrap-region-id', 'RegionOne',
        ...['admin', 'internal', 'public'].flatMap((i) => [`--bootstrap-${i}-url`, this.keystoneUrl])]]);
    // A clean copy needs a stopped server: stop, copy, start again.
    const db = this.services.find((s) => s.name === 'mariadb')!;
    await this.exec('mariadb-admin', 'mariadb-admin', ['--no-defaults', '-S', join(d, 'mysql.sock'), '-uroot', 'shutdown']);
    await waitFor('mariadb shutdown', () => !isAlive(db.proc.pid), 60_000, 100);
    this.services = this.services.filter((s) => s !== db);
    const cache = await this.schemaCacheDir();
    const tmp = `${cache}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(join(tmp, 'keystone'), { recursive: true });
    for (const x of ['db', 'keystone/fernet', 'keystone/credential']) await cp(join(d, x), join(tmp, x), { recursive: true });
    const ports: CachedPorts = { db: this.ports.db, amqp: this.ports.amqp, keystone: this.ports.keystone };
    await writeFile(join(tmp, 'ports.json'), JSON.stringify(ports));
    await writeFile(join(tmp, 'complete'), new Date().toISOString());
    await rename(tmp, cache).catch(async () => rm(tmp, { recursive: true, force: true })); // another run won the race
    await this.startDb(true);
  }

  /** Children get no OS_* variables from the caller (a developer's openrc must not leak in). */
  private env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OS_') && !k.startsWith('RABBITMQ_') && !k.startsWith('PYTHON')) env[k] = v;
    return { ...env, ...extra };
  }

  private spawn(name: string, cmd: string, args: string[], env: Record<string, string> = {}): Started {
    const proc = startProcess(cmd, args, this.log(name), { cwd: this.dir, env: this.env(env) });
    this.services.push({ name, proc });
    return proc;
  }

  private async startDb(initialised: boolean): Promise<void> {
    const data = join(this.dir, 'db');
    if (!initialised) await this.exec('mariadb-install-db', 'mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db', `--user=${userInfo().username}`]);
    const sock = join(this.dir, 'mysql.sock');
    this.spawn('mariadb', 'mariadbd', ['--no-defaults', `--datadir=${data}`, `--socket=${sock}`, `--port=${this.ports.db}`, '--bind-address=127.0.0.1',
      `--user=${userInfo().username}`, '--skip-name-resolve', '--innodb-buffer-pool-size=64M', '--innodb-flush-log-at-trx-commit=0', '--skip-log-bin',
      '--max-connections=1000', `--pid-file=${join(this.dir, 'mysql.pid')}`]);
    const sql = [`CREATE USER 'os'@'127.0.0.1' IDENTIFIED BY '${this.o.password}'`, "GRANT ALL ON *.* TO 'os'@'127.0.0.1'",
      ...['keystone', 'nova_api', 'nova', 'nova_cell0', 'placement', 'glance', 'neutron'].map((d) => `CREATE DATABASE ${d}`)].join('; ');
    await waitFor('mariadb', async () => { await run('mariadb', ['--no-defaults', '-S', sock, '-uroot', '-e', 'SELECT 1']); return true; }, 60_000, 200);
    if (!initialised) await this.exec('mariadb', 'mariadb', ['--no-defaults', '-S', sock, '-uroot', '-e', sql]);
  }

  private async startRabbit(): Promise<void> {
    const d = join(this.dir, 'rabbit');
    await writeFile(join(d, 'enabled_plugins'), '[].\n');
    await writeFile(join(d, 'rabbitmq.conf'), `loopback_users = none\nlisteners.tcp.default = ${this.ports.amqp}\n`);
    await writeFile(join(d, 'rabbitmq-env.conf'), '');
    const env = {
      HOME: d, ERL_EPMD_PORT: String(this.ports.epmd), RABBITMQ_NODENAME: `hm9k${this.ports.amqp}@localhost`, RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.ports.amqp), RABBITMQ_DIST_PORT: String(this.ports.dist), RABBITMQ_MNESIA_BASE: join(d, 'mnesia'),
      RABBITMQ_LOG_BASE: join(d, 'log'), RABBITMQ_CONFIG_FILE: join(d, 'rabbitmq'), RABBITMQ_ENABLED_PLUGINS_FILE: join(d, 'enabled_plugins'),
      RABBITMQ_PID_FILE: join(d, 'pid'), RABBITMQ_CONF_ENV_FILE: join(d, 'rabbitmq-env.conf'), RABBITMQ_ADVANCED_CONFIG_FILE: join(d, 'advanced.config'),
    };
    // Our own epmd in the foreground, so teardown reaches it (rabbit would start a daemonised one).
    this.spawn('epmd', 'epmd', ['-port', String(this.ports.epmd)], { HOME: d });
    await waitFor('epmd', () => tcpOpen(this.ports.epmd), 20_000, 100);
    this.spawn('rabbitmq', RABBIT, [], env);
    await waitFor('rabbitmq', async () => (await readFile(this.log('rabbitmq'), 'utf8')).includes('Starting broker... completed'), 120_000, 200);
  }

  private async writeConfigs(): Promise<void> {
    const pw = this.o.password;
    const auth = ks(this.keystoneUrl, pw);
    const authtoken = `[keystone_authtoken]\nwww_authenticate_uri = ${this.keystoneUrl}\n${auth}\n`;
    const d = this.dir;
    await writeFile(join(d, 'keystone/keystone.conf'), [
      '[DEFAULT]', `log_file = ${this.log('keystone')}`, '[database]', `connection = ${this.dbUrl}/keystone`,
      '[token]', 'provider = fernet', '[fernet_tokens]', `key_repository = ${d}/keystone/fernet`, '[fernet_receipts]', `key_repository = ${d}/keystone/fernet`,
      '[credential]', `key_repository = ${d}/keystone/credential`, ''].join('\n'));
    await writeFile(join(d, 'placement/placement.conf'), [
      '[DEFAULT]', `log_file = ${this.log('placement')}`, '[placement_database]', `connection = ${this.dbUrl}/placement`, '[api]', 'auth_strategy = keystone', authtoken].join('\n'));
    await writeFile(join(d, 'glance/glance-api.conf'), [
      '[DEFAULT]', `log_file = ${this.log('glance')}`, 'bind_host = 127.0.0.1', `bind_port = ${this.ports.glance}`, 'workers = 1', `image_cache_dir = ${d}/glance/cache`,
      '[database]', `connection = ${this.dbUrl}/glance`, '[paste_deploy]', 'flavor = keystone', 'config_file = /etc/glance/glance-api-paste.ini',
      '[glance_store]', 'stores = file', 'default_store = file', `filesystem_store_datadir = ${d}/glance/images`,
      '[oslo_concurrency]', `lock_path = ${d}/glance`, authtoken].join('\n'));
    await writeFile(join(d, 'neutron/neutron.conf'), [
      '[DEFAULT]', `log_file = ${this.log('neutron')}`, 'bind_host = 127.0.0.1', `bind_port = ${this.ports.neutron}`, 'core_plugin = ml2',
      // port_forwarding: its model defines Port.port_forwardings, which get_ports needs.
      'service_plugins = router,port_forwarding', 'auth_strategy = keystone', `transport_url = ${this.amqpUrl}`, 'api_workers = 1', 'rpc_workers = 0',
      'rpc_state_report_workers = 0', 'notify_nova_on_port_status_changes = false', 'notify_nova_on_port_data_changes = false',
      '[database]', `connection = ${this.dbUrl}/neutron`, '[oslo_concurrency]', `lock_path = ${d}/neutron`, authtoken].join('\n'));
    await writeFile(join(d, 'neutron/ml2.ini'), '[ml2]\ntype_drivers = flat\ntenant_network_types =\nmechanism_drivers =\nextension_drivers =\n');
    await copyFile('/etc/nova/api-paste.ini', join(d, 'nova/api-paste.ini'));
    await writeFile(join(d, 'nova/nova.conf'), [
      '[DEFAULT]', `transport_url = ${this.amqpUrl}`, 'compute_driver = fake.FakeDriver', `state_path = ${d}/nova`, 'my_ip = 127.0.0.1',
      `report_interval = ${this.o.reportIntervalS}`, `service_down_time = ${this.o.serviceDownTimeS}`, 'heal_instance_info_cache_interval = -1',
      '[api]', 'auth_strategy = keystone', `max_limit = ${this.o.maxLimit}`,
      '[api_database]', `connection = ${this.dbUrl}/nova_api`, '[database]', `connection = ${this.dbUrl}/nova`,
      '[conductor]', 'workers = 1', '[scheduler]', 'workers = 1', 'discover_hosts_in_cells_interval = 1', '[filter_scheduler]', 'enabled_filters = ComputeFilter',
      // Nova's default quota (10 instances, 20 cores per project) would stop the 50-server bench.
      '[quota]', 'instances = -1', 'cores = -1', 'ram = -1',
      '[oslo_concurrency]', `lock_path = ${d}/nova`, '[oslo_messaging_notifications]', 'driver = noop',
      '[wsgi]', 'api_paste_config = /etc/nova/api-paste.ini', '[vnc]', 'enabled = false', '[glance]', 'region_name = RegionOne',
      '[placement]', auth, '[neutron]', auth, authtoken].join('\n'));
  }

  private uwsgi(name: string, port: number, wsgiFile: string, env: Record<string, string>, processes = 1, threads = 4): void {
    this.spawn(name, 'uwsgi', ['--plugin', 'python3', '--http-socket', `127.0.0.1:${port}`, '--wsgi-file', wsgiFile, '--master', '--processes', String(processes),
      '--threads', String(threads), '--enable-threads', '--die-on-term', '--lazy-apps', '--buffer-size', '65535', '--add-header', 'Connection: close'], env);
  }

  private startKeystone(): void {
    this.uwsgi('keystone-uwsgi', this.ports.keystone, '/usr/bin/keystone-wsgi-public', { OS_KEYSTONE_CONFIG_DIR: join(this.dir, 'keystone'), OS_KEYSTONE_CONFIG_FILES: 'keystone.conf' });
  }

  private startRest(): void {
    const d = this.dir;
    const nc = ['--config-file', join(d, 'nova/nova.conf')];
    this.uwsgi('placement-uwsgi', this.ports.placement, '/usr/bin/placement-api', { OS_PLACEMENT_CONFIG_DIR: join(d, 'placement') });
    this.spawn('glance-api', 'glance-api', ['--config-file', join(d, 'glance/glance-api.conf')]);
    this.spawn('neutron-server', 'neutron-server', ['--config-file', join(d, 'neutron/neutron.conf'), '--config-file', join(d, 'neutron/ml2.ini')]);
    // One thread per process: nova-api is eventlet-patched, and with several uwsgi threads a greenlet
    // switch across threads ("greenlet.error: cannot switch to a different thread", seen under load)
    // leaves the worker hung for good. Concurrency comes from processes instead.
    this.uwsgi('nova-api', this.ports.nova, '/usr/bin/nova-api-wsgi', { OS_NOVA_CONFIG_DIR: join(d, 'nova') }, 3, 1);
    this.spawn('nova-conductor', 'nova-conductor', [...nc, '--log-file', this.log('nova-conductor-oslo')]);
    this.spawn('nova-scheduler', 'nova-scheduler', [...nc, '--log-file', this.log('nova-scheduler-oslo')]);
  }

  /**
   * Waits until `url` answers below 500. A service that exited or could not bind its port fails at once
   * (checked before each request, outside the retried part: another process on a taken port would
   * answer in the service's stead).
   */
  private async waitHttp(what: string, url: string, timeoutMs = 600_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      for (const s of this.services) {
        if (existsSync(s.proc.logFile) && /Address already in use/i.test(readFileSync(s.proc.logFile, 'utf8'))) throw new PortTaken(`${s.name}: its port is taken (Address already in use)`);
        if (!isAlive(s.proc.pid)) throw new Error(`${s.name} exited; see ${s.proc.logFile}`);
      }
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
        await r.arrayBuffer();
        if (r.status < 500) return;
        last = `HTTP ${r.status}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${url}): ${last}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The admin user's token scoped to `project`, cached for 10 minutes. */
  async token(project = 'admin'): Promise<string> {
    const cached = this.tokens.get(project);
    if (cached && Date.now() - cached.at < 600_000) return cached.value;
    const r = await fetch(`${this.keystoneUrl}/auth/tokens`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(30_000),
      body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: this.o.password } } }, scope: { project: { name: project, domain: { id: 'default' } } } } }),
    });
    await r.arrayBuffer();
    const t = r.headers.get('x-subject-token');
    if (r.status !== 201 || !t) throw new Error(`keystone auth: HTTP ${r.status}`);
    this.tokens.set(project, { value: t, at: Date.now() });
    return t;
  }

  /** An admin API call; throws on HTTP >= 400 with the body. */
  async api<T = unknown>(method: string, url: string, body?: unknown, opts: { microversion?: string; raw?: Blob; expect?: number[]; project?: string } = {}): Promise<T> {
    const headers: Record<string, string> = { 'x-auth-token': await this.token(opts.project) };
    if (opts.microversion) headers['openstack-api-version'] = `compute ${opts.microversion}`;
    if (opts.raw) headers['content-type'] = 'application/octet-stream';
    else if (body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(url, { method, headers, body: opts.raw ?? (body === undefined ? undefined : JSON.stringify(body)), signal: AbortSignal.timeout(60_000) });
    const text = await r.text();
    if (r.status >= 400 && !opts.expect?.includes(r.status)) throw new Error(`${method} ${url}: HTTP ${r.status} ${text.slice(0, 300)}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  nova<T = unknown>(method: string, path: string, body?: unknown, microversion = '2.93', project = 'admin'): Promise<T> {
    return this.api<T>(method, `${this.novaUrl}${path}`, body, { microversion, project });
  }

  private async registerCatalog(): Promise<void> {
    const k = this.keystoneUrl;
    const id = async (path: string, key: string, body: unknown) => (await this.api<Record<string, { id: string }>>('POST', `${k}${path}`, body))[key]!.id;
    const roles = await this.api<{ roles: { id: string; name: string }[] }>('GET', `${k}/roles`);
    const role = (n: string) => roles.roles.find((r) => r.name === n)!.id;
    const service = await id('/projects', 'project', { project: { name: 'service', domain_id: 'default' } });
    const demo = await id('/projects', 'project', { project: { name: 'demo', domain_id: 'default' } });
    const svc = await id('/users', 'user', { user: { name: 'svc', domain_id: 'default', password: this.o.password } });
    const admin = (await this.api<{ users: { id: string }[] }>('GET', `${k}/users?name=admin`)).users[0]!.id;
    await this.api('PUT', `${k}/projects/${service}/users/${svc}/roles/${role('admin')}`);
    // Servers live in the demo project; the admin user may act there (booting on a named host is admin-only).
    await this.api('PUT', `${k}/projects/${demo}/users/${admin}/roles/${role('admin')}`);
    const endpoints: [string, string, string][] = [
      ['nova', 'compute', this.novaUrl], ['placement', 'placement', `http://127.0.0.1:${this.ports.placement}`],
      ['glance', 'image', `http://127.0.0.1:${this.ports.glance}`], ['neutron', 'network', `http://127.0.0.1:${this.ports.neutron}`],
    ];
    for (const [name, type, url] of endpoints) {
      const sid = await id('/services', 'service', { service: { name, type, enabled: true } });
      for (const iface of ['public', 'internal', 'admin']) await id('/endpoints', 'endpoint', { endpoint: { service_id: sid, interface: iface, url, region_id: 'RegionOne', enabled: true } });
    }
  }

  private async uploadImage(): Promise<void> {
    const g = `http://127.0.0.1:${this.ports.glance}/v2/images`;
    const img = await this.api<{ id: string }>('POST', g, { name: 'tiny', disk_format: 'raw', container_format: 'bare', visibility: 'public' });
    await this.api('PUT', `${g}/${img.id}/file`, undefined, { raw: new Blob([new Uint8Array(1024)]) });
    this.imageId = img.id;
  }

  private async createFlavor(): Promise<string> {
    const r = await this.nova<{ flavor: { id: string } }>('POST', '/flavors', { flavor: { name: 'tiny', ram: 64, vcpus: 1, disk: 0 } });
    return r.flavor.id;
  }

  // ---- nova-compute per host ----

  /** Starts (or restarts) host's nova-compute: a powered-on host. */
  startCompute(host: string): void {
    const c = this.computes.get(host);
    if (c?.proc && isAlive(c.proc.pid)) return;
    const conf = join(this.dir, 'nova', `compute-${host}.conf`);
    writeFileSync(conf, `[DEFAULT]\nhost = ${host}\n`);
    const proc = startProcess(PY, ['-I', '-c', 'import sys; from nova.cmd.compute import main; sys.argv[0] = "nova-compute"; sys.exit(main())',
      '--config-file', join(this.dir, 'nova/nova.conf'), '--config-file', conf, '--log-file', this.log(`nova-compute-${host}`)],
    this.log(`nova-compute-${host}-stdout`), { cwd: this.dir, env: this.env() });
    this.computes.set(host, { proc, paused: false });
  }

  /** SIGKILLs host's nova-compute: the host lost power. */
  async killCompute(host: string): Promise<void> {
    const c = this.computes.get(host);
    if (!c?.proc) return;
    try { process.kill(-c.proc.pid, 'SIGCONT'); } catch { /* gone */ }
    await killGroup(c.proc.pid, 0);
    c.proc = undefined;
    c.paused = false;
  }

  /** SIGSTOP / SIGCONT: the host is up but its management network is gone (no reports, no RPC). */
  pauseCompute(host: string, paused: boolean): void {
    const c = this.computes.get(host);
    if (!c?.proc || c.paused === paused) return;
    try { process.kill(-c.proc.pid, paused ? 'SIGSTOP' : 'SIGCONT'); } catch { /* gone */ }
    c.paused = paused;
  }

  /** The pid of host's nova-compute (a new one after each power cycle), undefined while powered off. */
  computePid(host: string): number | undefined {
    return this.computes.get(host)?.proc?.pid;
  }

  computeRunning(host: string): boolean {
    const c = this.computes.get(host);
    return !!c?.proc && isAlive(c.proc.pid) && !c.paused;
  }

  /** Resolves when every host's nova-compute is up in os-services and mapped (in os-hypervisors). */
  async waitComputesUp(hosts: string[], timeoutMs = 600_000): Promise<void> {
    await waitFor('nova-compute services up', async () => {
      for (const h of hosts) {
        const c = this.computes.get(h);
        if (c?.proc && !isAlive(c.proc.pid)) throw new Error(`nova-compute ${h} exited; see ${this.log(`nova-compute-${h}`)}`);
      }
      const s = await this.nova<{ services: { host: string; state: string }[] }>('GET', '/os-services?binary=nova-compute');
      // os-hypervisors lists only hosts mapped to a cell: the scheduler maps new ones every second.
      const hv = await this.list<{ hypervisor_hostname: string }>('/os-hypervisors', 'hypervisors');
      return hosts.every((h) => s.services.some((x) => x.host === h && x.state === 'up') && hv.some((x) => x.hypervisor_hostname === h));
    }, timeoutMs, 500);
  }

  /**
   * Every nova-compute service no longer forced down and enabled again (what an operator does after a
   * fence). Real Nova refuses to force a host up (400) while `done` evacuation migrations from it
   * remain: its nova-compute must have started again and cleaned them up (done -> completed) first,
   * so a 400 is retried until `timeoutMs`.
   */
  async resetComputeServices(timeoutMs = 300_000): Promise<void> {
    await waitFor('nova-compute services un-forced and enabled', async () => {
      const s = await this.nova<{ services: { id: string; forced_down: boolean; status: string }[] }>('GET', '/os-services?binary=nova-compute');
      let done = true;
      for (const x of s.services) {
        if (x.forced_down) {
          const r = await this.api('PUT', `${this.novaUrl}/os-services/${x.id}`, { forced_down: false }, { microversion: '2.93', expect: [400] });
          if (r && typeof r === 'object' && 'badRequest' in r) { done = false; continue; }
        }
        if (x.status !== 'enabled') await this.nova('PUT', `/os-services/${x.id}`, { status: 'enabled' });
      }
      return done;
    }, timeoutMs, 1000);
  }

  /**
   * Points the catalog's public compute endpoint at `url` (e.g. a recording proxy in front of
   * nova-api); hm9k reads the public interface. The services themselves keep using nova-api directly.
   */
  async setPublicComputeEndpoint(url: string): Promise<void> {
    const k = this.keystoneUrl;
    const svc = (await this.api<{ services: { id: string }[] }>('GET', `${k}/services?type=compute`)).services[0]!;
    const eps = (await this.api<{ endpoints: { id: string }[] }>('GET', `${k}/endpoints?service_id=${svc.id}&interface=public`)).endpoints;
    for (const e of eps) await this.api('PATCH', `${k}/endpoints/${e.id}`, { endpoint: { url } });
  }

  // ---- servers ----

  /**
   * Boots `count` servers on `host` through the real API and scheduler (admin, in the demo project,
   * `host` at microversion 2.74, no network at 2.37); `stopped` ones are then stopped. Resolves when
   * all are ACTIVE (or SHUTOFF).
   */
  async bootServers(host: string, names: string[], opts: { stopped?: boolean } = {}): Promise<RealServer[]> {
    const ids: string[] = [];
    for (const name of names) {
      const r = await this.nova<{ server: { id: string } }>('POST', '/servers', { server: { name, imageRef: this.imageId, flavorRef: this.flavorId, networks: 'none', host } }, '2.74', 'demo');
      ids.push(r.server.id);
    }
    const wait = async (want: string) => waitFor(`servers ${names.join(',')} ${want}`, async () => {
      const all = await Promise.all(ids.map((id) => this.server(id)));
      const bad = all.find((s) => s.status === 'ERROR');
      if (bad) {
        const full = (await this.nova<{ server: { fault?: { message?: string; details?: string } } }>('GET', `/servers/${bad.id}`)).server;
        throw new Error(`server ${bad.name} went to ERROR: ${full.fault?.message ?? 'no fault recorded'}${full.fault?.details ? ` (${full.fault.details.slice(0, 500)})` : ''}`);
      }
      return all.every((s) => s.status === want);
    }, 180_000, 500);
    await wait('ACTIVE');
    if (opts.stopped) {
      for (const id of ids) await this.nova('POST', `/servers/${id}/action`, { 'os-stop': null });
      await wait('SHUTOFF');
    }
    return Promise.all(ids.map((id) => this.server(id)));
  }

  async server(id: string): Promise<RealServer> {
    const s = (await this.nova<{ server: Record<string, string> }>('GET', `/servers/${id}`)).server;
    return { id: s.id!, name: s.name!, status: s.status!, host: s['OS-EXT-SRV-ATTR:host'] ?? '' };
  }

  /** A whole Nova list, following its `<key>_links` next links (max_limit pages every list). */
  async list<T>(path: string, key: string): Promise<T[]> {
    const out: T[] = [];
    let url: string | undefined = `${this.novaUrl}${path}`;
    for (let pages = 0; url; pages++) {
      if (pages > 10_000) throw new Error(`${path}: more than 10000 pages`);
      const r: Record<string, unknown> = await this.api('GET', url, undefined, { microversion: '2.93' });
      out.push(...(r[key] as T[]));
      url = (r[`${key}_links`] as { rel: string; href: string }[] | undefined)?.find((l) => l.rel === 'next')?.href;
    }
    return out;
  }

  /** Every server (all projects). */
  async servers(): Promise<RealServer[]> {
    return (await this.list<Record<string, string>>('/servers/detail?all_tenants=1', 'servers'))
      .map((s) => ({ id: s.id!, name: s.name!, status: s.status!, host: s['OS-EXT-SRV-ATTR:host'] ?? '' }));
  }

  /** Evacuation migrations, all of them. */
  migrations(): Promise<{ id: number; instance_uuid: string; status: string; source_compute: string; dest_compute: string | null; created_at: string; updated_at: string }[]> {
    return this.list('/os-migrations?migration_type=evacuation', 'migrations');
  }

  /** Resident memory (MiB) of every process of the stack, from /proc. */
  async memoryMiB(): Promise<number> {
    let kb = 0;
    const pgids = new Set([...this.services.map((s) => s.proc.pid), ...[...this.computes.values()].flatMap((c) => (c.proc ? [c.proc.pid] : []))]);
    for (const p of await readdir('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      try {
        const stat = await readFile(`/proc/${p}/stat`, 'utf8');
        const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
        if (!pgids.has(pgid)) continue;
        const m = /VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${p}/status`, 'utf8'));
        kb += Number(m?.[1] ?? 0);
      } catch { /* exited */ }
    }
    return Math.round(kb / 1024);
  }

  /** Stops every process (computes first), then removes the work directory unless `keep`. */
  async stop(keep = !!process.env.HM9K_KEEP_OPENSTACK): Promise<void> {
    await Promise.all([...this.computes.keys()].map((h) => this.killCompute(h)));
    const order = ['nova-api', 'nova-conductor', 'nova-scheduler', 'neutron-server', 'glance-api', 'placement-uwsgi', 'keystone-uwsgi'];
    const first = this.services.filter((s) => order.includes(s.name));
    await Promise.all(first.map((s) => killGroup(s.proc.pid, 10_000)));
    const rest = this.services.filter((s) => !order.includes(s.name));
    await Promise.all(rest.filter((s) => s.name !== 'epmd').map((s) => killGroup(s.proc.pid, 15_000)));
    await Promise.all(rest.filter((s) => s.name === 'epmd').map((s) => killGroup(s.proc.pid, 2_000)));
    this.services = [];
    process.removeListener('exit', this.onExit);
    if (!keep && !this.keepDir) await rm(this.dir, { recursive: true, force: true });
  }
}
