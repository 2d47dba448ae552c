// One data plane per invoke port. Every shard thread listens on the invoke port with SO_REUSEPORT (uWS sets it),
// and Linux lets any socket that also sets it, under the same effective UID, join that port: a second data plane
// (a second `dirigent up`) on the same port would start, and the kernel would split connections between two
// unrelated clusters. Linux cannot restrict the sharing to our own threads, so the data plane claims the port
// beside it, in three steps:
//
// 1. A guard: the main thread listens on an abstract Unix socket named after the port (`\0dirigent/invoke-port/8080`)
//    for the data plane's life. Binding a name is atomic and exclusive; the kernel frees it when the process ends,
//    however it ends (SIGKILL too), so there is no stale lock and no race between two data planes starting at once.
//    (A lock file under the temp dir would need flock, which Node lacks, or a pid file, which goes stale.) Abstract
//    names belong to the network namespace, as ports do: a container with its own network has its own. The name is
//    the port alone, since a data plane on 0.0.0.0:8080 and one on 127.0.0.1:8080 would overlap. The guard tells
//    whoever connects who holds it, and the refusal names that data plane.
// 2. A probe for every other process: an exclusive listen (no SO_REUSEPORT) on host:port, closed at once, fails
//    when any socket holds the port, of any user, on any address the kernel counts as overlapping.
// 3. A check once the shards listen: every listening socket on the port in /proc/net/tcp{,6} whose address
//    overlaps ours must be one of this process's (its inode among /proc/self/fd). This catches an SO_REUSEPORT
//    socket of another program bound between the probe and the shards' listen.
// What no check can stop: another program's SO_REUSEPORT socket bound later. Binding with SO_REUSEPORT is asking
// to share; dirigent's data planes ask for the guard first. The compat port needs none of this: node:http listens
// without SO_REUSEPORT, so the kernel refuses a second listener; `portInUse` words that refusal.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { listen } from '../../runtime/net.js';
import { DirigentError } from '../../actors/errors.js';

export class PortTakenError extends DirigentError<'PORT_TAKEN'> {
  override name = 'PortTakenError';
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super('PORT_TAKEN', message, options);
  }
}

/** What a guard tells whoever connects to it. */
export interface PortHolder {
  readonly pid: number;
  readonly dataplaneId: string;
  readonly address: string;
}

/** Bound on asking a guard who holds it, ms (it answers at once; a hung holder must not hang the refusal). */
const ASK_HOLDER_TIMEOUT_MS = 1000;

const guardName = (port: number) => `\0dirigent/invoke-port/${port}`;

/** The data plane that holds the guard of `port` (undefined when none does; `pid: 0` when it did not say who). */
export function portHolder(port: number): Promise<PortHolder | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ path: guardName(port) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), ASK_HOLDER_TIMEOUT_MS);
    let connected = false;
    socket.on('connect', () => void (connected = true));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      if (!connected) return resolve(undefined);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as PortHolder);
      } catch {
        resolve({ pid: 0, dataplaneId: 'unknown', address: `port ${port}` });
      }
    });
  });
}

function takenBy(holder: PortHolder, port: number): PortTakenError {
  const who = holder.pid === 0 ? 'another dirigent data plane' : `dirigent data plane ${holder.dataplaneId} (pid ${holder.pid}, ${holder.address})`;
  return new PortTakenError(`invoke port ${port} is taken: ${who} serves on it; stop it or choose another invoke port`);
}

/** The error for a port another process listens on. `what` names the port's use ("invoke", "compat"). */
export function portInUse(what: string, host: string, port: number): PortTakenError {
  return new PortTakenError(`${what} port ${port} on ${host} is in use by another process (\`ss -ltnp 'sport = :${port}'\` names it); stop it or choose another ${what} port`);
}

/**
 * Refuses a port some process holds, without claiming it: the guard (a data plane) and the probe (anything else).
 * `dirigent up` checks its ports with it before starting anything; only `PortClaim.take` is free of races.
 */
export async function assertPortFree(what: string, host: string, port: number): Promise<void> {
  const holder = await portHolder(port);
  if (holder !== undefined) throw takenBy(holder, port);
  await probe(what, host, port);
}

async function probe(what: string, host: string, port: number): Promise<void> {
  const server = createServer();
  try {
    await listen(server, port, host);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw portInUse(what, host, port);
    throw error;
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** The invoke port, claimed for this process until `release`. */
export class PortClaim {
  private constructor(
    readonly port: number,
    private readonly guard: Server,
  ) {}

  /** Takes the guard of `port` and probes host:port; throws PortTakenError naming the port (and its holder). */
  static async take(host: string, port: number, dataplaneId: string): Promise<PortClaim> {
    const holder: PortHolder = { pid: process.pid, dataplaneId, address: `${host}:${port}` };
    const guard = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.end(JSON.stringify(holder));
    });
    try {
      await new Promise<void>((resolve, reject) => {
        guard.once('error', reject);
        guard.listen({ path: guardName(port) }, () => resolve());
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      throw takenBy((await portHolder(port)) ?? { pid: 0, dataplaneId: 'unknown', address: `port ${port}` }, port);
    }
    // The guard alone must not keep a process alive: the data plane's runtime does that.
    guard.unref();
    const claim = new PortClaim(port, guard);
    try {
      await probe('invoke', host, port);
    } catch (error) {
      await claim.release();
      throw error;
    }
    return claim;
  }

  /** After the shards listen: refuses when a socket of another process listens on an overlapping address too. */
  verifyAlone(host: string): void {
    const foreign = foreignListeners(this.port);
    if (foreign.length > 0) throw new PortTakenError(`${portInUse('invoke', host, this.port).message} (it listens with SO_REUSEPORT, so the kernel would share the port: socket inode ${foreign.join(', ')})`);
  }

  release(): Promise<void> {
    return new Promise((resolve) => this.guard.close(() => resolve()));
  }
}

interface Listener {
  /** `4:` or `6:` and the address as /proc shows it (hex). */
  readonly address: string;
  readonly inode: string;
}

const WILDCARD = /^[46]:0+$/;
/** TCP_LISTEN in /proc/net/tcp's `st` column. */
const LISTEN_STATE = '0A';

/** Inodes of the listening sockets of other processes on `port` that overlap one of ours; [] where /proc cannot tell. */
export function foreignListeners(port: number): string[] {
  const listeners = [...procListeners('/proc/net/tcp', '4', port), ...procListeners('/proc/net/tcp6', '6', port)];
  const own = ownSocketInodes();
  const ours = listeners.filter((l) => own.has(l.inode));
  const overlaps = (a: Listener, b: Listener) => a.address === b.address || WILDCARD.test(a.address) || WILDCARD.test(b.address);
  return listeners.filter((l) => !own.has(l.inode) && ours.some((o) => overlaps(o, l))).map((l) => l.inode);
}

function procListeners(file: string, family: string, port: number): Listener[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const found: Listener[] = [];
  for (const line of text.split('\n').slice(1)) {
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    const fields = line.trim().split(/\s+/);
    const [address, portHex] = (fields[1] ?? '').split(':');
    if (fields[3] !== LISTEN_STATE || address === undefined || portHex === undefined || parseInt(portHex, 16) !== port) continue;
    found.push({ address: `${family}:${address}`, inode: fields[9] ?? '' });
  }
  return found;
}

function ownSocketInodes(): Set<string> {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync('/proc/self/fd');
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // Closed while we looked.
    }
  }
  return inodes;
}
