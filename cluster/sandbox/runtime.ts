// The sandbox-runtime port: what a worker node asks of whatever runs function code. Everything that
// crosses it is plain data (it may cross threads), except the `Sandbox` handle, which stays on the node.
import { isAbsolute } from 'node:path';
import type { LogStream } from '../../actors/sandbox-logs.js';
import type { PoolStats } from './pool.js';
import { DirigentError } from '../../actors/errors.js';
import type { RuntimeKind } from '../../actors/settings.js';

/** What to run and with which limits. Units are in the field names or comments. */
export interface SandboxSpec {
  /** Unique per runtime; the node chooses it. */
  sandboxId: string;
  functionName: string;
  runtime: RuntimeSource;
  /** Memory limit, MiB. Thread: the worker's old-generation heap; process (builtin): `--max-old-space-size`. */
  memoryMiB: number;
  /** CPU request, millicores. Recorded for placement; no runtime here enforces it (no cgroups). */
  cpuMilli: number;
  /** Invocations the caller may run at once. The caller enforces it; runtimes size for it. */
  concurrency: number;
  /** Per-invocation deadline, ms. */
  timeoutMs: number;
  /** Extra environment for the sandbox. A thread sandbox sees only this; a process also gets PATH and PORT. */
  env?: Record<string, string>;
}

export type BuiltinWorkload = 'empty' | 'echo' | 'trace';

export type RuntimeSource =
  /** An ES module exporting `handler` (or a default function); `module` is an absolute path or a file URL. */
  | { kind: 'thread'; module: string }
  /** Any command serving HTTP on `$PORT`. */
  | { kind: 'process'; command: string; args?: string[]; cwd?: string }
  /** A workload shipped with dirigent; every runtime can run it. */
  | { kind: 'builtin'; workload: BuiltinWorkload };

export interface InvokeRequest {
  method: string;
  /** Path and query, e.g. `/x?y=1`. */
  path: string;
  /** Header names lower-case. */
  headers: Record<string, string>;
  body: Uint8Array;
}

export interface InvokeResponse {
  status: number;
  /** Header names lower-case. */
  headers: Record<string, string>;
  body: Uint8Array;
}

/**
 * `failed`: the runtime gave up on a live sandbox (thread killed on timeout, out of memory, crashed) and has
 * already torn it down. `exited`: a process sandbox's command exited on its own. Either way the sandbox is
 * gone and the node should replace it; `destroy` on it is a no-op.
 */
export type SandboxEvent =
  | { type: 'failed'; sandboxId: string; reason: string }
  | { type: 'exited'; sandboxId: string; code: number | null };

/** How a sandbox started: specialised from a pooled stem, or from scratch. */
export type SandboxStart = 'pool' | 'fresh';

export interface Sandbox {
  readonly id: string;
  /** Set by runtimes that keep a pool of stems (thread, process). */
  readonly start?: SandboxStart;
  /** Time `create` took, ms. */
  readonly startMs?: number;
  /** Rejects with a `SandboxError` (`SANDBOX_TIMEOUT`, `SANDBOX_GONE`, `SANDBOX_CRASHED`, `SANDBOX_ABORTED`). */
  invoke(req: InvokeRequest, signal?: AbortSignal): Promise<InvokeResponse>;
  /**
   * Optional: `invoke` without a caller signal, answering the response itself when it is ready at once (a
   * simulated builtin that holds nothing), so a caller on the warm path need not go through a promise.
   * Otherwise answers what `invoke` would; never throws (failures are rejected promises).
   */
  invokeNow?(req: InvokeRequest): InvokeResponse | Promise<InvokeResponse>;
  /**
   * Recent output lines written at or after `sinceMs` (ms since the epoch; default: all kept), oldest first
   * (process: the command's stdout and stderr; thread: console and process.stdout/stderr of the user code).
   * Still answers after the sandbox is gone.
   */
  logs(sinceMs?: number): SandboxLogEntry[];
}

/** One line of a sandbox's output. */
export interface SandboxLogEntry {
  /** When it was written, ms since the Unix epoch. */
  readonly t: number;
  readonly stream: LogStream;
  /** 1 for the sandbox's first line, counting lines the ring dropped since. */
  readonly seq: number;
  readonly line: string;
}

export interface SandboxRuntime {
  readonly name: RuntimeKind;
  /** Resolves once the sandbox can serve. */
  create(spec: SandboxSpec): Promise<Sandbox>;
  /** Idempotent; resolves when nothing of the sandbox is left running. */
  destroy(sandboxId: string): Promise<void>;
  /** Sandboxes that are ready to serve (not those still starting). */
  list(): { sandboxId: string; functionName: string }[];
  onEvent(listener: (e: SandboxEvent) => void): void;
  /** Destroys everything; later `create` calls reject with `RUNTIME_CLOSED`. */
  close(): Promise<void>;
  /** The pool of started stems (pool.ts): null when this runtime keeps none. */
  poolStats?(): PoolStats | null;
}

