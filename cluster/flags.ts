// The CLI's commands and flags, in one table from which parsing, each command's `--help` and the
// suggestions for a mistyped name all come. Parsing is strict per command: a flag another command takes is
// refused here too, naming the commands that take it. Integer flags that set a function spec field take
// their bounds from the spec validation (actors/function-spec.ts), so the CLI never accepts what the
// server would refuse, nor refuses what it would take.
import { parseArgs } from 'node:util';
import { closest, distance } from 'fastest-levenshtein';
import { parse as parseShellWords } from 'shell-quote';
import { ENV_NAME, FUNCTION_SPEC_LIMITS, SCALING_LIMITS, type IntRange } from '../actors/function-spec.js';
import { LOG_TAIL_LIMIT } from '../actors/sandbox-logs.js';
import { EXPERIMENT_COMMANDS, EXPERIMENT_FLAG_TYPES } from './experiments/commands.js';
import { DirigentError } from '../actors/errors.js';
import {
  DEFAULT_ADMIN_URL,
  DEFAULT_CONTROL_PLANE,
  DEFAULT_DATA_DIR,
  DEFAULT_HOST,
  DEFAULT_INVOKE_URL,
  DEFAULT_LOAD_BALANCING_POLICY,
  DEFAULT_RUNTIME_KIND,
  DEFAULT_UP_WORKERS,
  DISTRIBUTED,
  ENV,
  LOAD_BALANCING_POLICIES,
  PORTS,
  RUNTIME_KINDS,
} from '../actors/settings.js';

/** Every flag any command takes: one name has one type everywhere. */
const FLAG_TYPES = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  admin: { type: 'string' },
  'admin-token': { type: 'string' },
  url: { type: 'string' },
  data: { type: 'string' },
  module: { type: 'string' },
  command: { type: 'string' },
  builtin: { type: 'string' },
  runtime: { type: 'string' },
  'min-scale': { type: 'string' },
  'max-scale': { type: 'string' },
  concurrency: { type: 'string' },
  'keep-alive-ms': { type: 'string' },
  'target-utilization': { type: 'string' },
  'no-wait': { type: 'boolean' },
  memory: { type: 'string' },
  cpu: { type: 'string' },
  'timeout-ms': { type: 'string' },
  env: { type: 'string', multiple: true },
  follow: { type: 'boolean', short: 'f' },
  tail: { type: 'string' },
  since: { type: 'string' },
  watch: { type: 'boolean', short: 'w' },
  'interval-ms': { type: 'string' },
  host: { type: 'string' },
  advertise: { type: 'string' },
  'admin-port': { type: 'string' },
  'invoke-port': { type: 'string' },
  'compat-port': { type: 'string' },
  'cluster-port': { type: 'string' },
  'data-dir': { type: 'string' },
  workers: { type: 'string' },
  token: { type: 'string' },
  id: { type: 'string' },
  'control-plane': { type: 'string' },
  nodes: { type: 'string' },
  shards: { type: 'string' },
  store: { type: 'string' },
  slots: { type: 'string' },
  policy: { type: 'string' },
  'simulated-latency-ms': { type: 'string' },
  'lease-ttl-s': { type: 'string' },
  'reconstruct-timeout-ms': { type: 'string' },
  'dry-run': { type: 'boolean' },
  'heartbeat-ms': { type: 'string' },
  'heartbeat-timeout-ms': { type: 'string' },
  'control-planes': { type: 'string' },
  'data-planes': { type: 'string' },
  ...EXPERIMENT_FLAG_TYPES,
  pool: { type: 'string' },
  'pool-memory-mib': { type: 'string' },
} as const satisfies Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

export type FlagName = keyof typeof FLAG_TYPES;
type FlagValue<D> = D extends { type: 'boolean' } ? boolean : D extends { multiple: true } ? string[] : string;
export type CliValues = { -readonly [K in FlagName]?: FlagValue<(typeof FLAG_TYPES)[K]> };

