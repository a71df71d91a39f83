// `hm9k demo` (npm run demo): the whole product on loopback. It checks what it needs, starts the world
// (local control plane, NATS, etcd, the Cloud Controller and DEA simulators, Nova/Keystone and Consul
// simulators, one ipmi_sim BMC per compute node, sshd, SMTP), applies the samples in examples/, runs
// hm9k as two real processes (`hm9k run --apps`, `hm9k run --nodes`) and plays scripted incidents,
// each asserting its outcome. Ctrl-C (or SIGTERM) tears everything down, leaving no process behind.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CustomObjectsApi } from '../kube/client.js';
import { GROUP, VERSION, type AppHealthPolicy, type ComputeNode, type DesiredApp } from '../api/index.js';
import { ControllerProcess } from './controllers.js';
import { Checks, INCIDENTS, IncidentFailed, selectIncidents, type Ctx, type Incident } from './incidents.js';
import { Narrator, Observer } from './narrator.js';
import { preflight, which } from './preflight.js';
import { applyResources, readExamples, substituteComputeNode, substituteFencePolicy } from './resources.js';
import { CREDENTIALS, DEMO_APPS, DemoWorld, NAMESPACE } from './world.js';

export { INCIDENTS } from './incidents.js';

const USAGE = `Usage: hm9k demo [--script all|none|NAME[,NAME...]] [--exit] [--interactive] [--install] [--keep] [--nova-sim]

  --script       incidents to play (default: all; none with --interactive):
${INCIDENTS.map((i) => `                   ${i.name.padEnd(13)} ${i.title}`).join('\n')}
  --exit         exit when the incidents are done: code 0 only if every assertion held
  --interactive  keep the world running and trigger incidents by typing their names
  --install      run the project's install scripts for whatever is missing (real OpenStack included)
  --nova-sim     the Nova/Keystone simulator instead of real OpenStack (faster start, less memory)
  --keep         keep the demo's directory (configs, logs, kubeconfig) after it ends
  --examples DIR apply the samples from DIR instead of examples/ (same file names)
Without --exit the world keeps running after the incidents until Ctrl-C.
`;

/** The repository root (this file is src/demo/index.ts, or dist/demo/index.js when built). */
function repoRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/**
 * SIGKILLs every direct child of this process, with its process group when it leads one (the
 * detached control plane and hm9k processes): the backstop at exit and on a second Ctrl-C.
 */
