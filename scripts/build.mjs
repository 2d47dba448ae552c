// `npm run build` (and so `npm start` and `npm test`): compile without ever leaving a running cluster short of a
// file. A cluster started from this checkout keeps loading files from dist/ long after it started: every thread
// sandbox's worker (dist/cluster/sandbox/thread-worker.js and what it imports) is loaded at its cold start. The
// build used to delete dist/ and compile into it, so for the whole compile (seconds) those files did not exist and
// every cold start failed. Now:
//   1. compile into a fresh directory beside the output directory (the same filesystem, so renames are atomic;
//      the same depth, so the source maps' relative paths hold); a failed compile leaves the output as it was;
//   2. make every emitted file that starts with `#!` executable there (dist/cluster/cli.js: the `dirigent` that
//      `npm link` puts on PATH), so it never exists without its exec bit;
//   3. move each file into the output directory by rename, which replaces the old one atomically (a reader sees
//      the old file or the new one, never a truncated one); a file whose bytes and mode did not change is left alone,
//      so a rebuild of unchanged sources touches nothing;
//   4. remove outputs whose source is gone (stale tests would still run), and directories left empty.
// A running cluster does load the new build's files at its next cold start; restart it to run one build everywhere.
//
// Usage: node scripts/build.mjs [-p tsconfig.json]   (the output directory is the tsconfig's outDir)
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const TSC = fileURLToPath(new URL('../node_modules/.bin/tsc', import.meta.url));
const FRESH_PREFIX = '.build-';

const args = process.argv.slice(2);
const project = resolve(args[0] === '-p' && args[1] ? args[1] : 'tsconfig.json');
const projectDir = dirname(project);
const outDir = resolve(projectDir, JSON.parse(readFileSync(project, 'utf8')).compilerOptions?.outDir ?? 'dist');
const parent = dirname(outDir);
const fresh = join(parent, `${FRESH_PREFIX}${basename(outDir)}-${process.pid}`);

removeAbandoned();
try {
  const compiled = spawnSync(TSC, ['-p', project, '--outDir', fresh], { stdio: 'inherit' });
  if (compiled.status !== 0) {
    console.error(`build: tsc failed (${compiled.status ?? compiled.signal}); ${outDir} is unchanged`);
    process.exitCode = compiled.status ?? 1;
  } else {
    const files = listFiles(fresh);
    for (const file of files) if (startsWithShebang(join(fresh, file))) chmodSync(join(fresh, file), 0o755);
    let replaced = 0;
    for (const file of files) {
      const target = join(outDir, file);
      if (sameFile(join(fresh, file), target)) continue;
      mkdirSync(dirname(target), { recursive: true });
      renameSync(join(fresh, file), target);
      replaced += 1;
    }
    const wanted = new Set(files);
    const stale = listFiles(outDir).filter((file) => !wanted.has(file));
    for (const file of stale) unlinkSync(join(outDir, file));
    removeEmptyDirectories(outDir);
    console.log(`build: ${files.length} files in ${outDir}: ${replaced} replaced, ${files.length - replaced} unchanged, ${stale.length} stale removed`);
  }
} finally {
  rmSync(fresh, { recursive: true, force: true });
}

/** Relative paths of every file under `dir` ([] when it does not exist). */
function listFiles(dir, prefix = '') {
  if (!existsSync(join(dir, prefix))) return [];
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const path = join(prefix, entry.name);
    return entry.isDirectory() ? listFiles(dir, path) : [path];
  });
}

function startsWithShebang(path) {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head.toString('latin1') === '#!';
  } finally {
    closeSync(fd);
  }
}

function sameFile(a, b) {
  if (!existsSync(b)) return false;
  const [sa, sb] = [statSync(a), statSync(b)];
  return sb.isFile() && sa.size === sb.size && (sa.mode & 0o777) === (sb.mode & 0o777) && readFileSync(a).equals(readFileSync(b));
}

function removeEmptyDirectories(dir) {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const path = join(dir, entry.name);
    removeEmptyDirectories(path);
    if (readdirSync(path).length === 0) rmdirSync(path);
  }
}

/** Fresh directories of builds that were killed (their pid is gone): nothing else removes them. */
function removeAbandoned() {
  const pattern = new RegExp(`^${FRESH_PREFIX.replace('.', '\\.')}${basename(outDir)}-(\\d+)$`);
  for (const name of readdirSync(parent)) {
    const pid = Number(pattern.exec(name)?.[1]);
    if (pid && !alive(pid)) rmSync(join(parent, name), { recursive: true, force: true });
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}
