// A hand-driven SimulatedClock for tests and deterministic harnesses: time moves only in `advance`.
import type { SimulatedClock } from './simulated.js';

interface Timer {
  at: number;
  resolve(): void;
}

export class ManualClock implements SimulatedClock {
  #now: number;
  #timers: Timer[] = [];

  /** `startMs`: the initial reading, ms. */
  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer: Timer = {
        at: this.#now + ms,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#timers = this.#timers.filter((t) => t !== timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#timers.push(timer);
    });
  }

  /** Sleeps not yet due. */
  pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, firing due sleeps in time order and letting each one's continuations run. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      const next = this.#timers.reduce<Timer | undefined>((earliest, t) => (t.at <= target && (earliest === undefined || t.at < earliest.at) ? t : earliest), undefined);
      if (next === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      this.#now = next.at;
      next.resolve();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.#now = target;
  }
}
