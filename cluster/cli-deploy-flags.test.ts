// `deploy`'s flags against a real control plane: integer bounds equal to the spec validation's, --env, and
// --command split by shell quoting rules.
import test from 'ava';
import { FUNCTION_SPEC_LIMITS, parseFunctionSpec } from '../actors/function-spec.js';
import { DEPLOY_INT_FLAGS, intIn, UsageError } from './flags.js';
import { runCli, startSmallCluster } from './fixtures/small-cluster.js';

/** Tests run from dist/; the example stays in the source tree (a path without spaces or quotes). */
const SERVER = new URL('../../cluster/examples/server.mjs', import.meta.url).pathname;

test('each integer flag takes exactly the range the spec validation takes, at both ends', (t) => {
  for (const { flag, field, range } of DEPLOY_INT_FLAGS) {
    const max = range.max ?? Number.MAX_SAFE_INTEGER;
    const [top, sub] = field.split('.');
    const serverTakes = (value: number) => parseFunctionSpec({ name: 'f', source: { kind: 'builtin', workload: 'echo' }, ...(sub === undefined ? { [top!]: value } : { [top!]: { [sub]: value } }) }).ok;
    const cliTakes = (value: number) => {
      try {
        return intIn({ [flag]: String(value) }, flag, range) === value;
      } catch (error) {
        if (error instanceof UsageError) return false;
        throw error;
      }
    };
    for (const value of [range.min - 1, range.min, max, max + 1]) t.is(cliTakes(value), serverTakes(value), `--${flag} ${value} (${field})`);
    t.true(cliTakes(max) && !cliTakes(max + 1));
  }
});

test('the real CLI sends every integer flag at its maximum, and refuses one past it naming the range', async (t) => {
  // Nothing listens on port 1: a command line the CLI accepts fails later, at the request, with exit code 1.
  const nowhere = ['--admin', 'http://127.0.0.1:1', '--json'];
  const atMax = DEPLOY_INT_FLAGS.flatMap(({ flag, range }) => [`--${flag}`, String(range.max ?? Number.MAX_SAFE_INTEGER)]);
  const sent = await runCli(['deploy', 'f', '--builtin', 'echo', ...atMax, ...nowhere]);
  t.is(sent.code, 1, sent.stderr);
  t.is(JSON.parse(sent.stderr).error.code, 'UNREACHABLE');
  const refused = await runCli(['deploy', 'f', '--builtin', 'echo', '--memory', String(FUNCTION_SPEC_LIMITS.memoryMiB.max! + 1), ...nowhere]);
  t.is(refused.code, 2);
  t.deepEqual(JSON.parse(refused.stderr), { error: { code: 'INVALID_OPTION', message: `--memory must be an integer in 1..${FUNCTION_SPEC_LIMITS.memoryMiB.max} MiB, got "${FUNCTION_SPEC_LIMITS.memoryMiB.max! + 1}"` } });
});

test.serial('--env KEY=VALUE, repeatable, validated, reaches the spec; an update replaces the environment', async (t) => {
  const cluster = await startSmallCluster(t, 'simulated');
  const admin = ['--admin', cluster.adminUrl];
  const created = await runCli(['deploy', 'envy', '--builtin', 'echo', '--env', 'GREETING=hello world', '--env', 'EQ=a=b', '--env', 'EMPTY=', ...admin]);
  t.is(created.code, 0, created.stderr);
  t.deepEqual((await cluster.client.getFunction('envy')).spec.env, { GREETING: 'hello world', EQ: 'a=b', EMPTY: '' });
  t.like(await runCli(['deploy', 'envy', '--env', '1BAD=x', ...admin]), { code: 2, stderr: 'dirigent: --env "1BAD": a variable name must match ^[A-Za-z_][A-Za-z0-9_]*$ (letters, digits and _, not starting with a digit)\n' });
  t.like(await runCli(['deploy', 'envy', '--env', 'NOVALUE', ...admin]), { code: 2, stderr: 'dirigent: --env must be KEY=VALUE, got "NOVALUE"\n' });
  t.like(await runCli(['deploy', 'envy', '--env', 'A=1', '--env', 'A=2', ...admin]), { code: 2, stderr: 'dirigent: --env sets A twice\n' });
  // deploy asks for a source on an update too.
  t.is((await runCli(['deploy', 'envy', '--builtin', 'echo', '--env', 'ONLY=1', ...admin])).code, 0);
  t.deepEqual((await cluster.client.getFunction('envy')).spec.env, { ONLY: '1' });
});

test.serial('--command is split by shell quoting rules, without a shell', async (t) => {
  // A process worker: the deploy starts the command once to check it (the example server ignores its arguments).
  const cluster = await startSmallCluster(t, 'process');
  const admin = ['--admin', cluster.adminUrl];
  const line = `node ${SERVER} --greeting 'hello world' "double \\"quoted\\"" back\\ slash $PORT *.js # a comment`;
  const deployed = await runCli(['deploy', 'web', '--command', line, ...admin]);
  t.is(deployed.code, 0, deployed.stderr);
  t.deepEqual((await cluster.client.getFunction('web')).spec.source, {
    kind: 'process',
    command: 'node',
    args: [SERVER, '--greeting', 'hello world', 'double "quoted"', 'back slash', '$PORT', '*.js'],
  });
  for (const operator of ['a | b', 'a && b', 'a > out.txt', 'a; b']) {
    const refused = await runCli(['deploy', 'web', '--command', operator, '--json', ...admin]);
    t.is(refused.code, 2, operator);
    t.regex(JSON.parse(refused.stderr).error.message, /--command runs without a shell/);
  }
  t.like(await runCli(['deploy', 'web', '--command', '   ', ...admin]), { code: 2, stderr: 'dirigent: --command needs a command line\n' });
});
