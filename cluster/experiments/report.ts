// `dirigent report <csv>...`: the paper's metrics for one or more replays side by side, beside Dirigent's
// published figures, and the CDF plots of the paper's trace figures as SVG files.
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { analyze, type AnalyzeOptions, type Percentiles, type RunMetrics, type RunSamples } from './metrics.js';
import { parseRecords } from './records.js';
import { cdfSvg, type CdfReference } from './svg-cdf.js';

/**
 * Dirigent on the Azure-500 trace (SOSP '24, read off its trace figures; /work/shared/REFERENCE.md section 3):
 * percentiles of the per-invocation and per-function-mean scheduling latency (ms) and of the slowdown.
 */
export const DIRIGENT_PUBLISHED = {
  label: 'Dirigent, Azure-500 (SOSP \'24)',
  schedMs: { p50: 1.9, p90: 245, p99: 1200 },
  perFunctionMeanMs: { p50: 210, p90: 440, p99: 1500 },
  slowdown: { p50: 2.5, p90: 54 },
} as const;

export interface RunReport {
  readonly label: string;
  readonly source: string;
  readonly metrics: RunMetrics;
  readonly samples: RunSamples;
}

export async function loadRun(path: string, options: AnalyzeOptions): Promise<RunReport> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  const { metrics, samples } = analyze(parseRecords(text, path), options);
  return { label: basename(path).replace(/\.csv$/, ''), source: path, metrics, samples };
}

const ms = (x: number) => (Number.isNaN(x) ? '-' : x < 10 ? x.toFixed(2) : x < 1000 ? x.toFixed(1) : x.toFixed(0));
const ratio = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(2));

/** The runs side by side, one column each, Dirigent's published figures last. */
export function reportText(runs: readonly RunReport[]): string {
  const pub = DIRIGENT_PUBLISHED;
  const rows: [string, (m: RunMetrics) => string, string][] = [
    ['invocations measured', (m) => String(m.invocations), ''],
    ['functions', (m) => String(m.functions), '500'],
    ['failed', (m) => `${m.failed} (${m.connectionTimeouts} no answer, ${m.functionTimeouts} error)`, ''],
    ['cold starts', (m) => (m.coldStarts === null ? 'n/a' : String(m.coldStarts)), ''],
  ];
  const pct = (name: string, pick: (m: RunMetrics) => Percentiles, published: Partial<Percentiles>, f: (x: number) => string) => {
    for (const p of ['p50', 'p90', 'p99'] as const) rows.push([`${name} ${p}`, (m) => f(pick(m)[p]), published[p] === undefined ? '' : f(published[p])]);
  };
  pct('scheduling latency ms, per invocation', (m) => m.schedMs, pub.schedMs, ms);
  pct('scheduling latency ms, per-function mean', (m) => m.perFunctionMeanMs, pub.perFunctionMeanMs, ms);
  pct('slowdown, per function', (m) => m.slowdown, pub.slowdown, ratio);
  pct('end to end ms', (m) => m.responseMs, {}, ms);
  pct('cold starts: scheduling latency ms', (m) => m.coldStartSchedMs, {}, ms);
  pct('cold starts: queued in the data plane ms', (m) => m.coldStartQueueMs, {}, ms);
  const header = ['', ...runs.map((r) => r.label), 'Dirigent (paper)'];
  const table = [header, ...rows.map(([name, cell, published]) => [name, ...runs.map((r) => cell(r.metrics)), published])];
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return table.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd()).join('\n');
}

/** The paper's three trace figures as CDFs of every run, with Dirigent's published percentiles as markers. */
export function reportPlots(runs: readonly RunReport[]): { name: string; svg: string }[] {
  const pub = DIRIGENT_PUBLISHED;
  const reference = (points: Partial<Percentiles>): CdfReference[] => [
    { label: pub.label, points: (['p50', 'p90', 'p99'] as const).flatMap((p) => (points[p] === undefined ? [] : [[points[p], Number(p.slice(1)) / 100] as const])) },
  ];
  return [
    { name: 'sched-latency-per-invocation.svg', svg: cdfSvg({ title: 'Per-invocation scheduling latency', xLabel: 'response time - function run time, ms', floor: 0.01, series: runs.map((r) => ({ label: r.label, sorted: r.samples.schedMs })), references: reference(pub.schedMs) }) },
    { name: 'sched-latency-per-function.svg', svg: cdfSvg({ title: 'Per-function mean scheduling latency', xLabel: 'mean scheduling latency of a function, ms', floor: 0.01, series: runs.map((r) => ({ label: r.label, sorted: r.samples.perFunctionMeanMs })), references: reference(pub.perFunctionMeanMs) }) },
    { name: 'slowdown-per-function.svg', svg: cdfSvg({ title: 'Per-function slowdown', xLabel: 'geometric mean of response time / requested run time', floor: 1, series: runs.map((r) => ({ label: r.label, sorted: r.samples.slowdown })), references: reference(pub.slowdown) }) },
  ];
}

export async function writePlots(runs: readonly RunReport[], dir: string): Promise<string[]> {
  const written: string[] = [];
  for (const { name, svg } of reportPlots(runs)) {
    const path = join(dir, name);
    await writeFile(path, svg);
    written.push(path);
  }
  return written;
}
