// The real clock's timers against its own now(): never early, whatever fraction of a ms they were set at.
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { RealClock } from './clock.js';

/** Waits (spinning) until performance.now() is past `fraction` of its current ms, where libuv's truncated loop time loses most. */
function lateInMs(fraction: number): void {
  for (let i = 0; i < 1e7 && performance.now() % 1 < fraction; i++);
}

for (const monotonic of [true, false]) {
  test(`RealClock({ monotonic: ${monotonic} }): a timer of n ms fires no earlier than now() + n`, async (t) => {
    const clock = new RealClock({ monotonic });
    const early: string[] = [];
    for (let i = 0; i < 20; i++) {
      lateInMs(0.9);
      const ms = 1 + (i % 3);
      const due = clock.now() + ms;
      await new Promise<void>((resolve) =>
        clock.setTimer(ms, () => {
          const now = clock.now();
          if (now < due) early.push(`${ms} ms timer ${(due - now).toFixed(3)} ms early`);
          resolve();
        }),
      );
    }
    t.deepEqual(early, []);
  });
}

test('RealClock: no timer fires after clearTimer, also one armed again after an early wake-up', async (t) => {
  const clock = new RealClock({ monotonic: true });
  let afterClear = 0;
  for (let i = 0; i < 20; i++) {
    lateInMs(0.9);
    let cleared = false;
    const handle = clock.setTimer(2, () => void (afterClear += cleared ? 1 : 0));
    // Set just after the clock's: it runs right after the clock's first wake-up, early (armed again) or not.
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        clock.clearTimer(handle);
        cleared = true;
        resolve();
      }, 2),
    );
  }
  await new Promise((resolve) => setTimeout(resolve, 10));
  t.is(afterClear, 0);
});

test('RealClock: a 0 ms timer runs after the current turn, before a 1 ms timeout set first; clearTimer cancels it', async (t) => {
  const clock = new RealClock({ monotonic: true });
  const order: string[] = [];
  await new Promise<void>((resolve) => {
    setTimeout(() => {
      order.push('timeout 1 ms');
      resolve();
    }, 1);
    clock.setTimer(0, () => order.push('clock 0 ms'));
    const cancelled = clock.setTimer(0, () => order.push('cancelled'));
    clock.clearTimer(cancelled);
    order.push('same turn');
  });
  t.deepEqual(order, ['same turn', 'clock 0 ms', 'timeout 1 ms']);
});
