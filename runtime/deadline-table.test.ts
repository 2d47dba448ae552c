import test from 'ava';
import { ManualClock } from './clock.js';
import { DeadlineTable } from './deadline-table.js';

interface Item {
  readonly name: string;
  readonly deadline: number;
}

function table(sweepMs = 25) {
  const clock = new ManualClock(1000);
  const expired: string[] = [];
  const items = new DeadlineTable<Item>(clock, sweepMs, (item) => expired.push(item.name));
  return { clock, expired, items };
}

test('a value past its deadline is expired once, at most sweepMs late; a taken one never', (t) => {
  const { clock, expired, items } = table();
  items.add({ name: 'a', deadline: 1100 });
  const b = items.add({ name: 'b', deadline: 1110 });
  items.add({ name: 'c', deadline: 1500 });
  t.is(items.take(b)?.name, 'b');
  clock.advance(99);
  t.deepEqual(expired, []);
  clock.advance(1);
  t.deepEqual(expired, ['a']);
  clock.advance(400);
  t.deepEqual(expired, ['a', 'c']);
  t.is(items.size, 0);
  t.is(clock.nextDue(), undefined, 'nothing left: no timer');
});

test('only an earlier deadline re-arms the timer; sweeps are at least sweepMs apart', (t) => {
  const { clock, expired, items } = table(25);
  items.add({ name: 'late', deadline: 2000 });
  t.is(clock.nextDue(), 2000);
  items.add({ name: 'later', deadline: 3000 });
  items.add({ name: 'close', deadline: 1990 });
  t.is(clock.nextDue(), 2000, 'within sweepMs of the armed sweep: left to it');
  items.add({ name: 'soon', deadline: 1010 });
  t.is(clock.nextDue(), 1010);
  items.add({ name: 'next', deadline: 1011 });
  clock.advance(10);
  t.deepEqual(expired, ['soon']);
  t.is(clock.nextDue(), 1035, 'the next sweep waits sweepMs');
  clock.advance(25);
  t.deepEqual(expired, ['soon', 'next']);
});

test('takeAll answers everything and leaves no timer; an expiry callback may add again', (t) => {
  const clock = new ManualClock(0);
  const expired: string[] = [];
  const items: DeadlineTable<Item> = new DeadlineTable<Item>(clock, 25, (item) => {
    expired.push(item.name);
    if (item.name === 'first') items.add({ name: 'again', deadline: clock.now() + 50 });
  });
  items.add({ name: 'first', deadline: 10 });
  clock.advance(10);
  t.deepEqual(expired, ['first']);
  t.is(items.size, 1);
  t.deepEqual(items.takeAll().map((i) => i.name), ['again']);
  t.is(clock.nextDue(), undefined);
});
