import test from 'ava';
import { defaultAutoscalerConfig, MAX_SCALE_LIMIT } from './autoscaler-config.js';
import {
  defaultFunctionSpec,
  parseDirigentRegistration,
  parseFunctionSpec,
  updateFunctionSpec,
  type FunctionSpec,
  type SpecError,
} from './function-spec.js';

const threadSource = { kind: 'thread', module: './handler.mjs' } as const;
const minimal = { name: 'hello', source: threadSource };

function parsed(input: unknown): FunctionSpec {
  const result = parseFunctionSpec(input);
  if (!result.ok) throw new Error(`expected a valid spec, got ${JSON.stringify(result.errors)}`);
  return result.spec;
}

function errorsOf(input: unknown): SpecError[] {
  const result = parseFunctionSpec(input);
  if (result.ok) throw new Error(`expected errors, got ${JSON.stringify(result.spec)}`);
  return result.errors;
}

// ---- Defaults and valid input ----

test('minimal input gets every default, version 1', (t) => {
  t.deepEqual(parsed(minimal), {
    name: 'hello',
    runtime: 'thread',
    source: { kind: 'thread', module: './handler.mjs' },
    cpuMilli: 100,
    memoryMiB: 128,
    concurrency: 1,
    timeoutMs: 60_000,
    queueDepth: 1000,
    queueTimeoutMs: 10_000,
    maxBodyBytes: 6 * 1024 * 1024,
    env: {},
    scaling: { ...defaultAutoscalerConfig },
    version: 1,
    templateVersion: 1,
  });
  t.is(defaultFunctionSpec.runtime, 'thread');
});

const validCases: { title: string; input: Record<string, unknown>; expect: Partial<FunctionSpec> }[] = [
  { title: 'a process source without runtime runs on the process runtime', input: { name: 'p', source: { kind: 'process', command: 'python3' } }, expect: { runtime: 'process', source: { kind: 'process', command: 'python3', args: [] } } },
  { title: 'process args are kept', input: { name: 'p', source: { kind: 'process', command: 'node', args: ['server.js', '--port=$PORT'] } }, expect: { source: { kind: 'process', command: 'node', args: ['server.js', '--port=$PORT'] } } },
  { title: 'a builtin source without runtime runs on the default runtime', input: { name: 'b', source: { kind: 'builtin', workload: 'echo' } }, expect: { runtime: 'thread' } },
  { title: 'simulated runtime with a builtin workload', input: { name: 'b', runtime: 'simulated', source: { kind: 'builtin', workload: 'trace' } }, expect: { runtime: 'simulated' } },
  { title: 'process runtime with a builtin workload', input: { name: 'b', runtime: 'process', source: { kind: 'builtin', workload: 'empty' } }, expect: { runtime: 'process' } },
  { title: 'a 63-character name', input: { ...minimal, name: `a${'-'.repeat(61)}b` }, expect: { name: `a${'-'.repeat(61)}b` } },
  { title: 'a one-character name', input: { ...minimal, name: '7' }, expect: { name: '7' } },
  { title: 'every number at its bound', input: { ...minimal, cpuMilli: 1_024_000, memoryMiB: 65_536, concurrency: 10_000, timeoutMs: 3_600_000, queueDepth: 1, queueTimeoutMs: 1, maxBodyBytes: 0 }, expect: { cpuMilli: 1_024_000, memoryMiB: 65_536, concurrency: 10_000, timeoutMs: 3_600_000, queueDepth: 1, queueTimeoutMs: 1, maxBodyBytes: 0 } },
  { title: 'env of strings', input: { ...minimal, env: { A: '1', _b2: '', __proto__x: 'y' } }, expect: { env: { A: '1', _b2: '', __proto__x: 'y' } } },
  { title: 'a stored version is kept; a spec stored without a template version runs as it is', input: { ...minimal, version: 7 }, expect: { version: 7, templateVersion: 7 } },
  { title: 'a stored template version is kept', input: { ...minimal, version: 7, templateVersion: 5 }, expect: { version: 7, templateVersion: 5 } },
];

for (const { title, input, expect } of validCases) {
  test(`valid: ${title}`, (t) => {
    const spec = parsed(input);
    for (const [field, value] of Object.entries(expect)) t.deepEqual(spec[field as keyof FunctionSpec], value, field);
  });
}

