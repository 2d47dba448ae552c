// The WebSocket reply encoder against msgpackr: whatever it writes decodes to what msgpackr's encoding of the
// same reply decodes to.
import test from 'ava';
import { Packr } from 'msgpackr';
import type { EdgeResponse } from './edge.js';
import { packReply } from './msgpack-reply.js';

const packr = new Packr({ useRecords: false });

function reference(id: string | number | null, response: EdgeResponse): unknown {
  const reply: Record<string, unknown> = { id, status: response.status, headers: response.headers, body: response.body };
  if (response.error) reply.error = response.error;
  return packr.unpack(packr.pack(reply));
}

const empty = new Uint8Array(0);
const cases: [string | number | null, EdgeResponse][] = [
  [
    1,
    {
      status: 200,
      headers: { 'content-type': 'text/plain; charset=utf-8', 'x-dirigent-queue-ms': '0', 'x-dirigent-cold-start': 'false', 'server-timing': 'queue;dur=0.000, total;dur=8.814' },
      body: new TextEncoder().encode('OK'),
    },
  ],
  ['r-ü-✓'.repeat(3), { status: 502, headers: {}, body: new Uint8Array(300).fill(7), error: { code: 'SANDBOX_FAILED', message: `${'x'.repeat(40)}${'ü'.repeat(100)}` } }],
  [null, { status: 400, headers: { a: 'b'.repeat(300), 'x-long': 'é'.repeat(30_000) }, body: new Uint8Array(70_000).fill(1) }],
  [-5, { status: 200, headers: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`h${i}`, `v${i}`])), body: empty }],
  ['😀'.repeat(20), { status: 200, headers: { x: 'é'.repeat(10), y: '' }, body: empty }],
  ['', { status: 599, headers: {}, body: new Uint8Array(256) }],
  ...[0, 31, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40, -1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), -(2 ** 31) - 1, 1.5, -0.25, Number.MAX_SAFE_INTEGER].map(
    (id): [number, EdgeResponse] => [id, { status: 204, headers: {}, body: empty }],
  ),
];

test('replies decode exactly as msgpackr encodes them: ids of every number range and strings, headers, bodies, errors', (t) => {
  for (const [id, response] of cases) {
    const packed = packReply(id, response);
    t.truthy(packed, `id ${String(id)}`);
    t.deepEqual(packr.unpack(Buffer.from(packed!)), reference(id, response), `id ${String(id)}`);
  }
});

test('a reply is a view of a reused buffer: the next one overwrites it', (t) => {
  const first = packReply(1, { status: 200, headers: {}, body: empty })!;
  const copy = Buffer.from(first);
  packReply(2, { status: 200, headers: {}, body: empty });
  t.notDeepEqual(Buffer.from(first), copy);
});

test('a header value that is not a string is left to the general encoder', (t) => {
  t.is(packReply(1, { status: 200, headers: { a: 1 as unknown as string }, body: empty }), undefined);
});
