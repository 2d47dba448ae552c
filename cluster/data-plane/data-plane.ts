// The data-plane role: an ActorRuntime whose shards each run the uWS front and host the routers and
// sandbox actors of the functions hashed to them; an optional Dirigent-compatibility front in this thread
// (HTTP/1.1 and h2c on one port, compat-front.ts); and a link to the control plane, over which endpoint
// updates arrive and metrics, backlogs and endpoint lookups leave.
import { asyncJobsAddress, type AsyncJobsMessage } from '../../actors/async-jobs.js';
import type { LoadBalancingPolicy } from '../../actors/messages.js';
import { ActorRuntime, defaultLog, type LogLevel } from '../../runtime/index.js';
import { freePort } from '../../runtime/net.js';
import { ControlPlaneLink, parseAddressList } from '../control-plane-link.js';
import { InvokeApi } from './api.js';
import { CompatFront } from './compat-front.js';
import { hasCode } from '../../actors/errors.js';
import { DEFAULT_LOAD_BALANCING_POLICY } from '../../actors/settings.js';
import { PortClaim, portInUse } from './port-claim.js';
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_TIMEOUT_MS, parseDataPlaneOptions, type DataPlaneModuleOptions } from './shard.js';

/** Kinds the control plane hosts; envelopes for them leave over the control-plane link. */
export const CONTROL_PLANE_KINDS = ['function', 'autoscaler', 'scheduler'] as const;

export const dataPlaneModuleUrl = new URL('./module.js', import.meta.url).href;

export interface DataPlaneConfig {
  /** This data plane's id in the cluster (registrations, metrics, drain acknowledgements). */
  readonly id: string;
  /** `host:port` of the control plane's cluster listener; with replicas, every replica's, comma-separated. */
  readonly controlPlane: string;
  readonly token: string;
  /** Interface the fronts listen on. */
  readonly host: string;
  /** The host of the announced addresses (where loaders and the control plane reach it); default host. */
  readonly advertise?: string;
  /** The HTTP/1.1 + WebSocket port; 0 picks a free one. */
  readonly httpPort: number;
  /**
   * The Dirigent-compatibility port: HTTP/1.1 on node:http (which, unlike our uWS build, accepts header names
   * with underscores, as Dirigent's loader sends them) and h2c (HTTP/2 with prior knowledge) on the same port.
   * 0 picks a free one; absent: no compat front.
   */
  readonly compatPort?: number;
  /** Shard threads; default: available parallelism. */
  readonly shards?: number;
  /** Default least-in-flight. */
  readonly policy?: LoadBalancingPolicy;
  /** Where async jobs are stored durably (one data plane per directory); absent: the async API answers 501. */
  readonly asyncDir?: string;
  /** bytes; default 6 MiB. */
  readonly maxBodyBytes?: number;
  /** ms; default DEFAULT_REQUEST_TIMEOUT_MS. */
  readonly requestTimeoutMs?: number;
  /** Bound on the first connection to the control plane, ms; default 10 000. */
  readonly connectTimeoutMs?: number;
  readonly onLog?: (level: LogLevel, text: string) => void;
  /** Further module options (router tick, WebSocket limits, async-job tuning); tests use them. */
  readonly tuning?: Pick<DataPlaneModuleOptions, 'tickMs' | 'ws' | 'asyncJobs'> & Record<string, unknown>;
  /** The shard module to load instead of module.js (one built with createDataPlaneModule, e.g. with fake routers). */
  readonly moduleUrl?: string;
}

/** Attempts at a picked port that another process took between the pick and the shards' listen. */
const PORT_ATTEMPTS = 3;

