// Tasks in every state, made over HTTP the way producers and workers make them. Claims
// run while their queue holds only the task just enqueued, so each claim takes exactly
// the task meant for it.

import { waitFor } from '../../clients/node/test/cluster.js';

const WORKER = 'ui-test-worker';

export async function seed(api, log = () => {}) {
  const ids = { succeeded: [], failed: [], queued: [], running: [], scheduled: [], cancelled: [], expired: [] };
  const enqueue = async (queue, kind, payload, extra = {}) => (await api.post('/v1/tasks', { queue, kind, payload, ...extra })).id;

  async function claimOne(queue, expectedId, leaseMs = 600_000) {
    const r = await api.post('/v1/claim', { worker: WORKER, queues: [queue], max: 1, lease_ms: leaseMs, wait_ms: 0 });
    const t = r.tasks?.[0];
    if (!t || t.id !== expectedId) throw new Error(`seed: claimed ${JSON.stringify(r.tasks)} from ${queue}, expected task ${expectedId}`);
    return t.lease.token;
  }

  async function succeeded(queue, kind, payload, result, extra) {
    const id = await enqueue(queue, kind, payload, extra);
    const token = await claimOne(queue, id);
    await api.post(`/v1/tasks/${id}/complete`, { token, result });
    ids.succeeded.push(id);
    return id;
  }

  async function failed(queue, kind, payload, message) {
    const id = await enqueue(queue, kind, payload, { max_attempts: 1 });
    const token = await claimOne(queue, id);
    await api.post(`/v1/tasks/${id}/fail`, { token, error: message, retryable: false });
    ids.failed.push(id);
    return id;
  }

  for (let i = 0; i < 3; i += 1) {
    await succeeded('emails', 'send_email', { to: `user${i}@example.com`, template: 'welcome' }, { message_id: `m-${1000 + i}` }, { group: 'tenant-42' });
  }
  await failed('emails', 'send_email', { to: 'bounce@example.com', template: 'invoice' }, 'mailbox unavailable (550)');
  await failed('emails', 'send_email', { to: 'nobody@invalid', template: 'reset' }, 'domain does not resolve');

  const runningId = await enqueue('emails', 'send_email', { to: 'slow@example.com', template: 'digest' }, { group: 'tenant-7' });
  await claimOne('emails', runningId);
  ids.running.push(runningId);

  for (let i = 0; i < 4; i += 1) ids.queued.push(await enqueue('emails', 'send_email', { to: `later${i}@example.com`, template: 'newsletter' }, { priority: i % 2 }));
  ids.scheduled.push(await enqueue('emails', 'send_email', { to: 'tomorrow@example.com', template: 'reminder' }, { delay_ms: 3_600_000 }));

  const cancelId = await enqueue('emails', 'send_email', { to: 'oops@example.com', template: 'welcome' });
  await api.post(`/v1/tasks/${cancelId}/cancel`);
  ids.cancelled.push(cancelId);

  await succeeded('reports', 'render_report', { report: 'monthly', month: '2025-10' }, { pages: 12, url: 's3://reports/2025-10.pdf' });
  await succeeded('reports', 'render_report', { report: 'weekly', week: 44 }, { pages: 3 });
  await failed('reports', 'render_report', { report: 'yearly' }, 'template missing: yearly.tex');
  for (let i = 0; i < 2; i += 1) ids.queued.push(await enqueue('reports', 'render_report', { report: 'adhoc', n: i }, { group: 'finance' }));

  // More than one page of the task list, some of it worked off, so the rates move.
  const batch = Array.from({ length: 60 }, (_, i) => ({ queue: 'thumbnails', kind: 'resize', payload: { image: `img-${i}.jpg`, width: 256 } }));
  const made = await api.post('/v1/tasks/batch', { tasks: batch });
  ids.bulk = made.results.map((r) => r.id);
  for (let round = 0; round < 2; round += 1) {
    const { tasks } = await api.post('/v1/claim', { worker: WORKER, queues: ['thumbnails'], max: 20, lease_ms: 60_000, wait_ms: 0 });
    await api.post('/v1/complete', { items: tasks.map((t) => ({ task: t.id, token: t.lease.token, result: { bytes: 20_000 + t.id } })) });
  }

  // Expired: a schedule-to-start deadline passes while its queue hands out nothing.
  await api.post('/v1/queues/media/pause');
  const expiredId = await enqueue('media', 'transcode', { src: 'clip.mov', to: 'mp4' }, { schedule_to_start_ms: 300 });
  ids.queued.push(await enqueue('media', 'transcode', { src: 'talk.mov', to: 'webm' }));
  await waitFor(`task ${expiredId} to expire`, async () => (await api.get(`/v1/tasks/${expiredId}`)).state === 'expired', 20_000, 200);
  ids.expired.push(expiredId);

  for (const [state, list] of Object.entries(ids)) {
    if (state === 'bulk') continue;
    for (const id of list) {
      const t = await api.get(`/v1/tasks/${id}`);
      if (t.state !== state) throw new Error(`seed: task ${id} is ${t.state}, expected ${state}`);
    }
  }
  log(`seeded: ${Object.entries(ids).filter(([s]) => s !== 'bulk').map(([s, l]) => `${s} ${l.join(',')}`).join('; ')}`);
  log(`seeded: ${ids.bulk.length} tasks in thumbnails, 40 of them succeeded`);
  return ids;
}
