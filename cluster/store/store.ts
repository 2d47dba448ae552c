// The store port: where desired state lives (function specs, node and data-plane registrations).
// Actual state (which sandbox runs where) is never written here; it is rebuilt from the workers.
import { DirigentError } from '../../actors/errors.js';

/** Keys look like `functions/<name>`, `nodes/<id>`, `dataplanes/<id>`; values are JSON-able. */
export interface Store {
  /** A copy of the value, or undefined when the key is absent. */
  get(key: string): Promise<unknown | undefined>;
  /** Every entry whose key starts with `prefix`, sorted by key (UTF-16 code unit order). */
  list(prefix: string): Promise<{ key: string; value: unknown }[]>;
  /** Resolves once the value is committed (for the file store: durable on disk). */
  put(key: string, value: unknown): Promise<void>;
  /** True when the key existed. */
  delete(key: string): Promise<boolean>;
  /** Waits for pending writes; afterwards every call fails with STORE_CLOSED. */
  close(): Promise<void>;
  /** Committed mutations since open (puts, and deletes that removed a key), so tests can assert that a
   * path such as a cold start or an invocation wrote nothing. */
  readonly writes: number;
}

export type StoreErrorCode =
  /** The store was closed. */
  | 'STORE_CLOSED'
  /** Not a string, empty, an unpaired surrogate, or longer than MAX_KEY_LENGTH. */
  | 'STORE_INVALID_KEY'
  /** The value has no JSON form (undefined, a function, a BigInt, a cycle). */
  | 'STORE_NOT_JSON'
  /** A committed file cannot be read back; the store refuses to open rather than forget state. */
  | 'STORE_CORRUPT'
  /** A fenced write (etcd) was refused: the writer's leadership term is over. */
  | 'STORE_FENCED';

export class StoreError extends DirigentError<StoreErrorCode> {
  override name = 'StoreError';
}

/**
 * Longest key once percent-encoded (encodeURIComponent), in characters; for ASCII keys simply the length.
 * The file store uses that encoding as a file name, and file names stop at 255 bytes.
 */
export const MAX_KEY_LENGTH = 200;

export function checkKey(key: unknown): asserts key is string {
  let encodedLength = Infinity;
  try {
    if (typeof key === 'string') encodedLength = encodeURIComponent(key).length;
  } catch {
    // URIError: an unpaired surrogate, which has no UTF-8 form and so no file name.
  }
  if (typeof key !== 'string' || key.length === 0 || encodedLength > MAX_KEY_LENGTH) {
    throw new StoreError('STORE_INVALID_KEY', `store key must be a well-formed string of 1..${MAX_KEY_LENGTH} characters (percent-encoded), got ${JSON.stringify(key)}`);
  }
}

/** The JSON text of `value`; both stores keep text so a caller can never mutate stored state by reference. */
export function encodeValue(key: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (cause) {
    throw new StoreError('STORE_NOT_JSON', `value for ${key} cannot be encoded as JSON: ${String(cause)}`, { cause });
  }
  if (text === undefined) throw new StoreError('STORE_NOT_JSON', `value for ${key} has no JSON form (${typeof value})`);
  return text;
}

export function closedError(): StoreError {
  return new StoreError('STORE_CLOSED', 'the store is closed');
}

/** Sorted entries of `map` under `prefix`, decoded. */
export function listEntries(map: ReadonlyMap<string, string>, prefix: string): { key: string; value: unknown }[] {
  return [...map]
    .filter(([key]) => key.startsWith(prefix))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, text]) => ({ key, value: JSON.parse(text) as unknown }));
}
