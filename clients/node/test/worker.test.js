// The worker runtime against a real 3-node cluster.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Client, PermanentError, RejectedError, TaskFailedError, Worker } from '../src/index.js';
import { Cluster, waitFor } from './cluster.js';

let cluster;
let client;
before(async () => {
  cluster = await Cluster.start(3);
  client = new Client({ servers: cluster.urls });
});
after(async () => {
  await cluster?.stop();
});

function startWorker(options, setup) {
  const worker = new Worker(client, { handleSignals: false, ...options });
  setup(worker);
  const running = worker.run();
  return { worker, stop: async () => { worker.close(); await running; } };
}

test('a worker with several slots runs two kinds and every result reaches its producer', async () => {
  let concurrent = 0;
  let most = 0;
  const { stop } = startWorker({ queues: ['w1'], slots: 4 }, (w) => {
    const slow = async (payload) => {
      concurrent += 1;
      most = Math.max(most, concurrent);
      await sleep(50);
      concurrent -= 1;
      return payload;
    };
    w.handle('double', async (p) => ({ n: (await slow(p)).n * 2 }));
    w.handle('negate', async (p) => ({ n: -(await slow(p)).n }));
  });
  const handles = await Promise.all(
    Array.from({ length: 20 }, (_, n) => client.submit({ queue: 'w1', kind: n % 2 ? 'negate' : 'double', payload: { n } })),
  );
  const results = await Promise.all(handles.map((h) => h.result(30_000)));
  results.forEach((r, n) => assert.deepEqual(r, { n: n % 2 ? -n : n * 2 }));
  assert.ok(most > 1, `ran ${most} at once`);
  await stop();
});

test('progress reaches an event-stream subscriber', async () => {
  let release;
  const gate = new Promise((r) => (release = r));
  const { stop } = startWorker({ queues: ['w2'], slots: 1, leaseMs: 3000 }, (w) => {
    w.handle('k', async (_p, ctx) => {
      ctx.progress({ pct: 50 });
      await gate;
      return 'ok';
    });
  });
  const { id } = await client.enqueue({ queue: 'w2', kind: 'k' });
  for await (const e of client.taskEvents(id)) {
    if (e.event === 'progress') {
      assert.deepEqual(e.progress, { pct: 50 });
      release();
    }
  }
  assert.equal((await client.get(id)).state, 'succeeded');
  await stop();
});

test('a cancel reaches the running handler through its signal', async () => {
  let reason;
  const { stop } = startWorker({ queues: ['w3'], leaseMs: 1500 }, (w) => {
    w.handle('k', (_p, ctx) =>
      new Promise((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => {
          reason = ctx.signal.reason.reason;
          reject(ctx.signal.reason);
        });
      }),
    );
  });
  const { id } = await client.enqueue({ queue: 'w3', kind: 'k' });
  await waitFor('the task to run', async () => (await client.get(id)).state === 'running');
  await client.cancel(id);
  const task = await client.wait(id, 10_000);
  assert.equal(task.state, 'cancelled');
  assert.equal(reason, 'cancelled');
  await stop();
});

test('a handler that throws is retried, then dead-lettered; a permanent error is not retried', async () => {
  let calls = 0;
  const { stop } = startWorker({ queues: ['w4'], slots: 2 }, (w) => {
    w.handle('flaky', async () => {
      calls += 1;
      throw new Error('boom');
    });
    w.handle('bad', async () => {
      throw new PermanentError('no such user', { code: 'bad_input' });
    });
  });
  const flaky = await client.submit({ queue: 'w4', kind: 'flaky', max_attempts: 2, backoff: { initial_ms: 10, multiplier: 1, max_ms: 10 } });
  await assert.rejects(flaky.result(20_000), (e) => {
    assert.ok(e instanceof TaskFailedError);
    assert.equal(e.state, 'failed');
    assert.equal(e.task.attempt, 2);
    return true;
  });
  assert.equal(calls, 2);
  const bad = await client.submit({ queue: 'w4', kind: 'bad', max_attempts: 5 });
  const task = await bad.wait(20_000);
  assert.equal(task.state, 'failed');
  assert.equal(task.attempt, 1);
  assert.equal(task.error.code, 'bad_input');
  await stop();
});

test('after its lease is lost the handler signal fires and its stale token is refused', async () => {
  let ctxSeen;
  let reason;
  const { stop } = startWorker({ queues: ['w5'], leaseMs: 600 }, (w) => {
    w.handle('k', (_p, ctx) => {
      ctxSeen = ctx;
      return new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          reason = ctx.signal.reason.reason;
          resolve('too late');
        });
      });
    });
  });
  const { id } = await client.enqueue({ queue: 'w5', kind: 'k' });
  await waitFor('the handler to start', () => ctxSeen);
  const stale = ctxSeen.token;
  // Someone else ends this lease (as an expiry would): the task is queued again.
  await client.release(id, stale, 60_000);
  await waitFor('the signal', () => reason);
  assert.equal(reason, 'lease_lost');
  await assert.rejects(client.complete(id, stale, 'late'), (e) => e instanceof RejectedError && e.code === 'lease_lost');
  assert.notEqual((await client.get(id)).state, 'succeeded');
  await stop();
});

test('graceful shutdown lets running handlers finish within the grace, then releases the rest', async () => {
  const { worker, stop } = startWorker({ queues: ['w6'], slots: 2, graceMs: 300 }, (w) => {
    w.handle('quick', async () => {
      await sleep(50);
      return 'done';
    });
    w.handle('stuck', (_p, ctx) => new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))));
  });
  const quick = await client.enqueue({ queue: 'w6', kind: 'quick', priority: 1 });
  const stuck = await client.enqueue({ queue: 'w6', kind: 'stuck' });
  await waitFor('both to run', async () => (await client.get(stuck.id)).state === 'running');
  await stop();
  assert.equal((await client.wait(quick.id, 5000)).state, 'succeeded');
  const back = await client.get(stuck.id);
  assert.equal(back.state, 'queued', 'released, not failed');
  assert.equal(back.attempt, 0, 'a release gives the attempt back');
  assert.ok(worker.stats.released >= 1);
});

test('the leader is killed while 100 tasks run through the worker: every task succeeds', async () => {
  const { stop } = startWorker({ queues: ['w7'], slots: 8, leaseMs: 3000 }, (w) => {
    w.handle('k', async (p) => {
      await sleep(20);
      return p;
    });
  });
  const results = await client.enqueueBatch(Array.from({ length: 100 }, (_, n) => ({ queue: 'w7', kind: 'k', payload: { n } })));
  const ids = results.map((r) => r.id);
  await waitFor('some progress', async () => {
    const q = (await client.queues()).find((x) => x.name === 'w7');
    return q && q.counts.succeeded >= 10;
  });
  await cluster.kill(await cluster.leader());
  for (const id of ids) {
    const t = await client.wait(id, 60_000);
    assert.equal(t.state, 'succeeded', `task ${id}: ${JSON.stringify(t)}`);
  }
  await stop();
});
