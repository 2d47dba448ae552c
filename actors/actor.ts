// The contract between pure actor behaviour and the hosts that run it (the threaded nact runtime in
// runtime/, and the deterministic simulator used by tests). Everything here is plain data or a pure
// function: an actor never performs I/O, reads a clock or draws randomness itself.

import type { ErrorCode } from './errors.js';

/** Where an actor lives. Actors with the same `key` share a shard thread (default key: `kind/id`). */
export interface Address {
  readonly kind: string;
  readonly id: string;
  /** Colocation key: e.g. a function's name, so its router, autoscaler and sandboxes share a thread. */
  readonly key?: string;
  /**
   * Pins the actor to this shard (modulo the shard count) instead of the one its key hashes to: a function's
   * router has a replica on every data-plane shard. Not part of the actor's name: on the shard the key hashes
   * to, the pinned address and the plain one name the same actor.
   */
  readonly shard?: number;
}

/** Opaque token identifying a pending ask; an actor answers it with a `reply` effect. */
export interface ReplyTo {
  /** Endpoint that asked (shard index, or a client endpoint number). */
  readonly origin: number;
  /** Correlation id, unique per origin. */
  readonly id: number;
  /** The asker is in another process: the runtime packs the value where it is made (runtime/packed.ts). */
  readonly packed?: boolean;
}

export interface ActorError {
  /** Stable machine-readable code, e.g. `ASK_TIMEOUT`, `NO_SUCH_ACTOR`, `ACTOR_CRASHED` (actors/errors.ts). */
  readonly code: ErrorCode;
  readonly message: string;
}

export type AskResult<T = unknown> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: ActorError };

/** What a step asks its host to do, in order, after the state is committed. */
export type Effect<M> =
  /** Fire-and-forget message. Order is kept per sender-receiver pair. */
  | { readonly type: 'send'; readonly to: Address; readonly message: unknown }
  /** Request/response; the outcome comes back to this actor as the message `then(result)`. */
  | { readonly type: 'ask'; readonly to: Address; readonly message: unknown; readonly timeoutMs: number; readonly then: (result: AskResult) => M }
  /** Answer a pending ask (from `StepContext.replyTo`). */
  | { readonly type: 'reply'; readonly to: ReplyTo; readonly value: unknown }
  /** Answer a pending ask with an error. */
  | { readonly type: 'fail'; readonly to: ReplyTo; readonly error: ActorError }
  /** I/O through a named port of the host (sandbox runtime, store, ...); the outcome returns as `then(result)`. */
  | { readonly type: 'call'; readonly service: string; readonly input: unknown; readonly then: (result: AskResult) => M }
  /** Deliver `message` to self after `afterMs` ms. A named timer replaces an earlier one of the same name. */
  | { readonly type: 'schedule'; readonly afterMs: number; readonly message: M; readonly timer?: string }
  | { readonly type: 'cancel'; readonly timer: string }
  /** Create an actor (no-op if it already exists); `init` is passed to its kind's `init`. */
  | { readonly type: 'spawn'; readonly address: Address; readonly init?: unknown }
  /** Stop this actor once the current step's effects are done. */
  | { readonly type: 'stop' }
  | { readonly type: 'log'; readonly level: 'debug' | 'info' | 'warn' | 'error'; readonly text: string };

export interface StepContext {
  /** Milliseconds, from the host's injected clock. */
  readonly now: number;
  readonly self: Address;
  /** Present when the message arrived through an ask. */
  readonly replyTo?: ReplyTo;
  /** Address of the sending actor, when the sender is an actor. */
  readonly sender?: Address;
  /** Seeded random source in [0, 1). */
  readonly random: () => number;
}

export interface Step<S, M> {
  readonly state: S;
  readonly effects?: readonly Effect<M>[];
}

export type CrashPolicy = 'restart' | 'stop';

export interface ActorKind<S = any, M = any> {
  readonly kind: string;
  /** Spawn on first message (virtual-actor style). Otherwise messages to a missing actor are dead letters. */
  readonly virtual?: boolean;
  /** Stop the actor after this many ms without a message (it respawns on demand if `virtual`). */
  readonly passivateAfterMs?: number;
  /** What to do when `step` throws. Default `restart` (state from `init` again). */
  readonly onCrash?: CrashPolicy;
  init(address: Address, arg: unknown, now: number): S;
  /**
   * The one rule for mutation: `step` owns the state it is given. It may change it in place and return it, or
   * return a new one; either way the returned state replaces it, and no caller (host, simulator, harness, test)
   * reads the given state again. The hosts keep one state per actor and, when a step throws, restart from `init`,
   * so a half-changed state is never seen. An actor changes in place what would cost O(size) per message to copy
   * (the function's sandbox map) and builds small states anew where that is as cheap (the router's, with
   * `updater`); a test that steps one state two ways copies it first.
   */
  step(state: S, message: M, ctx: StepContext): Step<S, M>;
  /** Small JSON-able summary of the state, for inspection. Default: the state itself. */
  summary?(state: S): unknown;
}

export function assertNever(value: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(value)}`);
}

export function defaultKey(address: Address): string {
  return address.key ?? `${address.kind}/${address.id}`;
}

/** One short line for logs, transcripts and the console. */
export function printAddress(address: Address): string {
  return address.key && address.key !== address.id ? `${address.kind}:${address.id}@${address.key}` : `${address.kind}:${address.id}`;
}
