// `npm run build` (scripts/build.mjs) on a small project of its own: outputs starting with `#!` are executable, a
// rebuild replaces changed files by rename and leaves the others alone, stale outputs go, a failed compile
// changes nothing, and a process loading outputs while builds run never misses one (what broke a cluster running
// from the checkout: its thread sandboxes load dist/cluster/sandbox/thread-worker.js at every cold start).
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const BUILD = new URL('../../scripts/build.mjs', import.meta.url).pathname;
const ROOT = new URL('../../', import.meta.url).pathname;

const TSCONFIG = { compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', outDir: 'dist', rootDir: '.', types: [], strict: true }, include: ['*.ts'] };

async function project(t: ExecutionContext, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dirigent-build-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

/** Runs the build on `dir` to its end (bounded); its exit code and output. */
function build(dir: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUILD, '-p', join(dir, 'tsconfig.json')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;

test('outputs starting with #! are executable; a rebuild replaces what changed, leaves the rest, and removes stale outputs', async (t) => {
  const dir = await project(t, {
    'cli.ts': '#!/usr/bin/env node\nexport const cli = 1;\n',
    'lib.ts': 'export const version = 1;\n',
    'old.ts': 'export const old = true;\n',
  });
  const first = await build(dir);
  t.is(first.code, 0, first.output);
  t.is(await mode(join(dir, 'dist/cli.js')), 0o755);
  t.is((await mode(join(dir, 'dist/lib.js'))) & 0o111, 0);
  const cliInode = (await stat(join(dir, 'dist/cli.js'))).ino;

  await writeFile(join(dir, 'lib.ts'), 'export const version = 2;\n');
  await unlink(join(dir, 'old.ts'));
  const second = await build(dir);
  t.is(second.code, 0, second.output);
  t.regex(second.output, /2 files in .*: 1 replaced, 1 unchanged, 1 stale removed/);
  t.is((await stat(join(dir, 'dist/cli.js'))).ino, cliInode, 'an unchanged output is not rewritten');
  t.is(await mode(join(dir, 'dist/cli.js')), 0o755);
  t.regex(await readFile(join(dir, 'dist/lib.js'), 'utf8'), /version = 2/);
  t.deepEqual((await readdir(join(dir, 'dist'))).sort(), ['cli.js', 'lib.js']);
  t.deepEqual((await readdir(dir)).filter((name) => name.startsWith('.build-')), [], 'no build directory left behind');
});

test('a failed compile leaves the outputs as they were', async (t) => {
  const dir = await project(t, { 'lib.ts': 'export const version = 1;\n' });
  t.is((await build(dir)).code, 0);
  await writeFile(join(dir, 'lib.ts'), 'export const version: string = 2;\n');
  const failed = await build(dir);
  t.not(failed.code, 0);
  t.regex(failed.output, /is unchanged/);
  t.regex(await readFile(join(dir, 'dist/lib.js'), 'utf8'), /version = 1/);
  t.deepEqual((await readdir(dir)).filter((name) => name.startsWith('.build-')), []);
});

test('a process loading outputs while builds run never misses one, and loads the last build after', async (t) => {
  const dir = await project(t, { 'worker.ts': 'export const version = 0;\n', 'other.ts': 'export const other = 0;\n' });
  t.is((await build(dir)).code, 0);
  const url = pathToFileURL(join(dir, 'dist/worker.js')).href;
  const failures: string[] = [];
  let loads = 0;
  for (let n = 1; n <= 2; n++) {
    await writeFile(join(dir, 'worker.ts'), `export const version = ${n};\n`);
    let done = false;
    const building = build(dir).then((result) => {
      done = true;
      return result;
    });
    // As a cold start does: read the file afresh (a new URL is a new module), as often as the loop turns.
    while (!done) {
      try {
        await import(`${url}?load=${loads}`);
      } catch (error) {
        failures.push((error as Error).message);
      }
      loads += 1;
    }
    t.is((await building).code, 0);
  }
  t.deepEqual(failures, []);
  t.true(loads >= 10, `${loads} loads during the builds`);
  t.is(((await import(`${url}?final`)) as { version: number }).version, 2);
});

test("the repository's CLI (package.json bin) starts with #!, so every build leaves it executable", async (t) => {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
  t.is(pkg.bin.dirigent, 'dist/cluster/cli.js');
  t.regex(await readFile(join(ROOT, 'cluster/cli.ts'), 'utf8'), /^#!\/usr\/bin\/env node\n/);
  t.regex(pkg.scripts.build ?? '', /^node scripts\/build\.mjs\b/);
});
