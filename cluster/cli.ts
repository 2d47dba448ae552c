#!/usr/bin/env node
// `dirigent <command>`: one CLI for every role and for users. Progress and errors are written for a
// person; `--json` prints JSON for scripts instead: results on stdout, and an error as one line
// `{"error":{"code","message"}}` on stderr, so stdout never mixes the two. Exit codes: 2 for a mistake in
// the command line, 1 for anything else that failed, 0 when `logs --follow` or `ls --watch` end by Ctrl-C.
// Commands and flags are declared in flags.ts, which also writes each command's --help.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PoolReport } from '../actors/messages.js';
import type { SandboxLogLine } from '../actors/sandbox-logs.js';
import { LOG_TAIL_LIMIT } from '../actors/sandbox-logs.js';
import { AdminClient, AdminError, type FunctionViewJson } from './admin-client.js';
import {
  commandHelp,
  DEFAULT_WATCH_INTERVAL_MS,
  DEPLOY_INT_FLAGS,
  envFromFlags,
  intIn,
  overviewHelp,
  parseCommandLine,
  parseSince,
  splitCommand,
  UsageError,
  wantsJson,
  WATCH_INTERVAL_MS,
  type CliValues,
} from './flags.js';
import { DEFAULT_ADMIN_URL, DEFAULT_INVOKE_URL, ENV } from '../actors/settings.js';
import { onStopSignal } from './signals.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function admin(values: CliValues): AdminClient {
  return new AdminClient({ adminUrl: values.admin ?? process.env[ENV.admin] ?? DEFAULT_ADMIN_URL, adminToken: values['admin-token'] ?? process.env[ENV.adminToken] });
}

