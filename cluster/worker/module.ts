// The worker daemon as a shard module of the actor runtime. Every shard thread gets the `node` actor kind,
// its own SandboxRuntime and its own invocation server, plus the services the node actor's `call` effects
// use (names and shapes in actors/node.ts):
//   sandbox.address  -> `host:port` of this shard's invocation server
//   sandbox.create   { nodeId, sandboxId, template } -> { address } once the sandbox can serve
//   sandbox.destroy  { sandboxId } -> nothing left running (never rejects; a runtime error is logged)
//   sandbox.logs     { nodeId, functionName, sinceMs, tail } -> the node's newest lines of that function's
//                    sandboxes, live ones and the last RETIRED_KEPT gone ones of this shard
//   sandbox.check    { template } -> SourceCheck: one throwaway sandbox of the template started, bounded by
//                    CHECK_TIMEOUT_MS, then destroyed (the deploy-time check of a module or command)
// A sandbox dying on its own (runtime `failed`/`exited` event) becomes `node.sandboxFailed` to its node actor.
// Each shard thread imports this file afresh, so the module-level state below is per shard.
//
// Stem cells: with `pool` options, the thread and process runtimes keep started generic sandboxes
// (cluster/sandbox/pool.ts) on the shard that hosts a node actor (sandbox.create runs on the node's shard;
// a pool elsewhere would never be taken from). Its changes reach that node as `node.pool` (coalesced, off
// the cold-start path) and go to the scheduler with the node's heartbeat. A sandbox's first response says
// how it started: `x-dirigent-sandbox-start: pool|fresh` and `x-dirigent-sandbox-start-ms` (its creation, ms).
import { CHECK_TIMEOUT_MS, nodeKind, type SandboxCheckInput, type SandboxCreateInput, type SandboxCreateOutput, type SandboxDestroyInput, type SandboxLogsInput } from '../../actors/node.js';
import { clampTail, mergeLogLines, type SandboxLogLine } from '../../actors/sandbox-logs.js';
import { assertNever } from '../../actors/actor.js';
import { nodeAddress, type NodeMessage, type PoolReport, type SandboxTemplate, type SourceCheck } from '../../actors/messages.js';
import type { TimerHandle } from '../../runtime/clock.js';
import { shardOf } from '../../runtime/hash.js';
import type { Service, ShardContext, ShardModule } from '../../runtime/host.js';
import {
  ProcessRuntime,
  SimulatedRuntime,
  ThreadRuntime,
  validateLatency,
  validatePoolSettings,
  type LatencyDistribution,
  type PoolSettings,
  type PoolStats,
  type RuntimeSource,
  type Sandbox,
  type SandboxEvent,
  type SandboxRuntime,
  type SandboxSpec,
} from '../sandbox/index.js';
import { serveInvocations, type InvocationServer } from './invoke-server.js';
import { DirigentError } from '../../actors/errors.js';
import type { RuntimeKind } from '../../actors/settings.js';

export interface WorkerOptions {
  readonly runtime: RuntimeKind;
  /** Creation latency of simulated sandboxes (ms, on the shard's clock). Default: fixed 0 ms. */
  readonly simulatedLatency?: LatencyDistribution;
  /** Interface the invocation servers listen on, and the host in the address they announce. Default 127.0.0.1. */
  readonly host?: string;
  /** The host in the address they announce; default host (set it when host is 0.0.0.0). */
  readonly advertise?: string;
  /** Cluster token every data plane must present. */
  readonly token: string;
  /** Started generic sandboxes to keep (thread and process runtimes); default none. */
  readonly pool?: PoolSettings;
  /** The node actors this worker hosts: the pool runs on their shards only. Default none. */
  readonly nodeIds?: readonly string[];
}

/** First-response headers: how the sandbox started, and how long its creation took (ms). */
export const HEADER_SANDBOX_START = 'x-dirigent-sandbox-start';
export const HEADER_SANDBOX_START_MS = 'x-dirigent-sandbox-start-ms';
/** Pool changes reach the node actor at most this often, ms. */
const POOL_REPORT_EVERY_MS = 100;

export type WorkerErrorCode = 'INVALID_WORKER_OPTIONS' | 'WORKER_NOT_STARTED' | 'SANDBOX_EXISTS';

export class WorkerError extends DirigentError<WorkerErrorCode> {
  override name = 'WorkerError';
}

export const DEFAULT_WORKER_HOST = '127.0.0.1';

