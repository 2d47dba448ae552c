// The thread runtime: each sandbox is its own piscina pool of one worker thread running the user's ES
// module, with a heap limit. A JS thread cannot be pre-empted, so a timed-out invocation costs the sandbox:
// the worker is killed through the task's AbortSignal, the sandbox fails and the node replaces it.
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { InvokeRequest, InvokeResponse, LogRingBounds, Sandbox, SandboxEvent, SandboxRuntime, SandboxSpec } from './runtime.js';
import { assertNever, deadline, DEFAULT_LOG_BOUNDS, LogRing, SandboxError, SandboxEvents, SandboxTable, unsupportedSource, validateSpec } from './runtime.js';
import type { ThreadLogBatch, ThreadResult, ThreadTask, ThreadWorkerData } from './thread-worker.js';

const WORKER_FILE = fileURLToPath(new URL('./thread-worker.js', import.meta.url));

export interface ThreadRuntimeOptions {
  /** Bound on loading the module in a fresh worker, ms. */
  createTimeoutMs?: number;
  /** What each sandbox's ring of output lines keeps. */
  logBounds?: LogRingBounds;
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

export class ThreadRuntime implements SandboxRuntime {
  readonly name = 'thread';
  readonly #createTimeoutMs: number;
  readonly #logBounds: LogRingBounds;
  readonly #table = new SandboxTable<Entry>((entry) => entry.pool.destroy());
  readonly #entries = this.#table.entries;
  readonly #events = new SandboxEvents();
  #closed = false;

  constructor(options: ThreadRuntimeOptions = {}) {
    this.#createTimeoutMs = options.createTimeoutMs ?? 10_000;
    this.#logBounds = options.logBounds ?? DEFAULT_LOG_BOUNDS;
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    if (this.#closed) throw new SandboxError('RUNTIME_CLOSED', `thread runtime is closed; cannot create ${spec.sandboxId}`);
    validateSpec(spec);
    const source = spec.runtime;
    if (source.kind === 'process') throw unsupportedSource('thread', spec, "'thread' and 'builtin' sources");
    if (this.#entries.has(spec.sandboxId)) throw new SandboxError('SANDBOX_EXISTS', `sandbox ${spec.sandboxId} already exists`);

    const workerData: ThreadWorkerData = { sandboxId: spec.sandboxId, functionName: spec.functionName, memoryMiB: spec.memoryMiB, source };
    const pool = new Piscina<ThreadTask, ThreadResult>({
      filename: WORKER_FILE,
      name: 'default',
      minThreads: 1,
      maxThreads: 1,
      concurrentTasksPerWorker: spec.concurrency,
      // Piscina's default balancer gives a task with an AbortSignal a worker of its own, which with one
      // worker would serialise every invocation. Sharing is right here: a runaway handler blocks the whole
      // thread anyway, and its timeout fails the sandbox with everything on it.
      // (Piscina reports a worker running one abortable task as fully used: Infinity.)
      loadBalancer: (_task, workers) => workers.find((w) => (w.isRunningAbortableTask ? 1 : w.currentUsage) < spec.concurrency) ?? null,
      // Never retire the one worker for idleness: its module state is the sandbox's state.
      idleTimeout: Number.POSITIVE_INFINITY,
      // Atomics.wait would freeze the user's timers and I/O while the worker is idle between tasks.
      atomics: 'disabled',
      resourceLimits: { maxOldGenerationSizeMb: spec.memoryMiB },
      env: { ...spec.env },
      workerData,
    });
    const entry: Entry = { spec, pool, logs: new LogRing(this.#logBounds), phase: 'starting' };
    this.#entries.set(spec.sandboxId, entry);

    pool.on('message', (message: ThreadLogBatch) => {
      if (message.type === 'sandboxLog') for (const l of message.lines) entry.logs.push(l.stream, l.line, l.t);
    });
    // An uncaught error in the worker outside any task; without a listener it would crash the host.
    pool.on('error', (error: Error) => this.#fail(entry, `worker thread error: ${error.message}`));
    // Piscina silently replaces a worker that dies outside a task. Wait a turn so that a task's own
    // rejection (with the precise reason) is reported first.
    pool.on('workerDestroy', () => setImmediate(() => this.#fail(entry, 'worker thread exited')));

    const loaded = await this.#load(entry);
    if (loaded !== undefined) {
      await this.#teardown(entry, 'destroyed');
      throw new SandboxError('SANDBOX_CREATE_FAILED', `sandbox ${spec.sandboxId}: ${loaded}`);
    }
    entry.phase = 'ready';
    return {
      id: spec.sandboxId,
      invoke: (req, signal) => this.#invoke(entry, req, signal),
      logs: (sinceMs) => entry.logs.entries(sinceMs),
    };
  }

  /** Loads the module in the worker; answers a failure reason, or undefined when ready. */
  async #load(entry: Entry): Promise<string | undefined> {
    const limit = deadline(this.#createTimeoutMs);
    try {
      const result = await entry.pool.run({ type: 'load' }, { signal: limit.signal });
      if (entry.phase === 'destroyed') return 'destroyed while starting';
      switch (result.type) {
        case 'loaded':
          return undefined;
        case 'loadFailed':
          return `cannot load the module: ${result.message}`;
        case 'response':
          throw new Error('thread worker answered a response to a load');
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
    await this.#table.destroyAll();
  }
}
