// `npm run bench:autoscale`: does the autoscaler give a load the sandboxes it needs and no more? Each scenario
// of issue 19 runs against a cluster of separate processes started as `dirigent up` starts them (control plane,
// data plane, one worker), once with the thread runtime and once with the simulated one, and prints one JSON
// line: the peak and steady sandbox count, sandbox-seconds against the ideal, cold starts, p50/p99 latency.
//
// Sandbox count: ready + creating sandboxes of the function (what costs memory and CPU), sampled from the admin
// API every SAMPLE_MS; sandbox-seconds is its integral over the scenario. The ideal of a phase of `rate` req/s
// of a function that runs `runMs` ms is ceil(rate x runMs / 1000 / target) sandboxes (Little's law, whole
// sandboxes, at least 1 while there is load; target = 1 request per sandbox here) and 0 without load; its
// integral is the ideal sandbox-seconds. Steady count: the highest sample in the last STEADY_MS of a steady
// scenario, which starts after the 60 s stable window. Latency runs from each request's due time (loadgen.c).
//
// Scenarios: steady 200 req/s of a sub-millisecond function (echo); steady 50 req/s of a 100 ms function; a
// step 10 -> 400 -> 10 req/s of a 100 ms function (also with `scaling.peakWeightPercent: 100`, the metric
// before issue 19, as the same-run baseline; its p99 is the 400 req/s phase's); 100 simultaneous first calls to
// a cold 1 s function; on/off (10 s at 50 req/s of the 100 ms function, 50 s off, 10 s on again).
// A 100 ms function sleeps (bench/sleep-handler.ts) in the thread runtime and holds a timer in the simulated one
// (the trace workload, whose `requested_cpu` header goes to the data plane's compatibility front), so that the
// two cores are not what limits the count.
//
// Environment: AUTOSCALE_RUNTIMES (thread,simulated), AUTOSCALE_SCENARIOS (all: steady-fast, steady-slow, step,
// step-peak, burst, onoff), AUTOSCALE_BASELINE=0 skips step-peak (for a commit without the setting),
// AUTOSCALE_LOG (a file for the roles' output; default: discarded).
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { busyCores, exitIfStillRunningAfter, percentile, post, round } from './cluster.js';
import { compileLoadgen, loadgen, type LoadResult } from './children.js';
import { startProcessCluster, type ProcessCluster } from './process-cluster.js';

type Runtime = 'thread' | 'simulated';
const SAMPLE_MS = 250;
const STEADY_MS = 10_000;
/** Steady scenarios last the 60 s stable window plus the measured STEADY_MS, ms. */
const STEADY_RUN_MS = 60_000 + STEADY_MS;
const SLEEP_MODULE = fileURLToPath(new URL('./sleep-handler.js', import.meta.url));
const log = (line: string) => process.stderr.write(`${line}\n`);

interface Phase {
  /** req/s; 0: no load. */
  readonly rate: number;
  readonly ms: number;
}

interface Scenario {
  readonly name: string;
  /** Run time of one call in the sandbox, ms (0.5: sub-millisecond). */
  readonly runMs: number;
  readonly phases?: readonly Phase[];
  /** Simultaneous first calls instead of phases. */
  readonly burst?: number;
  readonly steady?: boolean;
  readonly scaling?: Record<string, number>;
  /** Index of the phase whose latency is the scenario's p50/p99 (default: the worst p99). */
  readonly focus?: number;
}

const SCENARIOS: readonly Scenario[] = [
  { name: 'steady-fast', runMs: 0.5, phases: [{ rate: 200, ms: STEADY_RUN_MS }], steady: true },
  { name: 'steady-slow', runMs: 100, phases: [{ rate: 50, ms: STEADY_RUN_MS }], steady: true },
  { name: 'step', runMs: 100, phases: [{ rate: 10, ms: 10_000 }, { rate: 400, ms: 10_000 }, { rate: 10, ms: 10_000 }], focus: 1 },
  { name: 'step-peak', runMs: 100, phases: [{ rate: 10, ms: 10_000 }, { rate: 400, ms: 10_000 }, { rate: 10, ms: 10_000 }], focus: 1, scaling: { peakWeightPercent: 100 } },
  { name: 'burst', runMs: 1000, burst: 100 },
  { name: 'onoff', runMs: 100, phases: [{ rate: 50, ms: 10_000 }, { rate: 0, ms: 50_000 }, { rate: 50, ms: 10_000 }] },
];

