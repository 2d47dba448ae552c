// A trace of cold starts, step by step: every actor step of every role (DIRIGENT_STEP_TRACE=1, runtime/host.ts)
// on one time line with the client's send and answer, for first calls of new functions served from the pool of
// started sandboxes (bench/pool-cluster.ts: control plane, one worker, a data plane with 2 shards, in this
// process). Prints, for the call with the median latency, each step as ms since the client sent the request,
// then one JSON line with the median over the calls of the time each step was reached. Not a benchmark of
// throughput: writing a line per step costs a little on every step it measures.
// Run: npm run bench:coldstart-trace   (TRACE_RUNTIME thread|process, default thread; TRACE_CALLS default 9)
process.env['DIRIGENT_STEP_TRACE'] = '1';
const { STEP_TRACE_PREFIX } = await import('../runtime/host.js');
const { epochMsPrecise } = await import('../runtime/clock.js');
const { envInt, median, round } = await import('./cluster.js');
const { deploy, firstCall, poolFull, poolOf, withPoolCluster } = await import('./pool-cluster.js');

const RUNTIME = process.env['TRACE_RUNTIME'] ?? 'thread';
if (RUNTIME !== 'thread' && RUNTIME !== 'process') throw new Error(`TRACE_RUNTIME=${RUNTIME} must be thread or process`);
const CALLS = envInt('TRACE_CALLS', 9);

interface Step {
  readonly at: number;
  readonly address: string;
  readonly type: string;
}

// Shard threads' stderr reaches this thread's process.stderr: steps are kept, anything else passes through.
const steps: Step[] = [];
const write = process.stderr.write.bind(process.stderr);
let partial = '';
process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const text = partial + (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
  const lines = text.split('\n');
  partial = lines.pop() ?? '';
  const other: string[] = [];
  for (const line of lines) {
    const [prefix, at, address, type] = line.split(' ');
    if (prefix === STEP_TRACE_PREFIX && at !== undefined && address !== undefined && type !== undefined) steps.push({ at: Number(at), address, type });
    else other.push(line);
  }
  return other.length === 0 ? true : write(`${other.join('\n')}\n`, ...(rest as []));
}) as typeof process.stderr.write;

/** The steps of one call of `name`: its own actors' and the shared ones (node, scheduler) between send and answer. */
function callSteps(name: string, sent: number, answered: number): Step[] {
  const own = (s: Step) => s.address.includes(`:${name}`) || s.address.includes(`:${name}-`) || s.address.startsWith('node:') || s.address.startsWith('scheduler:');
  return steps.filter((s) => s.at >= sent && s.at <= answered && own(s) && !/heartbeat|pool|metric|tick/.test(s.type));
}

const calls = await withPoolCluster(RUNTIME, poolOf(2), async (cluster) => {
  const names = Array.from({ length: CALLS }, (_, i) => `trace-${i}`);
  await deploy(cluster, RUNTIME, names);
  const done: { name: string; sent: number; answered: number; ms: number }[] = [];
  for (const name of names) {
    await poolFull(cluster);
    const sent = epochMsPrecise();
    const call = await firstCall(cluster, name);
    done.push({ name, sent, answered: epochMsPrecise(), ms: call.ms });
  }
  return done;
});
const sorted = [...calls].sort((a, b) => a.ms - b.ms);
const middle = sorted[Math.floor(sorted.length / 2)]!;
console.log(`cold start of ${middle.name} (${RUNTIME}, from the pool), ${round(middle.ms, 1)} ms at the client; ms since the client sent it:`);
for (const s of callSteps(middle.name, middle.sent, middle.answered)) console.log(`${(s.at - middle.sent).toFixed(2).padStart(8)}  ${s.address.padEnd(28)} ${s.type}`);
// Per step (first time each address/type was reached in a call), the median over the calls of ms since sending.
const reached = new Map<string, number[]>();
for (const c of calls) {
  const seen = new Set<string>();
  for (const s of callSteps(c.name, c.sent, c.answered)) {
    const key = `${s.address.split(c.name).join('<fn>')} ${s.type}`;
    if (seen.has(key)) continue;
    seen.add(key);
    reached.set(key, [...(reached.get(key) ?? []), s.at - c.sent]);
  }
}
const medianSteps = [...reached].map(([step, at]) => [step, round(median(at), 2)] as const).sort((a, b) => a[1] - b[1]);
console.log(JSON.stringify({ bench: 'coldstart-trace', runtime: RUNTIME, calls: CALLS, clientP50Ms: round(median(calls.map((c) => c.ms)), 1), stepsP50Ms: Object.fromEntries(medianSteps) }));
process.exit(0);
