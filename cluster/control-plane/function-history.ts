// The last minutes of each function's counters, for the console's charts: without it a page opened at 3 a.m.
// would chart only what it saw since it opened. The leader samples its functions every SAMPLE_MS (one status
// ask per function; the same read as one GET of the functions view) and keeps HISTORY_MS of samples per
// function; the console's functions view carries them, and the page charts them, then carries on from its
// pushed updates. Time and the timer are injected (tests drive them by hand).

/** Between two samples, ms. */
export const SAMPLE_MS = 5000;
/** How far back the samples go, ms: the page's charts show 5 minutes. */
export const HISTORY_MS = 5 * 60 * 1000;

/** One function at one moment: cumulative invocations and cold starts, and sandboxes ready, in flight and queued requests. */
export interface FunctionSample {
  /** ms since the epoch. */
  readonly t: number;
  readonly invocations: number;
  readonly coldStarts: number;
  readonly ready: number;
  readonly inFlight: number;
  readonly queued: number;
}

export type SampleReader = () => Promise<ReadonlyMap<string, Omit<FunctionSample, 't'>>>;

export interface HistoryTimer {
  every(ms: number, fn: () => void): () => void;
}

export const realTimer: HistoryTimer = {
  every(ms, fn) {
    const timer = setInterval(fn, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
};

export class FunctionHistory {
  private readonly byFunction = new Map<string, FunctionSample[]>();
  private cancel: (() => void) | undefined;
  private reading = false;

  constructor(
    private readonly read: SampleReader,
    private readonly now: () => number = Date.now,
    private readonly timer: HistoryTimer = realTimer,
  ) {}

  start(): void {
    this.cancel ??= this.timer.every(SAMPLE_MS, () => void this.sample());
  }

  stop(): void {
    this.cancel?.();
    this.cancel = undefined;
  }

  /** Takes one sample of every function now; a function gone drops its history. A read that fails is skipped. */
  async sample(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const current = await this.read();
      const t = this.now();
      for (const name of [...this.byFunction.keys()]) if (!current.has(name)) this.byFunction.delete(name);
      for (const [name, values] of current) {
        const samples = this.byFunction.get(name) ?? [];
        samples.push({ t, ...values });
        while (samples.length > 0 && samples[0]!.t < t - HISTORY_MS) samples.shift();
        this.byFunction.set(name, samples);
      }
    } catch {
      // The next sample tries again; a gap in a chart is all this costs.
    } finally {
      this.reading = false;
    }
  }

  /** The function's samples, oldest first (empty for one never sampled). */
  of(name: string): readonly FunctionSample[] {
    return this.byFunction.get(name) ?? [];
  }
}
