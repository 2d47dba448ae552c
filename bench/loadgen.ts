// An open-loop, rate-limited HTTP/1.1 load generator for bench/warm.ts (wrk2 is not packaged here), run as
// a child process so that it does not share an event loop with what it measures.
//
// Method: request k is due at start + k / rate. Every timer turn (~1 ms) releases each due request and sends
// it on an idle keep-alive connection (one request at a time per connection, no pipelining); a released
// request that finds no idle connection waits in a FIFO for the next one. Its latency is measured from its
// RELEASE, not from when a connection took it, so a stalled server is charged for every request it delayed
// (no coordinated omission, as in wrk2). Release rather than due time: Node's timers fire up to ~1 ms late,
// and that lateness is the generator's, not the server's. So arrivals come in bursts of ~rate/1000 per ms.
// Every response must be a 200 whose `x-dirigent-cold-start` header (when present) is `false`.
//
// Usage: node dist/bench/loadgen.js '<json LoadSpec>'   -> one JSON line (LoadResult) on stdout.
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface LoadSpec {
  readonly port: number;
  readonly path: string;
  /** Offered load, requests/s. */
  readonly rate: number;
  /** Measured period, ms (after the warm-up). */
  readonly durationMs: number;
  /** Requests due in this first period are sent but not recorded, ms. */
  readonly warmupMs: number;
  readonly connections: number;
}

export interface LoadResult {
  readonly offeredRps: number;
  readonly achievedRps: number;
  readonly recorded: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  /** Responses other than 200. */
  readonly errors: number;
  /** Responses with `x-dirigent-cold-start: true`. */
  readonly coldStarts: number;
  /** Responses with `x-dirigent-cold-start: false` (the bare server sends no such header). */
  readonly warm: number;
  /** Requests still unanswered when the run ended. */
  readonly unanswered: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const TICK_MS = 1;
/** After the last request is due, answers still count for at most this long, ms. */
const GRACE_MS = 2000;

class Conn {
  private buffered: Buffer = Buffer.alloc(0);
  /** Release time of the request in flight, ms (performance.now()); undefined when idle. */
  dueAt: number | undefined;
  record = false;

