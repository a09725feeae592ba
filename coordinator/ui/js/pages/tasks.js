// The task list: filters live in the URL hash (shareable, back button works), and it is
// always one page of PAGE tasks from the API's cursor, so a backlog of 100,000 costs the
// same as one of 10.

import { api, post, enc } from '../api.js';
import { h, fill, STATES, stateBadge, hashUrl, withQuery, fmtTime } from '../dom.js';
import { attempt } from '../poll.js';
import { showInfo } from '../banner.js';

const PAGE = 50;
const FILTERS = ['queue', 'state', 'kind', 'group'];

export async function mount(view, { signal, query }) {
  const f = Object.fromEntries(FILTERS.map((k) => [k, query.get(k) ?? '']));
  const after = query.get('after') ?? '';

  const input = (name, placeholder) => h('input', { name, value: f[name], placeholder, testid: `filter-${name}`, list: name === 'queue' ? 'queue-names' : undefined });
  const stateSelect = h('select', { name: 'state', testid: 'filter-state' }, h('option', { value: '' }, 'any state'), STATES.map((s) => h('option', { value: s, selected: s === f.state }, s)));
  const queueNames = h('datalist', { id: 'queue-names' });
  const form = h(
    'form',
    { class: 'filters', testid: 'task-filters' },
    h('label', {}, 'Queue ', input('queue', 'any')),
    h('label', {}, 'State ', stateSelect),
    h('label', {}, 'Kind ', input('kind', 'any')),
    h('label', {}, 'Group ', input('group', 'any')),
    h('button', { type: 'submit', testid: 'filter-apply' }, 'Apply'),
    h('a', { href: '#/tasks', class: 'small' }, 'clear'),
    queueNames,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    location.hash = hashUrl('/tasks', Object.fromEntries(FILTERS.map((k) => [k, String(data[k] ?? '').trim()])));
  });

  const tools = h('div', { class: 'toolbar' });
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const pager = h('div', { class: 'pager' });
  view.append(h('div', { class: 'page-head' }, h('h1', {}, 'Tasks')), form, tools, list, pager);

  // Suggestions only: a failure here must not hide the list.
  api('/v1/queues', { signal })
    .then((b) => fill(queueNames, (b?.queues ?? []).map((q) => h('option', { value: q.name }))))
    .catch(() => {});

  // Not polled: a list that reorders under the cursor is hard to read. Refresh reloads it.
  async function load() {
    let body;
    try {
      body = await api(withQuery('/v1/tasks', { ...f, limit: PAGE, after }), { signal });
    } catch (e) {
      fill(list, h('p', { class: 'muted' }, `Could not load tasks (${e.code ?? e.name}).`));
      throw e;
    }
    const tasks = body?.tasks ?? [];
    renderList(tasks);
    renderPager(tasks.length, body?.next ?? null);
    if (f.state === 'failed' && tasks.length) renderRequeueAll(tasks);
    else fill(tools);
  }
  await load();

  function renderList(tasks) {
    if (!tasks.length) {
      fill(list, h('p', { class: 'muted', testid: 'no-tasks' }, after ? 'No more tasks on this page.' : 'No tasks match these filters.'));
      return;
    }
    fill(
      list,
      h(
        'table',
        { class: 'grid', testid: 'task-table' },
        h('thead', {}, h('tr', {}, ['Id', 'Queue', 'Kind', 'State', 'Attempt', 'Priority', 'Created', 'Group'].map((t) => h('th', {}, t)))),
        h(
          'tbody',
          {},
          tasks.map((t) =>
            h(
              'tr',
              { testid: `task-row-${t.id}` },
              h('td', { class: 'num' }, h('a', { href: `#/tasks/${t.id}`, testid: `task-link-${t.id}` }, t.id)),
              h('td', {}, h('a', { href: hashUrl('/tasks', { queue: t.queue }) }, t.queue)),
              h('td', { class: 'mono' }, t.kind),
              h('td', {}, stateBadge(t.state), t.cancel_requested && !['cancelled'].includes(t.state) ? h('span', { class: 'small muted' }, ' cancel requested') : null),
              h('td', { class: 'num' }, `${t.attempt}/${t.max_attempts}`),
              h('td', { class: 'num' }, t.priority),
              h('td', { class: 'nowrap' }, fmtTime(t.created_at_ms)),
              h('td', {}, t.group ?? ''),
            ),
          ),
        ),
      ),
    );
  }

  function renderPager(count, next) {
    const first = h('a', { href: hashUrl('/tasks', f), class: 'button', testid: 'first-page', 'aria-disabled': after ? undefined : 'true' }, 'First page');
    const nextLink = next != null ? h('a', { href: hashUrl('/tasks', { ...f, after: next }), class: 'button', testid: 'next-page' }, 'Next page →') : h('span', { class: 'button disabled' }, 'Next page →');
    const where = after ? `${count} tasks after id ${after}` : `${count} tasks`;
    const refresh = h('button', { type: 'button', class: 'secondary', testid: 'refresh', onclick: () => attempt(signal, load) }, 'Refresh');
    fill(pager, first, nextLink, refresh, h('span', { class: 'muted small' }, `${where}${next != null ? ', more follow' : ''}`));
  }

  function renderRequeueAll(tasks) {
    const report = h('span', { class: 'small', testid: 'requeue-all-report' });
    const label = `Requeue all ${tasks.length} shown`;
    const button = h('button', { type: 'button', testid: 'requeue-all' }, label);
    let armed = null; // the first click only arms the button: a requeue runs tasks again
    button.addEventListener('click', async () => {
      if (!armed) {
        button.textContent = `Click again to requeue ${tasks.length} tasks`;
        button.classList.add('danger');
        armed = setTimeout(() => {
          armed = null;
          button.textContent = label;
          button.classList.remove('danger');
        }, 5000);
        return;
      }
      clearTimeout(armed);
      button.disabled = true;
      let ok = 0;
      let failed = 0;
      let firstError = null;
      // A few at a time: each requeue is a Raft write, and the leader batches them anyway.
      const queue = [...tasks];
      const worker = async () => {
        for (let t = queue.shift(); t; t = queue.shift()) {
          try {
            await post(`/v1/tasks/${enc(t.id)}/requeue`, undefined, { signal });
            ok += 1;
          } catch (e) {
            if (signal.aborted) return;
            failed += 1;
            firstError ??= `task ${t.id}: ${e.code}: ${e.message}`;
          }
          report.textContent = `requeued ${ok}, failed ${failed}…`;
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      if (signal.aborted) return;
      const text = `Requeued ${ok} of ${tasks.length} tasks; ${failed} failed${firstError ? ` (first: ${firstError})` : ''}.`;
      report.textContent = text;
      // The banner outlives the reload below, which drops the rows (and this button) that
      // are no longer failed.
      showInfo('requeue-all', text);
      await attempt(signal, load);
    });
    fill(tools, button, ' ', report);
  }
}
