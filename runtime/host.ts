// A shard host: one nact system on one thread, running the pure actors whose colocation key hashes
// here. This is the one adapter between pure `step` functions and nact.
//
// Scheduling: each actor has its own mailbox (a Queue of deliveries, so mailbox depth is exact).
// When a mailbox goes from empty to non-empty the actor's nact twin gets one wake-up message; the
// nact handler then drains up to DRAIN_BATCH deliveries in one turn. That keeps nact's per-message
// costs (a setImmediate turn, a context with a copied children map) per batch, not per message.
import { createRequire } from 'node:module';
import type * as NactTypes from 'nact';
import { printAddress, type ActorKind, type Address, type AskResult, type Effect, type ReplyTo, type StepContext } from '../actors/actor.js';
import { epochMsPrecise, ManualClock, monotonicUs, type Clock, type TimerHandle } from './clock.js';
import { Endpoint } from './endpoint.js';
import { ASK, SHARD_KIND, SPAWN, TELL, type Envelope, type ShardControl } from './envelope.js';
import type { ErrorCode } from '../actors/errors.js';
import { ActorRuntimeError, actorError, toActorError } from './errors.js';
import { addressKey } from './hash.js';
import type { OutboundLink } from './link.js';
import { unpackMessage } from './packed.js';
import { Queue } from './queue.js';
import { head } from './actor-query.js';
import { printMessage } from '../actors/printer.js';
import { merge, newHistogram, quantileUs, record, type ActorStats, type Histogram, type KindStats, type ShardStats } from './stats.js';

// nact is CommonJS whose exports are built by spreading, which ESM named imports cannot see.
const nact = createRequire(import.meta.url)('nact') as typeof NactTypes;

/** Deliveries handled per nact turn before yielding to other actors. */
const DRAIN_BATCH = 64;
/** Restart intensity: more than MAX_RESTARTS crashes within RESTART_WINDOW_MS stops the actor. */
const MAX_RESTARTS = 10;
const RESTART_WINDOW_MS = 10_000;
/** An inspected state larger than this (as JSON, characters) is answered by its one-line description only. */
const MAX_INSPECTED_STATE_CHARS = 256 * 1024;
/**
 * Step-time sampling: a clock read costs ~40-170 ns here (kvm-clock, more under load), as much as a trivial
 * step, so timing every step cost bench:actors a third of its rate. An actor's first TIMED_ALWAYS steps are all
 * timed (rarely messaged actors are fully seen), then one in TIMED_ONE_IN (a power of two): the percentiles of
 * a busy actor come from a sample, and its `processed` still counts every step.
 */
const TIMED_ALWAYS = 32;
const TIMED_ONE_IN = 32;
/** Messages kept per watched actor. */
const RECENT_MESSAGES = 50;
/**
 * DIRIGENT_STEP_TRACE=1: every step writes `dirigent-step <epoch ms, 3 decimals> <address> <message type>` to
 * stderr before it runs, so one cold start can be followed through every actor of every process and thread
 * on one time line (`npm run bench:coldstart-trace`). Read once, when the shard starts.
 */
const STEP_TRACE = process.env['DIRIGENT_STEP_TRACE'] === '1';
export const STEP_TRACE_PREFIX = 'dirigent-step';
/** Longest a watch lasts without being renewed, ms. */
const MAX_WATCH_MS = 60_000;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
/**
 * An I/O port that `call` effects use: a function answering a promise, or, on hot paths, an object whose `call`
 * settles a callback exactly once (no promise, no microtask turn: the data plane calls a sandbox per request).
 */
export type Service = ((input: unknown) => Promise<unknown>) | CallbackService;
export interface CallbackService {
  call(input: unknown, settle: (result: AskResult) => void): void;
}

