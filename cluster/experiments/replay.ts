// `dirigent replay <trace-dir>`: the in-vitro loader's trace experiment against a cluster. Registers one function
// per trace row the way the loader registers with Dirigent (a form POST to /registerService, answered with the
// data-plane addresses), builds the schedule (arrivals.ts), sends it open loop (sender.ts) and writes one CSV
// row per invocation (records.ts) as answers arrive.
//
// Time compression C: trace time t is sent at wall time t / C. Only arrivals are compressed: run times are the
// trace's, and so are the cluster's windows (keep-alive, autoscaler), so a compressed replay sees more
// concurrency and fewer cold starts than the same trace at its own pace.
import { createWriteStream } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { seededRandom } from '../../runtime/random.js';
import { buildSchedule, invocationId, replayedMinutes, type IatDistribution, type Schedule } from './arrivals.js';
import { readAzureTrace, type TraceFunction } from './azure-trace.js';
import { recordHeader, recordLine, type InvocationRecord } from './records.js';
import { HttpSender, type SendResult } from './sender.js';
import { DirigentError } from '../../actors/errors.js';

/** What the loader registers when dirigent.json names nothing, and what every row runs here: the trace function. */
export const TRACE_IMAGE = 'docker.io/cvetkovic/dirigent_trace_function:latest';

export interface ReplayOptions {
  readonly traceDir: string;
  /** The control plane's admin API, e.g. http://127.0.0.1:9091. */
  readonly adminUrl: string;
  readonly adminToken?: string;
  /** Send invocations here (`host:port`) instead of the address registration returned. */
  readonly target?: string;
  /** Execution minutes; default: every trace minute after the warm-up. */
  readonly minutes?: number;
  readonly warmupMinutes: number;
  /** Trace time / wall time, > 0. */
  readonly compression: number;
  readonly seed: number;
  readonly distribution: IatDistribution;
  /** The CSV written. */
  readonly out: string;
  /** Function names are `<prefix>-<row>-<first 8 characters of HashFunction>`. */
  readonly namePrefix: string;
  readonly maxSockets: number;
  readonly maxPending: number;
  /** Per invocation, ms. */
  readonly timeoutMs: number;
  /** Every second while sending and draining. */
  readonly onProgress?: (progress: ReplayProgress) => void;
  /** Stops sending; what was sent is still awaited and written. */
  readonly signal?: AbortSignal;
}

export interface ReplayProgress {
  readonly phase: 'registering' | 'sending' | 'draining';
  /** Wall time since sending started, and the schedule's length in wall time, ms. */
  readonly elapsedMs: number;
  readonly totalMs: number;
  readonly scheduled: number;
  readonly sent: number;
  readonly answered: number;
  readonly failed: number;
}

export interface ReplaySummary {
  readonly out: string;
  readonly functions: number;
  readonly scheduled: number;
  readonly sent: number;
  readonly failed: number;
  /** Sending start -> last answer, ms. */
  readonly wallMs: number;
  /** How late the sender released invocations against the schedule, ms. */
  readonly lateP99Ms: number;
  readonly endpoints: readonly string[];
}

export class ReplayError extends DirigentError<'REGISTRATION_FAILED' | 'UNREACHABLE' | 'INVALID_REPLAY'> {
  override name = 'ReplayError';
  constructor(message: string, code: 'REGISTRATION_FAILED' | 'UNREACHABLE' | 'INVALID_REPLAY') {
    super(code, message);
  }
}

/** The trace function's CPU and memory requests, as the loader derives them from the memory p100 (pkg/trace/profiler.go). */
export function resourceRequests(f: TraceFunction): { cpuMilli: number; memoryMiB: number } {
  const memory = Math.min(10_240, Math.max(1, Math.trunc(f.memory.p100)));
  // Google Cloud Functions' memory -> CPU table, then the loader's overcommitment ratio of 10.
  const cpu = memory < 256 ? 83 : memory < 512 ? 167 : memory < 1024 ? 333 : memory < 2048 ? 583 : memory < 4096 ? 1000 : 2000;
  return { cpuMilli: Math.max(1, Math.trunc(cpu / 10)), memoryMiB: Math.max(1, Math.trunc(memory / 10)) };
}

export function functionName(prefix: string, row: number, f: TraceFunction): string {
  return `${prefix}-${row}-${f.hashFunction.slice(0, 8).toLowerCase().replace(/[^a-z0-9]/g, '0')}`;
}

