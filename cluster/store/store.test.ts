import test, { type ExecutionContext } from 'ava';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdMissingReason, sharedEtcd, stopSharedEtcd, uniquePrefix } from '../fixtures/etcd.js';
import { EtcdStore, FileStore, MAX_KEY_LENGTH, openStore, StoreError, type Store, type StoreConfig, type StoreErrorCode } from './index.js';

test.after.always(() => stopSharedEtcd());

/** A fresh temp directory, removed when the test ends whatever its outcome. */
async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dirigent-store-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function assertCode(t: ExecutionContext, promise: Promise<unknown>, code: StoreErrorCode): Promise<void> {
  const error = await t.throwsAsync(promise, { instanceOf: StoreError });
  t.is(error?.code, code);
}

// ---- The contract, run against every implementation ----

const kinds: { kind: StoreConfig['kind']; open(t: ExecutionContext): Promise<Store> }[] = [
  { kind: 'memory', open: async () => openStore({ kind: 'memory' }) },
  { kind: 'file', open: async (t) => openStore({ kind: 'file', dir: await tempDir(t) }) },
  { kind: 'etcd', open: (t) => openEtcd(t) },
];

/** A store on the shared real etcd under a prefix of its own, closed when the test ends. */
async function openEtcd(t: ExecutionContext, prefix = uniquePrefix('store')): Promise<EtcdStore> {
  const etcd = await sharedEtcd();
  const store = (await openStore({ kind: 'etcd', endpoints: [etcd.endpoint], prefix })) as EtcdStore;
  t.teardown(() => store.close());
  return store;
}

const etcdMissing = etcdMissingReason();
if (etcdMissing) console.log(`# etcd store tests skipped: ${etcdMissing}`);

for (const { kind, open } of kinds) {
  const test_ = kind === 'etcd' && etcdMissing ? test.skip : test;
  test_(`${kind}: get of an absent key is undefined`, async (t) => {
    const store = await open(t);
    t.is(await store.get('functions/missing'), undefined);
  });

  test_(`${kind}: put then get returns an equal copy, isolated from both sides`, async (t) => {
    const store = await open(t);
    const value = { name: 'hello', scaling: { maxScale: 3 }, env: { A: '1' } };
    await store.put('functions/hello', value);
    value.scaling.maxScale = 99;
    const got = (await store.get('functions/hello')) as typeof value;
    t.deepEqual(got, { name: 'hello', scaling: { maxScale: 3 }, env: { A: '1' } });
    got.env.A = 'changed';
    t.deepEqual(await store.get('functions/hello'), { name: 'hello', scaling: { maxScale: 3 }, env: { A: '1' } });
  });

  test_(`${kind}: values round-trip as JSON (undefined fields dropped, dates become strings)`, async (t) => {
    const store = await open(t);
    await store.put('nodes/n1', { a: undefined, at: new Date(0), list: [1, 'two', null, true] });
    t.deepEqual(await store.get('nodes/n1'), { at: '1970-01-01T00:00:00.000Z', list: [1, 'two', null, true] });
    await store.put('nodes/n2', 'plain string');
    t.is(await store.get('nodes/n2'), 'plain string');
  });

  test_(`${kind}: put overwrites`, async (t) => {
    const store = await open(t);
    await store.put('dataplanes/d1', { port: 1 });
    await store.put('dataplanes/d1', { port: 2 });
    t.deepEqual(await store.get('dataplanes/d1'), { port: 2 });
  });

  test_(`${kind}: list returns the entries under a prefix, sorted by key`, async (t) => {
    const store = await open(t);
    for (const key of ['functions/b', 'nodes/x', 'functions/a', 'functions/c-1', 'functionsX', 'dataplanes/d']) {
      await store.put(key, { key });
    }
    t.deepEqual(await store.list('functions/'), [
      { key: 'functions/a', value: { key: 'functions/a' } },
      { key: 'functions/b', value: { key: 'functions/b' } },
      { key: 'functions/c-1', value: { key: 'functions/c-1' } },
    ]);
    t.deepEqual(
      (await store.list('')).map((e) => e.key),
      ['dataplanes/d', 'functions/a', 'functions/b', 'functions/c-1', 'functionsX', 'nodes/x'],
    );
    t.deepEqual(await store.list('workers/'), []);
  });

  test_(`${kind}: delete says whether the key existed`, async (t) => {
    const store = await open(t);
    await store.put('functions/a', 1);
    t.true(await store.delete('functions/a'));
    t.false(await store.delete('functions/a'));
    t.is(await store.get('functions/a'), undefined);
    t.deepEqual(await store.list('functions/'), []);
  });

  test_(`${kind}: writes counts committed puts and deletes, never reads`, async (t) => {
    const store = await open(t);
    t.is(store.writes, 0);
    await store.put('functions/a', 1);
    await store.put('functions/a', 2);
    await store.get('functions/a');
    await store.list('');
    t.is(store.writes, 2);
    await store.delete('functions/missing');
    t.is(store.writes, 2, 'deleting an absent key writes nothing');
    await store.delete('functions/a');
    t.is(store.writes, 3);
  });

  test_(`${kind}: invalid keys are rejected with STORE_INVALID_KEY`, async (t) => {
    const store = await open(t);
    const tooLong = 'k'.repeat(MAX_KEY_LENGTH + 1);
    for (const key of ['', '\uD800', tooLong, 'é'.repeat(40)]) {
      await assertCode(t, store.put(key, 1), 'STORE_INVALID_KEY');
      await assertCode(t, store.get(key), 'STORE_INVALID_KEY');
      await assertCode(t, store.delete(key), 'STORE_INVALID_KEY');
    }
    await store.put('k'.repeat(MAX_KEY_LENGTH), 1);
    await store.put('functions/übung 😀', 2);
    t.is(await store.get('functions/übung 😀'), 2);
    t.is(store.writes, 2);
  });

  test_(`${kind}: values without a JSON form are rejected with STORE_NOT_JSON and not stored`, async (t) => {
    const store = await open(t);
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    for (const value of [undefined, () => 1, 1n, cyclic]) await assertCode(t, store.put('functions/a', value), 'STORE_NOT_JSON');
    t.is(await store.get('functions/a'), undefined);
    t.is(store.writes, 0);
  });

  test_(`${kind}: a closed store rejects every call with STORE_CLOSED`, async (t) => {
    const store = await open(t);
    await store.put('functions/a', 1);
    await store.close();
    await assertCode(t, store.get('functions/a'), 'STORE_CLOSED');
    await assertCode(t, store.list(''), 'STORE_CLOSED');
    await assertCode(t, store.put('functions/a', 2), 'STORE_CLOSED');
    await assertCode(t, store.delete('functions/a'), 'STORE_CLOSED');
    await t.notThrowsAsync(store.close(), 'closing twice is harmless');
  });

  test_(`${kind}: concurrent puts all land, and the last put to a key wins`, async (t) => {
    const store = await open(t);
    await Promise.all([
      ...Array.from({ length: 50 }, (_, i) => store.put(`functions/f${String(i).padStart(2, '0')}`, { i })),
      ...Array.from({ length: 20 }, (_, i) => store.put('functions/shared', { i })),
    ]);
    t.is((await store.list('functions/f')).length, 50);
    t.deepEqual(await store.get('functions/f07'), { i: 7 });
    t.deepEqual(await store.get('functions/shared'), { i: 19 });
    t.is(store.writes, 70);
  });
}

