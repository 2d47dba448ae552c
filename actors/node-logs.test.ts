// `node.logs`: the node forwards the ask to the worker's `sandbox.logs` service and answers with its outcome.
import test from 'ava';
import type { StepContext } from './actor.js';
import { nodeAddress } from './messages.js';
import { initialNodeState, SANDBOX_LOGS, stepNode, type SandboxLogsInput } from './node.js';

const state = () => initialNodeState({ nodeId: 'n1', capacity: { cpuMilli: 1000, memoryMiB: 1024, slots: 4 }, runtime: 'thread' });
const ctx = (replyTo?: { origin: number; id: number }): StepContext => ({ now: 0, self: nodeAddress('n1'), replyTo, random: () => 0.5 });
const ask = { type: 'node.logs', functionName: 'hello', sinceMs: 1234, tail: 50 } as const;

test('an ask for logs becomes one sandbox.logs call for this node, and its result the reply', (t) => {
  const replyTo = { origin: 2, id: 7 };
  const step = stepNode(state(), ask, ctx(replyTo));
  const [call, ...rest] = step.effects ?? [];
  t.deepEqual(rest, []);
  if (call?.type !== 'call') return t.fail(`expected a call, got ${JSON.stringify(call)}`);
  t.is(call.service, SANDBOX_LOGS);
  t.deepEqual(call.input as SandboxLogsInput, { nodeId: 'n1', functionName: 'hello', sinceMs: 1234, tail: 50 });

  const lines = [{ t: 1300, stream: 'stdout', sandboxId: 's1', nodeId: 'n1', seq: 1, line: 'hi' }];
  const answered = stepNode(step.state, call.then({ ok: true, value: lines }), ctx());
  t.deepEqual(answered.effects, [{ type: 'reply', to: replyTo, value: lines }]);
  const failed = stepNode(step.state, call.then({ ok: false, error: { code: 'WORKER_NOT_STARTED', message: 'stopping' } }), ctx());
  t.deepEqual(failed.effects, [{ type: 'fail', to: replyTo, error: { code: 'WORKER_NOT_STARTED', message: 'stopping' } }]);
});

test('told rather than asked, node.logs has nobody to answer and calls nothing', (t) => {
  const step = stepNode(state(), ask, ctx());
  t.deepEqual(step.effects?.map((e) => e.type), ['log']);
});
