// The `sandbox.invoke` service of a data-plane shard: the dpsandbox actors' way to reach sandboxes. One
// SandboxClient connection per worker invocation server (`host:port`), shared by every sandbox that server
// hosts and by all invocations in flight; a closed connection is replaced on the next call.
//
// Failures carry stable codes (the dpsandbox actor turns any of them into a 502 for the client, except
// CONNECTION_FAILED: a request never sent goes back to its router to be placed on another sandbox):
//   CONNECTION_FAILED   could not connect or pass the handshake (refused, wrong token, timeout, bad address)
//   CONNECTION_LOST     the connection closed while the invocation was in flight (it may have run)
//   SANDBOX_TIMEOUT     no result within timeoutMs
//   SANDBOX_GONE, SANDBOX_CRASHED, SANDBOX_ABORTED, INVOKE_FAILED   as the worker reported them
//   BAD_REQUEST         the service input is malformed (a bug in the caller)
import type { AskResult } from '../../actors/actor.js';
import type { Invocation } from '../../actors/messages.js';
import type { CallbackService } from '../../runtime/host.js';
import { SandboxClient } from '../worker/invoke-client.js';
import type { InvokeResponse } from '../sandbox/index.js';
import { DirigentError } from '../../actors/errors.js';

export const SANDBOX_INVOKE = 'sandbox.invoke';

export interface SandboxInvokeInput {
  /** `host:port` of the worker's invocation server. */
  readonly address: string;
  readonly sandboxId: string;
  readonly invocation: Invocation;
  /** ms. */
  readonly timeoutMs: number;
}

export type SandboxPoolErrorCode = 'CONNECTION_FAILED' | 'CONNECTION_LOST' | 'SANDBOX_TIMEOUT' | 'BAD_REQUEST';

/** The pool's own failures are `SandboxPoolErrorCode`s; its promise form (`invoke`) rejects with any code the call settled with. */
export class SandboxPoolError extends DirigentError {
  override name = 'SandboxPoolError';
}

export type Connect = (address: string) => Promise<Pick<SandboxClient, 'invokeWith' | 'close' | 'isClosed'>>;

/** Bound on connect plus handshake, ms. */
const CONNECT_TIMEOUT_MS = 3000;

type Client = Awaited<ReturnType<Connect>>;
type Settle = (result: AskResult) => void;

export class SandboxPool {
  private readonly clients = new Map<string, Promise<Client>>();
  /** The connections `clients` resolved to, for calls that need not wait for anything. */
  private readonly ready = new Map<string, Client>();
  private closed = false;

  constructor(private readonly connect: Connect) {}

  /** A pool whose connections greet workers with the cluster token as data plane `dataplaneId`. */
  static forCluster(token: string, dataplaneId: string): SandboxPool {
    return new SandboxPool((address) => SandboxClient.connect(address, token, { role: 'dataplane', id: dataplaneId, connectTimeoutMs: CONNECT_TIMEOUT_MS }));
  }

  /** Open connections, for stats and tests. */
  get size(): number {
    return this.clients.size;
  }

  /** The host service (callback form: the usual call, per request, makes no promise). */
  readonly service: CallbackService = { call: (input, settle) => this.call(input, settle) };

  /** The same call answering a promise, for tests and tools. */
  readonly invoke = (input: unknown): Promise<InvokeResponse> =>
    new Promise((resolve, reject) => this.call(input, (result) => (result.ok ? resolve(result.value as InvokeResponse) : reject(new SandboxPoolError(result.error.code, result.error.message)))));

  private call(input: unknown, settle: Settle): void {
    let valid: SandboxInvokeInput;
    try {
      valid = validate(input);
    } catch (error) {
      return fail(settle, error as SandboxPoolError);
    }
    if (this.closed) return fail(settle, new SandboxPoolError('CONNECTION_FAILED', 'the data plane is stopping'));
    const ready = this.ready.get(valid.address);
    if (ready !== undefined && !ready.isClosed) return this.send(ready, valid, settle);
    this.client(valid.address).then(
      (client) => this.send(client, valid, settle),
      (error: SandboxPoolError) => settle({ ok: false, error: { code: error.code, message: error.message } }),
    );
  }

