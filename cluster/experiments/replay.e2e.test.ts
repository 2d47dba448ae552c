// End to end: a real local cluster (control plane in this process, a data plane and a simulated-runtime worker as
// child processes), the CLI's `replay` on a slice of the loader's example trace compressed 30x (6 trace minutes
// in 12 s), then `report` on its CSV.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LocalCluster } from '../launcher.js';
import { analyze } from './metrics.js';
import { LOADER_COLUMNS, minuteOf, parseRecords } from './records.js';

const run = promisify(execFile);
const CLI = new URL('../cli.js', import.meta.url).pathname;
const SLICE = new URL('../../../cluster/experiments/fixtures/example-slice', import.meta.url).pathname;

let cluster: LocalCluster;
let dir: string;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dirigent-replay-'));
  cluster = await LocalCluster.start({ host: '127.0.0.1', adminPort: 0, invokePort: 0, compatPort: 0, dataDir: join(dir, 'data'), workers: 1, runtime: 'simulated', onOutput: () => undefined });
});

test.after.always(async () => {
  await cluster?.stop();
  await rm(dir, { recursive: true, force: true });
});

test.serial('replay registers the trace the loader way, sends it open loop, and writes one loader row per invocation', async (t) => {
  const out = join(dir, 'run.csv');
  const { stdout } = await run(process.execPath, [CLI, 'replay', SLICE, '--admin', cluster.adminUrl, '--compress', '30', '--warmup-minutes', '1', '--minutes', '5', '--seed', '7', '--name-prefix', 'e2e', '--out', out, '--json'], { timeout: 90_000 });
  const summary = JSON.parse(stdout) as { scheduled: number; sent: number; failed: number; functions: number; endpoints: string[]; metrics: { failed: number; invocations: number } };
  // Minute 0 skipped (a warm-up is given), minute 1 warm-up, minutes 2..6 measured: row 0 has 5 a minute from
  // minute 0, rows 1-3 have 5 a minute from minute 5.
  t.like(summary, { scheduled: 60, sent: 60, failed: 0, functions: 4 });
  t.deepEqual(summary.endpoints, [new URL(cluster.compatUrl).host], 'sent to the address registration returned');

  const text = await readFile(out, 'utf8');
  t.true(text.startsWith(`${LOADER_COLUMNS.join(',')},`), 'the loader columns first, in its order');
  const records = parseRecords(text, out);
  t.is(records.length, 60);
  const byFunction = new Map<string, number[]>();
  for (const r of records) {
    t.is(r.httpStatus, 200);
    t.false(r.connectionTimeout || r.functionTimeout);
    t.is(r.phase, minuteOf(r.invocationID) === 1 ? 1 : 2);
    t.true(r.function?.startsWith('e2e-'));
    t.is(r.instance, r.function ?? '', 'instance is the name the trace function answered with');
    t.true(r.actualDuration >= r.requestedDuration, `the simulated trace function holds the requested time: ${r.actualDuration} >= ${r.requestedDuration}`);
    t.true(r.responseTime >= r.actualDuration);
    byFunction.set(r.function!, [...(byFunction.get(r.function!) ?? []), r.startTime]);
  }
  t.deepEqual([...byFunction.values()].map((s) => s.length).sort((a, b) => a - b), [10, 10, 10, 30]);
  t.is(new Set(records.map((r) => `${r.function} ${r.invocationID}`)).size, 60, 'invocation ids unique per function');
  // The 6 trace minutes last 12 s of wall time: the sends of the busiest function span most of it.
  const starts = byFunction.get(records.find((r) => minuteOf(r.invocationID) === 1)!.function!)!.sort((a, b) => a - b);
  const spanS = (starts.at(-1)! - starts[0]!) / 1e6;
  t.true(spanS > 8 && spanS < 30, `sends spread over ${spanS} s`);

  const { metrics } = analyze(records);
  t.is(metrics.invocations, 55);
  t.is(metrics.failed, 0);
  t.true(metrics.coldStarts! >= 3, 'the three functions first called in the measured minutes start cold');

  const report = await run(process.execPath, [CLI, 'report', out, '--plots', dir], { timeout: 30_000 });
  t.regex(report.stdout, /invocations measured\s+55/);
  t.regex(report.stdout, /Dirigent \(paper\)/);
  for (const name of ['sched-latency-per-invocation.svg', 'sched-latency-per-function.svg', 'slowdown-per-function.svg']) {
    const svg = await readFile(join(dir, name), 'utf8');
    t.true(svg.startsWith('<svg') && svg.includes('<polyline'), name);
  }
});

test.serial('a trace folder that does not exist, or a cluster that is not there, ends with a clear error and exit code 1', async (t) => {
  const missing = await run(process.execPath, [CLI, 'replay', join(dir, 'nothing'), '--admin', cluster.adminUrl]).catch((e: { code: number; stderr: string }) => e);
  t.is((missing as { code: number }).code, 1);
  t.regex((missing as { stderr: string }).stderr, /cannot read .*invocations\.csv/);
  const unreachable = await run(process.execPath, [CLI, 'replay', SLICE, '--admin', 'http://127.0.0.1:1', '--out', join(dir, 'x.csv')]).catch((e: { code: number; stderr: string }) => e);
  t.is((unreachable as { code: number }).code, 1);
  t.regex((unreachable as { stderr: string }).stderr, /cannot reach the admin API at http:\/\/127\.0\.0\.1:1/);
  const usage = await run(process.execPath, [CLI, 'replay', SLICE, '--compress', 'fast']).catch((e: { code: number; stderr: string }) => e);
  t.is((usage as { code: number }).code, 2);
  t.regex((usage as { stderr: string }).stderr, /--compress must be a number in 0\.01\.\.10000/);
});