/** The loader's registration form for one function (pkg/driver/deployment/dirigent.go). */
export function registrationForm(name: string, f: TraceFunction): URLSearchParams {
  const { cpuMilli, memoryMiB } = resourceRequests(f);
  const form = new URLSearchParams([
    ['name', name],
    ['image', TRACE_IMAGE],
    ['port_forwarding', '80'],
    ['port_forwarding', 'tcp'],
    ['requested_cpu', String(cpuMilli)],
    ['requested_memory', String(memoryMiB)],
    ['cold_start_sweep', 'false'],
  ]);
  if (f.dirigent?.scalingUpperBound !== undefined) form.append('scaling_upper_bound', String(f.dirigent.scalingUpperBound));
  if (f.dirigent?.scalingLowerBound !== undefined) form.append('scaling_lower_bound', String(f.dirigent.scalingLowerBound));
  return form;
}

async function register(options: ReplayOptions, name: string, f: TraceFunction): Promise<string[]> {
  let response: Response;
  try {
    response = await fetch(`${options.adminUrl}/registerService`, {
      method: 'POST',
      body: registrationForm(name, f),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(options.adminToken === undefined ? {} : { authorization: `Bearer ${options.adminToken}` }) },
      signal: AbortSignal.timeout(60_000),
    });
  } catch (error) {
    throw new ReplayError(`cannot reach the admin API at ${options.adminUrl} (${(error as Error).message}); is the cluster up?`, 'UNREACHABLE');
  }
  const body = await response.text();
  if (response.status !== 200) throw new ReplayError(`registering ${name} failed: HTTP ${response.status}: ${body.trim()}${response.status === 409 ? ' (choose another --name-prefix)' : ''}`, 'REGISTRATION_FAILED');
  const endpoints = body.split(';').filter((e) => /^[^:\s]+:\d+$/.test(e));
  if (endpoints.length === 0) throw new ReplayError(`registering ${name} returned no data-plane address: ${JSON.stringify(body)}`, 'REGISTRATION_FAILED');
  return endpoints;
}

/** Registers every function, a few at a time; answers each one's endpoints. */
async function registerAll(options: ReplayOptions, names: readonly string[], functions: readonly TraceFunction[]): Promise<string[][]> {
  const endpoints: string[][] = new Array(functions.length);
  let next = 0;
  const worker = async () => {
    while (next < functions.length) {
      const i = next++;
      endpoints[i] = await register(options, names[i]!, functions[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, functions.length) }, worker));
  return endpoints;
}

/** The record of one answered (or failed) invocation, as the loader's HTTP invoker fills it. */
export function toRecord(schedule: Schedule, i: number, name: string, result: SendResult, latenessUs: number): InvocationRecord {
  let instance = name;
  let actualDuration = 0;
  const ok = result.status === 200 && result.body.length > 0;
  if (ok) {
    try {
      const parsed = JSON.parse(result.body) as { Function?: unknown; ExecutionTime?: unknown };
      if (typeof parsed.Function === 'string' && parsed.Function !== '') instance = parsed.Function;
      if (typeof parsed.ExecutionTime === 'number' && Number.isFinite(parsed.ExecutionTime)) actualDuration = Math.max(0, Math.round(parsed.ExecutionTime));
    } catch {
      // The loader logs a body it cannot read and keeps the call as a success with no reported run time.
    }
  }
  return {
    phase: schedule.phase[i]!,
    instance,
    invocationID: invocationId(schedule.minute[i]!, schedule.index[i]!),
    startTime: result.startTimeUs,
    requestedDuration: schedule.runtimeMs[i]! * 1000,
    responseTime: result.responseTimeUs,
    actualDuration,
    connectionTimeout: result.status === 0,
    functionTimeout: result.status !== 0 && !ok,
    function: name,
    httpStatus: result.status,
    ...(result.coldStart === undefined ? {} : { coldStart: result.coldStart }),
    ...(result.queueMs === undefined ? {} : { queueTime: Math.round(result.queueMs * 1000) }),
    sendLateness: Math.max(0, Math.round(latenessUs)),
  };
}

