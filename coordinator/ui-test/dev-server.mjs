#!/usr/bin/env node
// Development server for the dashboard, no dependencies: serves coordinator/ui/ at /ui/
// from disk (edit and reload, no rebuild) and proxies every other path to one node,
// streaming responses (server-sent events included).
//
//   node dev-server.mjs --target http://127.0.0.1:7002 [--port 8080] [--api-token T]
//
// DEV ONLY, for binaries that predate the dashboard's endpoints, it also stands in for:
//   - `x-taskswarm-forward: 1`: a 307 from a follower is followed here, server-side;
//   - GET /v1/cluster/nodes: built from each member's GET /v1/cluster;
//   - GET /v1/rates: counted from this server's own GET /v1/events subscription;
//   - `oldest_queued_at_ms` on GET /v1/queues, and the `kind`/`group` filters of
//     GET /v1/tasks (filtered here, so a page can come back short).
// Each stand-in steps aside as soon as the node answers the real thing (no 404/400), so
// the same server keeps working against a binary that has them. --no-stubs turns them off.

import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../ui');
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};
// Hop-by-hop and length headers: fetch sets its own.
const DROP_REQ = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'te']);
const DROP_RES = new Set(['connection', 'content-length', 'transfer-encoding', 'keep-alive', 'content-encoding']);

