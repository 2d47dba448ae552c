// The console's live updates: the event stream it uses (GET /api/v1/console/stream, console-push.ts) against
// the polling it replaced (a GET of the same view every POLL_MS, 2 s), both measured in the same run against
// one control plane (its admin API in this process) whose runtime also hosts a counter actor:
//   - latency: CHANGES times, at seeded random moments, the counter gets a message; each client notes when it
//     first sees the new count (the one-actor view, what an open actor page watches): p50 and max, ms;
//   - cost of CLIENTS pages on the same screen (the 50-actor page, sorted by processed) over IDLE_S seconds
//     with nothing changing: view reads on the server and bytes sent to the clients.
// Prints one JSON line: `stream` and `polling` (the baseline) side by side.
// Run: npm run bench:console-push   (BENCH_CHANGES, BENCH_CLIENTS, BENCH_IDLE_S)
import { performance } from 'node:perf_hooks';
import { soleReplica, startAdminApi } from '../cluster/control-plane/admin-api.js';
import { ControlPlane } from '../cluster/control-plane/control-plane.js';
import { ActorRuntime } from '../runtime/index.js';
import { seededRandom } from '../runtime/random.js';

const CHANGES = Number(process.env.BENCH_CHANGES ?? 20);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 10);
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 10);
/** The page's period before it was pushed to, ms. */
const POLL_MS = 2000;
/** Actors on the control plane besides its own, so that the actor page is a full one. */
const ACTORS = 1000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const quiet = () => undefined;
const runtime = await ActorRuntime.start({
  shards: 2,
  modules: [{ url: new URL('../cluster/control-plane/module.js', import.meta.url).href }, { url: new URL('../runtime/fixtures/test-kinds.js', import.meta.url).href }],
  remoteKinds: ['node', 'router', 'dpsandbox'],
  onLog: quiet,
});
const plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: 'bench-console', store: { kind: 'memory' }, runtime, onLog: quiet });
const admin = await startAdminApi(soleReplica(plane), { host: '127.0.0.1', port: 0 });
const counter = { kind: 'counter', id: 'watched' };
await Promise.all(Array.from({ length: ACTORS }, (_, i) => runtime.ask({ kind: 'counter', id: `c${i}` }, { type: 'get' }, 30_000)));
await runtime.ask(counter, { type: 'get' });
const shard = runtime.shardOf(counter);
const actorView = `actor?${new URLSearchParams({ process: 'control-plane', shard: String(shard), name: 'counter/watched' })}`;
const pageView = 'actors?sort=processed&limit=50';

/** Counts the server's view reads: every read of a view goes through the inspector. */
let reads = 0;
for (const method of ['topActors', 'inspect', 'processes'] as const) {
  const inspector = plane.inspector as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = inspector[method]!.bind(plane.inspector);
  inspector[method] = (...args: unknown[]) => {
    reads += 1;
    return original(...args);
  };
}

interface Client {
  /** The counter's value as last seen, and when each value was first seen (performance.now, ms). */
  readonly seen: Map<number, number>;
  bytes: number;
  close(): void;
}

/** An event-stream client of one view. */
async function streamClient(view: string, onBody: (body: any) => void): Promise<Client> {
  const client: Client = { seen: new Map(), bytes: 0, close: () => abort.abort() };
  const abort = new AbortController();
  const res = await fetch(`${admin.url}/api/v1/console/stream?${new URLSearchParams({ watch: view })}`, { signal: abort.signal });
  void (async () => {
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        client.bytes += chunk.length;
        buffer += Buffer.from(chunk).toString('utf8');
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const data = /^data: (.*)$/m.exec(buffer.slice(0, end))?.[1];
          buffer = buffer.slice(end + 2);
          if (data !== undefined) onBody(JSON.parse(data).body);
        }
      }
    } catch {
      // closed
    }
  })();
  return client;
}

/** A polling client of one view, as the page was: a GET every POLL_MS after the previous answer. */
function pollClient(view: string, onBody: (body: any) => void, offsetMs: number): Client {
  let stopped = false;
  const client: Client = { seen: new Map(), bytes: 0, close: () => (stopped = true) };
  void (async () => {
    await sleep(offsetMs);
    while (!stopped) {
      const res = await fetch(`${admin.url}/api/v1/console/${view}`);
      const text = await res.text();
      client.bytes += Buffer.byteLength(text) + 150; // + the answer's status line and headers, about
      if (!stopped) onBody(JSON.parse(text));
      await sleep(POLL_MS);
    }
  })();
  return client;
}

const watching = (client: () => Client) => (body: any) => {
  const value = body?.state?.count;
  if (typeof value === 'number' && !client().seen.has(value)) client().seen.set(value, performance.now());
};

try {
  // Latency: one stream client and one polling client watch the counter.
  const random = seededRandom(7);
  let streamed!: Client;
  let polled!: Client;
  streamed = await streamClient(actorView, watching(() => streamed));
  polled = pollClient(actorView, watching(() => polled), 0);
  await sleep(1500);
  const changedAt = new Map<number, number>();
  for (let value = 1; value <= CHANGES; value++) {
    await sleep(700 + Math.floor(random() * 1600));
    runtime.tell(counter, { type: 'inc' });
    changedAt.set(value, performance.now());
  }
  await sleep(POLL_MS + 2000);
  streamed.close();
  polled.close();
  // A poll may skip a value (two changes between polls): a change counts as seen when a value at least as high is.
  const latencies = (client: Client) =>
    [...changedAt].flatMap(([value, at]) => {
      const seenAt = [...client.seen].filter(([v]) => v >= value).map(([, t]) => t);
      return seenAt.length ? [Math.min(...seenAt) - at] : [];
    });
  const streamLatency = latencies(streamed);
  const pollLatency = latencies(polled);

  // Cost: CLIENTS pages of the actor list, nothing changing.
  const cost = async (open: (i: number) => Promise<Client>) => {
    const clients = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => open(i)));
    await sleep(1000);
    const readsBefore = reads;
    const bytesBefore = clients.reduce((sum, c) => sum + c.bytes, 0);
    await sleep(IDLE_S * 1000);
    const result = { readsPerS: (reads - readsBefore) / IDLE_S, bytesPerClientPerS: Math.round((clients.reduce((sum, c) => sum + c.bytes, 0) - bytesBefore) / CLIENTS / IDLE_S) };
    for (const c of clients) c.close();
    await sleep(POLL_MS);
    return result;
  };
  const streamCost = await cost(() => streamClient(pageView, () => undefined));
  const pollCost = await cost(async (i) => pollClient(pageView, () => undefined, (i * POLL_MS) / CLIENTS));
  const ms = (xs: number[]) => ({ p50Ms: Math.round(median(xs)), maxMs: Math.round(Math.max(...xs)), seen: xs.length, meanMs: Math.round(xs.reduce((a, b) => a + b, 0) / xs.length) });
  console.log(
    JSON.stringify({
      bench: 'console-push',
      stream: { latency: ms(streamLatency), ...streamCost },
      polling: { latency: ms(pollLatency), ...pollCost, periodMs: POLL_MS },
      changes: CHANGES,
      clients: CLIENTS,
      idleS: IDLE_S,
    }),
  );
} finally {
  await admin.close();
  await plane.stop();
}
