// A real 3-node cluster for the tests: `taskswarm node` processes from the built binary
// (TASKSWARM_BIN, default the root workspace's release build) on free loopback ports,
// data in a temp dir; stopped by PID.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const BIN =
  process.env.TASKSWARM_BIN ??
  path.join(process.env.CARGO_TARGET_DIR ?? '/var/tmp/taskswarm-target', 'release', 'taskswarm');
/** Longest wait for a leader or a condition. */
export const WAIT_MS = 30_000;

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

export async function waitFor(what, check, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch {}
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class Cluster {
  static async start(n = 3, extra = []) {
    if (!existsSync(BIN)) throw new Error(`no taskswarm binary at ${BIN}: cargo build --release --bin taskswarm`);
    const c = new Cluster();
    c.dir = mkdtempSync(path.join(os.tmpdir(), 'taskswarm-node-test-'));
    c.urls = [];
    for (let i = 0; i < n; i += 1) c.urls.push(`http://127.0.0.1:${await freePort()}`);
    c.peers = c.urls.map((u, i) => `${i + 1}=${u}`).join(',');
    c.extra = extra;
    c.procs = new Array(n).fill(null);
    for (let id = 1; id <= n; id += 1) c.spawn(id);
    await c.leader();
    return c;
  }

  spawn(id) {
    const url = this.urls[id - 1];
    const child = spawn(
      BIN,
      [
        'node', '--id', String(id), '--listen', url.replace('http://', ''), '--data-dir', path.join(this.dir, `n${id}`),
        '--peers', this.peers, '--cluster-secret', 'node-client-test-secret', ...this.extra,
      ],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    );
    this.procs[id - 1] = child;
  }

  async status(id) {
    const r = await fetch(`${this.urls[id - 1]}/v1/cluster`, { signal: AbortSignal.timeout(1000) });
    return r.json();
  }

  /** The leader's id, once every running node agrees on one. */
  async leader() {
    return waitFor('a leader', async () => {
      const seen = new Set();
      for (let id = 1; id <= this.urls.length; id += 1) {
        if (!this.procs[id - 1]) continue;
        const s = await this.status(id);
        if (!s.leader_id) return null;
        seen.add(s.leader_id);
      }
      return seen.size === 1 ? [...seen][0] : null;
    });
  }

  follower(leader) {
    for (let id = 1; id <= this.urls.length; id += 1) if (id !== leader && this.procs[id - 1]) return id;
    throw new Error('no running follower');
  }

  url(id) {
    return this.urls[id - 1];
  }

  kill(id) {
    const p = this.procs[id - 1];
    this.procs[id - 1] = null;
    p.kill('SIGKILL');
    return new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)));
  }

  async stop() {
    await Promise.all(
      this.procs.map((p, i) => (p ? this.kill(i + 1) : null)),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}
