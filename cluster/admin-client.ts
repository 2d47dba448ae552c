// A small client of the admin API and the invocation endpoint, used by the CLI and the tests.
import type { SandboxLogLine } from '../actors/sandbox-logs.js';
import { lineSplitter } from './sandbox/runtime.js';
import { DirigentError, isErrorCode, type ErrorCode } from '../actors/errors.js';

/** A failure with the HTTP status it is (or was) answered with; 0: no HTTP answer at all. */
export class AdminError extends DirigentError {
  override name = 'AdminError';
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    options?: { readonly cause?: unknown },
  ) {
    super(code, message, options);
  }
}

export interface AdminClientOptions {
  /** e.g. http://127.0.0.1:9091 */
  readonly adminUrl: string;
  readonly adminToken?: string;
  /** Per request, ms. */
  readonly timeoutMs?: number;
}

export class AdminClient {
  constructor(private readonly options: AdminClientOptions) {}

  /** `signal` replaces the per-request timeout (a followed stream has none). */
  private async send(method: string, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.adminToken) headers.authorization = `Bearer ${this.options.adminToken}`;
    try {
      return await fetch(`${this.options.adminUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (error) {
      throw new AdminError(0, 'UNREACHABLE', `cannot reach the control plane at ${this.options.adminUrl} (${(error as Error).message}); is \`dirigent up\` running?`);
    }
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.decode<T>(await this.send(method, path, body, AbortSignal.timeout(this.options.timeoutMs ?? 30_000)));
  }

  /** The JSON body, or an AdminError with the server's code and message. */
  private async decode<T>(response: Response): Promise<T> {
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new AdminError(response.status, isErrorCode(error?.code) ? error.code : 'HTTP_ERROR', error?.message ?? `${response.status} ${text}`);
    }
    return parsed as T;
  }

  createFunction(spec: unknown): Promise<FunctionViewJson> {
    return this.request('POST', '/api/v1/functions', spec);
  }

  updateFunction(name: string, patch: unknown): Promise<FunctionViewJson> {
    return this.request('PATCH', `/api/v1/functions/${encodeURIComponent(name)}`, patch);
  }

  getFunction(name: string): Promise<FunctionViewJson> {
    return this.request('GET', `/api/v1/functions/${encodeURIComponent(name)}`);
  }

  async listFunctions(): Promise<FunctionViewJson[]> {
    return (await this.request<{ functions: FunctionViewJson[] }>('GET', '/api/v1/functions')).functions;
  }

  deleteFunction(name: string): Promise<{ deleted: string }> {
    return this.request('DELETE', `/api/v1/functions/${encodeURIComponent(name)}`);
  }

  /** `sinceMs`: ms since the epoch; `tail`: the newest lines. */
  functionLogs(name: string, query: LogQuery = {}): Promise<{ lines: SandboxLogLine[]; unreachable: string[] }> {
    return this.request('GET', `/api/v1/functions/${encodeURIComponent(name)}/logs${logQueryString(query, false)}`);
  }

  /**
   * Streams the function's output to `onLine` (the newest `tail` lines first, then each new one) until `signal`
   * aborts, which resolves; rejects when the function is deleted or the control plane goes away.
   */
  async followLogs(name: string, query: LogQuery, onLine: (line: SandboxLogLine) => void, signal: AbortSignal): Promise<void> {
    let response: Response;
    try {
      response = await this.send('GET', `/api/v1/functions/${encodeURIComponent(name)}/logs${logQueryString(query, true)}`, undefined, signal);
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
    if (!response.ok || response.body === null) {
      await this.decode(response);
      throw new AdminError(response.status, 'HTTP_ERROR', 'the control plane answered the follow request without a stream');
    }
    let failure: AdminError | undefined;
    const lines = lineSplitter((text) => {
      if (text === '' || failure !== undefined) return;
      const parsed = JSON.parse(text) as SandboxLogLine | { error: { code: string; message: string } };
      if ('error' in parsed) failure = new AdminError(200, isErrorCode(parsed.error.code) ? parsed.error.code : 'HTTP_ERROR', parsed.error.message);
      else onLine(parsed);
    });
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body) lines.write(decoder.decode(chunk, { stream: true }));
    } catch (error) {
      if (signal.aborted) return;
      throw new AdminError(0, 'UNREACHABLE', `lost the control plane at ${this.options.adminUrl} (${(error as Error).message})`);
    }
    lines.end();
    if (failure !== undefined) throw failure;
    if (!signal.aborted) throw new AdminError(0, 'UNREACHABLE', `the control plane at ${this.options.adminUrl} ended the stream`);
  }

  status(): Promise<Record<string, unknown>> {
    return this.request('GET', '/api/v1/status');
  }

  async nodes(): Promise<Record<string, unknown>[]> {
    return (await this.request<{ nodes: Record<string, unknown>[] }>('GET', '/api/v1/nodes')).nodes;
  }

  async replicas(): Promise<{ id: string; adminUrl: string; role: string; term: number | null; readiness: string }[]> {
    return (await this.request<{ replicas: { id: string; adminUrl: string; role: string; term: number | null; readiness: string }[] }>('GET', '/api/v1/replicas')).replicas;
  }

  async dataplanes(): Promise<{ id: string; invokeAddress: string; connected: boolean }[]> {
    return (await this.request<{ dataplanes: { id: string; invokeAddress: string; connected: boolean }[] }>('GET', '/api/v1/dataplanes')).dataplanes;
  }
}

export interface LogQuery {
  /** ms since the Unix epoch. */
  readonly sinceMs?: number;
  readonly tail?: number;
}

function logQueryString(query: LogQuery, follow: boolean): string {
  const params = new URLSearchParams();
  if (query.sinceMs !== undefined) params.set('since', String(query.sinceMs));
  if (query.tail !== undefined) params.set('tail', String(query.tail));
  if (follow) params.set('follow', 'true');
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

/**
 * The JSON shape of a function view (see cluster/control-plane FunctionView and actors/messages FunctionStatus). Only
 * what the CLI reads is
 * typed; the index signatures keep whatever else the server sends, which `describe` shows as it comes.
 */
export interface FunctionViewJson {
  readonly spec: {
    readonly name: string;
    readonly runtime: string;
    readonly source: Record<string, unknown>;
    readonly concurrency: number;
    readonly scaling: Record<string, number>;
    readonly version?: number;
    /** The version sandboxes run: `version` when the last update changed the sandbox template. */
    readonly templateVersion?: number;
    readonly env?: Record<string, string>;
    readonly [field: string]: unknown;
  };
  readonly status: {
    /** The template version new sandboxes run (absent from control planes before versions). */
    readonly version?: number;
    readonly state?: 'active' | 'updating' | 'failed';
    readonly stateReason?: string | null;
    /** `lastAt` and `retryAt` in ms since the epoch (the control plane's clock). */
    readonly failures?: { readonly count: number; readonly lastError: string; readonly lastAt: number; readonly retryAt: number } | null;
    readonly desired: number;
    readonly creating: number;
    readonly ready: number;
    readonly draining: number;
    readonly outdated?: number;
    readonly sandboxes?: readonly { readonly sandboxId: string; readonly nodeId: string; readonly phase: string; readonly since: number; readonly version?: number; readonly [field: string]: unknown }[];
    readonly [field: string]: unknown;
  } | null;
  readonly autoscaler: {
    readonly panic: boolean;
    readonly observedInFlight: number;
    readonly totals?: { readonly invocations: number; readonly coldStarts: number; readonly coldStartMsSum: number; readonly rejected: Readonly<Record<string, number>> };
    readonly [field: string]: unknown;
  } | null;
}
