// The client against a real 3-node cluster: redirects from a follower, idempotent
// retries, refusals with the server's code, waiting for results, event streams.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Client, RejectedError, UnavailableError } from '../src/index.js';
import { Cluster } from './cluster.js';

let cluster;
before(async () => {
  cluster = await Cluster.start(3);
});
after(async () => {
  await cluster?.stop();
});

test('an enqueue through a follower reaches the leader (the client follows the 307)', async () => {
  const leader = await cluster.leader();
  const follower = cluster.follower(leader);
  const client = new Client({ servers: [cluster.url(follower)] });
  const r = await client.enqueue({ queue: 'c1', kind: 'k', payload: { n: 1 } });
  assert.equal(r.created, true);
  const direct = new Client({ servers: [cluster.url(leader)] });
  const task = await direct.get(r.id);
  assert.deepEqual(task.payload, { n: 1 });
  assert.equal(task.state, 'queued');
});

test('a retried enqueue with the same idempotency key returns the first task', async () => {
  const client = new Client({ servers: cluster.urls });
  const first = await client.enqueue({ queue: 'c2', kind: 'k', idempotency_key: 'same-key' });
  const again = await client.enqueue({ queue: 'c2', kind: 'k', idempotency_key: 'same-key' });
  assert.equal(again.id, first.id);
  assert.equal(first.created, true);
  assert.equal(again.created, false);
  // And keys made by the client are unique per call.
  const a = await client.enqueue({ queue: 'c2', kind: 'k' });
  const b = await client.enqueue({ queue: 'c2', kind: 'k' });
  assert.notEqual(a.id, b.id);
});

test('bad input is rejected with the server code and changes nothing', async () => {
  const client = new Client({ servers: cluster.urls });
  const before = (await client.queues()).length;
  await assert.rejects(client.enqueue({ queue: 'no spaces allowed!', kind: 'k' }), (e) => {
    assert.ok(e instanceof RejectedError, String(e));
    assert.equal(e.code, 'invalid_request');
    assert.equal(e.status, 400);
    return true;
  });
  await assert.rejects(client.enqueue({ queue: 'c3', kind: 'k', payload: { big: 'x'.repeat(300 * 1024) } }), (e) => {
    assert.ok(e instanceof RejectedError, String(e));
    assert.equal(e.code, 'payload_too_large');
    return true;
  });
  assert.equal((await client.queues()).length, before);
});

test('no reachable server is unavailable, not a hang', async () => {
  // A port nothing listens on: connection refused, so nothing was sent anywhere.
  const net = await import('node:net');
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
  const client = new Client({ servers: [`http://127.0.0.1:${port}`], retryBudgetMs: 500 });
  await assert.rejects(client.cluster(), UnavailableError);
});

test('a task history streams, then its new events until it finishes', async () => {
  const client = new Client({ servers: cluster.urls });
  const { id } = await client.enqueue({ queue: 'c4', kind: 'k' });
  const seen = [];
  const reading = (async () => {
    for await (const e of client.taskEvents(id)) seen.push(e.event);
  })();
  const [claimed] = await client.claim({ worker: 'w', queues: ['c4'], max: 1, wait_ms: 2000 });
  assert.equal(claimed.id, id);
  await client.heartbeat('w', [{ task: id, token: claimed.lease.token, progress: { half: true } }]);
  await client.complete(id, claimed.lease.token, { done: 1 });
  await reading;
  assert.deepEqual(seen, ['enqueued', 'claimed', 'progress', 'succeeded']);
  const task = await client.wait(id, 1000);
  assert.deepEqual(task.result, { done: 1 });
});

test('broadcasts resume after the last one seen', async () => {
  const client = new Client({ servers: cluster.urls });
  const seq = await client.broadcast('news', { n: 1 });
  await client.broadcast('news', { n: 2 });
  const ac = new AbortController();
  const got = [];
  for await (const m of client.broadcasts({ after: seq, signal: ac.signal })) {
    got.push(m.message.n);
    if (m.message.n === 2) break;
  }
  assert.deepEqual(got, [2]);
});

test('a redirect to a leader name that does not resolve fails soon, naming it', async () => {
  const http = await import('node:http');
  const leader = 'http://taskswarm-leader.invalid:7001';
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits += 1;
    res.writeHead(307, { location: leader + req.url, 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'not_leader', message: 'not the leader', leader_id: 2, leader_addr: leader } }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const client = new Client({ servers: [`http://127.0.0.1:${server.address().port}`] });
  await assert.rejects(client.enqueue({ kind: 'k' }), (e) => {
    assert.ok(e instanceof UnavailableError, String(e));
    assert.match(e.message, /taskswarm-leader\.invalid/);
    assert.match(e.message, /--forward-to-leader/);
    assert.ok(e.elapsedMs < 15_000, `gave up on the name, not at the end of the budget: ${e.elapsedMs}`);
    return true;
  });
  assert.ok(hits >= 3);
  server.close();
});
