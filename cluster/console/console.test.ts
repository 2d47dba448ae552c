// The console in a real browser: Debian's chromium, headless, driven by playwright-core, against a real
// `dirigent up` (LocalCluster: control plane here; data plane and a worker as child processes) with an admin
// token. It deploys and invokes a function, then checks that the page shows the function and that its counts
// go up without a reload (pushed over the page's event stream), shows the worker's pool of started sandboxes,
// lists the actors by kind, filters, sorts and opens one actor's state, shows hostile names as text, and refuses an action without the token but does it
// with the token. A second, smaller control plane hosts 10 000 simulated actors for paging and sorting.
// Skipped, saying why, when chromium is not installed (`apt-get install chromium`; .ci/run installs it).
// Screenshots are saved as artifacts: $TEST_ARTIFACTS_DIR (default: the system's temp dir)/dirigent-console-<view>.png;
// with UPDATE_SCREENSHOT=1 the actors view also replaces cluster/console/screenshot.png, the README's picture.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium as playwright, type Browser, type Page } from 'playwright-core';
import { ActorRuntime } from '../../runtime/index.js';
import { AdminClient } from '../admin-client.js';
import { soleReplica, startAdminApi, type AdminApi } from '../control-plane/admin-api.js';
import { ControlPlane } from '../control-plane/control-plane.js';
import { request, until } from '../data-plane/fixtures/harness.js';
import { LocalCluster } from '../launcher.js';

// The functions given to page.waitForFunction and evaluate run in the page (playwright sends their source);
// the project compiles without the DOM library, so the few page globals they use are declared loosely here.
declare const document: any;
declare const window: any;
declare const location: { hash: string };
type HTMLElement = { dataset: Record<string, string | undefined> };

/** The chromium binary on PATH, or undefined (the tests then skip, saying why). */
function findChromium(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : undefined;
}

const chromium = findChromium();
const ADMIN_TOKEN = 'console-test-admin-token';
const HOSTILE = '<img src=x onerror="window.__pwned=1">';
/** Bound on each wait in the page, ms: generous, the machine is shared. */
const WAIT_MS = 30_000;
const ACTORS = 10_000;
let cluster: LocalCluster;
let browser: Browser;
let page: Page;
let dataDir: string;
let port: number;
/** The control plane with 10 000 simulated actors, and its admin API. */
let many: { plane: ControlPlane; admin: AdminApi } | undefined;

const invoke = async (name: string, body: string): Promise<void> => {
  const answer = await request(port, { method: 'POST', path: `/invoke/${name}`, body, timeoutMs: 15_000 });
  if (answer.status !== 200) throw new Error(`invoke ${name} answered ${answer.status}`);
};

const text = async (selector: string): Promise<string> => (await page.locator(selector).first().textContent({ timeout: WAIT_MS })) ?? '';

/** A control plane (no worker needed) whose runtime also hosts ACTORS counters, counter c<i> having processed i % 7 + 1 messages. */
async function startMany(): Promise<{ plane: ControlPlane; admin: AdminApi }> {
  const quiet = () => undefined;
  const runtime = await ActorRuntime.start({
    shards: 2,
    modules: [{ url: new URL('../control-plane/module.js', import.meta.url).href }, { url: new URL('../../runtime/fixtures/test-kinds.js', import.meta.url).href }],
    remoteKinds: ['node', 'router', 'dpsandbox'],
    onLog: quiet,
  });
  const plane = await ControlPlane.start({ host: '127.0.0.1', clusterPort: 0, token: 'console-many', store: { kind: 'memory' }, runtime, onLog: quiet });
  for (let i = 0; i < ACTORS; i++) for (let k = 0; k < i % 7; k++) runtime.tell({ kind: 'counter', id: `c${i}` }, { type: 'inc' });
  for (let start = 0; start < ACTORS; start += 1000) await Promise.all(Array.from({ length: 1000 }, (_, j) => runtime.ask({ kind: 'counter', id: `c${start + j}` }, { type: 'get' }, 30_000)));
  const admin = await startAdminApi(soleReplica(plane), { host: '127.0.0.1', port: 0 });
  return { plane, admin };
}

