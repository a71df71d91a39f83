// Bundles compiled entry points with @kubernetes/client-node inside, tree-shaken (issue 14 item 9).
// client-node's index loads every generated API and model of Kubernetes: importing it costs about
// 80 MB of RSS, more than HM9000's whole process. Bundled, only what hm9k uses is loaded (about half).
// Every other package stays an import from node_modules (native addons, files read at run time).
//
//   node scripts/bundle.mjs <entry.js> [<entry.js> ...]   each entry is replaced by its bundle
//
// The entry's own relative imports are bundled too, so the bundle is self-contained but for
// node_modules. esbuild is a dev dependency: every build (npm run build, prepack, the image's build
// stage) has it, and a build without it fails rather than ship the unbundled library.
import { existsSync, renameSync } from 'node:fs';
import * as esbuild from 'esbuild';

const bundled = /^@kubernetes\/client-node(\/|$)/;
for (const entry of process.argv.slice(2)) {
  if (!existsSync(entry)) throw new Error(`bundle: ${entry} does not exist (build first)`);
  const out = `${entry}.bundle.tmp`;
  await esbuild.build({
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    logLevel: 'warning',
    legalComments: 'none',
    plugins: [
      {
        name: 'node-modules-external-but-kube',
        setup(b) {
          // A bare specifier (a package) is external unless it is client-node itself; its own
          // dependencies (node-fetch, ws, openid-client, tar-fs, ...) stay external too, and are
          // marked free of side effects so that those only the unused parts import are not loaded.
          b.onResolve({ filter: /^[^./]/ }, (a) => (bundled.test(a.path) ? undefined : { external: true, sideEffects: !a.importer.includes('/node_modules/@kubernetes/client-node/') }));
        },
      },
    ],
  });
  renameSync(out, entry);
}
