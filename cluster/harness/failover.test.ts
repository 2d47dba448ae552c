// Scripted leader changes on the in-process cluster harness (harness.ts `killLeader` and `failover`, which
// mirror ControlPlane.reconstruct): a leader killed mid-scale-up, an old leader partitioned while a new one is
// elected, a worker lost during the reconstruction, a data plane lost while a sandbox drains. Each asserts its
// invariants and stores its transcript in cluster/harness/transcripts/failover-*.txt.
import test from 'ava';
import { routingConfigOf, sandboxTemplateOf } from '../../actors/function.js';
import { functionAddress, nodeAddress, routerAddress, type Endpoint, type FunctionStatus, type RouterStatus } from '../../actors/messages.js';
import { Harness, tally } from './harness.js';
import { checkTranscript, settle } from './script.js';

const idsIn = (status: FunctionStatus, phase: string): string[] => status.sandboxes.filter((s) => s.phase === phase).map((s) => s.sandboxId);

/** Every sandbox the nodes hold, whatever its phase, sorted. */
function runningIds(h: Harness): string[] {
  return Object.values(h.onNodes())
    .flat()
    .map((s) => s.sandboxId)
    .sort();
}

/** Sandbox ids the router routes to (serving), sorted. */
function routedIds(h: Harness, name: string): string[] {
  return (h.router(name)?.sandboxes ?? [])
    .filter((slot) => slot.phase.kind === 'serving')
    .map((slot) => slot.endpoint.sandboxId)
    .sort();
}

function repeated(ids: readonly string[]): string[] {
  return ids.filter((id, i) => ids.indexOf(id) !== i);
}

test('leader killed mid-scale-up: finished sandboxes adopted under their ids, the queue served by the new leader', async (t) => {
  // n3 creates slowly: when the leader dies, n1's and n2's sandboxes are ready and n3's are still creating.
  const h = new Harness({ nodes: 3, createMs: 40, nodeCreateMs: { n3: 400 } });
  await h.register({ name: 'surge', queueTimeoutMs: 30_000 });
  const pending = h.invoke('surge', 12, { holdMs: 5000 });
  await h.advance(100);
  const before = await h.status('surge');
  const finished = idsIn(before, 'ready');
  t.is(finished.length, 8, 'n1 and n2 finished creating');
  t.is(idsIn(before, 'creating').length, 4, 'n3 still creating');
  t.is(h.router('surge')?.queue.length, 4, '4 requests queued for the sandboxes still creating');

  h.killLeader();
  const report = await h.failover({ term: 2 });
  t.deepEqual(report.missing, []);
  const after = await h.status('surge');
  h.sim.note(`adopted: ${idsIn(after, 'ready').join(' ')}`);
  t.deepEqual(idsIn(after, 'ready').sort(), [...finished].sort(), 'adopted under their existing ids, ready at once');
  t.is(after.creating, 0);
  t.deepEqual(routedIds(h, 'surge'), [...finished].sort(), 'the first snapshot of term 2 routes to exactly what runs');

  const outcomes = await settle(h, pending);
  h.sim.note(`outcomes ${tally(outcomes)}; queued ms ${outcomes.map((o) => o.queuedMs).join(',')}`);
  t.is(tally(outcomes), '200cx12', 'the queued requests are served once the new leader scales');
  t.true(outcomes.every((o) => o.queuedMs < 30_000));
  // No sandbox was created twice; the new leader created only the 4 the queue still needed.
  t.deepEqual(repeated(h.created), []);
  t.is(h.created.filter((id) => id.startsWith('surge-2-')).length, 4);

  await h.advance(5000);
  const final = await h.status('surge');
  await h.describe('surge');
  // n3's creations of term 1 finished after the listing: unknown to the new leader, they were deleted.
  t.deepEqual(runningIds(h), final.sandboxes.map((s) => s.sandboxId).sort(), 'nothing runs that the function does not want');
  t.is(final.ready, 12);
  t.is((await h.nodes()).reduce((sum, n) => sum + n.allocated.slots, 0), 12, 'the scheduler accounts exactly what runs');
  t.is(h.router('surge')?.highestTerm, 2);
  t.like(h.router('surge')?.phase, { kind: 'known', term: 2 });
  t.deepEqual(routedIds(h, 'surge'), idsIn(final, 'ready').sort());
  checkTranscript(t, 'failover-mid-scale-up', h);
});