if (chromium === undefined) {
  test('console in a real browser', (t) => {
    console.log('# console: browser test skipped: no chromium on PATH (apt-get install chromium; .ci/run installs it)');
    t.pass();
  });
} else {
  test.before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'dirigent-console-'));
    cluster = await LocalCluster.start({ host: '127.0.0.1', adminPort: 0, invokePort: 0, compatPort: 0, dataDir, workers: 1, runtime: 'thread', adminToken: ADMIN_TOKEN, onOutput: () => undefined });
    const admin = new AdminClient({ adminUrl: cluster.adminUrl, adminToken: ADMIN_TOKEN });
    await until('the worker registered', async () => ((await admin.nodes()).length === 1 ? true : undefined), 15_000);
    await admin.createFunction({ name: 'hello', source: { kind: 'builtin', workload: 'echo' } });
    port = Number(new URL(cluster.invokeUrl).port);
    await invoke('hello', 'first');
    browser = await playwright.launch({ executablePath: chromium, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'], timeout: WAIT_MS });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.setDefaultTimeout(WAIT_MS);
  });

  test.after.always(async () => {
    await browser?.close();
    await many?.admin.close();
    await many?.plane.stop();
    await cluster?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  test.serial('functions: the deployed function, with counts pushed up without a reload', async (t) => {
    await page.goto(`${cluster.adminUrl}/console#functions`);
    const row = page.locator('#functions-table tr[data-function="hello"]');
    t.regex((await row.textContent()) ?? '', /hello.*active/);
    const count = async () => Number(await row.locator('td.invocations').textContent());
    await page.waitForFunction(() => Number(document.querySelector('#functions-table tr[data-function="hello"] td.invocations')?.textContent) >= 1);
    const before = await count();
    // Marks this document: a reload would lose it.
    await page.evaluate(() => ((window as unknown as { __same: boolean }).__same = true));
    for (let i = 0; i < 5; i++) await invoke('hello', `again ${i}`);
    await page.waitForFunction((n) => Number(document.querySelector('#functions-table tr[data-function="hello"] td.invocations')?.textContent) >= n, before + 5);
    t.true(await page.evaluate(() => (window as unknown as { __same?: boolean }).__same === true), 'no reload');
    t.is(await text('#live'), 'live');
    t.is(await page.locator('#functions-table svg.spark polyline').count(), 2, 'charts');
    // The page holds one event stream and never polls a view.
    const requests: string[] = [];
    page.on('request', (r) => requests.push(new URL(r.url()).pathname));
    await invoke('hello', 'watched');
    await page.waitForFunction((n) => Number(document.querySelector('#functions-table tr[data-function="hello"] td.invocations')?.textContent) >= n, before + 6);
    t.deepEqual(requests, [], 'updates arrive on the open stream');
  });

  test.serial('cluster: leader, worker, data plane and placement', async (t) => {
    await page.goto(`${cluster.adminUrl}/console#cluster`);
    await page.locator('#workers-table tbody tr').first().waitFor();
    const shards = await text('#shards-table');
    t.regex(shards, /control-plane/);
    t.regex(shards, /dataplane:dp1/);
    t.regex(await text('#leader'), /term \d+/);
    t.regex(await text('#main'), /reconstruction/);
    // The worker's pool of started sandboxes (the default: 2 stems of 128 MiB): idle / target, memory and starts.
    t.regex((await page.locator('#workers-table tbody tr').first().textContent()) ?? '', /\d+ \/ 2 \([\d.]+ MiB(, [\d.]+ each)?, cap \d+; starts \d+ pool, \d+ fresh\)/);
    // Placement: the function's one sandbox is a square on the worker's row, named in its tooltip.
    t.regex((await page.locator('#placement-table rect title').allTextContents()).join(), /^hello · hello-\S+ · ready$/);
  });

  test.serial("actors: by kind, filtered by a click, sorted, then one actor's state and recent messages", async (t) => {
    await page.goto(`${cluster.adminUrl}/console#actors`);
    await page.locator('#kinds-table tr[data-kind]').first().waitFor();
    const kinds = await page.locator('#kinds-table tr[data-kind]').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.kind));
    for (const kind of ['function', 'router', 'dpsandbox', 'node', 'scheduler']) t.true(kinds.includes(kind), `${kind} in ${kinds.join(',')}`);
    await page.locator('#kinds-table tr[data-kind="router"]').click();
    await page.waitForFunction(() => location.hash.includes('kind=router') && [...document.querySelectorAll('#actors-table tbody tr')].length > 0 && [...document.querySelectorAll('#actors-table tbody tr')].every((r) => r.children[1]?.textContent === 'router'));
    // Sort by processed with a click on its header: the server sorts, on every shard.
    await page.locator('#actors-table th', { hasText: /^processed$/ }).click();
    await page.waitForFunction(() => location.hash.includes('sort=processed') && document.querySelector('#actors-table th.sorted')?.textContent === 'processed');
    const processed = (await page.locator('#actors-table tbody tr td:nth-child(6)').allTextContents()).map(Number);
    t.deepEqual(processed, [...processed].sort((a, b) => b - a));
    await page.locator('#actors-table tbody tr[data-actor*="/hello"]').first().click();
    t.regex(await text('#actor-name'), /^router\/hello/);
    t.true((await text('#actor-line')).length > 0);
    t.truthy(JSON.parse(await text('#actor-state')));
    // Watched from now on: an invocation's messages to the router show up without a reload.
    await page.locator('#recent-empty').waitFor();
    for (let i = 0; i < 3; i++) await invoke('hello', `watched ${i}`);
    t.regex(await text('#recent-table tbody'), /rt\.|router|invoke/i);
  });

  test.serial('a hostile actor name in the address is shown as text, never run as markup', async (t) => {
    await page.goto(`${cluster.adminUrl}/console#actor?process=control-plane&shard=0&name=${encodeURIComponent(HOSTILE)}`);
    await page.locator('#error:not([hidden])').waitFor();
    const error = await text('#error');
    t.regex(error, /NO_SUCH_ACTOR/);
    t.true(error.includes(HOSTILE), 'the name, as text');
    t.is(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned ?? null), null);
    t.is(await page.locator('#error img').count(), 0);
    // A query the server refuses (the stream answers 400): the page says why.
    await page.goto(`${cluster.adminUrl}/console#actors?sort=bogus`);
    await page.waitForFunction(() => /INVALID_QUERY: sort must be one of/.test(document.getElementById('error')?.textContent ?? ''));
    t.is(await text('#live'), 'disconnected');
  });

  test.serial(`actors: ${ACTORS} simulated actors paged and sorted by the server`, async (t) => {
    many = await startMany();
    await page.goto(`${many.admin.url}/console#actors?kind=counter&sort=processed`);
    await page.waitForFunction((n) => document.getElementById('actors-total')?.textContent === `1–50 of ${n}`, ACTORS);
    t.is(await page.locator('#actors-table tbody tr').count(), 50);
    const first = (await page.locator('#actors-table tbody tr td:nth-child(6)').allTextContents()).map(Number);
    t.deepEqual(first, Array(50).fill(7), 'the busiest first');
    const started = performance.now();
    await page.locator('#next-page').click();
    await page.waitForFunction((n) => document.getElementById('actors-total')?.textContent === `51–100 of ${n}`, ACTORS);
    t.log(`next page of ${ACTORS} actors on screen after ${Math.round(performance.now() - started)} ms`);
    // The far end, sorted by name: the server cuts the page out of every shard's head.
    await page.goto(`${many.admin.url}/console#actors?kind=counter&sort=address&offset=${ACTORS - 50}`);
    await page.waitForFunction((n) => document.getElementById('actors-total')?.textContent === `${n - 49}–${n} of ${n}`, ACTORS);
    const names = await page.locator('#actors-table tbody tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.actor ?? ''));
    const expected = Array.from({ length: ACTORS }, (_, i) => `counter/c${i}`).sort().slice(-50);
    t.deepEqual(names, expected);
    await page.locator('#actors-table tbody tr').first().click();
    t.regex(await text('#actor-state'), /"count": \d/);
  });

  test.serial('screenshot artifacts', async (t) => {
    const dir = process.env.TEST_ARTIFACTS_DIR ?? tmpdir();
    const views: [string, string, string][] = [
      ['actors', 'actors?sort=processed', '#actors-table tbody tr'],
      ['functions', 'functions', '#functions-table tbody tr'],
      ['cluster', 'cluster', '#shards-table tbody tr'],
    ];
    for (const [name, hash, ready] of views) {
      await page.goto(`${cluster.adminUrl}/console#${hash}`);
      await page.locator(ready).first().waitFor();
      const file = join(dir, `dirigent-console-${name}.png`);
      const png = await page.screenshot({ path: file, fullPage: true });
      console.log(`console.test: screenshot saved to ${file}`);
      t.true(png.length > 1000);
      if (name === 'actors' && process.env.UPDATE_SCREENSHOT === '1') await copyFile(file, new URL('../../../cluster/console/screenshot.png', import.meta.url));
    }
  });

  // Last: its restart resets the autoscaler's counters, which the screenshots show.
  test.serial('actions: refused without the admin token, done with it', async (t) => {
    await page.goto(`${cluster.adminUrl}/console#cluster`);
    const drain = page.locator('#workers-table tr[data-node="w1"] button.drain');
    await page.locator('#token').fill('');
    await drain.click();
    await page.waitForFunction(() => /refused/.test(document.getElementById('action-result')?.textContent ?? ''));
    t.regex(await text('#action-result'), /drain refused \(401\) UNAUTHORIZED: .*Bearer <admin token>/);
    t.regex(await text('#workers-table tr[data-node="w1"]'), /alive/, 'still schedulable');

    await page.locator('#token').fill(ADMIN_TOKEN);
    await drain.click();
    await page.waitForFunction(() => /cordoned/.test(document.querySelector('#workers-table tr[data-node="w1"]')?.textContent ?? ''));
    t.is(await text('#action-result'), 'drain: done');
    await page.locator('#workers-table tr[data-node="w1"] button.drain', { hasText: 'uncordon' }).click();
    await page.waitForFunction(() => /alive/.test(document.querySelector('#workers-table tr[data-node="w1"]')?.textContent ?? ''));

    // Scale from the functions view's form (its fields survive the pushed redraws).
    await page.goto(`${cluster.adminUrl}/console#functions`);
    await page.locator('#scale-form input[name="function"]').fill('hello');
    await page.locator('#scale-form input[name="minScale"]').fill('2');
    await page.locator('#scale-form button').click();
    await page.waitForFunction(() => document.getElementById('action-result')?.textContent === 'scale: done');
    await page.waitForFunction(() => Number(document.querySelector('#functions-table tr[data-function="hello"]')?.children[2]?.textContent) === 2, undefined, { timeout: WAIT_MS });
    t.is((await new AdminClient({ adminUrl: cluster.adminUrl }).getFunction('hello')).spec.scaling.minScale, 2);

    // Restart the function's autoscaler (on the control plane; it recomputes from the next reports): its restart count goes up.
    await page.goto(`${cluster.adminUrl}/console#actors?kind=autoscaler&process=control-plane`);
    await page.locator('#actors-table tbody tr[data-actor^="autoscaler/hello"]').click();
    await page.locator('#restart-actor').click();
    await page.waitForFunction(() => document.getElementById('action-result')?.textContent === 'restart: done');
    await page.waitForFunction(() => [...document.querySelectorAll('.card')].some((c) => /^restarts1$/.test(c.textContent ?? '')));
    t.pass();
  });
}
