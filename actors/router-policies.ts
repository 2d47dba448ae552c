// Load-balancing policies: which serving sandbox with a free slot a request goes to. `least-in-flight` (ties
// to the first in id order, so light load stays on few sandboxes), `random`, `round-robin` (the first free one
// after the last chosen, in id order) and `power-of-two` (the less busy of two drawn at random).

import { assertNever } from './actor.js';
import type { LoadBalancingPolicy } from './settings.js';
import { isFree, type RouterState, type SandboxSlot } from './router-state.js';


/**
 * Index (into `state.sandboxes`) of the serving sandbox to use, or undefined when every slot is busy. Runs per
 * request: it walks the slots without building the list of free ones (`nthFree` indexes that list).
 */
export function pick(state: RouterState, policy: LoadBalancingPolicy, random: () => number): number | undefined {
  const slots = state.sandboxes;
  let free = 0;
  let first = -1;
  let least = -1;
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i]!;
    if (!isFree(slot)) continue;
    free += 1;
    if (first < 0) first = i;
    // Ties go to the first in id order, so light load stays on few sandboxes.
    if (least < 0 || slot.inFlight < slots[least]!.inFlight) least = i;
  }
  if (free === 0) return undefined;
  switch (policy) {
    case 'least-in-flight':
      return least;
    case 'random':
      return nthFree(slots, Math.floor(random() * free));
    case 'round-robin': {
      // The first free sandbox after the last one chosen, in id order: adds and removals do not reset the walk.
      const cursor = state.cursor;
      if (cursor !== null) {
        for (let i = 0; i < slots.length; i++) if (isFree(slots[i]!) && slots[i]!.endpoint.sandboxId > cursor) return i;
      }
      return first;
    }
    case 'power-of-two': {
      if (free === 1) return first;
      const one = Math.floor(random() * free);
      let two = Math.floor(random() * (free - 1));
      if (two >= one) two += 1;
      const a = nthFree(slots, one);
      const b = nthFree(slots, two);
      if (a === undefined || b === undefined) return a ?? b;
      return slots[b]!.inFlight < slots[a]!.inFlight ? b : a;
    }
    default:
      return assertNever(policy, 'load-balancing policy');
  }
}

/** Index of the `n`th (from 0) free sandbox, in id order. */
function nthFree(slots: readonly SandboxSlot[], n: number): number | undefined {
  for (let i = 0, seen = 0; i < slots.length; i++) {
    if (!isFree(slots[i]!)) continue;
    if (seen === n) return i;
    seen += 1;
  }
  return undefined;
}
