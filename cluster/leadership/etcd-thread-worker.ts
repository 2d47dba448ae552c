// The thread that holds a replica's etcd lease (see etcd-thread.ts): an EtcdLeadership with its own etcd
// client, reporting to the main thread by message and through the shared validity words.
import { parentPort, workerData } from 'node:worker_threads';
import { Etcd3 } from 'etcd3';
import { processMonotonicMs } from '../../runtime/clock.js';
import { etcdClientOptions } from '../store/etcd.js';
import { EtcdLeadership } from './etcd.js';
import { SLOT, type ThreadData, type ToMain, type ToThread } from './etcd-thread-protocol.js';

const data = workerData as ThreadData;
const port = parentPort!;
const shared = new BigInt64Array(data.shared);
const post = (message: ToMain) => port.postMessage(message);
const client = new Etcd3(etcdClientOptions(data.endpoints));
const leadership = new EtcdLeadership({
  client,
  prefix: data.prefix,
  self: data.self,
  ttlS: data.ttlS,
  safetyMs: data.safetyMs,
  pollMs: data.pollMs,
  now: processMonotonicMs,
  log: (level, text) => post({ type: 'log', level, text }),
  // The main thread beats every few ms; one that has not for stallMs is stuck and must not keep the lease.
  healthy: () => processMonotonicMs() - Number(Atomics.load(shared, SLOT.mainBeatUs)) / 1000 < data.stallMs,
  onValidity: (term, actUntil) => {
    // The deadline first: a main thread that reads the new term must find its deadline with it.
    Atomics.store(shared, SLOT.actUntilUs, BigInt(Math.floor(actUntil * 1000)));
    Atomics.store(shared, SLOT.term, BigInt(term));
  },
});

port.on('message', (message: ToThread) => {
  if (message.type !== 'close') return;
  void leadership
    .close()
    .catch((error: Error) => post({ type: 'log', level: 'warn', text: `leadership: closing: ${error.message}` }))
    .finally(() => {
      client.close();
      post({ type: 'closed' });
    });
});

leadership
  .start({
    elected: (term) => post({ type: 'elected', term }),
    deposed: (reason) => post({ type: 'deposed', reason }),
    leaderChanged: (view) => post({ type: 'view', view }),
  })
  .then(
    () => post({ type: 'started' }),
    (error: Error) => post({ type: 'failed', message: error.message }),
  );
