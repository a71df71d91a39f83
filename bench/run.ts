// `npm run bench [name...]`: runs every bench/*.bench.ts (compiled) (each exports run(): Promise<BenchRow[]>) and prints a
// table. Every figure is a ratio against a baseline measured in the same run on the same machine,
// next to the absolute time. Not a test: nothing here passes or fails.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchRow } from './fleet.js';

const dir = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
// Compiled to dist-bench/bench/*.bench.js by `npm run bench` (production runs compiled JS too).
const files = readdirSync(dir).filter((f) => /\.bench\.(js|ts)$/.test(f) && (only.length === 0 || only.some((o) => f.includes(o)))).sort();
const rows: BenchRow[] = [];
for (const f of files) {
  const mod = (await import(pathToFileURL(join(dir, f)).href)) as { run: () => Promise<BenchRow[]> };
  process.stderr.write(`running ${f}...\n`);
  rows.push(...(await mod.run()));
}

const ms = (v: number, unit?: string) => `${v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(3)}${unit ? ` ${unit}` : ''}`;
const ratio = (a: number, b: number) => { const r = a / b; return `${r >= 10 || r === 0 ? r.toFixed(1) : r.toFixed(2)}x`; };
const table = rows.map((r) => [r.bench, r.subject, ms(r.subjectMs, r.unit), r.baseline, ms(r.baselineMs, r.unit), ratio(r.subjectMs, r.baselineMs), r.note ?? '']);
const head = ['bench', 'measured', 'ms', 'baseline (same run)', 'ms', 'ratio', 'notes'];
const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => (i === 2 || i === 4 || i === 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ');
console.log(`node ${process.version}, ${process.platform}/${process.arch}; medians of 5 runs; ratio = measured / baseline time`);
console.log(line(head));
console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
for (const row of table) console.log(line(row));
const mem = process.memoryUsage();
console.log(`peak-ish memory: rss ${(mem.rss / 1e6).toFixed(0)} MB, heap used ${(mem.heapUsed / 1e6).toFixed(0)} MB`);
// Benchmarks close what they open; exit anyway so a stray handle cannot keep the runner alive.
process.exit(0);
