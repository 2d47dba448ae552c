// Scripted scenarios on the in-process cluster harness. Each stores its transcript in
// cluster/harness/transcripts/<name>.txt; `UPDATE_TRANSCRIPTS=1 npm test` rewrites them, and the
// diff is reviewed like code. A transcript reads alone, as raft's testdata files do: each scripted step is a
// `t=<ms> > <step>` line (the harness writes it: register, invoke, advance, tell, ask, kill...), followed by its
// output, one line per delivery, log line or kill, and `# ` lines for what the script read or concluded.
import test from 'ava';
import { autoscalerAddress, functionAddress, nodeAddress, routerAddress, type InvocationOutcome } from '../../actors/messages.js';
import { Harness, tally } from './harness.js';
import { checkTranscript, settle } from './script.js';

test('register: the function spawns its autoscaler and pushes an endpoint snapshot', async (t) => {
  const h = new Harness({ nodes: 2 });
  await h.register({ name: 'hello' });
  await h.advance(1);
  t.true(h.alive(autoscalerAddress('hello')));
  t.true(h.alive(routerAddress('hello')));
  t.is(await h.describe('hello'), 'hello: version=1 active desired=0 creating=0 ready=0 draining=0 endpointVersion=1');
  t.is((await h.nodes()).length, 2);
  checkTranscript(t, 'register', h);
});

test('scale from zero with a backlog of 50: sized by the backlog at once, every request served in FIFO order', async (t) => {
  const h = new Harness({ nodes: 4, createMs: 40 });
  await h.register({ name: 'burst', queueTimeoutMs: 30_000 });
  const outcomes = await settle(h, h.invoke('burst', 50, { holdMs: 10 }), 10);
  h.sim.note(`outcomes ${tally(outcomes)}`);
  t.is(tally(outcomes), '200cx50');
  // Scheduling took one creation (40 ms) plus a hop, not one tick per step as in Dirigent.
  t.true(outcomes.every((o) => o.ok && o.queuedMs <= 60), `queued ms: ${outcomes.map((o) => o.queuedMs).join(',')}`);
  const status = await h.status('burst');
  t.is(status.ready, 50, 'one sandbox per queued request (container concurrency 1)');
  const running = await h.running();
  t.deepEqual(Object.values(running).sort(), [12, 12, 13, 13], 'spread over the four nodes');
  await h.describe('burst');
  checkTranscript(t, 'scale-from-zero', h);
});

test('steady load holds a stable scale; a burst enters panic, never scales down in panic, then leaves it', async (t) => {
  const h = new Harness({ nodes: 4 });
  await h.register({ name: 'steady', queueTimeoutMs: 30_000, scaling: { keepAliveMs: 10_000 } });
  // 5 requests in flight, each held 1 s, for 30 s.
  for (let second = 0; second < 30; second++) {
    void h.invoke('steady', 5, { holdMs: 900 });
    await h.advance(1000);
  }
  const stable = await h.status('steady');
  h.sim.note(`steady: desired=${stable.desired} ready=${stable.ready}`);
  // In flight 90 % of each second at 5: the sampled average is 4.5 +- one sample.
  t.true(stable.desired >= 4 && stable.desired <= 6, `desired ${stable.desired}`);
  // A burst to 40 in flight for 10 s: panic.
  for (let second = 0; second < 10; second++) {
    void h.invoke('steady', 40, { holdMs: 900 });
    await h.advance(1000);
  }
  const burst = await h.ask<{ panic: boolean; desired: number }>(autoscalerAddress('steady'), { type: 'as.status' });
  h.sim.note(`burst: panic=${burst.panic} desired=${burst.desired}`);
  t.true(burst.panic);
  t.true(burst.desired >= 40);
  // Back to 5 in flight: panic holds the scale for a stable window, then ends.
  let lowest = burst.desired;
  for (let second = 0; second < 58; second++) {
    void h.invoke('steady', 5, { holdMs: 900 });
    await h.advance(1000);
    const s = await h.ask<{ panic: boolean; desired: number }>(autoscalerAddress('steady'), { type: 'as.status' });
    if (s.panic) lowest = Math.min(lowest, s.desired);
  }
  t.is(lowest, burst.desired, 'no decrease while in panic');
  for (let second = 0; second < 10; second++) {
    void h.invoke('steady', 5, { holdMs: 900 });
    await h.advance(1000);
  }
  const after = await h.ask<{ panic: boolean; desired: number }>(autoscalerAddress('steady'), { type: 'as.status' });
  h.sim.note(`after: panic=${after.panic} desired=${after.desired}`);
  t.false(after.panic);
  t.true(after.desired < burst.desired);
  checkTranscript(t, 'steady-and-panic', h);
});

