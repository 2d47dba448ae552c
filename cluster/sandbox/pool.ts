// Stem cells: a runtime's pool of started, generic sandboxes (OpenWhisk's pre-warmed "stem cell" containers,
// Lambda's provisioned concurrency without the function). A stem has the runtime's harness loaded and no
// function code; a cold start takes one and specialises it, which costs an import instead of a thread or
// process start. A stem is taken once and never comes back: it serves one sandbox of one function for its
// whole life, so nothing of one function can reach another.
//
// A stem is created with the limits it will run under (a worker thread's heap limit is fixed at creation),
// so there is one pool per memory class (MiB); a sandbox of a class without a pool starts fresh.
//
// Refill never competes with serving: one stem starts at a time, and only after `idleDelayMs` without a cold
// start (each cold start, from the pool or fresh, pushes the refill back) nor another stem starting. A burst larger than the pool
// therefore degrades to fresh starts, never to a failure. The idle memory of all stems together stays under
// `capMiB`: before the first stem is measured, the runtime's estimate stands in for it.
//
// Pure bookkeeping over an injected timer and a factory (the runtime's), so tests drive it on a manual clock.
import { DirigentError } from '../../actors/errors.js';

export interface PoolSettings {
  /** Stems kept started per memory class; a class missing here (or with 0) has no pool. */
  readonly sizes: readonly PoolSize[];
  /** Idle memory all stems of this pool may hold together, MiB. */
  readonly capMiB: number;
  /** Quiet time after the last cold start before a refill starts, ms. */
  readonly idleDelayMs?: number;
}

export interface PoolSize {
  /** The memory class: the sandbox memory limit the stems are created with, MiB. */
  readonly memoryMiB: number;
  /** Stems kept started. */
  readonly count: number;
}

export const DEFAULT_IDLE_DELAY_MS = 250;
/** Pause after a stem failed to start, doubled per failure in a row up to MAX_RETRY_MS, ms. */
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;

/** How a runtime starts and ends its stems. */
export interface StemFactory<S> {
  /** Resolves once the stem is started and idle; rejects when it cannot start. */
  start(memoryMiB: number): Promise<S>;
  /** Ends an idle stem (never one that was taken). */
  dispose(stem: S): Promise<void>;
  /** The stem's idle memory as measured once started, MiB. */
  idleMiB(stem: S): number;
  /** Idle memory assumed for a stem before any was measured, MiB. */
  readonly estimateMiB: number;
}

export interface PoolTimer {
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(handle: unknown): void;
}

/** What a pool holds and has served; plain data (it goes into heartbeats). */
export interface PoolStats {
  readonly classes: readonly { readonly memoryMiB: number; readonly target: number; readonly idle: number }[];
  /** Idle memory of the stems held now, MiB (measured). */
  readonly idleMiB: number;
  readonly capMiB: number;
  /** Cold starts that took a stem. */
  readonly fromPool: number;
  /** Cold starts that found none (pool empty, or no pool for their class). */
  readonly fresh: number;
  /** Stems that failed to start. */
  readonly startFailures: number;
}

export class PoolSettingsError extends DirigentError<'INVALID_POOL_SETTINGS'> {
  override name = 'PoolSettingsError';
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super('INVALID_POOL_SETTINGS', message, options);
  }
}

