// The Azure Functions trace format (AzurePublicDataset, 2019), as the in-vitro loader reads it from a folder:
//   invocations.csv  HashOwner,HashApp,HashFunction,Trigger, then one column per minute: invocations that minute
//   durations.csv    HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_{0,1,25,50,75,99,100} (ms)
//   memory.csv       HashOwner,HashApp,HashFunction,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct{1,5,25,50,75,95,99,100} (MB)
//   dirigent.json    optional: per HashFunction, Dirigent's registration metadata (image, port, scaling bounds)
// Rows join on HashFunction; a row of invocations.csv with no duration or memory row is an error (the loader
// exits on it). Pure: parsing and formatting take and give text; readAzureTrace is the one function that reads files.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DirigentError } from '../../actors/errors.js';

export interface DurationStats {
  /** All in ms. */
  readonly average: number;
  readonly count: number;
  readonly minimum: number;
  readonly maximum: number;
  readonly p0: number;
  readonly p1: number;
  readonly p25: number;
  readonly p50: number;
  readonly p75: number;
  readonly p99: number;
  readonly p100: number;
}

export interface MemoryStats {
  readonly sampleCount: number;
  /** All in MB, as the trace says (the loader treats them as MiB). */
  readonly average: number;
  readonly p1: number;
  readonly p5: number;
  readonly p25: number;
  readonly p50: number;
  readonly p75: number;
  readonly p95: number;
  readonly p99: number;
  readonly p100: number;
}

/** The fields of the loader's dirigent.json this project uses (the image selects nothing here: see replay.ts). */
export interface DirigentMetadata {
  readonly image?: string;
  readonly scalingUpperBound?: number;
  readonly scalingLowerBound?: number;
  readonly iterationMultiplier?: number;
  readonly ioPercentage?: number;
}

export interface TraceFunction {
  readonly hashOwner: string;
  readonly hashApp: string;
  readonly hashFunction: string;
  readonly trigger: string;
  /** Invocations per minute, from minute 0. */
  readonly invocations: readonly number[];
  readonly durations: DurationStats;
  readonly memory: MemoryStats;
  readonly dirigent?: DirigentMetadata;
}

export interface TraceFiles {
  readonly invocations: string;
  readonly durations: string;
  readonly memory: string;
  readonly dirigent?: string;
}

/** A trace that cannot be read; the message names the file, the line and the column. */
export class TraceError extends DirigentError<'INVALID_TRACE'> {
  override name = 'TraceError';
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super('INVALID_TRACE', message, options);
  }
}

export const DURATION_COLUMNS = ['Average', 'Count', 'Minimum', 'Maximum', 'percentile_Average_0', 'percentile_Average_1', 'percentile_Average_25', 'percentile_Average_50', 'percentile_Average_75', 'percentile_Average_99', 'percentile_Average_100'] as const;
export const MEMORY_COLUMNS = ['SampleCount', 'AverageAllocatedMb', 'AverageAllocatedMb_pct1', 'AverageAllocatedMb_pct5', 'AverageAllocatedMb_pct25', 'AverageAllocatedMb_pct50', 'AverageAllocatedMb_pct75', 'AverageAllocatedMb_pct95', 'AverageAllocatedMb_pct99', 'AverageAllocatedMb_pct100'] as const;
const HASHES = ['HashOwner', 'HashApp', 'HashFunction'] as const;

interface Table {
  readonly file: string;
  readonly header: readonly string[];
  /** Each with its 1-based line number. */
  readonly rows: readonly { readonly line: number; readonly cells: readonly string[] }[];
}

/** The trace's files hold no quoted fields: a line splits on commas. Blank lines are skipped. */
function table(file: string, text: string): Table {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((h) => h.trim());
  if (header.length < 2) throw new TraceError(`${file}: no header line`);
  const rows = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const cells = line.split(',');
    if (cells.length !== header.length) throw new TraceError(`${file} line ${i + 1}: ${cells.length} columns, the header has ${header.length}`);
    rows.push({ line: i + 1, cells });
  }
  return { file, header, rows };
}

