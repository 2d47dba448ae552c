// The experiment commands of the CLI: `replay`, `trace synth`, `report`. Flags are parsed here (their table is
// commands.ts); the work is in replay.ts, synth.ts and report.ts.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { seededRandom } from '../../runtime/random.js';
import { intIn, UsageError, type CliValues } from '../flags.js';
import { IAT_DISTRIBUTIONS, type IatDistribution } from './arrivals.js';
import { formatAzureTrace } from './azure-trace.js';
import { REPLAY_DEFAULTS } from './commands.js';
import { analyze } from './metrics.js';
import { parseRecords } from './records.js';
import { loadRun, reportText, writePlots } from './report.js';
import { replay, type ReplayProgress } from './replay.js';
import { synthesizeTrace } from './synth.js';
import { DEFAULT_ADMIN_URL, ENV } from '../../actors/settings.js';
import { onStopSignal } from '../signals.js';

const SEED = { min: 0, max: 2 ** 32 - 1, unit: '' };
const MINUTES = { min: 1, max: 1440, unit: 'minutes' };

function compression(values: CliValues): number {
  const raw = values.compress;
  if (raw === undefined) return REPLAY_DEFAULTS.compress;
  const value = /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!(value >= 0.01 && value <= 10_000)) throw new UsageError(`--compress must be a number in 0.01..10000 (trace time / wall time), got ${JSON.stringify(raw)}`, 'INVALID_OPTION');
  return value;
}

function distribution(values: CliValues): IatDistribution {
  const raw = values.iat ?? REPLAY_DEFAULTS.iat;
  if (!(IAT_DISTRIBUTIONS as readonly string[]).includes(raw)) throw new UsageError(`--iat must be one of ${IAT_DISTRIBUTIONS.join(', ')}, got ${JSON.stringify(raw)}`, 'INVALID_OPTION');
  return raw as IatDistribution;
}

const clock = (ms: number) => {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};

export function progressText(p: ReplayProgress): string {
  if (p.phase === 'registering') return `registering the trace's functions...`;
  return `replay ${clock(p.elapsedMs)} / ${clock(p.totalMs)}  sent ${p.sent} of ${p.scheduled}, answered ${p.answered}, failed ${p.failed}${p.phase === 'draining' ? ' (waiting for the last answers)' : ''}`;
}

