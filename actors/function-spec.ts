// The function specification: the desired state of one function, as the store keeps it and as users
// register it. Pure: JSON input goes defaults -> merge -> validate (as knative's config does), and every
// error names the field, the allowed range with its unit, and the value it got. Dirigent's form-encoded
// registration is translated here too, so the HTTP edge only maps the result to a status.

import { defaultAutoscalerConfig, MAX_SCALE_LIMIT, type AutoscalerConfig } from './autoscaler-config.js';
import { RUNTIME_KINDS, type RuntimeKind } from './settings.js';

export type BuiltinWorkload = 'empty' | 'echo' | 'trace';

export type RuntimeSource =
  | { kind: 'thread'; module: string }
  | { kind: 'process'; command: string; args: string[] }
  | { kind: 'builtin'; workload: BuiltinWorkload };

export type SandboxRuntimeKind = RuntimeKind;

export interface FunctionSpec {
  /** DNS label: 1-63 chars of [a-z0-9-], starting and ending alphanumeric. */
  name: string;
  /** Which sandbox runtime runs it. */
  runtime: SandboxRuntimeKind;
  source: RuntimeSource;
  /** CPU request per sandbox, millicores. */
  cpuMilli: number;
  /** Memory request per sandbox, MiB. */
  memoryMiB: number;
  /** Container concurrency: max in-flight requests per sandbox. */
  concurrency: number;
  /** Per-invocation timeout, ms. */
  timeoutMs: number;
  /** Bound of the data plane's cold-start FIFO queue, requests. */
  queueDepth: number;
  /** Per-request deadline while queued, ms. */
  queueTimeoutMs: number;
  /** Largest accepted request body, bytes. */
  maxBodyBytes: number;
  env: Record<string, string>;
  scaling: AutoscalerConfig;
  /** 1 at registration, bumped on each update. */
  version: number;
  /**
   * The version sandboxes run, which answers name (`x-dirigent-version`): the spec `version` at which the sandbox
   * template (source, runtime, resources, concurrency, timeout, env) last changed, or at which an update restated
   * the source. An update that only touches scaling or routing keeps it, and restarts nothing.
   */
  templateVersion: number;
}

/** Everything a registration may leave out. `name` and `source` have no sensible default. */
export type FunctionSpecDefaults = Omit<FunctionSpec, 'name' | 'source' | 'version' | 'templateVersion'>;

export const defaultFunctionSpec: Readonly<FunctionSpecDefaults> = Object.freeze({
  runtime: 'thread',
  cpuMilli: 100,
  memoryMiB: 128,
  concurrency: 1,
  timeoutMs: 60_000,
  queueDepth: 1000,
  queueTimeoutMs: 10_000,
  // AWS Lambda's synchronous payload limit: 6 MiB.
  maxBodyBytes: 6 * 1024 * 1024,
  env: Object.freeze({}),
  scaling: defaultAutoscalerConfig,
});

export interface IntRange {
  readonly min: number;
  /** Absent: any safe integer from `min` up. */
  readonly max?: number;
  readonly unit: string;
}

type IntField = 'cpuMilli' | 'memoryMiB' | 'concurrency' | 'timeoutMs' | 'queueDepth' | 'queueTimeoutMs' | 'maxBodyBytes';

export const FUNCTION_SPEC_LIMITS: Readonly<Record<IntField | 'version' | 'templateVersion', IntRange>> = Object.freeze({
  cpuMilli: { min: 1, max: 1_024_000, unit: 'millicores' },
  memoryMiB: { min: 1, max: 65_536, unit: 'MiB' },
  concurrency: { min: 1, max: 10_000, unit: 'requests per sandbox' },
  // One hour: long enough for batch-like functions, short enough that a stuck request is noticed.
  timeoutMs: { min: 1, max: 3_600_000, unit: 'ms' },
  queueDepth: { min: 1, max: 1_000_000, unit: 'requests' },
  queueTimeoutMs: { min: 1, max: 3_600_000, unit: 'ms' },
  // The data plane buffers a body before it forwards it, so the bound is a memory bound.
  maxBodyBytes: { min: 0, max: 256 * 1024 * 1024, unit: 'bytes' },
  version: { min: 1, unit: '' },
  templateVersion: { min: 1, unit: '' },
});