// ---- File store only: durability, crash leftovers, on-disk layout ----

test('file: a new FileStore on the same directory finds everything again', async (t) => {
  const dir = await tempDir(t);
  const first = await FileStore.open(dir);
  await first.put('functions/a', { v: 1 });
  await first.put('functions/b', { v: 2 });
  await first.put('nodes/n1', { cpu: 4000 });
  await first.put('functions/a', { v: 3 });
  await first.delete('functions/b');
  await first.close();

  const second = await FileStore.open(dir);
  t.deepEqual(await second.list(''), [
    { key: 'functions/a', value: { v: 3 } },
    { key: 'nodes/n1', value: { cpu: 4000 } },
  ]);
  t.is(second.writes, 0, 'the counter is per open store');
  await second.close();
});

test('file: one file per key, named by the percent-encoded key, and no temp file left behind', async (t) => {
  const dir = await tempDir(t);
  const store = await FileStore.open(dir);
  await store.put('functions/hello', { a: 1 });
  await store.put('dataplanes/dp-1', 'x');
  t.deepEqual((await readdir(dir)).sort(), ['dataplanes%2Fdp-1.json', 'functions%2Fhello.json']);
  t.deepEqual(JSON.parse(await readFile(join(dir, 'functions%2Fhello.json'), 'utf8')), { key: 'functions/hello', value: { a: 1 } });
  await store.delete('dataplanes/dp-1');
  t.deepEqual(await readdir(dir), ['functions%2Fhello.json']);
  await store.close();
});

test('file: a half-written temp file from a crash is removed at open and the last committed value stays', async (t) => {
  const dir = await tempDir(t);
  const store = await FileStore.open(dir);
  await store.put('functions/a', { v: 'committed' });
  await store.close();
  // A crash between writing the temp file and the rename: a truncated new value next to the old one.
  await writeFile(join(dir, 'functions%2Fa.json.4242.7.tmp'), '{"key":"functions/a","value":{"v":"new');
  // A crash right after creating the temp file for a key that was never committed.
  await writeFile(join(dir, 'functions%2Fb.json.4242.8.tmp'), '');

  const reopened = await FileStore.open(dir);
  t.deepEqual(await reopened.list(''), [{ key: 'functions/a', value: { v: 'committed' } }]);
  t.deepEqual(await readdir(dir), ['functions%2Fa.json']);
  await reopened.close();
});

