// Header conversion between node:http and the port's flat, lower-case header records.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Connection-scoped headers: each hop frames the body and manages its connection itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length']);

/** Repeated headers are joined with ', ' (lossy for set-cookie, which the port does not model). */
export function fromIncoming(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

export function toOutgoing(headers: Record<string, string>, bodyBytes: number): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.has(name.toLowerCase())) out[name] = value;
  }
  out['content-length'] = bodyBytes;
  return out;
}
