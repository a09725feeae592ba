// The taskswarm client: every endpoint a producer, worker or operator uses.
//
// Request and response objects use the HTTP API's own field names (snake_case, as in
// the API reference), so what you read in the server's documentation is what you write
// here; options of this library itself are camelCase.

import { randomUUID } from 'node:crypto';

import { RejectedError, TaskswarmError } from './errors.js';
import { readSse } from './sse.js';
import { Transport, sleep } from './transport.js';

export const DEFAULT_SERVERS = ['http://127.0.0.1:7001', 'http://127.0.0.1:7002', 'http://127.0.0.1:7003'];
export const SERVERS_ENV = 'TASKSWARM_SERVERS';
/** Longest single long-poll of `wait`; longer waits are several. */
export const WAIT_PIECE_MS = 30_000;
/** A node that has not applied a just-enqueued task yet answers its stream `404`: asked
 * again (on the next node) this many times, every STREAM_RETRY_MIN_MS, before the 404
 * stands. */
export const STREAM_NOT_FOUND_RETRIES = 20;
/** Reconnect delays of an event stream (doubling up to the max). */
export const STREAM_RETRY_MIN_MS = 100;
export const STREAM_RETRY_MAX_MS = 2_000;

export const FINISHED_STATES = new Set(['succeeded', 'failed', 'cancelled', 'expired']);

/** A task that ended without succeeding, as `TaskHandle.result()` reports it. */
export class TaskFailedError extends TaskswarmError {
  constructor(task) {
    const why = task.error ? `${task.error.code}: ${task.error.message}` : task.state;
    super(`task ${task.id} ${task.state}: ${why}`);
    this.task = task;
    this.state = task.state;
    this.code = task.error?.code ?? task.state;
  }
}

