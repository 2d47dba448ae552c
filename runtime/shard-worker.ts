// Entry of a shard thread: builds the ShardHost, wires its links, loads the shard modules, and
// tells the starter it is ready. The thread ends by itself once the host has shut down and the
// ports are closed (no timer or handle is left behind).
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { ManualClock, RealClock } from './clock.js';
import { toWire } from '../actors/errors.js';
import { ShardHost, type ShardModule } from './host.js';
import { Flusher, OutboundLink, createCodec, listen } from './link.js';
import { seededRandom } from './random.js';
import type { ShardWorkerData } from './runtime.js';

const data = workerData as ShardWorkerData;
const codec = createCodec(data.codec);
const flusher = new Flusher();
const clock = data.manualClock === undefined ? new RealClock() : new ManualClock(data.manualClock);
const ports = data.ports as (MessagePort | undefined)[];
const links = ports.map((port) => (port ? new OutboundLink(port, codec, flusher) : undefined));

const log = (level: 'debug' | 'info' | 'warn' | 'error', text: string) => {
  parentPort?.postMessage({ type: 'log', level, text: `[shard ${data.index}] ${text}` });
};

const host = new ShardHost({
  index: data.index,
  shards: data.shards,
  clock,
  random: seededRandom(data.seed + data.index * 0x9e3779b9),
  links,
  log,
  passivationSweepMs: data.passivationSweepMs,
  remoteKinds: data.remoteKinds,
  packRemote: data.codec === 'msgpack',
  counters: data.counters,
});
for (const port of ports) if (port) listen(port, codec, (envelope) => host.receive(envelope));

// Close ports once the shutdown reply has been flushed, so the thread can end.
parentPort?.on('message', (message: { type: string }) => {
  if (message.type === 'close') {
    flusher.flushAll();
    host.closeLinks();
    clock.clearAll();
    for (const port of ports) port?.close();
    parentPort?.close();
  }
});

try {
  for (const spec of data.modules) {
    const loaded = (await import(spec.url)) as { default?: ShardModule; shardModule?: ShardModule };
    const module = loaded.shardModule ?? loaded.default;
    if (module === undefined) throw new Error(`${spec.url} exports neither shardModule nor default`);
    await host.addModule(module, spec.options);
  }
  parentPort?.postMessage({ type: 'ready' });
} catch (error) {
  // As data (name, code, message, stack): the main thread rebuilds it as the cause of SHARD_START_FAILED.
  parentPort?.postMessage({ type: 'failed', error: toWire(error) });
}
