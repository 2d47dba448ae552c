import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import type { Harness } from './harness.js';
import { checkTranscript } from './script.js';

test('a missing transcript fails its test and writes nothing (UPDATE_TRANSCRIPTS=1 writes it)', (t) => {
  const failures: string[] = [];
  const recorder = { fail: (message: string) => failures.push(message), is: () => t.fail('compared with a file that does not exist'), log: () => undefined } as unknown as ExecutionContext;
  const harness = { sim: { transcript: ['t=0 # a step'] } } as unknown as Harness;
  const previous = process.env.UPDATE_TRANSCRIPTS;
  delete process.env.UPDATE_TRANSCRIPTS;
  try {
    checkTranscript(recorder, 'no-such-scenario', harness);
  } finally {
    if (previous !== undefined) process.env.UPDATE_TRANSCRIPTS = previous;
  }
  t.is(failures.length, 1);
  t.regex(failures[0]!, /transcript no-such-scenario is missing .*UPDATE_TRANSCRIPTS=1/);
  t.false(existsSync(new URL('../../../cluster/harness/transcripts/no-such-scenario.txt', import.meta.url)));
});
