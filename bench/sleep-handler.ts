// A thread-runtime function for bench/autoscale.ts that holds its request for SLEEP_MS ms (its environment)
// without using the CPU: a 100 ms function at 50 req/s needs 5 sandboxes by Little's law but almost no CPU,
// so the sandbox count measures the autoscaler and not the two cores.
export async function handler(): Promise<string> {
  const ms = Number(process.env['SLEEP_MS'] ?? '0');
  await new Promise((resolve) => setTimeout(resolve, Number.isFinite(ms) && ms > 0 ? ms : 0));
  return 'OK';
}
