// The console in a real browser: Debian's chromium, headless, driven over the DevTools protocol, against
// a real `dirigent up` (control plane here; data plane and a worker as child processes). It deploys and
// invokes a function, then checks that the page shows the function and updates its counts without a reload,
// lists the actors by kind, shows the worker's pool of started sandboxes, pages and sorts them, opens one actor's state, and shows hostile names as text.
// Skipped, saying why, when chromium is not installed (`apt-get install chromium`; .ci/run installs it).
// Screenshots are saved as artifacts: $TEST_ARTIFACTS_DIR (default: the system's temp dir)/dirigent-console-<view>.png;
// with UPDATE_SCREENSHOT=1 the actors view also replaces cluster/console/screenshot.png, the README's picture.
import test from 'ava';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminClient } from '../admin-client.js';
import { request, until } from '../data-plane/fixtures/harness.js';
import { LocalCluster } from '../launcher.js';
import { Browser, findChromium } from './fixtures/browser.js';

const chromium = findChromium();
const HOSTILE = '<img src=x onerror="window.__pwned=1">';
let cluster: LocalCluster;
let browser: Browser;
let dataDir: string;
let port: number;

const invoke = async (name: string, body: string): Promise<void> => {
  const answer = await request(port, { method: 'POST', path: `/invoke/${name}`, body, timeoutMs: 15_000 });
  if (answer.status !== 200) throw new Error(`invoke ${name} answered ${answer.status}`);
};