function killChildrenSync(): void {
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((e) => /^[0-9]+$/.test(e));
  } catch {
    return;
  }
  for (const e of entries) {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const [, ppid, pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
      if (ppid !== process.pid) continue;
      const pid = Number(e);
      if (pgid === pid) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      script: { type: 'string' },
      exit: { type: 'boolean' },
      interactive: { type: 'boolean', short: 'i' },
      install: { type: 'boolean' },
      keep: { type: 'boolean' },
      examples: { type: 'string' },
      'nova-sim': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const incidents = selectIncidents(values.script ?? (values.interactive ? 'none' : 'all'));
  const root = repoRoot();
  const out = (s: string) => process.stdout.write(s);
  const n = new Narrator(out);

  try {
    preflight({ install: values.install === true, root, out, openstack: values['nova-sim'] !== true });
  } catch (err) {
    process.stderr.write((err as Error).message.endsWith('\n') ? (err as Error).message : `hm9k demo: ${(err as Error).message}\n`);
    return 3;
  }
  const natsBin = which('nats-server')!;
  const ipmitool = which('ipmitool')!;

  const dir = mkdtempSync(join(tmpdir(), 'hm9k-demo-'));
  const stop = new AbortController();
  const world = new DemoWorld({ dir, nodes: 0, natsBin, nova: values['nova-sim'] ? 'sim' : 'auto', step: (what) => n.say('demo', `starting ${what}`) });
  const controllers: ControllerProcess[] = [];
  let observer: Observer | undefined;
  let signalled: NodeJS.Signals | undefined;
  let tornDown = false;

  const onExit = () => {
    if (!tornDown) killChildrenSync();
  };
  process.on('exit', onExit);
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      n.say('demo', `${sig} again: killing everything now`);
      killChildrenSync();
      process.exit(130);
    }
    signalled = sig;
    n.say('demo', `${sig}: tearing the world down (again to force)`);
    stop.abort(new Error(sig));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const teardown = async (ok: boolean) => {
    observer?.stop();
    n.say('demo', 'stopping hm9k (SIGTERM: each process releases its Lease and exits)');
    await Promise.all(controllers.map((c) => c.stop().catch(() => undefined)));
    n.say('demo', 'stopping the world: simulators, BMCs, sshd, SMTP, etcd, NATS, control plane');
    await world.stop();
    killChildrenSync(); // anything that did not stop by itself
    tornDown = true;
    if (ok && !values.keep) rmSync(dir, { recursive: true, force: true });
    else n.say('demo', `configs, logs and kubeconfig kept in ${dir}`);
    n.say('demo', 'everything stopped');
  };

  let code = 0;
  try {
    // The examples are read (and checked) before anything starts.
    const examplesDir = values.examples ? resolve(values.examples) : join(root, 'examples');
    const examples = readExamples(examplesDir);
    world.o.nodes = examples.computeNodes.length;
    n.say('demo', `hm9k demo: ${examples.computeNodes.length} compute nodes, ${DEMO_APPS.length} Cloud Foundry apps; working directory ${dir}`);
    await world.start();
    if (stop.signal.aborted) throw new IncidentFailed('interrupted');
    n.say('demo', `creating namespace ${NAMESPACE} and the Secrets hm9k reads (BMC credentials, SSH key + known_hosts, clouds.yaml)`);
    await world.createNamespaceAndSecrets();
    n.say('demo', `applying ${values.examples ? `${examplesDir}/` : 'examples/'}{apphealthpolicy,fencepolicy,computenodes}.yaml (loopback ports substituted)`);
    await applyResources(world.kc, {
      appHealthPolicy: examples.appHealthPolicy,
      fencePolicy: substituteFencePolicy(examples.fencePolicy, world.compute),
      computeNodes: examples.computeNodes.map((cn) => substituteComputeNode(cn, world.compute)),
    });

    n.say('demo', 'starting hm9k as two processes: hm9k run --apps, hm9k run --nodes (leader election on)');
    for (const half of ['apps', 'nodes'] as const) controllers.push(await ControllerProcess.start(half, world, dir, root, ipmitool));
    const aborted = new Promise<never>((_r, reject) => stop.signal.addEventListener('abort', () => reject(new IncidentFailed('interrupted')), { once: true }));
    aborted.catch(() => undefined);
    await Promise.race([Promise.all(controllers.map((c) => c.waitReady())), aborted]);
    const apps = controllers[0]!;
    const appsApiUrl = `http://127.0.0.1:${apps.apiPort}`;
    n.say('hm9k', `both halves ready and leading (pids ${controllers.map((c) => `${c.half} ${c.pid}`).join(', ')})`);

    observer = new Observer(world, world.kc, n);
    observer.start();
    const kube = `kubectl --kubeconfig ${world.kubeconfig}`;
    n.raw([
      '',
      '  The local control plane is up. In another terminal:',
      `    export KUBECONFIG=${world.kubeconfig}`,
      `    ${kube} get hm9k -A`,
      `    ${kube} describe cn cmp1`,
      `    ${kube} -n ${NAMESPACE} get da`,
      `    ${kube} get events -A --sort-by=.metadata.creationTimestamp`,
      `    HM9K_APPS__API__PASSWORD=${CREDENTIALS.apiPassword} node ${join(root, 'bin/hm9k.js')} dump --kubeconfig ${world.kubeconfig} --apps-url ${appsApiUrl} --apps-user ${CREDENTIALS.apiUser}`,
      `  hm9k's logs: ${controllers.map((c) => c.logFile).join(', ')}`,
      `  its configuration: ${controllers.map((c) => c.configFile).join(', ')}`,
      '',
    ].join('\n') + '\n');

    // Controllers must stay up: one that exits fails the run.
    const watchdog = setInterval(() => {
      for (const c of controllers) {
        if (!c.alive() && !stop.signal.aborted) {
          n.say('demo', `hm9k run --${c.half} exited unexpectedly; its log ends with:\n${c.logTail(2000)}`);
          stop.abort(new Error(`hm9k run --${c.half} exited`));
        }
      }
    }, 1000);

    const custom = world.kc.makeApiClient(CustomObjectsApi);
    const ctx: Ctx = { world, n, obs: observer, custom, appsApiUrl, signal: stop.signal };
    const settle = new Checks(n, stop.signal, () => observer!.flush());
    n.say('demo', 'waiting for hm9k to see a healthy world: nodes Healthy, app state fresh, every app running');
    await settle.until('a healthy world', async () => {
      const nodes = ((await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes' })) as { items: ComputeNode[] }).items;
      const das = ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NAMESPACE, plural: 'desiredapps' })) as { items: DesiredApp[] }).items;
      const ahp = ((await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'apphealthpolicies' })) as { items: AppHealthPolicy[] }).items[0];
      const fresh = ['ActualStateFresh', 'DesiredStateFresh'].every((t) => ahp?.status?.conditions?.some((c) => c.type === t && c.status === 'True'));
      return nodes.length === world.compute.nodes.length && nodes.every((x) => x.status?.phase === 'Healthy') && fresh &&
        das.length === DEMO_APPS.length && das.every((d) => (d.status?.running ?? 0) === d.spec.instances);
    }, world.openstack ? 300_000 : 120_000);
    await new Promise((r) => setTimeout(r, 1200)); // one more observer round
    n.say('demo', 'the world is healthy:');
    observer.printTable();
    observer.tableEnabled = true;

    const results: { name: string; ok: boolean; outcome: string; seconds: number }[] = [];
    const play = async (inc: Incident) => {
      const check = new Checks(n, stop.signal, () => observer!.flush());
      const t0 = Date.now();
      n.raw('\n');
      n.say('demo', `=== incident ${inc.name}: ${inc.title}`);
      let outcome = '';
      try {
        outcome = await inc.run(ctx, check);
      } catch (err) {
        if (!(err instanceof IncidentFailed)) check.that(false, `incident script error: ${(err as Error).message}`);
      }
      const ok = check.failures.length === 0;
      const seconds = (Date.now() - t0) / 1000;
      results.push({ name: inc.name, ok, outcome: ok ? outcome : check.failures.join('; '), seconds });
      n.say('result', `${inc.name}: ${ok ? 'PASS' : 'FAIL'} (${seconds.toFixed(0)}s) ${ok ? outcome : check.failures.join('; ')}`);
      return ok;
    };

    for (const inc of incidents) {
      if (stop.signal.aborted) break;
      await play(inc);
    }
    if (incidents.length) {
      n.raw('\n');
      n.say('demo', `summary: ${results.filter((r) => r.ok).length} of ${results.length} incidents passed`);
      for (const r of results) n.say('result', `${r.ok ? 'PASS' : 'FAIL'}  ${r.name.padEnd(13)} ${r.outcome}`);
    }

    if (values.interactive && !stop.signal.aborted) {
      await interactive(n, stop.signal, play, () => observer!.printTable());
    } else if (!values.exit && !stop.signal.aborted) {
      n.say('demo', 'the world keeps running (kubectl works against it); Ctrl-C to tear it down');
      await new Promise<void>((r) => stop.signal.addEventListener('abort', () => r(), { once: true }));
    }
    clearInterval(watchdog);
    const failed = results.filter((r) => !r.ok);
    if (stop.signal.aborted && !signalled) {
      code = 1;
      n.say('demo', `FAILED: ${(stop.signal.reason as Error).message}`);
    } else if (failed.length) {
      code = 1;
      n.say('demo', `FAILED: ${failed.map((r) => r.name).join(', ')} did not hold (see the FAIL lines above)`);
    } else if (signalled) {
      code = signalled === 'SIGTERM' ? 143 : 130;
    }
  } catch (err) {
    code = signalled ? (signalled === 'SIGTERM' ? 143 : 130) : 1;
    if (!signalled) n.say('demo', `FAILED: ${(err as Error).message}`);
  }
  for (const c of controllers) if (code === 1) n.say('demo', `log of hm9k run --${c.half}: ${c.logFile}`);
  await teardown(code === 0 || code === 130 || code === 143);
  process.off('exit', onExit);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // Everything this process started is gone; leave at once (open sockets of clients would keep it up).
  process.exit(code);
}

