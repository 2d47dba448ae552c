// The whole benchmark suite in one command: actors, coldstart, warm, ws, latency, sweep and trace (a 200-function
// synthetic trace, 10 trace minutes compressed 2x), one after the other, each its own process so that none inherits
// another's threads, heap or JIT state. Writes every JSON line they print, plus one line describing the machine and
// the run, to bench/results/<date>.json, and their plots to bench/results/<date>/.
// Run: npm run bench (about 40 min on the 2-core machine: trace ~12, latency ~9, warm ~7, sweep ~5, ws ~3)
//   BENCH_ONLY (default: all of them)   a comma-separated subset, e.g. `latency,ws`
//   BENCH_RESULTS_DATE (default: today, UTC)   the name of the result files
// Every other variable (BENCH_RUNS, TRACE_*, SWEEP_*, LATENCY_*, ...) passes through to the benchmarks. A benchmark
// that fails is recorded as `{"bench":<name>,"failed":<message>}` and the suite goes on.
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyCores, round } from './cluster.js';

const SUITE = ['actors', 'coldstart', 'warm', 'ws', 'latency', 'sweep', 'trace'] as const;

const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim()).filter((s) => s !== '');
for (const name of only ?? []) if (!(SUITE as readonly string[]).includes(name)) throw new Error(`BENCH_ONLY: ${JSON.stringify(name)} is not one of ${SUITE.join(', ')}`);
const date = process.env.BENCH_RESULTS_DATE ?? new Date().toISOString().slice(0, 10);
if (!/^[\w.-]{1,64}$/.test(date)) throw new Error(`BENCH_RESULTS_DATE=${JSON.stringify(date)} must be a file name (letters, digits, . _ -)`);
const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const plotsDir = join(resultsDir, date);

interface Outcome {
  readonly lines: unknown[];
  readonly failure?: string;
}

/** Runs dist/bench/<name>.js; its stderr passes through, its JSON lines are kept. */
function run(name: string): Promise<Outcome> {
  const script = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  const env = { ...process.env, TRACE_OUT_DIR: plotsDir, SWEEP_OUT_DIR: plotsDir, LATENCY_OUT_DIR: plotsDir };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      process.stdout.write(d);
    });
    child.on('error', (error) => resolve({ lines: [], failure: error.message }));
    child.on('close', (code, signal) => {
      const lines: unknown[] = [];
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          lines.push(JSON.parse(line));
        } catch {
          // A benchmark's stdout carries only its JSON lines; anything else is left out of the results.
        }
      }
      resolve(code === 0 ? { lines } : { lines, failure: `exited with ${code ?? signal}` });
    });
  });
}

await mkdir(plotsDir, { recursive: true });
const startedAt = new Date();
const machine = {
  bench: 'machine',
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: round(totalmem() / 2 ** 30, 1),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  loadAverage1mBefore: round(loadavg()[0]!, 2),
  busyCoresBefore: await busyCores(),
  startedAt: startedAt.toISOString(),
};
const all: unknown[] = [machine];
const wallS: Record<string, number> = {};
const file = join(resultsDir, `${date}.json`);
// Rewritten after every benchmark, so that a suite stopped half-way keeps what it measured.
const save = () => writeFile(file, all.map((l) => JSON.stringify(l)).join('\n') + '\n');
for (const name of only ?? SUITE) {
  const t0 = performance.now();
  console.error(`bench: ${name}...`);
  const outcome = await run(name);
  wallS[name] = round((performance.now() - t0) / 1000, 1);
  all.push(...outcome.lines);
  if (outcome.failure !== undefined) {
    console.error(`bench: ${name} failed: ${outcome.failure}`);
    all.push({ bench: name, failed: outcome.failure });
  }
  await save();
}
all.push({ bench: 'suite', wallS, totalS: round((Date.now() - startedAt.getTime()) / 1000, 1), loadAverage1mAfter: round(loadavg()[0]!, 2) });
await save();
console.error(`bench: results in ${file}, plots in ${plotsDir}`);
