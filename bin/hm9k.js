#!/usr/bin/env node
// Runs the compiled CLI (dist/) when it is there and current: always in the package and the image,
// which carry no src/. In a source tree, dist/ is used only when it is newer than every source file,
// so an edit after `npm run demo` or `npm run build` is never hidden by a stale build; otherwise the
// TypeScript sources run through tsx.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'cli.js');
const sources = join(root, 'src');

/** The newest modification time of a .ts file under dir. */
function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

const useBuilt = existsSync(built) && (!existsSync(join(sources, 'cli.ts')) || statSync(built).mtimeMs >= newestSource(sources));
if (useBuilt) {
  await import(pathToFileURL(built).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(sources, 'cli.ts')).href);
}