/** Ranges of the autoscaling fields on their own; the relations between them are checked after the merge. */
export const SCALING_LIMITS: Readonly<Record<keyof AutoscalerConfig, IntRange>> = Object.freeze({
  // Below 10 ms a tick costs more than it decides.
  tickMs: { min: 10, unit: 'ms' },
  stableWindowMs: { min: 10, unit: 'ms' },
  panicWindowMs: { min: 10, unit: 'ms' },
  panicThresholdPercent: { min: 101, unit: '%' },
  maxScaleUpRate: { min: 1, unit: 'x ready count per tick' },
  maxScaleDownRate: { min: 2, unit: 'x ready count per tick (divisor)' },
  targetUtilizationPercent: { min: 1, max: 100, unit: '%' },
  minScale: { min: 0, max: MAX_SCALE_LIMIT, unit: 'sandboxes' },
  maxScale: { min: 0, max: MAX_SCALE_LIMIT, unit: 'sandboxes' },
  keepAliveMs: { min: 0, unit: 'ms' },
});

export interface SpecError {
  /** Dotted path of the offending field, e.g. `scaling.tickMs` or `env.FOO`. */
  field: string;
  message: string;
}

export type SpecResult = { ok: true; spec: FunctionSpec } | { ok: false; errors: SpecError[] };

const INT_FIELDS: readonly IntField[] = ['cpuMilli', 'memoryMiB', 'concurrency', 'timeoutMs', 'queueDepth', 'queueTimeoutMs', 'maxBodyBytes'];
const TOP_LEVEL_FIELDS: readonly string[] = ['name', 'runtime', 'source', ...INT_FIELDS, 'env', 'scaling', 'version', 'templateVersion'];
/** The fields a sandbox is made from (`SandboxTemplate`, besides the name): changing one makes a new template version. */
const TEMPLATE_FIELDS = ['runtime', 'source', 'cpuMilli', 'memoryMiB', 'concurrency', 'timeoutMs', 'env'] as const satisfies readonly (keyof FunctionSpec)[];
const SCALING_FIELDS = Object.keys(defaultAutoscalerConfig) as (keyof AutoscalerConfig)[];
const WORKLOADS: readonly BuiltinWorkload[] = ['empty', 'echo', 'trace'];
const SOURCE_FIELDS: Readonly<Record<RuntimeSource['kind'], readonly string[]>> = {
  thread: ['kind', 'module'],
  process: ['kind', 'command', 'args'],
  builtin: ['kind', 'workload'],
};
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** POSIX portable environment variable names (the CLI checks `--env` with it too). */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Validates a new function's spec. A stored spec parses back to itself, so the store's content is checked on load too. */
export function parseFunctionSpec(input: unknown): SpecResult {
  const errors: SpecError[] = [];
  if (!isPlainObject(input)) return { ok: false, errors: [{ field: 'spec', message: `a function spec must be a JSON object, got ${describe(input)}` }] };
  const base: Base = { ...defaultFunctionSpec, name: '', source: undefined };
  if (input['name'] === undefined) errors.push({ field: 'name', message: 'name is required' });
  if (input['source'] === undefined) errors.push({ field: 'source', message: `source is required: ${SOURCE_SHAPES}` });
  const version = input['version'] === undefined ? 1 : readInt('version', input['version'], FUNCTION_SPEC_LIMITS.version, 1, errors);
  // A spec stored before template versions existed has none: its sandboxes run the spec as it is.
  const templateVersion = input['templateVersion'] === undefined ? version : readInt('templateVersion', input['templateVersion'], FUNCTION_SPEC_LIMITS.templateVersion, version, errors);
  if (templateVersion > version) errors.push({ field: 'templateVersion', message: `templateVersion must be <= version (${version}), got ${templateVersion}` });
  return finish(merge(input, base, errors), version, templateVersion, errors);
}