  constructor(
    readonly socket: Socket,
    private readonly onResponse: (conn: Conn, status: number, cold: ColdStart) => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /**
   * Splits responses off the stream. Parsed on the bytes, without a string per header line: the generator shares
   * the machine's two cores with what it measures, and its own CPU per response (more for a response with more
   * headers) would otherwise weigh on the server's latency.
   */
  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    for (;;) {
      const buffered = this.buffered;
      const end = buffered.indexOf(HEADER_END);
      if (end < 0) return;
      // `HTTP/1.1 200 ...`: three digits at 9.
      const status = (buffered[9]! - 48) * 100 + (buffered[10]! - 48) * 10 + (buffered[11]! - 48);
      let length = 0;
      let cold: ColdStart = undefined;
      for (let line = buffered.indexOf(CRLF) + 2; line > 1 && line < end; line = buffered.indexOf(CRLF, line) + 2) {
        if (startsWithName(buffered, line, CONTENT_LENGTH)) length = digitsAt(buffered, line + CONTENT_LENGTH.length);
        else if (startsWithName(buffered, line, COLD_START)) cold = buffered[skipSpaces(buffered, line + COLD_START.length)] === 116 /* t */ ? 'true' : 'false';
      }
      const total = end + 4 + length;
      if (buffered.length < total) return;
      this.buffered = buffered.subarray(total);
      this.onResponse(this, status, cold);
    }
  }
}

type ColdStart = 'true' | 'false' | undefined;
const CRLF = Buffer.from('\r\n');
const CONTENT_LENGTH = Buffer.from('content-length:');
const COLD_START = Buffer.from('x-dirigent-cold-start:');

/** Whether the header line at `at` is `name` (lower-case, colon included), in any case. */
function startsWithName(buffer: Buffer, at: number, name: Buffer): boolean {
  if (at + name.length > buffer.length) return false;
  for (let k = 0; k < name.length; k++) if ((buffer[at + k]! | 0x20) !== (name[k]! | 0x20)) return false;
  return true;
}

function skipSpaces(buffer: Buffer, at: number): number {
  while (buffer[at] === 32 || buffer[at] === 9) at++;
  return at;
}

function digitsAt(buffer: Buffer, at: number): number {
  let value = 0;
  for (let k = skipSpaces(buffer, at); buffer[k]! >= 48 && buffer[k]! <= 57; k++) value = value * 10 + buffer[k]! - 48;
  return value;
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const request = Buffer.from(`POST ${spec.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n`);
  const latencies: number[] = [];
  let errors = 0;
  let coldStarts = 0;
  let warm = 0;
  let answered = 0;
  const idle: Conn[] = [];
  /** Release times (ms) of requests waiting for an idle connection, and whether each is recorded. */
  const backlog: { dueAt: number; record: boolean }[] = [];
  let backlogHead = 0;

  const send = (conn: Conn, dueAt: number, record: boolean) => {
    conn.dueAt = dueAt;
    conn.record = record;
    conn.socket.write(request);
  };
  const onResponse = (conn: Conn, status: number, cold: ColdStart) => {
    const now = performance.now();
    if (conn.record) {
      latencies.push(now - conn.dueAt!);
      answered += 1;
      if (status !== 200) errors += 1;
      if (cold === 'true') coldStarts += 1;
      else if (cold === 'false') warm += 1;
    }
    conn.dueAt = undefined;
    if (backlogHead < backlog.length) {
      const next = backlog[backlogHead++]!;
      send(conn, next.dueAt, next.record);
    } else idle.push(conn);
  };

  const conns = await Promise.all(
    Array.from(
      { length: spec.connections },
      () =>
        new Promise<Conn>((resolve, reject) => {
          const socket = connect(spec.port, '127.0.0.1');
          socket.once('error', reject);
          socket.once('connect', () => resolve(new Conn(socket, onResponse)));
        }),
    ),
  );
  idle.push(...conns);

  const intervalMs = 1000 / spec.rate;
  const total = Math.floor(((spec.warmupMs + spec.durationMs) / 1000) * spec.rate);
  const firstRecorded = Math.floor((spec.warmupMs / 1000) * spec.rate);
  const start = performance.now() + 5;
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (next < total && start + next * intervalMs <= now) {
        const dueAt = now;
        const record = next >= firstRecorded;
        next += 1;
        const conn = idle.pop();
        if (conn) send(conn, dueAt, record);
        else backlog.push({ dueAt, record });
      }
      if (backlogHead > 4096 && backlogHead * 2 > backlog.length) {
        backlog.splice(0, backlogHead);
        backlogHead = 0;
      }
      if (next < total) setTimeout(tick, TICK_MS);
      else resolve();
    };
    tick();
  });
  const recordedTotal = total - firstRecorded;
  const graceEnd = performance.now() + GRACE_MS;
  while (answered < recordedTotal && performance.now() < graceEnd) await new Promise((r) => setTimeout(r, 5));
  const lastDue = start + (total - 1) * intervalMs;
  const measuredFrom = start + firstRecorded * intervalMs;
  for (const conn of conns) conn.socket.destroy();

  latencies.sort((a, b) => a - b);
  const pct = (q: number) => (latencies.length === 0 ? NaN : latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil(q * latencies.length) - 1))]!);
  const r3 = (v: number) => Math.round(v * 1000) / 1000;
  return {
    offeredRps: spec.rate,
    achievedRps: Math.round(answered / ((lastDue - measuredFrom) / 1000)),
    recorded: answered,
    p50Ms: r3(pct(0.5)),
    p90Ms: r3(pct(0.9)),
    p99Ms: r3(pct(0.99)),
    p999Ms: r3(pct(0.999)),
    maxMs: r3(latencies[latencies.length - 1] ?? NaN),
    errors,
    coldStarts,
    warm,
    unanswered: recordedTotal - answered,
  };
}

// Run as a script: one JSON spec in, one JSON result out.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;
  runLoad(spec).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      console.error(`loadgen: ${(error as Error).stack ?? String(error)}`);
      process.exit(1);
    },
  );
}
