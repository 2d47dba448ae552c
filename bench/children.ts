// Child processes of the benchmarks: the bare uWS ceiling (bare-uws.ts) and the open-loop load generator
// (loadgen.ts), each in its own process so that neither shares an event loop with what it measures.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadResult, LoadSpec } from './loadgen.js';

export function collect(child: ReturnType<typeof spawn>, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${what} exited with ${code}: ${err}${out}`))));
  });
}

export interface Bare {
  readonly port: number;
  stop(): Promise<void>;
}

export async function startBare(): Promise<Bare> {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [fileURLToPath(new URL('./bare-uws.js', import.meta.url))]);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.on('exit', (code) => reject(new Error(`bare-uws exited with ${code} before listening: ${err}`)));
    setTimeout(() => reject(new Error('bare-uws did not listen within 5 s')), 5000).unref();
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    port,
    stop: async () => {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function loadgen(spec: LoadSpec): Promise<LoadResult> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./loadgen.js', import.meta.url)), JSON.stringify(spec)]);
  const out = await collect(child, 'loadgen');
  return JSON.parse(out.trim()) as LoadResult;
}