async function interactive(n: Narrator, signal: AbortSignal, play: (i: Incident) => Promise<boolean>, table: () => void): Promise<void> {
  const help = `type an incident name (${INCIDENTS.map((i) => i.name).join(', ')}), "all", "table", "help" or "quit"`;
  n.say('demo', `interactive: ${help}`);
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
  rl.setPrompt('hm9k demo> ');
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  rl.on('line', (l) => {
    lines.push(l.trim());
    wake?.();
  });
  rl.on('close', () => {
    closed = true;
    wake?.();
  });
  // Ctrl-C at the prompt: readline takes SIGINT from the terminal; forward it.
  rl.on('SIGINT', () => process.emit('SIGINT', 'SIGINT'));
  signal.addEventListener('abort', () => wake?.(), { once: true });
  rl.prompt();
  while (!signal.aborted) {
    if (!lines.length) {
      if (closed) break;
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
      continue;
    }
    const cmd = lines.shift()!;
    if (!cmd) {
      rl.prompt();
      continue;
    }
    if (cmd === 'quit' || cmd === 'exit' || cmd === 'q') break;
    if (cmd === 'help' || cmd === '?') n.say('demo', help);
    else if (cmd === 'table') table();
    else {
      try {
        for (const inc of selectIncidents(cmd)) {
          if (signal.aborted) break;
          await play(inc);
        }
      } catch (err) {
        n.say('demo', (err as Error).message);
      }
    }
    if (!signal.aborted) rl.prompt();
  }
  rl.close();
}
