// Actor kinds for bench/actors.ts, loaded into the shard threads by URL.
import type { ActorKind, Address, Effect } from '../actors/actor.js';
import type { ShardModule } from '../runtime/host.js';

type BlasterMessage = { type: 'blast'; to: Address; n: number; chunk: number } | { type: 'continue' };
interface BlasterState {
  to?: Address;
  remaining: number;
  chunk: number;
}

/** Sends `n` hits to `to`, `chunk` per step, re-queueing itself so other actors get turns. */
export const blaster: ActorKind<BlasterState, BlasterMessage> = {
  kind: 'blaster',
  virtual: true,
  init: () => ({ remaining: 0, chunk: 1 }),
  step(state, message, ctx) {
    const next = message.type === 'blast' ? { to: message.to, remaining: message.n, chunk: message.chunk } : state;
    if (next.to === undefined || next.remaining === 0) return { state: next };
    const count = Math.min(next.chunk, next.remaining);
    const effects: Effect<BlasterMessage>[] = new Array(count);
    for (let i = 0; i < count; i++) effects[i] = { type: 'send', to: next.to, message: HIT };
    const remaining = next.remaining - count;
    if (remaining > 0) effects.push({ type: 'send', to: ctx.self, message: CONTINUE });
    return { state: { ...next, remaining }, effects };
  },
};
const HIT = { type: 'hit' } as const;
const CONTINUE = { type: 'continue' } as const;

export const sink: ActorKind<{ n: number }, { type: 'hit' } | { type: 'count' }> = {
  kind: 'sink',
  virtual: true,
  init: () => ({ n: 0 }),
  step(state, message, ctx) {
    if (message.type === 'hit') return { state: { n: state.n + 1 } };
    return { state, effects: ctx.replyTo ? [{ type: 'reply', to: ctx.replyTo, value: state.n }] : [] };
  },
};

export const echo: ActorKind<null, unknown> = {
  kind: 'echo',
  virtual: true,
  init: () => null,
  step: (state, message, ctx) => ({ state, effects: ctx.replyTo ? [{ type: 'reply', to: ctx.replyTo, value: message }] : [] }),
};

type AskerMessage = { type: 'start'; to: Address; total: number; window: number } | { type: 'answered'; ok: boolean } | { type: 'progress' };
interface AskerState {
  to?: Address;
  sent: number;
  answered: number;
  failed: number;
  total: number;
}

/** Keeps `window` asks in flight to `to` until `total` have been answered. */
export const asker: ActorKind<AskerState, AskerMessage> = {
  kind: 'asker',
  virtual: true,
  init: () => ({ sent: 0, answered: 0, failed: 0, total: 0 }),
  step(state, message, ctx) {
    const ask = (to: Address, seq: number): Effect<AskerMessage> => ({ type: 'ask', to, message: seq, timeoutMs: 30_000, then: (r) => ({ type: 'answered', ok: r.ok }) });
    switch (message.type) {
      case 'start': {
        const window = Math.min(message.window, message.total);
        const effects = Array.from({ length: window }, (_, i) => ask(message.to, i));
        return { state: { to: message.to, sent: window, answered: 0, failed: 0, total: message.total }, effects };
      }
      case 'answered': {
        const next = { ...state, answered: state.answered + 1, failed: state.failed + (message.ok ? 0 : 1) };
        if (next.sent < next.total && next.to) {
          next.sent += 1;
          return { state: next, effects: [ask(next.to, next.sent)] };
        }
        return { state: next };
      }
      case 'progress':
        return { state, effects: ctx.replyTo ? [{ type: 'reply', to: ctx.replyTo, value: { answered: state.answered, failed: state.failed } }] : [] };
    }
  },
};

export const shardModule: ShardModule = { kinds: [blaster, sink, echo, asker] };
