// Small socket helpers shared by every role's listeners.
import { timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:net';

/** Something that listens like node:net and node:http servers do. */
interface Listenable {
  listen(port: number, host: string, listening: () => void): unknown;
  once(event: 'error', listener: (error: Error) => void): unknown;
  address(): ReturnType<import('node:net').Server['address']>;
}

/**
 * Listens on host:port and answers the port bound (the one picked, for port 0); rejects with the listen
 * error. The error listener stays: a later server error (an accept failing for lack of descriptors) is
 * then ignored rather than thrown at the thread.
 */
export function listen(server: Listenable, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

/** A port the kernel considers free now on `host`; another process could still take it before it is used. */
export async function freePort(host: string): Promise<number> {
  const server = createServer();
  const port = await listen(server, 0, host);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Whether two secrets are equal, in time independent of where they differ. */
export function secretsMatch(given: string, wanted: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(wanted);
  return a.length === b.length && timingSafeEqual(a, b);
}
