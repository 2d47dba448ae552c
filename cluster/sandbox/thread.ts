// The thread runtime: each sandbox is its own piscina pool of one worker thread running the user's ES
// module, with a heap limit. A JS thread cannot be pre-empted, so a timed-out invocation costs the sandbox:
// the worker is killed through the task's AbortSignal, the sandbox fails and the node replaces it.
//
// Every thread starts generic (a stem: the harness, no function code, an empty environment, the heap limit
// of its memory class) and is specialised by one `load` task. With `pool` settings, stems of the pooled
// classes are kept started (pool.ts) and a cold start takes one; else, or when none is left, a cold start
// creates its thread fresh. Either way a thread serves one sandbox for its whole life.
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { RealClock } from '../../runtime/clock.js';
import { StemPool, type PoolSettings, type PoolStats, type PoolTimer } from './pool.js';
import type { InvokeRequest, InvokeResponse, LogRingBounds, Sandbox, SandboxEvent, SandboxRuntime, SandboxSpec, SandboxStart } from './runtime.js';
import { assertNever, deadline, DEFAULT_LOG_BOUNDS, LogRing, SandboxError, SandboxEvents, SandboxTable, unsupportedSource, validateSpec } from './runtime.js';
import type { ThreadIdentity, ThreadLogBatch, ThreadResult, ThreadTask } from './thread-worker.js';

const WORKER_FILE = fileURLToPath(new URL('./thread-worker.js', import.meta.url));

/** Idle memory assumed for a stem thread before one is measured, MiB (a worker isolate with piscina loaded: ~4-6). */
const STEM_ESTIMATE_MIB = 8;

export interface ThreadRuntimeOptions {
  /** Bound on loading the module in a fresh worker, ms. */
  createTimeoutMs?: number;
  /** What each sandbox's ring of output lines keeps. */
  logBounds?: LogRingBounds;
  /** Stems kept started per memory class; none without it. */
  pool?: PoolSettings;
  /** Called when the pool's stats change (a take, a refill). */
  onPoolChange?: (stats: PoolStats) => void;
  /** The pool's refill timer; default real time. */
  poolTimer?: PoolTimer;
}

/** `failed` and `destroyed` are final; both mean the pool is torn down (or being torn down). */
type Phase = 'starting' | 'ready' | 'failed' | 'destroyed';

interface Entry {
  spec: SandboxSpec;
  pool: Piscina<ThreadTask, ThreadResult>;
  logs: LogRing;
  phase: Phase;
  /** Set once the pool is being destroyed; awaited by later `destroy` calls. */
  teardown?: Promise<void>;
}

/** A started thread; `entry` once it became a sandbox (a pooled stem has none). */
interface Stem {
  readonly pool: Piscina<ThreadTask, ThreadResult>;
  readonly memoryMiB: number;
  /** Invocations the balancer lets run at once: the function's concurrency once specialised. */
  concurrency: number;
  idleMiB: number;
  entry?: Entry;
  /** Its thread died while idle in the pool, or the pool disposed of it. */
  lost: boolean;
}

export class ThreadRuntime implements SandboxRuntime {
  readonly name = 'thread';
  readonly #createTimeoutMs: number;
  readonly #logBounds: LogRingBounds;
  readonly #table = new SandboxTable<Entry>((entry) => entry.pool.destroy());
  readonly #entries = this.#table.entries;
  readonly #events = new SandboxEvents();
  readonly #stems: StemPool<Stem> | undefined;
  #closed = false;

