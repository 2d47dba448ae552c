// A small client of the admin API and the invocation endpoint, used by the CLI and the tests.

export class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
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

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.adminToken) headers.authorization = `Bearer ${this.options.adminToken}`;
    let response: Response;
    try {
      response = await fetch(`${this.options.adminUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
      });
    } catch (error) {
      throw new AdminError(0, 'UNREACHABLE', `cannot reach the control plane at ${this.options.adminUrl} (${(error as Error).message}); is \`dirigent up\` running?`);
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new AdminError(response.status, error?.code ?? 'HTTP_ERROR', error?.message ?? `${response.status} ${text}`);
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

/** The JSON shape of a function view (see cluster/control-plane FunctionView). */
export interface FunctionViewJson {
  readonly spec: { readonly name: string; readonly runtime: string; readonly source: Record<string, unknown>; readonly concurrency: number; readonly scaling: Record<string, number> };
  readonly status: { readonly desired: number; readonly creating: number; readonly ready: number; readonly draining: number } | null;
  readonly autoscaler: { readonly panic: boolean; readonly observedInFlight: number } | null;
}
