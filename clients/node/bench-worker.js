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
const worker = new Worker(client, { queues: [queue], slots, handleSignals: false });
worker.handle('noop', (payload) => {
  done += 1;
  if (done === tasks) setImmediate(() => worker.close());
  return payload;
});
const started = performance.now();
await worker.run();
const s = (performance.now() - started) / 1000;
console.log(`one Node.js worker, ${slots} slots: ${tasks} tasks in ${s.toFixed(1)} s = ${(tasks / s).toFixed(0)} lifecycles/s (claim, run, complete; loading excluded)`);
