import test from 'ava';
import { headersWithTiming, type ResponseTiming } from './edge.js';
import { FIRST_HEADER_NAME, headerBlock } from './head-bytes.js';

/** The block as the header lines uWS writes from it, parsed back into name-value pairs. */
function lines(block: Buffer): Record<string, string> {
  const text = `${FIRST_HEADER_NAME.toString('latin1')}: ${block.toString('latin1')}`;
  return Object.fromEntries(text.split('\r\n').map((line) => {
    const colon = line.indexOf(': ');
    return [line.slice(0, colon), line.slice(colon + 2)];
  }));
}

const timing = (queuedMs: number, totalMs: number, coldStart = false, sandboxId: string | undefined = 'sb-1', version: number | undefined = 2): ResponseTiming => ({ queuedMs, totalMs, coldStart, sandboxId, version });

test('the block holds the same headers as the text form, timing numbers included', (t) => {
  const headers = { 'content-type': 'text/plain; charset=utf-8', 'x-a': 'b' };
  const cases = [timing(0, 0), timing(0.0004, 0.0005), timing(12.5, 20.25, true), timing(9.9996, 123.4567), timing(3_600_000.123, 1e12), timing(1e300, 1e21, false, undefined), timing(1, 2, false, 'sb-2', undefined), timing(1, 2, false, undefined, 2 ** 53 - 1)];
  for (const c of cases) {
    const block = headerBlock(headers, c, false);
    if (block === undefined) return t.fail(`no block for ${JSON.stringify(c)}`);
    t.deepEqual(lines(block), headersWithTiming({ status: 200, headers, body: new Uint8Array(0), timing: c }), JSON.stringify(c));
  }
});

test('connection: close comes last when asked; no headers of its own is fine', (t) => {
  const block = headerBlock({}, timing(1, 2), true);
  t.truthy(block);
  t.true(block!.toString('latin1').endsWith('\r\nconnection: close'));
  t.is(lines(block!)['connection'], 'close');
});

test('a header that is not ASCII, or a block past the buffer, falls back to text (undefined)', (t) => {
  t.is(headerBlock({ 'x-name': 'caf\u00e9' }, timing(0, 1), false), undefined);
  t.is(headerBlock({ 'x-big': 'x'.repeat(20_000) }, timing(0, 1), false), undefined);
  t.is(headerBlock({}, timing(0, 1, false, 'sb-\u00e9'), false), undefined);
  // And the buffer is fine afterwards.
  t.deepEqual(lines(headerBlock({ a: 'b' }, timing(0, 1), false)!).a, 'b');
});
