// The pool flags of `dirigent worker` and `up`: --pool N or <MiB>:<N>[,...], --pool-memory-mib, their
// defaults (2 stems of the default class, 256 MiB) and the errors that name the value.
import test from 'ava';
import type { CliValues } from './flags.js';
import { DEFAULT_POOL_MEMORY_MIB, DEFAULT_POOL_SIZE, poolConfig, workerConfig } from './roles.js';

const values = (extra: CliValues): CliValues => ({ token: 'secret-token', ...extra });

test('defaults: 2 stems of the 128 MiB class under 256 MiB', (t) => {
  t.deepEqual(poolConfig(values({})), { sizes: [{ memoryMiB: 128, count: DEFAULT_POOL_SIZE }], capMiB: DEFAULT_POOL_MEMORY_MIB });
  t.is(DEFAULT_POOL_SIZE, 2);
});

test('--pool N, per class, and 0; --pool-memory-mib', (t) => {
  t.deepEqual(poolConfig(values({ pool: '5', 'pool-memory-mib': '100' })), { sizes: [{ memoryMiB: 128, count: 5 }], capMiB: 100 });
  t.deepEqual(poolConfig(values({ pool: '128:2, 512:1' })).sizes, [{ memoryMiB: 128, count: 2 }, { memoryMiB: 512, count: 1 }]);
  t.deepEqual(poolConfig(values({ pool: '0' })).sizes, [{ memoryMiB: 128, count: 0 }]);
});

test('bad values are usage errors naming the value', (t) => {
  for (const pool of ['x', '-1', '65', '128:', '0:1', '128:1:2', '128:1,128:2']) {
    t.throws(() => poolConfig(values({ pool })), { message: new RegExp(`--pool must be .*got "${pool}"`) }, pool);
  }
  t.throws(() => poolConfig(values({ 'pool-memory-mib': 'lots' })), { message: /--pool-memory-mib must be an integer/ });
});

test('the worker takes the cap off its memory capacity, and refuses a cap that leaves nothing', (t) => {
  t.like(workerConfig(values({ memory: '1000' })), { capacity: { memoryMiB: 1000 }, pool: { capMiB: 256 } });
  t.throws(() => workerConfig(values({ memory: '200' })), { message: /--pool-memory-mib 256 MiB leaves nothing of the node's --memory 200 MiB/ });
  t.notThrows(() => workerConfig(values({ memory: '200', pool: '0' })));
  t.notThrows(() => workerConfig(values({ memory: '200', runtime: 'simulated' })));
});
