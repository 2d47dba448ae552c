// A stand-in data plane for bench/coldstart.ts: its `router` kind only records when each endpoint
// arrives (the moment a sandbox becomes routable on the data-plane side).
import type { ActorKind } from '../actors/actor.js';
import type { RouterUpdate } from '../actors/messages.js';
import type { ShardModule } from '../runtime/host.js';

type RecorderMessage = RouterUpdate | { type: 'bench.arrivals' };

/** Arrival time (ms, real clock) of every endpoint added, in arrival order. */
export const recordingRouter: ActorKind<{ arrivals: number[] }, RecorderMessage> = {
  kind: 'router',
  virtual: true,
  init: () => ({ arrivals: [] }),
  step(state, message, ctx) {
    switch (message.type) {
      case 'rt.delta':
        for (let i = 0; i < message.add.length; i++) state.arrivals.push(ctx.now);
        return { state };
      case 'rt.snapshot':
      case 'rt.deleted':
        return { state };
      case 'bench.arrivals':
        return { state, effects: ctx.replyTo ? [{ type: 'reply', to: ctx.replyTo, value: state.arrivals }] : [] };
    }
  },
};

export const shardModule: ShardModule = { kinds: [recordingRouter] };