/** What shard modules see of their shard: messaging, the clock and their options. */
export interface ShardContext {
  readonly shard: number;
  readonly shards: number;
  readonly clock: Clock;
  readonly random: () => number;
  /** This module's options, as given to the runtime (plain data). */
  readonly options: unknown;
  tell(to: Address, message: unknown): void;
  ask<T = unknown>(to: Address, message: unknown, timeoutMs: number): Promise<T>;
  askWith(to: Address, message: unknown, timeoutMs: number, settle: (result: AskResult) => void): void;
  spawn(address: Address, init?: unknown): void;
  log(level: LogLevel, text: string): void;
}

/** A module loaded into every shard: actor kinds, the services (I/O ports) their `call` effects use, and hooks. */
export interface ShardModule {
  /** Actor kinds; a function builds them from the module's options (kinds stay pure, config is closed over). */
  readonly kinds?: readonly ActorKind[] | ((ctx: ShardContext) => readonly ActorKind[]);
  services?(ctx: ShardContext): Record<string, Service>;
  start?(ctx: ShardContext): void | Promise<void>;
  stop?(): void | Promise<void>;
}

interface Delivery {
  readonly m: unknown;
  readonly replyTo?: ReplyTo | undefined;
  readonly sender?: Address | undefined;
}

interface Cell {
  readonly address: Address;
  readonly name: string;
  readonly kind: ActorKind;
  readonly initArg: unknown;
  state: unknown;
  readonly mailbox: Queue<Delivery>;
  readonly ref: NactTypes.Ref<unknown>;
  woken: boolean;
  stopped: boolean;
  stopRequested: boolean;
  processed: number;
  restarts: number;
  recentCrashes: number[];
  readonly histogram: Histogram;
  lastActiveAt: number;
  /** Its recent messages, kept only while someone looks (inspect with `watchMs`), until `until` (shard clock, ms). */
  trace: { until: number; readonly lines: RecentMessage[] } | undefined;
  readonly timers: Map<string, TimerHandle>;
  nextTimer: number;
}

export interface ShardHostOptions {
  readonly index: number;
  readonly shards: number;
  readonly clock: Clock;
  readonly random: () => number;
  readonly links: (OutboundLink | undefined)[];
  readonly log: (level: LogLevel, text: string) => void;
  /** How often idle actors are looked for, ms. */
  readonly passivationSweepMs: number;
  readonly remoteKinds: readonly string[];
  /** Pack messages to remote kinds here, not on the main thread (msgpack links only; see packed.ts). */
  readonly packRemote?: boolean;
  /**
   * Measure step times (two monotonic clock reads and a histogram update per timed step; see TIMED_ONE_IN).
   * Off, the console still sees mailbox depth, processed, restarts and last-message time, which cost nothing.
   */
  readonly counters: boolean;
}

/** One actor as `inspect` answers: its counters, its state (the kind's `summary` of it) and that state in one line. */
export interface ActorInspection {
  readonly stats: ActorStats;
  readonly state: unknown;
  /** The state through the one printer of logs and transcripts (actors/printer.ts). */
  readonly line: string;
  /** While watched: its last messages, oldest first (at most RECENT_MESSAGES). */
  readonly recent?: RecentMessage[];
}

export interface RecentMessage {
  /** When its step began, ms on the shard's clock. */
  readonly at: number;
  /** The message through the one printer. */
  readonly message: string;
  readonly from?: string;
}

export class ShardHost extends Endpoint {
  private readonly system: NactTypes.Ref<unknown>;
  private readonly cells = new Map<string, Cell>();
  private readonly kinds = new Map<string, ActorKind>();
  private readonly services = new Map<string, Service>();
  private readonly modules: ShardModule[] = [];
  private readonly random: () => number;
  private readonly log: (level: LogLevel, text: string) => void;
  private readonly histogram = newHistogram();
  private processedByStopped = 0;
  private restartsByStopped = 0;
  private deadLetters = 0;
  crossReceived = 0;
  private actorSeq = 0;
  /** Actors with a wake-up outstanding; 0 means this shard has nothing left to run. */
  private busy = 0;
  private sweepTimer: TimerHandle | undefined;
  /** Step times measured (ShardHostOptions.counters, or the last `set-counters`). */
  private counters: boolean;