/** A value placeholder (empty for a boolean flag) and what the flag does. */
type FlagHelp = readonly [placeholder: string, help: string];

/** `a, b or c`. */
const orList = (items: readonly string[]): string => (items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`);

export interface CommandDef {
  readonly group: 'Cluster' | 'Functions' | 'Experiments';
  /** After `dirigent `, e.g. `deploy <name> [flags]`. */
  readonly usage: string;
  readonly summary: string;
  /** Paragraphs printed under the usage by `--help`. */
  readonly details?: string;
  /** Positional arguments after the command: [required, most]. */
  readonly args: readonly [number, number];
  readonly flags: Readonly<Partial<Record<FlagName, FlagHelp>>>;
  /** The admin API client's flags (`--admin`, `--admin-token`). */
  readonly client: boolean;
}

const range = (r: IntRange): string => (r.max === undefined ? `>= ${r.min}` : `${r.min}..${r.max}`) + (r.unit ? ` ${r.unit}` : '');

/** Integer flags of `deploy` and the spec field each sets; their bounds are the spec validation's. */
export const DEPLOY_INT_FLAGS = [
  { flag: 'concurrency', field: 'concurrency', range: FUNCTION_SPEC_LIMITS.concurrency },
  { flag: 'memory', field: 'memoryMiB', range: FUNCTION_SPEC_LIMITS.memoryMiB },
  { flag: 'cpu', field: 'cpuMilli', range: FUNCTION_SPEC_LIMITS.cpuMilli },
  { flag: 'timeout-ms', field: 'timeoutMs', range: FUNCTION_SPEC_LIMITS.timeoutMs },
  { flag: 'min-scale', field: 'scaling.minScale', range: SCALING_LIMITS.minScale },
  { flag: 'max-scale', field: 'scaling.maxScale', range: SCALING_LIMITS.maxScale },
  { flag: 'keep-alive-ms', field: 'scaling.keepAliveMs', range: SCALING_LIMITS.keepAliveMs },
  { flag: 'target-utilization', field: 'scaling.targetUtilizationPercent', range: SCALING_LIMITS.targetUtilizationPercent },
] as const satisfies readonly { flag: FlagName; field: string; range: IntRange }[];

/** `ls --watch` redraws at most this often and at least this seldom, ms. */
export const WATCH_INTERVAL_MS: IntRange = Object.freeze({ min: 200, max: 60_000, unit: 'ms' });
/** `ls --watch` without `--interval-ms`, ms. */
export const DEFAULT_WATCH_INTERVAL_MS = 1000;

const intHelp = (flag: (typeof DEPLOY_INT_FLAGS)[number]['flag'], what: string): FlagHelp => {
  const def = DEPLOY_INT_FLAGS.find((d) => d.flag === flag)!;
  return ['N', `${what}: ${range(def.range)}`];
};

const CONTROL_PLANE_ADDRESS: FlagHelp = ['<host:port>[,...]', `every control-plane replica's cluster listener (default ${DEFAULT_CONTROL_PLANE})`];
const POOL: FlagHelp = ['N|<MiB>:N[,...]', 'started generic sandboxes kept per memory class: N of the default 128 MiB class, or per class (default 2; 0: none)'];
const POOL_MEMORY: FlagHelp = ['N', 'most idle memory the pool holds, MiB, taken off the node capacity (default 256)'];
const TOKEN: FlagHelp = ['<token>', `cluster token, at least 8 characters (or ${ENV.token})`];
const SHARDS: FlagHelp = ['N', 'actor shard threads (default: one per core)'];
const DRY_RUN: FlagHelp = ['', 'validate the flags, print the resolved config and exit'];
const ADVERTISE: FlagHelp = ['<host>', 'the host the others reach it at (default: --host; the hostname when --host is 0.0.0.0)'];
const LEASE_TTL: FlagHelp = ['N', `leader lease with etcd, ${DISTRIBUTED.leaseTtlS.min}..${DISTRIBUTED.leaseTtlS.max} s (default ${DISTRIBUTED.leaseTtlS.default})`];

export const COMMANDS = {
  up: {
    group: 'Cluster',
    usage: 'up [flags]',
    summary: 'start a local cluster: control plane, data plane and workers on loopback',
    details: 'Runs until Ctrl-C, then stops every process it started.',
    args: [0, 0],
    client: false,
    flags: {
      host: ['<addr>', `interface to listen on (default ${DEFAULT_HOST})`],
      'admin-port': ['N', `admin API port (default ${PORTS.admin})`],
      'invoke-port': ['N', `invocation port (default ${PORTS.invoke})`],
      'compat-port': ['N', `Dirigent-compatibility port: HTTP/1.1 and h2c (default ${PORTS.compat})`],
      'data-dir': ['<dir>', `where desired state and async jobs live (default ${DEFAULT_DATA_DIR})`],
      workers: ['N', `worker processes, 1..64 (default ${DEFAULT_UP_WORKERS})`],
      runtime: [RUNTIME_KINDS.join('|'), `what the workers run (default ${DEFAULT_RUNTIME_KIND})`],
      pool: POOL,
      'pool-memory-mib': POOL_MEMORY,
      token: TOKEN,
      'admin-token': ['<token>', "changes through the admin API and the console's actions need it (or DIRIGENT_ADMIN_TOKEN); without one the console is read-only"],
      json: ['', 'print the addresses as one JSON line'],
    },
  },
  cluster: {
    group: 'Cluster',
    usage: 'cluster [flags]',
    summary: 'start the distributed topology as local processes: etcd (from PATH), control-plane replicas, data planes, workers',
    details: 'Runs until Ctrl-C; a process that exits is restarted after 1 s (kill -9 the leader to see a failover).',
    args: [0, 0],
    client: false,
    flags: {
      'control-planes': ['N', `control-plane replicas, 1..9 (default ${DISTRIBUTED.controlPlaneReplicas})`],
      'data-planes': ['N', `data planes, 1..8 (default ${DISTRIBUTED.dataPlanes})`],
      workers: ['N', `worker processes, 1..64 (default ${DISTRIBUTED.workers})`],
      runtime: [RUNTIME_KINDS.join('|'), `what the workers run (default ${DEFAULT_RUNTIME_KIND})`],
      host: ['<addr>', `interface to listen on (default ${DEFAULT_HOST})`],
      'data-dir': ['<dir>', 'default .dirigent-cluster'],
      'lease-ttl-s': LEASE_TTL,
      store: ['etcd:<url>', 'an etcd that runs already, instead of starting one'],
      token: TOKEN,
      json: ['', 'print the processes as one JSON line'],
    },
  },
  'control-plane': {
    group: 'Cluster',
    usage: 'control-plane [flags]',
    summary: 'run a control-plane replica (see docker-compose.yml)',
    args: [0, 0],
    client: false,
    flags: {
      id: ['<id>', 'replica id (default cp1)'],
      host: ['<addr>', `interface to listen on (default ${DEFAULT_HOST})`],
      advertise: ADVERTISE,
      'cluster-port': ['N', `where workers and data planes connect (default ${PORTS.cluster})`],
      'admin-port': ['N', `admin API port (default ${PORTS.admin})`],
      'admin-token': ['<token>', 'changes through the admin API need it'],
      store: ['memory|file:<dir>|etcd:<url>[,<url>]', 'desired-state store (default file:<data-dir>/store); etcd elects a leader among replicas'],
      'data-dir': ['<dir>', `default ${DEFAULT_DATA_DIR}`],
      'lease-ttl-s': LEASE_TTL,
      'reconstruct-timeout-ms': ['N', 'how long a new leader waits for the workers to list their sandboxes, 0..600000 ms'],
      'heartbeat-timeout-ms': ['N', 'a node silent for this long is dead, 100..3600000 ms (default 15000)'],
      policy: ['<placement>', 'random, round-robin, least-allocated, balanced-allocation or kubernetes (default)'],
      token: TOKEN,
      shards: SHARDS,
      'dry-run': DRY_RUN,
    },
  },
  'data-plane': {
    group: 'Cluster',
    usage: 'data-plane [flags]',
    summary: 'run a data-plane role',
    args: [0, 0],
    client: false,
    flags: {
      id: ['<id>', 'data plane id (default dp1)'],
      'control-plane': CONTROL_PLANE_ADDRESS,
      host: ['<addr>', `interface to listen on (default ${DEFAULT_HOST})`],
      advertise: ADVERTISE,
      'invoke-port': ['N', `invocation port (default ${PORTS.invoke})`],
      'compat-port': ['N', `Dirigent-compatibility port (default ${PORTS.compat})`],
      'data-dir': ['<dir>', `where async jobs live (default ${DEFAULT_DATA_DIR})`],
      policy: ['<load balancing>', orList(LOAD_BALANCING_POLICIES.map((p) => (p === DEFAULT_LOAD_BALANCING_POLICY ? `${p} (default)` : p)))],
      token: TOKEN,
      shards: SHARDS,
      'dry-run': DRY_RUN,
    },
  },
  worker: {
    group: 'Cluster',
    usage: 'worker [flags]',
    summary: 'run a worker role',
    args: [0, 0],
    client: false,
    flags: {
      id: ['<id>', 'worker id, the node id (default w1; listening on 0.0.0.0 or ::, the advertised host)'],
      'control-plane': CONTROL_PLANE_ADDRESS,
      host: ['<addr>', `interface its invocation servers listen on (default ${DEFAULT_HOST})`],
      advertise: ['<host>', 'where data planes reach its sandboxes (default: --host; the hostname when --host is 0.0.0.0)'],
      runtime: [RUNTIME_KINDS.join('|'), `sandbox runtime (default ${DEFAULT_RUNTIME_KIND})`],
      nodes: ['N', 'node actors to simulate, 1..10000 (default 1)'],
      cpu: ['N', 'capacity per node, millicores (default: 1000 per core)'],
      memory: ['N', 'capacity per node, MiB (default: half the memory)'],
      slots: ['N', 'most sandboxes per node (default 64)'],
      'simulated-latency-ms': ['N', 'creation latency of simulated sandboxes, ms'],
      'heartbeat-ms': ['N', 'between two heartbeats of each node, 10..600000 ms (default 5000)'],
      pool: POOL,
      'pool-memory-mib': POOL_MEMORY,
      token: TOKEN,
      shards: SHARDS,
      'dry-run': DRY_RUN,
    },
  },
  deploy: {
    group: 'Functions',
    usage: 'deploy <name> [flags]',
    summary: 'create a function, or update the one of that name',
    details:
      'A new function needs one of --module, --command, --builtin. On an update only the flags given change, and\n' +
      'the source may be left out (deploy f --max-scale 5); --env replaces the whole environment (give every\n' +
      'variable again). A source, or a change of runtime, --env, --memory, --cpu, --concurrency or --timeout-ms,\n' +
      'makes a new version: its sandboxes start, the old ones are drained, and deploy waits (up to 60 s, with a\n' +
      'progress line) until it serves, so the next call runs it. Scaling flags restart nothing. A function that\n' +
      'cannot run here is refused with the cause (no worker of its runtime, no node big enough, a source that\n' +
      'does not start when tried once).',
    args: [1, 1],
    client: true,
    flags: {
      module: ['<file>', 'an ES module exporting handler(request) (thread runtime)'],
      command: ['"<cmd> [args]"', 'a command serving HTTP on $PORT (process runtime), split by shell quoting rules; no shell runs it'],
      builtin: ['empty|echo|trace', 'a built-in workload'],
      runtime: [RUNTIME_KINDS.join('|'), 'which sandbox runtime runs it'],
      env: ['KEY=VALUE', 'an environment variable of its sandboxes (repeat for more)'],
      'min-scale': intHelp('min-scale', 'fewest sandboxes'),
      'max-scale': intHelp('max-scale', 'most sandboxes'),
      concurrency: intHelp('concurrency', 'most requests in one sandbox at once'),
      'keep-alive-ms': intHelp('keep-alive-ms', 'idle time before scale to zero'),
      'target-utilization': intHelp('target-utilization', 'share of --concurrency the autoscaler aims at per sandbox'),
      memory: intHelp('memory', 'memory per sandbox'),
      cpu: intHelp('cpu', 'CPU request per sandbox'),
      'timeout-ms': intHelp('timeout-ms', 'per-invocation timeout'),
      'no-wait': ['', 'return once stored, without waiting for a new version to serve'],
      json: ['', 'print the function as JSON'],
    },
  },
  invoke: {
    group: 'Functions',
    usage: 'invoke <name> [flags]',
    summary: 'invoke a function once',
    args: [1, 1],
    client: false,
    flags: {
      data: ['<body>', 'request body'],
      url: ['<url>', `the data plane (default ${DEFAULT_INVOKE_URL}, or ${ENV.url})`],
      json: ['', 'print status, body and timing as JSON'],
    },
  },
  ls: {
    group: 'Functions',
    usage: 'ls [flags]',
    summary: 'list functions: version, state (with the cause when failed), desired and ready scale',
    args: [0, 0],
    client: true,
    flags: {
      watch: ['', 'redraw whenever it changes, until Ctrl-C'],
      'interval-ms': ['N', `between two looks with --watch, ${range(WATCH_INTERVAL_MS)} (default ${DEFAULT_WATCH_INTERVAL_MS})`],
      json: ['', 'print JSON (with --watch: one line per change)'],
    },
  },
  describe: {
    group: 'Functions',
    usage: 'describe <name> [flags]',
    summary: 'one function: spec, version, sandboxes with node and state, events, counters',
    args: [1, 1],
    client: true,
    flags: { json: ['', 'print the function view as JSON'] },
  },
  logs: {
    group: 'Functions',
    usage: 'logs <name> [flags]',
    summary: "a function's stdout and stderr, every sandbox merged by time",
    details:
      'Each line: time, node/sandbox, stream, text. Workers keep each sandbox\'s newest lines (and those of\n' +
      'sandboxes gone recently), so logs of a function scaled to zero still show.',
    args: [1, 1],
    client: true,
    flags: {
      follow: ['', 'keep printing new lines until Ctrl-C'],
      tail: ['N', `only the newest N lines, ${range(LOG_TAIL_LIMIT)}`],
      since: ['<when>', 'only lines from then on: a duration back (30s, 5m, 2h) or a time (2026-01-02T03:04:05Z)'],
      json: ['', 'print one JSON object per line'],
    },
  },
  rm: {
    group: 'Functions',
    usage: 'rm <name> [flags]',
    summary: 'delete a function (drains and deletes its sandboxes)',
    args: [1, 1],
    client: true,
    flags: { json: ['', 'print the answer as JSON'] },
  },
  status: {
    group: 'Functions',
    usage: 'status [flags]',
    summary: 'cluster status: replicas with leader and term, reconstruction, nodes, data planes',
    args: [0, 0],
    client: true,
    flags: { json: ['', 'print JSON'] },
  },
  ...EXPERIMENT_COMMANDS,
} as const satisfies Record<string, CommandDef>;

export type CommandName = keyof typeof COMMANDS;

const CLIENT_FLAGS: Readonly<Partial<Record<FlagName, FlagHelp>>> = {
  admin: ['<url>', `the admin API (default ${DEFAULT_ADMIN_URL}, or ${ENV.admin})`],
  'admin-token': ['<token>', `for changes when the cluster has one (or ${ENV.adminToken})`],
};
const COMMON_FLAGS: Readonly<Partial<Record<FlagName, FlagHelp>>> = { help: ['', 'this help'] };

export type UsageCode = 'INVALID_USAGE' | 'UNKNOWN_COMMAND' | 'UNKNOWN_OPTION' | 'INVALID_OPTION' | 'MISSING_ARGUMENT';

/** A mistake in the command line: reported without a stack trace, exit code 2. */
export class UsageError extends DirigentError<UsageCode> {
  override name = 'UsageError';
  constructor(message: string, code: UsageCode = 'INVALID_USAGE') {
    super(code, message);
  }
}

export interface ParsedCommandLine {
  /** Absent: no command given (`dirigent`, `dirigent --help`, `dirigent --version`). */
  readonly command?: CommandName;
  readonly values: CliValues;
  /** After the command. */
  readonly args: readonly string[];
}

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

function flagsOf(command: CommandName | undefined): Readonly<Partial<Record<FlagName, FlagHelp>>> {
  if (command === undefined) return { ...COMMON_FLAGS, version: ['', 'print the version'], json: ['', 'errors as JSON'] };
  const def: CommandDef = COMMANDS[command];
  return { ...def.flags, ...(def.client ? CLIENT_FLAGS : {}), ...COMMON_FLAGS };
}

/** The candidate nearest to `typed`, when near enough to be a slip (about one edit in three characters). */
export function suggest(typed: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined;
  const best = closest(typed, candidates);
  return distance(typed, best) <= Math.max(1, Math.floor(typed.length / 3)) ? best : undefined;
}

/** `--json` anywhere before `--`: errors of a command line that does not parse are JSON too then. */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * Finds the command (the first positional), then parses strictly with that command's flags. An unknown flag
 * or command gets a suggestion; `dirigent help <command>` is `dirigent <command> --help`.
 */
export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  const { tokens } = parseArgs({ args: [...argv], options: FLAG_TYPES, allowPositionals: true, strict: false, tokens: true });
  const positionals = tokens.flatMap((t) => (t.kind === 'positional' ? [t] : []));
  let name = positionals[0]?.value;
  let rest = [...argv];
  let help = false;
  if (name === 'help') {
    // `dirigent help [command]`
    rest = rest.filter((_arg, i) => i !== positionals[0]?.index);
    help = true;
    name = positionals[1]?.value;
  }
  if (name !== undefined && !isCommand(name)) {
    const near = suggest(name, Object.keys(COMMANDS));
    throw new UsageError(`unknown command ${name}${near ? `; did you mean ${near}?` : ''} (dirigent --help lists the commands)`, 'UNKNOWN_COMMAND');
  }
  const command = name;
  const allowed = flagsOf(command);
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    if (!Object.hasOwn(allowed, token.name)) throw unknownOption(token.rawName, token.name, command, Object.keys(allowed) as FlagName[]);
    const type = FLAG_TYPES[token.name as FlagName].type;
    if (type === 'string' && token.value === undefined) throw new UsageError(`${token.rawName} needs a value${usageHint(command)}`, 'INVALID_OPTION');
    if (type === 'boolean' && token.value !== undefined) throw new UsageError(`${token.rawName} takes no value, got ${JSON.stringify(token.value)}`, 'INVALID_OPTION');
  }
  const options = Object.fromEntries(Object.keys(allowed).map((flag) => [flag, FLAG_TYPES[flag as FlagName]]));
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (error) {
    // What the checks above leave to parseArgs (a value that looks like a flag, e.g. `--module --json`).
    throw new UsageError(`${(error as Error).message}${usageHint(command)}`, 'INVALID_OPTION');
  }
  const values = parsed.values as CliValues;
  if (help) values.help = true;
  const args = command === undefined ? parsed.positionals : parsed.positionals.slice(1);
  if (command !== undefined && !values.help) {
    const def: CommandDef = COMMANDS[command];
    const [required, most] = def.args;
    if (args.length < required) throw new UsageError(`${command} needs ${def.usage.replace(/^\S+\s*/, '').replace(/\s*\[flags\]$/, '')}: dirigent ${def.usage}`, 'MISSING_ARGUMENT');
    if (args.length > most) throw new UsageError(`${command} takes ${most === 0 ? 'no arguments' : `${most} argument${most > 1 ? 's' : ''}`}, got ${JSON.stringify(args.slice(most).join(' '))}${usageHint(command)}`, 'INVALID_USAGE');
  }
  return { command, values, args };
}