/** Defaults, then validation; an error names the option and its value. */
export function parseWorkerOptions(input: unknown): Required<Omit<WorkerOptions, 'pool'>> & Pick<WorkerOptions, 'pool'> {
  const bad = (field: string, value: unknown, want: string): never => {
    throw new WorkerError('INVALID_WORKER_OPTIONS', `worker option ${field}=${JSON.stringify(value)} must be ${want}`);
  };
  if (input === null || typeof input !== 'object') return bad('(options)', input, 'an object { runtime, token, host?, simulatedLatency? }');
  const options = input as Partial<WorkerOptions>;
  const runtime = options.runtime;
  if (runtime !== 'thread' && runtime !== 'process' && runtime !== 'simulated') bad('runtime', runtime, "'thread', 'process' or 'simulated'");
  if (typeof options.token !== 'string' || options.token === '') bad('token', options.token, 'a non-empty string');
  const host = options.host ?? DEFAULT_WORKER_HOST;
  if (typeof host !== 'string' || host === '') bad('host', host, 'a non-empty string');
  const advertise = options.advertise ?? host;
  if (typeof advertise !== 'string' || advertise === '') bad('advertise', advertise, 'a non-empty string');
  const simulatedLatency = options.simulatedLatency ?? { kind: 'fixed', ms: 0 };
  try {
    validateLatency(simulatedLatency);
  } catch (error) {
    bad('simulatedLatency', simulatedLatency, `a latency distribution (${(error as Error).message})`);
  }
  const nodeIds = options.nodeIds ?? [];
  if (!Array.isArray(nodeIds) || nodeIds.some((id) => typeof id !== 'string')) bad('nodeIds', nodeIds, 'a list of node ids');
  if (options.pool !== undefined) {
    try {
      validatePoolSettings(options.pool);
    } catch (error) {
      bad('pool', options.pool, `pool settings (${(error as Error).message})`);
    }
  }
  return { runtime: runtime as WorkerOptions['runtime'], token: options.token as string, host, advertise, simulatedLatency, nodeIds, ...(options.pool === undefined ? {} : { pool: options.pool }) };
}

type ParsedWorkerOptions = ReturnType<typeof parseWorkerOptions>;

/** The totals of a runtime's pool stats, as the node reports them. */
export function poolReport(stats: PoolStats): PoolReport {
  let idle = 0;
  let target = 0;
  for (const c of stats.classes) {
    idle += c.idle;
    target += c.target;
  }
  return { idle, target, idleMiB: stats.idleMiB, capMiB: stats.capMiB, fromPool: stats.fromPool, fresh: stats.fresh };
}

/** The sandbox as it is, except that its first response says how it started; then `settle` swaps it for the plain one. */
function sayingHowItStarted(sandbox: Sandbox, settle: (plain: Sandbox) => void): Sandbox {
  if (sandbox.start === undefined) return sandbox;
  const start = sandbox.start;
  const startMs = (sandbox.startMs ?? 0).toFixed(3);
  return {
    id: sandbox.id,
    start,
    logs: (sinceMs) => sandbox.logs(sinceMs),
    invoke: async (req, signal) => {
      settle(sandbox);
      const response = await sandbox.invoke(req, signal);
      return { ...response, headers: { ...response.headers, [HEADER_SANDBOX_START]: start, [HEADER_SANDBOX_START_MS]: startMs } };
    },
  };
}

/**
 * The sandbox spec for a function's template. The worker runs every template on its own runtime: the
 * template's `runtime` field is not checked, and a source the runtime cannot run fails the creation
 * with UNSUPPORTED_SOURCE (so builtin workloads run anywhere, e.g. on a simulated worker).
 */
export function toSandboxSpec(sandboxId: string, template: SandboxTemplate): SandboxSpec {
  const source = template.source;
  let runtime: RuntimeSource;
  switch (source.kind) {
    case 'thread':
      runtime = { kind: 'thread', module: source.module };
      break;
    case 'process':
      runtime = { kind: 'process', command: source.command, args: [...source.args] };
      break;
    case 'builtin':
      runtime = { kind: 'builtin', workload: source.workload };
      break;
    default:
      return assertNever(source, 'runtime source');
  }
  return {
    sandboxId,
    functionName: template.name,
    runtime,
    memoryMiB: template.memoryMiB,
    cpuMilli: template.cpuMilli,
    concurrency: template.concurrency,
    timeoutMs: template.timeoutMs,
    env: { ...template.env },
  };
}

