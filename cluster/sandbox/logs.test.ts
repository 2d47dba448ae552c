// What a sandbox's output ring keeps, and that both real runtimes fill it with stamped, stream-tagged lines.
import test from 'ava';
import { ProcessRuntime } from './process.js';
import { LogRing } from './runtime.js';
import { eventually, fixture, request, spec } from './testing.js';
import { ThreadRuntime } from './thread.js';

test('the ring keeps the newest lines within its line and byte bounds, cuts long lines and numbers every line', (t) => {
  const ring = new LogRing({ lines: 3, bytes: 1000, lineChars: 8 });
  for (let i = 1; i <= 5; i++) ring.push('stdout', `line ${i}`, i * 10);
  t.deepEqual(ring.entries().map((e) => [e.seq, e.line, e.t]), [[3, 'line 3', 30], [4, 'line 4', 40], [5, 'line 5', 50]], 'the oldest go first');
  ring.push('stderr', 'a line longer than eight', 60);
  t.like(ring.entries().at(-1), { seq: 6, stream: 'stderr', line: 'a line l...' });
  t.deepEqual(ring.entries(50).map((e) => e.seq), [5, 6], 'since is inclusive');

  // 'é' is two bytes in UTF-8: three lines of four of them are 24 bytes, over a 20-byte bound.
  const bytes = new LogRing({ lines: 100, bytes: 20, lineChars: 100 });
  for (let i = 0; i < 3; i++) bytes.push('stdout', 'éééé', i);
  t.deepEqual(bytes.entries().map((e) => e.seq), [2, 3]);
  bytes.push('stdout', 'x'.repeat(50), 9);
  t.deepEqual(bytes.entries().map((e) => e.seq), [4], 'a line over the byte bound alone is still kept');
  t.throws(() => new LogRing({ lines: 0, bytes: 10, lineChars: 10 }), { instanceOf: RangeError });
});

test.serial('a thread sandbox captures console and direct writes, each line stamped and tagged with its stream; an unfinished line ends with the turn', async (t) => {
  const runtime = new ThreadRuntime();
  t.teardown(() => runtime.close());
  const before = Date.now();
  const sandbox = await runtime.create(spec('out1', { kind: 'thread', module: fixture('output.mjs') }));
  t.is((await sandbox.invoke(request('/'))).status, 200);
  const expected: [string, string][] = [
    ['stdout', 'loaded'],
    ['stdout', 'console.log line'],
    ['stdout', 'console.info line'],
    ['stderr', 'console.warn line'],
    ['stderr', 'console.error line'],
    ['stdout', 'direct stdout line'],
    ['stdout', 'partial joined'],
    ['stderr', 'direct stderr line'],
    ['stdout', 'no newline at the end'],
  ];
  t.true(await eventually(() => sandbox.logs().length === expected.length), JSON.stringify(sandbox.logs()));
  const entries = sandbox.logs();
  t.deepEqual(entries.map((e) => [e.stream, e.line]), expected);
  t.deepEqual(entries.map((e) => e.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.true(entries.every((e) => e.t >= before && e.t <= Date.now()), 'stamped with wall time when written');
  await runtime.destroy('out1');
  t.is(sandbox.logs().length, expected.length, 'the lines outlive the sandbox');
});

test.serial('a process sandbox tags stdout and stderr lines', async (t) => {
  const runtime = new ProcessRuntime();
  t.teardown(() => runtime.close());
  const sandbox = await runtime.create(spec('out2', { kind: 'process', command: process.execPath, args: [fixture('output-server.mjs')] }));
  await sandbox.invoke(request('/x'));
  t.true(await eventually(() => sandbox.logs().length === 2));
  // Two pipes: which of the two lines arrives first is up to the kernel.
  t.deepEqual(sandbox.logs().map((e) => [e.stream, e.line]).sort(), [
    ['stderr', 'err /x'],
    ['stdout', 'out /x'],
  ]);
});