function usageHint(command: CommandName | undefined): string {
  return `; see dirigent ${command === undefined ? '' : `${command} `}--help`;
}

function unknownOption(raw: string, name: string, command: CommandName | undefined, allowed: readonly FlagName[]): UsageError {
  const where = command === undefined ? '' : ` for ${command}`;
  const near = suggest(name, allowed);
  if (near !== undefined) return new UsageError(`unknown option ${raw}${where}; did you mean --${near}?`, 'UNKNOWN_OPTION');
  const owners = (Object.keys(COMMANDS) as CommandName[]).filter((c) => Object.hasOwn(flagsOf(c), name));
  const elsewhere = owners.length > 0 ? ` (it is an option of ${owners.join(', ')})` : '';
  return new UsageError(`unknown option ${raw}${where}${elsewhere}${usageHint(command)}`, 'UNKNOWN_OPTION');
}

/** `dirigent --help`: the commands by group. */
export function overviewHelp(): string {
  const lines = ['dirigent: a serverless cluster manager (a TypeScript re-implementation of Dirigent)', '', 'Usage: dirigent <command> [flags]   (dirigent <command> --help for its flags)'];
  for (const group of ['Cluster', 'Functions', 'Experiments'] as const) {
    lines.push('', group);
    for (const [name, def] of Object.entries(COMMANDS) as [CommandName, CommandDef][]) {
      if (def.group === group) lines.push(`  ${def.usage.split(' ').filter((w) => w !== '[flags]').join(' ').padEnd(22)} ${def.summary}`);
    }
  }
  lines.push(
    '',
    'Flags of every command: -h/--help; of the function commands: --admin <url>, --admin-token <token>, --json',
    'Errors: exit code 2 for a mistake in the command line, 1 for anything else; with --json, one line',
    '{"error":{"code","message"}} on stderr instead of the message (stdout carries only results).',
    `Logs: ${ENV.log}=info or debug (more log lines; debug also prints the stack of an error)`,
    '--version prints the version.',
  );
  return lines.join('\n');
}

