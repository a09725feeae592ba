// Element building and formatting shared by the pages. Text always goes through
// textContent (never innerHTML), so task payloads and error messages cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Sets text only when it changed, so a poll does not disturb selection or hover. */
export function setText(el, text) {
  const t = String(text);
  if (el.textContent !== t) el.textContent = t;
}

export const STATES = ['queued', 'scheduled', 'running', 'succeeded', 'failed', 'cancelled', 'expired'];
export const FINISHED = new Set(['succeeded', 'failed', 'cancelled', 'expired']);

export function stateBadge(state, testid) {
  return h('span', { class: `badge st-${state}`, testid }, state);
}

/** `path?k=v`, leaving out empty values: the API would read a present one as a filter. */
export function withQuery(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export const hashUrl = (path, params) => `#${withQuery(path, params)}`;

const pad = (n, w = 2) => String(n).padStart(w, '0');

export function fmtTime(ms) {
  if (ms == null) return '—';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtClock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** "12 s", "3 min", "5 h", "2 d": coarse on purpose, it is read at a glance. */
export function fmtAge(ms) {
  if (ms == null || Number.isNaN(ms)) return '—';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

export function fmtRelative(ms) {
  const d = ms - Date.now();
  return d >= 0 ? `in ${fmtAge(d)}` : `${fmtAge(-d)} ago`;
}

export const fmtJson = (v) => (v === undefined ? '—' : JSON.stringify(v, null, 2));

export function fmtRate(perSecond) {
  if (!Number.isFinite(perSecond)) return '—';
  if (perSecond === 0) return '0';
  return perSecond >= 10 ? perSecond.toFixed(0) : perSecond.toFixed(perSecond >= 1 ? 1 : 2);
}
