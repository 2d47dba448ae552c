// Runs ava over the compiled tests in TAP mode, passes its output through, and ends with the plain
// line `N passed, N failed[, N skipped]` that CI recognises. Exits non-zero on a failure or when no test ran.
// The counts are ava's own TAP trailer (`# pass N`, `# fail N`, `# skip N`) when it prints one: a failed
// before hook is one `not ok` line there, but every test of its file counts as failed in the trailer.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const args = ['ava', '--tap', ...process.argv.slice(2)];
const child = spawn('npx', ['--no-install', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
let passed = 0;
let failed = 0;
let skipped = 0;
/** ava's trailer counts, by the word it uses. */
const trailer = {};
const lines = createInterface({ input: child.stdout });
lines.on('line', (line) => {
  console.log(line);
  const total = /^# (pass|fail|skip|todo) (\d+)$/.exec(line);
  if (total) trailer[total[1]] = Number(total[2]);
  const result = /^(not ok|ok) \d+/.exec(line);
  if (!result) return;
  if (/# SKIP|# TODO/i.test(line)) skipped += 1;
  else if (result[1] === 'ok') passed += 1;
  else failed += 1;
});
child.on('close', (code) => {
  if (trailer.pass !== undefined) {
    passed = trailer.pass;
    failed = trailer.fail ?? 0;
    skipped = (trailer.skip ?? 0) + (trailer.todo ?? 0);
  }
  const summary = `${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : '');
  console.log(summary);
  process.exit(failed > 0 || passed === 0 || code !== 0 ? 1 : 0);
});
