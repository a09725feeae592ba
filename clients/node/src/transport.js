// Sending one API request to the cluster: leader tracking, redirects, rotation, retries.
// The same rules as the Rust client (worker/src/transport.rs), from what each answer proves:
// - connection refused / name not resolved: the node never saw the request → next node;
// - 307: a follower refused to act → go where `Location` points (at most
//   REDIRECT_HOPS_MAX hops per attempt) and remember that leader; a name from a redirect
//   that does not resolve REDIRECT_UNREACHABLE_MAX times in a row, for longer than an
//   election (REDIRECT_UNREACHABLE_MIN_MS), ends the call naming it (the leader advertises
//   a name this client cannot resolve: run the nodes with --forward-to-leader). A refused
//   connection is not that: a leader that just died is refused until another is elected;
// - 503 no_leader / no_quorum / storage_full / unavailable: nothing was written → back off, try again;
// - 503 indeterminate, a timeout, a connection lost after sending: maybe written → retry
//   only idempotent requests, otherwise IndeterminateError;
// - any other 4xx/5xx: RejectedError with the server's code.

import { IndeterminateError, RejectedError, UnavailableError } from './errors.js';

export const REDIRECT_HOPS_MAX = 5;
export const REDIRECT_UNREACHABLE_MAX = 3;
export const REDIRECT_UNREACHABLE_MIN_MS = 2_000;
// Error codes of a host name that did not resolve.
const NAME_NOT_RESOLVED = new Set(['ENOTFOUND', 'EAI_AGAIN']);

// Error codes of a failure to connect: the request was never sent.
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** The innermost cause's code, through fetch's `TypeError: fetch failed` wrapping. */
function causeOf(error) {
  let e = error;
  while (e?.cause) e = e.cause;
  if (e instanceof AggregateError && e.errors?.length) e = e.errors[0];
  return { code: e?.code, message: e?.message ?? String(e) };
}

/** Whether `error` (thrown by fetch) happened before the request reached the server. */
export function isConnectError(error) {
  const { code } = causeOf(error);
  return CONNECT_ERRORS.has(code);
}

/**
 * What one attempt's answer means. Pure: status, error code, and whether a redirect was
 * followed in this attempt. Returns 'done' | 'redirect' | 'retry-safe' | 'unknown'.
 */
export function classify(status, code) {
  if (status === 307) return 'redirect';
  if (status === 503) return code === 'indeterminate' ? 'unknown' : 'retry-safe';
  return 'done';
}

export class Transport {
  /**
   * @param {string[]} nodes base URLs
   * @param {{requestTimeoutMs: number, retryBudgetMs: number, backoffInitialMs: number,
   *          backoffMaxMs: number, apiToken?: string, headers?: Record<string,string>}} config
   */
  constructor(nodes, config) {
    if (!nodes.length) throw new TypeError('taskswarm: no servers given');
    this.nodes = nodes.map((n) => n.replace(/\/+$/, ''));
    this.config = config;
    this.leader = null;
    this.next = 0;
  }

  pick() {
    if (this.leader) return this.leader;
    const node = this.nodes[this.next % this.nodes.length];
    this.next += 1;
    return node;
  }

  forgetLeader() {
    this.leader = null;
  }

  headers(hasBody) {
    const h = { ...(this.config.headers ?? {}) };
    if (hasBody) h['content-type'] = 'application/json';
    if (this.config.apiToken) h.authorization = `Bearer ${this.config.apiToken}`;
    return h;
  }

