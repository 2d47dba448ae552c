// Values under ids the table makes up: an endpoint's pending asks, the invocations in flight on a
// connection, the requests a front has not answered yet. Every request passes through such a table.
//
// Why not a Map: a Map that once held many entries (a peak of load) keeps a large hash table, and V8
// rebuilds a hash table by copying it into a new one, leaving the old copy with its entries. A large table
// lives long enough to reach the old generation; every copy it is replaced by then keeps the entries it held
// (requests, with everything they reference) alive through young-generation GCs until the next full GC. On
// the data plane that promoted ~400 KB per scavenge at 33 k requests/s, for good, after one minute at peak
// load: a mark-compact every 0.5 s and a p99 two to three times higher than before the peak. Here the
// values live in one array whose slots are cleared on removal and reused; nothing is ever copied but the
// array itself when a new peak grows it.
//
// An id is `generation * SLOTS + slot`: the slot says where the value is, the generation (how many times that
// slot was used) tells a stale id (of a value removed since) from the current one, so an id is never
// answered twice. A slot that reaches MAX_GENERATION is retired, so ids stay exact doubles (below 2^53).

/** Concurrent entries at most. */
export const SLOTS = 2 ** 20;
const MAX_GENERATION = 2 ** 32;

export class SlotTable<T> {
  private readonly values: (T | undefined)[] = [];
  private readonly generations: number[] = [];
  /** Slots free for reuse, most recently freed last. */
  private readonly free: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Stores `value` under a new id (a positive integer). Throws a RangeError past SLOTS entries. */
  add(value: T): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.values.length;
      if (slot >= SLOTS) throw new RangeError(`a slot table holds at most ${SLOTS} entries`);
      this.values.push(undefined);
      this.generations.push(0);
    }
    const generation = this.generations[slot]! + 1;
    this.generations[slot] = generation;
    this.values[slot] = value;
    this.count += 1;
    return generation * SLOTS + slot;
  }

  /** The value under `id`; undefined for an id removed since, never made here, or not an id at all. */
  get(id: unknown): T | undefined {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) return undefined;
    const slot = id % SLOTS;
    return this.generations[slot] === (id - slot) / SLOTS ? this.values[slot] : undefined;
  }

  /** Removes the value under `id` and answers it (undefined when there is none). */
  take(id: unknown): T | undefined {
    const value = this.get(id);
    if (value === undefined) return undefined;
    this.release((id as number) % SLOTS);
    return value;
  }

  /** Removes every value and answers them, in slot order. */
  takeAll(): T[] {
    const all: T[] = [];
    for (let slot = 0; slot < this.values.length; slot++) {
      const value = this.values[slot];
      if (value === undefined) continue;
      all.push(value);
      this.release(slot);
    }
    return all;
  }

  /** Removes and answers, in slot order, the values `expired` is true of. */
  takeWhere(expired: (value: T) => boolean): T[] {
    const taken: T[] = [];
    for (let slot = 0; slot < this.values.length; slot++) {
      const value = this.values[slot];
      if (value === undefined || !expired(value)) continue;
      taken.push(value);
      this.release(slot);
    }
    return taken;
  }

  /** Every value held, in slot order. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (const value of this.values) if (value !== undefined) yield value;
  }

  private release(slot: number): void {
    this.values[slot] = undefined;
    this.count -= 1;
    if (this.generations[slot]! < MAX_GENERATION) this.free.push(slot);
  }
}
