// cluster/store: the desired-state store port and its implementations. It holds function specs and node
// and data-plane registrations, nothing else: actual state (sandboxes, endpoints, scale) is never
// written here, so no cold start or invocation touches it. `memory` serves tests and the deterministic
// harness, `file` is the embedded default, `etcd` the distributed mode's (shared by the replicas). Not here: key
// layout and value schemas (the control plane owns them), leadership (cluster/leadership).

import { assertNever } from '../../actors/actor.js';
import { EtcdStore } from './etcd.js';
import { FileStore } from './file.js';
import { MemoryStore } from './memory.js';
import type { Store } from './store.js';

export { EtcdStore, etcdClientOptions } from './etcd.js';
export { FileStore } from './file.js';
export { MemoryStore } from './memory.js';
export { MAX_KEY_LENGTH, StoreError, type Store, type StoreErrorCode } from './store.js';

export type StoreConfig = { kind: 'memory' } | { kind: 'file'; dir: string } | { kind: 'etcd'; endpoints: readonly string[]; prefix?: string };

export async function openStore(config: StoreConfig): Promise<Store> {
  switch (config.kind) {
    case 'memory':
      return new MemoryStore();
    case 'file':
      return FileStore.open(config.dir);
    case 'etcd':
      return EtcdStore.open(config);
    default:
      return assertNever(config, 'store kind');
  }
}
