// How workers and data planes stay connected to the control plane: connect, greet with the cluster
// token, hand the connection to the cluster transport, and reconnect with capped backoff when it drops.
//
// With replicated control planes the link is given every replica's address and follows the leader: only the
// leader listens for the cluster, so the link tries the addresses in turn (starting after the one that
// failed) and backs off only after a whole round failed. A welcome with a term lower than one already seen
// comes from a deposed leader: it is dropped and the next address tried.
import type { Address } from '../actors/actor.js';
import { DirigentError } from '../actors/errors.js';
import { connectFrames, type FrameConnection, type Welcome } from '../runtime/frames.js';
import type { ActorRuntime, LogLevel } from '../runtime/index.js';
import { ClusterTransport } from '../runtime/transport.js';

export interface ControlPlaneLinkOptions {
  /** `host:port` of the control plane's cluster listener; with replicas, all of them, comma-separated. */
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
  /** Backoff bounds between rounds over the addresses, ms. */
  readonly minRetryMs?: number;
  readonly maxRetryMs?: number;
}

/** Bound on one connection attempt (TCP connect and handshake), ms: a dead host may never answer. */
const CONNECT_TIMEOUT_MS = 1000;
/**
 * Default cap on the backoff between rounds, ms: after a failover the new leader is found within this (half of
 * it on average, on the way to the 3 s failover target). A round is one connection attempt per replica, refused
 * at once by a follower on loopback or a LAN: cheap, and made only while no leader is found.
 */
const MAX_RETRY_MS = 100;
/** Default first backoff after a whole round failed, ms. */
const MIN_RETRY_MS = 50;

/** `a:1,b:2` -> the addresses, each checked. */
export function parseAddressList(text: string): { host: string; port: number }[] {
  const addresses = text.split(',').map((part) => part.trim()).filter(Boolean);
  if (addresses.length === 0) throw new DirigentError('BAD_ADDRESS', `expected host:port[,host:port...], got ${JSON.stringify(text)}`);
  return addresses.map(parseHostPort);
}

export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) throw new DirigentError('BAD_ADDRESS', `expected host:port, got ${JSON.stringify(text)}`);
  return { host: match[1]!, port };
}

export class ControlPlaneLink {
  private connection: FrameConnection | undefined;
  private readonly transport: ClusterTransport;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private retryMs: number;
  private readonly addresses: { host: string; port: number }[];
  /** Index of the address to try next. */
  private next = 0;
  /** Failed attempts since the last success; a whole round of them backs off. */
  private failures = 0;
  /** The highest leadership term seen in a welcome. */
  term = 0;
  /** `host:port` of the control plane connected now (or last). */
  current: string;

  constructor(
    runtime: ActorRuntime,
    private readonly options: ControlPlaneLinkOptions,
  ) {
    this.retryMs = options.minRetryMs ?? MIN_RETRY_MS;
    this.addresses = parseAddressList(options.controlPlane);
    this.current = `${this.addresses[0]!.host}:${this.addresses[0]!.port}`;
    this.transport = new ClusterTransport(runtime, (address: Address) => (this.connection && !this.connection.isClosed && options.remoteKinds.includes(address.kind) ? [this.connection] : []), new Set(options.remoteKinds));
  }

  get connected(): boolean {
    return this.connection !== undefined && !this.connection.isClosed;
  }

  /** Resolves after the first successful connection, or rejects after `timeoutMs` without one. */
  start(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(new DirigentError('CONTROL_PLANE_UNREACHABLE', `could not reach a control plane at ${this.options.controlPlane} within ${timeoutMs} ms`)), timeoutMs);
      this.attempt(() => {
        clearTimeout(deadline);
        resolve();
      });
    });
  }

  private attempt(onFirst?: () => void): void {
    if (this.closed) return;
    const { host, port } = this.addresses[this.next]!;
    const address = `${host}:${port}`;
    this.next = (this.next + 1) % this.addresses.length;
    connectFrames({ host, port, timeoutMs: CONNECT_TIMEOUT_MS, hello: { token: this.options.token, role: this.options.role, id: this.options.id, info: this.options.info } }).then(
      ({ connection, welcome }) => {
        if (this.closed) {
          connection.destroy();
          return;
        }
        const term = Number((welcome.info as { term?: unknown } | undefined)?.term ?? 0);
        if (term < this.term) {
          this.options.log('warn', `control plane at ${address} is of term ${term}, older than ${this.term}: a deposed leader; trying the next`);
          connection.destroy();
          return this.retry(onFirst);
        }
        this.connection = connection;
        this.current = address;
        this.failures = 0;
        this.retryMs = this.options.minRetryMs ?? MIN_RETRY_MS;
        this.term = term;
        // The next attempt, after this connection drops, starts with the same address (it may come back).
        this.next = this.addresses.findIndex((a) => a.host === host && a.port === port);
        this.transport.attach(connection);
        connection.onClose(() => {
          if (this.closed) return;
          this.options.log('warn', `lost the control plane at ${address}; reconnecting`);
          this.retry();
        });
        this.options.log('info', `connected to the control plane at ${address} (term ${this.term})`);
        this.options.onConnected?.(welcome);
        onFirst?.();
      },
      (error: Error) => {
        this.options.log('debug', `control plane at ${address} not reachable: ${error.message}`);
        this.retry(onFirst);
      },
    );
  }

  /** The next address at once while a round is not over; after a whole round failed, a capped backoff. */
  private retry(onFirst?: () => void): void {
    if (this.closed) return;
    this.failures += 1;
    if (this.failures % this.addresses.length !== 0) return this.attempt(onFirst);
    this.retryTimer = setTimeout(() => this.attempt(onFirst), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, this.options.maxRetryMs ?? MAX_RETRY_MS);
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.transport.close();
    this.connection?.destroy();
  }
}
