// A deterministic host for the same pure actor kinds the threaded runtime runs: one global FIFO
// queue, a manual clock, a seeded random source and fake services. Scenario tests drive it like
// a script and compare its transcript (one printed line per delivery) with a stored one.
import { printAddress, type ActorError, type ActorKind, type Address, type AskResult, type Effect, type ReplyTo, type StepContext } from '../actors/actor.js';
import { printDelivery } from '../actors/printer.js';
import { ManualClock, type TimerHandle } from './clock.js';
import type { ErrorCode } from '../actors/errors.js';
import { ActorRuntimeError, actorError, toActorError } from './errors.js';
import { addressKey } from './hash.js';
import { seededRandom } from './random.js';

/** A fake port: returns its outcome directly, a promise of it, or `delayed(ms, outcome)` to take simulated time. */
export type SimService = (input: unknown, sim: Simulation) => unknown;

/** A service outcome that arrives after `ms` of simulated time (a held request, a slow creation). */
export class Delayed {
  constructor(
    readonly ms: number,
    readonly outcome: { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: ActorError },
  ) {}
}

export const delayed = (ms: number, value: unknown): Delayed => new Delayed(ms, { ok: true, value });
export const delayedFailure = (ms: number, code: ErrorCode, message: string): Delayed => new Delayed(ms, { ok: false, error: { code, message } });

export interface SimulationOptions {
  readonly kinds: readonly ActorKind[];
  readonly services?: Readonly<Record<string, SimService>>;
  readonly seed?: number;
  /** Initial clock value, ms. */
  readonly start?: number;
  /** Message types left out of the transcript (e.g. periodic ticks). */
  readonly quiet?: readonly string[];
}

interface SimActor {
  readonly address: Address;
  readonly kind: ActorKind;
  readonly initArg: unknown;
  state: unknown;
  readonly timers: Map<string, TimerHandle>;
  nextTimer: number;
}

interface Queued {
  readonly to: Address;
  readonly message: unknown;
  readonly from?: Address | undefined;
  readonly replyTo?: ReplyTo | undefined;
}

/** Upper bound on deliveries per `run`, so a livelock fails a test instead of hanging it. */
const MAX_STEPS = 1_000_000;
/** The origin number the simulation uses for asks it makes on behalf of actors and the script. */
const SIM_ORIGIN = 0;

export class Simulation {
  readonly clock: ManualClock;
  readonly random: () => number;
  readonly transcript: string[] = [];
  readonly errors: string[] = [];
  private readonly kinds = new Map<string, ActorKind>();
  private readonly actors = new Map<string, SimActor>();
  private readonly queue: Queued[] = [];
  private readonly pendingAsks = new Map<number, { settle: (r: AskResult) => void; timer: TimerHandle }>();
  private readonly inflightCalls = new Set<Promise<void>>();
  private readonly quiet: Set<string>;
  private nextAskId = 1;
  deadLetters = 0;

  constructor(private readonly options: SimulationOptions) {
    for (const kind of options.kinds) this.kinds.set(kind.kind, kind);
    this.clock = new ManualClock(options.start ?? 0);
    this.random = seededRandom(options.seed ?? 1);
    this.quiet = new Set(options.quiet ?? []);
  }

  now(): number {
    return this.clock.now();
  }

  tell(to: Address, message: unknown, from?: Address): void {
    this.queue.push({ to, message, from });
  }

