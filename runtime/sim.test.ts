import test from 'ava';
import { Simulation } from './sim.js';
import { counter, crashy, echo, relay, silent } from './fixtures/test-kinds.js';

const kinds = [counter, crashy, echo, relay, silent];

test('the simulation delivers in FIFO order and records a transcript', async (t) => {
  const sim = new Simulation({ kinds, start: 100 });
  sim.tell({ kind: 'counter', id: 'c' }, { type: 'inc', by: 2 });
  sim.tell({ kind: 'counter', id: 'c' }, { type: 'inc' });
  t.is(await sim.request<number>({ kind: 'counter', id: 'c' }, { type: 'get' }), 3);
  t.deepEqual(sim.transcript, ['t=100 counter:c <- inc by=2', 't=100 counter:c <- inc', 't=100 counter:c <- get']);
});

test('timers fire at their due time and asks time out on the manual clock', async (t) => {
  const sim = new Simulation({ kinds });
  const r = { kind: 'relay', id: 'r' };
  sim.tell(r, { type: 'remind', afterMs: 50, note: 'x' });
  sim.tell(r, { type: 'askOther', to: { kind: 'silent', id: 's' }, message: 1, timeoutMs: 80 });
  sim.tell(r, { type: 'call', service: 'double', input: 4 });
  await sim.advance(100);
  const { results, notes } = (await sim.request<{ results: { ok: boolean; error?: { code: string } }[]; notes: string[] }>(r, { type: 'results' }));
  t.deepEqual(notes, ['x@50']);
  t.is(results.length, 2);
  t.is(results[0]!.error?.code, 'NO_SUCH_SERVICE');
  t.is(results[1]!.error?.code, 'ASK_TIMEOUT');
});

test('services and crashes behave like the threaded runtime', async (t) => {
  const sim = new Simulation({ kinds, services: { double: async (input) => (input as number) * 2 } });
  const r = { kind: 'relay', id: 'r' };
  sim.tell(r, { type: 'call', service: 'double', input: 21 });
  await sim.run();
  const { results } = await sim.request<{ results: { ok: boolean; value?: number }[] }>(r, { type: 'results' });
  t.deepEqual(results, [{ ok: true, value: 42 }]);
  const c = { kind: 'crashy', id: 'c' };
  sim.tell(c, { type: 'inc' });
  await t.throwsAsync(sim.request(c, { type: 'boom' }), { message: /boom requested/ });
  t.is(await sim.request<number>(c, { type: 'get' }), 0);
  t.is(sim.errors.length, 1);
});
