// Per-queue counts, pause/resume, the oldest queued task's age, and recent rates. Rows
// are kept by queue name and updated in place, so a poll never swaps out a button that
// is being clicked.

import { api, post, enc } from '../api.js';
import { h, fill, setText, STATES, hashUrl, fmtAge, fmtClock, fmtRate } from '../dom.js';
import { poll, attempt } from '../poll.js';
import { lineChart } from '../chart.js';

const WINDOW_S = 300;
const RECENT = 6; // buckets averaged for the rate shown as a number

export function mount(view, { signal }) {
  const rows = new Map(); // name -> { tr, counts: {state: a}, age, chart, rateText, button }
  const rates = new Map(); // name -> { enq: number[], done: number[] }, counts per bucket
  let buckets = 0; // series length once /v1/rates answered; a queue it omits had no events
  let perS = 10; // seconds per bucket
  let recentMs = 1000;
  let queues = [];

  const updated = h('span', { class: 'muted small' });
  const tbody = h('tbody');
  const totals = h('tr', { class: 'totals' });
  const empty = h('p', { class: 'muted' }, 'Loading…');
  view.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Queues'), updated, h('span', { class: 'spacer' }), h('span', { class: 'small muted' }, h('span', { class: 'key enq' }, 'enqueued'), '  ', h('span', { class: 'key done' }, 'completed (succeeded + failed)'))),
    h(
      'table',
      { class: 'grid queues', testid: 'queues' },
      h(
        'thead',
        {},
        h('tr', {}, h('th', {}, 'Queue'), STATES.map((s) => h('th', { class: 'num' }, s)), h('th', { class: 'num' }, 'Oldest queued'), h('th', {}, 'Rate /s, last 5 min'), h('th', {}, '')),
      ),
      tbody,
      h('tfoot', {}, totals),
    ),
    empty,
  );

  async function loadQueues() {
    const body = await api('/v1/queues', { signal });
    queues = body?.queues ?? [];
    render();
    updated.textContent = `updated ${fmtClock(Date.now())}`;
  }

  async function loadRates() {
    const r = await api(`/v1/rates?window_s=${WINDOW_S}`, { signal });
    const bucketMs = r.bucket_ms || 10000;
    buckets = Math.round((WINDOW_S * 1000) / bucketMs);
    perS = bucketMs / 1000;
    // The newest bucket may still be filling: count only the time it has covered so far.
    recentMs = Math.max(1000, RECENT * bucketMs - Math.max(0, (r.end_at_ms ?? 0) - Date.now()));
    rates.clear();
    for (const q of r.queues ?? []) {
      const done = (q.succeeded ?? []).map((n, i) => n + (q.failed?.[i] ?? 0));
      rates.set(q.name, { enq: q.enqueued ?? [], done });
    }
    for (const name of rows.keys()) renderRate(name);
  }

  function render() {
    const seen = new Set();
    queues.forEach((q, i) => {
      seen.add(q.name);
      const row = rows.get(q.name) ?? createRow(q.name);
      for (const s of STATES) {
        const n = q.counts?.[s] ?? 0;
        setText(row.counts[s], n);
        row.counts[s].classList.toggle('zero', n === 0);
      }
      const oldest = q.oldest_queued_at_ms;
      setText(row.age, oldest == null ? '—' : fmtAge(Date.now() - oldest));
      row.tr.classList.toggle('paused', q.paused);
      setText(row.status, q.paused ? 'paused' : '');
      if (!row.busy) {
        row.button.dataset.testid = q.paused ? `resume-${q.name}` : `pause-${q.name}`;
        setText(row.button, q.paused ? 'Resume' : 'Pause');
        row.button.dataset.paused = q.paused ? '1' : '';
      }
      if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] ?? null);
    });
    for (const [name, row] of rows) {
      if (!seen.has(name)) {
        row.tr.remove();
        rows.delete(name);
      }
    }
    empty.textContent = 'No queues yet: enqueue a task to create one.';
    empty.hidden = queues.length > 0;
    fill(
      totals,
      h('th', { class: 'nowrap' }, 'All queues'),
      STATES.map((s) => h('td', { class: 'num', testid: `total-${s}` }, queues.reduce((n, q) => n + (q.counts?.[s] ?? 0), 0))),
      h('td', { colspan: 3 }),
    );
  }

  function createRow(name) {
    const counts = {};
    const cells = STATES.map((s) => {
      counts[s] = h('a', { href: hashUrl('/tasks', { queue: name, state: s }), testid: `count-${name}-${s}`, class: `count st-${s}` }, '0');
      return h('td', { class: 'num' }, counts[s]);
    });
    const button = h('button', { type: 'button', class: 'small' }, 'Pause');
    const status = h('span', { class: 'badge paused-badge', testid: `paused-${name}` });
    const row = {
      tr: h('tr', { testid: `queue-row-${name}` }),
      counts,
      age: h('td', { class: 'num', testid: `oldest-${name}` }),
      chart: h('span', { class: 'chart-box' }),
      rateText: h('span', { class: 'rate-text small', testid: `rate-${name}` }),
      button,
      status,
      busy: false,
    };
    button.addEventListener('click', () => toggle(name, row));
    fill(row.tr, h('th', { class: 'nowrap' }, h('a', { href: hashUrl('/tasks', { queue: name }) }, name), ' ', status), cells, row.age, h('td', { class: 'rate' }, row.chart, row.rateText), h('td', { class: 'actions' }, button));
    rows.set(name, row);
    renderRate(name);
    return row;
  }

  function renderRate(name) {
    const row = rows.get(name);
    const zeros = new Array(buckets).fill(0);
    const r = rates.get(name) ?? (buckets ? { enq: zeros, done: zeros } : null);
    const perSecond = (xs) => xs.map((n) => n / perS);
    const sum = (xs) => xs.reduce((a, b) => a + b, 0);
    if (!row) return;
    if (!r) {
      fill(row.chart);
      setText(row.rateText, '—');
      return;
    }
    const avg = (xs) => (xs.length ? sum(xs) / (xs.length * perS) : 0);
    const recent = (xs) => (sum(xs.slice(-RECENT)) * 1000) / recentMs;
    const title = `${name}, last 5 min: enqueued ${fmtRate(avg(r.enq))}/s, completed ${fmtRate(avg(r.done))}/s on average`;
    fill(row.chart, lineChart([{ values: perSecond(r.enq), cls: 'enq' }, { values: perSecond(r.done), cls: 'done' }], { title, width: 120 }));
    fill(row.rateText, h('span', { class: 'enq' }, fmtRate(recent(r.enq))), ' / ', h('span', { class: 'done' }, fmtRate(recent(r.done))));
    row.rateText.title = 'last minute: enqueued / completed per second';
  }

  async function toggle(name, row) {
    const pause = !row.button.dataset.paused;
    row.busy = true;
    row.button.disabled = true;
    await attempt(signal, () => post(`/v1/queues/${enc(name)}/${pause ? 'pause' : 'resume'}`, undefined, { signal }));
    row.busy = false;
    row.button.disabled = false;
    await attempt(signal, loadQueues);
  }

  poll(signal, 5000, loadRates);
  return poll(signal, 2000, loadQueues);
}
