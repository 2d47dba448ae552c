// The piscina worker of a thread sandbox: loads the user module (or a builtin workload) and runs one
// invocation per task. Handler errors become 500 responses; only a dying thread fails the task.
import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import { normaliseHandlerResult } from './handler-result.js';
import type { BuiltinWorkload, InvokeRequest, InvokeResponse } from './runtime.js';
import { lineSplitter } from './runtime.js';
import { realWorkloadContext, runWorkload } from './workloads.js';

export interface ThreadWorkerData {
  sandboxId: string;
  functionName: string;
  memoryMiB: number;
  source: { kind: 'thread'; module: string } | { kind: 'builtin'; workload: BuiltinWorkload };
}

export type ThreadTask = { type: 'load' } | { type: 'invoke'; request: InvokeRequest };

export type ThreadResult = { type: 'loaded' } | { type: 'loadFailed'; message: string } | { type: 'response'; response: InvokeResponse };

/** Posted to the pool (piscina re-emits it as a 'message' event) for each line the user code logs. */
export interface ThreadLogLine {
  type: 'sandboxLog';
  line: string;
}

type Handler = (request: InvokeRequest) => unknown;

const data = workerData as ThreadWorkerData;

captureConsole();

let loading: Promise<Handler> | undefined;

function load(): Promise<Handler> {
  loading ??= resolveHandler();
  return loading;
}

async function resolveHandler(): Promise<Handler> {
  const source = data.source;
  if (source.kind === 'builtin') {
    const ctx = realWorkloadContext(data.sandboxId, data.functionName, data.memoryMiB);
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
    case 'load':
      try {
        await load();
        return { type: 'loaded' };
      } catch (error) {
        return { type: 'loadFailed', message: describe(error) };
      }
    case 'invoke': {
      const handler = await load();
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

/** Sends console output to the host line by line instead of interleaving it into the host's stdout. */
function captureConsole(): void {
  const port = parentPort;
  if (port === null) return;
  const lines = lineSplitter((line) => port.postMessage({ type: 'sandboxLog', line } satisfies ThreadLogLine));
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.write(chunk.toString('utf8'));
      callback();
    },
  });
  const captured = new Console({ stdout: sink, stderr: sink });
  const methods = ['log', 'info', 'debug', 'warn', 'error', 'trace', 'dir', 'table'] as const;
  for (const method of methods) console[method] = captured[method].bind(captured);
}
