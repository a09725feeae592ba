// One Node.js worker against a running cluster (TASKSWARM_SERVERS, default the local dev
// cluster): loads N tasks in batches, then runs them through one Worker with a trivial
// handler and prints the lifecycles/s it sustained. Prints a number; asserts nothing.
//   node bench-worker.js [TASKS] [SLOTS]
import { Client, Worker } from './src/index.js';

const tasks = Number(process.argv[2] ?? 5000);
const slots = Number(process.argv[3] ?? 16);
const queue = `bench-node-${process.pid}`;
const client = new Client();
for (let i = 0; i < tasks; i += 1000) {
  const n = Math.min(1000, tasks - i);
  await client.enqueueBatch(Array.from({ length: n }, (_, k) => ({ queue, kind: 'noop', payload: { n: i + k } })));
}
let done = 0;
let finished;
const worker = new Worker(client, { queues: [queue], slots, handleSignals: false });
worker.handle('noop', (payload) => {
  done += 1;
  return payload;
});
const started = performance.now();
const running = worker.run();
// Until every task is acknowledged succeeded (the worker's own shutdown, which waits
// out claims still long-polling, is not counted).
for (;;) {
  const q = (await client.queues()).find((x) => x.name === queue);
  if (q && q.counts.succeeded === tasks) break;
  await new Promise((r) => setTimeout(r, 20));
}
finished = performance.now();
worker.close();
await running;
const s = (finished - started) / 1000;
console.log(`one Node.js worker, ${slots} slots: ${tasks} tasks in ${s.toFixed(1)} s = ${(tasks / s).toFixed(0)} lifecycles/s (claim, run, complete; loading excluded)`);
