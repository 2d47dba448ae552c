import test from 'ava';
import { analyze } from './metrics.js';
import type { InvocationRecord } from './records.js';
import { DIRIGENT_PUBLISHED, reportPlots, reportText, type RunReport } from './report.js';
import { cdfSvg } from './svg-cdf.js';
import { xySvg } from './svg-xy.js';

function run(label: string, schedMs: number[]): RunReport {
  const records: InvocationRecord[] = schedMs.map((s, i) => ({
    phase: 2,
    instance: `f${i % 3}`,
    invocationID: `min0.inv${i}`,
    startTime: i,
    requestedDuration: 100_000,
    responseTime: 100_000 + s * 1000,
    actualDuration: 100_000,
    connectionTimeout: false,
    functionTimeout: false,
    coldStart: i === 0,
  }));
  return { label, source: `${label}.csv`, ...analyze(records) };
}

test('runs side by side, one column each, with the published figures last', (t) => {
  const text = reportText([run('fast', [1, 2, 3, 4]), run('slow', [100, 200, 300, 400])]);
  const lines = text.split('\n');
  t.regex(lines[0]!, /fast\s+slow\s+Dirigent \(paper\)$/);
  t.regex(text, /scheduling latency ms, per invocation p50\s+2\.50\s+250\.0\s+1\.90/);
  t.regex(text, /cold starts\s+1\s+1/);
  t.regex(text, new RegExp(`slowdown, per function p50\\s+\\S+\\s+\\S+\\s+${DIRIGENT_PUBLISHED.slowdown.p50.toFixed(2)}`));
});

test('three CDF plots with a line per run and the published percentiles as markers', (t) => {
  const plots = reportPlots([run('a', [1, 2, 3]), run('b', [0, 5, 50])]);
  t.deepEqual(plots.map((p) => p.name), ['sched-latency-per-invocation.svg', 'sched-latency-per-function.svg', 'slowdown-per-function.svg']);
  for (const { svg } of plots) {
    t.true(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"') && svg.trimEnd().endsWith('</svg>'));
    t.is(svg.match(/<polyline/g)?.length, 2);
    t.regex(svg, /Dirigent, Azure-500/);
  }
  t.regex(plots[0]!.svg, /p50 1\.9/);
});

test('plots escape labels and survive empty series; the xy plot draws dashed references', (t) => {
  const svg = cdfSvg({ title: 'a < b & "c"', xLabel: 'ms', floor: 0.01, series: [{ label: '<run>', sorted: [] }] });
  t.regex(svg, /a &lt; b &amp; &quot;c&quot;/);
  t.regex(svg, /&lt;run&gt; \(n = 0\)/);
  const xy = xySvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ label: 'm', points: [[1, 10], [100, 20]] }, { label: 'r', points: [[1, 170]], dashed: true }], yMark: { y: 1000, label: '1 s' } });
  t.is(xy.match(/<polyline/g)?.length, 2);
  t.regex(xy, /stroke-dasharray="6 4"/);
});
