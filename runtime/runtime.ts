// The actor runtime as seen from the thread that starts it: N shard threads (one nact system each),
// a full mesh of MessagePorts between them, and a client endpoint here for tell/ask/inspection.
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { Address, AskResult } from '../actors/actor.js';
import { ManualClock, RealClock } from './clock.js';
import { Endpoint } from './endpoint.js';
import { SHARD_KIND, SPAWN, type Envelope, type ShardControl } from './envelope.js';
import { fromWire, type WireError } from '../actors/errors.js';
import { ActorRuntimeError, actorError } from './errors.js';
import { shardOf } from './hash.js';
import type { ActorInspection, LogLevel } from './host.js';
import { mergePage, type ActorQuery, type ActorTop } from './actor-query.js';
import { Flusher, OutboundLink, createCodec, listen, type CodecName } from './link.js';
import type { ActorStats, ShardStats } from './stats.js';

/**
 * Young-generation bound of a shard thread, MB (about three semi-spaces). V8 otherwise grows it to 16 MB
 * semi-spaces under load; then each scavenge of the data plane's in-flight requests took 2-4 ms and promoted
 * ~2 MB, forcing a mark-compact every ~0.6 s: 4-5 ms event-loop stalls that set the warm path's p99. With 4 MB
 * semi-spaces scavenges take ~0.2 ms, nothing is promoted, and throughput is unchanged (measured, bench:warm).
 */
const SHARD_YOUNG_GENERATION_MB = 12;

export interface ModuleSpec {
  /** URL of an ES module exporting `shardModule` (or a default) of type ShardModule. */
  readonly url: string;
  /** Plain data handed to the module's hooks in every shard. */
  readonly options?: unknown;
}

export interface RuntimeOptions {
  /** Shard threads; default: available parallelism. */
  readonly shards?: number;
  readonly modules?: readonly ModuleSpec[];
  /** Cross-thread codec; default msgpack (see link.ts for the measurements). */
  readonly codec?: CodecName;
  /** Seed of every shard's random source. */
  readonly seed?: number;
  /** Use manual clocks (here and in every shard) starting at this time, ms; time moves only with `advance`. */
  readonly manualClock?: number;
  /** Default ask timeout, ms. */
  readonly askTimeoutMs?: number;
  /** Period of the idle-actor sweep, ms. */
  readonly passivationSweepMs?: number;
  /** Kinds hosted by other processes; their envelopes go to the handler set with `onRemote`. */
  readonly remoteKinds?: readonly string[];
  /** Receives every log line from the shards; default prints warn and error to stderr. */
  readonly onLog?: (level: LogLevel, text: string) => void;
  /**
   * Measure every step's processing time for the console (see ShardHostOptions.counters). Default: on, unless
   * the environment says `DIRIGENT_ACTOR_COUNTERS=off` (how the benchmarks compare both in one run).
   */
  readonly counters?: boolean;
}

/** The `counters` default: on unless DIRIGENT_ACTOR_COUNTERS is `off` (or `0`, `false`). */
export function countersFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = (env.DIRIGENT_ACTOR_COUNTERS ?? '').trim().toLowerCase();
  return !['off', '0', 'false', 'no'].includes(value);
}

export interface ShardWorkerData {
  readonly index: number;
  readonly shards: number;
  readonly ports: (MessagePort | undefined)[];
  readonly modules: readonly ModuleSpec[];
  readonly codec: CodecName;
  readonly seed: number;
  readonly manualClock: number | undefined;
  readonly passivationSweepMs: number;
  readonly remoteKinds: readonly string[];
  readonly counters: boolean;
}

export interface ActorPage {
  readonly items: ActorStats[];
  readonly total: number;
  /** Cursor of the next page, absent on the last one. */
  readonly next?: string;
}

class ClientEndpoint extends Endpoint {
  /** Where envelopes for remote kinds go (the cluster transport); dropped until one is set. */
  remote: ((envelope: Envelope) => void) | undefined;
  droppedRemote = 0;

