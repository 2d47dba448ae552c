// Serves the inspection console's static page: a few hand-written files (no framework, no build step)
// kept beside this module's source in cluster/console/ and read from there at each request (they are small,
// and an edited page shows on reload). The page reads the admin API's /api/v1/console/* views.
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';

/** Where the page lives: the source folder, from dist/cluster/console/ as from an image's /app/dist/... */
const ROOT = new URL('../../../cluster/console/', import.meta.url);

const FILES: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  '/console': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/console/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
};

/**
 * Only the page's own files run in it (no inline script, nothing from elsewhere): text from the cluster
 * (actor ids, function names, states) is escaped by the page, and this stops whatever might slip through.
 */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

export function isConsolePath(path: string): boolean {
  return path in FILES;
}

/** Answers one of the console's files; false when `path` is not one (the caller answers 404). */
export async function serveConsoleFile(path: string, res: ServerResponse): Promise<boolean> {
  const entry = FILES[path];
  if (entry === undefined) return false;
  const body = await readFile(new URL(entry.file, ROOT));
  res.writeHead(200, { 'content-type': entry.type, 'content-length': body.length, ...SECURITY_HEADERS });
  res.end(body);
  return true;
}
