import test from 'ava';
import { readFile } from 'node:fs/promises';
import { formatAzureTrace, parseAzureTrace, readAzureTrace, TraceError } from './azure-trace.js';

const SLICE = new URL('../../../cluster/experiments/fixtures/example-slice', import.meta.url).pathname;

test('reads the loader example slice: 4 functions joined on HashFunction, 8 minutes each', async (t) => {
  const fns = await readAzureTrace(SLICE);
  t.is(fns.length, 4);
  t.deepEqual(fns[0]!.invocations, [5, 5, 5, 5, 5, 5, 5, 5]);
  t.deepEqual(fns[1]!.invocations, [0, 0, 0, 0, 0, 5, 5, 5]);
  t.is(fns[0]!.trigger, 'queue');
  t.like(fns[1]!.durations, { average: 500, p0: 500, p100: 501 });
  t.like(fns[3]!.memory, { p1: 112, p100: 113 });
  t.like(fns[0]!.dirigent, { scalingUpperBound: 1, scalingLowerBound: 0, iterationMultiplier: 80 });
});

test('formatting and parsing again gives the same trace', async (t) => {
  const fns = await readAzureTrace(SLICE);
  const again = parseAzureTrace(formatAzureTrace(fns));
  t.deepEqual(again.map(({ dirigent: _d, ...f }) => f), fns.map(({ dirigent: _d, ...f }) => f));
});

test('bad input names the file, the line and the column', async (t) => {
  const files = { invocations: await readFile(`${SLICE}/invocations.csv`, 'utf8'), durations: await readFile(`${SLICE}/durations.csv`, 'utf8'), memory: await readFile(`${SLICE}/memory.csv`, 'utf8') };
  const broken = files.invocations.replace(',queue,5,5,5', ',queue,5,x,5');
  t.throws(() => parseAzureTrace({ ...files, invocations: broken }), { instanceOf: TraceError, message: /invocations\.csv line 2, column 2: expected a number >= 0, got "x"/ });
  const short = files.durations.split('\n').slice(0, 2).join('\n');
  t.throws(() => parseAzureTrace({ ...files, durations: short }), { message: /durations\.csv: no row for HashFunction a2faad/ });
  t.throws(() => parseAzureTrace({ ...files, memory: 'HashFunction,SampleCount\nx,1\n' }), { message: /memory\.csv: no column AverageAllocatedMb/ });
  t.throws(() => parseAzureTrace({ ...files, invocations: `${files.invocations}c455,x,c13acdc7567b225971cef2416a3a2b03c8a4d8d154df48afe75834e2f5c59ddf,http,1,1,1,1,1,1,1,1\n` }), { message: /appears twice/ });
  t.throws(() => parseAzureTrace({ ...files, dirigent: '{' }), { message: /dirigent\.json: not JSON/ });
});

test('a missing folder is a TraceError naming the file', async (t) => {
  await t.throwsAsync(readAzureTrace('/nonexistent-trace-dir'), { instanceOf: TraceError, message: /cannot read \/nonexistent-trace-dir\/invocations\.csv/ });
});
