// One printer for messages and states: one short line each, for logs, test transcripts and the console.
import { printAddress, type Address } from './actor.js';

const MAX_VALUE_CHARS = 60;

/** `type key=value ...` for a message with a `type`; compact JSON otherwise. Long values are cut. */
export function printMessage(message: unknown): string {
  if (message === null || typeof message !== 'object') return truncate(JSON.stringify(message) ?? String(message));
  const record = message as Record<string, unknown>;
  const parts: string[] = typeof record.type === 'string' ? [record.type] : [];
  for (const [key, value] of Object.entries(record)) {
    if (key === 'type' || value === undefined) continue;
    parts.push(`${key}=${printValue(value)}`);
  }
  return parts.join(' ');
}

function printValue(value: unknown): string {
  if (typeof value === 'string') return truncate(value);
  if (Array.isArray(value)) return value.length <= 3 ? truncate(JSON.stringify(value)) : `[${value.length} items]`;
  if (value && typeof value === 'object' && 'kind' in value && 'id' in value) return printAddress(value as Address);
  return truncate(JSON.stringify(value) ?? String(value));
}

function truncate(text: string): string {
  return text.length <= MAX_VALUE_CHARS ? text : `${text.slice(0, MAX_VALUE_CHARS - 1)}…`;
}

/** One transcript line: `t=<ms> <receiver> <- <message> [from <sender>]`. */
export function printDelivery(now: number, to: Address, message: unknown, from?: Address): string {
  return `t=${now} ${printAddress(to)} <- ${printMessage(message)}${from ? ` (from ${printAddress(from)})` : ''}`;
}
