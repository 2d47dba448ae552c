import test from 'ava';
import type { AskResult } from '../actors/actor.js';
import { connectFrames, listenFrames, type FrameConnection } from './frames.js';
import { ActorRuntime } from './runtime.js';
import { ClusterTransport } from './transport.js';

const kinds = { url: new URL('./fixtures/test-kinds.js', import.meta.url).href };
const TOKEN = 'test-token';

/** Two processes' worth of runtime in one test: `server` hosts counter/echo/silent, `client` hosts relay. */
async function pair(t: { teardown(fn: () => Promise<void> | void): void }) {
  const serverKinds = ['counter', 'echo', 'silent'];
  const server = await ActorRuntime.start({ shards: 2, modules: [kinds], remoteKinds: ['relay'], onLog: () => undefined });
  const client = await ActorRuntime.start({ shards: 1, modules: [kinds], remoteKinds: serverKinds, onLog: () => undefined });
  const serverPeers: FrameConnection[] = [];
  const serverTransport = new ClusterTransport(server, () => serverPeers, new Set(['relay']));
  const listener = await listenFrames({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    role: 'server',
    id: 's1',
    accept: (connection) => {
      serverPeers.push(connection);
      serverTransport.attach(connection);
      return undefined;
    },
  });
  const { connection } = await connectFrames({ host: '127.0.0.1', port: listener.port, hello: { token: TOKEN, role: 'client', id: 'c1' } });
  const clientPeers = [connection];
  const clientTransport = new ClusterTransport(client, () => clientPeers.filter((c) => !c.isClosed), new Set(serverKinds));
  clientTransport.attach(connection);
  t.teardown(async () => {
    connection.destroy();
    clientTransport.close();
    serverTransport.close();
    await listener.close();
    await Promise.all([server.stop(), client.stop()]);
  });
  return { server, client, connection, listener, clientTransport, serverPeers };
}

test.serial('tells and asks cross processes, from the client side and between actors', async (t) => {
  const { server, client } = await pair(t);
  const counter = { kind: 'counter', id: 'remote' };
  client.tell(counter, { type: 'inc', by: 3 });
  t.is(await client.ask<number>(counter, { type: 'get' }), 3);
  t.is(await server.ask<number>(counter, { type: 'get' }), 3);
  const relay = { kind: 'relay', id: 'r' };
  // Bounds generous in real time: on a machine loaded far beyond its cores a 2 s ask timed out here.
  client.tell(relay, { type: 'askOther', to: { kind: 'echo', id: 'e' }, message: 'over the wire', timeoutMs: 20_000 });
  client.tell(relay, { type: 'burst', to: { kind: 'counter', id: 'ordered' }, from: 'relay', n: 2000 });
  let results: AskResult[] = [];
  for (const deadline = performance.now() + 25_000; performance.now() < deadline && results.length === 0; ) {
    results = (await client.ask<{ results: AskResult[] }>(relay, { type: 'results' })).results;
    await new Promise((r) => setTimeout(r, 10));
  }
  t.deepEqual(results, [{ ok: true, value: 'over the wire' }]);
  let seen: Record<string, number[]> = {};
  for (const deadline = performance.now() + 25_000; performance.now() < deadline && (seen.relay?.length ?? 0) < 2000; ) {
    seen = await client.ask<Record<string, number[]>>({ kind: 'counter', id: 'ordered' }, { type: 'log' });
    await new Promise((r) => setTimeout(r, 10));
  }
  t.deepEqual(seen.relay, Array.from({ length: 2000 }, (_, i) => i), 'order kept across processes');
  // The server side reaches the client's relay too.
  t.deepEqual((await server.ask<{ results: AskResult[] }>(relay, { type: 'results' })).results, results);
});

test.serial('10 000 concurrent remote asks all come back', async (t) => {
  const { client } = await pair(t);
  const replies = await Promise.all(Array.from({ length: 10_000 }, (_, i) => client.ask<number>({ kind: 'echo', id: `e${i % 50}` }, i, 20_000)));
  t.true(replies.every((value, i) => value === i));
});

test.serial('remote asks fail fast when the peer disconnects or no peer is connected', async (t) => {
  const { client, connection, clientTransport } = await pair(t);
  const pending = client.ask({ kind: 'silent', id: 's' }, 'hold', 30_000);
  await client.ask({ kind: 'echo', id: 'e' }, 'sync');
  t.is(clientTransport.pendingProxiedAsks(), 1);
  connection.destroy();
  t.is(((await t.throwsAsync(pending)) as { code?: string }).code, 'PEER_GONE');
  t.is(((await t.throwsAsync(client.ask({ kind: 'echo', id: 'e' }, 'x'))) as { code?: string }).code, 'PEER_UNAVAILABLE');
});

test.serial('a peer with the wrong cluster token is refused', async (t) => {
  const { listener } = await pair(t);
  const error = await t.throwsAsync(connectFrames({ host: '127.0.0.1', port: listener.port, hello: { token: 'wrong', role: 'client', id: 'x' } }));
  t.is((error as { code?: string }).code, 'CONNECT_REFUSED');
  t.regex(error!.message, /wrong cluster token/);
});

