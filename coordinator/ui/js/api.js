// Every call to the server goes through here: the forward header, the token, and turning
// any failure into an ApiError {status, code, message} that the banner can show.

import { currentToken, requestToken } from './auth.js';
import { clearTransient } from './banner.js';

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export const isAbort = (e) => e?.name === 'AbortError';

/**
 * Sends one request and returns the Response once it is 2xx. A 401/403 asks for the
 * token and sends again: the server checks the token before running anything, so even a
 * POST is safe to repeat.
 */
export async function send(path, { method = 'GET', body, signal, accept = 'application/json', headers = {} } = {}) {
  for (;;) {
    const token = currentToken();
    const h = {
      accept,
      // Without it a follower answers 307 to the leader's address, which the browser
      // cannot follow from this origin; with it the follower forwards server-side.
      'x-taskswarm-forward': '1',
      ...headers,
    };
    if (token) h.authorization = `Bearer ${token}`;
    if (body !== undefined) h['content-type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {
        method,
        headers: h,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: 'no-store',
        credentials: 'same-origin',
        redirect: 'manual',
      });
    } catch (e) {
      if (isAbort(e) || signal?.aborted) throw e;
      throw new ApiError(0, 'network', `could not reach the server (${e.message})`);
    }
    if (res.type === 'opaqueredirect') {
      throw new ApiError(307, 'not_leader', 'this node redirected to the leader instead of forwarding the request');
    }
    if (res.status === 401 || res.status === 403) {
      const err = await readError(res);
      // Another request may have replaced the token while this one was in flight.
      if (currentToken() === token) await requestToken(err.code, signal);
      continue;
    }
    if (!res.ok) throw await readError(res);
    clearTransient();
    return res;
  }
}

/** JSON in, JSON out. */
export async function api(path, opts = {}) {
  const res = await send(path, opts);
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(res.status, 'bad_response', `the server answered something that is not JSON: ${text.slice(0, 120)}`);
  }
}

export const post = (path, body, opts = {}) => api(path, { ...opts, method: 'POST', body });

async function readError(res) {
  let text = '';
  try {
    text = await res.text();
  } catch {}
  try {
    const body = JSON.parse(text);
    if (body?.error?.code) return new ApiError(res.status, body.error.code, body.error.message ?? '', body);
  } catch {}
  const detail = text.trim().slice(0, 200) || res.statusText || 'no details';
  return new ApiError(res.status, `http_${res.status}`, detail);
}

export const enc = encodeURIComponent;
