// `npm run bench:trace`: the paper's trace experiment on this machine. A synthetic Azure-like trace
// (`dirigent trace synth`: 200 functions, 10 minutes by default) replayed as the in-vitro loader replays it
// (`dirigent replay`) against a cluster of separate processes (a control plane, a data plane, a worker simulating
// nodes), then against a bare server that answers every function at once with no orchestration (the same-run
// baseline: what the client, loopback HTTP and the timers cost alone). The schedules are the same (same seed).
// Prints one JSON line (with the sandbox-seconds the cluster spent, sampled from its admin API, beside the
// busy seconds of the calls, and the share of calls that waited for a cold start); the report and the plots
// of both runs go to stderr and to TRACE_OUT_DIR (default: a temporary folder).
//
// Environment: TRACE_FUNCTIONS (200), TRACE_MINUTES (10), TRACE_COMPRESS (2: trace minutes per wall minute),
// TRACE_SEED (1), TRACE_RUNTIME (simulated | thread), TRACE_NODES (4), TRACE_OUT_DIR.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatAzureTrace } from '../cluster/experiments/azure-trace.js';
import { analyze } from '../cluster/experiments/metrics.js';
import { parseRecords } from '../cluster/experiments/records.js';
import { loadRun, reportText, writePlots } from '../cluster/experiments/report.js';
import { replay, type ReplaySummary } from '../cluster/experiments/replay.js';
import { synthesizeTrace } from '../cluster/experiments/synth.js';
import { seededRandom } from '../runtime/random.js';
import { busyCores, envInt, exitIfStillRunningAfter, round } from './cluster.js';
import { startProcessCluster } from './process-cluster.js';

const functions = envInt('TRACE_FUNCTIONS', 200);
const minutes = envInt('TRACE_MINUTES', 10);
const compression = envInt('TRACE_COMPRESS', 2);
const seed = envInt('TRACE_SEED', 1);
const nodes = envInt('TRACE_NODES', 4);
const runtimeName = process.env.TRACE_RUNTIME ?? 'simulated';
if (runtimeName !== 'simulated' && runtimeName !== 'thread') throw new Error(`TRACE_RUNTIME=${runtimeName} must be simulated or thread`);
const runtime: 'simulated' | 'thread' = runtimeName;
const BARE = new URL('./bare-trace.js', import.meta.url).pathname;
const log = (line: string) => process.stderr.write(`${line}\n`);

async function run(label: string, traceDir: string, adminUrl: string, outDir: string): Promise<ReplaySummary> {
  log(`${label}: replaying ${minutes} trace minutes of ${functions} functions at ${compression}x (${round((minutes * 60) / compression)} s)`);
  let last = 0;
  return replay({
    traceDir,
    adminUrl,
    minutes,
    warmupMinutes: 0,
    compression,
    seed,
    distribution: 'exponential',
    out: join(outDir, `${label}.csv`),
    namePrefix: `b${randomBytes(2).toString('hex')}`,
    maxSockets: 1024,
    maxPending: 100_000,
    timeoutMs: 90_000,
    onProgress: (p) => {
      if (p.elapsedMs - last < 10_000 && p.phase !== 'registering') return;
      last = p.elapsedMs;
      log(`${label}: ${p.phase} ${round(p.elapsedMs / 1000)} s of ${round(p.totalMs / 1000)} s, sent ${p.sent}/${p.scheduled}, answered ${p.answered}, failed ${p.failed}`);
    },
  });
}

/**
 * Sandbox-seconds of the whole cluster while the replay runs: ready + creating sandboxes over all functions,
 * sampled from the admin API every SANDBOX_SAMPLE_MS and integrated (each sample holds until the next).
 */
