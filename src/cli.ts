// hm9k: the command line (commander: per-command --help, usage generated from the options).
// `run` starts the controller; `crds` prints the CRDs; `dump` shows state; `demo` plays the demo world.
import { Command, CommanderError, Option } from 'commander';
import { crdsYaml, writeCrds } from './cli/crds.js';
import { VERSION } from './version.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** The program; each action stores its exit code in `result.code`. */
export function program(result: { code: number; keepAlive: boolean }): Command {
  const p = new Command('hm9k')
    .description('Keeps Cloud Foundry apps and OpenStack compute nodes healthy, and never acts blind.')
    .version(`hm9k ${VERSION}`, '-V, --version', 'print the version')
    .showHelpAfterError('(hm9k <command> --help for its options)')
    .exitOverride();

  p.command('run')
    .description('run the controller: one half per process (--apps or --nodes), or neither (watch only)')
    .option('--apps', 'run the app half (HM9000: CC desired state vs DEA heartbeats)')
    .option('--nodes', 'run the node half (compute-node HA: recover, fence, evacuate)')
    .option('-c, --config <file>', 'process configuration file (YAML; also HM9K_CONFIG)')
    .option('--set <path=value>', 'set one configuration value, e.g. --set apps.cc.url=https://cc (repeatable)', collect)
    .option('--namespace <ns>', "hm9k's own namespace (Secrets, Leases, Events)")
    .option('--kubeconfig <file>', 'kubeconfig (default: KUBECONFIG, ~/.kube/config, or in-cluster)')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error']))
    .option('--metrics-port <port>', 'Prometheus /metrics port')
    .option('--health-port <port>', '/healthz and /readyz port')
    .addHelpText('after', '\nEvery configuration key, its environment variable and default: docs/configuration.md (hm9k config-reference).')
    .action(async (opts) => {
      const { runCommand } = await import('./cli/run.js');
      result.code = await runCommand(opts as import('./cli/run.js').RunOptions);
      result.keepAlive = true;
    });

  p.command('crds')
    .description('print the CustomResourceDefinitions (or write one file per CRD)')
    .option('--write <dir>', 'write the CRDs into this directory instead of printing them')
    .action((opts: { write?: string }) => {
      if (opts.write) for (const f of writeCrds(opts.write)) process.stderr.write(`wrote ${f}\n`);
      else process.stdout.write(crdsYaml());
      result.code = 0;
    });

  p.command('dump')
    .description("show what hm9k sees: ComputeNodes and FencePolicies from the API server, apps from the app half's /dump")
    .option('--json', 'print JSON instead of tables')
    .option('--kubeconfig <file>', 'kubeconfig for the nodes (default: KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--apps-url <url>', "the app half's API, e.g. http://hm9k-apps:5155 (without it, no apps)")
    .option('--apps-user <user>', 'basic-auth user of that API (default: HM9K_APPS__API__USER)')
    .option('--apps-password-env <var>', 'environment variable holding its password (never on the command line)', 'HM9K_APPS__API__PASSWORD')
    .option('--skip-nodes', 'leave out the nodes (no kubeconfig needed; needs --apps-url)')
    .action(async (opts) => {
      const { dumpCommand } = await import('./cli/dump.js');
      result.code = await dumpCommand(opts as import('./cli/dump.js').DumpCliOptions);
    });

  // The demo parses its own options (its --help lists the incidents).
  p.command('demo')
    .description('the whole product on loopback: control plane, NATS, simulators, BMCs, scripted incidents (hm9k demo --help)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[options...]')
    .action(async (args: string[]) => {
      const { demoCommand } = await import('./demo/index.js');
      result.code = await demoCommand(args);
      result.keepAlive = result.code === 0;
    });

  p.command('config-reference')
    .description('print docs/configuration.md (every process configuration key and policy field)')
    .action(async () => {
      const { configurationReference } = await import('./cli/config-reference.js');
      process.stdout.write(configurationReference());
      result.code = 0;
    });

  p.command('version')
    .description('print the version')
    .action(() => {
      process.stdout.write(`hm9k ${VERSION}\n`);
      result.code = 0;
    });
  return p;
}

async function main(argv: string[]): Promise<{ code: number; keepAlive: boolean }> {
  const result = { code: 0, keepAlive: false };
  const p = program(result);
  if (argv.length === 0) {
    process.stdout.write(p.helpInformation());
    return { code: 2, keepAlive: false };
  }
  try {
    await p.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too (exit code 0); usage errors are 2, and commander said why.
      return { code: err.exitCode === 0 ? 0 : 2, keepAlive: false };
    }
    throw err;
  }
  return result;
}

main(process.argv.slice(2)).then(
  ({ code, keepAlive }) => {
    // `run` and a running demo keep the process alive (the runtime handles SIGTERM); all else exits.
    if (code !== 0 || !keepAlive) process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as Error & { problems?: string[] };
    process.stderr.write(`hm9k: ${e.message}\n`);
    process.exitCode = 1;
  },
);
