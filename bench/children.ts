// Child processes of the benchmarks: the bare uWS ceiling (bare-uws.ts) and the open-loop load generator
// (loadgen.c), each in its own process so that neither shares an event loop with what it measures; and the
// tools they need (wrk, a C compiler), installed with apt-get when missing.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/**
 * `command` must be on PATH; as root, Debian's `debPackage` is installed with apt-get (its output goes to
 * stderr, never stdout, which carries the benchmark's JSON line).
 */
export function ensureTool(command: string, debPackage: string, bench: string): void {
  if (onPath(command)) return;
  if (process.getuid?.() !== 0) throw new Error(`${bench} needs ${command} on PATH; install it with \`sudo apt-get install -y ${debPackage}\` and run again`);
  console.error(`${bench}: ${command} is not on PATH; installing ${debPackage} with apt-get`);
  const install = () => spawnSync('apt-get', ['install', '-y', debPackage], { stdio: ['ignore', 2, 2], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  if (!install()) {
    spawnSync('apt-get', ['update'], { stdio: ['ignore', 2, 2] });
    install();
  }
  if (!onPath(command)) throw new Error(`${bench}: \`apt-get install -y ${debPackage}\` did not put ${command} on PATH`);
}

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

/** A run of bench/loadgen.c. */
export interface LoadSpec {
  readonly port: number;
  readonly path: string;
  /** Offered load, requests/s. */
  readonly rate: number;
  /** Measured period, ms (after the warm-up). */
  readonly durationMs: number;
  /** Requests due in this first period are sent but not recorded, ms. */
  readonly warmupMs: number;
  readonly connections: number;
  /** WebSocket mode: `path` is upgraded and every request is one /ws call of this function. */
  readonly websocketFunction?: string;
}

/** Its JSON line. Latencies run from each request's due time. */
export interface LoadResult {
  readonly offeredRps: number;
  readonly achievedRps: number;
  readonly recorded: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  /** Responses other than 200, and requests whose connection closed. */
  readonly errors: number;
  /** Responses with `x-dirigent-cold-start: true`. */
  readonly coldStarts: number;
  /** Responses with `x-dirigent-cold-start: false` (the bare server sends no such header). */
  readonly warm: number;
  /** Requests still unanswered 2 s after the last was due. */
  readonly unanswered: number;
  /** Requests the generator itself released more than 1 ms after they were due. */
  readonly lateReleases: number;
}

/** Compiles bench/loadgen.c into `dir` (which the caller removes); returns the binary's path. */
export async function compileLoadgen(dir: string, bench: string): Promise<string> {
  ensureTool('cc', 'gcc', bench);
  const binary = join(dir, 'loadgen');
  const source = fileURLToPath(new URL('../../bench/loadgen.c', import.meta.url));
  await collect(spawn('cc', ['-O2', '-o', binary, source]), 'cc bench/loadgen.c');
  return binary;
}

export async function loadgen(binary: string, spec: LoadSpec): Promise<LoadResult> {
  const args = [spec.port, spec.path, spec.rate, spec.durationMs, spec.warmupMs, spec.connections].map(String);
  if (spec.websocketFunction !== undefined) args.push(`ws:${spec.websocketFunction}`);
  const out = await collect(spawn(binary, args), 'loadgen');
  return JSON.parse(out.trim()) as LoadResult;
}