/** Throws naming the first bad field, its value and unit. */
export function validatePoolSettings(settings: PoolSettings): void {
  const bad = (field: string, value: unknown, want: string): never => {
    throw new PoolSettingsError(`pool ${field}=${JSON.stringify(value)} must be ${want}`);
  };
  if (!Array.isArray(settings.sizes)) bad('sizes', settings.sizes, 'a list of { memoryMiB, count }');
  const seen = new Set<number>();
  for (const size of settings.sizes) {
    if (!Number.isInteger(size.memoryMiB) || size.memoryMiB < 1) bad('memoryMiB', size.memoryMiB, 'an integer >= 1 (MiB)');
    if (!Number.isInteger(size.count) || size.count < 0 || size.count > 64) bad(`count (class ${size.memoryMiB} MiB)`, size.count, 'an integer 0..64 (stems)');
    if (seen.has(size.memoryMiB)) bad('memoryMiB', size.memoryMiB, 'given once');
    seen.add(size.memoryMiB);
  }
  if (!Number.isFinite(settings.capMiB) || settings.capMiB < 0) bad('capMiB', settings.capMiB, '>= 0 (MiB)');
  const delay = settings.idleDelayMs ?? DEFAULT_IDLE_DELAY_MS;
  if (!Number.isFinite(delay) || delay < 0) bad('idleDelayMs', delay, '>= 0 (ms)');
}

export class StemPool<S> {
  readonly #targets: ReadonlyMap<number, number>;
  readonly #idle = new Map<number, S[]>();
  readonly #capMiB: number;
  readonly #idleDelayMs: number;
  #timer: unknown;
  /** The one stem starting, if any. */
  #starting: Promise<void> | undefined;
  /** The class of the stem starting, and the cold start that claimed it (it gets the stem, not the pool). */
  #startingClass: number | undefined;
  #claim: ((stem: S | undefined) => void) | undefined;
  #retryMs = 0;
  #measured: number[] = [];
  #fromPool = 0;
  #fresh = 0;
  #startFailures = 0;
  #closed = false;

  constructor(
    settings: PoolSettings,
    private readonly factory: StemFactory<S>,
    private readonly timer: PoolTimer,
    private readonly onChange: () => void = () => undefined,
  ) {
    validatePoolSettings(settings);
    this.#targets = new Map(settings.sizes.filter((s) => s.count > 0).map((s) => [s.memoryMiB, s.count]));
    for (const memoryMiB of this.#targets.keys()) this.#idle.set(memoryMiB, []);
    this.#capMiB = settings.capMiB;
    this.#idleDelayMs = settings.idleDelayMs ?? DEFAULT_IDLE_DELAY_MS;
    this.#arm(this.#idleDelayMs);
  }

  /**
   * A stem of the class for a cold start, or undefined (start one fresh): an idle one, else the one of its class
   * starting (once ready). Either way the refill waits for quiet again. The caller owns a stem it got: it is no
   * longer the pool's.
   */
  take(memoryMiB: number): Promise<S | undefined> {
    const stem = this.#closed ? undefined : this.#idle.get(memoryMiB)?.shift();
    if (stem !== undefined) {
      this.#fromPool += 1;
      this.#coldStart();
      return Promise.resolve(stem);
    }
    // None idle, but one of its class half started: finishing it is sooner than starting another from
    // nothing, and two starts at once would only share the cores.
    if (!this.#closed && this.#startingClass === memoryMiB && this.#claim === undefined) {
      this.#coldStart();
      return new Promise<S | undefined>((resolve) => {
        this.#claim = (claimed) => {
          if (claimed === undefined) this.#fresh += 1;
          else this.#fromPool += 1;
          this.onChange();
          resolve(claimed);
        };
      });
    }
    this.fresh();
    return Promise.resolve(undefined);
  }

  /** A cold start that no stem could serve (its source needs a fresh start): counted, and the refill waits. */
  fresh(): void {
    this.#fresh += 1;
    this.#coldStart();
  }

