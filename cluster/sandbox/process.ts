// The process runtime: a sandbox is any command serving HTTP on $PORT (a container stand-in), started in
// its own process group, readiness-probed by TCP connect, and killed with its whole group. A timed-out
// invocation only abandons that request; the process lives on (unlike a thread, it can be pre-empted).
//
// With `pool` settings it keeps started Node processes (stems, process-stem.ts) per memory class, and a
// cold start of a source a stem can run (a builtin workload, or `node <script>` with this Node) takes one,
// sends it the function's environment and script, and probes until it serves. Other commands, and cold
// starts that find the pool empty, spawn their command fresh as before. A stem serves one sandbox for life.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { accessSync, constants, realpathSync } from 'node:fs';
import { basename, delimiter, join } from 'node:path';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { RealClock } from '../../runtime/clock.js';
import { freePort } from '../../runtime/net.js';
import { fromIncoming, toOutgoing } from './http-headers.js';
import { StemPool, type PoolSettings, type PoolStats, type PoolTimer } from './pool.js';
import type { SpecialiseMessage, StemReady } from './process-stem.js';
import type { InvokeRequest, InvokeResponse, LogRingBounds, Sandbox, SandboxEvent, SandboxRuntime, SandboxSpec, SandboxStart } from './runtime.js';
import { deadline, DEFAULT_LOG_BOUNDS, lineSplitter, LogRing, SandboxError, SandboxEvents, SandboxTable, unsupportedSource, validateSpec } from './runtime.js';

/** The compiled builtin-server script, which this runtime runs for `builtin` sources. */
export const BUILTIN_SERVER = fileURLToPath(new URL('./builtin-server.js', import.meta.url));
const STEM_SCRIPT = fileURLToPath(new URL('./process-stem.js', import.meta.url));
/** Idle memory assumed for a stem process before one is measured, MiB (a bare Node 20: ~40-45 RSS). */
const STEM_ESTIMATE_MIB = 45;
/** Between readiness probes of a specialised stem, ms: it serves within milliseconds, not a process start. */
const STEM_PROBE_INTERVAL_MS = 1;

const LOOPBACK = '127.0.0.1';
/**
 * Resource limits every sandbox process starts under (RLIMIT_*, soft and hard): no core dumps (they would hold
 * the function's secrets), open files, and the size of a file it writes (SIGXFSZ beyond). Memory is bounded by
 * the Node heap limit of the memory class for stems; an address-space limit would break V8's reservations.
 */
export const SANDBOX_LIMITS = { coreBytes: 0, openFiles: 4096, fileSizeBytes: 1024 ** 3 } as const;
const SH = '/bin/sh';
const HAS_SH = isExecutable(SH);
/**
 * POSIX sh's ulimit: -f counts 512-byte blocks (dash, busybox); a limit above the hard one is skipped. The
 * shell exports PWD of its own: unset, so that the environment stays exactly the sandbox's.
 */
const LIMITS_SCRIPT = `ulimit -c ${SANDBOX_LIMITS.coreBytes}; ulimit -n ${SANDBOX_LIMITS.openFiles} 2>/dev/null; ulimit -f ${SANDBOX_LIMITS.fileSizeBytes / 512} 2>/dev/null; unset PWD; exec "$@"`;
/** Stamps output lines as they arrive, ms since the epoch. */
const WALL_CLOCK = new RealClock();

export interface ProcessRuntimeOptions {
  /** Bound on spawn-to-ready, ms. */
  createTimeoutMs?: number;
  /** Time between SIGTERM and SIGKILL of the group, ms. */
  killGraceMs?: number;
  /** Pause between readiness probes, ms. */
  probeIntervalMs?: number;
  /** What each sandbox's ring of stdout and stderr lines keeps. */
  logBounds?: LogRingBounds;
  /** Stems kept started per memory class; none without it. */
  pool?: PoolSettings;
  /** Called when the pool's stats change (a take, a refill). */
  onPoolChange?: (stats: PoolStats) => void;
  /** The pool's refill timer; default real time. */
  poolTimer?: PoolTimer;
}