export class DataPlane {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly id: string,
    readonly runtime: ActorRuntime,
    private readonly link: ControlPlaneLink,
    private readonly compat: CompatFront | undefined,
    private readonly claim: PortClaim,
    /** `host:port` of the HTTP/1.1 + WebSocket front. */
    readonly invokeAddress: string,
    /** `host:port` of the compat front (HTTP/1.1 and h2c), when there is one. */
    readonly compatAddress: string | undefined,
  ) {}

  get connected(): boolean {
    return this.link.connected;
  }

  static async start(config: DataPlaneConfig): Promise<DataPlane> {
    const log = config.onLog ?? defaultLog;
    parseAddressList(config.controlPlane);
    const { runtime, port, claim } = await startRuntime(config, log);
    let compat: CompatFront | undefined;
    let link: ControlPlaneLink | undefined;
    try {
      const options = parseDataPlaneOptions(runtimeOptions(config, port));
      if (config.compatPort !== undefined) {
        const api = new InvokeApi((to, message, timeoutMs, settle) => runtime.askFor(to, message, timeoutMs, undefined, settle), {
          requestTimeoutMs: options.requestTimeoutMs,
          asyncEnabled: options.asyncDir !== undefined,
        });
        compat = await CompatFront.listen({ host: config.host, port: config.compatPort, maxBodyBytes: options.maxBodyBytes }, api, log).catch((error: unknown) => {
          throw (error as NodeJS.ErrnoException).code === 'EADDRINUSE' ? portInUse('compat', config.host, config.compatPort!) : error;
        });
      }
      const advertise = config.advertise ?? config.host;
      const invokeAddress = `${advertise}:${port}`;
      const compatAddress = compat ? `${advertise}:${compat.port}` : undefined;
      link = new ControlPlaneLink(runtime, {
        controlPlane: config.controlPlane,
        token: config.token,
        role: 'dataplane',
        id: config.id,
        // The shard count: each shard's router replicas report as a data plane of their own (dataplaneReplicaId).
        info: { invokeAddress, shards: runtime.shards, ...(compatAddress ? { compatAddress } : {}) },
        remoteKinds: CONTROL_PLANE_KINDS,
        log,
      });
      await link.start(config.connectTimeoutMs ?? 10_000);
      // Pending jobs run again only now: before the link is up their routers could not look functions up.
      if (options.asyncDir !== undefined) runtime.tell(asyncJobsAddress, { type: 'aj.start' } satisfies AsyncJobsMessage);
      log('info', `data plane ${config.id} serves HTTP/1.1 and WebSocket on ${invokeAddress}${compatAddress ? `, HTTP/1.1 and h2c (Dirigent compatibility) on ${compatAddress}` : ''}`);
      return new DataPlane(config.id, runtime, link, compat, claim, invokeAddress, compatAddress);
    } catch (error) {
      link?.close();
      await compat?.close();
      await runtime.stop();
      await claim.release();
      throw error;
    }
  }

  /**
   * Close the link and the compat front, then the runtime (each shard closes its listen socket first), then give
   * up the claim on the invoke port. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.link.close();
      await this.compat?.close();
      await this.runtime.stop();
      await this.claim.release();
    })();
    return this.stopping;
  }
}

function runtimeOptions(config: DataPlaneConfig, port: number): DataPlaneModuleOptions {
  return {
    ...(config.tuning ?? {}),
    dataplaneId: config.id,
    token: config.token,
    host: config.host,
    httpPort: port,
    policy: config.policy ?? DEFAULT_LOAD_BALANCING_POLICY,
    maxBodyBytes: config.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    requestTimeoutMs: config.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    ...(config.asyncDir === undefined ? {} : { asyncDir: config.asyncDir }),
  };
}

/**
 * Every shard must listen on the same port, so a port to pick is picked here first; then the port is claimed
 * (port-claim.ts: no other data plane or process may serve it) before the shards listen, and checked again after.
 * Another process may take a picked port before the shards bind it; that attempt is retried with a new port.
 */
async function startRuntime(config: DataPlaneConfig, log: (level: LogLevel, text: string) => void): Promise<{ runtime: ActorRuntime; port: number; claim: PortClaim }> {
  for (let attempt = 1; ; attempt++) {
    const port = config.httpPort === 0 ? await freePort(config.host) : config.httpPort;
    const options = runtimeOptions(config, port);
    parseDataPlaneOptions(options); // fail here, naming the option, rather than in every shard thread
    let claim: PortClaim | undefined;
    let runtime: ActorRuntime | undefined;
    try {
      claim = await PortClaim.take(config.host, port, config.id);
      runtime = await ActorRuntime.start({
        ...(config.shards === undefined ? {} : { shards: config.shards }),
        modules: [{ url: config.moduleUrl ?? dataPlaneModuleUrl, options }],
        remoteKinds: CONTROL_PLANE_KINDS,
        onLog: log,
      });
      claim.verifyAlone(config.host);
      return { runtime, port, claim };
    } catch (error) {
      await runtime?.stop();
      await claim?.release();
      // A shard's LISTEN_FAILED arrives as the cause of SHARD_START_FAILED (rebuilt from the thread's WireError).
      const taken = hasCode(error, 'PORT_TAKEN', 'LISTEN_FAILED');
      if (!(taken && config.httpPort === 0 && attempt < PORT_ATTEMPTS)) throw error;
      log('warn', `port ${port} was taken before the data plane could listen on it; picking another`);
    }
  }
}
