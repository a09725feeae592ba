// The API token: asked for once when the server answers 401/403, kept in sessionStorage
// so it lasts for the tab and never outlives it. Requests that hit 401 together all wait
// on the same form.

const KEY = 'taskswarm.apiToken';
let pending = null; // { promise, resolve }
let memory = ''; // when storage is disabled, the token lasts until the page reloads

export function currentToken() {
  try {
    return sessionStorage.getItem(KEY) || memory;
  } catch {
    return memory;
  }
}

function setToken(token) {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {}
  memory = token;
  syncForgetLink();
}

export function forgetToken() {
  try {
    sessionStorage.removeItem(KEY);
  } catch {}
  memory = '';
  syncForgetLink();
}

function syncForgetLink() {
  const a = document.getElementById('forget-token');
  if (a) a.hidden = !currentToken();
}

/**
 * Resolves once the user gave a token; rejects with AbortError when `signal` aborts first
 * (the page was left). `code` is the server's answer: unauthorized or forbidden.
 */
export function requestToken(code, signal) {
  if (!pending) {
    let resolve;
    const promise = new Promise((r) => (resolve = r));
    pending = { promise, resolve };
    openForm(code);
  }
  const { promise } = pending;
  if (!signal) return promise;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then((v) => {
      signal.removeEventListener('abort', onAbort);
      resolve(v);
    });
  });
}

function openForm(code) {
  const form = document.getElementById('token-form');
  document.getElementById('token-reason').textContent =
    code === 'forbidden'
      ? 'The server refused this API token (forbidden). Enter the right one.'
      : 'This server needs an API token (unauthorized).';
  form.hidden = false;
  document.getElementById('token-input').focus();
}

export function installTokenForm() {
  syncForgetLink();
  const form = document.getElementById('token-form');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const input = document.getElementById('token-input');
    const token = input.value.trim();
    if (!token) return;
    setToken(token);
    input.value = '';
    form.hidden = true;
    const p = pending;
    pending = null;
    p?.resolve(token);
  });
  document.getElementById('forget-token').addEventListener('click', (e) => {
    e.preventDefault();
    forgetToken();
    location.reload();
  });
}
