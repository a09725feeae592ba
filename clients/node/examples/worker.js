// A worker: handlers by kind, 4 at a time; Ctrl-C finishes running tasks, then stops.
import { Client, Worker, PermanentError } from 'taskswarm';

const worker = new Worker(new Client(), { queues: ['images'], slots: 4 });
worker.handle('resize', async ({ url, width }, ctx) => {
  if (!url) throw new PermanentError('no url', { code: 'bad_input' }); // dead-lettered, no retry
  ctx.progress({ step: 'downloading' });
  const res = await fetch(url, { signal: ctx.signal }); // ctx.signal fires on cancel or lease loss
  return { url, width, bytes: (await res.arrayBuffer()).byteLength };
});
await worker.run();
