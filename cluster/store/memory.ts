// The in-memory store: for unit tests and the deterministic cluster harness. Values are kept as JSON
// text, so it accepts and returns exactly what the file store would (no shared references, no
// non-JSON values), and a test passing here means the same on disk. The file store extends it: reads
// are served from this same table, only writes differ.

import { checkKey, closedError, encodeValue, listEntries, type Store } from './store.js';

export class MemoryStore implements Store {
  protected closed = false;
  protected writeCount = 0;

  /** Key -> value as JSON text. */
  constructor(protected readonly entries = new Map<string, string>()) {}

  get writes(): number {
    return this.writeCount;
  }

  async get(key: string): Promise<unknown | undefined> {
    this.ensureOpen();
    checkKey(key);
    const text = this.entries.get(key);
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  }

  async list(prefix: string): Promise<{ key: string; value: unknown }[]> {
    this.ensureOpen();
    return listEntries(this.entries, prefix);
  }

  async put(key: string, value: unknown): Promise<void> {
    this.ensureOpen();
    checkKey(key);
    this.entries.set(key, encodeValue(key, value));
    this.writeCount += 1;
  }

  async delete(key: string): Promise<boolean> {
    this.ensureOpen();
    checkKey(key);
    if (!this.entries.delete(key)) return false;
    this.writeCount += 1;
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  protected ensureOpen(): void {
    if (this.closed) throw closedError();
  }
}