if (chromium === undefined) {
  test('console in a real browser', (t) => {
    console.log('# console: browser test skipped: no chromium on PATH (apt-get install chromium; .ci/run installs it)');
    t.pass();
  });
} else {
  test.before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'dirigent-console-'));
    cluster = await LocalCluster.start({ host: '127.0.0.1', adminPort: 0, invokePort: 0, compatPort: 0, dataDir, workers: 1, runtime: 'thread' });
    const admin = new AdminClient({ adminUrl: cluster.adminUrl });
    await until('the worker registered', async () => ((await admin.nodes()).length === 1 ? true : undefined), 15_000);
    await admin.createFunction({ name: 'hello', source: { kind: 'builtin', workload: 'echo' } });
    port = Number(new URL(cluster.invokeUrl).port);
    await invoke('hello', 'first');
    browser = await Browser.launch(chromium);
  });

  test.after.always(async () => {
    await browser?.close();
    await cluster?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  test.serial('functions: the deployed function, with counts that go up without a reload', async (t) => {
    await browser.goto(`${cluster.adminUrl}/console#functions`);
    const row = await browser.waitFor<string>('the function row', `document.querySelector('#functions-table tr[data-function="hello"]')?.textContent`);
    t.regex(row, /hello/);
    t.regex(row, /active/);
    const count = () => browser.evaluate<number>(`Number(document.querySelector('#functions-table tr[data-function="hello"] td.invocations')?.textContent ?? -1)`);
    await browser.waitFor('one invocation counted', `Number(document.querySelector('#functions-table tr[data-function="hello"] td.invocations')?.textContent) >= 1`);
    const before = await count();
    const loads = await browser.evaluate<number>('performance.getEntriesByType("navigation").length');
    for (let i = 0; i < 5; i++) await invoke('hello', `again ${i}`);
    await browser.waitFor('the new invocations', `Number(document.querySelector('#functions-table tr[data-function="hello"] td.invocations')?.textContent) >= ${before + 5}`, 20_000);
    t.is(await browser.evaluate<number>('performance.getEntriesByType("navigation").length'), loads, 'no reload');
    t.true(await browser.evaluate<boolean>(`!!document.querySelector('#functions-table svg.spark polyline')`), 'a chart');
  });

  test.serial('cluster: leader, worker and data plane', async (t) => {
    await browser.goto(`${cluster.adminUrl}/console#cluster`);
    const text = await browser.waitFor<string>('the cluster tables', `document.querySelector('#workers-table tbody tr') && document.querySelector('#shards-table')?.textContent`);
    t.regex(text, /control-plane/);
    t.regex(text, /dataplane:dp1/);
    t.regex(await browser.evaluate<string>(`document.getElementById('leader').textContent`), /term \d+/);
    // The worker's pool of started sandboxes (the default: 2 stems of 128 MiB): idle / target, memory and starts.
    t.regex(await browser.evaluate<string>(`document.querySelector('#workers-table tbody tr').textContent`), /\d+ \/ 2 \([\d.]+ MiB(, [\d.]+ each)?, cap \d+; starts \d+ pool, \d+ fresh\)/);
    // Placement: the function's one sandbox is a square on the worker's row, named in its tooltip.
    t.regex(await browser.evaluate<string>(`[...document.querySelectorAll('#placement-table rect title')].map((x) => x.textContent).join()`), /^hello · hello-\S+ · ready$/);
  });

  test.serial('actors: by kind, filtered by a click, sorted, then one actor\'s state', async (t) => {
    await browser.goto(`${cluster.adminUrl}/console#actors`);
    const kinds = await browser.waitFor<string[]>('the kinds', `(() => { const k = [...document.querySelectorAll('#kinds-table tr[data-kind]')].map((r) => r.dataset.kind); return k.length ? k : null })()`);
    for (const kind of ['function', 'router', 'dpsandbox', 'node', 'scheduler']) t.true(kinds.includes(kind), `${kind} in ${kinds.join(',')}`);
    await browser.evaluate(`document.querySelector('#kinds-table tr[data-kind="router"]').click()`);
    await browser.waitFor('only routers', `location.hash.includes('kind=router') && [...document.querySelectorAll('#actors-table tbody tr')].length > 0 && [...document.querySelectorAll('#actors-table tbody tr')].every((r) => r.children[1].textContent === 'router')`);
    // Sort by processed with a click on its header: the page asks the server for that order.
    await browser.evaluate(`[...document.querySelectorAll('#actors-table th')].find((th) => th.textContent === 'processed').click()`);
    await browser.waitFor('sorted by processed', `location.hash.includes('sort=processed') && document.querySelector('#actors-table th.sorted')?.textContent === 'processed'`);
    const processed = await browser.evaluate<number[]>(`[...document.querySelectorAll('#actors-table tbody tr')].map((r) => Number(r.children[5].textContent))`);
    t.deepEqual(processed, [...processed].sort((a, b) => b - a));
    await browser.evaluate(`[...document.querySelectorAll('#actors-table tbody tr')].find((r) => r.dataset.actor.includes('/hello')).click()`);
    const line = await browser.waitFor<string>('the actor state', `document.getElementById('actor-line')?.textContent`);
    t.true(line.length > 0);
    t.regex(await browser.evaluate<string>(`document.getElementById('actor-name').textContent`), /^router\/hello/);
    t.truthy(JSON.parse(await browser.evaluate<string>(`document.getElementById('actor-state').textContent`)));
    // Watched from now on: an invocation's messages to the router show up without a reload.
    await browser.waitFor('the empty ring', `document.getElementById('recent-empty')`);
    for (let i = 0; i < 3; i++) await invoke('hello', `watched ${i}`);
    const recent = await browser.waitFor<string>('recent messages', `document.querySelector('#recent-table tbody')?.textContent`, 20_000);
    t.regex(recent, /rt\.|router|invoke/i);
  });

  test.serial('a hostile function name is shown as text, never run as markup', async (t) => {
    // Names are DNS labels, so markup cannot come in through one; an actor id in the URL can.
    await browser.goto(`${cluster.adminUrl}/console#actor?process=control-plane&shard=0&name=${encodeURIComponent(HOSTILE)}`);
    const error = await browser.waitFor<string>('the error', `!document.getElementById('error').hidden && document.getElementById('error').textContent`);
    t.regex(error, /NO_SUCH_ACTOR/);
    t.true(error.includes(HOSTILE), 'the name, as text');
    t.is(await browser.evaluate<unknown>('window.__pwned ?? null'), null);
    t.is(await browser.evaluate<number>(`document.querySelectorAll('#error img').length`), 0);
  });

  test.serial('screenshot artifacts', async (t) => {
    const dir = process.env.TEST_ARTIFACTS_DIR ?? tmpdir();
    const views: [string, string, string][] = [
      ['actors', 'actors?sort=processed', `document.querySelectorAll('#actors-table tbody tr').length > 0`],
      ['functions', 'functions', `document.querySelectorAll('#functions-table tbody tr').length > 0`],
      ['cluster', 'cluster', `document.querySelectorAll('#shards-table tbody tr').length > 0`],
    ];
    for (const [name, hash, ready] of views) {
      await browser.goto(`${cluster.adminUrl}/console#${hash}`);
      await browser.waitFor(`the ${name} view`, `location.hash === '#${hash}' && ${ready}`);
      const file = join(dir, `dirigent-console-${name}.png`);
      const png = await browser.screenshot();
      await writeFile(file, png);
      console.log(`console.test: screenshot saved to ${file}`);
      t.true(png.length > 1000);
      if (name === 'actors' && process.env.UPDATE_SCREENSHOT === '1') await copyFile(file, new URL('../../../cluster/console/screenshot.png', import.meta.url));
    }
    // One actor, watched while a call goes through.
    await browser.goto(`${cluster.adminUrl}/console#actors?kind=router&sort=processed`);
    await browser.waitFor('the routers', `document.querySelectorAll('#actors-table tbody tr[data-actor]').length > 0`);
    await browser.evaluate(`document.querySelector('#actors-table tbody tr[data-actor]').click()`);
    await browser.waitFor('the router', `document.getElementById('actor-line')`);
    for (let i = 0; i < 3; i++) await invoke('hello', `shot ${i}`);
    await browser.waitFor('its recent messages', `document.querySelector('#recent-table tbody tr')`, 20_000);
    const file = join(dir, 'dirigent-console-actor.png');
    await writeFile(file, await browser.screenshot());
    console.log(`console.test: screenshot saved to ${file}`);
  });
}
