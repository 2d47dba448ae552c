// Runs ava over the compiled tests in TAP mode, passes its output through, and ends with the plain
// line `N passed, N failed[, N skipped]` that CI recognises. Exits non-zero on a failure or when no test ran.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const args = ['ava', '--tap', ...process.argv.slice(2)];
const child = spawn('npx', ['--no-install', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
let passed = 0;
let failed = 0;
let skipped = 0;
const lines = createInterface({ input: child.stdout });
lines.on('line', (line) => {
  console.log(line);
  const result = /^(not ok|ok) \d+/.exec(line);
  if (!result) return;
  if (/# SKIP|# TODO/i.test(line)) skipped += 1;
  else if (result[1] === 'ok') passed += 1;
  else failed += 1;
});
child.on('close', (code) => {
  const summary = `${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : '');
  console.log(summary);
  process.exit(failed > 0 || passed === 0 || code !== 0 ? 1 : 0);
});
