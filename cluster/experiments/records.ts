// One row per invocation, in the in-vitro loader's CSV columns (pkg/common/record.go, ExecutionRecordBase; times
// in µs) followed by a few of ours that the loader cannot know. A report reads the columns by name, so it reads
// the loader's own CSV files too (which have more columns, and not ours).
import { DirigentError } from '../../actors/errors.js';

/** The loader's columns, in its order. */
export const LOADER_COLUMNS = ['phase', 'instance', 'invocationID', 'startTime', 'requestedDuration', 'responseTime', 'actualDuration', 'connectionTimeout', 'functionTimeout'] as const;
/**
 * Ours: the function name sent (the loader's `instance` is the name the function answered with), the HTTP
 * status (0 without an answer), whether the data plane served it through a cold start (`x-dirigent-cold-start`),
 * how long it waited in the data plane for a sandbox (`x-dirigent-queue-ms`, µs), and how late the sender
 * released it against its schedule, µs.
 */
export const EXTRA_COLUMNS = ['function', 'httpStatus', 'coldStart', 'queueTime', 'sendLateness'] as const;

export interface InvocationRecord {
  /** 1 warm-up, 2 execution. */
  readonly phase: number;
  readonly instance: string;
  /** `min<minute>.inv<index>`. */
  readonly invocationID: string;
  /** When it was sent, µs since the Unix epoch. */
  readonly startTime: number;
  /** µs. */
  readonly requestedDuration: number;
  /** Sent -> answer read, µs. */
  readonly responseTime: number;
  /** The function's own report of its run time, µs (0 when it did not answer). */
  readonly actualDuration: number;
  /** No answer: the connection failed or the client gave up. */
  readonly connectionTimeout: boolean;
  /** An answer that is not a success (not 200, or an empty body). */
  readonly functionTimeout: boolean;
  readonly function?: string;
  readonly httpStatus?: number;
  /** Absent when the source did not record it (the loader's CSV). */
  readonly coldStart?: boolean;
  /** µs the data plane says it queued the call (waiting for a sandbox). */
  readonly queueTime?: number;
  readonly sendLateness?: number;
}

export function recordHeader(): string {
  return [...LOADER_COLUMNS, ...EXTRA_COLUMNS].join(',');
}

/** Function names are DNS labels and ids have no commas: nothing here needs quoting. */
export function recordLine(r: InvocationRecord): string {
  return [
    r.phase,
    r.instance,
    r.invocationID,
    r.startTime,
    r.requestedDuration,
    r.responseTime,
    r.actualDuration,
    r.connectionTimeout,
    r.functionTimeout,
    r.function ?? '',
    r.httpStatus ?? '',
    r.coldStart === undefined ? '' : r.coldStart,
    r.queueTime ?? '',
    r.sendLateness ?? '',
  ].join(',');
}

export class RecordsError extends DirigentError<'INVALID_RECORDS'> {
  override name = 'RecordsError';
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super('INVALID_RECORDS', message, options);
  }
}

/** Parses a CSV of records; `source` names it in errors. Unknown columns are ignored, the loader's are required. */
export function parseRecords(text: string, source: string): InvocationRecord[] {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((h) => h.trim());
  const at = new Map(header.map((h, i) => [h, i]));
  const missing = LOADER_COLUMNS.filter((c) => !at.has(c));
  if (missing.length > 0) throw new RecordsError(`${source}: not an invocation CSV: no column ${missing.join(', ')} (header: ${lines[0]?.slice(0, 120) ?? ''})`);
  const records: InvocationRecord[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const cells = line.split(',');
    const cell = (name: string): string | undefined => {
      const index = at.get(name);
      return index === undefined ? undefined : cells[index];
    };
    const int = (name: string): number => {
      const raw = cell(name) ?? '';
      const value = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(value)) throw new RecordsError(`${source} line ${i + 1}: ${name} must be a number, got ${JSON.stringify(raw)}`);
      return value;
    };
    const bool = (name: string): boolean | undefined => {
      const raw = (cell(name) ?? '').trim().toLowerCase();
      if (raw === '') return undefined;
      if (raw !== 'true' && raw !== 'false') throw new RecordsError(`${source} line ${i + 1}: ${name} must be true or false, got ${JSON.stringify(raw)}`);
      return raw === 'true';
    };
    const optionalInt = (name: string): number | undefined => ((cell(name) ?? '').trim() === '' ? undefined : int(name));
    const fn = (cell('function') ?? '').trim();
    const httpStatus = optionalInt('httpStatus');
    const coldStart = bool('coldStart');
    const queueTime = optionalInt('queueTime');
    const sendLateness = optionalInt('sendLateness');
    records.push({
      phase: int('phase'),
      instance: (cell('instance') ?? '').trim(),
      invocationID: (cell('invocationID') ?? '').trim(),
      startTime: int('startTime'),
      requestedDuration: int('requestedDuration'),
      responseTime: int('responseTime'),
      actualDuration: int('actualDuration'),
      connectionTimeout: bool('connectionTimeout') ?? false,
      functionTimeout: bool('functionTimeout') ?? false,
      ...(fn === '' ? {} : { function: fn }),
      ...(httpStatus === undefined ? {} : { httpStatus }),
      ...(coldStart === undefined ? {} : { coldStart }),
      ...(queueTime === undefined ? {} : { queueTime }),
      ...(sendLateness === undefined ? {} : { sendLateness }),
    });
  }
  return records;
}

/** The trace minute of a loader invocation id (`min12.inv3` -> 12), or undefined for another shape. */
export function minuteOf(invocationID: string): number | undefined {
  const match = /^(?:min|sec)(\d+)\.inv\d+$/.exec(invocationID);
  return match === null ? undefined : Number(match[1]);
}
