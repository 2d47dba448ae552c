// FunctionHistory with a manual clock and timer: a sample per tick, HISTORY_MS kept, a deleted function's
// history dropped, a failed read skipped.
import test from 'ava';
import { FunctionHistory, HISTORY_MS, SAMPLE_MS, type HistoryTimer } from './function-history.js';

test('samples every SAMPLE_MS, keeps HISTORY_MS, forgets deleted functions, skips failed reads', async (t) => {
  let now = 1_000_000;
  let tick: (() => void) | undefined;
  const timer: HistoryTimer = { every: (ms, fn) => (t.is(ms, SAMPLE_MS), (tick = fn), () => (tick = undefined)) };
  let functions = new Map([['f', { invocations: 0, coldStarts: 0, ready: 1, inFlight: 0, queued: 0 }], ['g', { invocations: 5, coldStarts: 1, ready: 0, inFlight: 0, queued: 0 }]]);
  let fail = false;
  const history = new FunctionHistory(async () => {
    if (fail) throw new Error('the runtime is stopping');
    return functions;
  }, () => now, timer);
  history.start();
  t.truthy(tick);
  const steps = HISTORY_MS / SAMPLE_MS + 10;
  for (let i = 0; i < steps; i++) {
    functions.set('f', { ...functions.get('f')!, invocations: i });
    await history.sample();
    now += SAMPLE_MS;
  }
  const f = history.of('f');
  t.is(f.length, HISTORY_MS / SAMPLE_MS + 1, 'the last 5 minutes, both ends included');
  t.is(f[f.length - 1]!.invocations, steps - 1);
  t.true(f[f.length - 1]!.t - f[0]!.t <= HISTORY_MS);
  fail = true;
  await history.sample();
  t.is(history.of('f').length, f.length, 'a failed read changes nothing');
  fail = false;
  functions = new Map([['f', functions.get('f')!]]);
  await history.sample();
  t.deepEqual(history.of('g'), []);
  history.stop();
  t.is(tick, undefined);
});
