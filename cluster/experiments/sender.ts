// Sends the loader's invocation request over HTTP/1.1 keep-alive: `POST /` to the address registration
// returned, the function named by the Host header, the trace function's parameters as headers
// (vhive-serverless/loader, pkg/driver/clients/http_client.go). Open loop: `send` never waits for an answer.
// Bounded: at most `maxSockets` connections per address (requests beyond wait for one, and that wait counts in
// their response time, as in the loader's Go transport), at most `maxPending` requests at once (beyond that a
// request fails at once, marked as a connection failure: the client, not the system, was the limit), and each
// request at most `timeoutMs` from send to the end of its answer.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface SenderOptions {
  /** Connections per address. */
  readonly maxSockets: number;
  /** Requests sent and not yet answered, at most. */
  readonly maxPending: number;
  /** Send -> answer read, ms. */
  readonly timeoutMs: number;
}

export interface SendResult {
  /** µs since the Unix epoch. */
  readonly startTimeUs: number;
  /** Send -> answer read, µs. */
  readonly responseTimeUs: number;
  /** 0 without an answer. */
  readonly status: number;
  readonly body: string;
  /** `x-dirigent-cold-start` of the answer; undefined without one. */
  readonly coldStart?: boolean;
  /** Why there is no answer. */
  readonly error?: string;
}

export class HttpSender {
  private readonly agent: http.Agent;
  private pendingCount = 0;

  constructor(private readonly options: SenderOptions) {
    // Idle connections are all kept (Node keeps 256 by default and closes the rest): after a burst, the next one
    // would otherwise pay a connect per request again.
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets, maxFreeSockets: options.maxSockets, scheduling: 'lifo' });
  }

  get pending(): number {
    return this.pendingCount;
  }

  /** `address` is `host:port`. `done` is called exactly once. */
  send(address: string, hostHeader: string, headers: Readonly<Record<string, string>>, done: (result: SendResult) => void): void {
    const startedAt = performance.now();
    const startTimeUs = Math.round((performance.timeOrigin + startedAt) * 1000);
    const finish = (status: number, body: string, coldStart: boolean | undefined, error: string | undefined) => {
      this.pendingCount--;
      const responseTimeUs = Math.round((performance.now() - startedAt) * 1000);
      done({ startTimeUs, responseTimeUs, status, body, ...(coldStart === undefined ? {} : { coldStart }), ...(error === undefined ? {} : { error }) });
    };
    this.pendingCount++;
    if (this.pendingCount > this.options.maxPending) return finish(0, '', undefined, `more than ${this.options.maxPending} requests pending in the client`);
    const colon = address.lastIndexOf(':');
    let settled = false;
    const settle = (status: number, body: string, coldStart: boolean | undefined, error?: string) => {
      if (settled) return;
      settled = true;
      finish(status, body, coldStart, error);
    };
    const req = http.request({
      host: address.slice(0, colon),
      port: Number(address.slice(colon + 1)),
      method: 'POST',
      path: '/',
      agent: this.agent,
      headers: { ...headers, host: hostHeader, 'content-length': '0' },
    });
    req.setTimeout(this.options.timeoutMs, () => req.destroy(new Error(`no answer within ${this.options.timeoutMs} ms`)));
    req.on('error', (error) => settle(0, '', undefined, error.message));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (error) => settle(0, '', undefined, error.message));
      res.on('end', () => {
        const cold = res.headers['x-dirigent-cold-start'];
        settle(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), cold === undefined ? undefined : cold === 'true');
      });
    });
    req.end();
  }

  /** Closes idle connections; call when nothing is pending. */
  close(): void {
    this.agent.destroy();
  }
}