  constructor(options: ThreadRuntimeOptions = {}) {
    this.#createTimeoutMs = options.createTimeoutMs ?? 10_000;
    this.#logBounds = options.logBounds ?? DEFAULT_LOG_BOUNDS;
    if (options.pool !== undefined) {
      const onChange = options.onPoolChange;
      this.#stems = new StemPool<Stem>(
        options.pool,
        {
          start: (memoryMiB) => this.#startPooledStem(memoryMiB),
          dispose: (stem) => {
            // Its thread's exit is ours, not a loss to report.
            stem.lost = true;
            return stem.pool.destroy();
          },
          idleMiB: (stem) => stem.idleMiB,
          estimateMiB: STEM_ESTIMATE_MIB,
        },
        options.poolTimer ?? new RealClock({ unref: true }),
        onChange === undefined ? undefined : () => onChange(this.#stems!.stats()),
      );
    }
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    if (this.#closed) throw new SandboxError('RUNTIME_CLOSED', `thread runtime is closed; cannot create ${spec.sandboxId}`);
    validateSpec(spec);
    const source = spec.runtime;
    if (source.kind === 'process') throw unsupportedSource('thread', spec, "'thread' and 'builtin' sources");
    if (this.#entries.has(spec.sandboxId)) throw new SandboxError('SANDBOX_EXISTS', `sandbox ${spec.sandboxId} already exists`);

    const began = performance.now();
    const taken = await this.#stems?.take(spec.memoryMiB);
    if (this.#closed) {
      if (taken !== undefined) void taken.pool.destroy();
      throw new SandboxError('RUNTIME_CLOSED', `thread runtime is closed; cannot create ${spec.sandboxId}`);
    }
    const start: SandboxStart = taken === undefined ? 'fresh' : 'pool';
    const stem = taken ?? this.#startStem(spec.memoryMiB);
    stem.concurrency = spec.concurrency;
    const entry: Entry = { spec, pool: stem.pool, logs: new LogRing(this.#logBounds), phase: 'starting' };
    stem.entry = entry;
    this.#entries.set(spec.sandboxId, entry);

    const identity: ThreadIdentity = { sandboxId: spec.sandboxId, functionName: spec.functionName, memoryMiB: spec.memoryMiB, source, env: { ...spec.env } };
    const loaded = await this.#load(entry, identity);
    if (loaded !== undefined) {
      await this.#teardown(entry, 'destroyed');
      throw new SandboxError('SANDBOX_CREATE_FAILED', `sandbox ${spec.sandboxId}: ${loaded}`);
    }
    entry.phase = 'ready';
    return {
      id: spec.sandboxId,
      start,
      startMs: performance.now() - began,
      invoke: (req, signal) => this.#invoke(entry, req, signal),
      logs: (sinceMs) => entry.logs.entries(sinceMs),
    };
  }

  /**
   * A generic thread with the heap limit of its class and an empty environment. Its events go to the sandbox
   * it becomes; while it idles in the pool, a death only evicts it.
   */
  #startStem(memoryMiB: number): Stem {
    const stem: Stem = {
      memoryMiB,
      concurrency: 1,
      idleMiB: STEM_ESTIMATE_MIB,
      lost: false,
      pool: new Piscina<ThreadTask, ThreadResult>({
        filename: WORKER_FILE,
        name: 'default',
        minThreads: 1,
        maxThreads: 1,
        // The balancer below holds the real bound (the function's concurrency, known only once specialised).
        concurrentTasksPerWorker: 1_000_000,
        // Piscina's default balancer gives a task with an AbortSignal a worker of its own, which with one
        // worker would serialise every invocation. Sharing is right here: a runaway handler blocks the whole
        // thread anyway, and its timeout fails the sandbox with everything on it.
        // (Piscina reports a worker running one abortable task as fully used: Infinity.)
        loadBalancer: (_task, workers) => workers.find((w) => (w.isRunningAbortableTask ? 1 : w.currentUsage) < stem.concurrency) ?? null,
        // Never retire the one worker for idleness: its module state is the sandbox's state.
        idleTimeout: Number.POSITIVE_INFINITY,
        // Atomics.wait would freeze the user's timers and I/O while the worker is idle between tasks.
        atomics: 'disabled',
        resourceLimits: { maxOldGenerationSizeMb: memoryMiB },
        // Nothing of the host's environment: the function's is set when the stem is specialised.
        env: {},
      }),
    };
    stem.pool.on('message', (message: ThreadLogBatch) => {
      if (message.type === 'sandboxLog' && stem.entry !== undefined) for (const l of message.lines) stem.entry.logs.push(l.stream, l.line, l.t);
    });
    // An uncaught error in the worker outside any task; without a listener it would crash the host.
    stem.pool.on('error', (error: Error) => this.#lose(stem, `worker thread error: ${error.message}`));
    // Piscina silently replaces a worker that dies outside a task. Wait a turn so that a task's own
    // rejection (with the precise reason) is reported first.
    stem.pool.on('workerDestroy', () => setImmediate(() => this.#lose(stem, 'worker thread exited')));
    return stem;
  }

  /** A stem for the pool: started, warmed through one task, its idle memory measured. */
  async #startPooledStem(memoryMiB: number): Promise<Stem> {
    const stem = this.#startStem(memoryMiB);
    const limit = deadline(this.#createTimeoutMs);
    try {
      const result = await stem.pool.run({ type: 'warm' }, { signal: limit.signal });
      if (result.type !== 'warmed') throw new Error(`thread worker answered ${result.type} to a warm-up`);
      stem.idleMiB = Math.round((result.idleBytes / 2 ** 20) * 10) / 10;
      if (stem.lost) throw new Error('the stem thread died while warming up');
      return stem;
    } catch (error) {
      await stem.pool.destroy();
      throw error;
    } finally {
      limit.clear();
    }
  }

  #lose(stem: Stem, reason: string): void {
    if (stem.entry !== undefined) return this.#fail(stem.entry, reason);
    if (stem.lost) return;
    stem.lost = true;
    this.#stems?.evict(stem);
    stem.pool.destroy().catch(() => undefined);
  }

  /** Pooled stems now, their classes, idle memory and counts; null without a pool. */
  poolStats(): PoolStats | null {
    return this.#stems?.stats() ?? null;
  }

  /** Loads the module in the worker; answers a failure reason, or undefined when ready. */
  async #load(entry: Entry, identity: ThreadIdentity): Promise<string | undefined> {
    const limit = deadline(this.#createTimeoutMs);
    try {
      const result = await entry.pool.run({ type: 'load', identity }, { signal: limit.signal });
      if (entry.phase === 'destroyed') return 'destroyed while starting';
      switch (result.type) {
        case 'loaded':
          return undefined;
        case 'loadFailed':
          return `cannot load the module: ${result.message}`;
        case 'response':
        case 'warmed':
          throw new Error(`thread worker answered ${result.type} to a load`);
        default:
          return assertNever(result);
      }
    } catch (error) {
      if (limit.timedOut()) return `module not loaded within ${this.#createTimeoutMs} ms`;
      return entry.phase === 'destroyed' ? 'destroyed while starting' : `worker thread died while loading: ${(error as Error).message}`;
    } finally {
      limit.clear();
    }
  }

  async #invoke(entry: Entry, req: InvokeRequest, signal?: AbortSignal): Promise<InvokeResponse> {
    const id = entry.spec.sandboxId;
    if (entry.phase !== 'ready') throw new SandboxError('SANDBOX_GONE', `sandbox ${id} is ${entry.phase}`);
    if (signal?.aborted) throw new SandboxError('SANDBOX_ABORTED', `invocation on ${id} aborted by the caller`);
    // Only the deadline reaches piscina: aborting kills the worker, which a caller giving up must not do.
    const limit = deadline(entry.spec.timeoutMs);
    const task = entry.pool.run({ type: 'invoke', request: req }, { signal: limit.signal }).then(
      (result) => {
        if (result.type !== 'response') throw new Error(`thread worker answered ${result.type} to an invoke`);
        return result.response;
      },
      (error: Error) => {
        if (limit.timedOut()) {
          this.#fail(entry, `invocation exceeded timeoutMs=${entry.spec.timeoutMs} ms; worker killed`);
          throw new SandboxError('SANDBOX_TIMEOUT', `invocation on ${id} exceeded ${entry.spec.timeoutMs} ms`);
        }
        if (entry.phase === 'destroyed') throw new SandboxError('SANDBOX_GONE', `sandbox ${id} was destroyed during the invocation`);
        // Ready: this task saw the worker die first. Failed: another invocation's failure took the worker down.
        this.#fail(entry, `worker thread died: ${error.message}`);
        throw new SandboxError('SANDBOX_CRASHED', `sandbox ${id} died during the invocation: ${error.message}`);
      },
    );
    task.finally(() => limit.clear()).catch(() => {});
    if (signal === undefined) return task;
    // The caller stops waiting; the task runs on to completion or its deadline.
    return new Promise<InvokeResponse>((resolve, reject) => {
      const onAbort = () => reject(new SandboxError('SANDBOX_ABORTED', `invocation on ${id} aborted by the caller`));
      signal.addEventListener('abort', onAbort, { once: true });
      task.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  #fail(entry: Entry, reason: string): void {
    if (entry.phase !== 'ready') return;
    void this.#teardown(entry, 'failed');
    this.#events.emit({ type: 'failed', sandboxId: entry.spec.sandboxId, reason });
  }

  #teardown(entry: Entry, phase: 'failed' | 'destroyed'): Promise<void> {
    return this.#table.teardown(entry, phase);
  }

  destroy(sandboxId: string): Promise<void> {
    return this.#table.destroy(sandboxId);
  }

  list(): { sandboxId: string; functionName: string }[] {
    return this.#table.list();
  }

  onEvent(listener: (e: SandboxEvent) => void): void {
    this.#events.on(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([this.#stems?.close(), this.#table.destroyAll()]);
  }
}
