// A single-member etcd started from the `etcd` binary on PATH, for `dirigent cluster` and the tests that
// need a real etcd. It listens on loopback only; its data directory is the caller's.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { freePort } from '../runtime/net.js';

/** etcd 3.4 starts in ~1 s here; a loaded machine may need more, ms. */
const START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 3000;

export interface EtcdProcess {
  /** Client URL, `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  readonly process: ChildProcess;
  /** etcd gets SIGTERM (its watchdog's stdin closes), then the group SIGKILL after a grace; resolves once it exited. */
  stop(): Promise<void>;
}

export const ETCD_INSTALL_HINT = 'etcd is not on PATH: install it (Debian: apt-get install etcd-server) or point --etcd at a running one';

export function etcdAvailable(): boolean {
  return spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
}

export async function startEtcd(options: { dataDir: string; clientPort?: number; onOutput?: (line: string) => void }): Promise<EtcdProcess> {
  if (!etcdAvailable()) throw new Error(ETCD_INSTALL_HINT);
  mkdirSync(options.dataDir, { recursive: true });
  const clientPort = options.clientPort || (await freePort('127.0.0.1'));
  const peerPort = await freePort('127.0.0.1');
  const endpoint = `http://127.0.0.1:${clientPort}`;
  // etcd cannot watch its parent, so a shell does: it runs etcd, waits for its stdin (a pipe from this process)
  // to close, then stops it. The pipe closes when this process exits, SIGKILL included, so etcd never
  // outlives it. The shell leads its own process group, which `stop` kills as a last resort.
  const child = spawn(
    'sh',
    [
      '-c',
      'etcd "$@" <&- & read -r _; kill "$!" 2>/dev/null; wait "$!"',
      'etcd-watchdog',
      '--name', 'dirigent',
      '--data-dir', options.dataDir,
      '--listen-client-urls', endpoint,
      '--advertise-client-urls', endpoint,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `dirigent=http://127.0.0.1:${peerPort}`,
    ],
    { stdio: ['pipe', 'ignore', 'pipe'], detached: true },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const recent: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.split('\n').filter(Boolean)) {
      recent.push(line);
      if (recent.length > 10) recent.shift();
      options.onOutput?.(line);
    }
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin!.end();
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`etcd exited with code ${child.exitCode}:\n${recent.join('\n')}`);
    try {
      const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(500) });
      if (response.ok) return { endpoint, process: child, stop };
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stop();
  throw new Error(`etcd did not answer /health within ${START_TIMEOUT_MS} ms:\n${recent.join('\n')}`);
}