function print(values: CliValues, data: unknown, human: () => string): void {
  process.stdout.write(values.json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

function scaleLine(view: FunctionViewJson): string {
  const s = view.status;
  return s ? `desired ${s.desired}, ready ${s.ready}, creating ${s.creating}, draining ${s.draining}` : 'status unavailable';
}

/** Resolves at the first Ctrl-C (or SIGTERM): how `logs --follow` and `ls --watch` end, with exit code 0. */
function interrupted(): { readonly signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const dispose = onStopSignal(() => controller.abort());
  return { signal: controller.signal, dispose };
}

/** `v<version> <state>` (padded), for ls. */
function stateColumn(view: FunctionViewJson): string {
  const s = view.status;
  return (s?.state === undefined ? '' : `v${s.version} ${s.state}`).padEnd(14);
}

/** Why a function is not active, with its creation failures ("" when it is active). */
function failureLines(view: FunctionViewJson, indent: string): string {
  const s = view.status;
  if (s === null || s.state === undefined || s.state === 'active') return '';
  const lines = [`${indent}${s.stateReason ?? s.state}`];
  if (s.failures) lines.push(`${indent}the last creation failed ${ago(s.failures.lastAt)}`);
  return `\n${lines.join('\n')}`;
}

/** A time of the control plane's clock (ms since the epoch) as "12 s ago". */
function ago(at: number): string {
  return `${Math.max(0, Math.round((Date.now() - at) / 1000))} s ago`;
}

function specFromFlags(name: string, values: CliValues): Record<string, unknown> {
  const sources = [values.module, values.command, values.builtin].filter((v) => v !== undefined);
  if (sources.length > 1) throw new UsageError('give only one of --module, --command, --builtin');
  const spec: Record<string, unknown> = { name };
  if (values.module !== undefined) spec.source = { kind: 'thread', module: resolve(values.module) };
  if (values.command !== undefined) {
    const [command, ...args] = splitCommand(values.command);
    spec.source = { kind: 'process', command, args };
  }
  if (values.builtin !== undefined) spec.source = { kind: 'builtin', workload: values.builtin };
  if (values.runtime !== undefined) spec.runtime = values.runtime;
  const env = envFromFlags(values.env);
  if (env !== undefined) spec.env = env;
  const scaling: Record<string, number> = {};
  for (const { flag, field, range } of DEPLOY_INT_FLAGS) {
    const value = intIn(values, flag, range);
    if (value === undefined) continue;
    if (field.startsWith('scaling.')) scaling[field.slice('scaling.'.length)] = value;
    else spec[field] = value;
  }
  if (Object.keys(scaling).length > 0) spec.scaling = scaling;
  return spec;
}

/** How long `deploy` waits for a new version to serve, ms. */
const DEPLOY_WAIT_MS = 60_000;
/** Between two looks at the function while waiting, ms. */
const DEPLOY_POLL_MS = 200;

/**
 * Creates the function, or updates it (with a source: create first, update when it exists; without one: update
 * only, so scaling can change without restating the source). A new template version is then waited for.
 */
async function deploy(name: string, values: CliValues): Promise<void> {
  const client = admin(values);
  const spec = specFromFlags(name, values);
  const { name: _name, ...patch } = spec;
  let view: FunctionViewJson;
  let action = 'created';
  if (spec.source === undefined) {
    if (Object.keys(patch).length === 0) throw new UsageError('deploy needs a source (--module, --command or --builtin) to create a function, or what to change on an existing one (e.g. --max-scale 5)');
    try {
      view = await client.updateFunction(name, patch);
    } catch (error) {
      if (error instanceof AdminError && error.code === 'UNKNOWN_FUNCTION') throw new UsageError(`${name} does not exist; create it with --module, --command or --builtin`);
      throw error;
    }
    action = 'updated';
  } else {
    try {
      view = await client.createFunction(spec);
    } catch (error) {
      if (!(error instanceof AdminError) || error.code !== 'FUNCTION_EXISTS') throw error;
      view = await client.updateFunction(name, patch);
      action = 'updated';
    }
  }
  // This deploy made a new template version (a create, or an update of the source or the sandbox) when the
  // version it stored is the one sandboxes now run; otherwise it changed scaling or routing only.
  const version = view.spec.templateVersion ?? view.spec.version;
  if (version !== view.spec.version) return print(values, view, () => `updated ${name}: scaling and routing only, nothing restarted; version ${version} serves (${scaleLine(view)})`);
  if (values['no-wait']) return print(values, view, () => `${action} ${name}: version ${version} (${scaleLine(view)}); not waiting for it to serve`);
  const waited = await waitForVersion(client, view, action, values);
  print(values, waited.view, () => waited.message);
  if (!waited.serving) process.exitCode = 1;
}

/**
 * Polls until the function's new version serves: no older version is routed any more and, unless the function is
 * scaled to zero (the next call starts the new version), one of its sandboxes is ready. Stops early when it
 * fails to start, or when another deploy made a newer version. Progress goes to stderr.
 */
async function waitForVersion(client: AdminClient, created: FunctionViewJson, action: string, values: CliValues): Promise<{ view: FunctionViewJson; serving: boolean; message: string }> {
  const name = created.spec.name;
  const version = created.spec.templateVersion ?? created.spec.version ?? 1;
  const progress = progressLine(values);
  const deadline = Date.now() + DEPLOY_WAIT_MS;
  let view = created;
  try {
    for (;;) {
      const s = view.status;
      if (s !== null) {
        const ready = (s.sandboxes ?? []).filter((sandbox) => (sandbox.version ?? version) === version && sandbox.phase === 'ready').length;
        const outdated = s.outdated ?? 0;
        if ((s.version ?? version) > version) return { view, serving: false, message: `${name}: version ${s.version} was deployed meanwhile; stopped waiting for version ${version}` };
        if (s.state === 'failed') return { view, serving: false, message: `${name}: version ${version} does not start: ${s.stateReason ?? 'no reason given'}` };
        // minScale: the autoscaler asks for it at its first tick, so right after a create `desired` is still 0.
        const wanted = Math.max(s.desired, view.spec.scaling.minScale ?? 0);
        if (outdated === 0 && (ready > 0 || wanted === 0)) {
          const how = ready > 0 ? `${ready} sandbox(es) ready` : 'scaled to zero: the next call starts it';
          return { view, serving: true, message: `${action} ${name}: version ${version} serves (${how})` };
        }
        progress(`waiting for ${name} version ${version}: ${ready} of ${Math.max(wanted, 1)} ready${outdated > 0 ? `, ${outdated} of an older version still serving` : ''}`);
      }
      if (Date.now() >= deadline) return { view, serving: false, message: `${name}: version ${version} is not serving after ${DEPLOY_WAIT_MS / 1000} s: ${s?.stateReason ?? 'no status'}` };
      await new Promise((resolve) => setTimeout(resolve, DEPLOY_POLL_MS));
      view = await client.getFunction(name);
    }
  } finally {
    progress(undefined);
  }
}

/** One progress line on stderr, rewritten in place on a terminal (`undefined` clears it); nothing under --json. */
function progressLine(values: CliValues): (text: string | undefined) => void {
  let last: string | undefined;
  return (text) => {
    if (values.json || text === last) return;
    if (process.stderr.isTTY) process.stderr.write(text === undefined ? '\r\x1b[K' : `\r\x1b[K${text}`);
    else if (text !== undefined) process.stderr.write(`${text}\n`);
    last = text;
  };
}

async function invoke(name: string, values: CliValues): Promise<void> {
  const url = `${values.url ?? process.env[ENV.url] ?? DEFAULT_INVOKE_URL}/invoke/${encodeURIComponent(name)}`;
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

function listText(functions: readonly FunctionViewJson[]): string {
  return functions.length === 0
    ? 'no functions; deploy one with: dirigent deploy hello --builtin echo'
    : functions.map((f) => `${f.spec.name.padEnd(24)} ${f.spec.runtime.padEnd(10)} ${stateColumn(f)} ${scaleLine(f)}${failureLines(f, '    ')}`).join('\n');
}

async function list(values: CliValues): Promise<void> {
  const client = admin(values);
  if (!values.watch) {
    const functions = await client.listFunctions();
    return print(values, functions, () => listText(functions));
  }
  const intervalMs = intIn(values, 'interval-ms', WATCH_INTERVAL_MS) ?? DEFAULT_WATCH_INTERVAL_MS;
  await watch(values, 'dirigent ls', intervalMs, async () => {
    const functions = await client.listFunctions();
    return { data: functions, text: listText(functions) };
  });
}

/**
 * `--watch`: looks every `intervalMs` and redraws only when the answer changed, until Ctrl-C. A terminal is
 * cleared before each frame; a pipe gets the frames one after the other, each under a header line; `--json`
 * prints one line per change. An unreachable control plane is shown as a frame, and watching goes on.
 */
async function watch(values: CliValues, title: string, intervalMs: number, look: () => Promise<{ data: unknown; text: string }>): Promise<void> {
  const stop = interrupted();
  const tty = process.stdout.isTTY === true && !values.json;
  let last: string | undefined;
  try {
    while (!stop.signal.aborted) {
      let frame: string;
      try {
        const { data, text } = await look();
        frame = values.json ? JSON.stringify(data) : text;
      } catch (error) {
        if (!(error instanceof AdminError)) throw error;
        frame = values.json ? JSON.stringify({ error: { code: error.code, message: error.message } }) : `dirigent: ${error.message}`;
      }
      if (frame !== last && !stop.signal.aborted) {
        last = frame;
        const header = `Every ${intervalMs / 1000} s: ${title}    ${new Date().toISOString()}`;
        process.stdout.write(values.json ? `${frame}\n` : `${tty ? '\x1b[H\x1b[2J' : ''}${header}\n${frame}\n\n`);
      }
      await sleep(intervalMs, undefined, { signal: stop.signal }).catch(() => undefined);
    }
  } finally {
    stop.dispose();
  }
}

function logLineText(l: SandboxLogLine): string {
  return `${new Date(l.t).toISOString()} ${l.nodeId}/${l.sandboxId} ${l.stream} ${l.line}`;
}

async function logs(name: string, values: CliValues): Promise<void> {
  const client = admin(values);
  const query = { tail: intIn(values, 'tail', LOG_TAIL_LIMIT), sinceMs: values.since === undefined ? undefined : parseSince(values.since, Date.now()) };
  const write = (l: SandboxLogLine) => process.stdout.write(`${values.json ? JSON.stringify(l) : logLineText(l)}\n`);
  if (!values.follow) {
    const { lines, unreachable } = await client.functionLogs(name, query);
    for (const l of lines) write(l);
    if (unreachable.length > 0) process.stderr.write(`dirigent: no answer from node${unreachable.length > 1 ? 's' : ''} ${unreachable.join(', ')}: their lines are missing\n`);
    if (lines.length === 0 && !values.json) process.stderr.write(`dirigent: no output from ${name}${values.since === undefined ? '' : ` since ${values.since}`}\n`);
    return;
  }
  const stop = interrupted();
  try {
    await client.followLogs(name, query, write, stop.signal);
  } finally {
    stop.dispose();
  }
}

/** `3s`, `4m05s`, `2h03m`, `5d`: how long ago `sinceMs` was. */
function age(sinceMs: number, nowMs: number): string {
  const s = Math.max(0, Math.floor((nowMs - sinceMs) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d`;
}

function valueText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Rows of a table, columns padded to their widest cell. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((r) => `  ${r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')}`.trimEnd());
}

/** Fields of a record not named in `known`, as `key=value`: what a newer server added shows without a change here. */
function extras(record: Readonly<Record<string, unknown>>, known: readonly string[]): string {
  return Object.entries(record)
    .filter(([key, value]) => !known.includes(key) && value !== undefined)
    .map(([key, value]) => `${key}=${valueText(value)}`)
    .join(' ');
}

/** Scaling fields by importance: field, label, unit. */
const SCALING_SHOWN: readonly (readonly [string, string, string])[] = [
  ['minScale', 'min', ''],
  ['maxScale', 'max', ''],
  ['keepAliveMs', 'keep-alive', ' ms'],
  ['targetUtilizationPercent', 'target', ' %'],
  ['tickMs', 'tick', ' ms'],
  ['stableWindowMs', 'stable', ' ms'],
  ['panicWindowMs', 'panic', ' ms'],
  ['panicThresholdPercent', 'panic at', ' %'],
  ['maxScaleUpRate', 'up', 'x'],
  ['maxScaleDownRate', 'down', '/'],
];
const SPEC_SHOWN = ['name', 'version', 'templateVersion', 'runtime', 'source', 'cpuMilli', 'memoryMiB', 'concurrency', 'timeoutMs', 'queueDepth', 'queueTimeoutMs', 'maxBodyBytes', 'env', 'scaling'];
const STATUS_SHOWN = ['name', 'specVersion', 'version', 'state', 'stateReason', 'failures', 'endpointVersion', 'desired', 'creating', 'ready', 'draining', 'outdated', 'deleting', 'sandboxes', 'events'];
const SANDBOX_SHOWN = ['sandboxId', 'nodeId', 'phase', 'since', 'version'];
/** Names an event's time, kind, reason and text may have (the first present is used). */
const EVENT_FIELDS = { at: ['at', 'time', 't', 'since'], type: ['type', 'kind', 'level'], reason: ['reason', 'code'], message: ['message', 'text', 'error'] } as const;

/**
 * `describe` as sections: each renders what it knows of the view, and the last shows every status field
 * none of them knows, so a field the function status gains appears before a section is written for it.
 */
function describeText(view: FunctionViewJson, nowMs: number): string {
  const { spec, status, autoscaler } = view;
  const lines: string[] = [];
  const row = (label: string, text: string) => lines.push(`${`${label}:`.padEnd(14)}${text}`);
  row('Name', spec.name);
  row('Version', `${status?.version ?? spec.templateVersion ?? spec.version ?? '?'} (spec v${spec.version ?? '?'}${typeof status?.endpointVersion === 'number' ? `, endpoint set v${status.endpointVersion}` : ''})`);
  if (status?.state !== undefined) row('State', `${status.state}${status.stateReason ? `: ${status.stateReason}` : ''}${status.failures ? `; the last creation failed ${ago(status.failures.lastAt)}` : ''}`);
  row('Runtime', spec.runtime);
  const source = spec.source as { kind?: string; module?: string; command?: string; args?: string[]; workload?: string };
  row('Source', source.kind === 'thread' ? `module ${source.module}` : source.kind === 'process' ? `command ${[source.command, ...(source.args ?? [])].map((w) => JSON.stringify(w)).join(' ')}` : source.kind === 'builtin' ? `builtin ${source.workload}` : valueText(source));
  row('Resources', `cpu ${valueText(spec.cpuMilli)} millicores, memory ${valueText(spec.memoryMiB)} MiB, concurrency ${spec.concurrency}, timeout ${valueText(spec.timeoutMs)} ms`);
  row('Queue', `depth ${valueText(spec.queueDepth)}, timeout ${valueText(spec.queueTimeoutMs)} ms, body up to ${valueText(spec.maxBodyBytes)} bytes`);
  const env = Object.entries(spec.env ?? {});
  row('Env', env.length === 0 ? '(none)' : env.map(([k, v]) => `${k}=${v}`).join(' '));
  const scaling = SCALING_SHOWN.flatMap(([field, label, unit]) => (spec.scaling[field] === undefined ? [] : [`${label} ${spec.scaling[field]}${unit}`]));
  const moreScaling = extras(spec.scaling, SCALING_SHOWN.map(([field]) => field));
  row('Scaling', [...scaling, ...(moreScaling ? [moreScaling] : [])].join(', '));
  const moreSpec = extras(spec, SPEC_SHOWN);
  if (moreSpec) row('Spec (more)', moreSpec);

  if (status === null) row('Status', 'unavailable (the function actor did not answer)');
  else row('Scale', `desired ${status.desired}, ready ${status.ready}, creating ${status.creating}, draining ${status.draining}${(status.outdated ?? 0) > 0 ? ` (${status.outdated} of an older version)` : ''}${status.deleting === true ? ', being deleted' : ''}`);
  if (autoscaler !== null) {
    row('Autoscaler', `${autoscaler.panic ? 'panic' : 'stable'}, ${autoscaler.observedInFlight} in flight or queued${typeof autoscaler.decisions === 'number' ? `, ${autoscaler.decisions} decisions` : ''}${autoscaler.lastDecision ? `, last: ${valueText(autoscaler.lastDecision)}` : ''}`);
    const totals = autoscaler.totals;
    if (totals !== undefined) {
      const meanQueue = totals.coldStarts > 0 ? `, ${Math.round(totals.coldStartMsSum / totals.coldStarts)} ms queued on average` : '';
      const rejected = Object.entries(totals.rejected).map(([code, n]) => `${code} x${n}`);
      row('Invocations', `${totals.invocations}, cold starts ${totals.coldStarts}${meanQueue}${rejected.length > 0 ? `; answered without a sandbox: ${rejected.join(', ')}` : ''}`);
    }
  }

  if (status !== null) {
    const sandboxes = status.sandboxes ?? [];
    lines.push('', `Sandboxes (${sandboxes.length}):`);
    if (sandboxes.length === 0) lines.push('  (none)');
    else lines.push(...table(['SANDBOX', 'NODE', 'STATE', 'VERSION', 'AGE', ''], sandboxes.map((s) => [s.sandboxId, s.nodeId, s.phase, s.version === undefined ? '' : `v${s.version}`, age(s.since, nowMs), extras(s, SANDBOX_SHOWN)])));

    const events = Array.isArray(status.events) ? (status.events as Record<string, unknown>[]) : undefined;
    if (events !== undefined) {
      lines.push('', `Events (${events.length}):`);
      const pick = (e: Record<string, unknown>, names: readonly string[]) => names.map((n) => e[n]).find((v) => v !== undefined);
      if (events.length === 0) lines.push('  (none)');
      else {
        const used: string[] = Object.values(EVENT_FIELDS).flat();
        lines.push(
          ...table(
            ['AGE', 'TYPE', 'REASON', 'MESSAGE'],
            events.map((e) => {
              const at = pick(e, EVENT_FIELDS.at);
              const more = extras(e, used);
              return [typeof at === 'number' ? age(at, nowMs) : valueText(at ?? '-'), valueText(pick(e, EVENT_FIELDS.type) ?? '-'), valueText(pick(e, EVENT_FIELDS.reason) ?? '-'), `${valueText(pick(e, EVENT_FIELDS.message) ?? '')}${more ? ` (${more})` : ''}`];
            }),
          ),
        );
      }
    }
    const other = Object.entries(status).filter(([key, value]) => !STATUS_SHOWN.includes(key) && value !== undefined);
    if (other.length > 0) {
      lines.push('', 'Status (more):');
      for (const [key, value] of other) lines.push(`  ${key}: ${valueText(value)}`);
    }
  }
  return lines.join('\n');
}

async function describe(name: string, values: CliValues): Promise<void> {
  const view = await admin(values).getFunction(name);
  print(values, view, () => describeText(view, Date.now()));
}

async function remove(name: string, values: CliValues): Promise<void> {
  const result = await admin(values).deleteFunction(name);
  print(values, result, () => `deleted ${name}; its sandboxes are drained and deleted`);
}

async function status(values: CliValues): Promise<void> {
  const client = admin(values);
  const [cluster, nodes, dataplanes, replicas, functions] = await Promise.all([client.status(), client.nodes(), client.dataplanes(), client.replicas(), client.listFunctions()]);
  const reconstruction = cluster.reconstruction as { phase: string; tookMs: number | null; sandboxesAdopted: number; workersQueried: number; workersExpected: number } | undefined;
  const troubled = functions.filter((f) => f.status?.state !== undefined && f.status.state !== 'active');
  print(values, { cluster, replicas, nodes, dataplanes, functions: troubled.map((f) => ({ name: f.spec.name, ...f.status })) }, () =>
    [
      `control plane: term ${String(cluster.term)}, ${String(cluster.functions)} functions, ${String(cluster.workers)} workers, ${String(cluster.dataplanes)} data planes`,
      ...(reconstruction
        ? [`reconstruction: ${reconstruction.phase}${reconstruction.tookMs === null ? '' : ` after ${reconstruction.tookMs} ms`}, ${reconstruction.sandboxesAdopted} sandboxes adopted from ${reconstruction.workersQueried}/${reconstruction.workersExpected} workers`]
        : []),
      ...replicas.map((r) => `replica ${r.id}: ${r.role}${r.term === null ? '' : ` (term ${r.term})`}, admin ${r.adminUrl}${r.role === 'unreachable' ? ` (${r.readiness})` : ''}`),
      ...nodes.map((n) => `node ${String(n.nodeId)}: ${n.alive ? 'alive' : 'dead'}, ${String(n.sandboxes)} sandboxes, heartbeat ${String(n.heartbeatAgeMs)} ms ago${poolLine(n.pool as PoolReport | undefined)}`),
      ...dataplanes.map((d) => `data plane ${d.id}: http://${d.invokeAddress} ${d.connected ? 'connected' : 'disconnected'}`),
      ...troubled.map((f) => `function ${f.spec.name}: ${f.status?.state} (version ${f.status?.version})${failureLines(f, '  ')}`),
    ].join('\n'),
  );
}

/** A node's pool of started generic sandboxes, as `status` shows it after the node's line. */
function poolLine(pool: PoolReport | undefined): string {
  if (pool === undefined) return '';
  return `; pool ${pool.idle}/${pool.target} idle (${pool.idleMiB} of ${pool.capMiB} MiB), cold starts ${pool.fromPool} from the pool, ${pool.fresh} fresh`;
}

export async function main(argv: string[]): Promise<void> {
  const { command, values, args } = parseCommandLine(argv);
  if (command === undefined) {
    if (values.version) return void process.stdout.write(`${version()}\n`);
    return void process.stdout.write(`${overviewHelp()}\n`);
  }
  if (values.help) return void process.stdout.write(`${commandHelp(command)}\n`);
  // parseCommandLine checked the count of positional arguments against the command's.
  const name = args[0]!;
  switch (command) {
    // The roles load lazily: their modules (actor runtime, uWS, etcd client) take seconds to import on a busy
    // machine, which no user command should wait for (`dirigent ls` loads only the admin client).
    case 'up':
      return (await import('./launcher.js')).startLocalCluster(values);
    case 'cluster':
      return (await import('./cluster-launcher.js')).startDistributedCluster(values);
    case 'control-plane':
    case 'data-plane':
    case 'worker':
      (await import('./launcher.js')).endWithParent();
      return (await import('./roles.js')).runRole(command, values);
    case 'deploy':
      return deploy(name, values);
    case 'invoke':
      return invoke(name, values);
    case 'ls':
      return list(values);
    case 'describe':
      return describe(name, values);
    case 'logs':
      return logs(name, values);
    case 'rm':
      return remove(name, values);
    case 'status':
      return status(values);
    case 'replay':
      return (await import('./experiments/cli.js')).replayCommand(name, values);
    case 'trace':
      return (await import('./experiments/cli.js')).traceCommand(args, values);
    case 'report':
      return (await import('./experiments/cli.js')).reportCommand(args, values);
  }
}

/** Stable codes for what is neither a usage error nor an admin API answer. */
function errorCode(error: unknown): string {
  if (error instanceof UsageError || error instanceof AdminError) return error.code;
  return 'INTERNAL';
}

const argv = process.argv.slice(2);
main(argv).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  if (wantsJson(argv)) {
    process.stderr.write(`${JSON.stringify({ error: { code: errorCode(error), message } })}\n`);
  } else if (error instanceof AdminError) {
    process.stderr.write(`dirigent: ${message}${error.status ? ` (HTTP ${error.status}, ${error.code})` : ''}\n`);
  } else if (error instanceof Error && !(error instanceof UsageError) && process.env[ENV.log] === 'debug' && error.stack) {
    // Anything else (a role that could not start, a bug): its message for a person, the stack on request.
    process.stderr.write(`dirigent: ${error.stack}\n`);
  } else {
    process.stderr.write(`dirigent: ${message}\n`);
  }
  process.exitCode = error instanceof UsageError ? 2 : 1;
});
