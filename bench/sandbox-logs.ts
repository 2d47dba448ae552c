// What capturing a thread sandbox's output costs on the warm path: invocations per second of one `thread`
// sandbox called directly (no cluster around it), with a handler that logs nothing (the baseline) and with one
// that writes a line per call through console.log and one through process.stdout.write; and the CPU time
// (this process, all threads) per call, which a machine shared with other work disturbs less. One JSON line.
// Run: npm run bench:logs   (BENCH_RUNS runs of LOGS_SECONDS each per handler, LOGS_IN_FLIGHT concurrent calls)
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ThreadRuntime } from '../cluster/sandbox/index.js';
import { envInt } from './cluster.js';

const RUNS = envInt('BENCH_RUNS', 3);
const SECONDS = envInt('LOGS_SECONDS', 3);
const IN_FLIGHT = envInt('LOGS_IN_FLIGHT', 16);

const HANDLERS = {
  quiet: 'export function handler() { return "ok"; }',
  console: 'let n = 0; export function handler() { console.log(`call ${++n} served`); return "ok"; }',
  stdout: 'let n = 0; export function handler() { process.stdout.write(`call ${++n} served\\n`); return "ok"; }',
} as const;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

async function measure(runtime: ThreadRuntime, module: string, id: string): Promise<{ rps: number; cpuUs: number }> {
  const sandbox = await runtime.create({ sandboxId: id, functionName: 'bench', runtime: { kind: 'thread', module }, memoryMiB: 256, cpuMilli: 1000, concurrency: IN_FLIGHT, timeoutMs: 60_000 });
  const request = { method: 'POST', path: '/', headers: {}, body: new Uint8Array() };
  // Warm up: the first calls compile the handler and grow the worker's heap.
  for (let i = 0; i < 2000; i++) await sandbox.invoke(request);
  const until = performance.now() + SECONDS * 1000;
  let done = 0;
  const loop = async () => {
    while (performance.now() < until) {
      await sandbox.invoke(request);
      done += 1;
    }
  };
  const started = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(Array.from({ length: IN_FLIGHT }, loop));
  const used = process.cpuUsage(cpu);
  const result = { rps: done / ((performance.now() - started) / 1000), cpuUs: (used.user + used.system) / done };
  await runtime.destroy(id);
  return result;
}

const dir = await mkdtemp(join(tmpdir(), 'dirigent-bench-logs-'));
const runtime = new ThreadRuntime();
try {
  const modules: Record<string, string> = {};
  for (const [name, code] of Object.entries(HANDLERS)) {
    modules[name] = join(dir, `${name}.mjs`);
    await writeFile(modules[name], code);
  }
  const results: Record<string, { rps: number; cpuUs: number }[]> = { quiet: [], console: [], stdout: [] };
  // Interleaved, so that a slow phase of the machine hurts every handler alike.
  for (let run = 0; run < RUNS; run++) {
    for (const name of Object.keys(HANDLERS)) results[name]!.push(await measure(runtime, modules[name]!, `${name}-${run}`));
  }
  const rps = (name: string) => Math.round(median(results[name]!.map((r) => r.rps)));
  const cpuUs = (name: string) => Math.round(median(results[name]!.map((r) => r.cpuUs)) * 10) / 10;
  const summary = {
    bench: 'logs',
    quietRps: rps('quiet'),
    consoleLineRps: rps('console'),
    stdoutLineRps: rps('stdout'),
    quietCpuUsPerCall: cpuUs('quiet'),
    consoleLineCpuUsPerCall: cpuUs('console'),
    stdoutLineCpuUsPerCall: cpuUs('stdout'),
    inFlight: IN_FLIGHT,
    seconds: SECONDS,
    runs: RUNS,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} finally {
  await runtime.close();
  await rm(dir, { recursive: true, force: true });
}