export async function replay(options: ReplayOptions): Promise<ReplaySummary> {
  if (!(options.compression > 0) || !Number.isFinite(options.compression)) throw new ReplayError(`compression must be a number > 0, got ${options.compression}`, 'INVALID_REPLAY');
  if (!/^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/.test(options.namePrefix)) throw new ReplayError(`name prefix must be 1-32 characters of a-z, 0-9 and '-', starting and ending with a letter or digit, got ${JSON.stringify(options.namePrefix)}`, 'INVALID_REPLAY');
  const functions = await readAzureTrace(options.traceDir);
  const available = Math.min(...functions.map((f) => f.invocations.length));
  const { first } = replayedMinutes({ minutes: 0, warmupMinutes: options.warmupMinutes });
  const minutes = options.minutes ?? available - first - options.warmupMinutes;
  if (minutes < 1) throw new ReplayError(`the trace has ${available} minutes: none left after the warm-up of ${options.warmupMinutes}${options.warmupMinutes > 0 ? ' and the skipped minute 0' : ''}`, 'INVALID_REPLAY');
  let schedule: Schedule;
  try {
    schedule = buildSchedule(functions, { minutes, warmupMinutes: options.warmupMinutes, distribution: options.distribution, iatRandom: seededRandom(options.seed), specRandom: seededRandom(options.seed) });
  } catch (error) {
    if (error instanceof RangeError) throw new ReplayError(error.message, 'INVALID_REPLAY');
    throw error;
  }
  const totalMs = (schedule.totalMinutes * 60_000) / options.compression;
  const counts = { sent: 0, answered: 0, failed: 0 };
  const progress = (phase: ReplayProgress['phase'], elapsedMs: number) => options.onProgress?.({ phase, elapsedMs, totalMs, scheduled: schedule.count, ...counts });
  progress('registering', 0);

  const names = functions.map((f, i) => functionName(options.namePrefix, i, f));
  const endpointChoice = seededRandom(options.seed);
  const registered = await registerAll(options, names, functions);
  const endpoints = registered.map((list) => options.target ?? list[Math.floor(endpointChoice() * list.length)]!);

  const out = createWriteStream(options.out);
  const outClosed = new Promise<void>((resolve, reject) => {
    out.once('close', resolve);
    out.once('error', reject);
  });
  out.write(`${recordHeader()}\n`);
  const sender = new HttpSender({ maxSockets: options.maxSockets, maxPending: options.maxPending, timeoutMs: options.timeoutMs });
  const lateness: number[] = [];
  // Sending starts a little later, so that the first invocations are not late by the set-up of the loop.
  const t0 = performance.now() + 50;
  let drained: () => void = () => undefined;
  const allAnswered = new Promise<void>((resolve) => (drained = resolve));
  let sendingDone = false;
  const checkDrained = () => {
    if (sendingDone && counts.answered === counts.sent) drained();
  };

  const fire = (i: number, nowMs: number) => {
    const fn = schedule.fn[i]!;
    const f = functions[fn]!;
    const name = names[fn]!;
    const dueMs = t0 + schedule.atUs[i]! / 1000 / options.compression;
    const latenessUs = (nowMs - dueMs) * 1000;
    lateness.push(latenessUs);
    counts.sent++;
    sender.send(
      endpoints[fn]!,
      name,
      {
        workload: TRACE_IMAGE,
        function: name,
        requested_cpu: String(schedule.runtimeMs[i]),
        requested_memory: String(schedule.memoryMiB[i]),
        multiplier: String(f.dirigent?.iterationMultiplier ?? 0),
        io_percentage: String(f.dirigent?.ioPercentage ?? 0),
      },
      (result) => {
        const record = toRecord(schedule, i, name, result, latenessUs);
        counts.answered++;
        if (record.connectionTimeout || record.functionTimeout) counts.failed++;
        out.write(`${recordLine(record)}\n`);
        checkDrained();
      },
    );
  };

  const ticker = setInterval(() => progress(sendingDone ? 'draining' : 'sending', performance.now() - t0), 1000);
  try {
    await new Promise<void>((resolve) => {
      let next = 0;
      let timer: NodeJS.Timeout | undefined;
      const stop = () => {
        clearTimeout(timer);
        resolve();
      };
      options.signal?.addEventListener('abort', stop, { once: true });
      const pump = () => {
        const now = performance.now();
        const traceNowUs = (now - t0) * 1000 * options.compression;
        while (next < schedule.count && schedule.atUs[next]! <= traceNowUs && !options.signal?.aborted) fire(next++, now);
        if (next >= schedule.count || options.signal?.aborted) {
          options.signal?.removeEventListener('abort', stop);
          return resolve();
        }
        timer = setTimeout(pump, Math.max(0, t0 + schedule.atUs[next]! / 1000 / options.compression - performance.now()));
      };
      if (options.signal?.aborted) return resolve();
      timer = setTimeout(pump, Math.max(0, t0 - performance.now()));
    });
    sendingDone = true;
    checkDrained();
    await allAnswered;
  } finally {
    clearInterval(ticker);
    sender.close();
    out.end();
  }
  await outClosed;
  const wallMs = performance.now() - t0;
  progress('draining', wallMs);
  lateness.sort((a, b) => a - b);
  const late = lateness.length === 0 ? 0 : lateness[Math.min(lateness.length - 1, Math.floor(lateness.length * 0.99))]!;
  return { out: options.out, functions: functions.length, scheduled: schedule.count, sent: counts.sent, failed: counts.failed, wallMs, lateP99Ms: late / 1000, endpoints: [...new Set(endpoints)] };
}
