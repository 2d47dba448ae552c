// What the scenario files share: the stored-transcript check and settling invocations on the manual clock.
import type { ExecutionContext } from 'ava';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { InvocationOutcome } from '../../actors/messages.js';
import type { Harness } from './harness.js';

const transcripts = new URL('../../../cluster/harness/transcripts/', import.meta.url);

/**
 * Compares the harness's transcript (steps `> ...` interleaved with their output) with `transcripts/<name>.txt`;
 * `UPDATE_TRANSCRIPTS=1` writes it instead, and the diff is reviewed like code. A missing file fails: a lost transcript must not turn the test into one that
 * cannot fail.
 */
export function checkTranscript(t: ExecutionContext, name: string, harness: Harness): void {
  const file = new URL(`${name}.txt`, transcripts);
  const actual = `${harness.sim.transcript.join('\n')}\n`;
  if (process.env.UPDATE_TRANSCRIPTS === '1') {
    mkdirSync(transcripts, { recursive: true });
    writeFileSync(file, actual);
    t.log(`wrote ${file.pathname}`);
    return;
  }
  if (!existsSync(file)) {
    t.fail(`transcript ${name} is missing (${file.pathname}); run with UPDATE_TRANSCRIPTS=1 to write it, then review it`);
    return;
  }
  t.is(actual, readFileSync(file, 'utf8'), `transcript ${name} changed; rerun with UPDATE_TRANSCRIPTS=1 and review the diff`);
}

/** Advances the clock by `stepMs` until every invocation has an outcome (or `limitMs` passed), then returns them. */
export async function settle(harness: Harness, pending: Promise<InvocationOutcome>[], stepMs = 100, limitMs = 120_000): Promise<InvocationOutcome[]> {
  harness.sim.command(`settle ${pending.length} invocation(s), advancing ${stepMs} ms at a time`);
  let done = 0;
  pending.forEach((p) => p.then(() => (done += 1), () => (done += 1)));
  let waited = 0;
  for (; done < pending.length && waited < limitMs; waited += stepMs) await harness.sim.advance(stepMs);
  harness.sim.note(`${done} of ${pending.length} settled after ${waited} ms`);
  return Promise.all(pending);
}
