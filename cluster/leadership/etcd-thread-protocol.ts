// What the main thread and the lease thread of etcd-thread.ts say to each other.
import type { LeaderView, ReplicaInfo } from './leadership.js';

export interface ThreadData {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly self: ReplicaInfo;
  readonly ttlS?: number;
  readonly safetyMs?: number;
  readonly pollMs?: number;
  /** The main thread is stuck once it has not beaten for this long, ms. */
  readonly stallMs: number;
  /** SharedArrayBuffer of SLOT_COUNT BigInt64 words. */
  readonly shared: SharedArrayBuffer;
}

/** Words of the shared buffer; times in µs on processMonotonicMs's clock. */
export const SLOT = {
  /** The term the lease thread leads under; 0 while it does not. */
  term: 0,
  /** Until when the replica may act under `term`. */
  actUntilUs: 1,
  /** When the main thread last ran its beat timer. */
  mainBeatUs: 2,
} as const;
export const SLOT_COUNT = 3;

export type ToMain =
  | { readonly type: 'started' }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'elected'; readonly term: number }
  | { readonly type: 'deposed'; readonly reason: string }
  | { readonly type: 'view'; readonly view: LeaderView | undefined }
  | { readonly type: 'log'; readonly level: 'info' | 'warn' | 'debug'; readonly text: string }
  | { readonly type: 'closed' };

export type ToThread = { readonly type: 'close' };
