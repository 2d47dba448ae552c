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
  /** Keep the sandbox busy for `ms` while holding `memoryMiB` MiB: spin in real sandboxes, sleep in simulated ones. */
  occupy(ms: number, memoryMiB: number): Promise<void>;
}

/** A context for sandboxes that really run code: spins the CPU and writes the memory. */
export function realWorkloadContext(machineName: string, functionName: string, memoryLimitMiB: number): WorkloadContext {
  const now = () => performance.now();
  return {
    machineName,
    functionName,
    memoryLimitMiB,
    now,
    occupy: async (ms, memoryMiB) => {
      const start = now();
      const held = touchMemory(memoryMiB);
      while (now() - start < ms) {
        // Busy loop on purpose: the trace function's run time is CPU time.
      }
      // Reading the buffer after the spin keeps it alive (and resident) for the whole run.
      if (held.length > 0 && held[0] !== 1) throw new Error('touched memory lost its contents');
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

/** Loader header values are decimal numbers; absent means 0. */
function numberHeader(headers: Record<string, string>, name: string): number | string {
  const raw = headers[name];
  if (raw === undefined || raw.trim() === '') return 0;
  const value = Number(raw);
  return Number.isFinite(value) && value >= 0 ? value : `header ${name}=${JSON.stringify(raw)} must be a number >= 0`;
}

export async function runWorkload(workload: BuiltinWorkload, req: InvokeRequest, ctx: WorkloadContext): Promise<InvokeResponse> {
  switch (workload) {
    case 'empty':
      // Dirigent counts a call as successful only on 200 with a non-empty body.
      return text(200, 'OK');
    case 'echo':
      return {
        status: 200,
        headers: { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' },
        body: req.body,
      };
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
async function trace(req: InvokeRequest, ctx: WorkloadContext): Promise<InvokeResponse> {
  const runMs = numberHeader(req.headers, 'requested_cpu');
  const memoryMiB = numberHeader(req.headers, 'requested_memory');
  if (typeof runMs === 'string') return text(400, runMs);
  if (typeof memoryMiB === 'string') return text(400, memoryMiB);
  const start = ctx.now();
  if (req.headers['workload'] !== 'empty') await ctx.occupy(runMs, Math.min(memoryMiB, ctx.memoryLimitMiB));
  const executionTimeUs = Math.round((ctx.now() - start) * 1000);
  const body = {
    Status: 'OK',
    Function: req.headers['function'] ?? ctx.functionName,
    MachineName: ctx.machineName,
    ExecutionTime: executionTimeUs,
  };
  return { status: 200, headers: { 'content-type': 'application/json' }, body: encoder.encode(JSON.stringify(body)) };
}
