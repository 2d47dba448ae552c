// A process stem: a started Node process with no function in it, waiting on its IPC channel for the one
// `specialise` message that makes it a sandbox (process.ts runs it for `node <script>` commands and builtin
// workloads). It reports `ready` with its idle memory once started, and ends when its host goes away before
// that (the channel closes). On `specialise` it takes the function's environment, working directory and
// argv, closes the channel (the function has no line to the worker) and runs the script as `node` would run
// it as its main module. Started with `--max-old-space-size` of its memory class and only PATH in its
// environment, so it holds nothing the function should not see.
import { createServer, request } from 'node:http';
import Module from 'node:module';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
// Loaded here, generic as they are, so that a builtin workload's server (builtin-server.ts) finds them loaded.
import './http-headers.js';
import './workloads.js';

/** Sent by the host, once. */
export interface SpecialiseMessage {
  type: 'specialise';
  /** The whole environment the function gets (PATH, PORT and DIRIGENT_* included). */
  env: Record<string, string>;
  /** Working directory; default the stem's (the host's). */
  cwd?: string;
  /** The script, as given on the command line (relative to cwd). */
  script: string;
  args: string[];
}

/** Sent to the host once started. */
export interface StemReady {
  type: 'ready';
  /** Resident memory while idle, bytes. */
  rssBytes: number;
}

const endWithHost = () => process.exit(0);

function specialise(message: SpecialiseMessage): void {
  process.off('disconnect', endWithHost);
  for (const key of Object.keys(process.env)) delete process.env[key];
  Object.assign(process.env, message.env);
  if (message.cwd !== undefined) process.chdir(message.cwd);
  const script = resolve(message.script);
  process.argv = [process.execPath, script, ...message.args];
  process.disconnect();
  // What `node <script>` runs: CommonJS with require.main set, or the ES module loader. Not in the typings.
  (Module as unknown as { runMain(main: string): void }).runMain(script);
}

if (process.send === undefined) {
  process.stderr.write('process-stem: needs an IPC channel to its host\n');
  process.exit(2);
}
/**
 * One HTTP request through a throwaway server on loopback, so that what every sandbox's first request
 * would pay for once (loading and compiling Node's HTTP stack, the parser) is paid before the stem is
 * taken. Bounded: a stem that cannot do this still starts.
 */
async function primeHttp(): Promise<void> {
  const server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((done) => {
    const timer = setTimeout(done, 1000);
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent: false }, (res) => {
      res.resume().on('end', () => {
        clearTimeout(timer);
        done();
      });
    });
    req.on('error', () => done());
    req.end('x');
  });
  await new Promise((done) => server.close(done));
}

process.on('disconnect', endWithHost);
process.once('message', (message: SpecialiseMessage) => {
  if (message?.type !== 'specialise') {
    process.stderr.write(`process-stem: unexpected message ${JSON.stringify(message).slice(0, 120)}\n`);
    process.exit(2);
  }
  specialise(message);
});
await primeHttp();
process.send({ type: 'ready', rssBytes: process.memoryUsage().rss } satisfies StemReady);