test('old leader partitioned while a new one is elected: its late term-1 commands are refused by nodes and ignored by the router', async (t) => {
  const h = new Harness({ nodes: 2 });
  const spec = await h.register({ name: 'fenced', scaling: { minScale: 2 } });
  await h.advance(100);
  const [a, b] = (await h.status('fenced')).sandboxes;
  t.truthy(a && b);
  // The old leader is cut off: to the rest of the cluster it simply stops talking. A new one is elected.
  h.killLeader('partitioned');
  await h.failover({ term: 2 });
  const nodesBefore = h.onNodes();
  const routerBefore = await h.ask<RouterStatus>(routerAddress('fenced'), { type: 'rt.status' });
  t.is(routerBefore.endpoints, 2);

  // What the old leader sent before it learnt it was deposed arrives now: a scale-up, a scale-down, and the
  // endpoint updates that go with them, then its deregistration.
  h.sim.note('late commands of the old leader (term 1) arrive');
  const oldLeader = functionAddress('fenced');
  h.tell(nodeAddress('n1'), { type: 'node.create', term: 1, sandboxId: 'fenced-1-2', template: sandboxTemplateOf(spec) }, oldLeader);
  h.tell(nodeAddress(a!.nodeId), { type: 'node.delete', term: 1, sandboxId: a!.sandboxId }, oldLeader);
  const ghost: Endpoint = { sandboxId: 'fenced-1-2', nodeId: 'n1', address: 'n1.local:7000', concurrency: 1, version: 1 };
  h.tell(routerAddress('fenced'), { type: 'rt.delta', term: 1, functionName: 'fenced', version: 3, add: [ghost], remove: [a!.sandboxId] }, oldLeader);
  h.tell(routerAddress('fenced'), { type: 'rt.snapshot', term: 1, snapshot: { functionName: 'fenced', version: 9, endpoints: [ghost], routing: routingConfigOf(spec), failure: null } }, oldLeader);
  h.tell(routerAddress('fenced'), { type: 'rt.deleted', term: 1, functionName: 'fenced' }, oldLeader);
  await h.advance(1000);

  const lines = h.sim.transcript;
  t.is(lines.filter((l) => l.includes('refused: term 1 is older than 2')).length, 2, 'each node command is refused, and says so');
  t.is(lines.filter((l) => /router:fenced.* log debug: ignored rt\.(delta|snapshot|deleted) of term 1 < 2/.test(l)).length, 3, 'each router update is ignored, and says so');
  t.deepEqual(h.onNodes(), nodesBefore, "nodes' sandboxes unchanged");
  t.deepEqual(await h.ask<RouterStatus>(routerAddress('fenced'), { type: 'rt.status' }), routerBefore, 'router endpoint set and version unchanged');
  t.is(h.router('fenced')?.highestTerm, 2);
  t.like(h.router('fenced')?.phase, { kind: 'known', term: 2 });
  const status = await h.status('fenced');
  t.is(status.ready, 2);
  const outcomes = await settle(h, h.invoke('fenced', 2, { holdMs: 10 }));
  t.is(tally(outcomes), '200x2');
  t.deepEqual(outcomes.map((o) => (o.ok ? o.sandboxId : '')).sort(), [a!.sandboxId, b!.sandboxId].sort(), 'served by the adopted sandboxes, never by the ghost');
  await h.describe('fenced');
  checkTranscript(t, 'failover-old-leader-partitioned', h);
});

