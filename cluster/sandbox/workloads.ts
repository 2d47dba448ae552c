// Built-in workloads, runnable in every runtime: inside a thread sandbox's worker, behind the process
// runtime's builtin-server, and in the simulated runtime (where `trace` holds a timer instead of a CPU).
import { performance } from 'node:perf_hooks';
import type { BuiltinWorkload, InvokeRequest, InvokeResponse } from './runtime.js';
import { assertNever } from './runtime.js';

const MiB = 1024 * 1024;
/** Linux page size, bytes: writing one byte per page commits the whole allocation. */
const PAGE_BYTES = 4096;

export interface WorkloadContext {
  /** Reported as `MachineName` by `trace`; a sandbox id plays the role of a pod's hostname. */
  machineName: string;
  /** `trace` answers with this when the request has no `function` header. */
  functionName: string;
  /** `trace` touches at most this much memory, MiB: the sandbox's limit, as a container would be capped. */
  memoryLimitMiB: number;
  /** Monotonic time, ms (fractional). */
  now(): number;
  /**
   * Keep the sandbox busy for `ms` while holding `memoryMiB` MiB: spin in real sandboxes, sleep in simulated
   * ones. Answers a promise when the hold is still to come, nothing when it is over already (a simulated
   * sandbox holds nothing for 0 ms), so that a workload that holds nothing answers synchronously.
   */
  occupy(ms: number, memoryMiB: number): Promise<void> | undefined;
}

/** A context for sandboxes that really run code: spins the CPU and writes the memory. */
export function realWorkloadContext(machineName: string, functionName: string, memoryLimitMiB: number): WorkloadContext {
  const now = () => performance.now();
  return {
    machineName,
    functionName,
    memoryLimitMiB,
    now,
    // Synchronous: the spin is the hold, so it is over when this returns.
    occupy: (ms, memoryMiB) => {
      const start = now();
      const held = touchMemory(memoryMiB);
      while (now() - start < ms) {
        // Busy loop on purpose: the trace function's run time is CPU time.
      }
      // Reading the buffer after the spin keeps it alive (and resident) for the whole run.
      if (held.length > 0 && held[0] !== 1) throw new Error('touched memory lost its contents');
      return undefined;
    },
  };
}

function touchMemory(memoryMiB: number): Buffer {
  const bytes = Math.floor(memoryMiB * MiB);
  const buffer = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i += PAGE_BYTES) buffer[i] = 1;
  return buffer;
}

const encoder = new TextEncoder();

function text(status: number, body: string): InvokeResponse {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: encoder.encode(body) };
}

// Responses that never change are built once. Callers only read responses (the worker packs them, a thread
// sandbox posts them, the builtin server writes them): the objects are frozen, and the body is shared bytes.
/** Dirigent counts a call as successful only on 200 with a non-empty body. */
const EMPTY_OK: InvokeResponse = Object.freeze({ status: 200, headers: Object.freeze({ 'content-type': 'text/plain; charset=utf-8' }), body: encoder.encode('OK') });
const OCTET_STREAM: Record<string, string> = Object.freeze({ 'content-type': 'application/octet-stream' });
const JSON_HEADERS: Record<string, string> = Object.freeze({ 'content-type': 'application/json' });

/** Loader header values are decimal numbers; absent means 0. */
function numberHeader(headers: Record<string, string>, name: string): number | string {
  const raw = headers[name];
  if (raw === undefined || raw.trim() === '') return 0;
  const value = Number(raw);
  return Number.isFinite(value) && value >= 0 ? value : `header ${name}=${JSON.stringify(raw)} must be a number >= 0`;
}

export async function runWorkload(workload: BuiltinWorkload, req: InvokeRequest, ctx: WorkloadContext): Promise<InvokeResponse> {
  return runWorkloadNow(workload, req, ctx);
}

/**
 * `runWorkload` without the promise when there is nothing to wait for: `empty`, `echo` and a `trace` whose
 * hold `ctx.occupy` ends at once answer synchronously (the simulated runtime's warm path). Throws
 * synchronously on an unknown workload.
 */
export function runWorkloadNow(workload: BuiltinWorkload, req: InvokeRequest, ctx: WorkloadContext): InvokeResponse | Promise<InvokeResponse> {
  switch (workload) {
    case 'empty':
      return EMPTY_OK;
    case 'echo': {
      const contentType = req.headers['content-type'];
      return { status: 200, headers: contentType === undefined ? OCTET_STREAM : { 'content-type': contentType }, body: req.body };
    }
    case 'trace':
      return trace(req, ctx);
    default:
      return assertNever(workload);
  }
}

/**
 * The in-vitro loader's trace function. Headers: `requested_cpu` = run time in ms (despite the name),
 * `requested_memory` MiB, `function`, `workload` (`empty` skips the work). `multiplier` is not read: it
 * calibrates the loader's iteration-counting spin, and this one spins against the clock instead.
 */
function trace(req: InvokeRequest, ctx: WorkloadContext): InvokeResponse | Promise<InvokeResponse> {
  const runMs = numberHeader(req.headers, 'requested_cpu');
  const memoryMiB = numberHeader(req.headers, 'requested_memory');
  if (typeof runMs === 'string') return text(400, runMs);
  if (typeof memoryMiB === 'string') return text(400, memoryMiB);
  const start = ctx.now();
  const held = req.headers['workload'] === 'empty' ? undefined : ctx.occupy(runMs, Math.min(memoryMiB, ctx.memoryLimitMiB));
  return held === undefined ? traced(req, ctx, start) : held.then(() => traced(req, ctx, start));
}

/** The loader's JSON answer, keys in its order: {"Status","Function","MachineName","ExecutionTime"}. */
function traced(req: InvokeRequest, ctx: WorkloadContext, start: number): InvokeResponse {
  const executionTimeUs = Math.round((ctx.now() - start) * 1000);
  const json = `{"Status":"OK","Function":${JSON.stringify(req.headers['function'] ?? ctx.functionName)},"MachineName":${JSON.stringify(ctx.machineName)},"ExecutionTime":${executionTimeUs}}`;
  return { status: 200, headers: JSON_HEADERS, body: encoder.encode(json) };
}
