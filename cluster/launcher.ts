// `dirigent up`: the whole system on one machine. The control plane (with the admin API) runs in this
// process; the data plane and the workers run as child processes of the same CLI, connected over
// loopback exactly as separate machines would be. Stopping (Ctrl-C) stops the children, then the control plane.
//
// Children end with their parent, however it ends: each holds one end of an IPC channel to this process, which
// the kernel closes when this process exits, even on SIGKILL; the child then stops as on SIGTERM (`endWithParent`).
// Without it a killed `dirigent up` left its data plane and workers running, holding the invoke port.
// Ports are checked before anything starts, so that a second `dirigent up` on taken ports is refused before it
// opens the store of its data directory (port-claim.ts: the data plane's own claim is the one free of races).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { assertPortFree } from './data-plane/index.js';
import { intFlag, UsageError, type CliValues } from './flags.js';
import { poolConfig, startControlPlaneRole } from './roles.js';
import { FileStore } from './store/index.js';
import { DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_RUNTIME_KIND, DEFAULT_UP_WORKERS, ENV, PORTS, RUNTIME_KINDS, type RuntimeKind } from '../actors/settings.js';
import { stopSignal } from './signals.js';

export interface LocalClusterConfig {
  readonly host: string;
  /** 0 picks free ports. */
  readonly adminPort: number;
  readonly invokePort: number;
  /** The data plane's Dirigent-compatibility port (HTTP/1.1 and h2c; what Dirigent's loader should target); 0 picks a free one. */
  readonly compatPort: number;
  readonly dataDir: string;
  readonly workers: number;
  readonly runtime: RuntimeKind;
  /** The workers' --pool and --pool-memory-mib, as given (absent: their defaults). */
  readonly pool?: string;
  readonly poolMemoryMiB?: string;
  readonly token?: string;
  /** The admin API's token: changes, and the console's actions, need it (absent: DIRIGENT_ADMIN_TOKEN, else none and the console is read-only). */
  readonly adminToken?: string;
  /** Every line the children print on stderr, prefixed with their name. */
  readonly onOutput?: (line: string) => void;
  /** Bound on each child's start, ms. */
  readonly startTimeoutMs?: number;
}

const CLI = new URL('./cli.js', import.meta.url).pathname;
const STOP_GRACE_MS = 5000;

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
}

export function startChild(name: string, args: string[], token: string, onOutput: (line: string) => void, timeoutMs: number): Promise<{ child: Child; ready: Record<string, unknown> }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, [ENV.token]: token }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  // The channel is only there to close when this process ends; it must not keep this process alive.
  child.channel?.unref();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const recent: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    recent.push(line);
    if (recent.length > 20) recent.shift();
    onOutput(`[${name}] ${line}`);
  });
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${timeoutMs} ms:\n${recent.join('\n')}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code} before it was ready:\n${recent.join('\n')}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (parsed.ready !== undefined) {
          clearTimeout(timer);
          resolvePromise({ child: { name, process: child, exited }, ready: parsed });
          return;
        }
      } catch {
        // Not a ready line: pass it on.
      }
      onOutput(`[${name}] ${line}`);
    });
  });
}

/**
 * In a role process that `dirigent up` started (it has an IPC channel to its parent): when the parent ends, stop
 * as on SIGTERM, and exit at the latest STOP_GRACE_MS later, as the parent would have made it.
 */
export function endWithParent(): void {
  const channel = process.channel;
  if (channel === undefined) return;
  channel.unref();
  // Output goes to the parent only; once it is gone a write fails with EPIPE, which must not crash the stop.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  process.once('disconnect', () => {
    setTimeout(() => process.exit(1), STOP_GRACE_MS).unref();
    process.kill(process.pid, 'SIGTERM');
  });
}

export async function stopChild(child: Child): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => child.process.kill('SIGKILL'), STOP_GRACE_MS);
  await child.exited;
  clearTimeout(timer);
}

