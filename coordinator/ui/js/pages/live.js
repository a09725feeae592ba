// Lifecycle events and broadcasts as they happen. The newest MAX entries are kept; the
// table is redrawn in batches, so a burst of thousands of events costs a few repaints.
// Pausing freezes the table only: the streams keep running and the buffer keeps filling.

import { showError } from '../banner.js';
import { h, fill, setText, fmtClock } from '../dom.js';
import { follow } from '../sse.js';

const MAX = 500;
// Each event takes the colour of the state it leads to.
const TONE = {
  enqueued: 'st-queued', requeued: 'st-queued', released: 'st-queued', scheduled: 'st-scheduled', claimed: 'st-running', progress: 'st-running',
  succeeded: 'st-succeeded', failed: 'st-failed', attempt_failed: 'st-failed', cancel_requested: 'st-cancelled', cancelled: 'st-cancelled', expired: 'st-expired',
};
const EVENTS = ['enqueued', 'joined', 'scheduled', 'claimed', 'progress', 'released', 'attempt_failed', 'succeeded', 'failed', 'cancel_requested', 'cancelled', 'expired', 'requeued'];

export function mount(view, { signal }) {
  const entries = []; // oldest first
  let fresh = []; // arrived since the last redraw
  let paused = false;
  let missedWhilePaused = 0;
  let flushTimer = null;

  const status = { events: chip('events'), broadcast: chip('broadcast') };
  const fQueue = h('input', { placeholder: 'any', testid: 'live-filter-queue', size: 12 });
  const fEvent = h('select', { testid: 'live-filter-event' }, h('option', { value: '' }, 'any event'), [...EVENTS, 'broadcast', 'lagged'].map((e) => h('option', { value: e }, e)));
  const fText = h('input', { placeholder: 'search', testid: 'live-filter-text', size: 18, type: 'search' });
  const pauseBtn = h('button', { type: 'button', testid: 'live-pause' }, 'Pause');
  const clearBtn = h('button', { type: 'button', class: 'secondary' }, 'Clear');
  const counter = h('span', { class: 'muted small', testid: 'live-count' });
  const tbody = h('tbody', { testid: 'live-rows' });

  view.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Live'), status.events.el, status.broadcast.el),
    h('div', { class: 'filters' }, h('label', {}, 'Queue ', fQueue), h('label', {}, 'Event ', fEvent), h('label', {}, 'Text ', fText), pauseBtn, clearBtn, counter),
    h('table', { class: 'grid live' }, h('thead', {}, h('tr', {}, ['Time', 'Event', 'Queue', 'Task', 'Details'].map((t) => h('th', {}, t)))), tbody),
  );

  for (const el of [fQueue, fEvent, fText]) el.addEventListener('input', redraw);
  pauseBtn.addEventListener('click', () => {
    paused = !paused;
    missedWhilePaused = 0;
    if (!paused) redraw();
    updateCounter();
  });
  clearBtn.addEventListener('click', () => {
    entries.length = 0;
    fresh = [];
    redraw();
  });

  function matches(e) {
    const q = fQueue.value.trim();
    const ev = fEvent.value;
    const text = fText.value.trim().toLowerCase();
    if (q && e.queue !== q) return false;
    if (ev && e.event !== ev && !(ev === 'broadcast' && e.kind === 'broadcast')) return false;
    return !text || e.search.includes(text);
  }

  function add(entry) {
    entries.push(entry);
    if (entries.length > MAX) entries.splice(0, entries.length - MAX);
    if (paused) {
      missedWhilePaused += 1;
      updateCounter();
      return;
    }
    fresh.push(entry);
    flushTimer ??= setTimeout(flush, 100);
  }

  function flush() {
    flushTimer = null;
    if (paused) return;
    const rows = fresh.filter(matches).map(row);
    fresh = [];
    for (const r of rows) tbody.prepend(r);
    while (tbody.children.length > MAX) tbody.lastElementChild.remove();
    updateCounter();
  }

  function redraw() {
    fresh = [];
    fill(tbody, entries.filter(matches).reverse().map(row));
    updateCounter();
  }

  function updateCounter() {
    setText(counter, `${tbody.children.length} shown · ${entries.length} kept (max ${MAX})${paused ? ` · paused, ${missedWhilePaused} new` : ''}`);
    setText(pauseBtn, paused ? 'Resume' : 'Pause');
  }

  function row(e) {
    return h(
      'tr',
      { testid: 'live-row', 'data-kind': e.kind, 'data-event': e.event, 'data-task': e.task ?? '', class: `ev-${e.event}` },
      h('td', { class: 'nowrap mono' }, fmtClock(e.at)),
      h('td', {}, h('span', { class: `tag ${e.kind} ${TONE[e.event] ?? ''}` }, e.event)),
      h('td', {}, e.queue ?? ''),
      h('td', { class: 'num' }, e.task != null ? h('a', { href: `#/tasks/${e.task}` }, e.task) : ''),
      h('td', { class: 'details' }, e.details),
    );
  }

  follow('/v1/events', {
    signal,
    onStatus: status.events.set,
    onError: showError,
    onEvent: (m) => {
      const d = parse(m.data);
      if (m.event === 'lagged') {
        const n = d?.missed ?? d?.count ?? d?.lagged ?? '?';
        add(entry('lagged', 'lifecycle', { details: `this stream fell behind and skipped ${n} events` }));
        return;
      }
      const bits = [];
      if (d?.state) bits.push(`→ ${d.state}`);
      if (d?.worker) bits.push(`worker ${d.worker}`);
      if (d?.token != null) bits.push(`token ${d.token}`);
      if (d?.attempt != null) bits.push(`attempt ${d.attempt}`);
      if (d?.group) bits.push(`group ${d.group}`);
      if (d?.error) bits.push(`${d.error.code}: ${d.error.message}`);
      if (d?.progress != null) bits.push(`progress ${JSON.stringify(d.progress)}`);
      add(entry(d?.event ?? m.event, 'lifecycle', { queue: d?.queue, task: d?.task, at: d?.at_ms, details: bits.join(' · ') || (d ? '' : m.data) }));
    },
  });

  follow('/v1/broadcast', {
    signal,
    onStatus: status.broadcast.set,
    onError: showError,
    onEvent: (m) => {
      const d = parse(m.data);
      const message = d && 'message' in d ? JSON.stringify(d.message) : m.data;
      add(entry(m.event, 'broadcast', { at: d?.at_ms, details: `#${d?.seq ?? m.id ?? '?'} ${message}` }));
    },
  });

  updateCounter();
  signal.addEventListener('abort', () => clearTimeout(flushTimer));
}

function entry(event, kind, { queue = null, task = null, at, details = '' }) {
  const e = { event, kind, queue, task, at: at ?? Date.now(), details };
  e.search = [event, queue, task, details].join(' ').toLowerCase();
  return e;
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function chip(name) {
  const el = h('span', { class: 'chip', testid: `stream-status-${name}`, 'data-state': 'connecting' }, `${name}: connecting…`);
  return {
    el,
    set: (state, delayMs) => {
      el.dataset.state = state;
      el.textContent = state === 'open' ? `${name}: live` : state === 'retrying' ? `${name}: reconnecting in ${Math.round(delayMs / 1000)} s` : `${name}: connecting…`;
    },
  };
}
