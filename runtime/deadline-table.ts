// Values held until they are taken or their deadline passes: an endpoint's pending asks, a worker
// connection's invocations in flight. Deadlines are swept, not timed one by one: one timer, due at the
// earliest deadline and at least `sweepMs` after the previous sweep, so a deadline is noticed at most that
// late. A value due later than the armed timer costs nothing more than its slot: a timer, or a deadline
// index, per request was a visible share of the data plane's CPU (an invocation is due in minutes or hours
// and nearly always answered long before).
import type { Clock, TimerHandle } from './clock.js';
import { SlotTable } from './slot-table.js';

export class DeadlineTable<T extends { readonly deadline: number }> {
  private readonly table = new SlotTable<T>();
  private armed: { readonly at: number; readonly handle: TimerHandle } | undefined;

  constructor(
    /** Deadlines are in this clock's `now()`, ms. */
    private readonly clock: Clock,
    private readonly sweepMs: number,
    /** Gets each value whose deadline passed, once it is out of the table. */
    private readonly expired: (value: T) => void,
  ) {}

  get size(): number {
    return this.table.size;
  }

  /** Holds `value` until taken or past `value.deadline`; answers its id (see SlotTable). */
  add(value: T): number {
    const id = this.table.add(value);
    // Usually a sweep is due already, no later than this deadline allows: nothing to do.
    if (this.armed === undefined || value.deadline < this.armed.at - this.sweepMs) this.arm(value.deadline);
    return id;
  }

  take(id: unknown): T | undefined {
    return this.table.take(id);
  }

  /** Removes every value and answers them; no sweep is left armed. */
  takeAll(): T[] {
    if (this.armed) this.clock.clearTimer(this.armed.handle);
    this.armed = undefined;
    return this.table.takeAll();
  }

  private arm(at: number): void {
    if (this.armed) this.clock.clearTimer(this.armed.handle);
    this.armed = { at, handle: this.clock.setTimer(at - this.clock.now(), this.sweep) };
  }

  private readonly sweep = (): void => {
    // The clock never fires a timer before its time, so every deadline up to the armed one is due.
    const now = this.clock.now();
    this.armed = undefined;
    const due = this.table.takeWhere((value) => value.deadline <= now);
    let next = Infinity;
    for (const value of this.table) if (value.deadline < next) next = value.deadline;
    if (next !== Infinity) this.arm(Math.max(next, now + this.sweepMs));
    // Last: a callback may add a value, which may arm the timer itself.
    for (const value of due) this.expired(value);
  };
}