  protected deliverLocal(envelope: Envelope): void {
    if (this.remote) this.remote(envelope);
    else this.droppedRemote += 1;
  }

  receive(envelope: Envelope): void {
    this.handleEnvelope(envelope);
  }

  shutdown(): void {
    this.stopped = true;
    this.failPending(actorError('RUNTIME_STOPPED', 'the actor runtime stopped'));
  }
}

const DEFAULT_ASK_TIMEOUT_MS = 5000;
const EXIT_GRACE_MS = 5000;

export class ActorRuntime {
  private stopping: Promise<void> | undefined;

  /**
   * Settle when each shard thread has exited and each client port has closed (by either end). Both events
   * fire once: a thread that died while starting, or a port whose other end closed with it, would never
   * settle a listener added at stop(), so the listeners are there from the start.
   */
  private readonly workersExited: Promise<void>[];
  private readonly portsClosed: Promise<void>[];

  private constructor(
    readonly shards: number,
    private readonly workers: Worker[],
    private readonly client: ClientEndpoint,
    private readonly ports: MessagePort[],
    private readonly clock: RealClock | ManualClock,
    private readonly askTimeoutMs: number,
  ) {
    this.workersExited = workers.map((worker) => new Promise<void>((resolve) => worker.once('exit', () => resolve())));
    this.portsClosed = ports.map((port) => new Promise<void>((resolve) => port.once('close', () => resolve())));
  }

