import test from 'ava';
import { DirigentError, ERROR_CODES, fromWire, hasCode, isErrorCode, toWire } from './errors.js';

test('the catalogue is closed: its codes are known, anything else is not', (t) => {
  t.true(ERROR_CODES.every(isErrorCode));
  t.is(new Set(ERROR_CODES).size, ERROR_CODES.length, 'no code listed twice');
  for (const other of ['', 'NOT_A_CODE', 'ask_timeout', 42, undefined, null]) t.false(isErrorCode(other), String(other));
});

test('an error crossing a thread or a socket keeps its name, code, message and stack, and is rebuilt as a cause', (t) => {
  class ListenError extends DirigentError<'LISTEN_FAILED'> {
    override name = 'ListenError';
  }
  const original = new ListenError('LISTEN_FAILED', 'could not listen on 127.0.0.1:8080');
  const wire = toWire(original);
  t.deepEqual(JSON.parse(JSON.stringify(wire)), wire, 'plain data');
  t.like(wire, { name: 'ListenError', code: 'LISTEN_FAILED', message: 'could not listen on 127.0.0.1:8080', stack: original.stack });
  const rebuilt = fromWire(wire);
  t.true(rebuilt instanceof DirigentError);
  t.like(rebuilt, { name: 'ListenError', code: 'LISTEN_FAILED', message: original.message, stack: original.stack });
  const raised = new DirigentError('SHARD_START_FAILED', `shard 1 failed to start: ${rebuilt.message}`, { cause: rebuilt });
  t.true(hasCode(raised, 'PORT_TAKEN', 'LISTEN_FAILED'), 'a decision reads the code down the cause chain');
  t.false(hasCode(raised, 'PORT_TAKEN'));
});

test('a thrown value that is not one of ours crosses without a code', (t) => {
  t.deepEqual(toWire('boom'), { name: 'Error', message: 'boom' });
  const foreign = Object.assign(new TypeError('bad'), { code: 'ERR_SOMETHING' });
  const wire = toWire(foreign);
  t.is(wire.code, undefined);
  t.is(wire.name, 'TypeError');
  t.false(fromWire(wire) instanceof DirigentError);
  t.false(hasCode(fromWire(wire), 'BAD_REQUEST'));
});

test('hasCode stops at a cycle of causes', (t) => {
  const a = new DirigentError('TIMEOUT', 'a');
  const b = new DirigentError('TIMEOUT', 'b', { cause: a });
  (a as { cause?: unknown }).cause = b;
  t.false(hasCode(b, 'BAD_REQUEST'));
});
