import test from 'ava';
import { dataPlaneSandboxAddress, functionKey, routerAddress } from './messages.js';

test('per-request addresses are memoized: the same object for the same name, equal to a fresh build', (t) => {
  t.is(routerAddress('f'), routerAddress('f'));
  t.deepEqual(routerAddress('f'), { kind: 'router', id: 'f', key: 'fn:f' });
  t.true(Object.isFrozen(routerAddress('f')));
  t.is(dataPlaneSandboxAddress('f', 's1'), dataPlaneSandboxAddress('f', 's1'));
  t.deepEqual(dataPlaneSandboxAddress('f', 's1'), { kind: 'dpsandbox', id: 's1', key: functionKey('f') });
});

test('a sandbox id seen with another function gets that function key', (t) => {
  t.deepEqual(dataPlaneSandboxAddress('f', 'shared'), { kind: 'dpsandbox', id: 'shared', key: 'fn:f' });
  t.deepEqual(dataPlaneSandboxAddress('g', 'shared'), { kind: 'dpsandbox', id: 'shared', key: 'fn:g' });
});

test('the memo table is bounded: past its limit it starts over and still answers right', (t) => {
  for (let i = 0; i < 5000; i++) t.is(routerAddress(`fn-${i}`).id, `fn-${i}`);
  t.deepEqual(routerAddress('fn-1'), { kind: 'router', id: 'fn-1', key: 'fn:fn-1' });
});
