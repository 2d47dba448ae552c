// The console's actions: the only requests of the console that change the cluster.
//
//   POST /api/v1/console/scale    { "function": name, "minScale"?: n, "maxScale"?: n }   sandbox bounds
//   POST /api/v1/console/drain    { "node": id, "drain"?: true|false }   cordon (false: uncordon) a worker
//   POST /api/v1/console/restart  { "process": "control-plane", "shard": n, "name": actor }   restart an actor
//
// Read-only by default: with no admin token configured (`--admin-token` or DIRIGENT_ADMIN_TOKEN) every action
// is refused (403 ACTIONS_DISABLED), even though the rest of that admin API is open; with one, an action needs
// `Authorization: Bearer <token>` (401 UNAUTHORIZED without it, or with another). Done or refused, each is
// written to the control plane's log with the client's address.
//
// Restart reaches the control plane's own actors only: over the cluster links a peer may only read another
// process's shards (runtime/transport.ts), and a console action does not widen that.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { secretsMatch } from '../../runtime/net.js';
import { ConsoleApiError } from './console-error.js';
import type { ControlPlane, Outcome } from './control-plane.js';
import { CONTROL_PLANE_PROCESS } from './inspection.js';

export const ACTIONS = ['scale', 'drain', 'restart'] as const;
export type ConsoleAction = (typeof ACTIONS)[number];

export function isAction(view: string): view is ConsoleAction {
  return (ACTIONS as readonly string[]).includes(view);
}

/** An action's body is a small JSON object, bytes. */
const MAX_ACTION_BYTES = 4096;

export async function serveConsoleAction(plane: ControlPlane, adminToken: string | undefined, action: ConsoleAction, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST') throw new ConsoleApiError(405, 'METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on the console's ${action} action; use POST`);
  const by = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
  if (adminToken === undefined) {
    plane.logRefusedAction(action, by, 'no admin token is configured');
    throw new ConsoleApiError(403, 'ACTIONS_DISABLED', 'the console is read-only: this cluster has no admin token, so its actions are off (start the control plane with --admin-token <token> or DIRIGENT_ADMIN_TOKEN)');
  }
  if (!secretsMatch((req.headers.authorization ?? '').replace(/^Bearer\s+/i, ''), adminToken)) {
    plane.logRefusedAction(action, by, req.headers.authorization === undefined ? 'no token' : 'a wrong token');
    throw new ConsoleApiError(401, 'UNAUTHORIZED', `the console's ${action} action needs Authorization: Bearer <admin token>${req.headers.authorization === undefined ? '' : ' (the one given is not it)'}`);
  }
  const body = await readBody(req);
  sendOutcome(res, await run(plane, action, body, by));
}

async function run(plane: ControlPlane, action: ConsoleAction, body: Record<string, unknown>, by: string): Promise<Outcome<unknown>> {
  switch (action) {
    case 'scale': {
      only(body, ['function', 'minScale', 'maxScale'], action);
      const name = text(body, 'function');
      const scaling = { ...optionalInt(body, 'minScale'), ...optionalInt(body, 'maxScale') };
      if (Object.keys(scaling).length === 0) throw new ConsoleApiError(400, 'INVALID_BODY', 'scale needs minScale, maxScale or both (sandboxes)');
      return plane.scaleFunction(name, scaling, by);
    }
    case 'drain': {
      only(body, ['node', 'drain'], action);
      const drain = body['drain'] ?? true;
      if (typeof drain !== 'boolean') throw new ConsoleApiError(400, 'INVALID_BODY', `drain must be true (cordon) or false (uncordon), got ${JSON.stringify(drain)}`);
      return plane.setSchedulable(text(body, 'node'), !drain, by);
    }
    case 'restart': {
      only(body, ['process', 'shard', 'name'], action);
      const process = text(body, 'process');
      if (process !== CONTROL_PLANE_PROCESS) throw new ConsoleApiError(403, 'REMOTE_ACTOR', `only the control plane's own actors can be restarted from the console, not ${process}'s: its peers may only read other processes' shards`);
      const shard = optionalInt(body, 'shard')['shard'];
      if (shard === undefined) throw new ConsoleApiError(400, 'INVALID_BODY', 'restart needs shard (an integer, as the actor list gives it)');
      return plane.restartActor(shard, text(body, 'name'), by);
    }
  }
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_ACTION_BYTES) throw new ConsoleApiError(413, 'BODY_TOO_LARGE', `an action's body exceeds ${MAX_ACTION_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new ConsoleApiError(400, 'INVALID_JSON', `an action's body must be a JSON object: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConsoleApiError(400, 'INVALID_JSON', "an action's body must be a JSON object");
  return value as Record<string, unknown>;
}

function only(body: Record<string, unknown>, known: readonly string[], action: string): void {
  for (const key of Object.keys(body)) if (!known.includes(key)) throw new ConsoleApiError(400, 'INVALID_BODY', `unknown field ${JSON.stringify(key)} for ${action}; known: ${known.join(', ')}`);
}

function text(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (typeof value !== 'string' || value === '' || value.length > 512) throw new ConsoleApiError(400, 'INVALID_BODY', `${key} must be a non-empty string, got ${JSON.stringify(value) ?? 'nothing'}`);
  return value;
}

/** `{ [key]: n }` when the body has an integer >= 0 there, `{}` when it has nothing. */
function optionalInt(body: Record<string, unknown>, key: string): Record<string, number> {
  const value = body[key];
  if (value === undefined) return {};
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new ConsoleApiError(400, 'INVALID_BODY', `${key} must be an integer >= 0, got ${JSON.stringify(value)}`);
  return { [key]: value };
}

function sendOutcome(res: ServerResponse, outcome: Outcome<unknown>): void {
  if (!outcome.ok) throw new ConsoleApiError(outcome.status, outcome.code, outcome.message);
  const text = JSON.stringify(outcome.value);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