test('scale to zero only after the keep-alive; every sandbox drained and deleted', async (t) => {
  const h = new Harness({ nodes: 2 });
  await h.register({ name: 'idle', scaling: { keepAliveMs: 90_000 } });
  await settle(h, h.invoke('idle', 3, { holdMs: 500 }));
  t.is((await h.status('idle')).ready, 3);
  await h.advance(80_000);
  t.true((await h.status('idle')).ready >= 1, 'kept alive before keepAliveMs');
  await h.advance(30_000);
  const status = await h.status('idle');
  await h.describe('idle');
  t.is(status.ready + status.creating + status.draining, 0);
  t.deepEqual(await h.running(), { n1: 0, n2: 0 });
  checkTranscript(t, 'scale-to-zero', h);
});

test('node failure: missed heartbeats mark the node dead and its sandboxes are recreated elsewhere', async (t) => {
  const h = new Harness({ nodes: 3 });
  await h.register({ name: 'sturdy', scaling: { minScale: 6 } });
  h.tell(functionAddress('sturdy'), { type: 'fn.scale', desired: 6, reason: 'script' });
  await h.advance(100);
  t.deepEqual(await h.running(), { n1: 2, n2: 2, n3: 2 });
  h.kill(nodeAddress('n1'));
  await h.advance(25_000);
  const nodes = await h.nodes();
  t.false(nodes.find((n) => n.nodeId === 'n1')!.alive);
  t.is((await h.status('sturdy')).ready, 6);
  t.deepEqual(await h.running(), { n2: 3, n3: 3 });
  const outcomes = await settle(h, h.invoke('sturdy', 6));
  t.is(tally(outcomes), '200x6');
  await h.describe('sturdy');
  checkTranscript(t, 'node-failure', h);
});

test('sandbox crash: the data plane fails the request with 502, drops the sandbox, and the function replaces it', async (t) => {
  const h = new Harness({ nodes: 2 });
  await h.register({ name: 'crashy', scaling: { minScale: 2 } });
  h.tell(functionAddress('crashy'), { type: 'fn.scale', desired: 2, reason: 'script' });
  await h.advance(100);
  const [first] = (await h.status('crashy')).sandboxes;
  h.breakSandbox(first!.sandboxId);
  // The worker notices too: its runtime reports the crash to the node actor.
  h.tell(nodeAddress(first!.nodeId), { type: 'node.sandboxFailed', sandboxId: first!.sandboxId, reason: 'exit code 137' });
  await h.advance(100);
  const status = await h.status('crashy');
  t.is(status.ready, 2);
  t.false(status.sandboxes.some((s) => s.sandboxId === first!.sandboxId));
  await h.describe('crashy');
  checkTranscript(t, 'sandbox-crash', h);
});

test('deregistration: every sandbox is deleted, the function and its autoscaler stop, requests get 404', async (t) => {
  const h = new Harness({ nodes: 2 });
  await h.register({ name: 'gone' });
  await settle(h, h.invoke('gone', 4, { holdMs: 100 }));
  t.is((await h.status('gone')).ready, 4);
  await h.ask(functionAddress('gone'), { type: 'fn.delete' });
  await h.advance(5000);
  t.false(h.alive(functionAddress('gone')));
  t.false(h.alive(autoscalerAddress('gone')));
  t.deepEqual(await h.running(), { n1: 0, n2: 0 });
  t.true((await h.nodes()).every((n) => n.allocated.slots === 0));
  const outcomes = await settle(h, h.invoke('gone', 1));
  t.is(tally(outcomes), '404x1');
  checkTranscript(t, 'deregistration', h);
});

