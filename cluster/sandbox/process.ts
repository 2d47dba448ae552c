// The process runtime: a sandbox is any command serving HTTP on $PORT (a container stand-in), started in
// its own process group, readiness-probed by TCP connect, and killed with its whole group. A timed-out
// invocation only abandons that request; the process lives on (unlike a thread, it can be pre-empted).
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { RealClock } from '../../runtime/clock.js';
import { freePort } from '../../runtime/net.js';
import { fromIncoming, toOutgoing } from './http-headers.js';
import type { InvokeRequest, InvokeResponse, LogRingBounds, Sandbox, SandboxEvent, SandboxRuntime, SandboxSpec } from './runtime.js';
import { deadline, DEFAULT_LOG_BOUNDS, lineSplitter, LogRing, SandboxError, SandboxEvents, SandboxTable, unsupportedSource, validateSpec } from './runtime.js';

/** The compiled builtin-server script, which this runtime runs for `builtin` sources. */
export const BUILTIN_SERVER = fileURLToPath(new URL('./builtin-server.js', import.meta.url));

const LOOPBACK = '127.0.0.1';
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
  #closed = false;
  /**
   * Detached groups outlive their parent, so an exiting host takes them along (synchronously: 'exit'
   * allows nothing else). A host killed by a signal cannot, and leaves them running.
   */
  readonly #killAllOnHostExit = () => {
    for (const entry of this.#entries.values()) if (entry.child.pid !== undefined) signalGroup(entry.child.pid, 'SIGKILL');
  };

  constructor(options: ProcessRuntimeOptions = {}) {
    this.#createTimeoutMs = options.createTimeoutMs ?? 10_000;
    this.#killGraceMs = options.killGraceMs ?? 2_000;
    this.#probeIntervalMs = options.probeIntervalMs ?? 20;
    this.#logBounds = options.logBounds ?? DEFAULT_LOG_BOUNDS;
    process.on('exit', this.#killAllOnHostExit);
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    this.#checkCanCreate(spec);
    const source = spec.runtime;
    if (source.kind === 'thread') throw unsupportedSource('process', spec, "'process' and 'builtin' sources");
    const command =
      source.kind === 'builtin'
        ? { file: process.execPath, args: [`--max-old-space-size=${spec.memoryMiB}`, BUILTIN_SERVER, source.workload], cwd: undefined }
        : { file: source.command, args: source.args ?? [], cwd: source.cwd };
    // Another process could take the port before the command binds it; the command then fails to start.
    const port = await freePort(LOOPBACK);
    // Checked again: the id or the runtime may have changed while the port was found.
    this.#checkCanCreate(spec);

    const child = spawn(command.file, command.args, {
      cwd: command.cwd,
      // The sandbox does not inherit the host's environment (it may hold secrets); PATH lets commands resolve.
      env: {
        PATH: process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin',
        ...spec.env,
        PORT: String(port),
        DIRIGENT_SANDBOX_ID: spec.sandboxId,
        DIRIGENT_FUNCTION: spec.functionName,
        DIRIGENT_MEMORY_MIB: String(spec.memoryMiB),
      },
      // Own process group, so destroy can signal everything the command started.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
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
    const entry: Entry = { spec, child, port, agent: new Agent({ keepAlive: true }), logs, phase: 'starting', exit };
    this.#entries.set(spec.sandboxId, entry);

    const failure = await this.#waitReady(entry);
    if (failure !== undefined) {
      await this.#teardown(entry, 'destroyed');
      const tail = logs.lines().slice(-5);
      throw new SandboxError('SANDBOX_CREATE_FAILED', `sandbox ${spec.sandboxId}: ${failure}${tail.length > 0 ? `; last output: ${tail.join(' | ')}` : ''}`);
    }
    entry.phase = 'ready';
    void exit.then(({ code }) => this.#onUnexpectedExit(entry, code));
    return {
      id: spec.sandboxId,
      invoke: (req, signal) => this.#invoke(entry, req, signal),
      logs: (sinceMs) => entry.logs.entries(sinceMs),
    };
  }

  #checkCanCreate(spec: SandboxSpec): void {
    if (this.#closed) throw new SandboxError('RUNTIME_CLOSED', `process runtime is closed; cannot create ${spec.sandboxId}`);
    validateSpec(spec);
    if (this.#entries.has(spec.sandboxId)) throw new SandboxError('SANDBOX_EXISTS', `sandbox ${spec.sandboxId} already exists`);
  }

  /** Probes until the port accepts a connection; answers why it never did, or undefined when ready. */
  async #waitReady(entry: Entry): Promise<string | undefined> {
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
        await pause(this.#probeIntervalMs, limit.signal);
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

  /** SIGTERM to the group, SIGKILL after the grace (or as soon as the leader is gone, for stragglers). */
  async #killGroup(entry: Entry): Promise<void> {
    entry.agent.destroy();
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
    await this.#table.destroyAll();
    process.off('exit', this.#killAllOnHostExit);
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
