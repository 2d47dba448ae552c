import test from 'ava';
import { analyze, percentile } from './metrics.js';
import { minuteOf, parseRecords, recordHeader, recordLine, type InvocationRecord } from './records.js';

const row = (fn: string, minute: number, responseMs: number, actualMs: number, requestedMs: number, extra: Partial<InvocationRecord> = {}): InvocationRecord => ({
  phase: 2,
  instance: fn,
  invocationID: `min${minute}.inv0`,
  startTime: 1_700_000_000_000_000 + minute,
  requestedDuration: requestedMs * 1000,
  responseTime: responseMs * 1000,
  actualDuration: actualMs * 1000,
  connectionTimeout: false,
  functionTimeout: false,
  function: fn,
  httpStatus: 200,
  coldStart: false,
  ...extra,
});

test('percentile interpolates between ranks', (t) => {
  t.is(percentile([1, 2, 3, 4, 5], 50), 3);
  t.is(percentile([1, 2, 3, 4], 50), 2.5);
  t.is(percentile([10], 99), 10);
  t.true(Number.isNaN(percentile([], 50)));
  t.is(percentile([0, 100], 90), 90);
});

test('scheduling latency, per-function mean, slowdown, failures and cold starts', (t) => {
  const records = [
    row('a', 0, 102, 100, 100),
    row('a', 0, 110, 100, 100, { coldStart: true, queueTime: 4000 }),
    row('b', 1, 520, 500, 400),
    row('b', 1, 1000, 0, 400, { functionTimeout: true, httpStatus: 503 }),
    row('b', 1, 30_000, 0, 400, { connectionTimeout: true, httpStatus: 0 }),
    row('a', 1, 90, 89, 100),
    { ...row('a', 0, 5000, 100, 100), phase: 1 },
  ];
  const { metrics, samples } = analyze(records);
  t.is(metrics.invocations, 6);
  t.is(metrics.failed, 2);
  t.is(metrics.connectionTimeouts, 1);
  t.is(metrics.functionTimeouts, 1);
  t.is(metrics.coldStarts, 1);
  t.is(metrics.functions, 2);
  t.deepEqual([...samples.schedMs], [1, 2, 10, 20]);
  // a: (2 + 10 + 1) / 3; b: 20.
  t.deepEqual([...samples.perFunctionMeanMs], [13 / 3, 20]);
  // a: ratios 1.02, 1.1 (0.9 < 1 is left out) -> geometric mean; b: 1.3.
  t.is(samples.slowdown.length, 2);
  t.true(Math.abs(samples.slowdown[0]! - Math.sqrt(1.02 * 1.1)) < 1e-12);
  t.true(Math.abs(samples.slowdown[1]! - 1.3) < 1e-12);
  t.is(metrics.schedMs.p50, 6);
  t.is(metrics.coldStartSchedMs.p50, 10);
  t.is(metrics.coldStartQueueMs.p50, 4);
});

test('dropMinutes drops the first execution minutes by the trace minute in invocationID', (t) => {
  const records = [row('a', 3, 110, 100, 100), row('a', 4, 101, 100, 100), row('a', 5, 105, 100, 100)];
  t.is(analyze(records, { dropMinutes: 1 }).metrics.invocations, 2);
  t.is(analyze(records, { dropMinutes: 3 }).metrics.invocations, 0);
  t.is(minuteOf('min12.inv3'), 12);
  t.is(minuteOf('x'), undefined);
});

test('records go to CSV and back; the loader CSV without our columns reads too', (t) => {
  const records = [row('a', 0, 102, 100, 100), row('b', 2, 1, 0, 5, { connectionTimeout: true, httpStatus: 0, coldStart: true, queueTime: 1500, sendLateness: 17 })];
  const text = `${recordHeader()}\n${records.map(recordLine).join('\n')}\n`;
  t.deepEqual(parseRecords(text, 'x.csv'), records);
  const loader = 'phase,instance,invocationID,startTime,requestedDuration,grpcConnEstablish,responseTime,actualDuration,connectionTimeout,functionTimeout,actualMemoryUsage\n2,f,min1.inv0,17,100000,5,101000,100000,false,false,0\n';
  const [parsed] = parseRecords(loader, 'loader.csv');
  t.like(parsed, { phase: 2, instance: 'f', responseTime: 101000, actualDuration: 100000 });
  t.is(parsed!.coldStart, undefined);
  t.is(analyze(parseRecords(loader, 'loader.csv')).metrics.coldStarts, null);
  t.throws(() => parseRecords('a,b\n1,2\n', 'bad.csv'), { message: /bad\.csv: not an invocation CSV: no column phase/ });
  t.throws(() => parseRecords(`${recordHeader()}\n2,f,min1.inv0,x,1,1,1,false,false,,,,,\n`, 'bad.csv'), { message: /bad\.csv line 2: startTime must be a number/ });
});
