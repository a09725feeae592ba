// The worker runtime: handlers by kind, slots (and slots reserved for urgent work),
// long-poll claims, one batched heartbeat for every running task, cancellation through an
// AbortSignal, graceful shutdown. The same guarantees as the Rust runtime
// (worker/src/worker/):
// - a task's lease is counted from the moment the claim was *sent*, so this worker's
//   deadline always passes before the cluster's; when heartbeats fail until then, the
//   handler's signal fires (reason `lease_expired`) and its result is not reported;
// - every completion carries the fencing token (`ctx.token`); one refused as `lease_lost`
//   means another worker may have the task: the signal fires (`lease_lost`);
// - a cancel requested by a producer arrives on the next heartbeat (`cancelled`);
// - a claim is never abandoned once sent (the cluster may have leased tasks to it): on
//   shutdown, tasks that arrive from a claim in flight are released unstarted.

import os from 'node:os';

import { PermanentError, RejectedError, RetryableError } from './errors.js';
import { sleep } from './transport.js';

/** Most tasks in one heartbeat request (the server's limit). */
export const HEARTBEAT_BATCH_MAX = 1024;
/** Heartbeats go out every lease / HEARTBEAT_DIVISOR: two may be lost before expiry. */
export const HEARTBEAT_DIVISOR = 3;
/** Claims in flight at once per slot band: while one answer is on its way the next is
 * already asked for, so a worker with fast handlers is not bound by one claim's round
 * trip per batch of slots. */
export const CLAIMS_IN_FLIGHT_MAX = 4;
/** Longest claim long-poll. */
export const CLAIM_WAIT_MAX_MS = 5_000;
/** Backoff after a failed claim (doubling to the max). */
export const CLAIM_BACKOFF_MIN_MS = 100;
export const CLAIM_BACKOFF_MAX_MS = 5_000;
/** A task of a kind with no handler (and no fallback) is given back after this delay. */
export const UNKNOWN_KIND_RELEASE_DELAY_MS = 5_000;
/** Most completions in one `POST /v1/complete` (the server's limit). */
export const COMPLETE_BATCH_MAX = 1024;

/**
 * Completions of all slots travel together: one request in flight, and every completion
 * that arrives meanwhile goes in the next one (each is idempotent with its token, so the
 * batch is retried as a whole through unknown outcomes). One request per task cost a
 * Node worker most of its time in HTTP round trips.
 */
class CompletionBatcher {
  constructor(client) {
    this.client = client;
    this.queue = [];
    this.inFlight = false;
  }

  /** Resolves with the item's result: a StateResponse, or an ErrorBody when refused. */
  complete(task, token, result) {
    return new Promise((resolve, reject) => {
      this.queue.push({ item: { task, token, result }, resolve, reject });
      if (!this.inFlight) this.flush();
    });
  }

  async flush() {
    this.inFlight = true;
    while (this.queue.length) {
      const batch = this.queue.splice(0, COMPLETE_BATCH_MAX);
      try {
        const results = await this.client.completeBatch(batch.map((b) => b.item));
        batch.forEach((b, i) => b.resolve(results[i]));
      } catch (e) {
        for (const b of batch) b.reject(e);
      }
    }
    this.inFlight = false;
  }
}

class Running {
  constructor(task, band, sentAt) {
    this.task = task;
    this.band = band;
    this.token = task.lease.token;
    this.leaseMs = task.lease.lease_ms;
    this.deadline = sentAt + this.leaseMs;
    this.controller = new AbortController();
    this.progress = undefined;
    this.progressSent = true;
    this.releaseDelayMs = undefined;
    this.cancelRequested = false;
    this.lost = false;
    this.timer = null;
    this.armDeadline();
  }

  armDeadline() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.abort('lease_expired'), Math.max(0, this.deadline - Date.now()));
    this.timer.unref?.();
  }

  abort(reason) {
    if (reason === 'lease_expired' || reason === 'lease_lost') this.lost = true;
    if (reason === 'cancelled') this.cancelRequested = true;
    if (!this.controller.signal.aborted) {
      const e = new Error(`task ${this.task.id}: ${reason}`);
      e.name = 'AbortError';
      e.reason = reason;
      this.controller.abort(e);
    }
  }

  finish() {
    clearTimeout(this.timer);
  }
}