/** On a terminal the line is rewritten in place; on a pipe a line every 10 s. Nothing with --json. */
function progressWriter(json: boolean): (p: ReplayProgress) => void {
  let lastLine = 0;
  return (p) => {
    if (json) return;
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${progressText(p)}`);
    else if (p.phase === 'registering' || p.elapsedMs - lastLine >= 10_000) {
      lastLine = p.elapsedMs;
      process.stderr.write(`${progressText(p)}\n`);
    }
  };
}

export async function replayCommand(traceDir: string, values: CliValues): Promise<void> {
  const json = values.json === true;
  const controller = new AbortController();
  const stopListening = onStopSignal(() => controller.abort());
  try {
    const summary = await replay({
      traceDir: resolve(traceDir),
      adminUrl: values.admin ?? process.env[ENV.admin] ?? DEFAULT_ADMIN_URL,
      adminToken: values['admin-token'] ?? process.env[ENV.adminToken],
      target: values.target,
      minutes: intIn(values, 'minutes', MINUTES),
      warmupMinutes: intIn(values, 'warmup-minutes', { min: 0, max: 1440, unit: 'minutes' }) ?? REPLAY_DEFAULTS.warmupMinutes,
      compression: compression(values),
      seed: intIn(values, 'seed', SEED) ?? REPLAY_DEFAULTS.seed,
      distribution: distribution(values),
      out: resolve(values.out ?? REPLAY_DEFAULTS.out),
      // A fresh suffix per run, so that a second replay against the same cluster registers new functions.
      namePrefix: values['name-prefix'] ?? `${REPLAY_DEFAULTS.namePrefix}-${randomBytes(3).toString('hex')}`,
      maxSockets: intIn(values, 'max-sockets', { min: 1, max: 65_536, unit: 'connections' }) ?? REPLAY_DEFAULTS.maxSockets,
      maxPending: 100_000,
      timeoutMs: intIn(values, 'timeout-ms', { min: 1, max: 3_600_000, unit: 'ms' }) ?? REPLAY_DEFAULTS.timeoutMs,
      onProgress: progressWriter(json),
      signal: controller.signal,
    });
    if (process.stderr.isTTY && !json) process.stderr.write('\r\x1b[K');
    const { metrics } = analyze(parseRecords(await readFile(summary.out, 'utf8'), summary.out));
    if (json) return void process.stdout.write(`${JSON.stringify({ ...summary, metrics })}\n`);
    process.stdout.write(
      [
        `${controller.signal.aborted ? 'stopped early: ' : ''}${summary.sent} of ${summary.scheduled} invocations of ${summary.functions} functions sent in ${(summary.wallMs / 1000).toFixed(1)} s, ${summary.failed} failed (sender late by ${summary.lateP99Ms.toFixed(1)} ms at p99)`,
        `wrote ${summary.out}; scheduling latency p50 ${metrics.schedMs.p50.toFixed(2)} ms, p99 ${metrics.schedMs.p99.toFixed(1)} ms; per-function mean p50 ${metrics.perFunctionMeanMs.p50.toFixed(2)} ms; slowdown p50 ${metrics.slowdown.p50.toFixed(2)}`,
        `dirigent report ${summary.out}   for the full report and plots`,
      ].join('\n') + '\n',
    );
    if (summary.failed > 0) process.exitCode = 1;
  } finally {
    stopListening();
  }
}

export async function traceCommand(args: readonly string[], values: CliValues): Promise<void> {
  const [sub, dir] = args as [string, string];
  if (sub !== 'synth') throw new UsageError(`unknown trace command ${JSON.stringify(sub)}; the one there is: dirigent trace synth <out-dir>`, 'UNKNOWN_COMMAND');
  const functions = intIn(values, 'functions', { min: 1, max: 100_000, unit: 'functions' }) ?? 200;
  const minutes = intIn(values, 'minutes', MINUTES) ?? 30;
  const seed = intIn(values, 'seed', SEED) ?? 42;
  const trace = synthesizeTrace({ functions, minutes, random: seededRandom(seed) });
  const files = formatAzureTrace(trace);
  const out = resolve(dir);
  await mkdir(out, { recursive: true });
  await Promise.all(Object.entries(files).map(([name, text]) => writeFile(join(out, `${name}.csv`), text)));
  const invocations = trace.reduce((sum, f) => sum + f.invocations.reduce((a, b) => a + b, 0), 0);
  const summary = { dir: out, functions, minutes, seed, invocations, perMinute: Math.round(invocations / minutes), underOneSecond: trace.filter((f) => f.durations.average < 1000).length };
  process.stdout.write(values.json ? `${JSON.stringify(summary)}\n` : `wrote ${out}/{invocations,durations,memory}.csv: ${functions} functions, ${minutes} minutes, ${invocations} invocations (${summary.perMinute} a minute), ${summary.underOneSecond} functions averaging under 1 s (seed ${seed})\n`);
}

export async function reportCommand(paths: readonly string[], values: CliValues): Promise<void> {
  const dropMinutes = intIn(values, 'drop-minutes', { min: 0, max: 1440, unit: 'minutes' }) ?? 0;
  const runs = await Promise.all(paths.map((p) => loadRun(resolve(p), { dropMinutes })));
  const plotsDir = resolve(values.plots ?? dirname(resolve(paths[0]!)));
  await mkdir(plotsDir, { recursive: true });
  const plots = await writePlots(runs, plotsDir);
  if (values.json) return void process.stdout.write(`${JSON.stringify({ runs: runs.map((r) => ({ label: r.label, source: r.source, ...r.metrics })), plots })}\n`);
  process.stdout.write(`${reportText(runs)}\n\nplots: ${plots.join(', ')}\n`);
}