test('a stored spec parses back to itself', (t) => {
  const spec = parsed({ ...minimal, env: { A: '1' }, scaling: { maxScale: 4 }, memoryMiB: 512 });
  t.deepEqual(parsed(JSON.parse(JSON.stringify(spec))), spec);
});

test('the spec shares nothing with its input', (t) => {
  const input = { name: 'p', env: { A: '1' }, source: { kind: 'process', command: 'x', args: ['a'] } };
  const spec = parsed(input);
  input.env.A = 'changed';
  input.source.args.push('b');
  t.deepEqual(spec.env, { A: '1' });
  t.deepEqual(spec.source, { kind: 'process', command: 'x', args: ['a'] });
});

// ---- One row per rule: the error names the field, the range and its unit, and the value ----

const errorCases: { title: string; input: unknown; field: string; message: string | RegExp }[] = [
  { title: 'not an object', input: [1], field: 'spec', message: 'a function spec must be a JSON object, got array [1]' },
  { title: 'null', input: null, field: 'spec', message: 'a function spec must be a JSON object, got null' },
  { title: 'name missing', input: { source: threadSource }, field: 'name', message: 'name is required' },
  { title: 'name with capitals', input: { ...minimal, name: 'Hello' }, field: 'name', message: /^name must be a DNS label: 1-63 characters .* got "Hello"$/ },
  { title: 'name starting with -', input: { ...minimal, name: '-a' }, field: 'name', message: /DNS label/ },
  { title: 'name ending with -', input: { ...minimal, name: 'a-' }, field: 'name', message: /DNS label/ },
  { title: 'name of 64 characters', input: { ...minimal, name: 'a'.repeat(64) }, field: 'name', message: /DNS label/ },
  { title: 'name with _', input: { ...minimal, name: 'a_b' }, field: 'name', message: /DNS label/ },
  { title: 'empty name', input: { ...minimal, name: '' }, field: 'name', message: /DNS label.*got ""$/ },
  { title: 'name not a string', input: { ...minimal, name: 5 }, field: 'name', message: /DNS label.*got 5$/ },
  { title: 'unknown runtime', input: { ...minimal, runtime: 'docker' }, field: 'runtime', message: 'runtime must be one of thread, process, simulated, got "docker"' },
  { title: 'cpuMilli 0', input: { ...minimal, cpuMilli: 0 }, field: 'cpuMilli', message: 'cpuMilli must be an integer in 1..1024000 millicores, got 0' },
  { title: 'memoryMiB 0', input: { ...minimal, memoryMiB: 0 }, field: 'memoryMiB', message: 'memoryMiB must be an integer in 1..65536 MiB, got 0' },
  { title: 'memoryMiB fractional', input: { ...minimal, memoryMiB: 1.5 }, field: 'memoryMiB', message: 'memoryMiB must be an integer in 1..65536 MiB, got 1.5' },
  { title: 'memoryMiB as a string', input: { ...minimal, memoryMiB: '128' }, field: 'memoryMiB', message: 'memoryMiB must be an integer in 1..65536 MiB, got "128"' },
  { title: 'memoryMiB null', input: { ...minimal, memoryMiB: null }, field: 'memoryMiB', message: 'memoryMiB must be an integer in 1..65536 MiB, got null' },
  { title: 'concurrency 0', input: { ...minimal, concurrency: 0 }, field: 'concurrency', message: 'concurrency must be an integer in 1..10000 requests per sandbox, got 0' },
  { title: 'timeoutMs 0', input: { ...minimal, timeoutMs: 0 }, field: 'timeoutMs', message: 'timeoutMs must be an integer in 1..3600000 ms, got 0' },
  { title: 'queueDepth 0', input: { ...minimal, queueDepth: 0 }, field: 'queueDepth', message: 'queueDepth must be an integer in 1..1000000 requests, got 0' },
  { title: 'queueTimeoutMs negative', input: { ...minimal, queueTimeoutMs: -1 }, field: 'queueTimeoutMs', message: 'queueTimeoutMs must be an integer in 1..3600000 ms, got -1' },
  { title: 'maxBodyBytes 1 GiB', input: { ...minimal, maxBodyBytes: 2 ** 30 }, field: 'maxBodyBytes', message: 'maxBodyBytes must be an integer in 0..268435456 bytes, got 1073741824' },
  { title: 'version 0', input: { ...minimal, version: 0 }, field: 'version', message: 'version must be an integer >= 1, got 0' },
  { title: 'a template version past the version', input: { ...minimal, version: 2, templateVersion: 3 }, field: 'templateVersion', message: 'templateVersion must be <= version (2), got 3' },
  { title: 'unknown top-level field', input: { ...minimal, image: 'nginx' }, field: 'image', message: /^unknown field "image"; known fields: name, runtime, source, / },
  { title: 'env not an object', input: { ...minimal, env: ['A=1'] }, field: 'env', message: 'env must be an object of string values, got array ["A=1"]' },
  { title: 'env name starting with a digit', input: { ...minimal, env: { '1X': 'a' } }, field: 'env.1X', message: /environment variable name must match .* got "1X"$/ },
  { title: 'env value not a string', input: { ...minimal, env: { A: 1 } }, field: 'env.A', message: 'env.A must be a string, got 1' },
  { title: 'source missing', input: { name: 'hello' }, field: 'source', message: /^source is required: \{"kind":"thread"/ },
  { title: 'source not an object', input: { ...minimal, source: './handler.mjs' }, field: 'source', message: /^source must be an object/ },
  { title: 'unknown source kind', input: { ...minimal, source: { kind: 'docker', image: 'x' } }, field: 'source.kind', message: 'source.kind must be one of thread, process, builtin, got "docker"' },
  { title: 'thread source without module', input: { ...minimal, source: { kind: 'thread' } }, field: 'source.module', message: /^source.module must be a non-empty string .* got nothing$/ },
  { title: 'process source without command', input: { ...minimal, source: { kind: 'process', command: '' } }, field: 'source.command', message: /^source.command must be a non-empty string/ },
  { title: 'process args not strings', input: { ...minimal, source: { kind: 'process', command: 'x', args: [1] } }, field: 'source.args', message: 'source.args must be an array of strings, got array [1]' },
  { title: 'unknown builtin workload', input: { ...minimal, source: { kind: 'builtin', workload: 'sleep' } }, field: 'source.workload', message: 'source.workload must be one of empty, echo, trace, got "sleep"' },
  { title: 'unknown field in source', input: { ...minimal, source: { ...threadSource, memory: 1 } }, field: 'source.memory', message: /^unknown field "memory" for source.kind thread; known fields: kind, module$/ },
  { title: 'simulated runtime with a thread source', input: { ...minimal, runtime: 'simulated' }, field: 'source', message: 'runtime simulated runs only builtin workloads (no process or thread runs), got source.kind thread' },
  { title: 'thread runtime with a process source', input: { name: 'p', runtime: 'thread', source: { kind: 'process', command: 'x' } }, field: 'source', message: 'runtime thread runs a thread source or a builtin workload, got source.kind process' },
  { title: 'process runtime with a thread source', input: { ...minimal, runtime: 'process' }, field: 'source', message: 'runtime process runs a process source or a builtin workload, got source.kind thread' },
  { title: 'scaling not an object', input: { ...minimal, scaling: 'fast' }, field: 'scaling', message: /^scaling must be an object with some of tickMs, / },
  { title: 'unknown scaling field', input: { ...minimal, scaling: { burst: 3 } }, field: 'scaling.burst', message: /^unknown field "burst" in scaling; known fields: tickMs, / },
  { title: 'tickMs below 10 ms', input: { ...minimal, scaling: { tickMs: 5 } }, field: 'scaling.tickMs', message: 'scaling.tickMs must be an integer >= 10 ms, got 5' },
  { title: 'tickMs fractional', input: { ...minimal, scaling: { tickMs: 2000.5 } }, field: 'scaling.tickMs', message: 'scaling.tickMs must be an integer >= 10 ms, got 2000.5' },
  { title: 'stable window shorter than a tick (the panic window is then not reported too)', input: { ...minimal, scaling: { tickMs: 2000, stableWindowMs: 1000, panicWindowMs: 1000 } }, field: 'scaling.stableWindowMs', message: 'scaling.stableWindowMs must be >= scaling.tickMs (2000 ms), got 1000 ms' },
  { title: 'panic window longer than the stable window (merged with the default 6 s)', input: { ...minimal, scaling: { stableWindowMs: 4000 } }, field: 'scaling.panicWindowMs', message: 'scaling.panicWindowMs must be in scaling.tickMs..scaling.stableWindowMs (2000..4000 ms), got 6000 ms' },
  { title: 'panic window shorter than a tick', input: { ...minimal, scaling: { panicWindowMs: 1000 } }, field: 'scaling.panicWindowMs', message: 'scaling.panicWindowMs must be in scaling.tickMs..scaling.stableWindowMs (2000..60000 ms), got 1000 ms' },
  { title: 'panic threshold 100 %', input: { ...minimal, scaling: { panicThresholdPercent: 100 } }, field: 'scaling.panicThresholdPercent', message: 'scaling.panicThresholdPercent must be an integer >= 101 %, got 100' },
  { title: 'scale-up rate 0', input: { ...minimal, scaling: { maxScaleUpRate: 0 } }, field: 'scaling.maxScaleUpRate', message: 'scaling.maxScaleUpRate must be an integer >= 1 x ready count per tick, got 0' },
  { title: 'scale-down rate 1', input: { ...minimal, scaling: { maxScaleDownRate: 1 } }, field: 'scaling.maxScaleDownRate', message: 'scaling.maxScaleDownRate must be an integer >= 2 x ready count per tick (divisor), got 1' },
  { title: 'target utilisation 0 %', input: { ...minimal, scaling: { targetUtilizationPercent: 0 } }, field: 'scaling.targetUtilizationPercent', message: 'scaling.targetUtilizationPercent must be an integer in 1..100 %, got 0' },
  { title: 'target utilisation 101 %', input: { ...minimal, scaling: { targetUtilizationPercent: 101 } }, field: 'scaling.targetUtilizationPercent', message: 'scaling.targetUtilizationPercent must be an integer in 1..100 %, got 101' },
  { title: 'negative minScale', input: { ...minimal, scaling: { minScale: -1 } }, field: 'scaling.minScale', message: `scaling.minScale must be an integer in 0..${MAX_SCALE_LIMIT} sandboxes, got -1` },
  { title: 'maxScale above the limit', input: { ...minimal, scaling: { maxScale: 2 ** 31 } }, field: 'scaling.maxScale', message: `scaling.maxScale must be an integer in 0..${MAX_SCALE_LIMIT} sandboxes, got 2147483648` },
  { title: 'minScale above maxScale', input: { ...minimal, scaling: { minScale: 5, maxScale: 4 } }, field: 'scaling.minScale', message: 'scaling.minScale must be <= scaling.maxScale (4 sandboxes), got 5 sandboxes' },
  { title: 'negative keep-alive', input: { ...minimal, scaling: { keepAliveMs: -1 } }, field: 'scaling.keepAliveMs', message: 'scaling.keepAliveMs must be an integer >= 0 ms, got -1' },
];

for (const { title, input, field, message } of errorCases) {
  test(`invalid: ${title}`, (t) => {
    const errors = errorsOf(input);
    t.is(errors.length, 1, JSON.stringify(errors));
    t.is(errors[0]?.field, field);
    if (typeof message === 'string') t.is(errors[0]?.message, message);
    else t.regex(errors[0]?.message ?? '', message);
  });
}

test('every error is reported at once', (t) => {
  const errors = errorsOf({ name: 'Bad', source: threadSource, memoryMiB: 0, colour: 'red', scaling: { tickMs: 1, maxScale: -1 } });
  t.deepEqual(errors.map((e) => e.field).sort(), ['colour', 'memoryMiB', 'name', 'scaling.maxScale', 'scaling.tickMs']);
});

test('relations between scaling fields are not checked against a field already rejected', (t) => {
  t.deepEqual(errorsOf({ ...minimal, scaling: { tickMs: 5, stableWindowMs: 1 } }).map((e) => e.field), ['scaling.tickMs', 'scaling.stableWindowMs']);
  // An invalid runtime does not also produce a runtime/source mismatch.
  t.deepEqual(errorsOf({ name: 'p', runtime: 'vm', source: { kind: 'process', command: 'x' } }).map((e) => e.field), ['runtime']);
});

// ---- Scaling: a partial object merged over the defaults ----

test('scaling fields merge over defaultAutoscalerConfig', (t) => {
  t.deepEqual(parsed({ ...minimal, scaling: { maxScale: 10 } }).scaling, { ...defaultAutoscalerConfig, maxScale: 10 });
  t.deepEqual(parsed({ ...minimal, scaling: { tickMs: 500, stableWindowMs: 5000, panicWindowMs: 500, keepAliveMs: 0 } }).scaling, {
    ...defaultAutoscalerConfig,
    tickMs: 500,
    stableWindowMs: 5000,
    panicWindowMs: 500,
    keepAliveMs: 0,
  });
  t.deepEqual(parsed({ ...minimal, scaling: {} }).scaling, { ...defaultAutoscalerConfig });
});

test('windows equal to their bounds are valid', (t) => {
  const scaling = parsed({ ...minimal, scaling: { tickMs: 10, stableWindowMs: 10, panicWindowMs: 10, minScale: 3, maxScale: 3 } }).scaling;
  t.like(scaling, { tickMs: 10, stableWindowMs: 10, panicWindowMs: 10, minScale: 3, maxScale: 3 });
});

// ---- Update ----

const current = parsed({ ...minimal, memoryMiB: 256, env: { A: '1', B: '2' }, scaling: { maxScale: 10 } });

function updated(patch: unknown): FunctionSpec {
  const result = updateFunctionSpec(current, patch);
  if (!result.ok) throw new Error(`expected a valid update, got ${JSON.stringify(result.errors)}`);
  return result.spec;
}

function updateErrors(patch: unknown): SpecError[] {
  const result = updateFunctionSpec(current, patch);
  if (result.ok) throw new Error(`expected errors, got ${JSON.stringify(result.spec)}`);
  return result.errors;
}

test('update: given fields replace, others stay, version goes up by one', (t) => {
  t.deepEqual(updated({ memoryMiB: 512, timeoutMs: 1000 }), { ...current, memoryMiB: 512, timeoutMs: 1000, version: 2, templateVersion: 2 });
  t.deepEqual(updated({}), { ...current, version: 2 });
  t.deepEqual(updated({ name: 'hello' }), { ...current, version: 2 }, 'repeating the same name is fine');
});

test('update: a change of the sandbox template, or any source given, makes a new template version; scaling and routing do not', (t) => {
  const rolled = (patch: Record<string, unknown>) => updated(patch).templateVersion === 2;
  for (const patch of [{ memoryMiB: 512 }, { cpuMilli: 200 }, { concurrency: 4 }, { timeoutMs: 1000 }, { env: { A: '1' } }, { runtime: 'process', source: { kind: 'builtin', workload: 'echo' } }]) {
    t.true(rolled(patch), JSON.stringify(patch));
  }
  t.true(rolled({ source: threadSource }), 'the same module again: run what the file holds now');
  for (const patch of [{}, { memoryMiB: 256 }, { env: { B: '2', A: '1' } }, { scaling: { maxScale: 5, minScale: 1, keepAliveMs: 1000, targetUtilizationPercent: 70 } }, { queueDepth: 5, queueTimeoutMs: 100, maxBodyBytes: 10 }]) {
    t.false(rolled(patch), JSON.stringify(patch));
  }
  const twice = updateFunctionSpec(updated({ scaling: { maxScale: 5 } }), { scaling: { maxScale: 6 } });
  t.like(twice.ok ? twice.spec : undefined, { version: 3, templateVersion: 1 }, 'scaling-only updates keep the version sandboxes run');
});

test('update: scaling merges over the current scaling, not the defaults', (t) => {
  t.deepEqual(updated({ scaling: { minScale: 2 } }).scaling, { ...defaultAutoscalerConfig, maxScale: 10, minScale: 2 });
  t.deepEqual(updateErrors({ scaling: { minScale: 11 } }), [{ field: 'scaling.minScale', message: 'scaling.minScale must be <= scaling.maxScale (10 sandboxes), got 11 sandboxes' }]);
});

test('update: env and source are replaced whole', (t) => {
  t.deepEqual(updated({ env: { C: '3' } }).env, { C: '3' });
  t.deepEqual(updated({ source: { kind: 'builtin', workload: 'echo' } }).source, { kind: 'builtin', workload: 'echo' });
});

test('update: a new thread or process source moves the runtime along unless runtime is given', (t) => {
  t.like(updated({ source: { kind: 'process', command: 'x' } }), { runtime: 'process' });
  t.like(updated({ source: { kind: 'builtin', workload: 'echo' } }), { runtime: 'thread' });
  t.like(updated({ runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' } }), { runtime: 'simulated' });
  t.deepEqual(updateErrors({ runtime: 'simulated' }).map((e) => e.field), ['source']);
});

const updateErrorCases: { title: string; patch: unknown; field: string; message: string | RegExp }[] = [
  { title: 'renaming', patch: { name: 'other' }, field: 'name', message: 'name cannot change: the function is "hello", the update says "other"' },
  { title: 'renaming to an invalid name (one error, not two)', patch: { name: 'Other' }, field: 'name', message: 'name cannot change: the function is "hello", the update says "Other"' },
  { title: 'setting the version', patch: { version: 5 }, field: 'version', message: 'version cannot be set by an update: it is bumped on each update (now 1)' },
  { title: 'setting the template version', patch: { templateVersion: 5 }, field: 'templateVersion', message: /^templateVersion cannot be set by an update/ },
  { title: 'a value out of range', patch: { memoryMiB: 0 }, field: 'memoryMiB', message: 'memoryMiB must be an integer in 1..65536 MiB, got 0' },
  { title: 'an unknown field', patch: { replicas: 3 }, field: 'replicas', message: /^unknown field "replicas"/ },
  { title: 'an unknown scaling field', patch: { scaling: { window: 3 } }, field: 'scaling.window', message: /^unknown field "window" in scaling/ },
  { title: 'not an object', patch: 'memoryMiB=1', field: 'spec', message: 'an update must be a JSON object, got "memoryMiB=1"' },
];

for (const { title, patch, field, message } of updateErrorCases) {
  test(`update rejects ${title}`, (t) => {
    const errors = updateErrors(patch);
    t.is(errors.length, 1, JSON.stringify(errors));
    t.is(errors[0]?.field, field);
    if (typeof message === 'string') t.is(errors[0]?.message, message);
    else t.regex(errors[0]?.message ?? '', message);
  });
}

test('update: the new spec shares no arrays or objects with the current one', (t) => {
  const process = parsed({ name: 'p', source: { kind: 'process', command: 'x', args: ['a'] } });
  const result = updateFunctionSpec(process, { memoryMiB: 512 });
  if (!result.ok) return t.fail(JSON.stringify(result.errors));
  t.not(result.spec.source, process.source);
  t.not(result.spec.env, process.env);
  t.not(result.spec.scaling, process.scaling);
  t.deepEqual(result.spec.source, process.source);
});

test('update leaves the current spec untouched', (t) => {
  const before = JSON.parse(JSON.stringify(current)) as FunctionSpec;
  updated({ memoryMiB: 1024, env: {}, scaling: { maxScale: 1 } });
  updateErrors({ memoryMiB: 0 });
  t.deepEqual(current, before);
});

// ---- Dirigent-compatible registration ----

/** What the in-vitro loader's deployDirigent posts (Go's url.Values.Encode sorts the keys). */
const loaderForm =
  'env_vars=&image=docker.io%2Fcvetkovic%2Fdirigent_trace_function%3Alatest&name=trace-func-0-8365279829396237826' +
  '&port_forwarding=80&port_forwarding=tcp&program_args=&requested_cpu=100&requested_memory=128' +
  '&scaling_lower_bound=0&scaling_upper_bound=200';

const loaderSpec: FunctionSpec = {
  name: 'trace-func-0-8365279829396237826',
  runtime: 'thread',
  source: { kind: 'builtin', workload: 'trace' },
  cpuMilli: 100,
  memoryMiB: 128,
  concurrency: 1,
  timeoutMs: 90_000, // the loader's client timeout: its trace function runs up to 60 s
  queueDepth: 1000,
  queueTimeoutMs: 10_000,
  maxBodyBytes: 6 * 1024 * 1024,
  env: {},
  scaling: { ...defaultAutoscalerConfig, minScale: 0, maxScale: 200 },
  version: 1,
  templateVersion: 1,
};

function registered(form: string | URLSearchParams, runtime?: 'thread' | 'simulated'): FunctionSpec {
  const result = parseDirigentRegistration(typeof form === 'string' ? new URLSearchParams(form) : form, runtime);
  if (!result.ok) throw new Error(`expected a valid registration, got ${result.message}`);
  return result.spec;
}

function rejected(form: string): string {
  const result = parseDirigentRegistration(new URLSearchParams(form));
  if (result.ok) throw new Error(`expected a 400, got ${JSON.stringify(result.spec)}`);
  return `${result.status} ${result.message}`;
}

test('dirigent: the exact loader form, port_forwarding twice and empty env_vars/program_args', (t) => {
  t.deepEqual(registered(loaderForm), loaderSpec);
});

test('dirigent: the loader form with cold_start_sweep selects 6 s stable / 2 s panic windows and one sandbox', (t) => {
  t.deepEqual(registered(`cold_start_sweep=true&${loaderForm}`), {
    ...loaderSpec,
    scaling: { ...defaultAutoscalerConfig, stableWindowMs: 6000, panicWindowMs: 2000, maxScale: 1, keepAliveMs: 6000 },
  });
  t.deepEqual(registered(`cold_start_sweep=false&${loaderForm}`), loaderSpec);
});

test('dirigent: the loader form with its busy-loop fields (accepted, ignored)', (t) => {
  t.deepEqual(registered(`${loaderForm}&iteration_multiplier=102&cold_start_busy_loop_ms=0&prepull_mode=all_sync`), loaderSpec);
});

test('dirigent: the image picks the builtin workload, the parser picks the runtime', (t) => {
  const form = (image: string) => `name=f&image=${encodeURIComponent(image)}`;
  t.deepEqual(registered(form('docker.io/cvetkovic/dirigent_empty_function:latest')).source, { kind: 'builtin', workload: 'empty' });
  t.deepEqual(registered(form('ghcr.io/acme/echo@sha256:0123')).source, { kind: 'builtin', workload: 'echo' });
  t.deepEqual(registered(form('trace')).source, { kind: 'builtin', workload: 'trace' });
  t.is(registered(form('trace'), 'simulated').runtime, 'simulated');
  t.is(registered(form('trace')).runtime, 'thread');
});

test('dirigent: a minimal form gets the spec defaults', (t) => {
  t.deepEqual(registered('name=f&image=dirigent_empty_function'), { ...loaderSpec, name: 'f', source: { kind: 'builtin', workload: 'empty' }, scaling: { ...defaultAutoscalerConfig } });
});

test('dirigent: env_vars and program_args', (t) => {
  t.deepEqual(registered('name=f&image=echo&env_vars=A%3D1&env_vars=B%3Dx%3Dy&env_vars=C%3D&program_args=--x&program_args=1').env, { A: '1', B: 'x=y', C: '' });
});

test('dirigent: bounds and GPUs', (t) => {
  t.like(registered('name=f&image=echo&scaling_lower_bound=2&scaling_upper_bound=5').scaling, { minScale: 2, maxScale: 5 });
  t.like(registered('name=f&image=echo&scaling_lower_bound=&scaling_upper_bound=').scaling, { minScale: 0, maxScale: MAX_SCALE_LIMIT });
  t.is(registered('name=f&image=echo&requested_gpu=0').name, 'f');
});

const dirigentRejects: { title: string; form: string; message: string | RegExp }[] = [
  { title: 'an image that is not a builtin workload', form: 'name=f&image=docker.io%2Flibrary%2Fnginx%3Alatest', message: /^400 image "docker.io\/library\/nginx:latest" cannot run here: it is not a builtin workload, and there is no container engine\. Runtimes here: thread \(.*\), process \(.*\), and the builtin workloads empty, echo, trace/ },
  { title: 'a workload word outside the repository name', form: 'name=f&image=echo.example.com%2Ftrace-team%2Fapi', message: /^400 image "echo.example.com\/trace-team\/api" cannot run here: it is not a builtin workload/ },
  { title: 'an image naming two workloads', form: 'name=f&image=echo_trace', message: /^400 image "echo_trace" cannot run here: its name matches several builtin workloads \(echo, trace\)/ },
  { title: 'no name', form: 'image=echo', message: '400 name is required' },
  { title: 'no image', form: 'name=f', message: '400 image is required' },
  { title: 'a name that is no DNS label', form: 'name=Trace_Func&image=echo', message: /^400 name must be a DNS label: .* got "Trace_Func"$/ },
  { title: 'CPU not an integer', form: 'name=f&image=echo&requested_cpu=1.5', message: '400 requested_cpu must be an integer (millicores), got "1.5"' },
  { title: 'memory 0 MiB', form: 'name=f&image=echo&requested_memory=0', message: '400 requested_memory: memoryMiB must be an integer in 1..65536 MiB, got 0' },
  { title: 'CPU 0 millicores', form: 'name=f&image=echo&requested_cpu=0', message: '400 requested_cpu: cpuMilli must be an integer in 1..1024000 millicores, got 0' },
  { title: 'a GPU', form: 'name=f&image=echo&requested_gpu=1', message: '400 requested_gpu is 1, but there are no GPUs here; send requested_gpu=0 or leave it out' },
  { title: 'GPU not an integer', form: 'name=f&image=echo&requested_gpu=one', message: '400 requested_gpu must be an integer (GPUs), got "one"' },
  { title: 'upper bound not an integer', form: 'name=f&image=echo&scaling_upper_bound=many', message: '400 scaling_upper_bound must be an integer (sandboxes), got "many"' },
  { title: 'lower bound above upper bound', form: 'name=f&image=echo&scaling_lower_bound=3&scaling_upper_bound=2', message: '400 scaling_lower_bound: scaling.minScale must be <= scaling.maxScale (2 sandboxes), got 3 sandboxes' },
  { title: 'negative upper bound', form: 'name=f&image=echo&scaling_upper_bound=-1', message: `400 scaling_upper_bound: scaling.maxScale must be an integer in 0..${MAX_SCALE_LIMIT} sandboxes, got -1` },
  { title: 'cold_start_sweep with a lower bound above one', form: 'name=f&image=echo&cold_start_sweep=true&scaling_lower_bound=2', message: '400 scaling_lower_bound: scaling.minScale must be <= scaling.maxScale (1 sandboxes), got 2 sandboxes' },
  { title: 'cold_start_sweep neither true nor false', form: 'name=f&image=echo&cold_start_sweep=yes', message: '400 cold_start_sweep must be true or false, got "yes"' },
  { title: 'port_forwarding sent once', form: 'name=f&image=echo&port_forwarding=80', message: '400 port_forwarding must be sent twice, guest port then tcp or udp, got ["80"]' },
  { title: 'a UDP port', form: 'name=f&image=echo&port_forwarding=80&port_forwarding=udp', message: '400 port_forwarding protocol udp is not supported: functions here are invoked over HTTP (tcp)' },
  { title: 'an unknown protocol', form: 'name=f&image=echo&port_forwarding=80&port_forwarding=sctp', message: '400 port_forwarding protocol must be tcp or udp, got "sctp"' },
  { title: 'a bad guest port', form: 'name=f&image=echo&port_forwarding=http&port_forwarding=tcp', message: '400 port_forwarding guest port must be an integer in 1..65535, got "http"' },
  { title: 'an env_vars entry without =', form: 'name=f&image=echo&env_vars=NOVALUE', message: '400 env_vars entry must be KEY=VALUE, got "NOVALUE"' },
  { title: 'an env_vars entry without a key', form: 'name=f&image=echo&env_vars=%3Dv', message: '400 env_vars entry must be KEY=VALUE, got "=v"' },
  { title: 'an env_vars key set twice', form: 'name=f&image=echo&env_vars=A%3D1&env_vars=A%3D2', message: '400 env_vars sets A twice' },
  { title: 'an env_vars key that is no variable name', form: 'name=f&image=echo&env_vars=1A%3Dx', message: /^400 env_vars: environment variable name must match .* got "1A"$/ },
  { title: 'an unknown field', form: 'name=f&image=echo&dandelion_request=true', message: /^400 unknown field "dandelion_request"; Dirigent registration fields: name, image, port_forwarding, / },
  { title: 'a field that looks like an object property', form: 'name=f&image=echo&constructor=1', message: /^400 unknown field "constructor"/ },
  { title: 'a single-valued field sent twice', form: 'name=f&name=g&image=echo', message: '400 name given 2 times, expected once' },
  { title: 'several problems at once', form: 'image=nginx&requested_gpu=2', message: /^400 name is required; image "nginx" cannot run here: .*; requested_gpu is 2, but there are no GPUs here/ },
];

for (const { title, form, message } of dirigentRejects) {
  test(`dirigent rejects ${title}`, (t) => {
    const got = rejected(form);
    if (typeof message === 'string') t.is(got, message);
    else t.regex(got, message);
  });
}
