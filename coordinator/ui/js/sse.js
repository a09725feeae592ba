// Server-sent events over fetch. EventSource cannot send an Authorization header, so the
// stream is read and parsed here (https://html.spec.whatwg.org/#event-stream-interpretation).

import { send, isAbort, ApiError } from './api.js';

/** Calls onEvent({event, data, id}) for each message until the body ends. */
export async function readEvents(body, onEvent, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let msg = { event: '', data: [], id: undefined };
  const dispatch = () => {
    if (msg.data.length) onEvent({ event: msg.event || 'message', data: msg.data.join('\n'), id: msg.id });
    msg = { event: '', data: [], id: undefined };
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      // A trailing \r may be the first half of \r\n: it waits for the next chunk, and so
      // does the last piece, which may be a line cut in half.
      const end = buf.endsWith('\r') ? buf.length - 1 : buf.length;
      const lines = buf.slice(0, end).split(/\r\n|\r|\n/);
      buf = lines.pop() + buf.slice(end);
      for (const line of lines) {
        if (line === '') dispatch();
        else if (line.startsWith(':')) continue;
        else {
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          let v = i < 0 ? '' : line.slice(i + 1);
          if (v.startsWith(' ')) v = v.slice(1);
          if (field === 'data') msg.data.push(v);
          else if (field === 'event') msg.event = v;
          else if (field === 'id') msg.id = v;
        }
      }
    }
  } finally {
    if (signal?.aborted) reader.cancel().catch(() => {});
    reader.releaseLock?.();
  }
}

/**
 * Keeps a stream open until `signal` aborts: reconnects with backoff (1 s doubling to
 * 15 s) after it ends or fails, resuming from the last event id where the stream has ids.
 * onStatus(state, detail): 'connecting' | 'open' | 'retrying'.
 */
export async function follow(path, { signal, onEvent, onStatus, onError }) {
  let lastId;
  let delay = 1000;
  while (!signal.aborted) {
    onStatus('connecting');
    let received = false;
    let openedAt = 0;
    try {
      const headers = lastId !== undefined ? { 'last-event-id': lastId } : {};
      const res = await send(path, { signal, accept: 'text/event-stream', headers });
      onStatus('open');
      openedAt = Date.now();
      await readEvents(
        res.body,
        (m) => {
          received = true;
          if (m.id !== undefined) lastId = m.id;
          onEvent(m);
        },
        signal,
      );
    } catch (e) {
      if (isAbort(e) || signal.aborted) return;
      // A stream cut mid-way (node restarting) is a passing condition, not a bug.
      onError(e instanceof ApiError ? e : new ApiError(0, 'network', `the stream ${path} broke (${e.message})`));
    }
    if (signal.aborted) return;
    // Backoff is for a node that keeps refusing; a stream that worked starts over at 1 s.
    if (received || (openedAt && Date.now() - openedAt > 10_000)) delay = 1000;
    onStatus('retrying', delay);
    await sleep(delay, signal);
    delay = Math.min(delay * 2, 15000);
  }
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