/** `dirigent <command> --help`: that command's usage and flags only. */
export function commandHelp(command: CommandName): string {
  const def: CommandDef = COMMANDS[command];
  const flagLines = (flags: Readonly<Partial<Record<FlagName, FlagHelp>>>) =>
    (Object.entries(flags) as [FlagName, FlagHelp][]).map(([flag, [placeholder, help]]) => {
      const short = 'short' in FLAG_TYPES[flag] ? `-${(FLAG_TYPES[flag] as { short: string }).short}, ` : '    ';
      return `  ${short}${`--${flag}${placeholder ? ` ${placeholder}` : ''}`.padEnd(36)} ${help}`;
    });
  return [
    `Usage: dirigent ${def.usage}`,
    '',
    def.summary.charAt(0).toUpperCase() + def.summary.slice(1) + '.',
    ...(def.details ? ['', def.details] : []),
    '',
    'Flags:',
    ...flagLines(def.flags),
    ...flagLines(def.client ? { ...CLIENT_FLAGS, ...COMMON_FLAGS } : COMMON_FLAGS),
  ].join('\n');
}

/** An integer flag in min..max `unit`, or undefined when absent (the roles' flags: ports, threads, capacities). */
export function intFlag(values: Readonly<Record<string, unknown>>, name: string, unit: string, min = 0, max = 2 ** 31 - 1): number | undefined {
  return intIn(values, name, { min, max, unit });
}