function list(name: string, fallback: readonly string[]): string[] {
  const raw = process.env[name];
  return raw === undefined || raw === '' ? [...fallback] : raw.split(',').map((s) => s.trim());
}

async function api(cluster: ProcessCluster, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${cluster.adminUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${cluster.token}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text === '' ? null : JSON.parse(text);
}

function spec(name: string, runtime: Runtime, scenario: Scenario): Record<string, unknown> {
  const sleeps = scenario.runMs >= 1;
  const source = !sleeps ? { kind: 'builtin', workload: 'echo' } : runtime === 'thread' ? { kind: 'thread', module: SLEEP_MODULE } : { kind: 'builtin', workload: 'trace' };
  return {
    name,
    runtime,
    source,
    ...(sleeps && runtime === 'thread' ? { env: { SLEEP_MS: String(scenario.runMs) } } : {}),
    cpuMilli: 1,
    memoryMiB: 64,
    concurrency: 1,
    queueTimeoutMs: 60_000,
    ...(scenario.scaling === undefined ? {} : { scaling: scenario.scaling }),
  };
}

/** Samples the sandbox count of `name` until stopped; `at` is ms since the sampler started. */
function sampler(cluster: ProcessCluster, name: string): { stop(): Promise<{ at: number; count: number }[]> } {
  const samples: { at: number; count: number }[] = [];
  const started = performance.now();
  let running = true;
  const loop = (async () => {
    while (running) {
      const view = (await api(cluster, 'GET', `/api/v1/functions/${name}`)) as { status: { ready: number; creating: number } | null };
      samples.push({ at: performance.now() - started, count: (view.status?.ready ?? 0) + (view.status?.creating ?? 0) });
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return samples;
    },
  };
}

/** The integral of a step function sampled at `at` (ms), in sandbox-seconds, up to `endMs`. */
function integral(samples: readonly { at: number; count: number }[], endMs: number): number {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) {
    const until = Math.min(samples[i + 1]?.at ?? endMs, endMs);
    sum += (samples[i]!.count * Math.max(0, until - samples[i]!.at)) / 1000;
  }
  return sum;
}

async function runScenario(cluster: ProcessCluster, binary: string, runtime: Runtime, scenario: Scenario, n: number): Promise<Record<string, unknown>> {
  const name = `as-${scenario.name}-${runtime.slice(0, 3)}-${n}`;
  await api(cluster, 'POST', '/api/v1/functions', spec(name, runtime, scenario));
  const header = runtime === 'simulated' && scenario.runMs >= 1 ? `requested_cpu: ${scenario.runMs}` : undefined;
  // The uWS front drops requests with an underscore in a header name (cluster/data-plane/compat-front.ts):
  // the trace workload's header goes to the compatibility front.
  const port = Number((header === undefined ? cluster.invokeAddress : cluster.compatAddress).split(':')[1]);
  const sampling = sampler(cluster, name);
  const t0 = performance.now();
  const segments: (LoadResult & { rate: number })[] = [];
  let idealSandboxSeconds = 0;
  let burst: Record<string, number> | undefined;
  if (scenario.burst !== undefined) {
    const results = await Promise.all(Array.from({ length: scenario.burst }, () => post(port, `/invoke/${name}`, '', 60_000, header === undefined ? {} : { requested_cpu: String(scenario.runMs) }).catch(() => null)));
    const ok = results.filter((r) => r?.status === 200);
    const ms = ok.map((r) => r!.ms).sort((a, b) => a - b);
    burst = {
      answered: ok.length,
      coldStarts: ok.filter((r) => r!.headers['x-dirigent-cold-start'] === 'true').length,
      p50Ms: round(percentile(ms, 0.5), 1),
      p99Ms: round(percentile(ms, 0.99), 1),
      maxMs: round(ms.at(-1) ?? NaN, 1),
    };
    // Ideal: all at once for one run time each.
    idealSandboxSeconds = (scenario.burst * scenario.runMs) / 1000;
    await new Promise((resolve) => setTimeout(resolve, 5000));
  } else {
    for (const phase of scenario.phases ?? []) {
      if (phase.rate === 0) {
        await new Promise((resolve) => setTimeout(resolve, phase.ms));
        continue;
      }
      const result = await loadgen(binary, { port, path: `/invoke/${name}`, rate: phase.rate, durationMs: phase.ms, warmupMs: 0, connections: 256, ...(header === undefined ? {} : { header }) });
      segments.push({ ...result, rate: phase.rate });
      idealSandboxSeconds += (Math.max(1, Math.ceil((phase.rate * scenario.runMs) / 1000)) * phase.ms) / 1000;
    }
  }
  const endMs = performance.now() - t0;
  const samples = await sampling.stop();
  await api(cluster, 'DELETE', `/api/v1/functions/${name}`);
  const counts = samples.map((s) => s.count);
  const steadyCounts = samples.filter((s) => s.at >= endMs - STEADY_MS).map((s) => s.count);
  const sandboxSeconds = integral(samples, endMs);
  const idealCount = Math.max(...(scenario.phases ?? [{ rate: scenario.burst ?? 0, ms: 0 }]).map((p) => Math.ceil((p.rate * scenario.runMs) / 1000)), 1);
  const focus = scenario.focus ?? segments.reduce((worst, s, i) => (s.p99Ms > (segments[worst]?.p99Ms ?? -1) ? i : worst), 0);
  const main = segments[focus];
  return {
    bench: 'autoscale',
    runtime,
    scenario: scenario.name,
    idealCount,
    peak: Math.max(0, ...counts),
    ...(scenario.steady ? { steady: Math.max(0, ...steadyCounts), steadyTarget: Math.ceil(1.5 * idealCount) + 1 } : {}),
    sandboxSeconds: round(sandboxSeconds, 1),
    idealSandboxSeconds: round(idealSandboxSeconds, 1),
    ratio: round(sandboxSeconds / idealSandboxSeconds, 2),
    coldStarts: burst?.['coldStarts'] ?? segments.reduce((sum, s) => sum + s.coldStarts, 0),
    p50Ms: burst?.['p50Ms'] ?? main?.p50Ms,
    p99Ms: burst?.['p99Ms'] ?? main?.p99Ms,
    errors: segments.reduce((sum, s) => sum + s.errors + s.unanswered, 0) + (burst === undefined ? 0 : (scenario.burst ?? 0) - (burst['answered'] ?? 0)),
    ...(burst === undefined ? {} : { burst }),
    segments: segments.map((s) => ({ rate: s.rate, recorded: s.recorded, p50Ms: s.p50Ms, p99Ms: s.p99Ms, coldStarts: s.coldStarts, errors: s.errors })),
    ...(scenario.scaling === undefined ? {} : { scaling: scenario.scaling }),
  };
}

async function main(): Promise<void> {
  exitIfStillRunningAfter('bench:autoscale', 30 * 60_000);
  const runtimes = list('AUTOSCALE_RUNTIMES', ['thread', 'simulated']) as Runtime[];
  for (const r of runtimes) if (r !== 'thread' && r !== 'simulated') throw new Error(`AUTOSCALE_RUNTIMES: ${r} must be thread or simulated`);
  const names = list('AUTOSCALE_SCENARIOS', SCENARIOS.map((s) => s.name)).filter((s) => process.env['AUTOSCALE_BASELINE'] !== '0' || s !== 'step-peak');
  const scenarios = names.map((n) => SCENARIOS.find((s) => s.name === n) ?? (() => { throw new Error(`AUTOSCALE_SCENARIOS: unknown ${n}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`); })());
  const dir = await mkdtemp(join(tmpdir(), 'bench-autoscale-'));
  const roleLog = process.env['AUTOSCALE_LOG'] ? createWriteStream(process.env['AUTOSCALE_LOG']) : undefined;
  try {
    const binary = await compileLoadgen(dir, 'bench:autoscale');
    // A cluster per scenario: what one scenario leaves behind (sandboxes, a worker that overload made miss its
    // heartbeats) must not count against the next.
    for (const runtime of runtimes) {
      for (const [n, scenario] of scenarios.entries()) {
        const busyBefore = await busyCores();
        log(`bench:autoscale: ${runtime} ${scenario.name}`);
        const cluster = await startProcessCluster({ runtime, nodes: 1, slots: 1000, onOutput: (line) => roleLog?.write(`${line}\n`) });
        try {
          const line = await runScenario(cluster, binary, runtime, scenario, n);
          process.stdout.write(`${JSON.stringify({ ...line, busyCoresBefore: busyBefore })}\n`);
        } catch (error) {
          process.stdout.write(`${JSON.stringify({ bench: 'autoscale', runtime, scenario: scenario.name, error: String(error).slice(0, 300), busyCoresBefore: busyBefore })}\n`);
        } finally {
          await cluster.stop();
        }
      }
    }
  } finally {
    roleLog?.end();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
