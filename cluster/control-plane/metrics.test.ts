// The control plane's Prometheus exposition over a real local cluster: a control plane with its admin API, a
// worker with simulated sandboxes and a data plane; requests over HTTP, then GET /metrics.
import test from 'ava';
import { ControlPlane } from './control-plane.js';
import { soleReplica, startAdminApi } from './admin-api.js';
import { WorkerDaemon } from '../worker/daemon.js';
import { DataPlane } from '../data-plane/data-plane.js';
import { COLD_START_BUCKETS_MS } from '../../actors/messages.js';
import { until as pollUntil } from '../../runtime/fixtures/until.js';

const TOKEN = 'metrics-test-token';
const until = <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => pollUntil(what, probe, 10_000, 25);


interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/.source;
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(${LABEL}(?:,${LABEL})*)\\})? (\\S+)$`);
const VALUE = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/;

/**
 * Parses the text format strictly: every line is `# HELP`, `# TYPE` or a sample `name{labels} value`; HELP and TYPE
 * come once per family, before its samples, and a family's samples are one group (a histogram's are its
 * `_bucket`, `_sum` and `_count`). Throws on the first violation.
 */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const types = new Map<string, string>();
  const helped = new Set<string>();
  const closed = new Set<string>();
  let current: string | null = null;
  const samples: Sample[] = [];
  const familyOf = (name: string): string => {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const base = name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && types.get(base) === 'histogram') return base;
    }
    return name;
  };
  const enter = (family: string, line: string): void => {
    if (family === current) return;
    if (closed.has(family)) throw new Error(`family ${family} is split into several groups: ${line}`);
    if (current !== null) closed.add(current);
    current = family;
  };
  for (const line of text.slice(0, -1).split('\n')) {
    const meta = /^# (HELP|TYPE) (\S+) (.+)$/.exec(line);
    if (meta) {
      const [, kind, name] = meta as unknown as [string, string, string, string];
      enter(name, line);
      const seen = kind === 'HELP' ? helped : types;
      if (seen.has(name)) throw new Error(`second ${kind} for ${name}`);
      if (kind === 'HELP') helped.add(name);
      else {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(meta[3]!)) throw new Error(`bad type: ${line}`);
        types.set(name, meta[3]!);
      }
      continue;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const [, name, rawLabels, rawValue] = match as unknown as [string, string, string | undefined, string];
    if (!VALUE.test(rawValue)) throw new Error(`bad value: ${line}`);
    const family = familyOf(name);
    if (!types.has(family)) throw new Error(`sample before its TYPE: ${line}`);
    enter(family, line);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (rawLabels ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name, labels, value: rawValue === '+Inf' ? Infinity : Number(rawValue) });
  }
  return { samples, types };
}

function value(samples: readonly Sample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length)?.value;
}

