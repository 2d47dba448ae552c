// Helpers shared by this folder's tests (not exported from index.ts).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { InvokeRequest, RuntimeSource, Sandbox, SandboxSpec } from './runtime.js';

/** Tests run from dist/cluster/sandbox/; fixtures stay in the source tree. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../../../cluster/sandbox/fixtures/${name}`, import.meta.url));
}

export function spec(sandboxId: string, runtime: RuntimeSource, overrides: Partial<SandboxSpec> = {}): SandboxSpec {
  return { sandboxId, functionName: 'fn', runtime, memoryMiB: 64, cpuMilli: 250, concurrency: 1, timeoutMs: 5_000, ...overrides };
}

export function request(path: string, body = '', headers: Record<string, string> = {}, method = 'POST'): InvokeRequest {
  return { method, path, headers, body: new TextEncoder().encode(body) };
}

/** A sandbox's kept output, text only. */
export function lines(sandbox: Sandbox): string[] {
  return sandbox.logs().map((entry) => entry.line);
}

export function text(body: Uint8Array): string {
  return new TextDecoder().decode(body);
}

/** Polls `check` every 10 ms until it holds or `withinMs` passes; answers whether it held. */
export async function eventually(check: () => boolean, withinMs = 2_000): Promise<boolean> {
  for (let waited = 0; waited < withinMs; waited += 10) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return check();
}

/** True when no live process has this pid; a zombie (exited, not yet reaped by its new parent) counts as dead. */
export function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return true;
    throw error;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may contain spaces, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** OS threads in this process (Linux), to check that sandboxes leave no worker threads behind. */
export function osThreadCount(): number {
  const status = readFileSync('/proc/self/status', 'utf8');
  return Number(/^Threads:\s+(\d+)/m.exec(status)?.[1]);
}
