// The CLI's flags, shared by the commands and the roles. Parsing is strict: an unknown flag is an error.
import { parseArgs, type ParseArgsConfig } from 'node:util';

const options = {
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
  memory: { type: 'string' },
  cpu: { type: 'string' },
  'timeout-ms': { type: 'string' },
  host: { type: 'string' },
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
} satisfies ParseArgsConfig['options'];

export type CliValues = ReturnType<typeof parse>['values'];

export function parse(argv: string[]) {
  return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
}

/** A mistake in the command line: reported without a stack trace, exit code 2. */
export class UsageError extends Error {}

/** A non-negative integer flag, or undefined when absent; names the flag and unit when wrong. */
export function intFlag(values: Record<string, unknown>, name: string, unit: string, min = 0, max = 2 ** 31 - 1): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new UsageError(`--${name} must be an integer in ${min}..${max} ${unit}, got ${JSON.stringify(raw)}`);
  return value;
}