  constructor(private readonly options: ShardHostOptions) {
    super(options.index, options.shards, options.clock, options.links, new Set(options.remoteKinds), options.packRemote ?? false);
    this.random = options.random;
    this.log = options.log;
    this.counters = options.counters;
    // nact reads the name only from an object argument, which its typings do not declare.
    this.system = nact.start({ name: `shard-${options.index}-${process.pid}` } as unknown as NactTypes.Plugin);
  }

  /** Register a module: its kinds and services become available; `start` runs once. */
  async addModule(module: ShardModule, moduleOptions: unknown): Promise<void> {
    const ctx = this.context(moduleOptions);
    const kinds = typeof module.kinds === 'function' ? module.kinds(ctx) : (module.kinds ?? []);
    for (const kind of kinds) {
      if (this.kinds.has(kind.kind)) throw new Error(`actor kind ${kind.kind} registered twice`);
      this.kinds.set(kind.kind, kind);
    }
    for (const [name, service] of Object.entries(module.services?.(ctx) ?? {})) {
      if (this.services.has(name)) throw new Error(`service ${name} registered twice`);
      this.services.set(name, service);
    }
    this.modules.push(module);
    await module.start?.(ctx);
    if (this.sweepTimer === undefined && [...this.kinds.values()].some((k) => k.passivateAfterMs !== undefined)) this.scheduleSweep();
  }

  context(moduleOptions: unknown): ShardContext {
    return {
      shard: this.index,
      shards: this.shards,
      clock: this.clock,
      random: this.random,
      options: moduleOptions,
      tell: (to, message) => this.tell(to, message),
      ask: <T>(to: Address, message: unknown, timeoutMs: number) =>
        new Promise<T>((resolve, reject) =>
          this.askWith(to, message, timeoutMs, (r) => (r.ok ? resolve(r.value as T) : reject(ActorRuntimeError.from(r.error)))),
        ),
      askWith: (to, message, timeoutMs, settle) => this.askWith(to, message, timeoutMs, settle),
      spawn: (address, init) => this.route({ t: SPAWN, to: address, init }),
      log: (level, text) => this.log(level, text),
    };
  }

  /** Entry for envelopes from other threads. */
  receive(envelope: Envelope): void {
    this.crossReceived += 1;
    this.handleEnvelope(envelope);
  }

  protected deliverLocal(envelope: Envelope): void {
    if (envelope.t === SPAWN) {
      this.spawnLocal(envelope.to, envelope.init);
      return;
    }
    if (envelope.t !== TELL && envelope.t !== ASK) return;
    const replyTo = envelope.t === ASK ? (envelope.r ? { origin: envelope.o, id: envelope.i, packed: true } : { origin: envelope.o, id: envelope.i }) : undefined;
    let message = envelope.m;
    if (envelope.b !== undefined) {
      // Packed by a shard of another process (packed.ts); the main threads only relayed it.
      try {
        message = unpackMessage(envelope.b);
      } catch (error) {
        this.deadLetters += 1;
        this.log('warn', `a message for ${printAddress(envelope.to)} could not be unpacked: ${describeError(error, false)}`);
        if (replyTo) this.reply(replyTo.origin, replyTo.id, { ok: false, error: actorError('BAD_REQUEST', 'the message could not be unpacked') });
        return;
      }
    }
    if (envelope.to.kind === SHARD_KIND) {
      this.control(message as ShardControl, replyTo);
      return;
    }
    const cell = this.cells.get(addressKey(envelope.to)) ?? (this.kinds.get(envelope.to.kind)?.virtual ? this.spawnLocal(envelope.to, undefined) : undefined);
    if (cell === undefined) {
      this.deadLetters += 1;
      const known = this.kinds.has(envelope.to.kind);
      if (replyTo) this.reply(replyTo.origin, replyTo.id, { ok: false, error: actorError('NO_SUCH_ACTOR', `${known ? 'no actor' : 'unknown actor kind'} ${printAddress(envelope.to)}`) });
      return;
    }
    this.enqueue(cell, { m: message, replyTo, sender: envelope.from });
  }

