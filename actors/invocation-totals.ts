// Pure helpers for `InvocationTotals`, the cumulative request counters a data plane's router reports with each
// `as.metric`: the cold-start histogram update (router side), and validation, sums and reset detection
// (autoscaler side).
import { COLD_START_BUCKETS_MS, type InvocationTotals } from './messages.js';

export const EMPTY_TOTALS: InvocationTotals = {
  invocations: 0,
  coldStarts: 0,
  coldStartMsSum: 0,
  coldStartMsBuckets: COLD_START_BUCKETS_MS.map(() => 0).concat(0),
  rejected: {},
};

/** The cumulative bucket counts after one more cold start that waited `queuedMs`. */
export function observeColdStart(buckets: readonly number[], queuedMs: number): number[] {
  const next = buckets.slice();
  while (next.length < COLD_START_BUCKETS_MS.length + 1) next.push(0);
  for (let i = 0; i < next.length; i++) {
    const bound = COLD_START_BUCKETS_MS[i] ?? Infinity;
    if (queuedMs <= bound) next[i] = (next[i] ?? 0) + 1;
  }
  return next;
}

/** Why `value` is not a well-formed `InvocationTotals`, or null when it is. */
export function totalsProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object') return 'not an object';
  const t = value as Partial<Record<keyof InvocationTotals, unknown>>;
  for (const key of ['invocations', 'coldStarts'] as const) {
    if (!isCount(t[key])) return `${key} must be an integer >= 0, got ${JSON.stringify(t[key])}`;
  }
  if (typeof t.coldStartMsSum !== 'number' || !Number.isFinite(t.coldStartMsSum) || t.coldStartMsSum < 0) {
    return `coldStartMsSum must be a number >= 0, got ${JSON.stringify(t.coldStartMsSum)}`;
  }
  if (!Array.isArray(t.coldStartMsBuckets) || t.coldStartMsBuckets.length !== COLD_START_BUCKETS_MS.length + 1 || !t.coldStartMsBuckets.every(isCount)) {
    return `coldStartMsBuckets must be ${COLD_START_BUCKETS_MS.length + 1} integers >= 0`;
  }
  if (t.rejected === null || typeof t.rejected !== 'object' || Array.isArray(t.rejected) || !Object.values(t.rejected).every(isCount)) {
    return 'rejected must map statuses to integers >= 0';
  }
  return null;
}

/** Counter by counter sum. */
export function addTotals(a: InvocationTotals, b: InvocationTotals): InvocationTotals {
  const rejected: Record<string, number> = { ...a.rejected };
  for (const [status, count] of Object.entries(b.rejected)) rejected[status] = (rejected[status] ?? 0) + count;
  const length = Math.max(a.coldStartMsBuckets.length, b.coldStartMsBuckets.length);
  return {
    invocations: a.invocations + b.invocations,
    coldStarts: a.coldStarts + b.coldStarts,
    coldStartMsSum: a.coldStartMsSum + b.coldStartMsSum,
    coldStartMsBuckets: Array.from({ length }, (_, i) => (a.coldStartMsBuckets[i] ?? 0) + (b.coldStartMsBuckets[i] ?? 0)),
    rejected,
  };
}

/** Whether any counter of `next` is below its value in `previous`: the reporter started counting afresh. */
export function isReset(previous: InvocationTotals, next: InvocationTotals): boolean {
  if (next.invocations < previous.invocations || next.coldStarts < previous.coldStarts || next.coldStartMsSum < previous.coldStartMsSum) return true;
  if (previous.coldStartMsBuckets.some((count, i) => (next.coldStartMsBuckets[i] ?? 0) < count)) return true;
  return Object.entries(previous.rejected).some(([status, count]) => (next.rejected[status] ?? 0) < count);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}