const SANDBOX_SAMPLE_MS = 1000;
function sandboxSampler(adminUrl: string): { stop(): Promise<number> } {
  let running = true;
  let seconds = 0;
  let last: { at: number; count: number } | null = null;
  const loop = (async () => {
    while (running) {
      try {
        const body = (await (await fetch(`${adminUrl}/api/v1/functions`)).json()) as { functions: { status: { ready: number; creating: number } | null }[] };
        const count = body.functions.reduce((sum, f) => sum + (f.status?.ready ?? 0) + (f.status?.creating ?? 0), 0);
        const at = performance.now();
        if (last !== null) seconds += (last.count * (at - last.at)) / 1000;
        last = { at, count };
      } catch (error) {
        log(`sandbox sampling: ${String(error)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, SANDBOX_SAMPLE_MS));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      if (last !== null) seconds += (last.count * (performance.now() - last.at)) / 1000;
      return seconds;
    },
  };
}

async function main(): Promise<void> {
  exitIfStillRunningAfter('bench:trace', ((minutes * 60_000) / compression) * 2 + 300_000);
  const outDir = process.env.TRACE_OUT_DIR ?? (await mkdtemp(join(tmpdir(), 'bench-trace-')));
  await mkdir(outDir, { recursive: true });
  const traceDir = join(outDir, 'trace');
  await mkdir(traceDir, { recursive: true });
  const trace = synthesizeTrace({ functions, minutes, random: seededRandom(seed) });
  for (const [name, text] of Object.entries(formatAzureTrace(trace))) await writeFile(join(traceDir, `${name}.csv`), text);
  const busyBefore = await busyCores();

  const bareChild = spawn(process.execPath, [BARE], { stdio: ['ignore', 'pipe', 'inherit'] });
  const bareAddress = await new Promise<string>((resolve, reject) => {
    bareChild.stdout.once('data', (chunk: Buffer) => resolve((JSON.parse(chunk.toString()) as { address: string }).address));
    bareChild.once('exit', (code) => reject(new Error(`bare-trace exited with ${code}`)));
  });
  let bareSummary: ReplaySummary;
  try {
    bareSummary = await run('bare', traceDir, `http://${bareAddress}`, outDir);
  } finally {
    bareChild.kill('SIGTERM');
  }

  const cluster = await startProcessCluster({ runtime, nodes, slots: 2000, onOutput: log });
  let summary: ReplaySummary;
  let sandboxSeconds: number;
  try {
    const sampling = sandboxSampler(cluster.adminUrl);
    try {
      summary = await run('dirigent', traceDir, cluster.adminUrl, outDir);
    } finally {
      sandboxSeconds = await sampling.stop();
    }
  } finally {
    await cluster.stop();
  }

  const runs = await Promise.all([loadRun(summary.out, {}), loadRun(bareSummary.out, {})]);
  log(reportText(runs));
  log(`plots: ${(await writePlots(runs, outDir)).join(', ')}`);
  const records = parseRecords(await readFile(summary.out, 'utf8'), summary.out);
  const m = analyze(records).metrics;
  // The sum of the calls' run times, s: sandbox-seconds with no idle sandbox at all (the floor).
  const busySeconds = records.reduce((sum, r) => sum + r.actualDuration, 0) / 1e6;
  const b = runs[1]!.metrics;
  const r3 = (x: number) => round(x, 3);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'trace',
      invocations: m.invocations,
      schedP50Ms: r3(m.schedMs.p50),
      schedP99Ms: r3(m.schedMs.p99),
      perFnMeanP50Ms: r3(m.perFunctionMeanMs.p50),
      slowdownP50: r3(m.slowdown.p50),
      failed: m.failed,
      coldStarts: m.coldStarts,
      coldStartShare: m.invocations > 0 && m.coldStarts !== null ? round(m.coldStarts / m.invocations, 4) : null,
      sandboxSeconds: round(sandboxSeconds),
      // Busy time of the invocations answered, s: what sandbox-seconds would be with no idle sandbox at all.
      busySandboxSeconds: round(busySeconds),
      schedP90Ms: r3(m.schedMs.p90),
      perFnMeanP99Ms: r3(m.perFunctionMeanMs.p99),
      slowdownP99: r3(m.slowdown.p99),
      bareSchedP50Ms: r3(b.schedMs.p50),
      bareSchedP99Ms: r3(b.schedMs.p99),
      barePerFnMeanP50Ms: r3(b.perFunctionMeanMs.p50),
      bareSlowdownP50: r3(b.slowdown.p50),
      senderLateP99Ms: r3(summary.lateP99Ms),
      functions,
      minutes,
      compression,
      seed,
      runtime,
      nodes,
      wallS: round(summary.wallMs / 1000, 1),
      cores: availableParallelism(),
      busyCoresBefore: busyBefore,
      outDir,
    })}\n`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
