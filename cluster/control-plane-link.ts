// How workers and data planes stay connected to the control plane: connect, greet with the cluster
// token, hand the connection to the cluster transport, and reconnect with capped backoff when it drops.
import type { Address } from '../actors/actor.js';
import { connectFrames, type FrameConnection, type Welcome } from '../runtime/frames.js';
import type { ActorRuntime, LogLevel } from '../runtime/index.js';
import { ClusterTransport } from '../runtime/transport.js';

export interface ControlPlaneLinkOptions {
  /** `host:port` of the control plane's cluster listener. */
  readonly controlPlane: string;
  readonly token: string;
  readonly role: 'worker' | 'dataplane';
  readonly id: string;
  /** Announced in the handshake (a worker's node ids, a data plane's invocation address). */
  readonly info: unknown;
  /** Kinds hosted by the control plane; envelopes for them go over this link. */
  readonly remoteKinds: readonly string[];
  readonly log: (level: LogLevel, text: string) => void;
  /** Runs after every (re)connection, e.g. to (re)register nodes. */
  readonly onConnected?: (welcome: Welcome) => void;
  /** Backoff bounds, ms. */
  readonly minRetryMs?: number;
  readonly maxRetryMs?: number;
}

export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) throw Object.assign(new Error(`expected host:port, got ${JSON.stringify(text)}`), { code: 'BAD_ADDRESS' });
  return { host: match[1]!, port };
}

export class ControlPlaneLink {
  private connection: FrameConnection | undefined;
  private readonly transport: ClusterTransport;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private retryMs: number;
  /** The control plane's leadership term from its welcome. */
  term = 0;

  constructor(
    runtime: ActorRuntime,
    private readonly options: ControlPlaneLinkOptions,
  ) {
    this.retryMs = options.minRetryMs ?? 100;
    this.transport = new ClusterTransport(runtime, (address: Address) => (this.connection && !this.connection.isClosed && options.remoteKinds.includes(address.kind) ? [this.connection] : []), new Set(options.remoteKinds));
  }

  get connected(): boolean {
    return this.connection !== undefined && !this.connection.isClosed;
  }

  /** Resolves after the first successful connection, or rejects after `timeoutMs` without one. */
  start(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(Object.assign(new Error(`could not reach the control plane at ${this.options.controlPlane} within ${timeoutMs} ms`), { code: 'CONTROL_PLANE_UNREACHABLE' })), timeoutMs);
      this.attempt(() => {
        clearTimeout(deadline);
        resolve();
      });
    });
  }

  private attempt(onFirst?: () => void): void {
    if (this.closed) return;
    const { host, port } = parseHostPort(this.options.controlPlane);
    connectFrames({ host, port, hello: { token: this.options.token, role: this.options.role, id: this.options.id, info: this.options.info } }).then(
      ({ connection, welcome }) => {
        if (this.closed) {
          connection.destroy();
          return;
        }
        this.connection = connection;
        this.retryMs = this.options.minRetryMs ?? 100;
        this.term = Number((welcome.info as { term?: unknown } | undefined)?.term ?? 0);
        this.transport.attach(connection);
        connection.onClose(() => {
          if (this.closed) return;
          this.options.log('warn', `lost the control plane at ${this.options.controlPlane}; reconnecting`);
          this.scheduleRetry();
        });
        this.options.log('info', `connected to the control plane at ${this.options.controlPlane} (term ${this.term})`);
        this.options.onConnected?.(welcome);
        onFirst?.();
      },
      (error: Error) => {
        this.options.log('debug', `control plane at ${this.options.controlPlane} not reachable: ${error.message}`);
        this.scheduleRetry(onFirst);
      },
    );
  }

  private scheduleRetry(onFirst?: () => void): void {
    if (this.closed) return;
    this.retryTimer = setTimeout(() => this.attempt(onFirst), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, this.options.maxRetryMs ?? 2000);
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.transport.close();
    this.connection?.destroy();
  }
}