  /**
   * One API call, retried by the rules above.
   * @param {string} method
   * @param {string} path path and query
   * @param {unknown} [body]
   * @param {{idempotent?: boolean, timeoutMs?: number, signal?: AbortSignal}} [options]
   */
  async call(method, path, body, options = {}) {
    const idempotent = options.idempotent ?? true;
    const text = body === undefined ? undefined : JSON.stringify(body);
    const started = Date.now();
    let backoff = this.config.backoffInitialMs;
    let maybeWritten = false;
    let leaderUnreachable = 0;
    let lastProblem = '';
    for (;;) {
      const a = await this.attempt(method, path, text, options);
      leaderUnreachable = a.kind === 'leader-unreachable' ? leaderUnreachable + 1 : 0;
      switch (a.kind) {
        case 'done':
          return decode(a.status, a.json);
        case 'retry-safe':
          lastProblem = a.why;
          break;
        case 'leader-unreachable':
          lastProblem =
            `the leader's address ${a.leader}, given in a redirect by a follower, cannot be reached ` +
            `from here (${a.why}); reach the cluster at addresses it advertises, or run the nodes ` +
            `with --forward-to-leader`;
          if (
            leaderUnreachable >= REDIRECT_UNREACHABLE_MAX &&
            Date.now() - started >= REDIRECT_UNREACHABLE_MIN_MS &&
            !maybeWritten
          ) {
            throw new UnavailableError(lastProblem, Date.now() - started);
          }
          break;
        case 'unknown':
          if (!idempotent) throw new IndeterminateError(a.why);
          maybeWritten = true;
          lastProblem = a.why;
          break;
        default:
          throw new Error(`unreachable: ${a.kind}`);
      }
      if (options.signal?.aborted) throw options.signal.reason;
      const elapsed = Date.now() - started;
      if (elapsed + backoff > this.config.retryBudgetMs) {
        throw maybeWritten
          ? new IndeterminateError(`gave up after ${elapsed} ms: ${lastProblem}`)
          : new UnavailableError(lastProblem, elapsed);
      }
      await sleep(backoff, options.signal);
      backoff = Math.min(backoff * 2, this.config.backoffMaxMs);
    }
  }

  async attempt(method, path, text, options) {
    let url = this.pick() + path;
    for (let hop = 0; hop <= REDIRECT_HOPS_MAX; hop += 1) {
      const timeout = AbortSignal.timeout(options.timeoutMs ?? this.config.requestTimeoutMs);
      const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
      let resp;
      try {
        resp = await fetch(url, {
          method,
          headers: this.headers(text !== undefined),
          body: text,
          redirect: 'manual',
          signal,
        });
      } catch (e) {
        this.forgetLeader();
        if (options.signal?.aborted) throw options.signal.reason;
        const cause = causeOf(e);
        if (isConnectError(e)) {
          if (hop > 0 && NAME_NOT_RESOLVED.has(cause.code)) {
            return { kind: 'leader-unreachable', leader: url.slice(0, url.length - path.length), why: cause.message };
          }
          return { kind: 'retry-safe', why: `${url}: ${cause.message}` };
        }
        return { kind: 'unknown', why: `${url}: ${cause.message}` };
      }
      let json;
      try {
        const raw = await resp.text();
        json = raw ? JSON.parse(raw) : null;
      } catch (e) {
        if (resp.status === 307 || resp.status === 503) json = null;
        else return { kind: 'unknown', why: `${url}: reading the answer: ${causeOf(e).message}` };
      }
      const code = json?.error?.code;
      const what = classify(resp.status, code);
      if (what === 'redirect') {
        const location = resp.headers.get('location');
        if (!location) return { kind: 'retry-safe', why: `${url}: redirect without a Location` };
        const leader = json?.error?.leader_addr;
        if (leader) this.leader = leader.replace(/\/+$/, '');
        url = location;
        continue;
      }
      if (what === 'retry-safe') {
        this.forgetLeader();
        return { kind: 'retry-safe', why: `${url}: ${code ?? resp.status}` };
      }
      if (what === 'unknown') {
        this.forgetLeader();
        return { kind: 'unknown', why: `${url}: the write's outcome is unknown` };
      }
      return { kind: 'done', status: resp.status, json };
    }
    return { kind: 'retry-safe', why: `more than ${REDIRECT_HOPS_MAX} redirects` };
  }
}

function decode(status, json) {
  if (status >= 200 && status < 300) return json;
  const e = json?.error;
  if (e?.code) throw new RejectedError(status, e.code, e.message ?? '');
  throw new RejectedError(status, 'http_error', JSON.stringify(json ?? '').slice(0, 200));
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