/**
 * Applies a partial update: given fields replace the current ones, except `scaling`, which merges field by
 * field over the current scaling. `env` and `source` are replaced whole (so a variable can be removed).
 * Leaving `runtime` out while changing `source` to a thread or process source moves the runtime along.
 * The update makes a new template version (its sandboxes are replaced) when it changes a template field, or
 * names `source` at all: deploying the same module path again means "run what the file holds now".
 */
export function updateFunctionSpec(current: FunctionSpec, patch: unknown): SpecResult {
  const errors: SpecError[] = [];
  if (!isPlainObject(patch)) return { ok: false, errors: [{ field: 'spec', message: `an update must be a JSON object, got ${describe(patch)}` }] };
  if (patch['name'] !== undefined && patch['name'] !== current.name) {
    errors.push({ field: 'name', message: `name cannot change: the function is ${JSON.stringify(current.name)}, the update says ${describe(patch['name'])}` });
  }
  if (patch['version'] !== undefined) {
    errors.push({ field: 'version', message: `version cannot be set by an update: it is bumped on each update (now ${current.version})` });
  }
  if (patch['templateVersion'] !== undefined) {
    errors.push({ field: 'templateVersion', message: `templateVersion cannot be set by an update: it follows the version when the sandbox template changes (now ${current.templateVersion})` });
  }
  // The name is settled above; merging it again would only repeat that error as a DNS-label one.
  const merged = merge({ ...patch, name: undefined }, current, errors);
  const version = current.version + 1;
  const rollout = patch['source'] !== undefined || TEMPLATE_FIELDS.some((field) => !sameValue(merged[field], current[field]));
  return finish(merged, version, rollout ? version : current.templateVersion, errors);
}

