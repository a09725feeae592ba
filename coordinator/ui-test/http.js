// The test's own API client: the token on every request, a 307 followed by hand (fetch
// drops Authorization on a redirect to another origin, and every node is one), and a
// 503 between leaders retried for a while.

export class Api {
  constructor(baseUrl, token) {
    this.base = baseUrl.replace(/\/+$/, '');
    this.token = token;
  }

  async call(method, path, body, { timeoutMs = 15_000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    let url = this.base + path;
    for (;;) {
      const headers = { accept: 'application/json' };
      if (this.token) headers.authorization = `Bearer ${this.token}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      let r;
      try {
        r = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), redirect: 'manual', signal: AbortSignal.timeout(5000) });
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`${method} ${path}: ${e.message}`);
        url = this.base + path;
        await sleep(200);
        continue;
      }
      if (r.status === 307 && r.headers.get('location')) {
        await r.arrayBuffer();
        url = r.headers.get('location');
        continue;
      }
      const text = await r.text();
      let json = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {}
      if (r.status === 503 && Date.now() < deadline) {
        url = this.base + path;
        await sleep(200);
        continue;
      }
      if (!r.ok) {
        const err = new Error(`${method} ${path} answered ${r.status}: ${text.slice(0, 300)}`);
        err.status = r.status;
        err.code = json?.error?.code;
        throw err;
      }
      return json;
    }
  }

  get(path, opts) {
    return this.call('GET', path, undefined, opts);
  }

  post(path, body, opts) {
    return this.call('POST', path, body, opts);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