  private spawnLocal(address: Address, init: unknown): Cell | undefined {
    const name = addressKey(address);
    const existing = this.cells.get(name);
    if (existing) return existing;
    const kind = this.kinds.get(address.kind);
    if (kind === undefined) {
      this.log('warn', `spawn of unknown actor kind ${printAddress(address)} ignored`);
      return undefined;
    }
    let state: unknown;
    try {
      state = kind.init(address, init, this.clock.now());
    } catch (error) {
      this.log('error', `${printAddress(address)} failed to initialise: ${describeError(error)}`);
      return undefined;
    }
    const cell: Cell = {
      address,
      name,
      kind,
      initArg: init,
      state,
      mailbox: new Queue(),
      ref: undefined as unknown as NactTypes.Ref<unknown>,
      woken: false,
      stopped: false,
      stopRequested: false,
      processed: 0,
      restarts: 0,
      recentCrashes: [],
      histogram: newHistogram(),
      lastActiveAt: this.clock.now(),
      trace: undefined,
      timers: new Map(),
      nextTimer: 0,
    };
    // The nact twin only schedules: its handler drains our mailbox; nact's own state is unused.
    (cell as { ref: NactTypes.Ref<unknown> }).ref = nact.spawn(this.system, () => this.drain(cell), `a${this.actorSeq++}`);
    this.cells.set(name, cell);
    return cell;
  }

  private enqueue(cell: Cell, delivery: Delivery): void {
    cell.mailbox.push(delivery);
    if (!cell.woken) {
      cell.woken = true;
      this.busy += 1;
      nact.dispatch(cell.ref, 0);
    }
  }

  private drain(cell: Cell): void {
    // One wall-clock read per batch: steps of one batch see the same `now`. Clock reads were a visible share of
    // the data plane's per-request CPU.
    const now = this.clock.now();
    const counters = this.counters;
    for (let n = 0; n < DRAIN_BATCH && !cell.stopped; n++) {
      const delivery = cell.mailbox.shift();
      if (delivery === undefined) break;
      // Step times are sampled: every step of an actor's first TIMED_ALWAYS, then one in TIMED_ONE_IN.
      if (counters && (cell.processed < TIMED_ALWAYS || (cell.processed & (TIMED_ONE_IN - 1)) === 0)) this.timedStep(cell, delivery, now);
      else this.runStep(cell, delivery, now);
    }
    if (!cell.stopped && cell.mailbox.length > 0) nact.dispatch(cell.ref, 0);
    else this.unwake(cell);
  }

  private unwake(cell: Cell): void {
    if (cell.woken) {
      cell.woken = false;
      this.busy -= 1;
    }
  }

  /** A step whose processing time (effects included, µs) goes into the actor's and the shard's histograms. */
  private timedStep(cell: Cell, delivery: Delivery, now: number): void {
    const startedUs = monotonicUs();
    this.runStep(cell, delivery, now);
    const us = monotonicUs() - startedUs;
    record(cell.histogram, us);
    record(this.histogram, us);
  }

  /** Runs one delivery and applies its effects. */
  private runStep(cell: Cell, delivery: Delivery, now: number): void {
    const ctx: StepContext = { now, self: cell.address, replyTo: delivery.replyTo, sender: delivery.sender, random: this.random };
    if (cell.trace !== undefined) this.traceStep(cell, delivery, now);
    if (STEP_TRACE) process.stderr.write(`${STEP_TRACE_PREFIX} ${epochMsPrecise().toFixed(3)} ${printAddress(cell.address)} ${(delivery.m as { type?: unknown }).type ?? '?'}\n`);
    let result;
    try {
      result = cell.kind.step(cell.state, delivery.m, ctx);
      // A step that answers no result (a message its switch has no case for) is a crash like a throw: left to
      // fail below, it would escape into nact and end the actor's mailbox for good.
      if (typeof result !== 'object' || result === null) throw new Error(`its step returned ${String(result)} instead of { state, effects }`);
    } catch (error) {
      this.crash(cell, delivery, error);
      return;
    }
    cell.processed += 1;
    cell.lastActiveAt = now;
    cell.state = result.state;
    if (result.effects) for (const effect of result.effects) this.apply(cell, effect);
    if (cell.stopRequested) this.stopCell(cell, 'stopped itself');
  }