function createRuntime(options: ParsedWorkerOptions, ctx: ShardContext, onPoolChange: (stats: PoolStats) => void): SandboxRuntime {
  // Only a shard that hosts a node actor is asked for sandboxes.
  const hostsNode = options.nodeIds.some((nodeId) => shardOf(nodeAddress(nodeId), ctx.shards) === ctx.shard);
  const pool = hostsNode && options.pool !== undefined && options.pool.sizes.some((s) => s.count > 0) ? { pool: options.pool, onPoolChange } : {};
  switch (options.runtime) {
    case 'thread':
      return new ThreadRuntime(pool);
    case 'process':
      return new ProcessRuntime(pool);
    case 'simulated':
      // The shard's clock is the simulated runtime's clock as it is, so simulated latencies follow a manual clock too.
      return new SimulatedRuntime({ creationLatency: options.simulatedLatency, random: ctx.random, clock: ctx.clock });
    default:
      return assertNever(options.runtime, 'sandbox runtime');
  }
}

interface Owned {
  readonly nodeId: string;
  readonly functionName: string;
  /** Set once the sandbox can serve. */
  sandbox?: Sandbox;
}

/**
 * Gone sandboxes whose output a shard keeps, newest last: `dirigent logs` still shows why a sandbox crashed,
 * or what it printed before a scale to zero. Each holds at most its ring (DEFAULT_LOG_BOUNDS).
 */
const RETIRED_KEPT = 64;

/** One shard's worker: its sandbox runtime, invocation server and which node owns which sandbox. */
class WorkerShard {
  private readonly options: ParsedWorkerOptions;
  /** A pool report waits to be told to this shard's node actors. */
  private poolReportTimer: TimerHandle | undefined;
  private poolStats: PoolStats | undefined;
  private started: { readonly runtime: SandboxRuntime; readonly server: InvocationServer } | undefined;
  private readonly owned = new Map<string, Owned>();
  private readonly retired: (Owned & { readonly sandbox: Sandbox })[] = [];
  /** Source checks started on this shard, for their throwaway ids. */
  private checks = 0;

  constructor(private readonly ctx: ShardContext) {
    this.options = parseWorkerOptions(ctx.options);
  }

  async start(): Promise<void> {
    const runtime = createRuntime(this.options, this.ctx, (stats) => this.onPoolChange(stats));
    runtime.onEvent((event) => this.onEvent(event));
    const stats = runtime.poolStats?.();
    if (stats) this.onPoolChange(stats);
    const server = await serveInvocations({
      host: this.options.host,
      advertise: this.options.advertise,
      port: 0,
      token: this.options.token,
      id: `shard-${this.ctx.shard}`,
      lookup: (sandboxId) => this.owned.get(sandboxId)?.sandbox,
      log: this.ctx.log,
    });
    this.started = { runtime, server };
    this.ctx.log('info', `worker: ${this.options.runtime} sandboxes served at ${server.address}`);
  }

  /** Server first, so no invocation starts while the runtime destroys every sandbox. */
  async stop(): Promise<void> {
    const started = this.started;
    this.started = undefined;
    if (this.poolReportTimer !== undefined) this.ctx.clock.clearTimer(this.poolReportTimer);
    this.poolReportTimer = undefined;
    if (started === undefined) return;
    await started.server.close();
    await started.runtime.close();
    this.owned.clear();
    this.retired.length = 0;
  }

  services(): Record<string, Service> {
    return {
      'sandbox.address': async () => this.running().server.address,
      'sandbox.create': (input) => this.create(input as SandboxCreateInput),
      'sandbox.destroy': (input) => this.destroy(input as SandboxDestroyInput),
      'sandbox.logs': async (input) => this.logs(input as SandboxLogsInput),
      'sandbox.check': (input) => this.check(input as SandboxCheckInput),
    };
  }

  private running(): { readonly runtime: SandboxRuntime; readonly server: InvocationServer } {
    if (this.started === undefined) throw new WorkerError('WORKER_NOT_STARTED', `worker shard ${this.ctx.shard} is not started (or is stopping)`);
    return this.started;
  }

  private async create({ nodeId, sandboxId, template }: SandboxCreateInput): Promise<SandboxCreateOutput> {
    const { runtime, server } = this.running();
    if (this.owned.has(sandboxId)) throw new WorkerError('SANDBOX_EXISTS', `sandbox ${sandboxId} already exists on shard ${this.ctx.shard}`);
    const owned: Owned = { nodeId, functionName: template.name };
    this.owned.set(sandboxId, owned);
    try {
      const sandbox = await runtime.create(toSandboxSpec(sandboxId, template));
      owned.sandbox = sayingHowItStarted(sandbox, (plain) => {
        if (owned.sandbox !== undefined) owned.sandbox = plain;
      });
    } catch (error) {
      if (this.owned.get(sandboxId) === owned) this.owned.delete(sandboxId);
      throw error;
    }
    return { address: server.address };
  }

