import test from 'ava';
import { SLOTS, SlotTable } from './slot-table.js';

test('add, get and take: each id answers its own value, once', (t) => {
  const table = new SlotTable<string>();
  const a = table.add('a');
  const b = table.add('b');
  t.not(a, b);
  t.is(table.size, 2);
  t.is(table.get(a), 'a');
  t.is(table.take(a), 'a');
  t.is(table.take(a), undefined);
  t.is(table.get(a), undefined);
  t.is(table.size, 1);
  t.is(table.get(b), 'b');
});

test('a reused slot gets a new id; the old id stays dead', (t) => {
  const table = new SlotTable<string>();
  const first = table.add('old');
  table.take(first);
  const second = table.add('new');
  t.is(second % SLOTS, first % SLOTS, 'the slot is reused');
  t.not(second, first);
  t.is(table.get(first), undefined);
  t.is(table.get(second), 'new');
});

test('ids are never answered twice over many reuses', (t) => {
  const table = new SlotTable<number>();
  const seen = new Set<number>();
  for (let i = 0; i < 10_000; i++) {
    const id = table.add(i);
    t.false(seen.has(id));
    seen.add(id);
    if (i % 3 !== 0) table.take(id);
  }
  t.is(table.size, 3334);
});

test('anything that is not an id of this table answers undefined', (t) => {
  const table = new SlotTable<string>();
  table.add('x');
  for (const id of [undefined, null, 'abc', '1', 0, -1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 2, SLOTS * 7 + 0, {}]) t.is(table.get(id), undefined, String(id));
});

test('takeAll and takeWhere empty the slots they answer, in slot order', (t) => {
  const table = new SlotTable<number>();
  const ids = [1, 2, 3, 4, 5].map((n) => table.add(n));
  t.deepEqual(table.takeWhere((n) => n % 2 === 0), [2, 4]);
  t.deepEqual([...table], [1, 3, 5]);
  t.is(table.get(ids[1]), undefined);
  t.deepEqual(table.takeAll(), [1, 3, 5]);
  t.is(table.size, 0);
  t.deepEqual([...table], []);
});

test('past SLOTS entries held at once, add throws a RangeError and the table stays usable', (t) => {
  const table = new SlotTable<number>();
  const first = table.add(0);
  for (let i = 1; i < SLOTS; i++) table.add(i);
  t.throws(() => table.add(-1), { instanceOf: RangeError });
  t.is(table.size, SLOTS);
  t.is(table.take(first), 0);
  t.is(table.get(table.add(7)), 7, 'a freed slot is used again');
});