test.serial('/metrics counts invocations, cold starts with their queue-time histogram, rejections, queue depth and scaling decisions per function', async (t) => {
  const logs: string[] = [];
  const onLog = (level: string, text: string) => logs.push(`${level} ${text}`);
  const plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: TOKEN, store: { kind: 'memory' }, shards: 1, onLog });
  t.teardown(() => plane.stop());
  const admin = await startAdminApi(soleReplica(plane), { host: '127.0.0.1', port: 0 });
  t.teardown(() => admin.close());
  const worker = await WorkerDaemon.start({
    id: 'w1',
    controlPlane: plane.clusterAddress,
    token: TOKEN,
    host: '127.0.0.1',
    runtime: 'simulated',
    capacity: { cpuMilli: 8000, memoryMiB: 8192, slots: 20 },
    shards: 1,
    simulatedLatencyMs: 50,
    onLog,
  });
  t.teardown(() => worker.stop());
  const dp = await DataPlane.start({ id: 'dp1', controlPlane: plane.clusterAddress, token: TOKEN, host: '127.0.0.1', httpPort: 0, shards: 1, tuning: { tickMs: 100 }, onLog });
  t.teardown(() => dp.stop());
  await until('the node to register', async () => ((await plane.nodes()).length === 1 ? true : undefined));
  await until('the data plane to register', async () => (plane.listDataplanes().some((d) => d.id === 'dp1' && d.connected) ? true : undefined));

  const created = await plane.createFunction({
    name: 'hello',
    runtime: 'simulated',
    source: { kind: 'builtin', workload: 'echo' },
    maxBodyBytes: 16,
    scaling: { tickMs: 100 },
  });
  t.true(created.ok, JSON.stringify(created));
  const invoke = (body: string) => fetch(`http://${dp.invokeAddress}/invoke/hello`, { method: 'POST', body, signal: AbortSignal.timeout(15_000) });

  const cold = await invoke('first');
  t.is(cold.status, 200, `${await cold.clone().text()}\n${logs.join('\n')}`);
  t.is(cold.headers.get('x-dirigent-cold-start'), 'true');
  const coldQueueMs = Number(cold.headers.get('x-dirigent-queue-ms'));
  t.true(coldQueueMs >= 40, `queued ${coldQueueMs} ms for a 50 ms creation`);
  for (let i = 0; i < 3; i++) {
    const warm = await invoke(`warm${i}`);
    t.is(warm.status, 200);
    t.is(warm.headers.get('x-dirigent-cold-start'), 'false');
    await warm.arrayBuffer();
  }
  const large = await invoke('x'.repeat(100));
  t.is(large.status, 413, 'over the function limit: the router answers');
  await large.arrayBuffer();

  const fn = { function: 'hello' };
  // The totals reach the control plane with the router's next report (every 100 ms here).
  const { text, samples, types } = await until('the counters in /metrics', async () => {
    const response = await fetch(`${admin.url}/metrics`);
    t.is(response.status, 200);
    t.regex(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const body = await response.text();
    const parsed = parseExposition(body);
    // The queue depth is each report's peak: 0 once a report period without load has passed.
    const ready =
      value(parsed.samples, 'dirigent_invocations_total', fn) === 4 &&
      value(parsed.samples, 'dirigent_rejected_requests_total', { ...fn, status: '413' }) === 1 &&
      value(parsed.samples, 'dirigent_queue_depth', fn) === 0;
    return ready ? { text: body, ...parsed } : undefined;
  });

  t.is(types.get('dirigent_invocations_total'), 'counter');
  t.is(types.get('dirigent_cold_starts_total'), 'counter');
  t.is(types.get('dirigent_cold_start_queue_ms'), 'histogram');
  t.is(types.get('dirigent_queue_depth'), 'gauge');
  t.is(types.get('dirigent_scaling_decisions_total'), 'counter');
  t.is(types.get('dirigent_rejected_requests_total'), 'counter');
  t.is(text.match(/^# TYPE dirigent_cold_start_queue_ms /gm)?.length, 1);

  t.is(value(samples, 'dirigent_cold_starts_total', fn), 1);
  const bucketLines = samples.filter((s) => s.name === 'dirigent_cold_start_queue_ms_bucket' && s.labels.function === 'hello');
  t.deepEqual(
    bucketLines.map((s) => s.labels.le),
    [...COLD_START_BUCKETS_MS.map(String), '+Inf'],
    'one bucket per bound, in order, then +Inf',
  );
  t.deepEqual(
    bucketLines.map((s) => s.value),
    [...COLD_START_BUCKETS_MS, Infinity].map((bound) => (coldQueueMs <= bound ? 1 : 0)),
    `the one cold start (${coldQueueMs} ms) from its bucket on`,
  );
  t.is(value(samples, 'dirigent_cold_start_queue_ms_count', fn), 1);
  t.is(value(samples, 'dirigent_cold_start_queue_ms_sum', fn), coldQueueMs, 'the sum is the queue time the response reported');
  t.true((value(samples, 'dirigent_scaling_decisions_total', fn) ?? 0) >= 1, 'at least the scale-from-zero');
  t.is(value(samples, 'dirigent_sandboxes', { ...fn, state: 'ready' }), 1);
  t.deepEqual(
    samples.filter((s) => s.name.startsWith('dirigent_') && s.labels.function === 'hello').length,
    3 + 8 + 12 + 2,
    'sandboxes by phase; desired, panic, observed, queue depth, decisions, invocations, cold starts, one rejection status; 12 buckets, _sum and _count',
  );
});

test('the exposition check itself refuses what Prometheus would', (t) => {
  const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{f="x"} 1\n# HELP h H.\n# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 2.5\nh_count 1\n';
  t.is(parseExposition(ok).samples.length, 4);
  t.throws(() => parseExposition(`${ok}# TYPE a_total counter\n`), { message: /split|second TYPE/ });
  t.throws(() => parseExposition('# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n'), { message: /split/ });
  t.throws(() => parseExposition('# TYPE a gauge\na{f=x} 1\n'), { message: /not a sample line/ });
  t.throws(() => parseExposition('# TYPE a gauge\na one\n'), { message: /bad value/ });
  t.throws(() => parseExposition('b 1\n'), { message: /before its TYPE/ });
});
