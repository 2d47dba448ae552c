// Measures the cross-thread delivery alternatives the runtime could use, so the choice in
// runtime/link.ts is backed by numbers: one postMessage per envelope, batched structured clone,
// batched msgpackr, and a SharedArrayBuffer ring of msgpackr frames.
// Run: npm run bench:link. Prints one JSON line.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Packr } from 'msgpackr';
import { performance } from 'node:perf_hooks';

type Mode = 'per-message' | 'batch-clone' | 'batch-msgpack' | 'sab-ring';
const MESSAGES = Number(process.env.LINK_MESSAGES ?? 300_000);
const BATCH = Number(process.env.LINK_BATCH ?? 256);
const RING_BYTES = 1 << 22;

function envelope(i: number) {
  return { t: 0, to: { kind: 'counter', id: String(i % 100) }, m: { type: 'inc', n: i } };
}

async function runMode(mode: Mode): Promise<number> {
  const sab = new SharedArrayBuffer(RING_BYTES + 16);
  const worker = new Worker(new URL(import.meta.url), { workerData: { mode, sab } });
  await new Promise((resolve) => worker.once('message', resolve)); // ready
  const done = new Promise<void>((resolve) => worker.once('message', () => resolve()));
  const start = performance.now();
  if (mode === 'per-message') {
    for (let i = 0; i < MESSAGES; i++) worker.postMessage(envelope(i));
  } else if (mode === 'sab-ring') {
    await sendRing(sab, worker);
  } else {
    const packr = new Packr({ useRecords: false });
    for (let i = 0; i < MESSAGES; i += BATCH) {
      const batch = [];
      for (let j = i; j < Math.min(MESSAGES, i + BATCH); j++) batch.push(envelope(j));
      if (mode === 'batch-clone') worker.postMessage(batch);
      else {
        const bytes = new Uint8Array(packr.pack(batch));
        worker.postMessage(bytes, [bytes.buffer]);
      }
      // Yield like an event-loop turn would, so the receiver overlaps with the sender.
      if ((i / BATCH) % 16 === 0) await new Promise((r) => setImmediate(r));
    }
  }
  await done;
  const seconds = (performance.now() - start) / 1000;
  await worker.terminate();
  return Math.round(MESSAGES / seconds);
}

// Ring layout: Int32 [0] = write offset, [1] = read offset (bytes into data), frames are u32 length + bytes.
async function sendRing(sab: SharedArrayBuffer, worker: Worker): Promise<void> {
  const header = new Int32Array(sab, 0, 4);
  const data = new Uint8Array(sab, 16, RING_BYTES);
  const packr = new Packr({ useRecords: false });
  let write = 0;
  for (let i = 0; i < MESSAGES; i += BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(MESSAGES, i + BATCH); j++) batch.push(envelope(j));
    const bytes = packr.pack(batch);
    const needed = bytes.length + 4;
    for (;;) {
      const read = Atomics.load(header, 1);
      const used = write - read;
      if (RING_BYTES - used >= needed + 4 && (write % RING_BYTES) + needed <= RING_BYTES) break;
      if ((write % RING_BYTES) + needed > RING_BYTES && RING_BYTES - used >= RING_BYTES - (write % RING_BYTES) + needed) {
        // Not enough room before the end: write a wrap marker (length 0) and continue from offset 0.
        new DataView(sab, 16).setUint32(write % RING_BYTES, 0);
        write += RING_BYTES - (write % RING_BYTES);
        Atomics.store(header, 0, write);
        continue;
      }
      await new Promise((r) => setImmediate(r));
    }
    const at = write % RING_BYTES;
    new DataView(sab, 16).setUint32(at, bytes.length);
    data.set(bytes, at + 4);
    write += needed;
    Atomics.store(header, 0, write);
    Atomics.notify(header, 0);
  }
  void worker;
}

function workerMain(): void {
  const { mode, sab } = workerData as { mode: Mode; sab: SharedArrayBuffer };
  const packr = new Packr({ useRecords: false });
  let received = 0;
  let sum = 0;
  const count = (env: { m: { n: number } }) => {
    received++;
    sum += env.m.n;
    if (received === MESSAGES) parentPort!.postMessage(sum);
  };
  if (mode === 'sab-ring') {
    const header = new Int32Array(sab, 0, 4);
    const view = new DataView(sab, 16);
    const data = new Uint8Array(sab, 16, RING_BYTES);
    let read = 0;
    parentPort!.postMessage('ready');
    while (received < MESSAGES) {
      const write = Atomics.load(header, 0);
      if (write === read) {
        Atomics.wait(header, 0, write, 50);
        continue;
      }
      const at = read % RING_BYTES;
      const length = view.getUint32(at);
      if (length === 0) {
        read += RING_BYTES - at;
      } else {
        for (const env of packr.unpack(data.subarray(at + 4, at + 4 + length))) count(env);
        read += length + 4;
      }
      Atomics.store(header, 1, read);
    }
    return;
  }
  parentPort!.on('message', (msg: unknown) => {
    if (mode === 'per-message') count(msg as never);
    else if (mode === 'batch-clone') for (const env of msg as never[]) count(env);
    else for (const env of packr.unpack(msg as Uint8Array)) count(env);
  });
  parentPort!.postMessage('ready');
}

async function main(): Promise<void> {
  const modes: Mode[] = ['per-message', 'batch-clone', 'batch-msgpack', 'sab-ring'];
  const runs = Number(process.env.LINK_RUNS ?? 3);
  const result: Record<string, number> = {};
  for (const mode of modes) {
    const samples: number[] = [];
    for (let r = 0; r < runs; r++) samples.push(await runMode(mode));
    samples.sort((a, b) => a - b);
    result[mode] = samples[Math.floor(samples.length / 2)]!;
  }
  console.log(JSON.stringify({ bench: 'link', msgsPerSec: result, batch: BATCH, messages: MESSAGES }));
}

if (isMainThread) await main();
else workerMain();
