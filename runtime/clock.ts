// The clock port. This is the only file that reads the real clock: everything else takes a Clock,
// so tests can run on a ManualClock and scripted time.
import { performance } from 'node:perf_hooks';

export interface TimerHandle {
  readonly id: number;
}

export interface Clock {
  /** Milliseconds since an arbitrary epoch (wall time for RealClock, 0-based for ManualClock). */
  now(): number;
  /** Run `fn` once, no earlier than `now() + ms`. */
  setTimer(ms: number, fn: () => void): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

/** Monotonic microseconds, for measuring processing time in stats (never for behaviour). */
export function monotonicUs(): number {
  return performance.now() * 1000;
}

/**
 * Monotonic milliseconds on one clock for every thread of the process (performance.now counts from each
 * thread's own start): for deadlines one thread sets and another checks.
 */
export function processMonotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * Wall time in ms with sub-ms precision, comparable across the threads of a process (each thread's
 * performance.now() counts from its own start, timeOrigin says when that was): for step traces, never behaviour.
 */
export function epochMsPrecise(): number {
  return performance.timeOrigin + performance.now();
}

export interface RealClockOptions {
  /** Monotonic time (performance.now, from thread start) instead of wall time. */
  readonly monotonic?: boolean;
  /** Timers do not keep the thread alive: for deadlines of I/O that keeps it alive itself. */
  readonly unref?: boolean;
}

/** setTimeout's longest delay, ms (a longer one fires at once); a timer due later fires this early. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class RealClock implements Clock {
  /** Pending timers by id: a setTimeout, or a setImmediate for a 0 ms timer. */
  private readonly timers = new Map<number, NodeJS.Timeout | NodeJS.Immediate>();
  private nextId = 1;

  constructor(private readonly options: RealClockOptions = {}) {}

  now(): number {
    return this.options.monotonic ? performance.now() : Date.now();
  }

  /**
   * Never fires before `now() + ms`. setTimeout alone can: it measures from libuv's loop time, which is
   * truncated to whole ms, so a 30 ms timer may run 29.1 ms after it was set by `now()` (seen as a `trace`
   * hold of requested_cpu 30 reporting ExecutionTime 29 000 us). A timer that fires early is armed again for
   * the rest. A 0 ms timer ("after this turn", as the router's backlog report) is a setImmediate: it runs once
   * the turn's I/O is handled, where setTimeout(0) waits at least 1 ms (1.0-1.6 ms measured on a cold start).
   */
  setTimer(ms: number, fn: () => void): TimerHandle {
    const id = this.nextId++;
    const delayMs = Math.min(MAX_TIMER_MS, Math.max(0, ms));
    if (delayMs === 0) {
      const immediate = setImmediate(() => {
        this.timers.delete(id);
        fn();
      });
      if (this.options.unref) immediate.unref();
      this.timers.set(id, immediate);
      return { id };
    }
    const due = this.now() + delayMs;
    const arm = (afterMs: number) => {
      const timeout = setTimeout(() => {
        const leftMs = due - this.now();
        if (leftMs > 0) return arm(leftMs);
        this.timers.delete(id);
        fn();
      }, afterMs);
      if (this.options.unref) timeout.unref();
      this.timers.set(id, timeout);
    };
    arm(delayMs);
    return { id };
  }

  clearTimer(handle: TimerHandle): void {
    const timer = this.timers.get(handle.id);
    if (timer !== undefined) {
      clear(timer);
      this.timers.delete(handle.id);
    }
  }

  /** Cancel every pending timer (used at shutdown so no handle keeps the thread alive). */
  clearAll(): void {
    for (const timer of this.timers.values()) clear(timer);
    this.timers.clear();
  }
}

function clear(timer: NodeJS.Timeout | NodeJS.Immediate): void {
  // Only a Timeout can be refreshed.
  if ('refresh' in timer) clearTimeout(timer);
  else clearImmediate(timer);
}

interface ManualTimer {
  readonly id: number;
  readonly due: number;
  readonly fn: () => void;
}

/** Time moves only when `advance` is called; due timers fire in due-time order, ties in creation order. */
export class ManualClock implements Clock {
  private current: number;
  private readonly timers = new Map<number, ManualTimer>();
  private nextId = 1;

  constructor(start = 0) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const timer = { id: this.nextId++, due: this.current + Math.max(0, ms), fn };
    this.timers.set(timer.id, timer);
    return { id: timer.id };
  }

  clearTimer(handle: TimerHandle): void {
    this.timers.delete(handle.id);
  }

  clearAll(): void {
    this.timers.clear();
  }

  /** Move time forward by `ms`, firing every timer that falls due on the way (including ones set by timers). */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.timers.values()) {
        if (t.due <= target && (next === undefined || t.due < next.due || (t.due === next.due && t.id < next.id))) next = t;
      }
      if (next === undefined) break;
      const fired = next;
      this.timers.delete(fired.id);
      this.current = Math.max(this.current, fired.due);
      fired.fn();
    }
    this.current = target;
  }

  /** Due time of the earliest pending timer, ms; undefined when none. */
  nextDue(): number | undefined {
    let due: number | undefined;
    for (const t of this.timers.values()) if (due === undefined || t.due < due) due = t.due;
    return due;
  }

  pendingTimers(): number {
    return this.timers.size;
  }
}