/** Structural equality of plain JSON values (spec fields). */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.hasOwn(b, key) && sameValue((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

interface Base extends FunctionSpecDefaults {
  name: string;
  /** Absent while a registration has not named one. */
  source: RuntimeSource | undefined;
}

/** Reads every field from `input`, falling back to `base`; an invalid field records an error and keeps the base value. */
function merge(input: Record<string, unknown>, base: Base, errors: SpecError[]): Base {
  for (const key of Object.keys(input)) {
    if (!TOP_LEVEL_FIELDS.includes(key)) errors.push({ field: key, message: `unknown field ${JSON.stringify(key)}; known fields: ${TOP_LEVEL_FIELDS.join(', ')}` });
  }
  const name = input['name'] === undefined ? base.name : readName(input['name'], errors);
  // Copied so that a new spec shares no arrays with the spec it was updated from.
  const source = input['source'] === undefined ? structuredClone(base.source) : readSource(input['source'], errors);
  let runtime = base.runtime;
  let runtimeValid = true;
  if (input['runtime'] !== undefined) {
    const before = errors.length;
    runtime = readRuntime(input['runtime'], base.runtime, errors);
    runtimeValid = errors.length === before;
  } else if (input['source'] !== undefined && (source?.kind === 'thread' || source?.kind === 'process')) {
    runtime = source.kind;
  }
  const ints = pickInts(base);
  for (const field of INT_FIELDS) {
    if (input[field] !== undefined) ints[field] = readInt(field, input[field], FUNCTION_SPEC_LIMITS[field], base[field], errors);
  }
  const env = input['env'] === undefined ? { ...base.env } : readEnv(input['env'], errors);
  const scaling = input['scaling'] === undefined ? { ...base.scaling } : readScaling(input['scaling'], base.scaling, errors);
  // An invalid runtime was already reported; checking the source against its fallback would add a false error.
  if (source !== undefined && runtimeValid) checkRuntimeSource(runtime, source, errors);
  return { name, runtime, source, ...ints, env, scaling };
}

function finish(merged: Base, version: number, templateVersion: number, errors: SpecError[]): SpecResult {
  if (errors.length > 0 || merged.source === undefined) return { ok: false, errors };
  const { source, ...rest } = merged;
  return { ok: true, spec: { ...rest, source, version, templateVersion } };
}

function pickInts(base: Base): Record<IntField, number> {
  return {
    cpuMilli: base.cpuMilli,
    memoryMiB: base.memoryMiB,
    concurrency: base.concurrency,
    timeoutMs: base.timeoutMs,
    queueDepth: base.queueDepth,
    queueTimeoutMs: base.queueTimeoutMs,
    maxBodyBytes: base.maxBodyBytes,
  };
}

function readName(value: unknown, errors: SpecError[]): string {
  if (typeof value === 'string' && DNS_LABEL.test(value)) return value;
  errors.push({
    field: 'name',
    message: `name must be a DNS label: 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit, got ${describe(value)}`,
  });
  return '';
}

function readRuntime(value: unknown, fallback: SandboxRuntimeKind, errors: SpecError[]): SandboxRuntimeKind {
  const found = RUNTIME_KINDS.find((r) => r === value);
  if (found !== undefined) return found;
  errors.push({ field: 'runtime', message: `runtime must be one of ${RUNTIME_KINDS.join(', ')}, got ${describe(value)}` });
  return fallback;
}

const SOURCE_SHAPES =
  `{"kind":"thread","module":"<path or URL of an ES module exporting handler>"}, ` +
  `{"kind":"process","command":"<executable serving HTTP on $PORT>","args":[...]} or {"kind":"builtin","workload":"${WORKLOADS.join('|')}"}`;

function readSource(value: unknown, errors: SpecError[]): RuntimeSource | undefined {
  if (!isPlainObject(value)) {
    errors.push({ field: 'source', message: `source must be an object, one of ${SOURCE_SHAPES}; got ${describe(value)}` });
    return undefined;
  }
  const kind = value['kind'];
  if (kind !== 'thread' && kind !== 'process' && kind !== 'builtin') {
    errors.push({ field: 'source.kind', message: `source.kind must be one of thread, process, builtin, got ${describe(kind)}` });
    return undefined;
  }
  const before = errors.length;
  for (const key of Object.keys(value)) {
    if (!SOURCE_FIELDS[kind].includes(key)) {
      errors.push({ field: `source.${key}`, message: `unknown field ${JSON.stringify(key)} for source.kind ${kind}; known fields: ${SOURCE_FIELDS[kind].join(', ')}` });
    }
  }
  let source: RuntimeSource | undefined;
  switch (kind) {
    case 'thread': {
      const module = value['module'];
      if (typeof module === 'string' && module.length > 0) source = { kind, module };
      else errors.push({ field: 'source.module', message: `source.module must be a non-empty string (path or URL of an ES module), got ${describe(module)}` });
      break;
    }
    case 'process': {
      const command = value['command'];
      const args = value['args'] ?? [];
      const argsOk = Array.isArray(args) && args.every((a) => typeof a === 'string');
      if (typeof command !== 'string' || command.length === 0) {
        errors.push({ field: 'source.command', message: `source.command must be a non-empty string (an executable), got ${describe(command)}` });
      }
      if (!argsOk) errors.push({ field: 'source.args', message: `source.args must be an array of strings, got ${describe(args)}` });
      if (typeof command === 'string' && command.length > 0 && argsOk) source = { kind, command, args: [...(args as string[])] };
      break;
    }
    case 'builtin': {
      const workload = WORKLOADS.find((w) => w === value['workload']);
      if (workload !== undefined) source = { kind, workload };
      else errors.push({ field: 'source.workload', message: `source.workload must be one of ${WORKLOADS.join(', ')}, got ${describe(value['workload'])}` });
      break;
    }
  }
  return errors.length === before ? source : undefined;
}

function checkRuntimeSource(runtime: SandboxRuntimeKind, source: RuntimeSource, errors: SpecError[]): void {
  if (source.kind === 'builtin' || source.kind === runtime) return;
  const allowed = runtime === 'simulated' ? 'only builtin workloads (no process or thread runs)' : `a ${runtime} source or a builtin workload`;
  errors.push({ field: 'source', message: `runtime ${runtime} runs ${allowed}, got source.kind ${source.kind}` });
}

function readEnv(value: unknown, errors: SpecError[]): Record<string, string> {
  if (!isPlainObject(value)) {
    errors.push({ field: 'env', message: `env must be an object of string values, got ${describe(value)}` });
    return {};
  }
  const entries: [string, string][] = [];
  for (const [key, v] of Object.entries(value)) {
    if (!ENV_NAME.test(key)) errors.push({ field: `env.${key}`, message: `environment variable name must match ${ENV_NAME.source}, got ${JSON.stringify(key)}` });
    else if (typeof v !== 'string') errors.push({ field: `env.${key}`, message: `env.${key} must be a string, got ${describe(v)}` });
    else entries.push([key, v]);
  }
  // fromEntries defines own properties, so a variable named __proto__ is kept rather than swallowed.
  return Object.fromEntries(entries);
}

function readScaling(value: unknown, base: AutoscalerConfig, errors: SpecError[]): AutoscalerConfig {
  if (!isPlainObject(value)) {
    errors.push({ field: 'scaling', message: `scaling must be an object with some of ${SCALING_FIELDS.join(', ')}, got ${describe(value)}` });
    return base;
  }
  const before = errors.length;
  const merged: Record<keyof AutoscalerConfig, number> = { ...base };
  for (const [key, v] of Object.entries(value)) {
    const field = SCALING_FIELDS.find((f) => f === key);
    if (field === undefined) {
      errors.push({ field: `scaling.${key}`, message: `unknown field ${JSON.stringify(key)} in scaling; known fields: ${SCALING_FIELDS.join(', ')}` });
    } else if (v !== undefined) {
      merged[field] = readInt(`scaling.${field}`, v, SCALING_LIMITS[field], base[field], errors);
    }
  }
  // Relations only make sense between valid values; otherwise they would repeat an error already reported.
  if (errors.length === before) checkScalingRelations(merged, errors);
  return merged;
}

function checkScalingRelations(c: AutoscalerConfig, errors: SpecError[]): void {
  // With the stable window shorter than a tick the panic range is empty: one mistake, reported once.
  if (c.stableWindowMs < c.tickMs) {
    errors.push({ field: 'scaling.stableWindowMs', message: `scaling.stableWindowMs must be >= scaling.tickMs (${c.tickMs} ms), got ${c.stableWindowMs} ms` });
  } else if (c.panicWindowMs < c.tickMs || c.panicWindowMs > c.stableWindowMs) {
    errors.push({
      field: 'scaling.panicWindowMs',
      message: `scaling.panicWindowMs must be in scaling.tickMs..scaling.stableWindowMs (${c.tickMs}..${c.stableWindowMs} ms), got ${c.panicWindowMs} ms`,
    });
  }
  if (c.minScale > c.maxScale) {
    errors.push({ field: 'scaling.minScale', message: `scaling.minScale must be <= scaling.maxScale (${c.maxScale} sandboxes), got ${c.minScale} sandboxes` });
  }
}

function readInt(field: string, value: unknown, range: IntRange, fallback: number, errors: SpecError[]): number {
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= range.min && value <= max) return value;
  const bounds = range.max === undefined ? `>= ${range.min}` : `in ${range.min}..${range.max}`;
  errors.push({ field, message: `${field} must be an integer ${bounds}${range.unit ? ` ${range.unit}` : ''}, got ${describe(value)}` });
  return fallback;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `array ${JSON.stringify(value)}`;
  return JSON.stringify(value) ?? String(value);
}

// ---- Dirigent-compatible registration (form-encoded, as the in-vitro loader sends it) ----

export type DirigentRegistrationResult = { ok: true; spec: FunctionSpec } | { ok: false; status: 400; message: string };

/** Form fields Dirigent reads, and which spec field each becomes (for error messages). */
const DIRIGENT_FIELDS: Readonly<Record<string, string | undefined>> = {
  name: 'name',
  image: 'source',
  port_forwarding: undefined,
  requested_cpu: 'cpuMilli',
  requested_memory: 'memoryMiB',
  scaling_upper_bound: 'scaling.maxScale',
  scaling_lower_bound: 'scaling.minScale',
  cold_start_sweep: 'scaling',
  requested_gpu: undefined,
  env_vars: 'env',
  program_args: undefined,
  prepull_mode: undefined,
  // The loader sends these two when it asks Dirigent's images for a start-up busy loop; builtin workloads
  // have no start-up phase, so they are accepted and ignored like prepull_mode.
  iteration_multiplier: undefined,
  cold_start_busy_loop_ms: undefined,
};
const REPEATED_FIELDS: readonly string[] = ['port_forwarding', 'env_vars', 'program_args'];

/**
 * Dirigent's cold-start sweep: short windows and one sandbox, so a function idle for 6 s goes back to zero.
 * keepAliveMs follows the stable window, since Dirigent scales to zero after one idle stable window.
 */
const COLD_START_SWEEP_SCALING = { stableWindowMs: 6000, panicWindowMs: 2000, maxScale: 1, keepAliveMs: 6000 } as const;
/**
 * Per-invocation timeout of a function registered Dirigent's way, ms: the loader's own client timeout
 * (GRPCFunctionTimeoutSeconds, 90 s by default). Its trace function runs up to 60 s (the trace's bound), which the
 * default timeout of 60 s would cut: the deadline wins a tie, so a 60 s invocation answered 502.
 */
const DIRIGENT_TIMEOUT_MS = 90_000;

/**
 * Translates Dirigent's registration form into a spec. There is no container engine here: the image only
 * selects a builtin workload (its name contains empty, echo or trace), run by `defaultRuntime`.
 * Unlike Dirigent, unknown fields and repeated single-valued fields are rejected rather than ignored.
 */
export function parseDirigentRegistration(form: URLSearchParams, defaultRuntime: 'thread' | 'simulated' = 'thread'): DirigentRegistrationResult {
  const problems: string[] = [];
  const keys = [...new Set(form.keys())];
  for (const key of keys) {
    if (!Object.hasOwn(DIRIGENT_FIELDS, key)) problems.push(`unknown field ${JSON.stringify(key)}; Dirigent registration fields: ${Object.keys(DIRIGENT_FIELDS).join(', ')}`);
    else if (!REPEATED_FIELDS.includes(key) && form.getAll(key).length > 1) problems.push(`${key} given ${form.getAll(key).length} times, expected once`);
  }

  const name = form.get('name') ?? '';
  if (name === '') problems.push('name is required');
  const image = form.get('image') ?? '';
  let workload: BuiltinWorkload | undefined;
  if (image === '') problems.push('image is required');
  else {
    const mapped = workloadOfImage(image);
    if (typeof mapped === 'string') workload = mapped;
    else problems.push(mapped.problem);
  }

  const ports = form.getAll('port_forwarding');
  if (ports.length > 0) problems.push(...checkPortForwarding(ports));

  const input: Record<string, unknown> = { name, runtime: defaultRuntime, source: { kind: 'builtin', workload }, timeoutMs: DIRIGENT_TIMEOUT_MS };
  const scaling: Record<string, unknown> = {};
  const cpu = formInt(form, 'requested_cpu', 'millicores', problems);
  if (cpu !== undefined) input['cpuMilli'] = cpu;
  const memory = formInt(form, 'requested_memory', 'MiB', problems);
  if (memory !== undefined) input['memoryMiB'] = memory;
  const upper = formInt(form, 'scaling_upper_bound', 'sandboxes', problems);
  if (upper !== undefined) scaling['maxScale'] = upper;
  const lower = formInt(form, 'scaling_lower_bound', 'sandboxes', problems);
  if (lower !== undefined) scaling['minScale'] = lower;

  const sweep = form.get('cold_start_sweep');
  if (sweep === 'true') Object.assign(scaling, COLD_START_SWEEP_SCALING);
  else if (sweep !== null && sweep !== '' && sweep !== 'false') problems.push(`cold_start_sweep must be true or false, got ${JSON.stringify(sweep)}`);

  const gpu = formInt(form, 'requested_gpu', 'GPUs', problems);
  if (gpu !== undefined && gpu !== 0) problems.push(`requested_gpu is ${gpu}, but there are no GPUs here; send requested_gpu=0 or leave it out`);

  const env = new Map<string, string>();
  // The loader splits an empty variable list into one empty string; empty entries mean "none".
  for (const entry of form.getAll('env_vars').filter((e) => e !== '')) {
    const eq = entry.indexOf('=');
    const key = eq > 0 ? entry.slice(0, eq) : '';
    if (key === '') problems.push(`env_vars entry must be KEY=VALUE, got ${JSON.stringify(entry)}`);
    else if (env.has(key)) problems.push(`env_vars sets ${key} twice`);
    else env.set(key, entry.slice(eq + 1));
  }
  input['env'] = Object.fromEntries(env);
  input['scaling'] = scaling;
  // program_args would be the container's command line; builtin workloads take their parameters from
  // request headers instead, and prepull_mode has no images to pull: both are accepted and ignored.

  if (problems.length > 0) return { ok: false, status: 400, message: problems.join('; ') };
  const parsed = parseFunctionSpec(input);
  if (parsed.ok) return parsed;
  const messages = parsed.errors.map((e) => {
    const formField = Object.entries(DIRIGENT_FIELDS).find(([, specField]) => specField !== undefined && (e.field === specField || e.field.startsWith(`${specField}.`)))?.[0];
    return formField === undefined || formField === e.field ? e.message : `${formField}: ${e.message}`;
  });
  return { ok: false, status: 400, message: messages.join('; ') };
}

function workloadOfImage(image: string): BuiltinWorkload | { problem: string } {
  // Only the repository's last path segment counts, without tag or digest: a registry host or an
  // organisation that happens to contain "echo" must not select a workload.
  const withoutDigest = image.split('@')[0] ?? '';
  const lastSegment = withoutDigest.slice(withoutDigest.lastIndexOf('/') + 1);
  const repository = lastSegment.split(':')[0] ?? '';
  const matches = WORKLOADS.filter((w) => repository.includes(w));
  const [only] = matches;
  if (matches.length === 1 && only !== undefined) return only;
  const why = matches.length > 1 ? `its name matches several builtin workloads (${matches.join(', ')})` : 'it is not a builtin workload';
  return {
    problem:
      `image ${JSON.stringify(image)} cannot run here: ${why}, and there is no container engine. ` +
      `Runtimes here: thread (a JavaScript ES module exporting handler), process (a command serving HTTP on $PORT), ` +
      `and the builtin workloads ${WORKLOADS.join(', ')} (an image whose name contains one of those words selects it, ` +
      `e.g. docker.io/cvetkovic/dirigent_trace_function:latest). Register other code with a JSON function spec.`,
  };
}

function checkPortForwarding(values: string[]): string[] {
  const [port, protocol] = values;
  if (values.length !== 2 || port === undefined || protocol === undefined) {
    return [`port_forwarding must be sent twice, guest port then tcp or udp, got ${JSON.stringify(values)}`];
  }
  const problems: string[] = [];
  const n = /^\d+$/.test(port) ? Number(port) : NaN;
  if (!(n >= 1 && n <= 65_535)) problems.push(`port_forwarding guest port must be an integer in 1..65535, got ${JSON.stringify(port)}`);
  // Invocations reach sandboxes over HTTP, so only TCP can work.
  if (protocol === 'udp') problems.push('port_forwarding protocol udp is not supported: functions here are invoked over HTTP (tcp)');
  else if (protocol !== 'tcp') problems.push(`port_forwarding protocol must be tcp or udp, got ${JSON.stringify(protocol)}`);
  return problems;
}

/** An optional integer form field; empty counts as absent, as in Dirigent. Ranges are the spec's business. */
function formInt(form: URLSearchParams, key: string, unit: string, problems: string[]): number | undefined {
  const raw = form.get(key);
  if (raw === null || raw === '') return undefined;
  if (/^[+-]?\d+$/.test(raw) && Number.isSafeInteger(Number(raw))) return Number(raw);
  problems.push(`${key} must be an integer (${unit}), got ${JSON.stringify(raw)}`);
  return undefined;
}