test('worker lost during reconstruction: the leader serves after the bound, min-scale is restored elsewhere, the stale sandboxes are adopted and trimmed', async (t) => {
  const h = new Harness({ nodes: 3 });
  await h.register({ name: 'sturdy', scaling: { minScale: 6, stableWindowMs: 10_000 } });
  await h.advance(100);
  t.deepEqual(await h.running(), { n1: 2, n2: 2, n3: 2 });
  const onN3 = (await h.status('sturdy')).sandboxes.filter((s) => s.nodeId === 'n3').map((s) => s.sandboxId);

  h.killLeader();
  h.partition('n3');
  const started = h.sim.now();
  const report = await h.failover({ term: 2, listTimeoutMs: 3000 });
  t.deepEqual(report.missing, ['n3']);
  t.is(h.sim.now() - started, 3000, 'the leader waited for n3 up to the bound, then served');
  t.is(report.reports.length, 4);
  await h.advance(100);
  // The hold blocks scale-down only: min-scale brings n3's share back on n1 and n2 at once.
  const serving = await h.status('sturdy');
  t.is(serving.ready, 6);
  t.false(serving.sandboxes.some((s) => s.nodeId === 'n3'), 'nothing placed on the unreachable node');
  const placedOn = (nodeId: string): number => (h.onNodes()[nodeId] ?? []).length;
  t.deepEqual([placedOn('n1'), placedOn('n2'), placedOn('n3')], [3, 3, 2], "n3 still runs its stale pair, out of the leader's sight");
  const outcomes = await settle(h, h.invoke('sturdy', 6, { holdMs: 10 }));
  t.is(tally(outcomes), '200x6');

  await h.advance(5000);
  const stale = await h.reconnect('n3');
  t.deepEqual(stale.map((r) => r.sandboxId).sort(), [...onN3].sort());
  const adopted = await h.status('sturdy');
  await h.describe('sturdy');
  t.is(adopted.ready, 8, "n3's sandboxes are adopted under their ids, not created again");
  t.true(onN3.every((id) => adopted.sandboxes.some((s) => s.sandboxId === id && s.phase === 'ready')));
  t.deepEqual(routedIds(h, 'sturdy'), idsIn(adopted, 'ready').sort());
  t.deepEqual(repeated(h.created), [], 'no sandbox created twice');
  // The extra pair lives while the new leader's scale-down hold lasts (one stable window from its start):
  // meanwhile the function knows everything that runs and never runs more than it wants; the first decision
  // after the hold trims back to min-scale.
  const holdEnds = started + 3000 + 10_000;
  let extraUntil = h.sim.now();
  while (h.sim.now() < holdEnds + 4000) {
    await h.advance(500);
    const fn = h.functionState('sturdy')!;
    const live = fn.counts.ready + fn.counts.creating;
    t.deepEqual(runningIds(h), [...fn.sandboxes.keys()].sort(), `t=${h.sim.now()}: a sandbox runs that the function does not know`);
    t.true(live <= fn.desired, `t=${h.sim.now()}: ${live} live, desired ${fn.desired}`);
    if (live > 6) extraUntil = h.sim.now();
  }
  h.sim.note(`more than min-scale last seen at t=${extraUntil}; the hold ended at t=${holdEnds}`);
  t.true(extraUntil < holdEnds + 2000, 'trimmed by the first autoscaler tick after the hold');
  const trimmed = await h.status('sturdy');
  await h.describe('sturdy');
  t.is(trimmed.ready, 6);
  t.is(trimmed.desired, 6);
  t.deepEqual(runningIds(h), trimmed.sandboxes.map((s) => s.sandboxId).sort(), 'nothing runs that the function does not want');
  t.is((await h.nodes()).reduce((sum, n) => sum + n.allocated.slots, 0), 6);
  checkTranscript(t, 'failover-worker-lost', h);
});

test('data plane lost while a sandbox drains: the function stops waiting for it, and a data plane that comes back is resynced and serves', async (t) => {
  const h = new Harness({ nodes: 2 });
  await h.register({ name: 'drainy', timeoutMs: 30_000, scaling: { minScale: 2 } });
  await h.advance(100);
  // Both sandboxes busy for 20 s, then the function is cut to one: one drains with a request in flight.
  const lost = h.invoke('drainy', 2, { holdMs: 20_000 });
  lost.forEach((p) => p.catch(() => undefined));
  await h.advance(100);
  await h.update('drainy', { scaling: { minScale: 1, maxScale: 1 } });
  await h.advance(1000);
  const draining = await h.status('drainy');
  t.is(draining.draining, 1, 'one sandbox drains, waiting for the data plane');
  t.is(draining.ready, 1);
  const drainingId = draining.sandboxes.find((s) => s.phase === 'draining')!.sandboxId;

  const killedAt = h.sim.now();
  h.killDataplane();
  await h.sim.run();
  const drained = await h.status('drainy');
  await h.describe('drainy');
  t.is(h.sim.now(), killedAt, 'the drain completes at once, not at its 31 s timeout');
  t.is(drained.draining, 0);
  t.false(drained.sandboxes.some((s) => s.sandboxId === drainingId));
  t.false(runningIds(h).includes(drainingId), 'the drained sandbox is deleted on its node');
  t.is(runningIds(h).length, 1);
  t.false(h.alive(routerAddress('drainy')));

  await h.advance(5000);
  h.restartDataplane();
  const outcomes = await settle(h, h.invoke('drainy', 3, { holdMs: 10 }), 10);
  t.is(tally(outcomes), '200x3', 'the new router asked for a full snapshot and serves');
  const status = await h.status('drainy');
  const router = await h.ask<RouterStatus>(routerAddress('drainy'), { type: 'rt.status' });
  t.like(router, { known: true, endpoints: 1, version: status.endpointVersion, queued: 0 });
  t.deepEqual(routedIds(h, 'drainy'), idsIn(status, 'ready'));
  await h.describe('drainy');
  checkTranscript(t, 'failover-dataplane-lost', h);
});