  #coldStart(): void {
    this.#arm(this.#idleDelayMs);
    this.onChange();
  }

  /** An idle stem died on its own: forget it (a refill replaces it). */
  evict(stem: S): void {
    for (const stems of this.#idle.values()) {
      const at = stems.indexOf(stem);
      if (at === -1) continue;
      stems.splice(at, 1);
      this.#arm(this.#idleDelayMs);
      this.onChange();
      return;
    }
  }

  /** Idle stems now, for a runtime that must reach them all (e.g. to kill them as its host exits). */
  idleStems(): S[] {
    return [...this.#idle.values()].flat();
  }

  stats(): PoolStats {
    const classes = [...this.#targets].map(([memoryMiB, target]) => ({ memoryMiB, target, idle: this.#idle.get(memoryMiB)?.length ?? 0 }));
    return { classes, idleMiB: this.#idleMiB(), capMiB: this.#capMiB, fromPool: this.#fromPool, fresh: this.#fresh, startFailures: this.#startFailures };
  }

  /** Ends every idle stem and the one starting; later `take` calls find none. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#disarm();
    const idle = this.idleStems();
    for (const stems of this.#idle.values()) stems.length = 0;
    await Promise.all([...idle.map((stem) => this.factory.dispose(stem)), this.#starting]);
  }

  #idleMiB(): number {
    let sum = 0;
    for (const stems of this.#idle.values()) for (const stem of stems) sum += this.factory.idleMiB(stem);
    return Math.round(sum * 10) / 10;
  }

  /** Idle memory a stem about to start will hold: the mean measured so far, else the runtime's estimate, MiB. */
  #expectedMiB(): number {
    if (this.#measured.length === 0) return this.factory.estimateMiB;
    return this.#measured.reduce((a, b) => a + b, 0) / this.#measured.length;
  }

  /** The class furthest below its target (ties: the smaller class), if the cap allows one more stem. */
  #next(): number | undefined {
    if (this.#idleMiB() + this.#expectedMiB() > this.#capMiB) return undefined;
    let best: number | undefined;
    let bestDeficit = 0;
    for (const [memoryMiB, target] of this.#targets) {
      const deficit = target - (this.#idle.get(memoryMiB)?.length ?? 0);
      if (deficit > bestDeficit || (deficit === bestDeficit && deficit > 0 && best !== undefined && memoryMiB < best)) {
        best = memoryMiB;
        bestDeficit = deficit;
      }
    }
    return best;
  }

  #arm(delayMs: number): void {
    this.#disarm();
    if (this.#closed || this.#starting !== undefined || this.#next() === undefined) return;
    const waitMs = Math.max(delayMs, this.#retryMs);
    if (waitMs <= 0) return this.#refillOne();
    this.#timer = this.timer.setTimer(waitMs, () => {
      this.#timer = undefined;
      this.#refillOne();
    });
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.timer.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #refillOne(): void {
    const memoryMiB = this.#next();
    if (this.#closed || this.#starting !== undefined || memoryMiB === undefined) return;
    this.#startingClass = memoryMiB;
    const settle = (): ((stem: S | undefined) => void) | undefined => {
      const claim = this.#claim;
      this.#starting = undefined;
      this.#startingClass = undefined;
      this.#claim = undefined;
      return claim;
    };
    this.#starting = this.factory.start(memoryMiB).then(
      async (stem) => {
        const claim = settle();
        this.#retryMs = 0;
        if (this.#closed) {
          claim?.(undefined);
          return this.factory.dispose(stem);
        }
        if (claim !== undefined) {
          claim(stem);
          return this.#arm(this.#idleDelayMs);
        }
        this.#measured = [...this.#measured.slice(-15), this.factory.idleMiB(stem)];
        this.#idle.get(memoryMiB)?.push(stem);
        this.onChange();
        // Paced: starting a stem takes a core for tens of ms, so the next waits a quiet delay too. Measured
        // back to back, a refill after a 15-call burst tripled warm p99 on 2 cores.
        this.#arm(this.#idleDelayMs);
      },
      () => {
        settle()?.(undefined);
        this.#startFailures += 1;
        this.#retryMs = Math.min(MAX_RETRY_MS, this.#retryMs === 0 ? FIRST_RETRY_MS : this.#retryMs * 2);
        this.onChange();
        this.#arm(this.#retryMs);
      },
    );
  }
}
