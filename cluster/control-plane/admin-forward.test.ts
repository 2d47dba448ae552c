// The admin API of a replica that does not lead: it forwards to the leader, refuses a request already
// forwarded, and says when there is no leader. Two real admin APIs on loopback; the leader side is a stub
// target, since what is tested here is the follower's relay, not what the leader answers.
import test from 'ava';
import { createServer } from 'node:http';
import { listen } from '../../runtime/net.js';
import { startAdminApi, type AdminTarget } from './admin-api.js';

function follower(leader: AdminTarget['leader']): AdminTarget {
  return { replicaId: 'cp2', plane: () => undefined, leader, replicas: async () => [] };
}

test('a follower relays a request to the leader (method, path, body, headers) and its answer back', async (t) => {
  const seen: { method?: string; url?: string; body: string; forwardedBy?: string; auth?: string } = { body: '' };
  const leader = createServer((req, res) => {
    req.setEncoding('utf8').on('data', (chunk: string) => (seen.body += chunk));
    req.on('end', () => {
      Object.assign(seen, { method: req.method, url: req.url, forwardedBy: req.headers['x-dirigent-forwarded-by'], auth: req.headers.authorization });
      res.writeHead(201, { 'content-type': 'application/json', 'x-from': 'leader' });
      res.end('{"created":true}');
    });
  });
  const port = await listen(leader, 0, '127.0.0.1');
  t.teardown(() => leader.close());
  const api = await startAdminApi(follower(() => ({ info: { id: 'cp1', adminUrl: `http://127.0.0.1:${port}`, clusterAddress: 'x:1' }, term: 7 })), { host: '127.0.0.1', port: 0 });
  t.teardown(() => api.close());

  const response = await fetch(`${api.url}/api/v1/functions?x=1`, { method: 'POST', body: '{"name":"f"}', headers: { authorization: 'Bearer t0ken', 'content-type': 'application/json' } });
  t.is(response.status, 201);
  t.is(await response.text(), '{"created":true}');
  t.is(response.headers.get('x-from'), 'leader');
  t.is(response.headers.get('x-dirigent-leader'), 'cp1');
  t.deepEqual(seen, { method: 'POST', url: '/api/v1/functions?x=1', body: '{"name":"f"}', forwardedBy: 'cp2', auth: 'Bearer t0ken' });
  t.is(await (await fetch(`${api.url}/readyz`)).text(), 'follower (leader: cp1, term 7)\n');
});

test('no leader: 503 NO_LEADER with retry-after; a request forwarded already is not forwarded again; an unreachable leader is 503', async (t) => {
  const none = await startAdminApi(follower(() => undefined), { host: '127.0.0.1', port: 0 });
  t.teardown(() => none.close());
  const noLeader = await fetch(`${none.url}/api/v1/functions`);
  t.is(noLeader.status, 503);
  t.is(noLeader.headers.get('retry-after'), '1');
  t.like(await noLeader.json(), { error: { code: 'NO_LEADER' } });
  const readyz = await fetch(`${none.url}/readyz`);
  t.is(readyz.status, 503);
  t.regex(await readyz.text(), /no leader elected yet/);

  const gone = await startAdminApi(follower(() => ({ info: { id: 'cp1', adminUrl: 'http://127.0.0.1:1', clusterAddress: 'x:1' }, term: 3 })), { host: '127.0.0.1', port: 0 });
  t.teardown(() => gone.close());
  const looped = await fetch(`${gone.url}/api/v1/functions`, { headers: { 'x-dirigent-forwarded-by': 'cp3' } });
  t.is(looped.status, 503);
  t.like(await looped.json(), { error: { code: 'NOT_LEADER' } });
  const unreachable = await fetch(`${gone.url}/api/v1/functions`);
  t.is(unreachable.status, 503);
  t.like(await unreachable.json(), { error: { code: 'LEADER_UNREACHABLE' } });
});

test("a follower relays the console's event stream as it comes, not when it ends", async (t) => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const leader = createServer((req, res) => {
    t.is(req.url, '/api/v1/console/stream?watch=cluster');
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('event: update\ndata: {"i":0,"body":1}\n\n');
    void released.then(() => res.end('event: update\ndata: {"i":0,"body":2}\n\n'));
  });
  const port = await listen(leader, 0, '127.0.0.1');
  t.teardown(() => {
    release();
    leader.closeAllConnections();
    leader.close();
  });
  const api = await startAdminApi(follower(() => ({ info: { id: 'cp1', adminUrl: `http://127.0.0.1:${port}`, clusterAddress: 'x:1' }, term: 7 })), { host: '127.0.0.1', port: 0 });
  t.teardown(() => api.close());
  const response = await fetch(`${api.url}/api/v1/console/stream?watch=cluster`, { signal: AbortSignal.timeout(10_000) });
  t.is(response.headers.get('content-type'), 'text/event-stream');
  const reader = response.body!.getReader();
  const first = Buffer.from((await reader.read()).value!).toString('utf8');
  t.is(first, 'event: update\ndata: {"i":0,"body":1}\n\n', 'the first event, while the leader still holds the stream open');
  release();
  let rest = '';
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += Buffer.from(chunk.value).toString('utf8');
  t.is(rest, 'event: update\ndata: {"i":0,"body":2}\n\n');
});