/** An integer flag within `r`, or undefined when absent; a wrong value names the flag, the range and the unit. */
export function intIn(values: Readonly<Record<string, unknown>>, name: string, r: IntRange): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const value = typeof raw === 'string' && /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  const max = r.max ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(value) || value < r.min || value > max) throw new UsageError(`--${name} must be an integer ${r.max === undefined ? `>= ${r.min}` : `in ${r.min}..${r.max}`}${r.unit ? ` ${r.unit}` : ''}, got ${JSON.stringify(raw)}`, 'INVALID_OPTION');
  return value;
}

/**
 * `--command "<cmd> [args]"` as an argument vector, split by shell quoting rules (quotes, backslashes). No
 * shell runs it: `$VAR` stays as written (a shell the command starts may expand it), a glob is passed as
 * is, a comment ends it, and an operator (`|`, `&&`, `>`, ...) is refused with the way to get a shell.
 */
export function splitCommand(line: string): string[] {
  const words: string[] = [];
  for (const entry of parseShellWords(line, (name) => `$${name}`)) {
    if (typeof entry === 'string') words.push(entry);
    else if ('comment' in entry) break;
    else if (entry.op === 'glob') words.push(entry.pattern);
    else throw new UsageError(`--command runs without a shell, so ${JSON.stringify(entry.op)} cannot be used; for a shell, write --command 'sh -c "..."'`, 'INVALID_OPTION');
  }
  if (words.length === 0) throw new UsageError('--command needs a command line', 'INVALID_OPTION');
  return words;
}

