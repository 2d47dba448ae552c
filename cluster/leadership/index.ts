// cluster/leadership: which control-plane replica acts, and under which term. `single` for the embedded
// cluster (always leader, term counted in its store); `etcd` for the distributed mode (a lease and a leader
// key; the term is the key's create revision). Not here: what a leader does (cluster/control-plane).
export { EtcdLeadership, DEFAULT_LEASE_TTL_S, LEADER_KEY, type EtcdLeadershipOptions } from './etcd.js';
export { ThreadedEtcdLeadership, type ThreadedEtcdLeadershipOptions } from './etcd-thread.js';
export { SingleLeadership, takeNextTerm, type LeaderView, type Leadership, type LeadershipEvents, type ReplicaInfo } from './leadership.js';