  /** Before the step, so that a message the actor crashes on is in the ring too. */
  private traceStep(cell: Cell, delivery: Delivery, now: number): void {
    const trace = cell.trace!;
    if (now > trace.until) {
      cell.trace = undefined;
      return;
    }
    if (trace.lines.length === RECENT_MESSAGES) trace.lines.shift();
    let message: string;
    try {
      message = printMessage(delivery.m);
    } catch (error) {
      message = `(unprintable: ${describeError(error, false)})`; // cyclic or BigInt: the step itself must still run
    }
    trace.lines.push({ at: now, message, ...(delivery.sender ? { from: printAddress(delivery.sender) } : {}) });
  }

  private apply(cell: Cell, effect: Effect<unknown>): void {
    switch (effect.type) {
      case 'send':
        this.tell(effect.to, effect.message, cell.address);
        return;
      case 'ask':
        this.askWith(effect.to, effect.message, effect.timeoutMs, (result) => this.toSelf(cell, effect.then(result)), cell.address);
        return;
      case 'reply':
        this.reply(effect.to.origin, effect.to.id, { ok: true, value: effect.value }, effect.to.packed);
        return;
      case 'fail':
        this.reply(effect.to.origin, effect.to.id, { ok: false, error: effect.error });
        return;
      case 'call':
        this.callService(cell, effect.service, effect.input, effect.then);
        return;
      case 'schedule': {
        const name = effect.timer ?? `#${cell.nextTimer++}`;
        const previous = cell.timers.get(name);
        if (previous) this.clock.clearTimer(previous);
        cell.timers.set(
          name,
          this.clock.setTimer(effect.afterMs, () => {
            cell.timers.delete(name);
            this.toSelf(cell, effect.message);
          }),
        );
        return;
      }
      case 'cancel': {
        const timer = cell.timers.get(effect.timer);
        if (timer) this.clock.clearTimer(timer);
        cell.timers.delete(effect.timer);
        return;
      }
      case 'spawn':
        this.route({ t: SPAWN, to: effect.address, init: effect.init });
        return;
      case 'stop':
        cell.stopRequested = true;
        return;
      case 'log':
        this.log(effect.level, `${printAddress(cell.address)}: ${effect.text}`);
        return;
      default: {
        const unknown: never = effect;
        throw new Error(`unknown effect ${JSON.stringify(unknown)}`);
      }
    }
  }

  /** A reply, timer or service result for an actor; dropped if that incarnation has stopped. */
  private toSelf(cell: Cell, message: unknown): void {
    if (cell.stopped) {
      this.deadLetters += 1;
      return;
    }
    this.enqueue(cell, { m: message, sender: cell.address });
  }

  private callService(cell: Cell, name: string, input: unknown, then: (result: AskResult) => unknown): void {
    const service = this.services.get(name);
    if (service === undefined) {
      queueMicrotask(() => this.toSelf(cell, then({ ok: false, error: actorError('NO_SUCH_SERVICE', `no service named ${name} on this shard`) })));
      return;
    }
    if (typeof service !== 'function') {
      try {
        service.call(input, (result) => this.toSelf(cell, then(result)));
      } catch (error) {
        queueMicrotask(() => this.toSelf(cell, then({ ok: false, error: toActorError(error, 'SERVICE_FAILED') })));
      }
      return;
    }
    let promise: Promise<unknown>;
    try {
      promise = service(input);
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (value) => this.toSelf(cell, then({ ok: true, value })),
      (error: unknown) => this.toSelf(cell, then({ ok: false, error: toActorError(error, 'SERVICE_FAILED') })),
    );
  }