function columnIndex(t: Table, name: string): number {
  const i = t.header.findIndex((h) => h.toLowerCase() === name.toLowerCase());
  if (i === -1) throw new TraceError(`${t.file}: no column ${name} (header: ${t.header.slice(0, 8).join(',')}${t.header.length > 8 ? ',...' : ''})`);
  return i;
}

function numberAt(t: Table, row: { line: number; cells: readonly string[] }, index: number): number {
  const raw = (row.cells[index] ?? '').trim();
  const value = raw === '' ? Number.NaN : Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new TraceError(`${t.file} line ${row.line}, column ${t.header[index]}: expected a number >= 0, got ${JSON.stringify(raw)}`);
  return value;
}

function statsByFunction<T>(t: Table, columns: readonly string[], build: (values: number[]) => T): Map<string, T> {
  const hash = columnIndex(t, 'HashFunction');
  const indices = columns.map((c) => columnIndex(t, c));
  const result = new Map<string, T>();
  for (const row of t.rows) result.set(row.cells[hash]!.trim(), build(indices.map((i) => numberAt(t, row, i))));
  return result;
}

function durationStats(v: number[]): DurationStats {
  const [average, count, minimum, maximum, p0, p1, p25, p50, p75, p99, p100] = v as [number, number, number, number, number, number, number, number, number, number, number];
  return { average, count, minimum, maximum, p0, p1, p25, p50, p75, p99, p100 };
}

function memoryStats(v: number[]): MemoryStats {
  const [sampleCount, average, p1, p5, p25, p50, p75, p95, p99, p100] = v as [number, number, number, number, number, number, number, number, number, number];
  return { sampleCount, average, p1, p5, p25, p50, p75, p95, p99, p100 };
}

