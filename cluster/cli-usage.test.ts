// The CLI's own surface, no cluster needed: per-command help, suggestions for a slip, errors as JSON, exit codes.
import test from 'ava';
import { COMMANDS } from './flags.js';
import { runCli } from './fixtures/small-cluster.js';

/** Nothing listens on port 1: an admin command fails at once with UNREACHABLE. */
const NOWHERE = ['--admin', 'http://127.0.0.1:1'];

test('dirigent --help lists every command; a command\'s --help shows its own flags only', async (t) => {
  const overview = await runCli(['--help']);
  t.is(overview.code, 0);
  for (const name of Object.keys(COMMANDS)) t.regex(overview.stdout, new RegExp(`^  ${name}\\b`, 'm'));

  const deploy = await runCli(['deploy', '--help']);
  t.is(deploy.code, 0);
  t.regex(deploy.stdout, /^Usage: dirigent deploy <name> \[flags\]/);
  for (const flag of ['--module', '--command', '--env KEY=VALUE', '--min-scale N', '--admin <url>', '--help']) t.true(deploy.stdout.includes(flag), flag);
  for (const flag of ['--follow', '--tail', '--watch', '--workers', '--invoke-port']) t.false(deploy.stdout.includes(flag), flag);
  t.is((await runCli(['help', 'deploy'])).stdout, deploy.stdout, 'dirigent help deploy is the same');

  const logs = await runCli(['logs', '-h']);
  t.regex(logs.stdout, /-f, --follow/);
  t.false(logs.stdout.includes('--module'));
});

test('a mistyped option or command gets a suggestion, exit code 2', async (t) => {
  t.deepEqual(await runCli(['deploy', 'f', '--min-scal', '3', ...NOWHERE]), { code: 2, stdout: '', stderr: 'dirigent: unknown option --min-scal for deploy; did you mean --min-scale?\n' });
  t.like(await runCli(['dploy', 'f']), { code: 2, stderr: 'dirigent: unknown command dploy; did you mean deploy? (dirigent --help lists the commands)\n' });
  t.like(await runCli(['ls', '--tail', '3']), { code: 2, stderr: 'dirigent: unknown option --tail for ls (it is an option of logs); see dirigent ls --help\n' });
  t.like(await runCli(['logs', 'f', '--folow']), { code: 2, stderr: 'dirigent: unknown option --folow for logs; did you mean --follow?\n' });
  t.regex((await runCli(['deploy', 'f', '--xyzzy'])).stderr, /^dirigent: unknown option --xyzzy for deploy; see dirigent deploy --help\n$/);
  t.like(await runCli(['describe']), { code: 2, stderr: 'dirigent: describe needs <name>: dirigent describe <name> [flags]\n' });
  t.like(await runCli(['ls', 'extra']), { code: 2 });
  t.like(await runCli(['deploy', 'f', '--builtin']), { code: 2 });
  t.like(await runCli(['ls', '--json=yes']), { code: 2, stderr: 'dirigent: --json takes no value, got "yes"\n' });
});

test('under --json an error is one JSON line {"error":{"code","message"}} on stderr, stdout stays empty, exit codes kept', async (t) => {
  const usage = await runCli(['--json', 'deploy', 'f', '--min-scal', '3']);
  t.is(usage.code, 2);
  t.is(usage.stdout, '');
  t.deepEqual(JSON.parse(usage.stderr), { error: { code: 'UNKNOWN_OPTION', message: 'unknown option --min-scal for deploy; did you mean --min-scale?' } });
  t.is(usage.stderr.trimEnd().split('\n').length, 1);

  const command = await runCli(['nonsense', '--json']);
  t.is(command.code, 2);
  t.is(JSON.parse(command.stderr).error.code, 'UNKNOWN_COMMAND');

  const bound = await runCli(['deploy', 'f', '--builtin', 'echo', '--concurrency', '0', '--json']);
  t.is(bound.code, 2);
  t.deepEqual(JSON.parse(bound.stderr), { error: { code: 'INVALID_OPTION', message: '--concurrency must be an integer in 1..10000 requests per sandbox, got "0"' } });

  const unreachable = await runCli(['ls', '--json', ...NOWHERE]);
  t.is(unreachable.code, 1);
  t.is(unreachable.stdout, '');
  t.like(JSON.parse(unreachable.stderr), { error: { code: 'UNREACHABLE' } });
  t.regex(JSON.parse(unreachable.stderr).error.message, /cannot reach the control plane at http:\/\/127\.0\.0\.1:1/);
});
