// Compiled by `npm run typecheck` only: the shipped types describe the API.
import { Client, Worker, RejectedError, type TaskView } from 'taskswarm';

async function main(): Promise<void> {
  const client = new Client({ servers: ['http://127.0.0.1:7001'], apiToken: 'x' });
  const r = await client.enqueue({ queue: 'q', kind: 'k', payload: { n: 1 }, priority: 2, delay_ms: 10 });
  const view: TaskView = await client.wait(r.id, 1000);
  const n: number = view.attempt;
  for await (const e of client.taskEvents(r.id)) console.log(e.event, n);
  const w = new Worker(client, { queues: ['q'], slots: 2, reserved: [{ minPriority: 5, slots: 1 }] });
  w.handle('k', async (payload: { n: number }, ctx) => {
    ctx.progress({ at: payload.n });
    return { ok: !ctx.signal.aborted, token: ctx.token };
  });
  try {
    await client.cancel(1);
  } catch (e) {
    if (e instanceof RejectedError) console.log(e.code, e.status);
  }
  await w.run();
}
void main;
