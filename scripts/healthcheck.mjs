// The image's HEALTHCHECK, one script for every role. It finds the dirigent process in this container (the
// command line after `cli.js` names the role; its flags, then its DIRIGENT_* environment, then the roles'
// defaults give the host and ports, resolved as cluster/roles.ts resolves them) and asks it:
//   control-plane  GET http://<host>:<admin-port>/readyz answers 200 within the timeout;
//   data-plane     GET http://<host>:<invoke-port>/ gets an HTTP answer, whatever its status (a 404 for the
//                  unknown function is the front serving);
//   worker         the process is alive: a worker listens on no fixed port (it dials the control plane and
//                  its invocation servers take free ports), and the control plane reports a silent one dead.
// Exit 0 healthy, 1 unhealthy (the reason on stderr). Any other command (`dirigent --help`) is healthy.
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const TIMEOUT_MS = 3000;

function fail(reason) {
  process.stderr.write(`unhealthy: ${reason}\n`);
  process.exit(1);
}

/** The argv and DIRIGENT_* environment of the dirigent process in this container, if one runs. */
function findRole() {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let argv;
    let environ;
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
    } catch {
      continue; // exited meanwhile, or not ours to read
    }
    const cli = argv.findIndex((arg) => /(^|\/)(cli\.js|dirigent)$/.test(arg));
    if (cli < 0) continue;
    const env = Object.fromEntries(environ.filter((line) => line.startsWith('DIRIGENT_')).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
    return { args: argv.slice(cli + 1), env };
  }
  return undefined;
}

const found = findRole();
if (found === undefined) fail('no dirigent process runs in this container');
const { values, positionals } = parseArgs({
  args: found.args,
  options: { host: { type: 'string' }, 'admin-port': { type: 'string' }, 'invoke-port': { type: 'string' } },
  strict: false,
  allowPositionals: true,
});
const setting = (flag, envName, fallback) => (typeof values[flag] === 'string' ? values[flag] : (found.env[`DIRIGENT_${envName}`] ?? fallback));
const listenHost = setting('host', 'HOST', '127.0.0.1');
const host = listenHost === '0.0.0.0' || listenHost === '::' ? '127.0.0.1' : listenHost.includes(':') ? `[${listenHost}]` : listenHost;

async function get(url) {
  try {
    return await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    fail(`${url}: ${error.cause?.message ?? error.message}`);
  }
}

switch (positionals[0]) {
  case 'control-plane': {
    const url = `http://${host}:${setting('admin-port', 'ADMIN_PORT', '9091')}/readyz`;
    const response = await get(url);
    const body = (await response.text()).trim();
    if (response.status !== 200) fail(`${url} answered ${response.status} ${body}`);
    process.stdout.write(`${body}\n`);
    break;
  }
  case 'data-plane': {
    const url = `http://${host}:${setting('invoke-port', 'INVOKE_PORT', '8080')}/`;
    const response = await get(url);
    await response.arrayBuffer();
    process.stdout.write(`invoke front answers (${response.status})\n`);
    break;
  }
  default:
    process.stdout.write(`${positionals[0] ?? 'dirigent'} is running\n`);
}