function parseServers(servers) {
  const list = servers ?? process.env[SERVERS_ENV] ?? DEFAULT_SERVERS;
  const nodes = (Array.isArray(list) ? list : String(list).split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of nodes) {
    if (!/^https?:\/\//.test(n)) throw new TypeError(`taskswarm: server ${JSON.stringify(n)} must start with http:// or https://`);
  }
  return nodes;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export class Client {
  /**
   * @param {{servers?: string[] | string, apiToken?: string, requestTimeoutMs?: number,
   *          retryBudgetMs?: number, backoffInitialMs?: number, backoffMaxMs?: number}} [options]
   */
  constructor(options = {}) {
    this.servers = parseServers(options.servers);
    const apiToken = options.apiToken ?? process.env.TASKSWARM_API_TOKEN;
    this.transport = new Transport(this.servers, {
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      retryBudgetMs: options.retryBudgetMs ?? 30_000,
      backoffInitialMs: options.backoffInitialMs ?? 50,
      backoffMaxMs: options.backoffMaxMs ?? 2_000,
      apiToken: apiToken || undefined,
    });
    this.keyPrefix = randomUUID();
    this.keyCounter = 0;
  }

  /** A fresh idempotency key, unique to this client. */
  newKey() {
    this.keyCounter += 1;
    return `${this.keyPrefix}-${this.keyCounter}`;
  }

  call(method, path, body, options) {
    return this.transport.call(method, path, body, options);
  }

  // ---- producers -----------------------------------------------------------------

  /**
   * Enqueues one task. An idempotency key is added when absent, so the retries this
   * client makes never create a second task.
   */
  enqueue(task) {
    return this.call('POST', '/v1/tasks', { ...task, idempotency_key: task.idempotency_key ?? this.newKey() });
  }

  /** Enqueues several tasks in one request; one result per task, in order. */
  async enqueueBatch(tasks) {
    const body = { tasks: tasks.map((t) => ({ ...t, idempotency_key: t.idempotency_key ?? this.newKey() })) };
    const resp = await this.call('POST', '/v1/tasks/batch', body);
    return resp.results;
  }

  /** Enqueues and returns a handle whose `result()` resolves with the task's result. */
  async submit(task) {
    const r = await this.enqueue(task);
    return new TaskHandle(this, r.id, r);
  }

  /** @param {number} id @param {{consistency?: 'linearizable' | 'local'}} [options] */
  get(id, options = {}) {
    return this.call('GET', `/v1/tasks/${id}${query({ consistency: options.consistency })}`);
  }

  /** Waits until the task is finished (or `timeoutMs` passes) and returns it as it is then. */
  async wait(id, timeoutMs = 60_000, options = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const piece = Math.max(0, Math.min(deadline - Date.now(), WAIT_PIECE_MS));
      const task = await this.call('GET', `/v1/tasks/${id}?wait_ms=${piece}`, undefined, {
        timeoutMs: this.transport.config.requestTimeoutMs + piece,
        signal: options.signal,
      });
      if (FINISHED_STATES.has(task.state) || piece === 0) return task;
    }
  }

  /** The task's stored history. */
  history(id) {
    return this.call('GET', `/v1/tasks/${id}/events`);
  }

  /** @param {{queue?: string, state?: string, after?: number, limit?: number}} [filter] */
  list(filter = {}) {
    return this.call('GET', `/v1/tasks${query({ limit: 100, ...filter })}`);
  }

  cancel(id) {
    return this.call('POST', `/v1/tasks/${id}/cancel`, {});
  }

  requeue(id) {
    return this.call('POST', `/v1/tasks/${id}/requeue`, {});
  }

  async queues() {
    return (await this.call('GET', '/v1/queues')).queues;
  }

  pause(queue) {
    return this.call('POST', `/v1/queues/${encodeURIComponent(queue)}/pause`, {});
  }

  resume(queue) {
    return this.call('POST', `/v1/queues/${encodeURIComponent(queue)}/resume`, {});
  }

  /** Sends `message` to every subscriber of `channel`; returns its sequence number. */
  async broadcast(channel, message) {
    return (await this.call('POST', '/v1/broadcast', { channel, message })).seq;
  }

  cluster() {
    return this.call('GET', '/v1/cluster');
  }

  // ---- workers (the Worker class uses these; available for custom loops) -------------

  /** Claims tasks, long-polling up to `req.wait_ms`. Sent at most once: a repeated claim
   * could lease tasks nobody works on. */
  async claim(req) {
    const resp = await this.call('POST', '/v1/claim', req, {
      idempotent: false,
      timeoutMs: this.transport.config.requestTimeoutMs + (req.wait_ms ?? 0),
    });
    return resp.tasks;
  }

  /** Renews every lease of a worker in one request; one result per lease. */
  async heartbeat(worker, leases) {
    return (await this.call('POST', '/v1/heartbeat', { worker, leases })).results;
  }

  /** Completing twice with the same token is acknowledged twice, so this retries. */
  complete(id, token, result = null) {
    return this.call('POST', `/v1/tasks/${id}/complete`, { token, result });
  }

  async completeBatch(items) {
    return (await this.call('POST', '/v1/complete', { items })).results;
  }

  /** @param {{token: number, error: string, code?: string, retryable?: boolean, retry_after_ms?: number}} req */
  fail(id, req) {
    return this.call('POST', `/v1/tasks/${id}/fail`, req, { idempotent: false });
  }

  release(id, token, delayMs = 0) {
    return this.call('POST', `/v1/tasks/${id}/release`, { token, delay_ms: delayMs }, { idempotent: false });
  }

  // ---- event streams ---------------------------------------------------------------

  /** Every lifecycle event applied from now on (optionally of one queue or group), as an
   * async iterator. Reconnects to another node when one goes away; events applied while
   * no stream was open are not replayed (a `lagged` event says when the server dropped
   * some for a slow reader). */
  lifecycleEvents(filter = {}, options = {}) {
    return this.stream(`/v1/events${query(filter)}`, { ...options, resume: false });
  }

  /** A task's history, then its new events until it finishes; resumes after a
   * reconnect from the last event seen. */
  taskEvents(id, options = {}) {
    return this.stream(`/v1/tasks/${id}/events`, { ...options, resume: true, endsOn: FINISHED_STATES });
  }

  /** Broadcast messages after `after` (a sequence number), then new ones; resumes after
   * a reconnect. */
  broadcasts(options = {}) {
    return this.stream(`/v1/broadcast${query({ after: options.after })}`, { ...options, resume: true, broadcast: true });
  }

  async *stream(path, options) {
    const signal = options.signal;
    let lastId;
    let delay = STREAM_RETRY_MIN_MS;
    let node = 0;
    let notFound = 0;
    while (!signal?.aborted) {
      const base = this.servers[node % this.servers.length];
      let resp;
      try {
        const headers = { accept: 'text/event-stream', ...this.transport.headers(false) };
        if (options.resume && lastId !== undefined) headers['last-event-id'] = lastId;
        resp = await fetch(base + path, { headers, signal, redirect: 'follow' });
      } catch (e) {
        if (signal?.aborted) return;
        node += 1;
        await sleep(delay, signal).catch(() => {});
        delay = Math.min(delay * 2, STREAM_RETRY_MAX_MS);
        continue;
      }
      if (!resp.ok) {
        const body = await resp.json().catch(() => null);
        if (resp.status === 404 && notFound < STREAM_NOT_FOUND_RETRIES) {
          notFound += 1;
          node += 1;
          await sleep(STREAM_RETRY_MIN_MS, signal).catch(() => {});
          continue;
        }
        if (resp.status === 503 || resp.status >= 500) {
          node += 1;
          await sleep(delay, signal).catch(() => {});
          delay = Math.min(delay * 2, STREAM_RETRY_MAX_MS);
          continue;
        }
        throw new RejectedError(resp.status, body?.error?.code ?? 'http_error', body?.error?.message ?? '');
      }
      delay = STREAM_RETRY_MIN_MS;
      try {
        for await (const ev of readSse(resp.body)) {
          if (ev.id !== undefined) lastId = ev.id;
          const data = ev.data ? JSON.parse(ev.data) : null;
          const item = options.broadcast ? data : { ...data, event: data?.event ?? ev.event };
          yield item;
          if (options.endsOn && (options.endsOn.has(item?.event) || options.endsOn.has(item?.state))) return;
        }
      } catch (e) {
        if (signal?.aborted) return;
      }
      // The stream ended without its final event: the node went away; go on elsewhere.
      node += 1;
      if (!options.resume && !signal?.aborted) yield { event: 'reconnected' };
    }
  }
}

/** An enqueued task: await its result. */
export class TaskHandle {
  constructor(client, id, enqueued) {
    this.client = client;
    this.id = id;
    this.enqueued = enqueued;
  }

  /** The task once finished (or as it is after `timeoutMs`). */
  wait(timeoutMs) {
    return this.client.wait(this.id, timeoutMs);
  }

  /** The task's result once it succeeded; rejects with TaskFailedError when it ended
   * otherwise, or with a TaskswarmError if it did not finish within `timeoutMs`. */
  async result(timeoutMs = 24 * 3600 * 1000) {
    const task = await this.client.wait(this.id, timeoutMs);
    if (task.state === 'succeeded') return task.result;
    if (FINISHED_STATES.has(task.state)) throw new TaskFailedError(task);
    throw new TaskswarmError(`task ${this.id} not finished within ${timeoutMs} ms (state ${task.state})`);
  }
}