test.serial('a peer reads another process\'s shards with askPeer, and may not control them', async (t) => {
  const { server, connection, clientTransport } = await pair(t);
  await server.ask({ kind: 'counter', id: 'seen' }, { type: 'get' });
  const stats = (await clientTransport.askPeer(connection, { kind: '$shard', id: '0' }, { op: 'stats' }, 2000)) as { shards: number };
  t.is(stats.shards, 2);
  const top = await Promise.all([0, 1].map((shard) => clientTransport.askPeer(connection, { kind: '$shard', id: String(shard) }, { op: 'top', sort: 'address', offset: 0, limit: 10 }, 2000)));
  t.true(top.some((page) => (page as { items: { address: string }[] }).items.some((a) => a.address === 'counter/seen')));
  for (const op of [{ op: 'shutdown' }, { op: 'stop-actor', address: { kind: 'counter', id: 'seen' } }, { op: 'set-counters', on: false }]) {
    const refused = await t.throwsAsync(clientTransport.askPeer(connection, { kind: '$shard', id: '0' }, op, 2000));
    t.is((refused as { code?: string }).code, 'FORBIDDEN', op.op);
  }
  t.is(await server.ask<number>({ kind: 'counter', id: 'seen' }, { type: 'get' }), 0, 'still running');
  for (const id of ['2', '-1', 'x']) {
    const missing = await t.throwsAsync(clientTransport.askPeer(connection, { kind: '$shard', id }, { op: 'stats' }, 2000));
    t.is((missing as { code?: string }).code, 'NO_SUCH_ACTOR', id);
  }
  t.is(((await clientTransport.askPeer(connection, { kind: '$shard', id: '1' }, { op: 'stats' }, 2000)) as { shard: number }).shard, 1, 'the process still serves');
});

test.serial('what a shard sends to another process leaves as the bytes it packed: both main threads relay them unread', async (t) => {
  const { client, connection, serverPeers } = await pair(t);
  const spy = (peer: FrameConnection) => {
    const frames: { t: number; m?: unknown; v?: unknown; b?: unknown; to?: { kind: string } }[] = [];
    const send = peer.send.bind(peer);
    peer.send = (frame: unknown) => {
      frames.push(frame as (typeof frames)[number]);
      return send(frame);
    };
    return frames;
  };
  const sent = spy(connection);
  const answered = spy(serverPeers[0]!);
  const relay = { kind: 'relay', id: 'packed' };
  const message = { nested: { list: Array.from({ length: 100 }, (_, i) => ({ id: `s${i}`, port: i })) }, text: 'é' };
  client.tell(relay, { type: 'askOther', to: { kind: 'echo', id: 'p' }, message, timeoutMs: 20_000 });
  let results: AskResult[] = [];
  for (const deadline = performance.now() + 25_000; performance.now() < deadline && results.length === 0; ) {
    results = (await client.ask<{ results: AskResult[] }>(relay, { type: 'results' })).results;
    await new Promise((r) => setTimeout(r, 10));
  }
  t.deepEqual(results, [{ ok: true, value: message }], 'delivered and answered intact');
  const fromShard = sent.filter((frame) => frame.to?.kind === 'echo');
  t.is(fromShard.length, 1);
  t.true(fromShard[0]!.b instanceof Uint8Array, 'packed by the sending shard');
  t.false('m' in fromShard[0]!, 'no unpacked copy on the wire');
  const replies = answered.filter((frame) => frame.t === 2);
  t.is(replies.length, 1);
  t.true(replies[0]!.b instanceof Uint8Array, 'the answer too: packed by the answering shard, relayed unread');
  t.false('v' in replies[0]!);
  t.is(await client.ask<number>({ kind: 'echo', id: 'q' }, 7), 7, 'the client side itself still sends plain messages');
});

test.serial('a packed message that is not bytes, or not msgpack, is refused with an error; the process goes on', async (t) => {
  const { server, listener } = await pair(t);
  const { connection } = await connectFrames({ host: '127.0.0.1', port: listener.port, hello: { token: TOKEN, role: 'client', id: 'raw' } });
  t.teardown(() => connection.destroy());
  const replies: { w: number; ok: boolean; v: { code: string } }[] = [];
  connection.onFrame((frame) => replies.push(frame as (typeof replies)[number]));
  connection.send({ t: 1, to: { kind: 'echo', id: 'x' }, b: 'not bytes', w: 1, ms: 2000 });
  connection.send({ t: 1, to: { kind: 'echo', id: 'x' }, b: new Uint8Array([0x92, 1]), w: 2, ms: 2000 });
  connection.send({ t: 0, to: { kind: 'counter', id: 'bad' }, b: new Uint8Array([0x92, 1]) });
  for (let i = 0; i < 200 && replies.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(replies.map((r) => [r.w, r.ok, r.v.code]).sort(), [[1, false, 'BAD_REQUEST'], [2, false, 'BAD_REQUEST']]);
  t.is(await server.ask<number>({ kind: 'counter', id: 'bad' }, { type: 'get' }), 0, 'the shard dropped the bad tell and serves');
});