export async function startDevServer({ target, port = 0, host = '127.0.0.1', apiToken = process.env.TASKSWARM_API_TOKEN, stubs = true, log = () => {} }) {
  target = target.replace(/\/+$/, '');
  const rates = stubs ? new RateCounter(target, apiToken) : null;

  const server = http.createServer(async (req, res) => {
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    try {
      const u = new URL(req.url, 'http://dev');
      if (u.pathname === '/ui' || u.pathname.startsWith('/ui/')) return await serveUi(u.pathname, res);
      const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await readBody(req);
      const ctx = { req, res, u, body, signal: abort.signal, target };
      if (stubs) {
        rates.learnToken(req.headers.authorization);
        if (req.method === 'GET' && u.pathname === '/v1/cluster/nodes' && (await stubNodes(ctx))) return;
        if (req.method === 'GET' && u.pathname === '/v1/rates' && (await stubRates(ctx, rates))) return;
        if (req.method === 'GET' && u.pathname === '/v1/queues' && (await stubQueues(ctx))) return;
        if (req.method === 'GET' && u.pathname === '/v1/tasks' && (u.searchParams.has('kind') || u.searchParams.has('group')) && (await stubTaskFilter(ctx))) return;
      }
      const up = await upstream(ctx, u.pathname + u.search);
      await pipe(up, res);
    } catch (e) {
      if (abort.signal.aborted) return;
      log(`dev-server: ${req.method} ${req.url}: ${e.message}`);
      // 503 unavailable, as a node that is down for a moment looks to the page.
      if (!res.headersSent) sendJson(res, 503, { error: { code: 'unavailable', message: `dev server could not reach ${target}: ${e.message}` } });
      else res.destroy();
    }
  });
  await new Promise((r) => server.listen(port, host, r));
  const url = `http://${host}:${server.address().port}`;
  return {
    url,
    close: () =>
      new Promise((r) => {
        rates?.stop();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function serveUi(pathname, res) {
  const rel = pathname.replace(/^\/ui\/?/, '') || 'index.html';
  const file = path.resolve(UI_DIR, rel);
  if (!file.startsWith(UI_DIR + path.sep)) return sendJson(res, 404, { error: { code: 'not_found', message: 'no such file' } });
  try {
    const data = await readFile(file);
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(data);
  } catch {
    sendJson(res, 404, { error: { code: 'not_found', message: `no file ${rel}` } });
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

/** One request to the node; a 307 is followed when the client asked for forwarding. */
async function upstream({ req, body, signal, target }, pathAndQuery, base = target) {
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) if (!DROP_REQ.has(k)) headers[k] = v;
  let url = base + pathAndQuery;
  for (let hop = 0; ; hop += 1) {
    const r = await fetch(url, { method: req.method, headers, body, redirect: 'manual', signal });
    const location = r.headers.get('location');
    if (r.status === 307 && location && req.headers['x-taskswarm-forward'] && hop < 2) {
      await r.arrayBuffer().catch(() => {});
      url = location; // DEV ONLY: what the server does itself with this header.
      continue;
    }
    return r;
  }
}

async function pipe(up, res) {
  const headers = {};
  up.headers.forEach((v, k) => {
    if (!DROP_RES.has(k)) headers[k] = v;
  });
  res.writeHead(up.status, headers);
  if (!up.body) return res.end();
  res.flushHeaders();
  Readable.fromWeb(up.body).on('error', () => res.destroy()).pipe(res);
}

/** GET through the proxy's own path, returning {status, json}. */
async function getJson(ctx, pathAndQuery, base) {
  const r = await upstream({ ...ctx, req: { ...ctx.req, method: 'GET', headers: ctx.req.headers }, body: undefined }, pathAndQuery, base);
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, json, text };
}

// DEV ONLY stand-ins below.

async function stubNodes(ctx) {
  const real = await getJson(ctx, '/v1/cluster/nodes');
  if (real.status !== 404) return sendJson(ctx.res, real.status, real.json), true;
  const self = await getJson(ctx, '/v1/cluster');
  if (self.status !== 200) return sendJson(ctx.res, self.status, self.json), true;
  const nodes = await Promise.all(
    self.json.members.map(async (m) => {
      const t0 = Date.now();
      try {
        const s = await getJson({ ...ctx, signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(1000)]) }, '/v1/cluster', m.addr);
        if (s.status !== 200) return { ...m, status: null, error: `HTTP ${s.status}`, rtt_ms: Date.now() - t0 };
        return { ...m, status: s.json, error: null, rtt_ms: Date.now() - t0 };
      } catch (e) {
        return { ...m, status: null, error: `unreachable: ${e.cause?.code ?? e.message}`, rtt_ms: null };
      }
    }),
  );
  sendJson(ctx.res, 200, { nodes });
  return true;
}

async function stubRates(ctx, rates) {
  const real = await getJson(ctx, ctx.u.pathname + ctx.u.search);
  if (real.status !== 404) return sendJson(ctx.res, real.status, real.json), true;
  // The node checks the token for real endpoints; make the stand-in refuse what it would.
  const probe = await getJson(ctx, '/v1/cluster');
  if (probe.status !== 200) return sendJson(ctx.res, probe.status, probe.json), true;
  const windowS = Math.min(3600, Math.max(10, Number(ctx.u.searchParams.get('window_s') ?? 300)));
  sendJson(ctx.res, 200, rates.view(windowS));
  return true;
}

async function stubQueues(ctx) {
  const r = await getJson(ctx, ctx.u.pathname + ctx.u.search);
  if (r.status !== 200 || !r.json?.queues) return sendJson(ctx.res, r.status, r.json), true;
  await Promise.all(
    r.json.queues.map(async (q) => {
      if ('oldest_queued_at_ms' in q) return;
      const t = await getJson(ctx, `/v1/tasks?queue=${encodeURIComponent(q.name)}&state=queued&limit=1&consistency=local`);
      q.oldest_queued_at_ms = t.json?.tasks?.[0]?.created_at_ms ?? null;
    }),
  );
  sendJson(ctx.res, 200, r.json);
  return true;
}

async function stubTaskFilter(ctx) {
  const real = await getJson(ctx, ctx.u.pathname + ctx.u.search);
  if (real.status !== 400) return sendJson(ctx.res, real.status, real.json), true;
  const q = new URLSearchParams(ctx.u.search);
  const kind = q.get('kind');
  const group = q.get('group');
  q.delete('kind');
  q.delete('group');
  const r = await getJson(ctx, `${ctx.u.pathname}?${q}`);
  if (r.status === 200) r.json.tasks = r.json.tasks.filter((t) => (!kind || t.kind === kind) && (!group || t.group === group));
  sendJson(ctx.res, r.status, r.json);
  return true;
}

/** Enqueue/succeed/fail counts per queue in 10 s buckets, from the node's event stream. */
class RateCounter {
  static BUCKET_MS = 10_000;
  constructor(target, token) {
    this.target = target;
    this.auth = token ? `Bearer ${token}` : null;
    this.buckets = new Map(); // queue -> Map(bucketStart -> {enqueued, succeeded, failed})
    this.abort = new AbortController();
    this.run();
  }
  learnToken(auth) {
    if (auth && !this.auth) this.auth = auth;
  }
  stop() {
    this.abort.abort();
  }
  async run() {
    const { signal } = this.abort;
    while (!signal.aborted) {
      try {
        const headers = { accept: 'text/event-stream' };
        if (this.auth) headers.authorization = this.auth;
        const r = await fetch(`${this.target}/v1/events`, { headers, signal });
        if (r.ok) {
          let buf = '';
          for await (const chunk of r.body.pipeThrough(new TextDecoderStream())) {
            buf += chunk;
            const lines = buf.split('\n');
            buf = lines.pop();
            for (const line of lines) if (line.startsWith('data:')) this.count(line.slice(5));
          }
        } else {
          await r.arrayBuffer();
        }
      } catch {}
      await new Promise((res) => setTimeout(res, 1000));
    }
  }
  count(data) {
    let e;
    try {
      e = JSON.parse(data);
    } catch {
      return;
    }
    if (!['enqueued', 'succeeded', 'failed'].includes(e.event) || !e.queue) return;
    const start = Math.floor((e.at_ms ?? Date.now()) / RateCounter.BUCKET_MS) * RateCounter.BUCKET_MS;
    const q = this.buckets.get(e.queue) ?? new Map();
    this.buckets.set(e.queue, q);
    const b = q.get(start) ?? { enqueued: 0, succeeded: 0, failed: 0 };
    q.set(start, b);
    b[e.event] += 1;
  }
  view(windowS) {
    const B = RateCounter.BUCKET_MS;
    const n = Math.floor((windowS * 1000) / B);
    const end = Math.floor(Date.now() / B) * B + B;
    const starts = Array.from({ length: n }, (_, i) => end - (n - i) * B);
    const queues = [...this.buckets].map(([name, m]) => {
      const pick = (k) => starts.map((s) => m.get(s)?.[k] ?? 0);
      return { name, enqueued: pick('enqueued'), succeeded: pick('succeeded'), failed: pick('failed') };
    });
    return { bucket_ms: B, end_at_ms: end, queues };
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const target = opt('--target', 'http://127.0.0.1:7002');
  const srv = await startDevServer({
    target,
    port: Number(opt('--port', 8080)),
    apiToken: opt('--api-token', process.env.TASKSWARM_API_TOKEN),
    stubs: !args.includes('--no-stubs'),
    log: (m) => console.error(m),
  });
  console.log(`dashboard: ${srv.url}/ui/  (proxying ${target})`);
}
