import test from 'ava';
import { ProcessRuntime, SANDBOX_LIMITS } from './process.js';
import type { RuntimeSource, SandboxEvent } from './runtime.js';
import { SandboxError } from './runtime.js';
import { eventually, fixture, lines, processGone, request, spec, text } from './testing.js';

const server: RuntimeSource = { kind: 'process', command: process.execPath, args: [fixture('server.mjs')] };

function runtime(t: { teardown(fn: () => Promise<void>): void }, options: ConstructorParameters<typeof ProcessRuntime>[0] = {}) {
  const rt = new ProcessRuntime(options);
  const events: SandboxEvent[] = [];
  rt.onEvent((e) => events.push(e));
  t.teardown(() => rt.close());
  return { rt, events };
}

test.serial('probes the command ready, forwards invocations and captures its output', async (t) => {
  const { rt } = runtime(t);
  const sandbox = await rt.create(spec('p1', server, { env: { GREETING: 'hi' } }));
  t.deepEqual(rt.list(), [{ sandboxId: 'p1', functionName: 'fn' }]);
  const answer = await sandbox.invoke(request('/echo?x=1', 'abc', { 'content-type': 'text/plain' }));
  t.is(answer.status, 200);
  t.is(text(answer.body), 'pong abc');
  t.is(answer.headers['x-env'], 'hi');
  t.is(answer.headers['content-type'], 'text/plain');
  t.is(answer.headers['connection'], undefined);
  // Kept-alive connection: a second call reuses it.
  t.is(text((await sandbox.invoke(request('/again', 'def'))).body), 'pong def');
  t.true(await eventually(() => lines(sandbox).includes('POST /again def')));
  t.regex(lines(sandbox)[0] ?? '', /^listening on \d+$/);
  t.true(lines(sandbox).includes('POST /echo?x=1 abc'));
});