// Two bugs these scenarios found, fixed since: each stays as the test that would catch it again.

test('a creation that completes during the reconstruction wait is adopted or deleted, never left running', async (t) => {
  // node.list reports only ready sandboxes (actors/node.ts listReady), and a node answers it as soon as its
  // worker reconnects; the functions start only when the wait ends (cluster/control-plane/control-plane.ts
  // reconstruct). A sandbox still creating when its node listed, that finishes before the wait ends, sends its
  // fn.sandboxReady to a function actor that does not exist yet: a dead letter. Without the second listing
  // just before the functions start, it ran for good, known to no function and not accounted by the scheduler.
  // The wait is longest, up to the bound, exactly when a worker is lost, as here.
  const h = new Harness({ nodes: 3, createMs: 40, nodeCreateMs: { n2: 400 } });
  await h.register({ name: 'late', queueTimeoutMs: 30_000 });
  const pending = h.invoke('late', 6, { holdMs: 1000 });
  await h.advance(100);
  t.is((await h.status('late')).creating, 2, "n2's pair is still creating when the leader dies");
  h.killLeader();
  h.partition('n3');
  await h.failover({ term: 2, listTimeoutMs: 3000 });
  await h.reconnect('n3');
  t.is(tally(await settle(h, pending)), '200cx6');
  await h.advance(10_000);
  const status = await h.status('late');
  await h.describe('late');
  checkTranscript(t, 'failover-creation-during-wait', h);
  t.deepEqual(runningIds(h), status.sandboxes.map((s) => s.sandboxId).sort(), 'every sandbox that runs is known to its function');
  t.is((await h.nodes()).reduce((sum, n) => sum + n.allocated.slots, 0), runningIds(h).length, 'the scheduler accounts every sandbox that runs');
});

test('a data plane that rejoins after a leader change still ignores the old leader\'s late updates', async (t) => {
  // A router that learns its set by asking the function (`fn.getEndpoints`, on its first request after a
  // data-plane restart) got a reply without a term, so it held term 0 and took a late update of the deposed
  // leader (term 1): a term-1 snapshot replaced the whole set. The reply now carries the term.
  const h = new Harness({ nodes: 2 });
  const spec = await h.register({ name: 'rejoin', scaling: { minScale: 2 } });
  await h.advance(100);
  h.killLeader('partitioned');
  await h.failover({ term: 2 });
  h.killDataplane();
  await h.advance(1000);
  h.restartDataplane();
  t.is(tally(await settle(h, h.invoke('rejoin', 2, { holdMs: 10 }))), '200x2');
  const before = await h.ask<RouterStatus>(routerAddress('rejoin'), { type: 'rt.status' });
  t.is(before.endpoints, 2);
  h.sim.note('a late snapshot of the old leader (term 1) arrives');
  const late = { functionName: 'rejoin', version: 9, endpoints: [], routing: routingConfigOf(spec) };
  h.tell(routerAddress('rejoin'), { type: 'rt.snapshot', term: 1, snapshot: late }, functionAddress('rejoin'));
  await h.advance(100);
  const after = await h.ask<RouterStatus>(routerAddress('rejoin'), { type: 'rt.status' });
  await h.describe('rejoin');
  checkTranscript(t, 'failover-rejoined-dataplane-fencing', h);
  t.deepEqual(after, before, 'the late term-1 snapshot is ignored');
  t.is(h.router('rejoin')?.highestTerm, 2);
});