/** A started process: a stem, or a sandbox's command. */
interface Started {
  child: ChildProcess;
  logs: LogRing;
  /** Resolves when the leader process has exited (or failed to spawn). */
  exit: Promise<{ code: number | null; spawnError?: Error }>;
}

/** A pooled Node process; `entry` once it became a sandbox. */
interface Stem extends Started {
  readonly memoryMiB: number;
  idleMiB: number;
  entry?: Entry;
}

/** What a stem runs for a source, if it can run it. */
interface StemTask {
  readonly script: string;
  readonly args: string[];
  readonly cwd?: string;
}

/** `exited` and `destroyed` are final. */
type Phase = 'starting' | 'ready' | 'exited' | 'destroyed';

interface Entry {
  spec: SandboxSpec;
  child: ChildProcess;
  port: number;
  agent: Agent;
  logs: LogRing;
  phase: Phase;
  /** Resolves when the leader process has exited (or failed to spawn). */
  exit: Promise<{ code: number | null; spawnError?: Error }>;
  teardown?: Promise<void>;
}

export class ProcessRuntime implements SandboxRuntime {
  readonly name = 'process';
  readonly #createTimeoutMs: number;
  readonly #killGraceMs: number;
  readonly #probeIntervalMs: number;
  readonly #logBounds: LogRingBounds;
  readonly #table = new SandboxTable<Entry>((entry) => this.#killGroup(entry));
  readonly #entries = this.#table.entries;
  readonly #events = new SandboxEvents();
  readonly #stems: StemPool<Stem> | undefined;
  #closed = false;
  /**
   * Detached groups outlive their parent, so an exiting host takes them along (synchronously: 'exit'
   * allows nothing else). A host killed by a signal cannot, and leaves them running (idle stems end on
   * their own then: their IPC channel closes).
   */
  readonly #killAllOnHostExit = () => {
    for (const started of [...this.#entries.values(), ...(this.#stems?.idleStems() ?? [])]) if (started.child.pid !== undefined) signalGroup(started.child.pid, 'SIGKILL');
  };

  constructor(options: ProcessRuntimeOptions = {}) {
    this.#createTimeoutMs = options.createTimeoutMs ?? 10_000;
    this.#killGraceMs = options.killGraceMs ?? 2_000;
    this.#probeIntervalMs = options.probeIntervalMs ?? 20;
    this.#logBounds = options.logBounds ?? DEFAULT_LOG_BOUNDS;
    process.on('exit', this.#killAllOnHostExit);
    if (options.pool !== undefined) {
      const onChange = options.onPoolChange;
      this.#stems = new StemPool<Stem>(
        options.pool,
        {
          start: (memoryMiB) => this.#startStem(memoryMiB),
          dispose: (stem) => this.#killStarted(stem),
          idleMiB: (stem) => stem.idleMiB,
          estimateMiB: STEM_ESTIMATE_MIB,
        },
        options.poolTimer ?? new RealClock({ unref: true }),
        onChange === undefined ? undefined : () => onChange(this.#stems!.stats()),
      );
    }
  }

  /** Pooled stems now, their classes, idle memory and counts; null without a pool. */
  poolStats(): PoolStats | null {
    return this.#stems?.stats() ?? null;
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    this.#checkCanCreate(spec);
    const source = spec.runtime;
    if (source.kind === 'thread') throw unsupportedSource('process', spec, "'process' and 'builtin' sources");
    const began = performance.now();
    const task = this.#stems === undefined ? undefined : stemTask(spec);
    if (task === undefined) this.#stems?.fresh();
    const stem = task === undefined ? undefined : await this.#stems?.take(spec.memoryMiB);
    if (task !== undefined && stem !== undefined) return this.#specialise(spec, stem, task, began);
    const command =
      source.kind === 'builtin'
        ? { file: process.execPath, args: [`--max-old-space-size=${spec.memoryMiB}`, BUILTIN_SERVER, source.workload], cwd: undefined }
        : { file: source.command, args: source.args ?? [], cwd: source.cwd };
    // Another process could take the port before the command binds it; the command then fails to start.
    const port = await freePort(LOOPBACK);
    // Checked again: the id or the runtime may have changed while the port was found.
    this.#checkCanCreate(spec);

    const started = this.#spawn(command.file, command.args, command.cwd, sandboxEnv(spec, port), false);
    const entry: Entry = { spec, ...started, port, agent: new Agent({ keepAlive: true }), phase: 'starting' };
    this.#entries.set(spec.sandboxId, entry);

    return this.#serve(entry, this.#probeIntervalMs, 'fresh', began);
  }

  /** Probes the new sandbox until it serves, and hands it out (or tears it down and says why not). */
  async #serve(entry: Entry, probeIntervalMs: number, start: SandboxStart, began: number): Promise<Sandbox> {
    const failure = await this.#waitReady(entry, probeIntervalMs);
    if (failure !== undefined) {
      await this.#teardown(entry, 'destroyed');
      const tail = entry.logs.lines().slice(-5);
      throw new SandboxError('SANDBOX_CREATE_FAILED', `sandbox ${entry.spec.sandboxId}: ${failure}${tail.length > 0 ? `; last output: ${tail.join(' | ')}` : ''}`);
    }
    entry.phase = 'ready';
    void entry.exit.then(({ code }) => this.#onUnexpectedExit(entry, code));
    return {
      id: entry.spec.sandboxId,
      start,
      startMs: performance.now() - began,
      invoke: (req, signal) => this.#invoke(entry, req, signal),
      logs: (sinceMs) => entry.logs.entries(sinceMs),
    };
  }

  /** A taken stem becomes the sandbox: its port, the function's environment and script, then readiness. */
  async #specialise(spec: SandboxSpec, stem: Stem, task: StemTask, began: number): Promise<Sandbox> {
    let port: number;
    try {
      port = await freePort(LOOPBACK);
      this.#checkCanCreate(spec);
    } catch (error) {
      void this.#killStarted(stem);
      throw error;
    }
    const entry: Entry = { spec, child: stem.child, logs: stem.logs, exit: stem.exit, port, agent: new Agent({ keepAlive: true }), phase: 'starting' };
    stem.entry = entry;
    this.#entries.set(spec.sandboxId, entry);
    const message: SpecialiseMessage = { type: 'specialise', env: sandboxEnv(spec, port), script: task.script, args: task.args, ...(task.cwd === undefined ? {} : { cwd: task.cwd }) };
    // A stem that died meanwhile: the send fails or its exit is seen by the probe, which reports it.
    if (stem.child.connected) stem.child.send(message, (error) => error && undefined);
    return this.#serve(entry, STEM_PROBE_INTERVAL_MS, 'pool', began);
  }

  /** Spawns a process in its own group under SANDBOX_LIMITS, its output into a fresh ring. */
  #spawn(file: string, args: string[], cwd: string | undefined, env: Record<string, string>, ipc: boolean): Started {
    // Through the shell's ulimit, then exec (same pid, so the group and the IPC channel are the command's own).
    // A command that cannot be found is spawned as it is, so that its error stays the spawn's ENOENT.
    const limited = HAS_SH && isExecutable(resolveCommand(file));
    const child = spawn(limited ? SH : file, limited ? ['-c', LIMITS_SCRIPT, 'sandbox', file, ...args] : args, {
      cwd,
      env,
      // Own process group, so destroy can signal everything the command started.
      detached: true,
      stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
    const logs = new LogRing(this.#logBounds);
    for (const [name, stream] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
      const lines = lineSplitter((line) => logs.push(name, line, WALL_CLOCK.now()));
      stream?.setEncoding('utf8').on('data', (chunk: string) => lines.write(chunk)).on('end', () => lines.end());
    }
    const exit = new Promise<{ code: number | null; spawnError?: Error }>((resolve) => {
      child.once('exit', (code) => resolve({ code }));
      child.once('error', (spawnError) => resolve({ code: null, spawnError }));
    });
    return { child, logs, exit };
  }

  /** A stem for the pool: a Node process with the heap limit of its class, started and idle. */
  async #startStem(memoryMiB: number): Promise<Stem> {
    const started = this.#spawn(process.execPath, [`--max-old-space-size=${memoryMiB}`, STEM_SCRIPT], undefined, { PATH: hostPath() }, true);
    const stem: Stem = { ...started, memoryMiB, idleMiB: STEM_ESTIMATE_MIB };
    const limit = deadline(this.#createTimeoutMs);
    try {
      const ready = await new Promise<StemReady | string>((resolve) => {
        started.child.once('message', (message: StemReady) => resolve(message));
        void started.exit.then(({ code, spawnError }) => resolve(spawnError?.message ?? `the stem exited with code ${code}`));
        limit.signal.addEventListener('abort', () => resolve(`not started within ${this.#createTimeoutMs} ms`), { once: true });
      });
      if (typeof ready === 'string' || ready.type !== 'ready') throw new Error(`process stem: ${typeof ready === 'string' ? ready : 'unexpected first message'}`);
      stem.idleMiB = Math.round((ready.rssBytes / 2 ** 20) * 10) / 10;
    } catch (error) {
      await this.#killStarted(stem);
      throw error;
    } finally {
      limit.clear();
    }
    // An idle stem that dies leaves the pool; once taken, its sandbox's own exit handling takes over.
    void stem.exit.then(() => {
      if (stem.entry === undefined) this.#stems?.evict(stem);
    });
    return stem;
  }

  #checkCanCreate(spec: SandboxSpec): void {
    if (this.#closed) throw new SandboxError('RUNTIME_CLOSED', `process runtime is closed; cannot create ${spec.sandboxId}`);
    validateSpec(spec);
    if (this.#entries.has(spec.sandboxId)) throw new SandboxError('SANDBOX_EXISTS', `sandbox ${spec.sandboxId} already exists`);
  }

  /** Probes until the port accepts a connection; answers why it never did, or undefined when ready. */
  async #waitReady(entry: Entry, probeIntervalMs: number): Promise<string | undefined> {
    const limit = deadline(this.#createTimeoutMs);
    let exited: { code: number | null; spawnError?: Error } | undefined;
    void entry.exit.then((outcome) => (exited = outcome));
    try {
      for (;;) {
        if (exited !== undefined) {
          return exited.spawnError !== undefined
            ? `cannot start the command: ${exited.spawnError.message}`
            : `command exited with code ${exited.code} before serving on port ${entry.port}`;
        }
        if (entry.phase === 'destroyed') return 'destroyed while starting';
        if (limit.timedOut()) return `not serving on port ${entry.port} within ${this.#createTimeoutMs} ms`;
        if (await accepts(entry.port)) return undefined;
        await pause(probeIntervalMs, limit.signal);
      }
    } finally {
      limit.clear();
    }
  }

  #onUnexpectedExit(entry: Entry, code: number | null): void {
    if (entry.phase !== 'ready') return;
    void this.#teardown(entry, 'exited');
    this.#events.emit({ type: 'exited', sandboxId: entry.spec.sandboxId, code });
  }

  async #invoke(entry: Entry, req: InvokeRequest, signal?: AbortSignal): Promise<InvokeResponse> {
    const id = entry.spec.sandboxId;
    if (entry.phase !== 'ready') throw new SandboxError('SANDBOX_GONE', `sandbox ${id} is ${entry.phase}`);
    if (signal?.aborted) throw new SandboxError('SANDBOX_ABORTED', `invocation on ${id} aborted by the caller`);
    const limit = deadline(entry.spec.timeoutMs, signal);
    try {
      return await this.#forward(entry, req, limit.signal, true);
    } catch (error) {
      if (limit.timedOut()) throw new SandboxError('SANDBOX_TIMEOUT', `invocation on ${id} exceeded ${entry.spec.timeoutMs} ms`);
      if (signal?.aborted) throw new SandboxError('SANDBOX_ABORTED', `invocation on ${id} aborted by the caller`);
      // The cast undoes TypeScript's narrowing from before the await, during which the phase may have moved.
      if ((entry.phase as Phase) === 'destroyed') throw new SandboxError('SANDBOX_GONE', `sandbox ${id} was destroyed during the invocation`);
      throw new SandboxError('SANDBOX_CRASHED', `sandbox ${id} failed the invocation: ${(error as Error).message}`);
    } finally {
      limit.clear();
    }
  }

  #forward(entry: Entry, req: InvokeRequest, signal: AbortSignal, mayRetry: boolean): Promise<InvokeResponse> {
    return new Promise((resolve, reject) => {
      const outgoing = httpRequest(
        { host: LOOPBACK, port: entry.port, method: req.method, path: req.path, headers: toOutgoing(req.headers, req.body.byteLength), agent: entry.agent, signal },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: fromIncoming(res.headers), body: new Uint8Array(Buffer.concat(chunks)) }));
        },
      );
      outgoing.on('error', (error: NodeJS.ErrnoException) => {
        // A kept-alive socket the server closed while idle: the request never reached it, so resend once.
        if (mayRetry && outgoing.reusedSocket && error.code === 'ECONNRESET' && !signal.aborted) {
          this.#forward(entry, req, signal, false).then(resolve, reject);
        } else {
          reject(error);
        }
      });
      outgoing.end(req.body);
    });
  }

  #teardown(entry: Entry, phase: 'exited' | 'destroyed'): Promise<void> {
    return this.#table.teardown(entry, phase);
  }

  async #killGroup(entry: Entry): Promise<void> {
    entry.agent.destroy();
    await this.#killStarted(entry);
  }

  /** SIGTERM to the group, SIGKILL after the grace (or as soon as the leader is gone, for stragglers). */
  async #killStarted(entry: Started): Promise<void> {
    const pid = entry.child.pid;
    if (pid === undefined) return;
    if (entry.child.exitCode === null && entry.child.signalCode === null) {
      signalGroup(pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([entry.exit, new Promise((resolve) => (timer = setTimeout(resolve, this.#killGraceMs)))]);
      clearTimeout(timer);
    }
    signalGroup(pid, 'SIGKILL');
    await entry.exit;
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
    process.off('exit', this.#killAllOnHostExit);
  }
}

/** The sandbox's whole environment: nothing of the host's but PATH, which lets commands resolve. */
function sandboxEnv(spec: SandboxSpec, port: number): Record<string, string> {
  return {
    PATH: hostPath(),
    ...spec.env,
    PORT: String(port),
    DIRIGENT_SANDBOX_ID: spec.sandboxId,
    DIRIGENT_FUNCTION: spec.functionName,
    DIRIGENT_MEMORY_MIB: String(spec.memoryMiB),
  };
}

function hostPath(): string {
  return process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin';
}

/**
 * What a stem runs for this source: a builtin workload (the builtin server), or `node <script> [args]` when
 * that `node` is the one stems run (found on PATH, or named by path). Anything else (node flags before the
 * script, another interpreter, another Node) is spawned fresh.
 */
function stemTask(spec: SandboxSpec): StemTask | undefined {
  const source = spec.runtime;
  if (source.kind === 'builtin') return { script: BUILTIN_SERVER, args: [source.workload] };
  if (source.kind !== 'process') return undefined;
  const [script, ...args] = source.args ?? [];
  if (script === undefined || script.startsWith('-') || !isThisNode(source.command)) return undefined;
  return { script, args, ...(source.cwd === undefined ? {} : { cwd: source.cwd }) };
}

/** Commands already judged: PATH lookups are not free and the answer does not change while we run. */
const THIS_NODE = new Map<string, boolean>();

function isThisNode(command: string): boolean {
  let known = THIS_NODE.get(command);
  if (known === undefined) {
    known = sameFile(resolveCommand(command), process.execPath);
    THIS_NODE.set(command, known);
  }
  return known;
}

function resolveCommand(command: string): string | undefined {
  if (command.includes('/')) return command;
  if (basename(command) !== command) return undefined;
  for (const dir of hostPath().split(delimiter)) {
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function isExecutable(path: string | undefined): boolean {
  if (path === undefined) return false;
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function sameFile(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Loopback connects are refused at once when nobody listens; the bound (ms) only covers a full accept backlog. */
function accepts(port: number, boundMs = 250): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: LOOPBACK, port });
    socket.setTimeout(boundMs, () => socket.destroy());
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    // 'close' follows every error; the listener only keeps an unhandled 'error' from throwing.
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(false));
  });
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
