// A producer: enqueue a task and await its result (taskdist's `await put(task)`).
import { Client } from 'taskswarm';

const client = new Client(); // TASKSWARM_SERVERS, or the local dev cluster
const handle = await client.submit({ queue: 'images', kind: 'resize', payload: { url: 'https://example.com/a.png', width: 200 } });
console.log('enqueued task', handle.id);
const result = await handle.result(); // throws TaskFailedError if it failed for good
console.log('resized:', result);