export class LocalCluster {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly adminUrl: string,
    readonly invokeUrl: string,
    /** The data plane's compat port (HTTP/1.1 with underscore header names, and h2c), as `http://host:port`. */
    readonly compatUrl: string,
    readonly clusterAddress: string,
    readonly token: string,
    /** Functions the control plane found in its store at start (a previous run's), and where that store is. */
    readonly restored: { readonly functions: readonly string[]; readonly from: string },
    private readonly children: Child[],
    private readonly stopControlPlane: () => Promise<void>,
  ) {}

  static async start(config: LocalClusterConfig): Promise<LocalCluster> {
    const token = config.token ?? randomBytes(18).toString('base64url');
    const dataDir = resolve(config.dataDir);
    const ports = [['admin', config.adminPort], ['invoke', config.invokePort], ['compat', config.compatPort]] as const;
    for (const [what, port] of ports) if (port !== 0) await assertPortFree(what, config.host, port);
    mkdirSync(dataDir, { recursive: true });
    const onOutput = config.onOutput ?? ((line: string) => process.stderr.write(`${line}\n`));
    const timeoutMs = config.startTimeoutMs ?? 30_000;
    const { replica, admin } = await startControlPlaneRole({ host: config.host, 'admin-port': String(config.adminPort), 'cluster-port': '0', 'data-dir': dataDir, token, ...(config.adminToken === undefined ? {} : { 'admin-token': config.adminToken }) } as CliValues);
    const stopControlPlane = async () => {
      await replica.stop();
      await admin.close();
    };
    const clusterAddress = replica.self.clusterAddress;
    const children: Child[] = [];
    const common = ['--control-plane', clusterAddress, '--host', config.host];
    const poolFlags = [...(config.pool === undefined ? [] : ['--pool', config.pool]), ...(config.poolMemoryMiB === undefined ? [] : ['--pool-memory-mib', config.poolMemoryMiB])];
    try {
      const starts = [
        startChild('dp1', ['data-plane', '--id', 'dp1', '--invoke-port', String(config.invokePort), '--compat-port', String(config.compatPort), '--data-dir', join(dataDir, 'dp1'), ...common], token, onOutput, timeoutMs),
        ...Array.from({ length: config.workers }, (_, i) =>
          startChild(`w${i + 1}`, ['worker', '--id', `w${i + 1}`, '--runtime', config.runtime, ...poolFlags, ...common], token, onOutput, timeoutMs),
        ),
      ];
      const results = await Promise.allSettled(starts);
      for (const result of results) if (result.status === 'fulfilled') children.push(result.value.child);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      const dataplane = (results[0] as PromiseFulfilledResult<{ ready: Record<string, unknown> }>).value.ready;
      // Once the workers are back the leader has rebuilt, and every function it found in its store runs again.
      const functions = (await replica.plane()?.listFunctions())?.map((f) => f.spec.name) ?? [];
      const restored = { functions, from: replica.store instanceof FileStore ? replica.store.dir : 'the store' };
      return new LocalCluster(admin.url, `http://${String(dataplane.invoke)}`, `http://${String(dataplane.compat)}`, clusterAddress, token, restored, children, stopControlPlane);
    } catch (error) {
      await Promise.all(children.map(stopChild));
      await stopControlPlane();
      throw error;
    }
  }

  /** Stop the children, then the control plane. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all(this.children.map(stopChild));
      await this.stopControlPlane();
    })();
    return this.stopping;
  }
}

/** The CLI's `dirigent up`: start, print the URLs, run until Ctrl-C. */
export async function startLocalCluster(values: CliValues): Promise<void> {
  const runtime = workerRuntimeFlag(values);
  // Checked here, so that a mistake is a usage error of `up` rather than workers that fail to start.
  poolConfig(values);
  const started = performance.now();
  const cluster = await LocalCluster.start({
    host: values.host ?? DEFAULT_HOST,
    adminPort: intFlag(values, 'admin-port', '(TCP port)', 0, 65535) ?? PORTS.admin,
    invokePort: intFlag(values, 'invoke-port', '(TCP port)', 0, 65535) ?? PORTS.invoke,
    compatPort: intFlag(values, 'compat-port', '(TCP port)', 0, 65535) ?? PORTS.compat,
    dataDir: values['data-dir'] ?? DEFAULT_DATA_DIR,
    workers: intFlag(values, 'workers', 'workers', 1, 64) ?? DEFAULT_UP_WORKERS,
    runtime,
    pool: values.pool,
    poolMemoryMiB: values['pool-memory-mib'],
    token: values.token ?? process.env[ENV.token],
    adminToken: values['admin-token'],
  });
  const info = { admin: cluster.adminUrl, console: `${cluster.adminUrl}/console`, invoke: cluster.invokeUrl, compat: cluster.compatUrl, cluster: cluster.clusterAddress, restored: cluster.restored, startedInMs: Math.round(performance.now() - started) };
  const { functions, from } = cluster.restored;
  if (values.json) process.stdout.write(`${JSON.stringify(info)}\n`);
  else {
    process.stdout.write(
      [
        `dirigent is up in ${info.startedInMs} ms (control plane, data plane, ${values.workers ?? DEFAULT_UP_WORKERS} ${runtime} workers)`,
        `  admin API   ${cluster.adminUrl}   (dirigent ls | status | deploy | rm)`,
        `  console     ${cluster.adminUrl}/console   (the cluster, its functions and its actors, in a browser)`,
        `  invoke      ${cluster.invokeUrl}/invoke/<function>   ws: ${cluster.invokeUrl.replace('http', 'ws')}/ws`,
        `  compat      ${cluster.compatUrl}   (Dirigent's loader: HTTP/1.1 or h2c, Host routing, underscore headers)`,
        ...(functions.length === 0
          ? []
          : [`restored ${functions.length} function${functions.length === 1 ? '' : 's'} from ${from}: ${functions.join(', ')}`, `  (dirigent rm <name> removes one; stop and delete ${resolve(values['data-dir'] ?? DEFAULT_DATA_DIR)} to start empty)`]),
        'Press Ctrl-C to stop.',
        '',
      ].join('\n'),
    );
  }
  await runUntilStopped(cluster);
}

/** `--runtime` of `up` and `cluster`: the sandbox runtime of their workers. */
export function workerRuntimeFlag(values: CliValues): RuntimeKind {
  const runtime = values.runtime ?? DEFAULT_RUNTIME_KIND;
  if (!(RUNTIME_KINDS as readonly string[]).includes(runtime)) throw new UsageError(`--runtime must be ${RUNTIME_KINDS.join(', ')}, got ${JSON.stringify(runtime)}`);
  return runtime as RuntimeKind;
}

/** Waits for Ctrl-C or SIGTERM, then stops the cluster. */
export async function runUntilStopped(cluster: { stop(): Promise<void> }): Promise<void> {
  const signal = await stopSignal();
  process.stderr.write(`\n${signal}: stopping the cluster...\n`);
  await cluster.stop();
}
