import test from 'ava';
import { advanceLogCursor, clampTail, LOG_TAIL_LIMIT, logCursorFrom, mergeLogLines, type SandboxLogLine } from './sandbox-logs.js';

const line = (t: number, nodeId: string, sandboxId: string, seq: number, text = `${sandboxId}#${seq}`): SandboxLogLine => ({ t, stream: 'stdout', sandboxId, nodeId, seq, line: text });

test('merge orders by time, then node, sandbox and position, and keeps the newest tail', (t) => {
  const w1 = [line(10, 'w1', 'a', 1), line(30, 'w1', 'a', 2), line(30, 'w1', 'a', 3)];
  const w2 = [line(20, 'w2', 'b', 1), line(30, 'w2', 'b', 2)];
  const w0 = [line(30, 'w0', 'c', 7)];
  t.deepEqual(mergeLogLines([w1, w2, w0], 100).map((l) => l.line), ['a#1', 'b#1', 'c#7', 'a#2', 'a#3', 'b#2']);
  t.deepEqual(mergeLogLines([w2, w1, w0], 2).map((l) => l.line), ['a#3', 'b#2'], 'the same whatever order the nodes answered in');
  t.deepEqual(mergeLogLines([], 5), []);
});

test('a follower takes each line once, including later lines written in the ms it saw last', (t) => {
  let cursor = logCursorFrom(0);
  const first = advanceLogCursor(cursor, [line(5, 'w1', 'a', 1), line(9, 'w1', 'a', 2)]);
  t.deepEqual(first.fresh.map((l) => l.line), ['a#1', 'a#2']);
  cursor = first.cursor;
  t.deepEqual(cursor, { sinceMs: 9, seenAtSince: ['a/2'] });
  // The next read asks from ms 9 inclusive: a#2 comes again and is dropped, b#1 (same ms) is new.
  const second = advanceLogCursor(cursor, [line(9, 'w1', 'a', 2), line(9, 'w2', 'b', 1)]);
  t.deepEqual(second.fresh.map((l) => l.line), ['b#1']);
  t.deepEqual(second.cursor, { sinceMs: 9, seenAtSince: ['a/2', 'b/1'] });
  const third = advanceLogCursor(second.cursor, [line(9, 'w1', 'a', 2), line(9, 'w2', 'b', 1), line(12, 'w1', 'a', 3)]);
  t.deepEqual(third.fresh.map((l) => l.line), ['a#3']);
  t.deepEqual(third.cursor, { sinceMs: 12, seenAtSince: ['a/3'] });
  const quiet = advanceLogCursor(third.cursor, [line(12, 'w1', 'a', 3)]);
  t.deepEqual(quiet.fresh, []);
  t.is(quiet.cursor, third.cursor, 'nothing new leaves the cursor as it was');
});

test('tail is clamped to the shared bound; anything but a number is the most', (t) => {
  t.is(clampTail(undefined), LOG_TAIL_LIMIT.max);
  t.is(clampTail(Number.NaN), LOG_TAIL_LIMIT.max);
  t.is(clampTail(0), LOG_TAIL_LIMIT.min);
  t.is(clampTail(10 ** 9), LOG_TAIL_LIMIT.max);
  t.is(clampTail(12.7), 12);
});
