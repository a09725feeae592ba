// The one place errors become visible. Messages are keyed by error code so a poll that
// fails every 2 s updates one banner instead of stacking copies.

import { h } from './dom.js';

const box = () => document.getElementById('banners');
const shown = new Map(); // key -> element

// Conditions that pass by themselves (an election, a restart): a warning that the next
// successful request clears. Anything else is an error that stays until dismissed.
const TRANSIENT = {
  no_leader: 'The cluster has no leader right now',
  no_quorum: 'The cluster has no leader right now',
  unavailable: 'The node is unavailable right now',
  not_leader: 'This node did not forward the request to the leader',
  network: 'Cannot reach the server',
};

export function showError(err) {
  const code = err?.code ?? 'error';
  const message = err?.message ?? String(err);
  if (TRANSIENT[code]) show(code, 'warn', TRANSIENT[code], `${code}: ${message}`, true);
  else show(code, 'error', code, message, false);
}

export function showInfo(key, text) {
  show(key, 'info', '', text, false);
}

function show(key, kind, title, text, transient) {
  shown.get(key)?.remove();
  const el = h(
    'div',
    { class: `banner ${kind}`, testid: kind === 'error' ? 'error-banner' : `${kind}-banner`, 'data-code': key, role: kind === 'info' ? 'status' : 'alert' },
    title ? h('strong', {}, title) : null,
    h('span', { class: 'banner-text' }, text),
    h('button', { type: 'button', class: 'link dismiss', title: 'Dismiss', 'aria-label': 'Dismiss', onclick: () => dismiss(key) }, '×'),
  );
  el.dataset.transient = transient ? '1' : '';
  shown.set(key, el);
  box().append(el);
}

export function dismiss(key) {
  shown.get(key)?.remove();
  shown.delete(key);
}

/** A request succeeded: leader-related warnings are stale now. */
export function clearTransient() {
  for (const [key, el] of shown) if (el.dataset.transient) dismiss(key);
}

/** Leaving a page: its errors no longer describe what is on screen. */
export function clearAll() {
  for (const key of [...shown.keys()]) dismiss(key);
}
