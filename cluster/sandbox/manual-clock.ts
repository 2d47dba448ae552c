// A hand-driven SimulatedClock for tests and deterministic harnesses: time moves only in `advance`.
import type { SimulatedClock } from './simulated.js';

interface Timer {
  readonly at: number;
  readonly fn: () => void;
}

export class ManualClock implements SimulatedClock {
  #now: number;
  #timers = new Set<Timer>();

  /** `startMs`: the initial reading, ms. */
  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const timer: Timer = { at: this.#now + Math.max(0, ms), fn };
    this.#timers.add(timer);
    return timer;
  }

  clearTimer(handle: unknown): void {
    this.#timers.delete(handle as Timer);
  }

  /** Timers not yet due. */
  pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in time order (ties in the order they were set) and letting each one's continuations run. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      let next: Timer | undefined;
      for (const t of this.#timers) if (t.at <= target && (next === undefined || t.at < next.at)) next = t;
      if (next === undefined) break;
      this.#timers.delete(next);
      this.#now = next.at;
      next.fn();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.#now = target;
  }
}