  /**
   * Starts one sandbox of the template where the function's would run (same runtime, limits and environment) and
   * throws it away. It is not owned by any node: no slot, no report, no failure event reaches a node actor.
   */
  private async check({ template }: SandboxCheckInput): Promise<SourceCheck> {
    const { runtime } = this.running();
    // No function's sandbox id has a dot (theirs are <DNS label>-<term>-<n>).
    const sandboxId = `check.${this.ctx.shard}.${++this.checks}`;
    // From the pool like any creation (a deploy is refused or accepted in milliseconds); the stem is used up.
    const started = runtime.create(toSandboxSpec(sandboxId, template)).then(
      (): SourceCheck => ({ outcome: 'ok' }),
      // The throwaway id means nothing to whoever deploys: the runtime's reason without it.
      (error: Error & { code?: string }): SourceCheck => ({ outcome: 'failed', reason: `${error.code ?? error.name}: ${error.message.replace(`sandbox ${sandboxId}: `, '')}` }),
    );
    let timer: TimerHandle | undefined;
    const bounded = new Promise<SourceCheck>((resolve) => {
      timer = this.ctx.clock.setTimer(CHECK_TIMEOUT_MS, () => resolve({ outcome: 'timeout', afterMs: CHECK_TIMEOUT_MS }));
    });
    try {
      return await Promise.race([started, bounded]);
    } finally {
      if (timer !== undefined) this.ctx.clock.clearTimer(timer);
      // Still starting at the bound: destroying it makes its create fail, which `started` has already absorbed.
      void runtime.destroy(sandboxId).catch((error: Error) => this.ctx.log('warn', `worker: discarding source check ${sandboxId} failed: ${error.message}`));
    }
  }

  private async destroy({ sandboxId }: SandboxDestroyInput): Promise<void> {
    this.retire(sandboxId);
    if (this.started === undefined) return; // stopping: close() destroys everything
    try {
      await this.started.runtime.destroy(sandboxId);
    } catch (error) {
      this.ctx.log('error', `worker: destroying sandbox ${sandboxId} failed: ${(error as Error).message}`);
    }
  }

  /** Forgets a sandbox but keeps its output; its handle answers `logs` after the sandbox is gone. */
  private retire(sandboxId: string): void {
    const owned = this.owned.get(sandboxId);
    this.owned.delete(sandboxId);
    if (owned?.sandbox === undefined) return;
    this.retired.push({ ...owned, sandbox: owned.sandbox });
    if (this.retired.length > RETIRED_KEPT) this.retired.shift();
  }

  private logs({ nodeId, functionName, sinceMs, tail }: SandboxLogsInput): SandboxLogLine[] {
    const lines: SandboxLogLine[] = [];
    for (const [sandboxId, owned] of [...this.retired.map((r) => [r.sandbox.id, r] as const), ...this.owned]) {
      if (owned.nodeId !== nodeId || owned.functionName !== functionName || owned.sandbox === undefined) continue;
      for (const e of owned.sandbox.logs(sinceMs)) lines.push({ t: e.t, stream: e.stream, sandboxId, nodeId, seq: e.seq, line: e.line });
    }
    return mergeLogLines([lines], clampTail(tail));
  }

  /** Coalesces pool changes (a cold start makes a few) into one `node.pool` per node actor of this shard. */
  private onPoolChange(stats: PoolStats): void {
    this.poolStats = stats;
    if (this.poolReportTimer !== undefined) return;
    this.poolReportTimer = this.ctx.clock.setTimer(POOL_REPORT_EVERY_MS, () => {
      this.poolReportTimer = undefined;
      if (this.poolStats === undefined || this.started === undefined) return;
      const message: NodeMessage = { type: 'node.pool', pool: poolReport(this.poolStats) };
      for (const nodeId of this.options.nodeIds) if (shardOf(nodeAddress(nodeId), this.ctx.shards) === this.ctx.shard) this.ctx.tell(nodeAddress(nodeId), message);
    });
  }

  private onEvent(event: SandboxEvent): void {
    const owned = this.owned.get(event.sandboxId);
    if (owned === undefined) return;
    this.retire(event.sandboxId);
    let reason: string;
    switch (event.type) {
      case 'failed':
        reason = event.reason;
        break;
      case 'exited':
        reason = `the sandbox process exited with code ${event.code}`;
        break;
      default:
        return assertNever(event, 'sandbox event');
    }
    const message: NodeMessage = { type: 'node.sandboxFailed', sandboxId: event.sandboxId, reason };
    this.ctx.tell(nodeAddress(owned.nodeId), message);
  }
}

let shard: WorkerShard | undefined;

export const shardModule: ShardModule = {
  kinds: [nodeKind],
  // Called before `start`, with the same context.
  services(ctx) {
    shard = new WorkerShard(ctx);
    return shard.services();
  },
  start: () => shard?.start(),
  stop: () => shard?.stop(),
};
