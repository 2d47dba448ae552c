// Client of the sandbox invocation protocol (protocol.ts) over one frames connection: for tests, the
// benchmark and the data plane. Many invocations may be in flight at once on one client.
import { connectFrames, type FrameConnection } from '../../runtime/frames.js';
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

interface Pending {
  readonly resolve: (response: InvokeResponse) => void;
  readonly reject: (error: SandboxClientError) => void;
  readonly timer: NodeJS.Timeout;
}

/** `host:port`, or `[v6]:port`. */
export function parseAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const host = colon > 0 ? address.slice(0, colon).replace(/^\[(.*)\]$/, '$1') : '';
  const port = Number(address.slice(colon + 1));
  if (host === '' || !Number.isInteger(port) || port < 1 || port > 65_535) throw new SandboxClientError('BAD_ADDRESS', `address ${JSON.stringify(address)} must be host:port`);
  return { host, port };
}

export class SandboxClient {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  private constructor(
    private readonly connection: FrameConnection,
    readonly address: string,
  ) {
    connection.onFrame((frame) => this.onResult(frame as ResultFrame));
    connection.onClose((error) => {
      const reason = new SandboxClientError('CONNECTION_CLOSED', `connection to ${address} closed${error ? `: ${error.message}` : ''}`);
      for (const [i, pending] of this.pending) {
        clearTimeout(pending.timer);
        this.pending.delete(i);
        pending.reject(reason);
      }
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

  /** Resolves with the sandbox's response (any status); rejects with a SandboxClientError. `timeoutMs`: ms. */
  invoke(sandboxId: string, request: InvokeRequest, timeoutMs: number): Promise<InvokeResponse> {
    if (this.connection.isClosed) return Promise.reject(new SandboxClientError('CONNECTION_CLOSED', `connection to ${this.address} is closed`));
    const i = this.nextId++;
    return new Promise<InvokeResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(i);
        reject(new SandboxClientError('INVOKE_TIMEOUT', `no result from sandbox ${sandboxId} at ${this.address} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(i, { resolve, reject, timer });
      const frame: RequestFrame = { i, s: sandboxId, m: request.method, p: request.path, h: request.headers, b: request.body };
      this.connection.send(frame);
    });
  }

  close(): void {
    this.connection.close();
  }

  private onResult(frame: ResultFrame): void {
    const pending = this.pending.get(frame?.i);
    if (pending === undefined) return; // timed out meanwhile
    this.pending.delete(frame.i);
    clearTimeout(pending.timer);
    if ('e' in frame) pending.reject(new SandboxClientError(frame.e.code, frame.e.message));
    else pending.resolve({ status: frame.st, headers: frame.h, body: frame.b });
  }
}
