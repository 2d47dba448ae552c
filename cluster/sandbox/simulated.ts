// The simulated runtime: sandboxes are records, creation costs a drawn latency on an injected clock, and
// only builtin workloads run (in this thread; `trace` holds a timer instead of the CPU). For control-plane
// scale tests with thousands of sandboxes on one host. Like a process, a timed-out invocation leaves it alive.
import type { BuiltinWorkload, InvokeRequest, InvokeResponse, Sandbox, SandboxEvent, SandboxRuntime, SandboxSpec } from './runtime.js';
import { SandboxError, unsupportedSource, validateSpec } from './runtime.js';
import type { WorkloadContext } from './workloads.js';
import { runWorkloadNow } from './workloads.js';

/** Sandbox creation latency, ms. */
export type LatencyDistribution = { kind: 'fixed'; ms: number } | { kind: 'uniform'; minMs: number; maxMs: number };

/** The runtime/clock.ts `Clock` fits as it is (a handle is whatever `setTimer` answered). */
export interface SimulatedClock {
  /** Monotonic time, ms. */
  now(): number;
  /** Runs `fn` once after `ms` ms of this clock; answers a handle for `clearTimer`. */
  setTimer(ms: number, fn: () => void): unknown;
  /** Cancels a timer that has not fired; ignores a fired or cleared one. */
  clearTimer(handle: unknown): void;
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
  readonly spec: SandboxSpec;
  readonly clock: SimulatedClock;
  phase: Phase;
  /** Ends the creation wait early (destroy while starting). */
  wake?: () => void;
  /** The creation wait's timer, while starting. */
  startTimer?: unknown;
  /** Invocations holding the sandbox (each with a timer armed); destroy ends them. */
  readonly holds: Set<Invocation>;
}

/**
 * One invocation, and the workload's context for it. Warm invocations of `empty`, `echo` and a `trace` of
 * 0 ms never reach `occupy` with time to hold: they arm no timer and register nowhere, so this object is all
 * they cost. A hold arms one timer on the clock, due at the end of the hold or at the invocation's deadline,
 * whichever comes first (a builtin does nothing but hold, so the deadline can only fall during a hold).
 */
class Invocation implements WorkloadContext {
  readonly #entry: Entry;
  readonly #signal: AbortSignal | undefined;
  readonly #start: number;
  /** Set while a hold is armed. */
  #timer: unknown = undefined;
  #resolve: (() => void) | undefined;
  #reject: ((error: SandboxError) => void) | undefined;

  constructor(entry: Entry, signal: AbortSignal | undefined) {
    this.#entry = entry;
    this.#signal = signal;
    this.#start = entry.clock.now();
  }

  get machineName(): string {
    return this.#entry.spec.sandboxId;
  }

  get functionName(): string {
    return this.#entry.spec.functionName;
  }

  get memoryLimitMiB(): number {
    return this.#entry.spec.memoryMiB;
  }

  now(): number {
    return this.#entry.clock.now();
  }

  occupy(ms: number): Promise<void> | undefined {
    if (!(ms > 0)) return undefined;
    const entry = this.#entry;
    const id = entry.spec.sandboxId;
    if (entry.phase !== 'ready') return Promise.reject(new SandboxError('SANDBOX_GONE', `sandbox ${id} was destroyed during the invocation`));
    if (this.#signal?.aborted) return Promise.reject(aborted(id));
    const left = this.#start + entry.spec.timeoutMs - entry.clock.now();
    // A hold as long as what is left of the deadline times out (the deadline wins a tie).
    const timesOut = ms >= left;
    return new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      this.#timer = entry.clock.setTimer(timesOut ? Math.max(0, left) : ms, () =>
        this.#end(false, timesOut ? new SandboxError('SANDBOX_TIMEOUT', `invocation on ${id} exceeded ${entry.spec.timeoutMs} ms`) : undefined),
      );
      entry.holds.add(this);
      // This object is the listener (handleEvent): no closure per hold.
      this.#signal?.addEventListener('abort', this, { once: true });
    });
  }

  /** The caller's signal aborted during a hold. */
  handleEvent(): void {
    this.#end(true, aborted(this.#entry.spec.sandboxId));
  }

  /** The sandbox is going: ends a hold in progress with SANDBOX_GONE. */
  destroyed(): void {
    this.#end(true, new SandboxError('SANDBOX_GONE', `sandbox ${this.#entry.spec.sandboxId} was destroyed during the invocation`));
  }

  /** Ends the hold in progress, if any: unhooks it, then settles it (`error` or done). */
  #end(clear: boolean, error: SandboxError | undefined): void {
    if (this.#timer === undefined) return;
    if (clear) this.#entry.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#entry.holds.delete(this);
    this.#signal?.removeEventListener('abort', this);
    const resolve = this.#resolve!;
    const reject = this.#reject!;
    this.#resolve = this.#reject = undefined;
    if (error === undefined) resolve();
    else reject(error);
  }
}

function aborted(sandboxId: string): SandboxError {
  return new SandboxError('SANDBOX_ABORTED', `invocation on ${sandboxId} aborted by the caller`);
}

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
    const entry: Entry = { spec, clock: this.#options.clock, phase: 'starting', holds: new Set() };
    this.#entries.set(spec.sandboxId, entry);

    const latencyMs = this.#drawLatencyMs();
    // No timer at all for 0 ms, so that a zero-latency create settles within the current microtask queue.
    if (latencyMs > 0) {
      await new Promise<void>((resolve) => {
        entry.wake = resolve;
        entry.startTimer = entry.clock.setTimer(latencyMs, resolve);
      });
      entry.wake = entry.startTimer = undefined;
    }
    if (entry.phase !== 'starting') throw new SandboxError('SANDBOX_CREATE_FAILED', `sandbox ${spec.sandboxId}: destroyed while starting`);
    entry.phase = 'ready';

    return {
      id: spec.sandboxId,
      invoke: (req, signal) => {
        const answer = this.#invoke(entry, source.workload, req, signal);
        return answer instanceof Promise ? answer : Promise.resolve(answer);
      },
      invokeNow: (req) => this.#invoke(entry, source.workload, req, undefined),
      logs: () => [],
    };
  }

  /** The response itself when the workload held nothing, else a promise. Never throws: a failure is a rejected promise. */
  #invoke(entry: Entry, workload: BuiltinWorkload, req: InvokeRequest, signal: AbortSignal | undefined): InvokeResponse | Promise<InvokeResponse> {
    const id = entry.spec.sandboxId;
    if (entry.phase !== 'ready') return Promise.reject(new SandboxError('SANDBOX_GONE', `sandbox ${id} is ${entry.phase}`));
    if (signal?.aborted) return Promise.reject(aborted(id));
    try {
      return runWorkloadNow(workload, req, new Invocation(entry, signal));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async destroy(sandboxId: string): Promise<void> {
    const entry = this.#entries.get(sandboxId);
    if (entry === undefined) return;
    entry.phase = 'destroyed';
    this.#entries.delete(sandboxId);
    if (entry.wake !== undefined) {
      entry.clock.clearTimer(entry.startTimer);
      entry.wake();
    }
    for (const invocation of entry.holds) invocation.destroyed();
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