  private crash(cell: Cell, delivery: Delivery, error: unknown): void {
    const now = this.clock.now();
    cell.restarts += 1;
    cell.recentCrashes = [...cell.recentCrashes.filter((t) => now - t < RESTART_WINDOW_MS), now];
    this.log('error', `${printAddress(cell.address)} crashed on ${describeMessage(delivery.m)}: ${describeError(error)}`);
    if (delivery.replyTo) this.reply(delivery.replyTo.origin, delivery.replyTo.id, { ok: false, error: actorError('ACTOR_CRASHED', `${printAddress(cell.address)} crashed: ${describeError(error, false)}`) });
    const policy = cell.kind.onCrash ?? 'restart';
    if (policy === 'stop' || cell.recentCrashes.length > MAX_RESTARTS) {
      this.stopCell(cell, policy === 'stop' ? 'crashed (policy: stop)' : `crashed more than ${MAX_RESTARTS} times in ${RESTART_WINDOW_MS} ms`);
      return;
    }
    this.reinit(cell);
  }

  /** A restart asked for (the console's action): what a crash does, without the crash; its mailbox stays. */
  private restart(cell: Cell, reason: string): void {
    cell.restarts += 1;
    this.log('warn', `${printAddress(cell.address)} ${reason}`);
    this.reinit(cell);
  }

  private reinit(cell: Cell): void {
    this.clearTimers(cell);
    try {
      cell.state = cell.kind.init(cell.address, cell.initArg, this.clock.now());
    } catch (initError) {
      this.stopCell(cell, `restart failed: ${describeError(initError)}`);
    }
  }

  private clearTimers(cell: Cell): void {
    for (const timer of cell.timers.values()) this.clock.clearTimer(timer);
    cell.timers.clear();
  }

  /** Stop an actor. Messages still queued go to a fresh incarnation if the kind is virtual and the stop was voluntary. */
  private stopCell(cell: Cell, reason: string, code: ErrorCode = 'ACTOR_STOPPED'): void {
    if (cell.stopped) return;
    cell.stopped = true;
    this.unwake(cell);
    this.clearTimers(cell);
    this.cells.delete(cell.name);
    this.processedByStopped += cell.processed;
    this.restartsByStopped += cell.restarts;
    nact.stop(cell.ref);
    this.log(reason.startsWith('crash') || reason.startsWith('restart') ? 'warn' : 'debug', `${printAddress(cell.address)} stopped: ${reason}`);
    const leftover = cell.mailbox.drain();
    if (leftover.length === 0) return;
    const successor = cell.kind.virtual && cell.stopRequested ? this.spawnLocal(cell.address, undefined) : undefined;
    for (const delivery of leftover) {
      if (successor) this.enqueue(successor, delivery);
      else {
        this.deadLetters += 1;
        if (delivery.replyTo) this.reply(delivery.replyTo.origin, delivery.replyTo.id, { ok: false, error: actorError(code, `${printAddress(cell.address)} stopped: ${reason}`) });
      }
    }
  }

  private scheduleSweep(): void {
    this.sweepTimer = this.clock.setTimer(this.options.passivationSweepMs, () => {
      this.passivateIdle();
      if (!this.stopped) this.scheduleSweep();
    });
  }

  private passivateIdle(): void {
    const now = this.clock.now();
    for (const cell of [...this.cells.values()]) {
      const idleAfter = cell.kind.passivateAfterMs;
      if (idleAfter !== undefined && !cell.woken && cell.mailbox.length === 0 && now - cell.lastActiveAt >= idleAfter) this.stopCell(cell, 'passivated (idle)');
    }
  }