/** Repeated `--env KEY=VALUE` as an environment; the key must be a name the spec accepts, given once. */
export function envFromFlags(entries: readonly string[] | undefined): Record<string, string> | undefined {
  if (entries === undefined) return undefined;
  const env = new Map<string, string>();
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    const key = eq === -1 ? entry : entry.slice(0, eq);
    if (eq === -1) throw new UsageError(`--env must be KEY=VALUE, got ${JSON.stringify(entry)}`, 'INVALID_OPTION');
    if (!ENV_NAME.test(key)) throw new UsageError(`--env ${JSON.stringify(key)}: a variable name must match ${ENV_NAME.source} (letters, digits and _, not starting with a digit)`, 'INVALID_OPTION');
    if (env.has(key)) throw new UsageError(`--env sets ${key} twice`, 'INVALID_OPTION');
    env.set(key, entry.slice(eq + 1));
  }
  // fromEntries defines own properties, so a variable named __proto__ is kept, as the spec keeps it.
  return Object.fromEntries(env);
}

const DURATION_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: a duration back from `nowMs` (`30s`, `5m`, `2h`, `1d`, `250ms`) or a date-time; ms since the epoch. */
export function parseSince(raw: string, nowMs: number): number {
  const duration = /^(\d+)(ms|s|m|h|d)$/.exec(raw.trim());
  if (duration !== null) return Math.max(0, nowMs - Number(duration[1]) * DURATION_MS[duration[2]!]!);
  // Date.parse takes far more than dates (a bare number is a year); only what looks like one is a time here.
  const at = /^\d{4}-\d{2}-\d{2}/.test(raw.trim()) ? Date.parse(raw.trim()) : Number.NaN;
  if (Number.isNaN(at)) throw new UsageError(`--since must be a duration (30s, 5m, 2h, 1d, 250ms) or a time (2026-01-02T03:04:05Z), got ${JSON.stringify(raw)}`, 'INVALID_OPTION');
  return Math.max(0, at);
}
