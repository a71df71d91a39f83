// hm9k: the command line. `run` starts the controller; `crds` prints the CRDs; `dump` shows state; `demo` plays the demo world.
import { parseArgs } from 'node:util';
import { crdsYaml, writeCrds } from './cli/crds.js';
import { VERSION } from './version.js';

const USAGE = `hm9k ${VERSION}: keeps Cloud Foundry apps and OpenStack compute nodes healthy, and never acts blind.

Usage:
  hm9k run [--apps] [--nodes] [--config FILE] [--set path=value ...]   run the controller
  hm9k crds [--write DIR]                                               print (or write) the CRDs
  hm9k dump [--json] [--kubeconfig FILE] [--apps-url URL [--apps-user U]] [--skip-nodes]
                                                                        show what hm9k sees (password: HM9K_APPS__API__PASSWORD)
  hm9k demo [--script all|NAME] [--exit] [--interactive]                run the demo world on loopback
  hm9k config-reference                                                 print docs/configuration.md
  hm9k version                                                          print the version
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'crds': {
      const { values } = parseArgs({ args: rest, options: { write: { type: 'string' } } });
      if (values.write) {
        for (const f of writeCrds(values.write)) process.stderr.write(`wrote ${f}\n`);
      } else process.stdout.write(crdsYaml());
      return 0;
    }
    case 'config-reference': {
      const { configurationReference } = await import('./cli/config-reference.js');
      process.stdout.write(configurationReference());
      return 0;
    }
    case 'version':
    case '--version':
      process.stdout.write(`hm9k ${VERSION}\n`);
      return 0;
    case 'run': {
      const { runCommand } = await import('./cli/run.js');
      return runCommand(rest);
    }
    case 'dump': {
      const { dumpCommand } = await import('./cli/dump.js');
      return dumpCommand(rest);
    }
    case 'demo': {
      const { demoCommand } = await import('./demo/index.js');
      return demoCommand(rest);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`hm9k: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0 || !['run', 'demo'].includes(process.argv[2] ?? '')) process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as Error & { problems?: string[] };
    process.stderr.write(`hm9k: ${e.message}\n`);
    process.exitCode = 1;
  },
);
