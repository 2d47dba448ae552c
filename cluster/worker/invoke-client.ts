// Client of the sandbox invocation protocol (protocol.ts) over one frames connection: for tests, the
// benchmark and the data plane. Many invocations may be in flight at once on one client.
import { connectFrames, type FrameConnection } from '../../runtime/frames.js';
import { RealClock } from '../../runtime/clock.js';
import { DeadlineTable } from '../../runtime/deadline-table.js';
import { REQUEST_CODEC, RESULT_CODEC } from './invoke-codec.js';
import type { InvokeRequest, InvokeResponse } from '../sandbox/index.js';
import type { InvokeErrorCode, RequestFrame, ResultFrame } from './protocol.js';
import { DirigentError } from '../../actors/errors.js';

export type SandboxClientErrorCode =
  | InvokeErrorCode
  /** No result within the caller's timeout; a late result is dropped. */
  | 'INVOKE_TIMEOUT'
  /** The connection closed before the result came (or was closed already). */
  | 'CONNECTION_CLOSED'
  /** The address is not `host:port`. */
  | 'BAD_ADDRESS';

export class SandboxClientError extends DirigentError<SandboxClientErrorCode> {
  override name = 'SandboxClientError';
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
  /** CLOCK.now() past which the invocation has timed out, ms. */
  readonly deadline: number;
  readonly sandboxId: string;
  readonly timeoutMs: number;
}

/**
 * Timeouts are swept (DeadlineTable) at most this far apart, ms: a deadline is noticed at most this late when
 * no result comes at all; a result that comes after its deadline is always refused (INVOKE_TIMEOUT).
 */
const SWEEP_MS = 100;
/** Monotonic; its timers leave the thread to the socket, which keeps it alive while the connection is open. */
const CLOCK = new RealClock({ monotonic: true, unref: true });

/** `host:port`, or `[v6]:port`. */
export function parseAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const host = colon > 0 ? address.slice(0, colon).replace(/^\[(.*)\]$/, '$1') : '';
  const port = Number(address.slice(colon + 1));
  if (host === '' || !Number.isInteger(port) || port < 1 || port > 65_535) throw new SandboxClientError('BAD_ADDRESS', `address ${JSON.stringify(address)} must be host:port`);
  return { host, port };
}

export class SandboxClient {
  /** Invocations sent and not answered, by request id (a SlotTable underneath: see there why not a Map). */
  private readonly pending = new DeadlineTable<Pending>(CLOCK, SWEEP_MS, (pending) => pending.done(this.timedOut(pending), undefined));

  private constructor(
    private readonly connection: FrameConnection,
    readonly address: string,
  ) {
    connection.useCodec(RESULT_CODEC);
    connection.onFrame((frame) => this.onResult(frame as ResultFrame));
    connection.onClose((error) => {
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
    const i = this.pending.add({ done, deadline: CLOCK.now() + timeoutMs, sandboxId, timeoutMs });
    const frame: RequestFrame = { i, s: sandboxId, m: request.method, p: request.path, h: request.headers, b: request.body };
    try {
      this.connection.sendWith(REQUEST_CODEC, frame);
    } catch (error) {
      this.pending.take(i);
      throw error;
    }
  }

  close(): void {
    this.connection.close();
  }

  private onResult(frame: ResultFrame): void {
    const pending = this.pending.take(frame?.i);
    if (pending === undefined) return; // timed out meanwhile
    if (CLOCK.now() > pending.deadline) pending.done(this.timedOut(pending), undefined);
    else if ('e' in frame) pending.done(new SandboxClientError(frame.e.code, frame.e.message), undefined);
    else pending.done(undefined, { status: frame.st, headers: frame.h, body: frame.b });
  }

  private timedOut(pending: Pending): SandboxClientError {
    return new SandboxClientError('INVOKE_TIMEOUT', `no result from sandbox ${pending.sandboxId} at ${this.address} within ${pending.timeoutMs} ms`);
  }
}
