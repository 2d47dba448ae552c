// The stem pool alone, on a manual clock with a fake factory whose starts the test completes by hand.
import test from 'ava';
import { ManualClock } from './manual-clock.js';
import { StemPool, validatePoolSettings, type PoolSettings, type StemFactory } from './pool.js';

interface FakeStem {
  readonly n: number;
  readonly memoryMiB: number;
}

/** A factory whose `start` calls wait until the test settles them; it records every start and dispose. */
function fakeFactory(idleMiB = 5) {
  const pending: { memoryMiB: number; resolve(stem: FakeStem): void; reject(error: Error): void }[] = [];
  const disposed: FakeStem[] = [];
  let made = 0;
  const factory: StemFactory<FakeStem> = {
    start: (memoryMiB) => new Promise<FakeStem>((resolve, reject) => pending.push({ memoryMiB, resolve, reject })),
    dispose: async (stem) => void disposed.push(stem),
    idleMiB: () => idleMiB,
    estimateMiB: idleMiB,
  };
  /** Completes the oldest start; answers its stem. */
  const finish = async (): Promise<FakeStem> => {
    const next = pending.shift();
    if (next === undefined) throw new Error('no start is pending');
    const stem = { n: ++made, memoryMiB: next.memoryMiB };
    next.resolve(stem);
    await new Promise((resolve) => setImmediate(resolve));
    return stem;
  };
  const fail = async (): Promise<void> => {
    pending.shift()?.reject(new Error('cannot start'));
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { factory, pending, disposed, finish, fail };
}

function pool(settings: PoolSettings, idleMiB = 5) {
  const clock = new ManualClock();
  const fake = fakeFactory(idleMiB);
  let changes = 0;
  const stems = new StemPool(settings, fake.factory, clock, () => (changes += 1));
  return { clock, stems, ...fake, changes: () => changes };
}

test('fills each class up to its size, one stem at a time, after the idle delay', async (t) => {
  const { clock, stems, pending, finish } = pool({ sizes: [{ memoryMiB: 128, count: 2 }, { memoryMiB: 512, count: 1 }], capMiB: 100, idleDelayMs: 50 });
  t.is(pending.length, 0, 'nothing starts before the idle delay');
  await clock.advance(49);
  t.is(pending.length, 0);
  await clock.advance(1);
  t.is(pending.length, 1, 'one at a time');
  t.is(pending[0]?.memoryMiB, 128, 'the class furthest below its size first');
  await finish();
  t.is(pending.length, 0, 'paced: the next waits the idle delay too');
  await clock.advance(50);
  t.is(pending.length, 1);
  await finish();
  await clock.advance(50);
  await finish();
  t.is(pending.length, 0);
  await clock.advance(10_000);
  t.is(pending.length, 0, 'full: nothing more starts');
  t.deepEqual(stems.stats(), { classes: [{ memoryMiB: 128, target: 2, idle: 2 }, { memoryMiB: 512, target: 1, idle: 1 }], idleMiB: 15, capMiB: 100, fromPool: 0, fresh: 0, startFailures: 0 });
});

test('take gives a stem of the class once; it never comes back, and the refill replaces it after quiet', async (t) => {
  const { clock, stems, pending, finish } = pool({ sizes: [{ memoryMiB: 128, count: 1 }], capMiB: 100, idleDelayMs: 50 });
  await clock.advance(50);
  const first = await finish();
  t.is(await stems.take(256), undefined, 'no pool for another class: fresh');
  const taken = await stems.take(128);
  t.is(taken, first);
  t.is(await stems.take(128), undefined, 'exhausted: fresh');
  t.like(stems.stats(), { fromPool: 1, fresh: 2, classes: [{ memoryMiB: 128, target: 1, idle: 0 }] });
  await clock.advance(49);
  t.is(pending.length, 0, 'a cold start pushes the refill back');
  await clock.advance(1);
  const second = await finish();
  t.not(second, first);
  t.is(await stems.take(128), second);
  t.false(stems.idleStems().includes(first), 'a taken stem is never the pool\u2019s again');
});

test('a burst keeps postponing the refill, and so does a cold start while a stem starts', async (t) => {
  const { clock, stems, pending, finish } = pool({ sizes: [{ memoryMiB: 128, count: 2 }], capMiB: 100, idleDelayMs: 50 });
  for (let i = 0; i < 5; i++) {
    await clock.advance(30);
    t.is(await stems.take(128), undefined);
  }
  t.is(pending.length, 0, 'cold starts 30 ms apart: no refill competes with them');
  await clock.advance(50);
  t.is(pending.length, 1);
  await clock.advance(40);
  stems.fresh();
  await finish();
  await clock.advance(49);
  t.is(pending.length, 0, 'a cold start during the start: the next waits for quiet after it');
  await clock.advance(1);
  t.is(pending.length, 1);
});

test('a cold start that finds none idle but one of its class starting waits for it instead of starting another', async (t) => {
  const { clock, stems, pending, finish, fail } = pool({ sizes: [{ memoryMiB: 128, count: 2 }], capMiB: 100, idleDelayMs: 10 });
  await clock.advance(10);
  t.is(pending.length, 1);
  const claimed = stems.take(128);
  const second = stems.take(128);
  t.is(await second, undefined, 'only one cold start claims it; the next starts fresh');
  const stem = await finish();
  t.is(await claimed, stem);
  t.deepEqual(stems.idleStems(), [], 'the claimed stem never enters the pool');
  t.like(stems.stats(), { fromPool: 1, fresh: 1 });
  await clock.advance(10);
  const third = stems.take(128);
  await fail();
  t.is(await third, undefined, 'a start that fails leaves the claim to a fresh start');
  t.like(stems.stats(), { fromPool: 1, fresh: 2, startFailures: 1 });
});

test('the idle memory cap bounds the pool: the estimate first, then measured stems', async (t) => {
  const { clock, stems, pending, finish } = pool({ sizes: [{ memoryMiB: 128, count: 5 }], capMiB: 12, idleDelayMs: 0 }, 5);
  await finish();
  await finish();
  t.is(pending.length, 0, 'a third stem of 5 MiB would pass 12 MiB');
  t.like(stems.stats(), { idleMiB: 10, classes: [{ memoryMiB: 128, target: 5, idle: 2 }] });
});

test('a stem that fails to start is retried after a growing pause, and counted', async (t) => {
  const { clock, stems, pending, fail, finish } = pool({ sizes: [{ memoryMiB: 128, count: 1 }], capMiB: 100, idleDelayMs: 10 });
  await clock.advance(10);
  await fail();
  await clock.advance(999);
  t.is(pending.length, 0);
  await clock.advance(1);
  await fail();
  await clock.advance(1999);
  t.is(pending.length, 0, 'the pause doubles');
  await clock.advance(1);
  await finish();
  t.like(stems.stats(), { startFailures: 2, classes: [{ memoryMiB: 128, target: 1, idle: 1 }] });
});

test('an idle stem that dies is evicted and replaced; close disposes the idle ones and the one starting', async (t) => {
  const { clock, stems, pending, finish, disposed } = pool({ sizes: [{ memoryMiB: 128, count: 2 }], capMiB: 100, idleDelayMs: 10 });
  await clock.advance(10);
  const a = await finish();
  await clock.advance(10);
  const b = await finish();
  stems.evict(a);
  t.deepEqual(stems.idleStems(), [b]);
  await clock.advance(10);
  t.is(pending.length, 1);
  const closing = stems.close();
  const c = await finish();
  await closing;
  t.deepEqual(disposed.map((s) => s.n).sort(), [b.n, c.n]);
  t.is(await stems.take(128), undefined, 'closed: nothing to take');
  await clock.advance(10_000);
  t.is(pending.length, 0, 'closed: no refill');
});

test('settings are validated, naming the value and its unit', (t) => {
  t.throws(() => validatePoolSettings({ sizes: [{ memoryMiB: 0, count: 1 }], capMiB: 10 }), { message: /memoryMiB=0 must be an integer >= 1 \(MiB\)/ });
  t.throws(() => validatePoolSettings({ sizes: [{ memoryMiB: 128, count: 65 }], capMiB: 10 }), { message: /count \(class 128 MiB\)=65 must be an integer 0..64/ });
  t.throws(() => validatePoolSettings({ sizes: [{ memoryMiB: 128, count: 1 }, { memoryMiB: 128, count: 2 }], capMiB: 10 }), { message: /given once/ });
  t.throws(() => validatePoolSettings({ sizes: [], capMiB: -1 }), { message: /capMiB=-1 must be >= 0 \(MiB\)/ });
  t.notThrows(() => validatePoolSettings({ sizes: [{ memoryMiB: 128, count: 0 }], capMiB: 0 }));
});