  static async start(options: RuntimeOptions = {}): Promise<ActorRuntime> {
    const shards = options.shards ?? availableParallelism();
    if (!Number.isInteger(shards) || shards < 1 || shards > 256) throw new ActorRuntimeError('BAD_REQUEST', `shards must be an integer in 1..256, got ${shards}`);
    const onLog = options.onLog ?? defaultLog;
    // ports[i][j]: the port shard i uses to talk to endpoint j (j = shards is this client).
    const ports: (MessagePort | undefined)[][] = Array.from({ length: shards + 1 }, () => new Array<MessagePort | undefined>(shards + 1).fill(undefined));
    for (let i = 0; i <= shards; i++) {
      for (let j = i + 1; j <= shards; j++) {
        const channel = new MessageChannel();
        ports[i]![j] = channel.port1;
        ports[j]![i] = channel.port2;
      }
    }
    const codecName = options.codec ?? 'msgpack';
    const codec = createCodec(codecName);
    const clock = options.manualClock === undefined ? new RealClock() : new ManualClock(options.manualClock);
    const clientPorts = ports[shards]!;
    const flusher = new Flusher();
    const client = new ClientEndpoint(
      shards,
      shards,
      clock,
      clientPorts.map((port) => (port ? new OutboundLink(port, codec, flusher) : undefined)),
      new Set(options.remoteKinds ?? []),
    );
    for (const port of clientPorts) if (port) listen(port, codec, (envelope) => client.receive(envelope));

    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let index = 0; index < shards; index++) {
      const shardPorts = ports[index]!;
      const data: ShardWorkerData = {
        index,
        shards,
        ports: shardPorts,
        modules: options.modules ?? [],
        codec: codecName,
        seed: options.seed ?? 1,
        manualClock: options.manualClock,
        passivationSweepMs: options.passivationSweepMs ?? 1000,
        remoteKinds: options.remoteKinds ?? [],
        counters: options.counters ?? countersFromEnv(),
      };
      const worker = new Worker(new URL('./shard-worker.js', import.meta.url), {
        workerData: data,
        resourceLimits: { maxYoungGenerationSizeMb: SHARD_YOUNG_GENERATION_MB },
        transferList: shardPorts.filter((p): p is MessagePort => p !== undefined),
      });
      workers.push(worker);
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.on('message', (message: { type: string; level?: LogLevel; text?: string; error?: WireError }) => {
            if (message.type === 'log') onLog(message.level ?? 'info', message.text ?? '');
            else if (message.type === 'ready') resolve();
            else if (message.type === 'failed' && message.error !== undefined) {
              const cause = fromWire(message.error);
              onLog('debug', `[shard ${index}] start failed: ${cause.stack ?? cause.message}`);
              reject(new ActorRuntimeError('SHARD_START_FAILED', `shard ${index} failed to start: ${cause.message}`, { cause }));
            }
          });
          worker.on('error', (error) => {
            onLog('error', `[shard ${index}] thread error: ${error.stack ?? error.message}`);
            reject(error);
          });
          worker.on('exit', (code) => reject(new ActorRuntimeError('SHARD_START_FAILED', `shard ${index} exited with code ${code} before it was ready`)));
        }),
      );
    }
    const runtime = new ActorRuntime(shards, workers, client, clientPorts.filter((p): p is MessagePort => p !== undefined), clock, options.askTimeoutMs ?? DEFAULT_ASK_TIMEOUT_MS);
    try {
      await Promise.all(ready);
    } catch (error) {
      await runtime.stop();
      throw error;
    }
    return runtime;
  }

  tell(to: Address, message: unknown): void {
    this.client.tell(to, message);
  }

  ask<T = unknown>(to: Address, message: unknown, timeoutMs = this.askTimeoutMs): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      this.client.askWith(to, message, timeoutMs, (result) => (result.ok ? resolve(result.value as T) : reject(ActorRuntimeError.from(result.error)))),
    );
  }

  /** Hand envelopes for remote kinds (from any thread of this process) to the cluster transport. */
  onRemote(handler: (envelope: Envelope) => void): void {
    this.client.remote = handler;
  }

  /** Route an envelope that arrived from another process (a tell, ask-reply or spawn). */
  routeFromRemote(envelope: Envelope): void {
    this.client.route(envelope);
  }

  /** Ask on behalf of a remote asker; `settle` runs exactly once. */
  askFor(to: Address, message: unknown, timeoutMs: number, from: Address | undefined, settle: (result: AskResult) => void, packed?: Uint8Array, raw?: (bytes: Uint8Array) => void): void {
    this.client.askWith(to, message, timeoutMs, settle, from, packed, raw);
  }

  /** Create an actor (no-op if it exists). */
  spawn(address: Address, init?: unknown): void {
    this.client.route({ t: SPAWN, to: address, init });
  }

  private everyShard<T>(op: ShardControl, timeoutMs?: number): Promise<T[]> {
    return Promise.all(Array.from({ length: this.shards }, (_, shard) => this.controlAt<T>(shard, op, timeoutMs)));
  }

  /** Control asks go to a shard by index (see Endpoint.route). */
  private controlAt<T>(shard: number, op: ShardControl, timeoutMs = this.askTimeoutMs): Promise<T> {
    return this.ask<T>({ kind: SHARD_KIND, id: String(shard) }, op, timeoutMs);
  }

  stats(): Promise<ShardStats[]> {
    return this.everyShard<ShardStats>({ op: 'stats' });
  }

  /** Actors in a stable order (shard, then address), `limit` at a time; `cursor` comes from the previous page. */
  async listActors(query: { kind?: string; cursor?: string; limit?: number } = {}): Promise<ActorPage> {
    const limit = query.limit ?? 50;
    const offset = query.cursor === undefined ? 0 : Number(query.cursor);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ActorRuntimeError('BAD_REQUEST', `limit must be an integer in 1..1000, got ${limit}`);
    if (!Number.isInteger(offset) || offset < 0) throw new ActorRuntimeError('BAD_REQUEST', `cursor must come from a previous page, got ${query.cursor}`);
    const counts = await this.everyShard<number>({ op: 'count', kind: query.kind });
    const total = counts.reduce((a, b) => a + b, 0);
    const items: ActorStats[] = [];
    let skip = offset;
    for (let shard = 0; shard < this.shards && items.length < limit; shard++) {
      const count = counts[shard] ?? 0;
      if (skip >= count) {
        skip -= count;
        continue;
      }
      items.push(...(await this.controlAt<ActorStats[]>(shard, { op: 'list', kind: query.kind, offset: skip, limit: limit - items.length })));
      skip = 0;
    }
    const nextOffset = offset + items.length;
    return nextOffset < total ? { items, total, next: String(nextOffset) } : { items, total };
  }

  /**
   * The Observer view over this process's shards (or one of them): every shard answers its own head of the
   * order, merged here into the page asked for.
   */
  async topActors(query: ActorQuery, shard?: number): Promise<ActorTop> {
    const op = { op: 'top', kind: query.kind, sort: query.sort, offset: query.offset, limit: query.limit } as const;
    const answers = shard === undefined ? await this.everyShard<ActorTop>(op) : [await this.controlAt<ActorTop>(shard, op)];
    return mergePage(answers, query);
  }

  /**
   * One actor by its name on a shard (ActorStats.address and .shard, as a listing gives them). With `watchMs`,
   * the actor keeps its recent messages for that long (ms, at most 60 s) and the answer carries them.
   */
  inspectName(shard: number, name: string, watchMs?: number): Promise<ActorInspection> {
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.shards) return Promise.reject(new ActorRuntimeError('BAD_REQUEST', `shard must be an integer in 0..${this.shards - 1}, got ${shard}`));
    return this.controlAt<ActorInspection>(shard, { op: 'inspect-name', name, watchMs });
  }

  /** One actor's counters and state summary; rejects with NO_SUCH_ACTOR if it is not running. */
  inspect(address: Address): Promise<ActorInspection> {
    return this.controlAt<ActorInspection>(this.shardOf(address), { op: 'inspect', address });
  }

  /** Stop one actor; resolves to whether it was running. */
  stopActor(address: Address): Promise<boolean> {
    return this.controlAt<boolean>(this.shardOf(address), { op: 'stop-actor', address });
  }

  /** Restart one actor by its name on a shard (as a listing gives them): it starts again from its init; resolves to its restart count. */
  restartActor(shard: number, name: string): Promise<number> {
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.shards) return Promise.reject(new ActorRuntimeError('BAD_REQUEST', `shard must be an integer in 0..${this.shards - 1}, got ${shard}`));
    return this.controlAt<number>(shard, { op: 'restart-actor', name });
  }

  shardOf(address: Address): number {
    return shardOf(address, this.shards);
  }

  /** Turn step-time measurement on or off in every shard from now on (benchmarks compare both on one runtime). */
  async setCounters(on: boolean): Promise<void> {
    await this.everyShard({ op: 'set-counters', on });
  }

  /** With a manual clock: move time forward here and in every shard, firing due timers. */
  async advance(ms: number): Promise<void> {
    if (!(this.clock instanceof ManualClock)) throw new ActorRuntimeError('BAD_REQUEST', 'advance needs the runtime started with manualClock');
    this.clock.advance(ms);
    await this.everyShard({ op: 'advance', ms });
  }

  now(): number {
    return this.clock.now();
  }

  /** Stop every shard (modules first, then actors), end the threads and close every port. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    // A shard whose thread has exited (it died while starting) answers nothing: its exit ends the wait.
    await Promise.allSettled(Array.from({ length: this.shards }, (_, shard) => Promise.race([this.controlAt(shard, { op: 'shutdown' }, EXIT_GRACE_MS), this.workersExited[shard]])));
    this.client.shutdown();
    this.client.closeLinks();
    this.clock.clearAll();
    await Promise.all(
      this.workers.map(async (worker, index) => {
        worker.postMessage({ type: 'close' });
        const timer = setTimeout(() => void worker.terminate(), EXIT_GRACE_MS);
        await this.workersExited[index];
        clearTimeout(timer);
      }),
    );
    // close() only starts closing a port: stop settles once every port's handle is gone, so that nothing of
    // the runtime is left on the event loop when it does.
    for (const port of this.ports) port.close();
    await Promise.all(this.portsClosed);
  }
}

export function defaultLog(level: LogLevel, text: string): void {
  if (level === 'warn' || level === 'error' || process.env.DIRIGENT_LOG === 'debug' || (process.env.DIRIGENT_LOG === 'info' && level === 'info')) {
    process.stderr.write(`${level} ${text}\n`);
  }
}
