// A function's output as `dirigent logs` shows it: lines a sandbox wrote on stdout or stderr, kept in a
// bounded ring per sandbox on its worker, read through the node actor and merged by time on the control
// plane. Pure: the line shape, the bounds the admin API and the CLI share, the merge, and the cursor that a
// follower uses to take each line once.

export type LogStream = 'stdout' | 'stderr';

/** One line of a sandbox's output, as it crosses threads and processes (plain data). */
export interface SandboxLogLine {
  /** When the line was written, ms since the Unix epoch (the worker's wall clock). */
  readonly t: number;
  readonly stream: LogStream;
  readonly sandboxId: string;
  readonly nodeId: string;
  /** Position in its sandbox's output, from 1: tells apart lines of one sandbox written in the same ms. */
  readonly seq: number;
  /** Without the line break; cut at the ring's line bound. */
  readonly line: string;
}

/** Most lines one logs request answers (`tail`), lines: the bound of the admin API and of `dirigent logs --tail`. */
export const LOG_TAIL_LIMIT: Readonly<{ min: number; max: number; unit: string }> = Object.freeze({ min: 1, max: 10_000, unit: 'lines' });

/** `tail` within LOG_TAIL_LIMIT; anything but a number there (absent, NaN) is the most there is. */
export function clampTail(tail: number | undefined): number {
  if (tail === undefined || !Number.isFinite(tail)) return LOG_TAIL_LIMIT.max;
  return Math.min(Math.max(Math.trunc(tail), LOG_TAIL_LIMIT.min), LOG_TAIL_LIMIT.max);
}

/** Time order; lines of one ms in a stable order (node, sandbox, position), so a merge is deterministic. */
export function compareLogLines(a: SandboxLogLine, b: SandboxLogLine): number {
  if (a.t !== b.t) return a.t - b.t;
  if (a.nodeId !== b.nodeId) return a.nodeId < b.nodeId ? -1 : 1;
  if (a.sandboxId !== b.sandboxId) return a.sandboxId < b.sandboxId ? -1 : 1;
  return a.seq - b.seq;
}

/** Merges the nodes' answers by time and keeps the newest `tail` lines. */
export function mergeLogLines(lists: readonly (readonly SandboxLogLine[])[], tail: number): SandboxLogLine[] {
  const merged = lists.flat().sort(compareLogLines);
  return merged.length > tail ? merged.slice(merged.length - tail) : merged;
}

/**
 * Where a follower is: it asks for lines written at or after `sinceMs` (inclusive, since a later line may
 * share the last ms it saw) and drops the ones it already took at that ms.
 */
export interface LogCursor {
  readonly sinceMs: number;
  /** `sandboxId/seq` of the lines taken whose `t` is `sinceMs`. */
  readonly seenAtSince: readonly string[];
}

export const logCursorFrom = (sinceMs: number): LogCursor => ({ sinceMs, seenAtSince: [] });

/** The lines of `lines` (merged, in time order) not taken yet, and the cursor after them. */
export function advanceLogCursor(cursor: LogCursor, lines: readonly SandboxLogLine[]): { readonly fresh: SandboxLogLine[]; readonly cursor: LogCursor } {
  const seen = new Set(cursor.seenAtSince);
  const fresh = lines.filter((l) => l.t > cursor.sinceMs || (l.t === cursor.sinceMs && !seen.has(logLineKey(l))));
  const last = fresh.at(-1);
  if (last === undefined) return { fresh, cursor };
  const atLast = fresh.filter((l) => l.t === last.t).map(logLineKey);
  return { fresh, cursor: { sinceMs: last.t, seenAtSince: last.t === cursor.sinceMs ? [...cursor.seenAtSince, ...atLast] : atLast } };
}

const logLineKey = (l: SandboxLogLine): string => `${l.sandboxId}/${l.seq}`;
