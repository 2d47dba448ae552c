// Client of the sandbox invocation protocol (protocol.ts) over one frames connection: for tests, the
// benchmark and the data plane. Many invocations may be in flight at once on one client.
import { performance } from 'node:perf_hooks';
import { connectFrames, type FrameConnection } from '../../runtime/frames.js';
import { SlotTable } from '../../runtime/slot-table.js';
import { REQUEST_CODEC, RESULT_CODEC } from './invoke-codec.js';
import type { InvokeRequest, InvokeResponse } from '../sandbox/index.js';
import type { InvokeErrorCode, RequestFrame, ResultFrame } from './protocol.js';

export type SandboxClientErrorCode =
  | InvokeErrorCode
  /** No result within the caller's timeout; a late result is dropped. */
  | 'INVOKE_TIMEOUT'
  /** The connection closed before the result came (or was closed already). */
  | 'CONNECTION_CLOSED'
  /** The address is not `host:port`. */
  | 'BAD_ADDRESS';

export class SandboxClientError extends Error {
  override readonly name = 'SandboxClientError';
  constructor(
    readonly code: SandboxClientErrorCode | string,
    message: string,
  ) {
    super(message);
  }
}

export interface SandboxClientOptions {
  /** Announced in the handshake. Default 'dataplane'. */
  readonly role?: string;
  /** Announced in the handshake. Default 'client'. */
  readonly id?: string;
  /** Bound on connect plus handshake, ms. Default 5000. */
  readonly connectTimeoutMs?: number;
}

/** Settles one invocation: an error, or the sandbox's response. */
export type InvokeCallback = (error: SandboxClientError | undefined, response: InvokeResponse | undefined) => void;

interface Pending {
  readonly done: InvokeCallback;
  /** performance.now() past which the invocation has timed out, ms. */
  readonly deadline: number;
  readonly sandboxId: string;
  readonly timeoutMs: number;
}

/**
 * Timeouts are swept, not timed one by one: one timer per client, due at the earliest deadline in flight,
 * but never sooner than this after the previous sweep, ms. So a deadline is noticed at most this late when no
 * result comes at all; a result that comes after its deadline is always refused (INVOKE_TIMEOUT).
 */
const SWEEP_MS = 100;
/** setTimeout's longest delay, ms; a sweep due later wakes up early and finds nothing due yet. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** `host:port`, or `[v6]:port`. */
export function parseAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const host = colon > 0 ? address.slice(0, colon).replace(/^\[(.*)\]$/, '$1') : '';
  const port = Number(address.slice(colon + 1));
  if (host === '' || !Number.isInteger(port) || port < 1 || port > 65_535) throw new SandboxClientError('BAD_ADDRESS', `address ${JSON.stringify(address)} must be host:port`);
  return { host, port };
}

export class SandboxClient {
  /** Invocations sent and not answered, by request id (see SlotTable for why not a Map). */
  private readonly pending = new SlotTable<Pending>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** performance.now() the sweep timer is due at; Infinity when none is armed. */
  private sweepAt = Infinity;

  private constructor(
    private readonly connection: FrameConnection,
    readonly address: string,
  ) {
    connection.useCodec(RESULT_CODEC);
    connection.onFrame((frame) => this.onResult(frame as ResultFrame));
    connection.onClose((error) => {
      this.disarm();
      const reason = new SandboxClientError('CONNECTION_CLOSED', `connection to ${address} closed${error ? `: ${error.message}` : ''}`);
      for (const pending of this.pending.takeAll()) pending.done(reason, undefined);
    });
  }

  /** Connects and passes the handshake; rejects with CONNECT_REFUSED (wrong token), CONNECT_FAILED or CONNECT_TIMEOUT. */
  static async connect(address: string, token: string, options: SandboxClientOptions = {}): Promise<SandboxClient> {
    const { host, port } = parseAddress(address);
    const { connection } = await connectFrames({
      host,
      port,
      hello: { token, role: options.role ?? 'dataplane', id: options.id ?? 'client' },
      ...(options.connectTimeoutMs === undefined ? {} : { timeoutMs: options.connectTimeoutMs }),
    });
    return new SandboxClient(connection, address);
  }