test('a function whose sandboxes cannot start: requests get 503 with the cause at once, creation backs off, an update that fixes it serves', async (t) => {
  const h = new Harness({ nodes: 2, createMs: 20 });
  await h.register({ name: 'broken', queueTimeoutMs: 10_000 });
  h.failCreation('broken', "cannot load the module: SyntaxError: Unexpected token '}'");
  const first = await settle(h, h.invoke('broken', 3), 10);
  t.is(tally(first), '503x3');
  t.true(first.every((o) => !o.ok && o.code === 'FUNCTION_FAILED' && o.queuedMs <= 100), JSON.stringify(first));
  t.regex(first[0]!.ok ? '' : first[0]!.message, /cannot start: SANDBOX_CREATE_FAILED: cannot load the module: SyntaxError/);
  h.sim.note(`first answers ${tally(first)} after ${Math.max(...first.map((o) => o.queuedMs))} ms`);
  const attemptsAtFirst = h.creations.get('broken') ?? 0;
  // A minute of a request every 5 s: each answered at once, and a few creation attempts (10 s, then 20 s, 40 s later).
  const during: InvocationOutcome[] = [];
  for (let second = 0; second < 60; second += 5) {
    during.push(...(await settle(h, h.invoke('broken', 1), 10)));
    await h.advance(5000);
  }
  t.is(tally(during), '503x12');
  t.true(during.every((o) => o.queuedMs === 0));
  const attempts = (h.creations.get('broken') ?? 0) - attemptsAtFirst;
  h.sim.note(`creation attempts in the minute after: ${attempts}`);
  t.true(attempts >= 1 && attempts <= 6, `${attempts} creation attempts in a minute`);
  const failed = await h.status('broken');
  t.like(failed, { state: 'failed' });
  t.true(failed.failures!.count >= 2 && failed.failures!.backoffMs >= 20_000, JSON.stringify(failed.failures));
  await h.describe('broken');

  // Fixed by an update (a new source): the backoff is over at once.
  h.failCreation('broken', undefined);
  await h.update('broken', { source: { kind: 'builtin', workload: 'empty' } });
  const fixed = await settle(h, h.invoke('broken', 1), 10);
  t.is(tally(fixed, true), '200cv2x1');
  t.like(await h.status('broken'), { state: 'active', failures: null, version: 2 });
  await h.describe('broken');
  checkTranscript(t, 'broken-function', h);
});

test('an update rolls out: new sandboxes of the new version, each ready one drains an old one; scaling-only updates restart nothing', async (t) => {
  const h = new Harness({ nodes: 2, createMs: 30 });
  await h.register({ name: 'roll', scaling: { minScale: 2 } });
  h.tell(functionAddress('roll'), { type: 'fn.scale', desired: 2, reason: 'script' });
  await h.advance(100);
  t.is(tally(await settle(h, h.invoke('roll', 2), 10), true), '200v1x2');
  const old = (await h.status('roll')).sandboxes.map((s) => s.sandboxId);

  await h.update('roll', { scaling: { maxScale: 4 } });
  await h.advance(100);
  t.like(await h.status('roll'), { version: 1, state: 'active', ready: 2 });
  t.deepEqual((await h.status('roll')).sandboxes.map((s) => s.sandboxId), old, 'nothing restarted');

  await h.update('roll', { memoryMiB: 256 });
  t.like(await h.status('roll'), { version: 3, state: 'updating', outdated: 2 });
  // While the new ones start, the old ones serve.
  t.is(tally(await settle(h, h.invoke('roll', 1), 10), true), '200v1x1');
  await h.advance(100);
  const done = await h.status('roll');
  t.like(done, { version: 3, state: 'active', outdated: 0, ready: 2 });
  t.false(done.sandboxes.some((s) => old.includes(s.sandboxId)), 'the old sandboxes are drained and deleted');
  t.deepEqual(await h.running(), { n1: 1, n2: 1 });
  t.is(tally(await settle(h, h.invoke('roll', 4), 10), true), '200v3x4');
  await h.describe('roll');
  checkTranscript(t, 'rollout', h);
});
