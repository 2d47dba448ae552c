// The file store: the embedded default of `dirigent up`, durable across restarts with no server.
//
// One file per key, not one file for everything: a put then costs the size of one entry rather than of
// the whole state, so registering N functions writes O(N) bytes instead of O(N^2) (the loader registers
// thousands at start-up). The Store port promises atomicity per key only, which is exactly what one
// rename gives. A file is `<encodeURIComponent(key)>.json` and holds `{"key":...,"value":...}`, so the
// key is read from the content and the name is only checked against it.
//
// A write is: write `<file>.<pid>.<n>.tmp`, fsync it, rename it over `<file>`, fsync the directory
// (so the rename itself survives a power cut). A crash before the rename leaves a temp file and the
// previous committed file; open deletes temp files, so the last committed state is what is read back.
// All mutations go through one queue, in call order: the last put to a key wins, on disk and in memory.
// One FileStore per directory at a time (the embedded control plane is the only writer).

import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MemoryStore } from './memory.js';
import { checkKey, encodeValue, StoreError } from './store.js';

const VALUE_SUFFIX = '.json';
const TEMP_SUFFIX = '.tmp';

export class FileStore extends MemoryStore {
  /** Mutations run one after another on this chain. */
  private tail: Promise<unknown> = Promise.resolve();
  private tempSeq = 0;

  private constructor(
    readonly dir: string,
    /** Committed state as JSON text, read once at open; this process is the only writer. */
    entries: Map<string, string>,
  ) {
    super(entries);
  }

  /** Creates `dir` if needed, removes temp files left by a crash, and loads every committed entry. */
  static async open(dir: string): Promise<FileStore> {
    await mkdir(dir, { recursive: true });
    const entries = new Map<string, string>();
    let removedTemp = false;
    for (const name of await readdir(dir)) {
      if (name.endsWith(TEMP_SUFFIX)) {
        await rm(join(dir, name), { force: true });
        removedTemp = true;
      } else if (name.endsWith(VALUE_SUFFIX)) {
        const { key, text } = await readEntry(dir, name);
        entries.set(key, text);
      }
      // Anything else (lost+found, an operator's notes) is not ours and is left alone.
    }
    if (removedTemp) await syncDirectory(dir);
    return new FileStore(dir, entries);
  }

  override async put(key: string, value: unknown): Promise<void> {
    this.ensureOpen();
    checkKey(key);
    const text = encodeValue(key, value);
    return this.enqueue(() => this.commitPut(key, text));
  }

  override async delete(key: string): Promise<boolean> {
    this.ensureOpen();
    checkKey(key);
    return this.enqueue(() => this.commitDelete(key));
  }

  /** Lets writes already accepted finish; later calls fail with STORE_CLOSED. */
  override async close(): Promise<void> {
    this.closed = true;
    await this.tail;
  }

  private enqueue<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.tail.then(operation);
    // A failed write fails its own caller only; the queue goes on.
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async commitPut(key: string, text: string): Promise<void> {
    const file = join(this.dir, fileName(key));
    this.tempSeq += 1;
    const temp = `${file}.${process.pid}.${this.tempSeq}${TEMP_SUFFIX}`;
    try {
      const handle = await open(temp, 'wx');
      try {
        await handle.writeFile(`{"key":${JSON.stringify(key)},"value":${text}}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, file);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    // The rename is visible to a reader from now on, so memory follows it even if the directory fsync fails.
    this.entries.set(key, text);
    this.writeCount += 1;
    await syncDirectory(this.dir);
  }

  private async commitDelete(key: string): Promise<boolean> {
    if (!this.entries.has(key)) return false;
    await rm(join(this.dir, fileName(key)), { force: true });
    this.entries.delete(key);
    this.writeCount += 1;
    await syncDirectory(this.dir);
    return true;
  }
}

function fileName(key: string): string {
  // encodeURIComponent turns '/' into %2F and never yields a name ending in TEMP_SUFFIX once VALUE_SUFFIX is added.
  return `${encodeURIComponent(key)}${VALUE_SUFFIX}`;
}

async function readEntry(dir: string, name: string): Promise<{ key: string; text: string }> {
  const path = join(dir, name);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (cause) {
    // A committed file is only ever produced by rename of a synced temp file, so this is damage from
    // outside; refusing to open beats silently forgetting a function.
    throw new StoreError('STORE_CORRUPT', `store file ${path} is not valid JSON: ${String(cause)}`, { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || !('key' in parsed) || !('value' in parsed) || typeof parsed.key !== 'string') {
    throw new StoreError('STORE_CORRUPT', `store file ${path} does not hold {"key","value"}`);
  }
  if (fileName(parsed.key) !== name) {
    throw new StoreError('STORE_CORRUPT', `store file ${path} holds key ${JSON.stringify(parsed.key)}, which belongs in ${fileName(parsed.key)}`);
  }
  return { key: parsed.key, text: JSON.stringify(parsed.value) };
}

/** Makes renames and unlinks in `dir` durable. Opening a directory for fsync works on Linux and macOS. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