  private control(op: ShardControl, replyTo: ReplyTo | undefined): void {
    const answer = (value: unknown) => replyTo && this.reply(replyTo.origin, replyTo.id, { ok: true, value }, replyTo.packed);
    const fail = (code: ErrorCode, message: string) => replyTo && this.reply(replyTo.origin, replyTo.id, { ok: false, error: actorError(code, message) });
    switch (op.op) {
      case 'stats':
        return void answer(this.stats());
      case 'count':
        return void answer(this.matching(op.kind).length);
      case 'list':
        return void answer(
          this.matching(op.kind)
            .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
            .slice(op.offset, op.offset + op.limit)
            .map((cell) => this.actorStats(cell)),
        );
      case 'top': {
        const items = this.matching(op.kind).map((cell) => this.actorStats(cell));
        return void answer({ total: items.length, items: head(items, op) });
      }
      case 'inspect':
      case 'inspect-name': {
        const cell = this.cells.get(op.op === 'inspect' ? addressKey(op.address) : op.name);
        if (cell === undefined) return void fail('NO_SUCH_ACTOR', `no actor ${op.op === 'inspect' ? printAddress(op.address) : op.name} on shard ${this.index}`);
        if (op.op === 'inspect-name' && op.watchMs !== undefined && op.watchMs > 0) {
          cell.trace ??= { until: 0, lines: [] };
          cell.trace.until = this.clock.now() + Math.min(op.watchMs, MAX_WATCH_MS);
        }
        let inspection: ActorInspection;
        try {
          inspection = this.inspection(cell);
        } catch (error) {
          return void fail('SUMMARY_FAILED', `${printAddress(cell.address)}: its kind's summary threw: ${describeError(error, false)}`);
        }
        return void answer(inspection);
      }
      case 'set-counters': {
        const previous = this.counters;
        this.counters = op.on;
        return void answer(previous);
      }
      case 'advance': {
        const clock = this.clock;
        if (!(clock instanceof ManualClock)) return void fail('BAD_REQUEST', 'advance needs the manual clock');
        void this.advance(clock, op.ms).then(() => answer(clock.now()));
        return;
      }
      case 'stop-actor': {
        const cell = this.cells.get(addressKey(op.address));
        if (cell) this.stopCell(cell, 'stopped by request');
        return void answer(cell !== undefined);
      }
      case 'restart-actor': {
        const cell = this.cells.get(op.name);
        if (cell === undefined) return void fail('NO_SUCH_ACTOR', `no actor ${op.name} on shard ${this.index}`);
        this.restart(cell, 'restarted by request');
        return void answer(cell.restarts);
      }
      case 'shutdown':
        void this.shutdown().then(
          () => answer(true),
          (error: unknown) => fail('SHUTDOWN_FAILED', describeError(error)),
        );
        return;
      default: {
        const unknown: never = op;
        return void fail('BAD_REQUEST', `unknown shard control ${JSON.stringify(unknown)}`);
      }
    }
  }

  /**
   * Move manual time forward one due timer at a time, letting the shard finish the work each timer
   * caused before time moves on, so an actor sees `now` equal to its timer's due time.
   */
  private async advance(clock: ManualClock, ms: number): Promise<void> {
    const target = clock.now() + ms;
    for (let due = clock.nextDue(); due !== undefined && due <= target; due = clock.nextDue()) {
      clock.advance(due - clock.now());
      await this.quiescent();
    }
    clock.advance(target - clock.now());
    await this.quiescent();
  }

  /** Resolve once no actor on this shard has work queued (bounded: at most 100 000 event-loop turns). */
  private async quiescent(): Promise<void> {
    for (let turns = 0; this.busy > 0 && turns < 100_000; turns++) await new Promise((resolve) => setImmediate(resolve));
  }

  private matching(kind: string | undefined): Cell[] {
    const cells = [...this.cells.values()];
    return kind === undefined ? cells : cells.filter((c) => c.kind.kind === kind);
  }

