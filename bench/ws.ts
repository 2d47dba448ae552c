// Invocations over ONE pipelined WebSocket connection to the data plane's /ws API: a window of requests
// always in flight (each reply sends the next request), msgpack frames, to the builtin `empty` function on
// a simulated sandbox (deployed with minScale = maxScale, so every call is warm). Baseline in the same run:
// the same client against a bare uWS app that echoes each frame (bench/bare-uws.js, its own process).
// Prints one JSON line: {"bench":"ws","rps","inFlight","encoding":"msgpack","jsonRps","bareRps",...}
// Run: npm run bench:ws
//   BENCH_RUNS (default 3)    runs per measurement; the JSON reports medians
//   WS_SECONDS (default 5)    one run, s
//   WS_WINDOW (default 512)   requests in flight (the data plane runs at most 1024 per connection)
//
// The client (bench/ws-client.ts) runs on this process's main thread; the control plane, worker and data
// plane run on their own shard threads in this process. All of it shares the machine's 2 cores. Data-plane
// shard counts 1 and 2 are both measured and the better one is reported (`shards`): with 2, the
// connection's shard (the kernel's SO_REUSEPORT pick) may differ from the function router's shard, which
// adds a cross-thread hop per request. `busyCoresBefore`: cores something else kept busy in the second
// before the run.
import { availableParallelism } from 'node:os';
import { Packr } from 'msgpackr';
import { startBare } from './children.js';
import { busyCores, deployPinned, envInt, exitIfStillRunningAfter, median, round, sandboxIds, startCluster, type BenchCluster } from './cluster.js';
import { BenchWebSocket } from './ws-client.js';

const RUNS = envInt('BENCH_RUNS', 3);
const SECONDS = envInt('WS_SECONDS', 5);
const WINDOW = envInt('WS_WINDOW', 512);
const SHARD_COUNTS = [1, 2] as const;
const FUNCTION = 'empty';
/** JIT warm-up before each target's first measured run, s. */
const WARMUP_SECONDS = 1;

exitIfStillRunningAfter('bench:ws', (RUNS * SECONDS * 8 + 90) * 1000);

type Encoding = 'msgpack' | 'json';

interface Reply {
  id?: unknown;
  status?: unknown;
  headers?: Record<string, string>;
  error?: { code: string; message: string };
}

interface RunResult {
  readonly rps: number;
  readonly replies: number;
}

/**
 * Keeps `window` requests in flight on one connection for `seconds`; every reply must carry the id of a
 * request in flight, and (against the data plane) status 200 and `x-dirigent-cold-start: false`.
 */
async function run(port: number, encoding: Encoding, seconds: number, echo: boolean): Promise<RunResult> {
  const ws = await BenchWebSocket.open('127.0.0.1', port, '/ws');
  const packr = new Packr({ useRecords: false });
  const inFlight = new Set<number>();
  let nextId = 0;
  let replies = 0;
  let failure: Error | undefined;
  let stopping = false;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const send = () => {
    const id = nextId++;
    inFlight.add(id);
    const request = { id, function: FUNCTION };
    ws.send(encoding === 'msgpack' ? packr.pack(request) : JSON.stringify(request), encoding === 'msgpack');
  };
  const fail = (message: string) => {
    failure ??= new Error(message);
    resolveDone();
  };
  ws.onClose = (reason) => {
    if (!stopping) fail(`the WebSocket closed during the run: ${reason}`);
  };
  ws.onMessage = (data, isBinary) => {
    let reply: Reply;
    try {
      reply = (isBinary ? packr.unpack(data) : JSON.parse(data.toString('utf8'))) as Reply;
    } catch (error) {
      return fail(`unreadable reply: ${(error as Error).message}`);
    }
    if (typeof reply.id !== 'number' || !inFlight.delete(reply.id)) return fail(`a reply for no request in flight: ${JSON.stringify(reply)}`);
    if (!echo) {
      if (reply.status !== 200) return fail(`status ${String(reply.status)}: ${JSON.stringify(reply.error)}`);
      if (reply.headers?.['x-dirigent-cold-start'] !== 'false') return fail(`x-dirigent-cold-start is ${String(reply.headers?.['x-dirigent-cold-start'])}, want false`);
    }
    replies += 1;
    if (stopping) {
      if (inFlight.size === 0) resolveDone();
    } else send();
  };
  let ended = 0;
  let counted = 0;
  const started = performance.now();
  for (let i = 0; i < WINDOW; i++) send();
  const timer = setTimeout(() => {
    stopping = true;
    ended = performance.now();
    counted = replies;
    // Let the window drain so that the next run starts on a quiet connection; bounded.
    setTimeout(resolveDone, 5000).unref();
    if (inFlight.size === 0) resolveDone();
  }, seconds * 1000);
  await done;
  clearTimeout(timer);
  stopping = true;
  ws.close();
  if (failure) throw failure;
  return { rps: counted / ((ended - started) / 1000), replies: counted };
}

async function startTarget(shards: number): Promise<BenchCluster> {
  const cluster = await startCluster({ dataPlaneShards: shards, runtime: 'simulated' });
  try {
    await deployPinned(cluster, FUNCTION, 'simulated', 1);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/** A run against a data plane; no sandbox may appear during it (which makes every call warm). */
async function measure(cluster: BenchCluster, encoding: Encoding, seconds: number): Promise<number> {
  const before = await sandboxIds(cluster, FUNCTION);
  const result = await run(cluster.port, encoding, seconds, false);
  if ((await sandboxIds(cluster, FUNCTION)) !== before) throw new Error('the sandboxes changed during the run: not every call was warm');
  return result.rps;
}

const busyCoresBefore = await busyCores();
const stops: (() => Promise<void>)[] = [];
try {
  const bare = await startBare();
  stops.push(bare.stop);
  const clusters: BenchCluster[] = [];
  for (const shards of SHARD_COUNTS) {
    const cluster = await startTarget(shards);
    stops.push(cluster.stop);
    clusters.push(cluster);
  }
  await run(bare.port, 'msgpack', WARMUP_SECONDS, true);
  for (const cluster of clusters) await measure(cluster, 'msgpack', WARMUP_SECONDS);
  const bareRps: number[] = [];
  const rps: number[][] = clusters.map(() => []);
  // Interleaved, so that a slower minute of a shared machine hits every target alike.
  for (let r = 0; r < RUNS; r++) {
    bareRps.push((await run(bare.port, 'msgpack', SECONDS, true)).rps);
    for (const [i, cluster] of clusters.entries()) rps[i]!.push(await measure(cluster, 'msgpack', SECONDS));
  }
  const medians = rps.map(median);
  const bestIndex = medians[1]! > medians[0]! ? 1 : 0;
  const best = clusters[bestIndex]!;
  const json: number[] = [];
  for (let r = 0; r < RUNS; r++) json.push(await measure(best, 'json', SECONDS));
  console.log(
    JSON.stringify({
      bench: 'ws',
      rps: Math.round(medians[bestIndex]!),
      inFlight: WINDOW,
      encoding: 'msgpack',
      jsonRps: Math.round(median(json)),
      bareRps: Math.round(median(bareRps)),
      ratio: round(medians[bestIndex]! / median(bareRps), 3),
      shards: SHARD_COUNTS[bestIndex],
      rpsByShards: Object.fromEntries(SHARD_COUNTS.map((s, i) => [s, Math.round(medians[i]!)])),
      connections: 1,
      seconds: SECONDS,
      runs: RUNS,
      cores: availableParallelism(),
      busyCoresBefore,
    }),
  );
} finally {
  for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.error(`bench:ws: stopping: ${(error as Error).message}`));
}
