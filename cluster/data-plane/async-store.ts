// The `async.store` service: where the async-jobs actor (actors/async-jobs.ts) persists jobs, one store key
// per job (`jobs/<id>`) in a FileStore (durable: fsync and atomic rename per write). The store opens lazily,
// in the one shard thread that hosts the actor, on the first call; every other shard never touches it.
// Bytes (request and response bodies) are stored as base64, since the store holds JSON.
import type { LogLevel } from '../../runtime/host.js';
import type { AsyncStoreInput, StoredJob } from '../../actors/async-jobs.js';
import { DirigentError } from '../../actors/errors.js';
import { FileStore } from '../store/index.js';

const PREFIX = 'jobs/';

type Encoded = Omit<StoredJob, 'invocation' | 'response'> & {
  readonly invocation: Omit<StoredJob['invocation'], 'body'> & { readonly body: string };
  readonly response?: Omit<NonNullable<StoredJob['response']>, 'body'> & { readonly body: string };
};

export class AsyncJobStore {
  private store: Promise<FileStore> | undefined;
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly log: (level: LogLevel, text: string) => void,
  ) {}

  readonly call = async (input: unknown): Promise<unknown> => {
    const op = input as AsyncStoreInput;
    if (this.closed) throw new DirigentError('STORE_CLOSED', 'the async job store is closed');
    const store = await this.open();
    switch (op?.op) {
      case 'list':
        return (await store.list(PREFIX)).flatMap(({ key, value }) => {
          const job = decode(value);
          if (job === undefined) this.log('error', `async job store entry ${key} in ${this.dir} is malformed and was skipped`);
          return job === undefined ? [] : [job];
        });
      case 'put':
        await store.put(PREFIX + op.job.id, encode(op.job));
        return undefined;
      case 'delete':
        await store.delete(PREFIX + op.id);
        return undefined;
      default:
        throw new DirigentError('BAD_REQUEST', `async.store: unknown operation ${JSON.stringify(input)}`);
    }
  };

  private open(): Promise<FileStore> {
    this.store ??= FileStore.open(this.dir);
    // A failed open is tried again on the next call (the actor retries its load).
    this.store.catch(() => {
      this.store = undefined;
    });
    return this.store;
  }

  /** Lets accepted writes finish; later calls fail with STORE_CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    const store = await this.store?.catch(() => undefined);
    await store?.close();
  }
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

function encode(job: StoredJob): Encoded {
  const { response, ...rest } = job;
  return {
    ...rest,
    invocation: { ...job.invocation, body: b64(job.invocation.body) },
    ...(response ? { response: { ...response, body: b64(response.body) } } : {}),
  };
}

function decode(value: unknown): StoredJob | undefined {
  const e = value as Partial<Encoded> | null;
  if (e === null || typeof e !== 'object' || typeof e.id !== 'string' || typeof e.functionName !== 'string' || typeof e.submittedAt !== 'number' || typeof e.attempts !== 'number') return undefined;
  if (e.state !== 'pending' && e.state !== 'done' && e.state !== 'failed') return undefined;
  const { response, invocation: inv, ...rest } = e as Encoded;
  if (!inv || typeof inv.method !== 'string' || typeof inv.path !== 'string' || typeof inv.body !== 'string' || inv.headers === null || typeof inv.headers !== 'object') return undefined;
  if (response !== undefined && typeof response.body !== 'string') return undefined;
  return {
    ...rest,
    invocation: { ...inv, body: Buffer.from(inv.body, 'base64') },
    ...(response ? { response: { ...response, body: Buffer.from(response.body, 'base64') } } : {}),
  };
}