  private send(client: Client, input: SandboxInvokeInput, settle: Settle): void {
    const { address, sandboxId, invocation, timeoutMs } = input;
    // The headers are not copied: the client packs the request before invokeWith returns, and keeps nothing of it.
    const request = { method: invocation.method, path: invocation.path, headers: invocation.headers as Record<string, string>, body: invocation.body };
    try {
      client.invokeWith(sandboxId, request, timeoutMs, (error, response) => {
        if (error === undefined) return settle({ ok: true, value: response });
        const code = error.code;
        if (code === 'CONNECTION_CLOSED') this.forget(address, client);
        settle({ ok: false, error: { code: code === 'CONNECTION_CLOSED' ? 'CONNECTION_LOST' : code === 'INVOKE_TIMEOUT' ? 'SANDBOX_TIMEOUT' : code, message: error.message } });
      });
    } catch (error) {
      fail(settle, new SandboxPoolError('BAD_REQUEST', `sandbox.invoke: the request cannot be sent: ${(error as Error).message}`));
    }
  }

  private async client(address: string): Promise<Client> {
    // A cached connection that closed since is replaced once; two in a row means the server drops us.
    for (let tries = 0; ; tries++) {
      let attempt = this.clients.get(address);
      if (attempt === undefined) {
        // Concurrent calls for a new address share one attempt; a failed attempt is not cached.
        const fresh = this.connect(address);
        attempt = fresh;
        this.clients.set(address, fresh);
        fresh.catch(() => {
          if (this.clients.get(address) === fresh) this.clients.delete(address);
        });
      }
      let client: Client;
      try {
        client = await attempt;
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        throw new SandboxPoolError('CONNECTION_FAILED', `cannot reach the sandbox server at ${address} (${typeof code === 'string' ? code : 'error'}): ${(error as Error).message}`);
      }
      if (this.closed) {
        client.close();
        throw new SandboxPoolError('CONNECTION_FAILED', 'the data plane is stopping');
      }
      if (!client.isClosed) {
        this.ready.set(address, client);
        return client;
      }
      if (this.ready.get(address) === client) this.ready.delete(address);
      if (this.clients.get(address) === attempt) this.clients.delete(address);
      if (tries >= 1) throw new SandboxPoolError('CONNECTION_FAILED', `the sandbox server at ${address} closed the connection right after it opened`);
    }
  }

  private forget(address: string, client: Client): void {
    if (this.ready.get(address) === client) this.ready.delete(address);
    const entry = this.clients.get(address);
    if (entry === undefined) return;
    void entry.then((current) => {
      if (current === client && this.clients.get(address) === entry) this.clients.delete(address);
    }, () => undefined);
  }

  /** Close every connection; later calls fail with CONNECTION_FAILED. */
  close(): void {
    this.closed = true;
    for (const attempt of this.clients.values()) attempt.then((client) => client.close(), () => undefined);
    this.clients.clear();
    this.ready.clear();
  }
}

function validate(input: unknown): SandboxInvokeInput {
  const bad = (what: string): never => {
    throw new SandboxPoolError('BAD_REQUEST', `sandbox.invoke: ${what}`);
  };
  if (input === null || typeof input !== 'object') return bad('input must be { address, sandboxId, invocation, timeoutMs }');
  const { address, sandboxId, invocation, timeoutMs } = input as Partial<SandboxInvokeInput>;
  if (typeof address !== 'string' || address === '') bad('address must be host:port');
  if (typeof sandboxId !== 'string' || sandboxId === '') bad('sandboxId must be a non-empty string');
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) bad('timeoutMs must be a positive number of ms');
  if (invocation === null || typeof invocation !== 'object') return bad('invocation must be an object');
  if (typeof invocation.method !== 'string' || typeof invocation.path !== 'string' || invocation.headers === null || typeof invocation.headers !== 'object' || !(invocation.body instanceof Uint8Array)) {
    bad('invocation must be { method, path, headers, body: bytes }');
  }
  return input as SandboxInvokeInput;
}

/** Settles with `error` on a later turn: a callback service never settles before `call` returns. */
function fail(settle: Settle, error: SandboxPoolError): void {
  queueMicrotask(() => settle({ ok: false, error: { code: error.code, message: error.message } }));
}
