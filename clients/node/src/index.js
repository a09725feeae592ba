// taskswarm for Node.js: a client for producers and operators, and a worker runtime.
export { Client, TaskHandle, TaskFailedError, DEFAULT_SERVERS, FINISHED_STATES } from './client.js';
export { Worker } from './worker.js';
export {
  TaskswarmError,
  RejectedError,
  IndeterminateError,
  UnavailableError,
  PermanentError,
  RetryableError,
} from './errors.js';