test('file: concurrent puts all land on disk and survive a restart', async (t) => {
  const dir = await tempDir(t);
  const store = await FileStore.open(dir);
  await Promise.all([
    ...Array.from({ length: 100 }, (_, i) => store.put(`functions/f${i}`, { i })),
    ...Array.from({ length: 30 }, (_, i) => store.put('functions/shared', { i })),
  ]);
  await store.close();
  const reopened = await FileStore.open(dir);
  t.is((await reopened.list('functions/f')).length, 100);
  t.deepEqual(await reopened.get('functions/f42'), { i: 42 });
  t.deepEqual(await reopened.get('functions/shared'), { i: 29 });
  t.false((await readdir(dir)).some((name) => name.endsWith('.tmp')));
  await reopened.close();
});

test('file: close waits for writes already accepted', async (t) => {
  const dir = await tempDir(t);
  const store = await FileStore.open(dir);
  const pending = Array.from({ length: 10 }, (_, i) => store.put(`nodes/n${i}`, { i }));
  await store.close();
  await Promise.all(pending);
  const reopened = await FileStore.open(dir);
  t.is((await reopened.list('nodes/')).length, 10);
  await reopened.close();
});

test('file: a failed write rejects its caller only; later writes go on', async (t) => {
  const dir = await tempDir(t);
  const store = await FileStore.open(dir);
  // A non-empty directory where the value file should go makes the rename fail.
  await mkdir(join(dir, 'functions%2Fblocked.json', 'inside'), { recursive: true });
  const blocked = store.put('functions/blocked', 1);
  const after = store.put('functions/after', 2);
  await t.throwsAsync(blocked);
  await t.notThrowsAsync(after);
  t.is(await store.get('functions/blocked'), undefined);
  t.is(await store.get('functions/after'), 2);
  t.is(store.writes, 1);
  t.false((await readdir(dir)).some((name) => name.endsWith('.tmp')), 'the failed write cleaned its temp file');
  await store.close();
});

test('file: a damaged committed file stops the open with STORE_CORRUPT rather than losing state', async (t) => {
  const cases: [string, string][] = [
    ['functions%2Fa.json', '{"key":"functions/a","value":'],
    ['functions%2Fa.json', '{"value":1}'],
    ['functions%2Fa.json', '{"key":"functions/b","value":1}'],
  ];
  for (const [name, content] of cases) {
    const dir = await tempDir(t);
    await writeFile(join(dir, name), content);
    const error = await t.throwsAsync(FileStore.open(dir), { instanceOf: StoreError });
    t.is(error?.code, 'STORE_CORRUPT', content);
  }
});

test('file: open creates the directory and ignores files that are not the store\'s', async (t) => {
  const dir = join(await tempDir(t), 'nested', 'state');
  const store = await FileStore.open(dir);
  await store.put('functions/a', 1);
  await store.close();
  await writeFile(join(dir, 'README'), 'operator notes');
  const reopened = await FileStore.open(dir);
  t.deepEqual(await reopened.list(''), [{ key: 'functions/a', value: 1 }]);
  await reopened.close();
  t.is(await readFile(join(dir, 'README'), 'utf8'), 'operator notes');
});

const etcdTest = etcdMissing ? test.skip : test;

etcdTest('etcd: a second store on the same prefix sees what the first wrote (the replicas share it)', async (t) => {
  const prefix = uniquePrefix('shared');
  const a = await openEtcd(t, prefix);
  const b = await openEtcd(t, prefix);
  await a.put('functions/f', { name: 'f' });
  t.deepEqual(await b.get('functions/f'), { name: 'f' });
  t.deepEqual(await b.list('functions/'), [{ key: 'functions/f', value: { name: 'f' } }]);
});

etcdTest('etcd: a fenced view writes only while the leader key keeps the create revision it was won with', async (t) => {
  const store = await openEtcd(t);
  await store.client.put(`${store.prefix}leader`).value('cp1');
  const term = Number((await store.client.get(`${store.prefix}leader`).exec()).kvs[0]!.create_revision);
  const leader = store.fenced('leader', term);
  await leader.put('functions/f', { v: 1 });
  t.deepEqual(await store.get('functions/f'), { v: 1 });
  // A new leader: the key is deleted and created again, at a higher revision.
  await store.client.delete().key(`${store.prefix}leader`);
  await store.client.put(`${store.prefix}leader`).value('cp2');
  await assertCode(t, leader.put('functions/f', { v: 2 }), 'STORE_FENCED');
  await assertCode(t, leader.delete('functions/f'), 'STORE_FENCED');
  t.deepEqual(await store.get('functions/f'), { v: 1 });
});