function parseDirigent(text: string): Map<string, DirigentMetadata> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new TraceError(`dirigent.json: not JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(parsed)) throw new TraceError('dirigent.json: expected an array of objects with HashFunction');
  const result = new Map<string, DirigentMetadata>();
  parsed.forEach((entry: unknown, i) => {
    const e = entry as Record<string, unknown>;
    if (typeof e !== 'object' || e === null || typeof e['HashFunction'] !== 'string') throw new TraceError(`dirigent.json entry ${i}: no HashFunction`);
    const int = (key: string): number | undefined => {
      const value = e[key];
      if (value === undefined) return undefined;
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new TraceError(`dirigent.json entry ${i}: ${key} must be an integer >= 0, got ${JSON.stringify(value)}`);
      return value;
    };
    result.set(e['HashFunction'], {
      ...(typeof e['Image'] === 'string' ? { image: e['Image'] } : {}),
      scalingUpperBound: int('ScalingUpperBound'),
      scalingLowerBound: int('ScalingLowerBound'),
      iterationMultiplier: int('IterationMultiplier'),
      ioPercentage: int('IOPercentage'),
    });
  });
  return result;
}

/** Parses a trace; the minute columns are those after Trigger (after the hashes when there is no Trigger). */
export function parseAzureTrace(files: TraceFiles): TraceFunction[] {
  const inv = table('invocations.csv', files.invocations);
  const [owner, app, fn] = HASHES.map((h) => columnIndex(inv, h)) as [number, number, number];
  const triggerAt = inv.header.findIndex((h) => h.toLowerCase() === 'trigger');
  const firstMinute = triggerAt === -1 ? Math.max(owner, app, fn) + 1 : triggerAt + 1;
  if (firstMinute >= inv.header.length) throw new TraceError('invocations.csv: no minute columns after the hashes and Trigger');
  const durations = statsByFunction(table('durations.csv', files.durations), DURATION_COLUMNS, durationStats);
  const memory = statsByFunction(table('memory.csv', files.memory), MEMORY_COLUMNS, memoryStats);
  const dirigent = files.dirigent === undefined ? new Map<string, DirigentMetadata>() : parseDirigent(files.dirigent);
  const seen = new Set<string>();
  return inv.rows.map((row) => {
    const hashFunction = row.cells[fn]!.trim();
    if (seen.has(hashFunction)) throw new TraceError(`invocations.csv line ${row.line}: HashFunction ${hashFunction} appears twice`);
    seen.add(hashFunction);
    const invocations = [];
    for (let i = firstMinute; i < inv.header.length; i++) {
      const count = numberAt(inv, row, i);
      if (!Number.isSafeInteger(count)) throw new TraceError(`invocations.csv line ${row.line}, column ${inv.header[i]}: an invocation count must be an integer, got ${count}`);
      invocations.push(count);
    }
    const d = durations.get(hashFunction);
    if (d === undefined) throw new TraceError(`durations.csv: no row for HashFunction ${hashFunction} (invocations.csv line ${row.line})`);
    const m = memory.get(hashFunction);
    if (m === undefined) throw new TraceError(`memory.csv: no row for HashFunction ${hashFunction} (invocations.csv line ${row.line})`);
    const meta = dirigent.get(hashFunction);
    return {
      hashOwner: row.cells[owner]!.trim(),
      hashApp: row.cells[app]!.trim(),
      hashFunction,
      trigger: triggerAt === -1 ? '' : row.cells[triggerAt]!.trim(),
      invocations,
      durations: d,
      memory: m,
      ...(meta === undefined ? {} : { dirigent: meta }),
    };
  });
}

/** Reads `dir`/invocations.csv, durations.csv, memory.csv and, when present, dirigent.json. */
export async function readAzureTrace(dir: string): Promise<TraceFunction[]> {
  const read = async (name: string, optional = false): Promise<string | undefined> => {
    try {
      return await readFile(join(dir, name), 'utf8');
    } catch (error) {
      if (optional && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new TraceError(`cannot read ${join(dir, name)}: ${(error as Error).message}`);
    }
  };
  // Read together, but a failure reported in file order: a missing folder always names invocations.csv.
  const settled = await Promise.allSettled([read('invocations.csv'), read('durations.csv'), read('memory.csv'), read('dirigent.json', true)]);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const [invocations, durations, memory, dirigent] = settled.map((r) => (r as PromiseFulfilledResult<string | undefined>).value);
  return parseAzureTrace({ invocations: invocations!, durations: durations!, memory: memory!, ...(dirigent === undefined ? {} : { dirigent }) });
}

const num = (x: number): string => (Number.isInteger(x) ? `${x}.0` : String(x));

/** The trace in the same files, every function with as many minutes as the first. */
export function formatAzureTrace(functions: readonly TraceFunction[]): { invocations: string; durations: string; memory: string } {
  const minutes = functions[0]?.invocations.length ?? 0;
  const ids = (f: TraceFunction) => `${f.hashOwner},${f.hashApp},${f.hashFunction}`;
  const invocations = [`${HASHES.join(',')},Trigger,${Array.from({ length: minutes }, (_, i) => i + 1).join(',')}`, ...functions.map((f) => `${ids(f)},${f.trigger},${f.invocations.join(',')}`)];
  const durations = [
    `${HASHES.join(',')},${DURATION_COLUMNS.join(',')}`,
    ...functions.map(({ durations: d, ...f }) => `${ids(f as TraceFunction)},${[d.average, d.count, d.minimum, d.maximum, d.p0, d.p1, d.p25, d.p50, d.p75, d.p99, d.p100].map(num).join(',')}`),
  ];
  const memory = [
    `${HASHES.join(',')},${MEMORY_COLUMNS.join(',')}`,
    ...functions.map(({ memory: m, ...f }) => `${ids(f as TraceFunction)},${[m.sampleCount, m.average, m.p1, m.p5, m.p25, m.p50, m.p75, m.p95, m.p99, m.p100].map(num).join(',')}`),
  ];
  return { invocations: `${invocations.join('\n')}\n`, durations: `${durations.join('\n')}\n`, memory: `${memory.join('\n')}\n` };
}
