// The three ways a call can fail, kept apart because they mean different things:
// - RejectedError: the cluster refused the request and changed nothing (the server's
//   `code`, e.g. invalid_request, lease_lost, payload_too_large);
// - IndeterminateError: the request may or may not have taken effect (a timeout, a
//   connection lost after sending, `503 indeterminate`). Retry only what is idempotent
//   (an enqueue with its idempotency key, a complete with its token) or read the task;
// - UnavailableError: nothing was written, and no node could act within the retry budget.

export class TaskswarmError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class RejectedError extends TaskswarmError {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(`${code}: ${message} (HTTP ${status})`);
    this.status = status;
    this.code = code;
    this.serverMessage = message;
  }
}

export class IndeterminateError extends TaskswarmError {
  constructor(message, options) {
    super(`outcome unknown: ${message}`, options);
    this.code = 'indeterminate';
  }
}

export class UnavailableError extends TaskswarmError {
  /** @param {string} message @param {number} elapsedMs */
  constructor(message, elapsedMs, options) {
    super(`cluster unavailable after ${elapsedMs} ms: ${message}`, options);
    this.code = 'unavailable';
    this.elapsedMs = elapsedMs;
  }
}

// Thrown by a handler: the task fails for good (dead-lettered), no retry.
export class PermanentError extends TaskswarmError {
  /** @param {string} message @param {{code?: string}} [options] */
  constructor(message, options = {}) {
    super(message);
    this.code = options.code ?? 'handler_error';
  }
}

// Thrown by a handler: the attempt failed and may be retried, optionally not before
// `retryAfterMs` (instead of the task's backoff).
export class RetryableError extends TaskswarmError {
  /** @param {string} message @param {{code?: string, retryAfterMs?: number}} [options] */
  constructor(message, options = {}) {
    super(message);
    this.code = options.code ?? 'handler_error';
    this.retryAfterMs = options.retryAfterMs;
  }
}