test.serial('a sandbox process runs under resource limits (no core dumps, open files, file size) and a scrubbed environment, in its own group', async (t) => {
  const { rt } = runtime(t);
  process.env['DIRIGENT_TEST_HOST_SECRET'] = 'host-only';
  t.teardown(() => void delete process.env['DIRIGENT_TEST_HOST_SECRET']);
  const reporter = `const fs = require('node:fs');
    require('node:http').createServer((q, s) => s.end(JSON.stringify({ limits: fs.readFileSync('/proc/self/limits', 'utf8'), env: process.env, pgid: fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[2], pid: process.pid }))).listen(Number(process.env.PORT), '127.0.0.1');`;
  const sandbox = await rt.create(spec('p-limits', { kind: 'process', command: process.execPath, args: ['-e', reporter] }, { env: { GREETING: 'hi' } }));
  const seen = JSON.parse(text((await sandbox.invoke(request('/'))).body)) as { limits: string; env: Record<string, string>; pgid: string; pid: number };
  const limit = (name: string) => new RegExp(`^${name}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(seen.limits)?.slice(1, 3);
  t.deepEqual(limit('Max core file size'), ['0', '0']);
  t.deepEqual(limit('Max file size'), [String(SANDBOX_LIMITS.fileSizeBytes), String(SANDBOX_LIMITS.fileSizeBytes)]);
  const openFiles = Number(limit('Max open files')?.[0]);
  t.true(openFiles <= SANDBOX_LIMITS.openFiles, `open files ${openFiles}`);
  t.deepEqual(Object.keys(seen.env).sort(), ['DIRIGENT_FUNCTION', 'DIRIGENT_MEMORY_MIB', 'DIRIGENT_SANDBOX_ID', 'GREETING', 'PATH', 'PORT'], 'nothing of the host but PATH');
  t.is(Number(seen.pgid), seen.pid, 'the leader of its own process group');
});

test.serial('destroy kills the whole process group', async (t) => {
  const { rt, events } = runtime(t);
  const sandbox = await rt.create(spec('p2', server));
  const leader = Number(text((await sandbox.invoke(request('/pid'))).body));
  const helper = Number(text((await sandbox.invoke(request('/helper'))).body));
  t.false(processGone(leader));
  t.false(processGone(helper));
  await rt.destroy('p2');
  t.throws(() => process.kill(leader, 0), { code: 'ESRCH' });
  // The helper is orphaned when the group dies; its new parent reaps it, so it may linger as a zombie.
  t.true(await eventually(() => processGone(helper)));
  t.deepEqual(rt.list(), []);
  t.deepEqual(events, []);
  await rt.destroy('p2');
  const gone = await t.throwsAsync(sandbox.invoke(request('/')), { instanceOf: SandboxError });
  t.is(gone?.code, 'SANDBOX_GONE');
});

test.serial('a command that ignores SIGTERM is killed after the grace period', async (t) => {
  const { rt } = runtime(t, { killGraceMs: 200 });
  const stubborn = `process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
    require('node:http').createServer((q, s) => s.end(String(process.pid))).listen(Number(process.env.PORT), '127.0.0.1');`;
  const sandbox = await rt.create(spec('p3', { kind: 'process', command: process.execPath, args: ['-e', stubborn] }));
  const pid = Number(text((await sandbox.invoke(request('/'))).body));
  const started = performance.now();
  await rt.destroy('p3');
  t.true(performance.now() - started >= 190, 'waited for the grace period before SIGKILL');
  t.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  t.true(lines(sandbox).includes('ignoring SIGTERM'));
});

test.serial('a crash emits an exited event and the sandbox is gone', async (t) => {
  const { rt, events } = runtime(t);
  const sandbox = await rt.create(spec('p4', server));
  const error = await t.throwsAsync(sandbox.invoke(request('/crash')), { instanceOf: SandboxError });
  t.is(error?.code, 'SANDBOX_CRASHED');
  t.true(await eventually(() => events.length === 1));
  t.deepEqual(events, [{ type: 'exited', sandboxId: 'p4', code: 3 }]);
  t.true(lines(sandbox).includes('crashing on request'));
  t.deepEqual(rt.list(), []);
  const gone = await t.throwsAsync(sandbox.invoke(request('/')), { instanceOf: SandboxError });
  t.is(gone?.code, 'SANDBOX_GONE');
});

test.serial('a slow invocation times out and the process keeps serving', async (t) => {
  const { rt, events } = runtime(t);
  const sandbox = await rt.create(spec('p5', server, { timeoutMs: 200 }));
  const error = await t.throwsAsync(sandbox.invoke(request('/slow')), { instanceOf: SandboxError });
  t.is(error?.code, 'SANDBOX_TIMEOUT');
  t.is(text((await sandbox.invoke(request('/'))).body), 'pong ');
  t.deepEqual(events, []);
});

test.serial('create fails clearly when the command never serves', async (t) => {
  // Only the silent command waits for the short bound; the others fail on their own (a Node start takes
  // longer than 300 ms on a loaded machine).
  const { rt } = runtime(t);
  const exits = await t.throwsAsync(rt.create(spec('p6', { kind: 'process', command: process.execPath, args: ['-e', 'console.error("no config"); process.exit(7)'] })), {
    instanceOf: SandboxError,
  });
  t.is(exits?.code, 'SANDBOX_CREATE_FAILED');
  t.regex(exits?.message ?? '', /exited with code 7.*no config/);

  const missing = await t.throwsAsync(rt.create(spec('p7', { kind: 'process', command: '/nonexistent/command' })), { instanceOf: SandboxError });
  t.is(missing?.code, 'SANDBOX_CREATE_FAILED');
  t.regex(missing?.message ?? '', /ENOENT/);

  const { rt: impatient } = runtime(t, { createTimeoutMs: 300 });
  const silent = await t.throwsAsync(impatient.create(spec('p8', { kind: 'process', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] })), {
    instanceOf: SandboxError,
  });
  t.is(silent?.code, 'SANDBOX_CREATE_FAILED');
  t.regex(silent?.message ?? '', /within 300 ms/);
  t.deepEqual(rt.list(), []);
  t.deepEqual(impatient.list(), []);

  const threadSource = await t.throwsAsync(rt.create(spec('p9', { kind: 'thread', module: fixture('handler.mjs') })), { instanceOf: SandboxError });
  t.is(threadSource?.code, 'UNSUPPORTED_SOURCE');
});

test.serial('runs builtin workloads through the builtin server', async (t) => {
  const { rt } = runtime(t);
  const sandbox = await rt.create(spec('p10', { kind: 'builtin', workload: 'trace' }));
  const answer = await sandbox.invoke(request('/', '', { requested_cpu: '25', requested_memory: '8', function: 'trace-fn' }));
  t.is(answer.status, 200);
  const body = JSON.parse(text(answer.body)) as Record<string, unknown>;
  t.deepEqual(Object.keys(body), ['Status', 'Function', 'MachineName', 'ExecutionTime']);
  t.like(body, { Status: 'OK', Function: 'trace-fn', MachineName: 'p10' });
  t.true((body['ExecutionTime'] as number) >= 25_000);
});
