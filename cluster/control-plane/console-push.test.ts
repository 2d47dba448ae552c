// ConsolePush over a real HTTP server and real event streams, with a fake view reader: one read per topic
// whatever the number of subscribers, nothing sent while a view does not change, a change pushed, a view
// nobody watches no longer read, errors sent as events.
import test from 'ava';
import { createServer, type Server } from 'node:http';
import { ConsolePush, type Watch } from './console-push.js';

/** Short periods keep the test quick; every wait below is bounded well above them. */
const PUSH_MS = 40;
const RESEND_MS = 60_000;

interface Harness {
  readonly push: ConsolePush;
  readonly url: string;
  readonly reads: Map<string, number>;
  value: number;
}

async function start(t: { teardown(fn: () => Promise<void> | void): void }): Promise<Harness> {
  const reads = new Map<string, number>();
  const h: { push?: ConsolePush; url?: string; reads: Map<string, number>; value: number } = { reads, value: 1 };
  const push = new ConsolePush(
    async (watch: Watch) => {
      reads.set(watch.view, (reads.get(watch.view) ?? 0) + 1);
      if (watch.view === 'broken') throw Object.assign(new Error('no such thing'), { code: 'NOT_FOUND' });
      return { at: Date.now(), view: watch.view, value: h.value, query: watch.params.toString() };
    },
    { pushMs: PUSH_MS, resendMs: RESEND_MS },
  );
  const server: Server = createServer((req, res) => {
    const params = new URL(req.url ?? '/', 'http://x').searchParams;
    push.open(params.getAll('watch').map((w) => ({ view: w.split('?')[0]!, params: new URLSearchParams(w.split('?')[1] ?? '') })), res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    push.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  h.push = push;
  h.url = `http://127.0.0.1:${address.port}/`;
  return h as Harness;
}

interface Event {
  readonly name: string;
  readonly data: any;
}

/** An open event stream: its events so far, and a way to wait for one. */
async function stream(url: string, watches: string[]): Promise<{ events: Event[]; next(test: (e: Event) => boolean, ms?: number): Promise<Event>; close(): void }> {
  const query = new URLSearchParams(watches.map((w): [string, string] => ['watch', w]));
  const abort = new AbortController();
  const res = await fetch(`${url}?${query}`, { signal: abort.signal });
  const events: Event[] = [];
  const waiters: { test: (e: Event) => boolean; resolve: (e: Event) => void }[] = [];
  void (async () => {
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += Buffer.from(chunk).toString('utf8');
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const name = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (name === undefined || data === undefined) continue;
          const event = { name, data: JSON.parse(data) };
          events.push(event);
          for (const w of waiters.filter((x) => x.test(event))) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(event);
          }
        }
      }
    } catch {
      // aborted by close()
    }
  })();
  return {
    events,
    next: (test, ms = 5000) =>
      new Promise((resolve, reject) => {
        const found = events.find(test);
        if (found) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`no such event within ${ms} ms; got ${JSON.stringify(events)}`)), ms);
        waiters.push({ test, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      }),
    close: () => abort.abort(),
  };
}

const until = async (what: string, check: () => boolean, ms = 5000): Promise<void> => {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

test('each watched view arrives, tagged with its index; a change is pushed, an unchanged view is not sent again', async (t) => {
  const h = await start(t);
  const s = await stream(h.url, ['functions', 'actors?sort=processed']);
  t.teardown(() => s.close());
  const first = await s.next((e) => e.name === 'update' && e.data.i === 0);
  t.is(first.data.body.view, 'functions');
  t.is((await s.next((e) => e.data.i === 1)).data.body.query, 'sort=processed');
  const reads = h.reads.get('functions') ?? 0;
  await until('several more reads', () => (h.reads.get('functions') ?? 0) >= reads + 3);
  t.is(s.events.filter((e) => e.data.i === 0).length, 1, 'unchanged (its `at` aside): not sent again');
  h.value = 2;
  t.is((await s.next((e) => e.data.i === 0 && e.data.body.value === 2)).data.body.view, 'functions');
});

test('streams watching the same view share its reads; a view nobody watches is no longer read', async (t) => {
  const h = await start(t);
  const a = await stream(h.url, ['kinds']);
  const b = await stream(h.url, ['kinds']);
  await a.next((e) => e.name === 'update');
  await b.next((e) => e.name === 'update');
  t.deepEqual(h.push.load, { streams: 2, topics: 1 });
  const before = h.reads.get('kinds') ?? 0;
  await new Promise((resolve) => setTimeout(resolve, PUSH_MS * 10));
  const reads = (h.reads.get('kinds') ?? 0) - before;
  // One reader for both: about one read per PUSH_MS (timers drift late on a loaded machine, never early).
  t.true(reads <= 11, `${reads} reads in ${PUSH_MS * 10} ms`);
  a.close();
  b.close();
  await until('both streams gone', () => h.push.load.streams === 0);
  t.deepEqual(h.push.load, { streams: 0, topics: 0 });
  const after = h.reads.get('kinds') ?? 0;
  await new Promise((resolve) => setTimeout(resolve, PUSH_MS * 5));
  t.true((h.reads.get('kinds') ?? 0) <= after + 1, 'no reads once nobody watches (one may have been under way)');
});

test('a view that fails is sent as a view-error event; the others keep coming', async (t) => {
  const h = await start(t);
  const s = await stream(h.url, ['broken', 'cluster']);
  t.teardown(() => s.close());
  const error = await s.next((e) => e.name === 'view-error');
  t.deepEqual(error.data, { i: 0, error: { code: 'NOT_FOUND', message: 'no such thing' } });
  t.is((await s.next((e) => e.name === 'update')).data.i, 1);
});

test('close ends every stream', async (t) => {
  const h = await start(t);
  const s = await stream(h.url, ['cluster']);
  await s.next((e) => e.name === 'update');
  h.push.close();
  await until('the stream ended', () => h.push.load.streams === 0);
  t.is(h.push.load.topics, 0);
});