export type SandboxErrorCode =
  /** A spec field is out of range; the message names the field, value and unit. */
  | 'INVALID_SPEC'
  /** This runtime cannot run that kind of source. */
  | 'UNSUPPORTED_SOURCE'
  /** A sandbox with this id exists or is starting. */
  | 'SANDBOX_EXISTS'
  /** The sandbox could not start (import failed, command exited, not ready in time, destroyed while starting). */
  | 'SANDBOX_CREATE_FAILED'
  /** The invocation ran past `timeoutMs`. */
  | 'SANDBOX_TIMEOUT'
  /** The thread or process died under the invocation. */
  | 'SANDBOX_CRASHED'
  /** The sandbox was destroyed or has failed. */
  | 'SANDBOX_GONE'
  /** The caller's AbortSignal fired. */
  | 'SANDBOX_ABORTED'
  | 'RUNTIME_CLOSED';

export class SandboxError extends DirigentError<SandboxErrorCode> {
  override name = 'SandboxError';
}

export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(value)}`);
}

/** Throws `INVALID_SPEC` naming the first bad field. */
export function validateSpec(spec: SandboxSpec): void {
  const bad = (field: string, value: unknown, want: string): never => {
    throw new SandboxError('INVALID_SPEC', `sandbox ${spec.sandboxId}: ${field}=${JSON.stringify(value)} must be ${want}`);
  };
  if (typeof spec.sandboxId !== 'string' || spec.sandboxId === '') bad('sandboxId', spec.sandboxId, 'a non-empty string');
  if (typeof spec.functionName !== 'string' || spec.functionName === '') bad('functionName', spec.functionName, 'a non-empty string');
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 1) bad('memoryMiB', spec.memoryMiB, 'an integer >= 1 (MiB)');
  if (!Number.isFinite(spec.cpuMilli) || spec.cpuMilli <= 0) bad('cpuMilli', spec.cpuMilli, '> 0 (millicores)');
  if (!Number.isInteger(spec.concurrency) || spec.concurrency < 1) bad('concurrency', spec.concurrency, 'an integer >= 1');
  if (!Number.isFinite(spec.timeoutMs) || spec.timeoutMs <= 0) bad('timeoutMs', spec.timeoutMs, '> 0 (ms)');
  for (const [key, value] of Object.entries(spec.env ?? {})) {
    if (typeof value !== 'string') bad(`env.${key}`, value, 'a string');
  }
  const source = spec.runtime;
  switch (source.kind) {
    case 'thread':
      if (typeof source.module !== 'string' || !(isAbsolute(source.module) || source.module.startsWith('file:'))) bad('runtime.module', source.module, 'an absolute path or file URL');
      break;
    case 'process':
      if (typeof source.command !== 'string' || source.command === '') bad('runtime.command', source.command, 'a non-empty string');
      break;
    case 'builtin':
      if (!['empty', 'echo', 'trace'].includes(source.workload)) bad('runtime.workload', source.workload, "one of 'empty', 'echo', 'trace'");
      break;
    default:
      assertNever(source);
  }
}

export function unsupportedSource(runtime: string, spec: SandboxSpec, accepted: string): SandboxError {
  return new SandboxError(
    'UNSUPPORTED_SOURCE',
    `sandbox ${spec.sandboxId}: the ${runtime} runtime cannot run a '${spec.runtime.kind}' source (it runs ${accepted})`,
  );
}

/** What a runtime keeps per sandbox for the shared bookkeeping below. */
export interface TableEntry {
  readonly spec: SandboxSpec;
  phase: string;
  /** Set once teardown started; awaited by later `destroy` and `close` calls. */
  teardown?: Promise<void>;
}

/**
 * The sandboxes of a runtime that tears them down asynchronously (thread, process): listing, destroy
 * and close are the same for both; only how one sandbox is stopped differs (`stop`).
 */
export class SandboxTable<E extends TableEntry> {
  readonly entries = new Map<string, E>();

  constructor(private readonly stop: (entry: E) => Promise<void>) {}

  /** Ends one sandbox once; it stays listed until it is gone, so `destroy` and `close` can await it. */
  teardown(entry: E, phase: string): Promise<void> {
    if (entry.phase === 'starting' || entry.phase === 'ready') entry.phase = phase;
    entry.teardown ??= this.stop(entry).finally(() => {
      if (this.entries.get(entry.spec.sandboxId) === entry) this.entries.delete(entry.spec.sandboxId);
    });
    return entry.teardown;
  }

  async destroy(sandboxId: string): Promise<void> {
    const entry = this.entries.get(sandboxId);
    if (entry !== undefined) await this.teardown(entry, 'destroyed');
  }

  list(): { sandboxId: string; functionName: string }[] {
    return [...this.entries.values()].filter((e) => e.phase === 'ready').map((e) => ({ sandboxId: e.spec.sandboxId, functionName: e.spec.functionName }));
  }

  async destroyAll(): Promise<void> {
    await Promise.all([...this.entries.values()].map((entry) => this.teardown(entry, 'destroyed')));
  }
}

export class SandboxEvents {
  readonly #listeners: ((e: SandboxEvent) => void)[] = [];

  on(listener: (e: SandboxEvent) => void): void {
    this.#listeners.push(listener);
  }

  emit(event: SandboxEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}

export interface LogRingBounds {
  /** Lines kept. */
  readonly lines: number;
  /** UTF-8 bytes of line text kept: a few long lines cannot hold more memory than many short ones. */
  readonly bytes: number;
  /** A longer line is cut to this many characters (and marked with `...`). */
  readonly lineChars: number;
}

export const DEFAULT_LOG_BOUNDS: LogRingBounds = Object.freeze({ lines: 1000, bytes: 256 * 1024, lineChars: 4096 });

/** A sandbox's newest output lines within `bounds`; the oldest go first. A circular buffer: O(1) per line. */
export class LogRing {
  readonly #slots: (SandboxLogEntry | undefined)[];
  #head = 0;
  #count = 0;
  #bytes = 0;
  #seq = 0;

  constructor(readonly bounds: LogRingBounds = DEFAULT_LOG_BOUNDS) {
    for (const [name, value] of Object.entries(bounds)) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`log bound ${name}=${JSON.stringify(value)} must be an integer >= 1`);
    }
    this.#slots = new Array<SandboxLogEntry | undefined>(bounds.lines);
  }

  push(stream: LogStream, line: string, t: number): void {
    const text = line.length > this.bounds.lineChars ? `${line.slice(0, this.bounds.lineChars)}...` : line;
    if (this.#count === this.bounds.lines) this.#dropOldest();
    this.#slots[(this.#head + this.#count) % this.bounds.lines] = { t, stream, seq: ++this.#seq, line: text };
    this.#count += 1;
    this.#bytes += Buffer.byteLength(text);
    // The newest line stays even when it alone is over the byte bound (it is already cut to lineChars).
    while (this.#bytes > this.bounds.bytes && this.#count > 1) this.#dropOldest();
  }

  #dropOldest(): void {
    const oldest = this.#slots[this.#head];
    this.#slots[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.bounds.lines;
    this.#count -= 1;
    this.#bytes -= oldest === undefined ? 0 : Buffer.byteLength(oldest.line);
  }

  /** Lines written at or after `sinceMs`, oldest first. */
  entries(sinceMs = Number.NEGATIVE_INFINITY): SandboxLogEntry[] {
    const out: SandboxLogEntry[] = [];
    for (let i = 0; i < this.#count; i++) {
      const entry = this.#slots[(this.#head + i) % this.bounds.lines];
      if (entry !== undefined && entry.t >= sinceMs) out.push(entry);
    }
    return out;
  }

  /** The lines' text alone, oldest first. */
  lines(): string[] {
    return this.entries().map((e) => e.line);
  }
}

/** Splits a text stream into lines across chunks; one per stream, since stdout and stderr interleave. */
export function lineSplitter(onLine: (line: string) => void): { write(chunk: string): void; end(): void } {
  let partial = '';
  return {
    write(chunk) {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const part of parts) onLine(part.endsWith('\r') ? part.slice(0, -1) : part);
    },
    end() {
      if (partial !== '') onLine(partial);
      partial = '';
    },
  };
}

/** Combines the caller's signal with a deadline. `timedOut()` tells which one fired. */
export function deadline(timeoutMs: number, caller?: AbortSignal): { signal: AbortSignal; timedOut(): boolean; clear(): void } {
  const timeout = new AbortController();
  // Timer, not AbortSignal.timeout: the latter is unref'd and cannot be cleared early.
  const timer = setTimeout(() => timeout.abort(new SandboxError('SANDBOX_TIMEOUT', `invocation exceeded ${timeoutMs} ms`)), timeoutMs);
  return {
    signal: caller ? AbortSignal.any([caller, timeout.signal]) : timeout.signal,
    timedOut: () => timeout.signal.aborted,
    clear: () => clearTimeout(timer),
  };
}
