#!/usr/bin/env node
// `dirigent <command>`: one CLI for every role and for users. Progress and errors are written for a
// person; `--json` prints one JSON document for scripts instead.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { AdminClient, AdminError, type FunctionViewJson } from './admin-client.js';
import { intFlag, parse, UsageError, type CliValues } from './flags.js';

const HELP = `dirigent: a serverless cluster manager (a TypeScript re-implementation of Dirigent)

Usage: dirigent <command> [options]

Cluster
  up                    start a local cluster: control plane, data plane and 2 workers on loopback
                          --admin-port 9091 --invoke-port 8080 --compat-port 8081 --host 127.0.0.1
                          --data-dir .dirigent --workers 2 --runtime thread|process|simulated
                          --token <cluster token>
  cluster               start the distributed topology as local processes: etcd (from PATH), 3 control-plane
                        replicas, 2 data planes, 3 workers; --control-planes N --data-planes N --workers N
                          --runtime ... --data-dir .dirigent-cluster --lease-ttl-s 2 --store etcd:<url> (an existing etcd)
  control-plane         run a control-plane replica   (see docker-compose.yml for the flags)
                          --id cp1 --store memory|file:<dir>|etcd:<url>[,<url>] --lease-ttl-s 2
                          --cluster-port 9090 --admin-port 9091 --host <interface and advertised host>
                          --heartbeat-timeout-ms 15000 (a silent node is dead) --reconstruct-timeout-ms 3000
  data-plane            run a data-plane role   --control-plane <host:port>[,<host:port>...] (every replica)
  worker                run a worker role       --control-plane <host:port>[,<host:port>...] --heartbeat-ms 5000
                        every role: --dry-run validates its flags and prints the resolved config

Functions (talk to the admin API, default http://127.0.0.1:9091; --admin URL to change)
  deploy <name>         create or update a function from one of
                          --module <file.mjs|.js>      an ES module exporting handler(request)
                          --command "<cmd> [args]"     any command serving HTTP on $PORT
                          --builtin empty|echo|trace   a built-in workload
                        scaling: --min-scale N --max-scale N --concurrency N --keep-alive-ms N
                        resources: --memory MiB --cpu millicores --timeout-ms N --runtime thread|process|simulated
  invoke <name>         invoke once: --data <body> --url http://127.0.0.1:8080
  ls                    list functions with desired and ready scale
  rm <name>             delete a function (drains and deletes its sandboxes)
  status                cluster status, nodes and data planes

Common: --json (machine-readable output), --admin-token <token>, -h/--help, --version
Logs: DIRIGENT_LOG=info or debug (more log lines; debug also prints the stack of an error)`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function admin(values: CliValues): AdminClient {
  return new AdminClient({ adminUrl: values.admin ?? process.env.DIRIGENT_ADMIN ?? 'http://127.0.0.1:9091', adminToken: values['admin-token'] ?? process.env.DIRIGENT_ADMIN_TOKEN });
}

