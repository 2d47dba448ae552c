// The simulated runtime: sandboxes are records, creation costs a drawn latency on an injected clock, and
// only builtin workloads run (in this thread; `trace` holds a timer instead of the CPU). For control-plane
// scale tests with thousands of sandboxes on one host. Like a process, a timed-out invocation leaves it alive.
import type { BuiltinWorkload, InvokeRequest, InvokeResponse, Sandbox, SandboxEvent, SandboxRuntime, SandboxSpec } from './runtime.js';
import { SandboxError, unsupportedSource, validateSpec } from './runtime.js';
import type { WorkloadContext } from './workloads.js';
import { runWorkload } from './workloads.js';

/** Sandbox creation latency, ms. */
export type LatencyDistribution = { kind: 'fixed'; ms: number } | { kind: 'uniform'; minMs: number; maxMs: number };

export interface SimulatedClock {
  /** Monotonic time, ms. */
  now(): number;
  /** Resolves after `ms` ms of this clock; rejects (with anything) if `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface SimulatedRuntimeOptions {
  creationLatency: LatencyDistribution;
  /** Uniform in [0, 1); seeded by the caller. */
  random: () => number;
  clock: SimulatedClock;
}

/** `starting` sandboxes are reserved ids; an invocation only ever sees `ready`. */
type Phase = 'starting' | 'ready' | 'destroyed';

interface Entry {
  spec: SandboxSpec;
  phase: Phase;
  /** Aborts the creation wait when the sandbox goes. */
  stop: AbortController;
  /** One per invocation in progress, aborted when the sandbox goes. */
  holds: Set<AbortController>;
}

/** Abort reason for every internal abort: a shared value, so aborting allocates no DOMException. */
const ABORTED = Object.freeze({ aborted: true });

export function validateLatency(latency: LatencyDistribution): void {
  const bad = (field: string, value: unknown): never => {
    throw new SandboxError('INVALID_SPEC', `creationLatency.${field}=${JSON.stringify(value)} must be a finite number >= 0 (ms)`);
  };
  switch (latency.kind) {
    case 'fixed':
      if (!Number.isFinite(latency.ms) || latency.ms < 0) bad('ms', latency.ms);
      return;
    case 'uniform':
      if (!Number.isFinite(latency.minMs) || latency.minMs < 0) bad('minMs', latency.minMs);
      if (!Number.isFinite(latency.maxMs) || latency.maxMs < latency.minMs) {
        throw new SandboxError('INVALID_SPEC', `creationLatency.maxMs=${latency.maxMs} must be finite and >= minMs=${latency.minMs} (ms)`);
      }
      return;
    default:
      throw new SandboxError('INVALID_SPEC', `creationLatency.kind=${JSON.stringify((latency as { kind: unknown }).kind)} must be 'fixed' or 'uniform'`);
  }
}

export class SimulatedRuntime implements SandboxRuntime {
  readonly name = 'simulated';
  readonly #options: SimulatedRuntimeOptions;
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  constructor(options: SimulatedRuntimeOptions) {
    validateLatency(options.creationLatency);
    this.#options = options;
  }

  #drawLatencyMs(): number {
    const latency = this.#options.creationLatency;
    return latency.kind === 'fixed' ? latency.ms : latency.minMs + this.#options.random() * (latency.maxMs - latency.minMs);
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    if (this.#closed) throw new SandboxError('RUNTIME_CLOSED', `simulated runtime is closed; cannot create ${spec.sandboxId}`);
    validateSpec(spec);
    const source = spec.runtime;
    if (source.kind !== 'builtin') throw unsupportedSource('simulated', spec, "only 'builtin' sources");
    if (this.#entries.has(spec.sandboxId)) throw new SandboxError('SANDBOX_EXISTS', `sandbox ${spec.sandboxId} already exists`);
    const entry: Entry = { spec, phase: 'starting', stop: new AbortController(), holds: new Set() };
    this.#entries.set(spec.sandboxId, entry);

    const latencyMs = this.#drawLatencyMs();
    // No sleep at all for 0 ms, so that a zero-latency create settles within the current microtask queue.
    if (latencyMs > 0) await this.#options.clock.sleep(latencyMs, entry.stop.signal).catch(() => undefined);
    if (entry.phase !== 'starting') throw new SandboxError('SANDBOX_CREATE_FAILED', `sandbox ${spec.sandboxId}: destroyed while starting`);
    entry.phase = 'ready';

    return {
      id: spec.sandboxId,
      invoke: (req, signal) => this.#invoke(entry, source.workload, req, signal),
      logs: () => [],
    };
  }

  async #invoke(entry: Entry, workload: BuiltinWorkload, req: InvokeRequest, signal?: AbortSignal): Promise<InvokeResponse> {
    const id = entry.spec.sandboxId;
    if (entry.phase !== 'ready') throw new SandboxError('SANDBOX_GONE', `sandbox ${id} is ${entry.phase}`);
    if (signal?.aborted) throw new SandboxError('SANDBOX_ABORTED', `invocation on ${id} aborted by the caller`);
    const clock = this.#options.clock;
    // One controller per invocation, aborted by destroy, the caller or the timeout. No AbortSignal.any on
    // the sandbox's long-lived signal (it leaks per call on Node 20) and a fixed abort reason (no DOMException).
    const hold = new AbortController();
    entry.holds.add(hold);
    const onCallerAbort = () => hold.abort(ABORTED);
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    let timedOut = false;
    const timeout = clock.sleep(entry.spec.timeoutMs, hold.signal).then(
      () => {
        timedOut = true;
        hold.abort(ABORTED);
      },
      () => undefined,
    );
    const ctx: WorkloadContext = {
      machineName: id,
      functionName: entry.spec.functionName,
      memoryLimitMiB: entry.spec.memoryMiB,
      now: () => clock.now(),
      occupy: (ms) => (ms > 0 ? clock.sleep(ms, hold.signal) : Promise.resolve()),
    };
    try {
      return await runWorkload(workload, req, ctx);
    } catch (error) {
      if (timedOut) throw new SandboxError('SANDBOX_TIMEOUT', `invocation on ${id} exceeded ${entry.spec.timeoutMs} ms`);
      if (signal?.aborted) throw new SandboxError('SANDBOX_ABORTED', `invocation on ${id} aborted by the caller`);
      if (entry.phase !== 'ready') throw new SandboxError('SANDBOX_GONE', `sandbox ${id} was destroyed during the invocation`);
      throw error;
    } finally {
      entry.holds.delete(hold);
      signal?.removeEventListener('abort', onCallerAbort);
      hold.abort(ABORTED);
      await timeout;
    }
  }

  async destroy(sandboxId: string): Promise<void> {
    const entry = this.#entries.get(sandboxId);
    if (entry === undefined) return;
    entry.phase = 'destroyed';
    this.#entries.delete(sandboxId);
    entry.stop.abort(ABORTED);
    for (const hold of entry.holds) hold.abort(ABORTED);
  }

  list(): { sandboxId: string; functionName: string }[] {
    return [...this.#entries.values()].filter((e) => e.phase === 'ready').map((e) => ({ sandboxId: e.spec.sandboxId, functionName: e.spec.functionName }));
  }

  /** Simulated sandboxes never fail or exit on their own, so there is nothing to report. */
  onEvent(_listener: (e: SandboxEvent) => void): void {}

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#entries.keys()].map((id) => this.destroy(id)));
  }
}
