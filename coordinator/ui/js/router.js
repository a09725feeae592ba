// Hash routes (#/path?query), so the dashboard is static files under /ui/ and a link or
// reload lands on the same view. Each page gets an AbortSignal that fires when the route
// changes: its polls, requests and streams stop with it.

import { clearAll } from './banner.js';

export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#/, '') || '/';
  const [path, qs = ''] = raw.split('?');
  return { path: path.replace(/\/+$/, '') || '/', query: new URLSearchParams(qs) };
}

/**
 * routes: [{ name, title, pattern: /^\/tasks\/(\d+)$/, nav: '/tasks', page: { mount(view, ctx) } }];
 * the pattern's groups become ctx.params. Unknown routes go to `fallback`.
 */
export function startRouter({ routes, fallback, view, onError }) {
  let current = null; // AbortController of the mounted page

  function render() {
    const { path, query } = parseHash();
    const route = routes.find((r) => r.pattern.test(path));
    if (!route) {
      // replace, not assign: the unknown route should not stay in history
      location.replace(fallback);
      return;
    }
    current?.abort();
    clearAll();
    current = new AbortController();
    const params = path.match(route.pattern).slice(1);
    for (const a of document.querySelectorAll('nav a[data-route]')) {
      a.classList.toggle('active', a.dataset.route === route.nav);
    }
    view.replaceChildren();
    view.dataset.page = route.name;
    document.title = `${route.title} · taskswarm`;
    try {
      const r = route.page.mount(view, { signal: current.signal, params, query });
      // A page that throws while rendering must still leave a readable message.
      Promise.resolve(r).catch(onError);
    } catch (e) {
      onError(e);
    }
  }

  window.addEventListener('hashchange', render);
  render();
}
