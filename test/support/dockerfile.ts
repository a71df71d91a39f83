// The image's ENTRYPOINT, as the Dockerfile writes it (tests check it against src/production-runtime.ts and the chart).
import { readFileSync } from 'node:fs';

export function imageEntrypoint(): string[] {
  const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
  const m = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile);
  if (!m) throw new Error('Dockerfile: no ENTRYPOINT in exec form');
  return JSON.parse(m[1]!) as string[];
}
