// The piscina worker of a thread sandbox. It starts generic (a stem: this harness, no function code, no
// environment) and is specialised once by a `load` task naming the function, its source and environment;
// then it runs one invocation per task. Handler errors become 500 responses; only a dying thread fails a task.
import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { parentPort } from 'node:worker_threads';
import type { LogStream } from '../../actors/sandbox-logs.js';
import { RealClock } from '../../runtime/clock.js';
import { normaliseHandlerResult } from './handler-result.js';
import type { BuiltinWorkload, InvokeRequest, InvokeResponse } from './runtime.js';
import { lineSplitter } from './runtime.js';
import { realWorkloadContext, runWorkload } from './workloads.js';

/** What a `load` task makes of a stem: the one sandbox it serves for its whole life. */
export interface ThreadIdentity {
  sandboxId: string;
  functionName: string;
  memoryMiB: number;
  source: { kind: 'thread'; module: string } | { kind: 'builtin'; workload: BuiltinWorkload };
  /** The function's environment: all the thread's `process.env` will hold. */
  env: Record<string, string>;
}

/** `warm`: answers once the stem is started, with its idle memory; `load`: specialises it (once). */
export type ThreadTask = { type: 'warm' } | { type: 'load'; identity: ThreadIdentity } | { type: 'invoke'; request: InvokeRequest };

export type ThreadResult =
  /** `idleBytes`: the isolate's heap and malloced memory while idle, bytes. */
  | { type: 'warmed'; idleBytes: number }
  | { type: 'loaded' }
  | { type: 'loadFailed'; message: string }
  | { type: 'response'; response: InvokeResponse };

/**
 * Posted to the pool (piscina re-emits it as a 'message' event) with the lines the user code wrote in one
 * turn of the worker's event loop: one message for a burst of lines rather than one per line.
 */
export interface ThreadLogBatch {
  type: 'sandboxLog';
  lines: { t: number; stream: LogStream; line: string }[];
}

/** A turn's batch is sent early past this many lines, so a handler that logs in a long loop holds little. */
const MAX_BATCH_LINES = 256;

type Handler = (request: InvokeRequest) => unknown;

captureOutput();

/** Set by the one `load` task. */
let loading: Promise<Handler> | undefined;

function specialise(identity: ThreadIdentity): Promise<Handler> {
  // The stem was created with an empty environment; the function's replaces it before its code runs.
  for (const key of Object.keys(process.env)) delete process.env[key];
  Object.assign(process.env, identity.env);
  loading = resolveHandler(identity);
  return loading;
}

async function resolveHandler(identity: ThreadIdentity): Promise<Handler> {
  const source = identity.source;
  if (source.kind === 'builtin') {
    const ctx = realWorkloadContext(identity.sandboxId, identity.functionName, identity.memoryMiB);
    return (request) => runWorkload(source.workload, request, ctx);
  }
  const url = source.module.startsWith('file:') ? source.module : pathToFileURL(source.module).href;
  const module = (await import(url)) as { handler?: unknown; default?: unknown };
  const handler = typeof module.handler === 'function' ? module.handler : module.default;
  if (typeof handler !== 'function') throw new Error(`${source.module} exports neither a 'handler' nor a default function`);
  return handler as Handler;
}

export default async function run(task: ThreadTask): Promise<ThreadResult> {
  switch (task.type) {
    case 'warm': {
      const heap = getHeapStatistics();
      return { type: 'warmed', idleBytes: heap.total_physical_size + heap.malloced_memory };
    }
    case 'load':
      // Never a second function in one thread, even if the host asked for it.
      if (loading !== undefined) return { type: 'loadFailed', message: 'this thread already serves a sandbox' };
      try {
        await specialise(task.identity);
        return { type: 'loaded' };
      } catch (error) {
        return { type: 'loadFailed', message: describe(error) };
      }
    case 'invoke': {
      if (loading === undefined) throw new Error('invoked before the sandbox was loaded');
      const handler = await loading;
      try {
        return { type: 'response', response: normaliseHandlerResult(await handler(task.request)) };
      } catch (error) {
        console.error(`handler failed: ${describe(error)}`);
        return { type: 'response', response: normaliseHandlerResult({ status: 500, body: describe(error) }) };
      }
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Sends the user code's output to the host line by line, stamped and tagged with its stream, instead of
 * interleaving it into the worker process's own output: console methods and direct process.stdout/stderr
 * writes alike. Costs nothing while the code writes nothing (measured: `npm run bench:logs`). A line still
 * unfinished when the turn ends is sent as it is, so output without a final newline is not held forever.
 */
function captureOutput(): void {
  const port = parentPort;
  if (port === null) return;
  const clock = new RealClock();
  let batch: ThreadLogBatch['lines'] = [];
  let flushQueued = false;
  const splitters: ReturnType<typeof lineSplitter>[] = [];
  const post = () => {
    if (batch.length === 0) return;
    port.postMessage({ type: 'sandboxLog', lines: batch } satisfies ThreadLogBatch);
    batch = [];
  };
  const endOfTurn = () => {
    flushQueued = false;
    for (const splitter of splitters) splitter.end();
    post();
  };
  const sink = (stream: LogStream) => {
    const lines = lineSplitter((line) => {
      batch.push({ t: clock.now(), stream, line });
      if (batch.length >= MAX_BATCH_LINES) post();
    });
    splitters.push(lines);
    // The shape of Writable.write that console and user code call: (chunk, [encoding], [callback]).
    return (chunk: string | Uint8Array, encodingOrCallback?: unknown, callback?: unknown): boolean => {
      lines.write(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      if (!flushQueued) {
        flushQueued = true;
        queueMicrotask(endOfTurn);
      }
      const done = typeof encodingOrCallback === 'function' ? encodingOrCallback : callback;
      if (typeof done === 'function') queueMicrotask(() => done());
      return true;
    };
  };
  const stdout = sink('stdout');
  const stderr = sink('stderr');
  process.stdout.write = stdout as typeof process.stdout.write;
  process.stderr.write = stderr as typeof process.stderr.write;
  // Console listens for errors on its streams, so it needs real ones; strings pass through undecoded.
  const stream = (write: typeof stdout) =>
    new Writable({
      decodeStrings: false,
      write(chunk: string | Uint8Array, _encoding, callback) {
        write(chunk);
        callback();
      },
    });
  const captured = new Console({ stdout: stream(stdout), stderr: stream(stderr) });
  const methods = ['log', 'info', 'debug', 'warn', 'error', 'trace', 'dir', 'table'] as const;
  for (const method of methods) console[method] = captured[method].bind(captured);
}
