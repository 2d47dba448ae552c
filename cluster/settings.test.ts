// The settings module is the one source of defaults: the roles resolve to them, and the CLI's help prints them.
import test from 'ava';
import { DEFAULT_LOAD_BALANCING_POLICY, DEFAULT_RUNTIME_KIND, DISTRIBUTED, LOAD_BALANCING_POLICIES, PORTS, RUNTIME_KINDS } from '../actors/settings.js';
import { commandHelp } from './flags.js';
import { controlPlaneConfig, dataPlaneConfig, workerConfig } from './roles.js';
import { onStopSignal, stopSignal } from './signals.js';

const TOKEN = { token: 'a-token-of-some-length' };

test('the defaults are among their own choices', (t) => {
  t.true(LOAD_BALANCING_POLICIES.includes(DEFAULT_LOAD_BALANCING_POLICY));
  t.true(RUNTIME_KINDS.includes(DEFAULT_RUNTIME_KIND));
  const lease = DISTRIBUTED.leaseTtlS;
  t.true(lease.min <= lease.default && lease.default <= lease.max);
  t.is(new Set(Object.values(PORTS)).size, Object.keys(PORTS).length, 'no two roles default to one port');
});

test('the roles resolve to the settings when nothing else is given', (t) => {
  const saved = { ...process.env };
  for (const name of Object.keys(process.env)) if (name.startsWith('DIRIGENT_')) delete process.env[name];
  try {
    t.like(controlPlaneConfig({ ...TOKEN }), { clusterPort: PORTS.cluster, adminPort: PORTS.admin });
    t.like(dataPlaneConfig({ ...TOKEN }), { httpPort: PORTS.invoke, compatPort: PORTS.compat, policy: DEFAULT_LOAD_BALANCING_POLICY });
    t.like(workerConfig({ ...TOKEN }), { runtime: DEFAULT_RUNTIME_KIND });
  } finally {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  }
});

test("the CLI's help prints the settings' defaults", (t) => {
  const up = commandHelp('up');
  t.true(up.includes(`default ${PORTS.admin}`) && up.includes(`default ${PORTS.invoke}`), up);
  t.true(up.includes(RUNTIME_KINDS.join('|')));
  const dataPlane = commandHelp('data-plane');
  t.true(dataPlane.includes(`${DEFAULT_LOAD_BALANCING_POLICY} (default)`), dataPlane);
  t.true(commandHelp('control-plane').includes(`${DISTRIBUTED.leaseTtlS.min}..${DISTRIBUTED.leaseTtlS.max} s (default ${DISTRIBUTED.leaseTtlS.default})`));
});

test('a stop signal reaches its listener once, and a disposed listener not at all', async (t) => {
  const heard: string[] = [];
  const before = { term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') };
  onStopSignal((signal) => heard.push(`a ${signal}`));
  const dispose = onStopSignal((signal) => heard.push(`b ${signal}`));
  dispose();
  const stopped = stopSignal();
  process.emit('SIGTERM');
  process.emit('SIGTERM');
  t.is(await stopped, 'SIGTERM');
  t.deepEqual(heard, ['a SIGTERM']);
  t.deepEqual({ term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') }, before, 'every listener is gone');
});
