// One task: its fields, its event history as a timeline, and the operator's actions.
// Polled while the task can still change; re-rendered only when something did.

import { api, post, enc } from '../api.js';
import { h, fill, stateBadge, hashUrl, fmtTime, fmtRelative, fmtJson, FINISHED } from '../dom.js';
import { poll, attempt } from '../poll.js';
import { showInfo } from '../banner.js';

export function mount(view, { signal, params: [id] }) {
  const head = h('div', { class: 'page-head' }, h('h1', {}, `Task ${id}`));
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  view.append(head, body);
  let last = '';
  let done = false;

  async function load() {
    let task;
    let events;
    try {
      [task, events] = await Promise.all([api(`/v1/tasks/${enc(id)}`, { signal }), api(`/v1/tasks/${enc(id)}/events`, { signal })]);
    } catch (e) {
      if (e.code === 'not_found') {
        done = true;
        fill(body, h('p', { class: 'notice', testid: 'task-not-found' }, `Task ${id} was not found: it never existed or was removed after its retention period.`));
        return;
      }
      throw e;
    }
    // Relative times ("in 8 min") age too: redraw now and then even when nothing changed.
    const key = JSON.stringify([task, events, Math.floor(Date.now() / 30_000)]);
    if (key !== last) {
      last = key;
      render(task, events);
    }
    done = FINISHED.has(task.state);
  }

  async function act(what) {
    await attempt(signal, async () => {
      const r = await post(`/v1/tasks/${enc(id)}/${what}`, undefined, { signal });
      showInfo('task-action', `${what === 'cancel' ? 'Cancel' : 'Requeue'} of task ${id}: state now ${r?.state ?? 'unknown'}.`);
    });
    if (!signal.aborted) await attempt(signal, load);
  }

  function render(t, ev) {
    const actions = [];
    if (!FINISHED.has(t.state)) actions.push(h('button', { type: 'button', class: 'danger', testid: 'cancel', onclick: () => act('cancel') }, t.cancel_requested ? 'Cancel again' : 'Cancel'));
    if (t.state === 'failed' || t.state === 'expired') actions.push(h('button', { type: 'button', testid: 'requeue', onclick: () => act('requeue') }, 'Requeue'));
    fill(head, h('h1', {}, `Task ${t.id}`), stateBadge(t.state, 'task-state'), t.cancel_requested && !FINISHED.has(t.state) ? h('span', { class: 'badge warn' }, 'cancel requested') : null, h('span', { class: 'spacer' }), actions);

    const lease = t.lease;
    const rows = [
      ['Queue', h('a', { href: hashUrl('/tasks', { queue: t.queue }) }, t.queue)],
      ['Kind', h('span', { class: 'mono' }, t.kind)],
      ['Priority', t.priority],
      ['Attempts', `${t.attempt} / ${t.max_attempts}`],
      ['Group', t.group ? h('a', { href: hashUrl('/tasks', { group: t.group }) }, t.group) : '—'],
      ['Idempotency key', t.idempotency_key ?? '—'],
      ['Coalesce key', t.coalesce_key ?? '—'],
      ['Joined', t.joined ? `${t.joined} duplicate enqueues` : '—'],
      ['Created', time(t.created_at_ms)],
      ['Runs at', time(t.run_at_ms)],
      ['Finished', time(t.finished_at_ms)],
      ['Lease', lease ? h('span', { testid: 'lease' }, `worker ${lease.worker} · token ${lease.token} · expires `, time(lease.expires_at_ms), ` (${lease.lease_ms} ms lease)`) : '—'],
    ];
    const outcome = t.error
      ? h('div', { class: 'error-box', testid: 'task-error' }, h('strong', {}, t.error.code), ': ', t.error.message)
      : t.result !== null && t.result !== undefined
        ? h('pre', { class: 'json', testid: 'task-result' }, fmtJson(t.result))
        : h('p', { class: 'muted' }, '—');

    fill(
      body,
      h(
        'div',
        { class: 'detail' },
        h(
          'div',
          { class: 'detail-main' },
          h('dl', { class: 'fields', testid: 'task-fields' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
          h('h2', {}, 'Payload'),
          h('pre', { class: 'json', testid: 'task-payload' }, fmtJson(t.payload)),
          h('h2', {}, t.error ? 'Error' : 'Result'),
          outcome,
          t.progress !== null && t.progress !== undefined ? [h('h2', {}, 'Progress'), h('pre', { class: 'json', testid: 'task-progress' }, fmtJson(t.progress))] : null,
        ),
        h('div', { class: 'detail-side' }, h('h2', {}, 'History'), timeline(ev)),
      ),
    );
  }

  return poll(signal, 2000, () => (done ? undefined : load()));
}

function time(ms) {
  if (ms === undefined || ms === null) return '—';
  return h('span', { title: new Date(ms).toISOString() }, fmtTime(ms), h('span', { class: 'muted' }, ` (${fmtRelative(ms)})`));
}

function timeline(ev) {
  const events = ev?.events ?? [];
  const items = events.map((e) => {
    const bits = [];
    if (e.worker) bits.push(`worker ${e.worker}`);
    if (e.token !== undefined && e.token !== null) bits.push(`token ${e.token}`);
    if (e.attempt !== undefined && e.attempt !== null) bits.push(`attempt ${e.attempt}`);
    if (e.state) bits.push(`state ${e.state}`);
    if (e.run_at_ms) bits.push(`runs at ${fmtTime(e.run_at_ms)}`);
    return h(
      'li',
      { class: `ev ev-${e.event}`, testid: `timeline-event-${e.event}` },
      h('div', { class: 'ev-head' }, h('strong', {}, e.event), ' ', h('time', { datetime: new Date(e.at_ms).toISOString() }, fmtTime(e.at_ms))),
      bits.length ? h('div', { class: 'ev-detail' }, bits.join(' · ')) : null,
      e.error ? h('div', { class: 'ev-error' }, `${e.error.code}: ${e.error.message}`) : null,
      e.progress !== undefined && e.progress !== null ? h('div', { class: 'ev-detail mono' }, `progress ${JSON.stringify(e.progress)}`) : null,
    );
  });
  return [
    ev?.dropped ? h('p', { class: 'muted small' }, `${ev.dropped} older events were dropped.`) : null,
    items.length ? h('ol', { class: 'timeline', testid: 'timeline' }, items) : h('p', { class: 'muted', testid: 'timeline' }, 'No events.'),
  ];
}