  /** Read on demand only: a kind's summary runs here, never on every step. */
  private inspection(cell: Cell): ActorInspection {
    const state: unknown = cell.kind.summary ? cell.kind.summary(cell.state) : cell.state;
    const line = printMessage(state);
    let size = 0;
    try {
      size = JSON.stringify(state)?.length ?? 0;
    } catch {
      size = Infinity; // cyclic or a BigInt: not plain data, so only the line is answered
    }
    return {
      stats: this.actorStats(cell),
      state: size <= MAX_INSPECTED_STATE_CHARS ? state : { omitted: `state of ${size} characters as JSON; see line` },
      line,
      ...(cell.trace ? { recent: [...cell.trace.lines] } : {}),
    };
  }

  private actorStats(cell: Cell): ActorStats {
    const h = cell.histogram;
    return {
      address: cell.name,
      kind: cell.kind.kind,
      mailbox: cell.mailbox.length,
      processed: cell.processed,
      restarts: cell.restarts,
      meanUs: h.count === 0 ? 0 : Math.round(h.sumUs / h.count),
      p50Us: quantileUs(h, 0.5),
      p90Us: quantileUs(h, 0.9),
      p99Us: quantileUs(h, 0.99),
      lastActiveAt: cell.lastActiveAt,
      shard: this.index,
    };
  }

  stats(): ShardStats {
    const actorsByKind: Record<string, number> = {};
    const kinds = new Map<string, { actors: number; processed: number; mailbox: number; restarts: number; histogram: Histogram }>();
    let processed = this.processedByStopped;
    let restarts = this.restartsByStopped;
    let mailbox = 0;
    for (const cell of this.cells.values()) {
      actorsByKind[cell.kind.kind] = (actorsByKind[cell.kind.kind] ?? 0) + 1;
      processed += cell.processed;
      restarts += cell.restarts;
      mailbox += cell.mailbox.length;
      let kind = kinds.get(cell.kind.kind);
      if (kind === undefined) kinds.set(cell.kind.kind, (kind = { actors: 0, processed: 0, mailbox: 0, restarts: 0, histogram: newHistogram() }));
      kind.actors += 1;
      kind.processed += cell.processed;
      kind.mailbox += cell.mailbox.length;
      kind.restarts += cell.restarts;
      merge(kind.histogram, cell.histogram);
    }
    const histogram = newHistogram();
    merge(histogram, this.histogram);
    let crossSent = 0;
    let batchesSent = 0;
    for (const link of this.links) {
      crossSent += link?.sent ?? 0;
      batchesSent += link?.batches ?? 0;
    }
    return {
      shard: this.index,
      shards: this.shards,
      counters: this.counters,
      kinds: [...kinds].map(([kind, k]): KindStats => ({ kind, ...k })).sort((a, b) => (a.kind < b.kind ? -1 : 1)),
      actors: this.cells.size,
      actorsByKind,
      processed,
      mailbox,
      restarts,
      deadLetters: this.deadLetters,
      crossSent,
      crossReceived: this.crossReceived,
      batchesSent,
      pendingAsks: this.pendingAsks(),
      histogram,
    };
  }

  /** Stop modules and actors and cancel every timer, so the thread has nothing left to run. */
  async shutdown(): Promise<void> {
    if (this.stopped) return;
    for (const module of [...this.modules].reverse()) await module.stop?.();
    this.stopped = true;
    if (this.sweepTimer) this.clock.clearTimer(this.sweepTimer);
    for (const cell of [...this.cells.values()]) this.stopCell(cell, 'shard shutdown', 'RUNTIME_STOPPED');
    this.failPending(actorError('RUNTIME_STOPPED', 'the actor runtime is stopping'));
    nact.stop(this.system);
  }
}

export function describeError(error: unknown, withStack = true): string {
  if (error instanceof Error) return withStack && error.stack ? error.stack : error.message;
  return String(error);
}

/** One short line naming a message: its `type` field when it has one. */
export function describeMessage(message: unknown): string {
  if (message && typeof message === 'object' && typeof (message as { type?: unknown }).type === 'string') return `message '${(message as { type: string }).type}'`;
  return `message ${JSON.stringify(message)?.slice(0, 80)}`;
}