export class Worker {
  /**
   * @param {import('./client.js').Client} client
   * @param {{queues?: string[], slots?: number, reserved?: {minPriority: number, slots: number}[],
   *          leaseMs?: number, claimWaitMs?: number, graceMs?: number, workerId?: string,
   *          handleSignals?: boolean}} [options]
   */
  constructor(client, options = {}) {
    this.client = client;
    this.queues = options.queues ?? ['default'];
    this.leaseMs = options.leaseMs ?? 30_000;
    this.claimWaitMs = Math.min(options.claimWaitMs ?? CLAIM_WAIT_MAX_MS, CLAIM_WAIT_MAX_MS, Math.floor(this.leaseMs / 3));
    this.graceMs = options.graceMs ?? 10_000;
    this.workerId = options.workerId ?? `${os.hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.handleSignals = options.handleSignals ?? true;
    // Band 0: the general slots; then one band per reservation (claims with min_priority).
    this.bands = [{ minPriority: undefined, slots: options.slots ?? 1, busy: 0 }];
    for (const r of options.reserved ?? []) this.bands.push({ minPriority: r.minPriority, slots: r.slots, busy: 0 });
    for (const b of this.bands) {
      if (!Number.isInteger(b.slots) || b.slots < 1 || b.slots > HEARTBEAT_BATCH_MAX) {
        throw new RangeError(`taskswarm: slots must be 1..${HEARTBEAT_BATCH_MAX}`);
      }
    }
    this.handlers = new Map();
    this.fallbackHandler = null;
    this.running = new Map();
    this.stopping = new AbortController();
    this.slotFreed = null;
    this.stats = { claimed: 0, succeeded: 0, failed: 0, released: 0, lost: 0 };
    this.completions = new CompletionBatcher(client);
  }

  /** Runs `handler(payload, ctx)` for tasks of `kind`; its return value is the result. */
  handle(kind, handler) {
    this.handlers.set(kind, handler);
    return this;
  }

  /** Runs tasks of every kind without a handler of its own. */
  fallback(handler) {
    this.fallbackHandler = handler;
    return this;
  }

  kinds() {
    return this.fallbackHandler ? undefined : [...this.handlers.keys()];
  }

  /** Runs until `close()` (or SIGINT/SIGTERM with `handleSignals`), then shuts down
   * gracefully: no new claims, running handlers get `graceMs`, the rest are released. */
  async run() {
    if (!this.handlers.size && !this.fallbackHandler) throw new TypeError('taskswarm: a worker needs a handler');
    const onSignal = () => this.close();
    if (this.handleSignals) {
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    }
    const heartbeats = this.heartbeatLoop();
    const claims = this.bands.flatMap((band, i) =>
      Array.from({ length: Math.min(CLAIMS_IN_FLIGHT_MAX, band.slots) }, () => this.claimLoop(i, band)),
    );
    await Promise.all(claims);
    await this.drain();
    this.heartbeatsDone = true;
    await heartbeats;
    if (this.handleSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }

  /** Begins the graceful shutdown; `run()` resolves when it is done. */
  close() {
    this.stopping.abort(new Error('worker stopping'));
    this.wakeSlots();
  }

  wakeSlots() {
    const f = this.slotFreed;
    this.slotFreed = null;
    f?.();
  }

  waitForSlot() {
    return new Promise((resolve) => {
      const prev = this.slotFreed;
      this.slotFreed = () => {
        prev?.();
        resolve();
      };
    });
  }

  /** One of the band's claim loops: claims up to its share of the free slots. */
  async claimLoop(bandIndex, band) {
    let backoff = CLAIM_BACKOFF_MIN_MS;
    const stop = this.stopping.signal;
    const share = Math.ceil(band.slots / Math.min(CLAIMS_IN_FLIGHT_MAX, band.slots));
    while (!stop.aborted) {
      const free = Math.min(band.slots - band.busy, share);
      if (free <= 0) {
        await this.waitForSlot();
        continue;
      }
      const req = {
        worker: this.workerId,
        queues: this.queues,
        max: free,
        lease_ms: this.leaseMs,
        wait_ms: this.claimWaitMs,
      };
      const kinds = this.kinds();
      if (kinds) req.kinds = kinds;
      if (band.minPriority !== undefined) req.min_priority = band.minPriority;
      band.busy += free;
      // The lease is counted from here, before the request leaves.
      const sentAt = Date.now();
      let tasks;
      try {
        tasks = await this.client.claim(req);
        backoff = CLAIM_BACKOFF_MIN_MS;
      } catch (e) {
        band.busy -= free;
        if (stop.aborted) break;
        await sleep(backoff, stop).catch(() => {});
        backoff = Math.min(backoff * 2, CLAIM_BACKOFF_MAX_MS);
        continue;
      }
      band.busy -= free - Math.min(tasks.length, free);
      for (const task of tasks) {
        this.stats.claimed += 1;
        const r = new Running(task, bandIndex, sentAt);
        this.running.set(task.id, r);
        if (stop.aborted) {
          // Claimed after the shutdown began: give it back unstarted.
          this.execute(r, true);
        } else {
          this.execute(r, false);
        }
      }
    }
  }

  async execute(r, releaseUnstarted) {
    const band = this.bands[r.band];
    const task = r.task;
    let slotHeld = true;
    // The slot is free once the handler is done: its result is reported (batched) while
    // the next claim already runs.
    const freeSlot = () => {
      if (!slotHeld) return;
      slotHeld = false;
      band.busy -= 1;
      this.wakeSlots();
    };
    try {
      if (releaseUnstarted) {
        await this.settle(r, () => this.client.release(task.id, r.token, 0), 'released');
        return;
      }
      const handler = this.handlers.get(task.kind) ?? this.fallbackHandler;
      if (!handler) {
        await this.settle(r, () => this.client.release(task.id, r.token, UNKNOWN_KIND_RELEASE_DELAY_MS), 'released');
        return;
      }
      const ctx = this.context(r);
      let outcome;
      try {
        outcome = { ok: true, value: await handler(task.payload, ctx) };
      } catch (error) {
        outcome = { ok: false, error };
      }
      freeSlot();
      await this.report(r, outcome);
    } finally {
      r.finish();
      this.running.delete(task.id);
      freeSlot();
    }
  }

  context(r) {
    const worker = this;
    return {
      task: r.task,
      id: r.task.id,
      kind: r.task.kind,
      attempt: r.task.attempt,
      /** The fencing token: pass it to downstream stores so they can refuse stale writers. */
      token: r.token,
      /** Fires on cancel, lease loss, or shutdown past the grace period. */
      signal: r.controller.signal,
      /** Sent with the next heartbeat. */
      progress(value) {
        r.progress = value;
        r.progressSent = false;
      },
      /** Gives the task back when the handler returns (not counted as an attempt). */
      release(delayMs = 0) {
        r.releaseDelayMs = delayMs;
      },
      worker,
    };
  }

  async report(r, outcome) {
    const id = r.task.id;
    if (r.lost) {
      // Another worker may hold the task now; a result would be refused (lease_lost).
      this.stats.lost += 1;
      return;
    }
    if (r.releaseDelayMs !== undefined || r.cancelRequested) {
      // Releasing with a cancel pending ends the task `cancelled`.
      await this.settle(r, () => this.client.release(id, r.token, r.releaseDelayMs ?? 0), 'released');
      return;
    }
    if (outcome.ok) {
      await this.settle(
        r,
        async () => {
          const res = await this.completions.complete(id, r.token, outcome.value ?? null);
          if (res?.error) throw new RejectedError(409, res.error.code, res.error.message);
        },
        'succeeded',
      );
      return;
    }
    const e = outcome.error;
    if (r.controller.signal.aborted && this.stopping.signal.aborted) {
      // Cut off by the shutdown: not the task's fault.
      await this.settle(r, () => this.client.release(id, r.token, 0), 'released');
      return;
    }
    const req = {
      token: r.token,
      error: String(e?.message ?? e),
      code: e?.code && typeof e.code === 'string' && /^[a-z][a-z0-9_]*$/.test(e.code) ? e.code : undefined,
      retryable: !(e instanceof PermanentError),
    };
    if (e instanceof RetryableError && e.retryAfterMs !== undefined) req.retry_after_ms = e.retryAfterMs;
    await this.settle(r, () => this.client.fail(id, req), 'failed');
  }

  /** Ends the attempt; a refusal (lease lost, already finished) is counted, not thrown. */
  async settle(r, call, counter) {
    try {
      await call();
      this.stats[counter] += 1;
    } catch (e) {
      if (e instanceof RejectedError && (e.code === 'lease_lost' || e.code === 'task_finished')) {
        r.abort('lease_lost');
        this.stats.lost += 1;
        return;
      }
      // Unknown or unavailable: the lease expires and the cluster requeues the task.
      this.stats.lost += 1;
    }
  }

  async heartbeatLoop() {
    while (!this.heartbeatsDone) {
      const interval = Math.max(30, Math.floor(this.leaseMs / HEARTBEAT_DIVISOR));
      await sleep(Math.min(interval, 200)).catch(() => {});
      const due = [...this.running.values()].filter(
        (r) => !r.lost && (Date.now() - (r.lastBeat ?? r.deadline - r.leaseMs) >= interval || !r.progressSent),
      );
      if (!due.length) continue;
      for (let i = 0; i < due.length; i += HEARTBEAT_BATCH_MAX) {
        await this.beat(due.slice(i, i + HEARTBEAT_BATCH_MAX));
      }
    }
  }

  async beat(batch) {
    const sentAt = Date.now();
    const leases = batch.map((r) => {
      const lease = { task: r.task.id, token: r.token };
      if (!r.progressSent) lease.progress = r.progress;
      return lease;
    });
    let results;
    try {
      results = await this.client.heartbeat(this.workerId, leases);
    } catch {
      return; // The local deadlines decide; the next beat may get through.
    }
    results.forEach((res, i) => {
      const r = batch[i];
      if (res.error) {
        r.abort('lease_lost');
        return;
      }
      r.lastBeat = sentAt;
      r.progressSent = true;
      r.deadline = sentAt + res.lease_ms;
      r.armDeadline();
      if (res.cancel_requested) r.abort('cancelled');
    });
  }

  /** After claims stop: running handlers get the grace period, then their signals fire. */
  async drain() {
    const deadline = Date.now() + this.graceMs;
    while (this.running.size && Date.now() < deadline) await sleep(20);
    for (const r of this.running.values()) r.abort('shutdown');
    while (this.running.size) await sleep(20);
  }
}