  /** Invocations sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  get isClosed(): boolean {
    return this.connection.isClosed;
  }

  /**
   * Resolves with the sandbox's response (any status); rejects with a SandboxClientError. `timeoutMs`: ms.
   * The request is packed before this returns: nothing of it is kept, the caller may reuse its objects.
   */
  invoke(sandboxId: string, request: InvokeRequest, timeoutMs: number): Promise<InvokeResponse> {
    return new Promise<InvokeResponse>((resolve, reject) => this.invokeWith(sandboxId, request, timeoutMs, (error, response) => (error ? reject(error) : resolve(response!))));
  }

  /**
   * `invoke` without a promise (the data plane calls this per request): `done` runs exactly once, never before
   * this returns. A request that cannot be packed throws here.
   */
  invokeWith(sandboxId: string, request: InvokeRequest, timeoutMs: number, done: InvokeCallback): void {
    if (this.connection.isClosed) {
      const error = new SandboxClientError('CONNECTION_CLOSED', `connection to ${this.address} is closed`);
      queueMicrotask(() => done(error, undefined));
      return;
    }
    const deadline = performance.now() + timeoutMs;
    const i = this.pending.add({ done, deadline, sandboxId, timeoutMs });
    const frame: RequestFrame = { i, s: sandboxId, m: request.method, p: request.path, h: request.headers, b: request.body };
    try {
      this.connection.sendWith(REQUEST_CODEC, frame);
    } catch (error) {
      this.pending.take(i);
      throw error;
    }
    // Usually a sweep is due already, no later than this deadline: nothing to do.
    if (deadline < this.sweepAt - SWEEP_MS) this.arm(deadline);
  }

  close(): void {
    this.connection.close();
  }

  private onResult(frame: ResultFrame): void {
    const pending = this.pending.take(frame?.i);
    if (pending === undefined) return; // timed out meanwhile
    if (performance.now() > pending.deadline) pending.done(this.timedOut(pending), undefined);
    else if ('e' in frame) pending.done(new SandboxClientError(frame.e.code, frame.e.message), undefined);
    else pending.done(undefined, { status: frame.st, headers: frame.h, body: frame.b });
  }

  private timedOut(pending: Pending): SandboxClientError {
    return new SandboxClientError('INVOKE_TIMEOUT', `no result from sandbox ${pending.sandboxId} at ${this.address} within ${pending.timeoutMs} ms`);
  }

  private arm(at: number): void {
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepAt = at;
    this.sweepTimer = setTimeout(this.sweep, Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(at - performance.now()))));
    // The socket keeps the thread alive while the connection is open; this timer need not.
    this.sweepTimer.unref();
  }

  private disarm(): void {
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    this.sweepAt = Infinity;
  }

  /** Times out every invocation past its deadline, then arms the next sweep if any is left in flight. */
  private readonly sweep = (): void => {
    // The timer may fire a little before `sweepAt` by performance.now() (timers count from the loop's
    // cached time): whatever it was armed for counts as due, as a timer per invocation would have fired.
    const now = Math.max(performance.now(), this.sweepAt);
    this.sweepTimer = undefined;
    this.sweepAt = Infinity;
    const expired = this.pending.takeWhere((pending) => pending.deadline <= now);
    let next = Infinity;
    for (const pending of this.pending) if (pending.deadline < next) next = pending.deadline;
    if (next !== Infinity) this.arm(Math.max(next, now + SWEEP_MS));
    // Last: a callback may start another invocation, which may arm the sweep itself.
    for (const pending of expired) pending.done(this.timedOut(pending), undefined);
  };
}
