import test from 'ava';
import { DirigentError } from '../actors/errors.js';
import { actorErrorFrom, ActorRuntimeError, toActorError } from './errors.js';

test('a thrown error becomes an ActorError with its code when it is one of ours, else the fallback with the code in the message', (t) => {
  t.deepEqual(toActorError(new DirigentError('SANDBOX_GONE', 'no sandbox'), 'SERVICE_FAILED'), { code: 'SANDBOX_GONE', message: 'no sandbox' });
  t.deepEqual(toActorError(Object.assign(new Error('disk full'), { code: 'ENOSPC' }), 'SERVICE_FAILED'), { code: 'SERVICE_FAILED', message: 'ENOSPC: disk full' });
  t.deepEqual(toActorError(new Error('plain'), 'SERVICE_FAILED'), { code: 'SERVICE_FAILED', message: 'plain' });
  t.deepEqual(toActorError('text', 'ACTOR_CRASHED'), { code: 'ACTOR_CRASHED', message: 'text' });
});

test("a peer's ActorError is checked: an unknown code is BAD_RESPONSE, naming it", (t) => {
  t.deepEqual(actorErrorFrom({ code: 'ASK_TIMEOUT', message: 'late' }), { code: 'ASK_TIMEOUT', message: 'late' });
  t.deepEqual(actorErrorFrom({ code: 'FROM_THE_FUTURE', message: 'new' }), { code: 'BAD_RESPONSE', message: 'a peer failed with "FROM_THE_FUTURE": new' });
  t.is(actorErrorFrom(null).code, 'BAD_RESPONSE');
});

test('the thrown form of an ActorError is a DirigentError with its code', (t) => {
  const error = ActorRuntimeError.from({ code: 'NO_SUCH_ACTOR', message: 'gone' });
  t.true(error instanceof DirigentError);
  t.like(error, { name: 'ActorRuntimeError', code: 'NO_SUCH_ACTOR', message: 'gone' });
});