function print(values: CliValues, data: unknown, human: () => string): void {
  process.stdout.write(values.json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

function scaleLine(view: FunctionViewJson): string {
  const s = view.status;
  return s ? `desired ${s.desired}, ready ${s.ready}, creating ${s.creating}, draining ${s.draining}` : 'status unavailable';
}

function specFromFlags(name: string, values: CliValues): Record<string, unknown> {
  const sources = [values.module, values.command, values.builtin].filter((v) => v !== undefined);
  if (sources.length > 1) throw new UsageError('give only one of --module, --command, --builtin');
  const spec: Record<string, unknown> = { name };
  if (values.module !== undefined) spec.source = { kind: 'thread', module: resolve(values.module) };
  if (values.command !== undefined) {
    const [command, ...args] = values.command.split(/\s+/).filter(Boolean);
    if (!command) throw new UsageError('--command needs a command line');
    spec.source = { kind: 'process', command, args };
  }
  if (values.builtin !== undefined) spec.source = { kind: 'builtin', workload: values.builtin };
  if (values.runtime !== undefined) spec.runtime = values.runtime;
  const numbers: [string, string, string][] = [
    ['concurrency', 'concurrency', 'requests'],
    ['memory', 'memoryMiB', 'MiB'],
    ['cpu', 'cpuMilli', 'millicores'],
    ['timeout-ms', 'timeoutMs', 'ms'],
  ];
  for (const [flag, field, unit] of numbers) {
    const value = intFlag(values, flag, unit);
    if (value !== undefined) spec[field] = value;
  }
  const scaling: Record<string, number> = {};
  const minScale = intFlag(values, 'min-scale', 'sandboxes');
  const maxScale = intFlag(values, 'max-scale', 'sandboxes');
  const keepAlive = intFlag(values, 'keep-alive-ms', 'ms');
  if (minScale !== undefined) scaling.minScale = minScale;
  if (maxScale !== undefined) scaling.maxScale = maxScale;
  if (keepAlive !== undefined) scaling.keepAliveMs = keepAlive;
  if (Object.keys(scaling).length > 0) spec.scaling = scaling;
  return spec;
}

async function deploy(name: string | undefined, values: CliValues): Promise<void> {
  if (!name) throw new UsageError('deploy needs a function name: dirigent deploy <name> --builtin echo');
  const client = admin(values);
  const spec = specFromFlags(name, values);
  let view: FunctionViewJson;
  let action = 'created';
  try {
    if (spec.source === undefined) throw new UsageError('deploy needs one of --module, --command, --builtin');
    view = await client.createFunction(spec);
  } catch (error) {
    if (!(error instanceof AdminError) || error.code !== 'FUNCTION_EXISTS') throw error;
    const { name: _name, ...patch } = spec;
    view = await client.updateFunction(name, patch);
    action = 'updated';
  }
  print(values, view, () => `${action} ${name} (${view.spec.runtime}, ${JSON.stringify(view.spec.source)}): ${scaleLine(view)}`);
}

async function invoke(name: string | undefined, values: CliValues): Promise<void> {
  if (!name) throw new UsageError('invoke needs a function name');
  const url = `${values.url ?? process.env.DIRIGENT_URL ?? 'http://127.0.0.1:8080'}/invoke/${encodeURIComponent(name)}`;
  const started = performance.now();
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', body: values.data ?? '', signal: AbortSignal.timeout(120_000) });
  } catch (error) {
    throw new AdminError(0, 'UNREACHABLE', `cannot reach the data plane at ${url} (${(error as Error).message}); is \`dirigent up\` running?`);
  }
  const body = await response.text();
  const tookMs = performance.now() - started;
  const info = {
    status: response.status,
    body,
    coldStart: response.headers.get('x-dirigent-cold-start') === 'true',
    queueMs: Number(response.headers.get('x-dirigent-queue-ms') ?? 0),
    sandbox: response.headers.get('x-dirigent-sandbox'),
    totalMs: Math.round(tookMs * 10) / 10,
  };
  print(values, info, () => `${response.status} in ${info.totalMs} ms${info.coldStart ? ` (cold start, queued ${info.queueMs} ms)` : ''}${info.sandbox ? ` on ${info.sandbox}` : ''}\n${body}`);
  if (!response.ok) process.exitCode = 1;
}

async function list(values: CliValues): Promise<void> {
  const functions = await admin(values).listFunctions();
  print(values, functions, () =>
    functions.length === 0 ? 'no functions; deploy one with: dirigent deploy hello --builtin echo' : functions.map((f) => `${f.spec.name.padEnd(24)} ${f.spec.runtime.padEnd(10)} ${scaleLine(f)}`).join('\n'),
  );
}

async function remove(name: string | undefined, values: CliValues): Promise<void> {
  if (!name) throw new UsageError('rm needs a function name');
  const result = await admin(values).deleteFunction(name);
  print(values, result, () => `deleted ${name}; its sandboxes are drained and deleted`);
}

async function status(values: CliValues): Promise<void> {
  const client = admin(values);
  const [cluster, nodes, dataplanes, replicas] = await Promise.all([client.status(), client.nodes(), client.dataplanes(), client.replicas()]);
  const reconstruction = cluster.reconstruction as { phase: string; tookMs: number | null; sandboxesAdopted: number; workersQueried: number; workersExpected: number } | undefined;
  print(values, { cluster, replicas, nodes, dataplanes }, () =>
    [
      `control plane: term ${String(cluster.term)}, ${String(cluster.functions)} functions, ${String(cluster.workers)} workers, ${String(cluster.dataplanes)} data planes`,
      ...(reconstruction
        ? [`reconstruction: ${reconstruction.phase}${reconstruction.tookMs === null ? '' : ` after ${reconstruction.tookMs} ms`}, ${reconstruction.sandboxesAdopted} sandboxes adopted from ${reconstruction.workersQueried}/${reconstruction.workersExpected} workers`]
        : []),
      ...replicas.map((r) => `replica ${r.id}: ${r.role}${r.term === null ? '' : ` (term ${r.term})`}, admin ${r.adminUrl}${r.role === 'unreachable' ? ` (${r.readiness})` : ''}`),
      ...nodes.map((n) => `node ${String(n.nodeId)}: ${n.alive ? 'alive' : 'dead'}, ${String(n.sandboxes)} sandboxes, heartbeat ${String(n.heartbeatAgeMs)} ms ago`),
      ...dataplanes.map((d) => `data plane ${d.id}: http://${d.invokeAddress} ${d.connected ? 'connected' : 'disconnected'}`),
    ].join('\n'),
  );
}

export async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, name] = positionals;
  if (values.version) return void process.stdout.write(`${version()}\n`);
  if (values.help || command === undefined || command === 'help') return void process.stdout.write(`${HELP}\n`);
  switch (command) {
    // Roles and launchers load the runtime, uWS and the etcd client: imported only by the commands that run them,
    // so that `ls` or `deploy` start in a fraction of the time.
    case 'up':
      return (await import('./launcher.js')).startLocalCluster(values);
    case 'cluster':
      return (await import('./cluster-launcher.js')).startDistributedCluster(values);
    case 'control-plane':
    case 'data-plane':
    case 'worker':
      return (await import('./roles.js')).runRole(command, values);
    case 'deploy':
      return deploy(name, values);
    case 'invoke':
      return invoke(name, values);
    case 'ls':
      return list(values);
    case 'rm':
      return remove(name, values);
    case 'status':
      return status(values);
    default:
      throw new UsageError(`unknown command ${command}; see dirigent --help`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) process.stderr.write(`dirigent: ${error.message}\n`);
  else if (error instanceof AdminError) process.stderr.write(`dirigent: ${error.message}${error.status ? ` (HTTP ${error.status}, ${error.code})` : ''}\n`);
  // Anything else (a role that could not start, a bug): its message for a person, the stack on request.
  else if (error instanceof Error) process.stderr.write(`dirigent: ${process.env.DIRIGENT_LOG === 'debug' && error.stack ? error.stack : error.message}\n`);
  else process.stderr.write(`dirigent: ${String(error)}\n`);
  process.exitCode = error instanceof UsageError ? 2 : 1;
});
