// A real cluster for the Node client's tests and the dashboard's browser test:
// `taskswarm node` processes from the built binary (TASKSWARM_BIN, default the root
// workspace's release build) on free loopback ports, data and logs in a temp dir, with
// an optional API token; stopped by PID.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const TARGET_DIR = process.env.CARGO_TARGET_DIR ?? '/var/tmp/taskswarm-target';
export const BIN = process.env.TASKSWARM_BIN ?? path.join(TARGET_DIR, 'release', 'taskswarm');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function waitFor(what, check, timeoutMs = 30_000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export class Cluster {
  /** extra: more `taskswarm node` flags; token: start the nodes with --api-token (and
   * send it on the helper's own status reads). */
  static async start(n = 3, extra = [], { token } = {}) {
    if (!existsSync(BIN)) throw new Error(`no taskswarm binary at ${BIN}: cargo build --release --bin taskswarm, or set TASKSWARM_BIN`);
    const c = new Cluster();
    c.token = token;
    c.dir = mkdtempSync(path.join(os.tmpdir(), 'taskswarm-node-test-'));
    c.urls = [];
    for (let i = 0; i < n; i += 1) c.urls.push(`http://127.0.0.1:${await freePort()}`);
    c.peers = c.urls.map((u, i) => `${i + 1}=${u}`).join(',');
    c.extra = [...(token ? ['--api-token', token] : []), ...extra];
    c.procs = new Array(n).fill(null);
    for (let id = 1; id <= n; id += 1) c.spawn(id);
    await c.leader();
    return c;
  }

  spawn(id) {
    const url = this.urls[id - 1];
    const logFile = path.join(this.dir, `n${id}.log`);
    const out = openSync(logFile, 'a');
    const child = spawn(
      BIN,
      ['node', '--id', String(id), '--listen', url.replace('http://', ''), '--data-dir', path.join(this.dir, `n${id}`), '--peers', this.peers, '--cluster-secret', 'node-test-secret', ...this.extra],
      { stdio: ['ignore', out, out] },
    );
    child.logFile = logFile;
    this.procs[id - 1] = child;
  }

  headers() {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  async status(id) {
    const r = await fetch(`${this.urls[id - 1]}/v1/cluster`, { headers: this.headers(), signal: AbortSignal.timeout(1000) });
    if (!r.ok) throw new Error(`node ${id}: /v1/cluster answered ${r.status}`);
    return r.json();
  }

  /** The leader's id, once every running node agrees on one. */
  async leader(timeoutMs = 30_000) {
    return waitFor(
      'a leader every running node agrees on',
      async () => {
        const seen = new Set();
        for (let id = 1; id <= this.urls.length; id += 1) {
          if (!this.procs[id - 1]) continue;
          const s = await this.status(id);
          if (!s.leader_id) return null;
          seen.add(s.leader_id);
        }
        return seen.size === 1 ? [...seen][0] : null;
      },
      timeoutMs,
    );
  }

  follower(leader) {
    for (let id = 1; id <= this.urls.length; id += 1) if (id !== leader && this.procs[id - 1]) return id;
    throw new Error('no running follower');
  }

  url(id) {
    return this.urls[id - 1];
  }

  pid(id) {
    return this.procs[id - 1]?.pid;
  }

  kill(id) {
    const p = this.procs[id - 1];
    if (!p) return Promise.resolve();
    this.procs[id - 1] = null;
    const exited = p.exitCode !== null || p.signalCode !== null;
    p.kill('SIGKILL');
    return exited ? Promise.resolve() : new Promise((r) => p.once('exit', r));
  }

  /** The tail of a node's log, for failure messages. */
  logTail(id, lines = 20) {
    try {
      const text = readFileSync(path.join(this.dir, `n${id}.log`), 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
      return text.trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  async stop({ keepDir = false } = {}) {
    await Promise.all(this.procs.map((p, i) => (p ? this.kill(i + 1) : null)));
    if (!keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