  /** Ask from the script; the promise settles while `run` or `advance` processes the reply. */
  ask<T = unknown>(to: Address, message: unknown, timeoutMs = 10_000): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      this.askWith(to, message, timeoutMs, undefined, (r) => (r.ok ? resolve(r.value as T) : reject(ActorRuntimeError.from(r.error)))),
    );
  }

  /** Ask and run the system until the reply is in. */
  async request<T = unknown>(to: Address, message: unknown, timeoutMs?: number): Promise<T> {
    const reply = this.ask<T>(to, message, timeoutMs);
    reply.catch(() => undefined);
    await this.run();
    return reply;
  }

  spawn(address: Address, init?: unknown): void {
    this.spawnActor(address, init);
  }

  /** Current state of an actor (undefined if it is not running). For assertions. */
  state<S>(address: Address): S | undefined {
    return this.actors.get(addressKey(address))?.state as S | undefined;
  }

  /** Running actors, sorted by address. */
  list(kind?: string): Address[] {
    return [...this.actors.values()]
      .filter((a) => kind === undefined || a.kind.kind === kind)
      .map((a) => a.address)
      .sort((a, b) => addressKey(a).localeCompare(addressKey(b)));
  }

  /** Failure injection: the actor vanishes with its timers (as if its host died); nothing is told. */
  kill(address: Address): boolean {
    const actor = this.actors.get(addressKey(address));
    if (actor === undefined) return false;
    this.transcript.push(`t=${this.now()} ${printAddress(address)} killed`);
    this.stopActor(actor);
    return true;
  }

  /** Append a scripted step to the transcript (`> text`): what follows it, up to the next step, is its output. */
  command(text: string): void {
    this.transcript.push(`t=${this.now()} > ${text}`);
  }

  /** Append a line of the script's own output to the transcript (`# text`: a result it read, a summary). */
  note(text: string): void {
    this.transcript.push(`t=${this.now()} # ${text}`);
  }

  /** Deliver queued messages (and the results of service calls) until nothing is left. */
  async run(): Promise<void> {
    for (let steps = 0; steps < MAX_STEPS; ) {
      const next = this.queue.shift();
      if (next !== undefined) {
        this.deliver(next);
        steps += 1;
        continue;
      }
      if (this.inflightCalls.size === 0) return;
      await Promise.all([...this.inflightCalls]);
    }
    throw new Error(`simulation did not settle within ${MAX_STEPS} deliveries`);
  }

  /** Move time forward, timer by timer, running the system to rest after each. */
  async advance(ms: number): Promise<void> {
    await this.run();
    const target = this.clock.now() + ms;
    for (let due = this.clock.nextDue(); due !== undefined && due <= target; due = this.clock.nextDue()) {
      this.clock.advance(due - this.clock.now());
      await this.run();
    }
    this.clock.advance(target - this.clock.now());
    await this.run();
  }

  private spawnActor(address: Address, init: unknown): SimActor | undefined {
    const existing = this.actors.get(addressKey(address));
    if (existing) return existing;
    const kind = this.kinds.get(address.kind);
    if (kind === undefined) return undefined;
    const actor: SimActor = { address, kind, initArg: init, state: kind.init(address, init, this.now()), timers: new Map(), nextTimer: 0 };
    this.actors.set(addressKey(address), actor);
    return actor;
  }

  private deliver(item: Queued): void {
    const kind = this.kinds.get(item.to.kind);
    const actor = this.actors.get(addressKey(item.to)) ?? (kind?.virtual ? this.spawnActor(item.to, undefined) : undefined);
    if (actor === undefined) {
      this.deadLetters += 1;
      this.transcript.push(`t=${this.now()} ${printAddress(item.to)} <- (dead letter) ${printDelivery(this.now(), item.to, item.message).split(' <- ')[1]}`);
      if (item.replyTo) this.settle(item.replyTo.id, { ok: false, error: actorError('NO_SUCH_ACTOR', `no actor ${printAddress(item.to)}`) });
      return;
    }
    const type = (item.message as { type?: unknown } | null)?.type;
    if (typeof type !== 'string' || !this.quiet.has(type)) this.transcript.push(printDelivery(this.now(), item.to, item.message, item.from));
    const ctx: StepContext = { now: this.now(), self: actor.address, replyTo: item.replyTo, sender: item.from, random: this.random };
    let result;
    try {
      result = actor.kind.step(actor.state, item.message, ctx);
    } catch (error) {
      this.crash(actor, item, error);
      return;
    }
    actor.state = result.state;
    let stop = false;
    for (const effect of result.effects ?? []) stop = this.apply(actor, effect) || stop;
    if (stop) this.stopActor(actor);
  }

  /** Returns true for a stop effect. */
  private apply(actor: SimActor, effect: Effect<unknown>): boolean {
    switch (effect.type) {
      case 'send':
        this.queue.push({ to: effect.to, message: effect.message, from: actor.address });
        return false;
      case 'ask':
        this.askWith(effect.to, effect.message, effect.timeoutMs, actor.address, (r) => this.toSelf(actor, effect.then(r)));
        return false;
      case 'reply':
        this.settle(effect.to.id, { ok: true, value: effect.value });
        return false;
      case 'fail':
        this.settle(effect.to.id, { ok: false, error: effect.error });
        return false;
      case 'call':
        this.call(actor, effect.service, effect.input, effect.then);
        return false;
      case 'schedule': {
        const name = effect.timer ?? `#${actor.nextTimer++}`;
        const previous = actor.timers.get(name);
        if (previous) this.clock.clearTimer(previous);
        actor.timers.set(
          name,
          this.clock.setTimer(effect.afterMs, () => {
            actor.timers.delete(name);
            this.toSelf(actor, effect.message);
          }),
        );
        return false;
      }
      case 'cancel': {
        const timer = actor.timers.get(effect.timer);
        if (timer) this.clock.clearTimer(timer);
        actor.timers.delete(effect.timer);
        return false;
      }
      case 'spawn':
        this.spawnActor(effect.address, effect.init);
        return false;
      case 'stop':
        return true;
      case 'log':
        this.transcript.push(`t=${this.now()} ${printAddress(actor.address)} log ${effect.level}: ${effect.text}`);
        return false;
      default: {
        const unknown: never = effect;
        throw new Error(`unknown effect ${JSON.stringify(unknown)}`);
      }
    }
  }

  private toSelf(actor: SimActor, message: unknown): void {
    if (this.actors.get(addressKey(actor.address)) !== actor) {
      this.deadLetters += 1;
      return;
    }
    this.queue.push({ to: actor.address, message, from: actor.address });
  }

  private askWith(to: Address, message: unknown, timeoutMs: number, from: Address | undefined, settle: (r: AskResult) => void): void {
    const id = this.nextAskId++;
    const timer = this.clock.setTimer(timeoutMs, () => {
      if (this.pendingAsks.delete(id)) settle({ ok: false, error: actorError('ASK_TIMEOUT', `no reply from ${printAddress(to)} within ${timeoutMs} ms`) });
    });
    this.pendingAsks.set(id, { settle, timer });
    this.queue.push({ to, message, from, replyTo: { origin: SIM_ORIGIN, id } });
  }

  private settle(id: number, result: AskResult): void {
    const pending = this.pendingAsks.get(id);
    if (pending === undefined) return;
    this.pendingAsks.delete(id);
    this.clock.clearTimer(pending.timer);
    pending.settle(result);
  }

  private call(actor: SimActor, name: string, input: unknown, then: (r: AskResult) => unknown): void {
    const service = this.options.services?.[name];
    if (service === undefined) {
      this.toSelf(actor, then({ ok: false, error: actorError('NO_SUCH_SERVICE', `no service named ${name}`) }));
      return;
    }
    let outcome: unknown;
    try {
      outcome = service(input, this);
    } catch (error) {
      this.toSelf(actor, then({ ok: false, error: toActorError(error, 'SERVICE_FAILED') }));
      return;
    }
    if (outcome instanceof Delayed) {
      this.clock.setTimer(outcome.ms, () => this.toSelf(actor, then(outcome.outcome)));
      return;
    }
    if (!(outcome instanceof Promise)) {
      this.toSelf(actor, then({ ok: true, value: outcome }));
      return;
    }
    const tracked: Promise<void> = outcome.then(
      (value: unknown) => this.toSelf(actor, then({ ok: true, value })),
      (error: unknown) => this.toSelf(actor, then({ ok: false, error: toActorError(error, 'SERVICE_FAILED') })),
    ).finally(() => this.inflightCalls.delete(tracked));
    this.inflightCalls.add(tracked);
  }

  private crash(actor: SimActor, item: Queued, error: unknown): void {
    const text = error instanceof Error ? error.message : String(error);
    this.errors.push(`${printAddress(actor.address)}: ${text}`);
    this.transcript.push(`t=${this.now()} ${printAddress(actor.address)} crashed: ${text}`);
    const failure: ActorError = actorError('ACTOR_CRASHED', `${printAddress(actor.address)} crashed: ${text}`);
    if (item.replyTo) this.settle(item.replyTo.id, { ok: false, error: failure });
    if ((actor.kind.onCrash ?? 'restart') === 'stop') {
      this.stopActor(actor);
      return;
    }
    for (const timer of actor.timers.values()) this.clock.clearTimer(timer);
    actor.timers.clear();
    actor.state = actor.kind.init(actor.address, actor.initArg, this.now());
  }

  private stopActor(actor: SimActor): void {
    for (const timer of actor.timers.values()) this.clock.clearTimer(timer);
    actor.timers.clear();
    this.actors.delete(addressKey(actor.address));
  }
}
