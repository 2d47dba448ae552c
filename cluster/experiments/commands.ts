// The experiment commands' flags and help, spread into the CLI's tables (cluster/flags.ts). No imports of
// values from flags.ts: it imports this file.
import type { CommandDef } from '../flags.js';
import { IAT_DISTRIBUTIONS } from './arrivals.js';

export const EXPERIMENT_FLAG_TYPES = {
  minutes: { type: 'string' },
  'warmup-minutes': { type: 'string' },
  compress: { type: 'string' },
  seed: { type: 'string' },
  target: { type: 'string' },
  out: { type: 'string' },
  iat: { type: 'string' },
  'name-prefix': { type: 'string' },
  'max-sockets': { type: 'string' },
  functions: { type: 'string' },
  'drop-minutes': { type: 'string' },
  plots: { type: 'string' },
} as const;

/** Defaults of `replay`, shown in its help. */
export const REPLAY_DEFAULTS = { seed: 42, compress: 1, warmupMinutes: 0, iat: 'exponential', namePrefix: 'trace-func', maxSockets: 1024, timeoutMs: 90_000, out: 'replay.csv' } as const;

export const EXPERIMENT_COMMANDS = {
  replay: {
    group: 'Experiments',
    usage: 'replay <trace-dir> [flags]',
    summary: "replay an Azure Functions trace against a cluster, as Dirigent's loader does; one CSV row per invocation",
    details:
      '<trace-dir> holds invocations.csv, durations.csv, memory.csv (and optionally dirigent.json) in the Azure\n' +
      'Functions 2019 trace format. One function per row is registered with POST /registerService (the trace\n' +
      'workload); invocations are sent open loop over HTTP/1.1 keep-alive to the address registration returned,\n' +
      'at the per-minute counts of the trace with gaps drawn as the loader draws them. The CSV has the loader\'s\n' +
      'columns (times in microseconds) and ours (function, httpStatus, coldStart, sendLateness). --compress C\n' +
      'sends C trace minutes per wall minute (arrivals only: run times and the cluster\'s windows stay as they are).',
    args: [1, 1],
    client: true,
    flags: {
      minutes: ['N', 'trace minutes to measure, after the warm-up, 1..1440 (default: the rest of the trace)'],
      'warmup-minutes': ['N', `warm-up minutes (phase 1; minute 0 is then skipped, as the loader does), 0..1440 (default ${REPLAY_DEFAULTS.warmupMinutes})`],
      compress: ['C', `trace time / wall time, 0.01..10000 (default ${REPLAY_DEFAULTS.compress})`],
      seed: ['N', `seed of the arrival and run-time draws (default ${REPLAY_DEFAULTS.seed}, the loader's)`],
      iat: [IAT_DISTRIBUTIONS.join('|'), `gaps within a minute (default ${REPLAY_DEFAULTS.iat})`],
      target: ['<host:port>', 'send invocations here instead of the address registration returned'],
      out: ['<file>', `the CSV to write (default ${REPLAY_DEFAULTS.out})`],
      'name-prefix': ['<prefix>', `function names are <prefix>-<row>-<hash> (default ${REPLAY_DEFAULTS.namePrefix}-<random>)`],
      'max-sockets': ['N', `connections to a data plane at most, 1..65536 (default ${REPLAY_DEFAULTS.maxSockets})`],
      'timeout-ms': ['N', `per invocation, 1..3600000 ms (default ${REPLAY_DEFAULTS.timeoutMs})`],
      json: ['', 'print the summary and metrics as JSON'],
    },
  },
  trace: {
    group: 'Experiments',
    usage: 'trace synth <out-dir> [flags]',
    summary: 'write a synthetic trace drawn from the distributions of "Serverless in the Wild" (ATC \'20)',
    details:
      'Writes invocations.csv, durations.csv and memory.csv into <out-dir> (created if missing). Rates span\n' +
      'orders of magnitude, about half the functions run under 1 s, minutes are bursty; timers are periodic.\n' +
      'The distributions and their sources are listed in cluster/experiments/synth.ts.',
    args: [2, 2],
    client: false,
    flags: {
      functions: ['N', 'functions, 1..100000 (default 200)'],
      minutes: ['N', 'minutes, 1..1440 (default 30)'],
      seed: ['N', 'seed (default 42)'],
      json: ['', 'print a summary as JSON'],
    },
  },
  report: {
    group: 'Experiments',
    usage: 'report <csv>... [flags]',
    summary: "the paper's metrics of one or more replays side by side, with CDF plots beside Dirigent's published points",
    details:
      'Per-invocation scheduling latency (response time - the run time the function reported), per-function mean\n' +
      'scheduling latency, per-function slowdown (geometric mean of response time / requested run time over the\n' +
      'calls where it is >= 1), p50/p90/p99, failures and cold starts; execution-phase rows only. Reads the\n' +
      "loader's own CSV files too. The plots are SVG files.",
    args: [1, 16],
    client: false,
    flags: {
      'drop-minutes': ['N', 'leave out the first N trace minutes of the execution phase (the paper: 10; default 0)'],
      plots: ['<dir>', 'write the CDF plots there (default: the folder of the first CSV)'],
      json: ['', 'print the metrics as JSON'],
    },
  },
} as const satisfies Record<string, CommandDef>;
