// Overload of a real `dirigent up` (thread runtime): a function with a capacity of 20 requests per second (two
// sandboxes, one request at a time each, 100 ms per request) is sent 10x that, open loop, for 10 s, then half its
// capacity again. Promised: every request is answered (a status, none lost: no reset, no timeout), the answers
// beyond capacity are 429 (queue full, with Retry-After) or 503/504 (no slot in time), the data plane's memory
// stays bounded (its RSS is sampled from /proc and printed), and once the load drops every request is served.
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenLoop, type LoadSummary } from './fixtures/open-loop.js';
import { childPid, rssMiB, startUp } from './fixtures/up-process.js';

const TOKEN = 'overload-test-token';
/** What one request costs the function, ms: its capacity is SANDBOXES * 1000 / WORK_MS requests per second. */
const WORK_MS = 100;
const SANDBOXES = 2;
const CAPACITY_PER_S = (SANDBOXES * 1000) / WORK_MS;
/** Requests a function holds waiting for a slot; beyond them, 429. */
const QUEUE_DEPTH = 20;
const OVERLOAD_S = 10;
/** Bound on the data plane's RSS growth over the overload, MiB. */
const RSS_GROWTH_BOUND_MIB = 150;

const SLEEPER = `export async function handler() {
  await new Promise((resolve) => setTimeout(resolve, ${WORK_MS}));
  return 'done';
}
`;

const line = (s: LoadSummary) => `sent ${s.sent}, 200: ${s.ok}, failed ${JSON.stringify(s.failed)}, max latency ${s.maxLatencyMs} ms`;

test.serial(`10x capacity for ${OVERLOAD_S} s: every request answered (429/503/504 beyond capacity), memory bounded, served again once the load drops`, async (t) => {
  t.timeout(240_000);
  const dir = await mkdtemp(join(tmpdir(), 'dirigent-overload-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'sleeper.mjs'), SLEEPER);
  const up = await startUp(t, ['--workers', '1', '--data-dir', join(dir, 'state')], { DIRIGENT_TOKEN: TOKEN }, 90_000);
  const spec = { name: 'sleeper', runtime: 'thread', source: { kind: 'thread', module: join(dir, 'sleeper.mjs') }, concurrency: 1, queueDepth: QUEUE_DEPTH, queueTimeoutMs: 2000, scaling: { minScale: SANDBOXES, maxScale: SANDBOXES } };
  const created = await fetch(`${up.info.admin}/api/v1/functions`, { method: 'POST', body: JSON.stringify(spec), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(60_000) });
  t.is(created.status, 201, await created.text());
  const port = Number(new URL(up.info.compat).port);
  const dataPlane = childPid(up.process.pid!, 'data-plane');
  t.truthy(dataPlane, 'the data plane process');

  // Warm: both sandboxes serve.
  for (let i = 0; i < 50; i++) {
    const statuses = await Promise.all([0, 1].map(() => fetch(`${up.info.invoke}/invoke/sleeper`, { method: 'POST', body: 'w' }).then(async (r) => (await r.text(), r.status))));
    if (statuses.every((s) => s === 200)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const full = await fetch(`${up.info.invoke}/invoke/sleeper`, { method: 'POST', body: 'x' });
  t.is(full.status, 200);
  await full.text();

  const phase = async (ratePerS: number, seconds: number) => {
    const samples: number[] = [];
    const sampler = setInterval(() => {
      const rss = rssMiB(dataPlane!);
      if (rss !== undefined) samples.push(rss);
    }, 250);
    const load = new OpenLoop({ targets: [{ name: 'dp1', port }], ratePerS, functionName: 'sleeper', timeoutMs: 15_000 });
    const from = Date.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const to = Date.now();
    await load.stop();
    clearInterval(sampler);
    return { summary: load.summary(from, to), records: load.records, peakMiB: Math.max(...samples), from };
  };

  const baselineMiB = rssMiB(dataPlane!)!;
  const overload = await phase(10 * CAPACITY_PER_S, OVERLOAD_S);
  const afterMiB = rssMiB(dataPlane!)!;
  const recovery = await phase(CAPACITY_PER_S / 2, 5);
  const figures = {
    capacityPerS: CAPACITY_PER_S,
    overloadPerS: 10 * CAPACITY_PER_S,
    overload: overload.summary,
    dataPlaneRssMiB: { before: Math.round(baselineMiB), peak: Math.round(overload.peakMiB), after: Math.round(afterMiB) },
    recovery: recovery.summary,
  };
  t.log(`overload: ${line(overload.summary)}`);
  t.log(`data plane RSS: ${figures.dataPlaneRssMiB.before} MiB before, ${figures.dataPlaneRssMiB.peak} MiB at peak, ${figures.dataPlaneRssMiB.after} MiB after`);
  t.log(`recovery at ${CAPACITY_PER_S / 2}/s: ${line(recovery.summary)}, last failure ${recovery.summary.lastFailureMs} ms into it`);
  t.log(JSON.stringify(figures));

  // Every request answered: no connection error, no timeout; beyond capacity only the overload statuses.
  for (const { records } of [overload, recovery]) {
    const unanswered = records.filter((r) => r.status === 0);
    t.is(unanswered.length, 0, `unanswered: ${JSON.stringify(unanswered.slice(0, 3))}`);
    t.deepEqual([...new Set(records.map((r) => r.status))].filter((s) => ![200, 429, 503, 504].includes(s)), []);
  }
  // Still serving during the overload (a tenth of its capacity at least: the sender shares 2 loaded cores).
  t.true(overload.summary.ok >= CAPACITY_PER_S * OVERLOAD_S * 0.1, `served ${overload.summary.ok} during the overload`);
  t.true((overload.summary.failed['429'] ?? 0) > 0, 'the queue filled: 429');
  t.true(overload.peakMiB - baselineMiB < RSS_GROWTH_BOUND_MIB, `RSS grew ${Math.round(overload.peakMiB - baselineMiB)} MiB`);
  // Recovered: after its first 2 s (the overload's queue drains within queueTimeoutMs), every request is served.
  const late = recovery.records.filter((r) => r.sentAt >= recovery.from + 2000);
  t.true(late.length > 0);
  t.deepEqual(late.filter((r) => r.status !== 200).map((r) => r.status), []);
});
