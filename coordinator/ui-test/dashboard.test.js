// The dashboard in a real headless Chromium against a real 3-node cluster with an API
// token. The page is opened on a follower, so every API call it makes has to be
// forwarded to the leader (the `x-taskswarm-forward: 1` header).
//
//   TASKSWARM_BIN=... npm test                  the binary serves /ui/ itself
//   UI_TEST_DEV_SERVER=1 TASKSWARM_BIN=... npm test
//        puts dev-server.mjs in front of the follower (for binaries without /ui/)
//   UPDATE_README_SCREENSHOT=1                  also writes docs/dashboard-queues.png
//
// Chromium: $CHROMIUM or /usr/bin/chromium (Debian's package; nothing is downloaded).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { Cluster, TARGET_DIR, BIN, waitFor } from '../../clients/node/test/cluster.js';
import { Api, sleep } from './http.js';
import { seed } from './seed.js';
import { startDevServer } from './dev-server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const DEV = process.env.UI_TEST_DEV_SERVER === '1';
const SHOTS = path.join(TARGET_DIR, 'ui-screenshots');
const README_SHOT = path.resolve(HERE, '../../docs/dashboard-queues.png');
const TOKEN = `ui-test-${process.pid}`;
const STEP_MS = 60_000;

const log = (...a) => console.log('[ui-test]', ...a);
let anyFailed = false;

let cluster;
let leader;
let follower;
let api;
let ids;
let dev;
let base; // origin serving /ui/ and the API, in front of the follower
let browser;
let page;

// What the browser reported, tagged with the step that was running.
let phase = 'start';
const consoleErrors = [];
const pageErrors = [];

/** Retries `check` (which throws with a useful message) until it passes. */
async function eventually(what, check, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) {
        e.message = `${what}: still failing after ${timeoutMs} ms: ${e.message}`;
        throw e;
      }
    }
    await sleep(200);
  }
}

const byTestId = (id) => page.locator(`[data-testid="${id}"]`);
const text = async (id) => (await byTestId(id).textContent({ timeout: 5000 }))?.trim();

async function go(hash) {
  await page.goto(`${base}/ui/${hash}`);
}

/** Fails on any console error or uncaught exception seen during `label`, and on a visible error banner. */
async function assertClean(label) {
  const c = consoleErrors.filter((e) => e.phase === label);
  const p = pageErrors.filter((e) => e.phase === label);
  assert.deepEqual(c.map((e) => e.text), [], `console errors on the ${label} page`);
  assert.deepEqual(p.map((e) => e.text), [], `uncaught page errors on the ${label} page`);
  const banners = await byTestId('error-banner').allTextContents();
  assert.deepEqual(banners, [], `error banner on the ${label} page`);
}

async function screenshot(name) {
  mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
  return file;
}

/** Opens a page, waits until `ready` passes, and lets it poll a couple of times. */
async function visit(label, hash, ready) {
  phase = label;
  log(`open ${label}: ${base}/ui/${hash}`);
  await go(hash);
  await ready();
  await sleep(2500);
  await assertClean(label);
}

/** A test step that, when it fails, leaves a screenshot of what the browser showed. */
function step(name, fn) {
  it(name, { timeout: STEP_MS }, async () => {
    try {
      await fn();
    } catch (e) {
      anyFailed = true;
      if (page) await screenshot(`failed-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`).catch(() => {});
      throw e;
    }
  });
}

describe('dashboard', { timeout: 10 * 60_000 }, () => {
  before(async () => {
    anyFailed = true; // until setup completes
    log(`binary ${BIN}${DEV ? ' (dev server in front)' : ''}; chromium ${CHROMIUM}`);
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM`);
    cluster = await Cluster.start(3, [], { token: TOKEN });
    leader = await cluster.leader();
    follower = cluster.follower(leader);
    log(`cluster ${cluster.urls.join(' ')}; leader ${leader} (pid ${cluster.pid(leader)}), dashboard on follower ${follower}`);
    api = new Api(cluster.url(leader), TOKEN);
    if (DEV) {
      dev = await startDevServer({ target: cluster.url(follower), apiToken: TOKEN, log });
      base = dev.url;
      log(`dev server ${base} -> node ${follower}`);
    } else {
      base = cluster.url(follower);
    }
    const ui = await fetch(`${base}/ui/`);
    assert.equal(
      ui.status,
      200,
      `GET ${base}/ui/ answered ${ui.status}: this binary does not serve the dashboard (UI_TEST_DEV_SERVER=1 puts the dev server in front)` +
        ([401, 403].includes(ui.status) ? ', or it wants the token for it: /ui/ must be open, the page asks for the token itself' : ''),
    );
    assert.match(ui.headers.get('content-type') ?? '', /text\/html/, 'GET /ui/ content type');

    ids = await seed(api, log);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-dev-shm-usage'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push({ phase, text: m.text() });
    });
    page.on('pageerror', (e) => pageErrors.push({ phase, text: String(e?.stack ?? e) }));
    anyFailed = false;
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await dev?.close().catch(() => {});
    if (cluster) {
      if (anyFailed) for (let id = 1; id <= 3; id += 1) log(`node ${id} log tail:\n${cluster.logTail(id, 8)}`);
      await cluster.stop();
    }
    for (const e of consoleErrors) log(`browser console error during "${e.phase}": ${e.text}`);
    for (const e of pageErrors) log(`uncaught page error during "${e.phase}": ${e.text}`);
  });

  step('asks for the token once, then shows the queues', async () => {
    phase = 'token';
    await go('#/queues');
    await byTestId('token-input').fill(TOKEN);
    await byTestId('token-submit').click();
    await byTestId('queue-row-emails').waitFor();
    assert.equal(await byTestId('token-form').isHidden(), true, 'token form still shown after entering the token');
    // The requests before the token are refused on purpose; Chromium logs each refusal.
    const unexpected = [...consoleErrors, ...pageErrors].filter((e) => e.phase === 'token' && !/status of 401/.test(e.text));
    assert.deepEqual(unexpected, [], 'browser errors other than the expected 401s before the token was given');
    // Reloading keeps the token for the tab.
    phase = 'reload';
    await page.reload();
    await byTestId('queue-row-emails').waitFor();
    assert.equal(await byTestId('token-form').isHidden(), true, 'token asked again after a reload');
    await assertClean('reload');
  });

  step('queues page: counts equal GET /v1/queues', async () => {
    await visit('queues', '#/queues', () => byTestId('queue-row-media').waitFor());
    const shown = await eventually('queue counts on the page equal the API', async () => {
      const { queues } = await api.get('/v1/queues');
      const diffs = [];
      for (const q of queues) {
        for (const [state, n] of Object.entries(q.counts)) {
          const got = await text(`count-${q.name}-${state}`);
          if (got !== String(n)) diffs.push(`${q.name}/${state}: page ${got}, API ${n}`);
        }
      }
      assert.deepEqual(diffs, [], 'counts that differ');
      return queues;
    });
    log(`counts match for ${shown.map((q) => q.name).join(', ')}`);
    for (const state of ['queued', 'scheduled', 'running', 'succeeded', 'failed', 'cancelled', 'expired']) {
      const total = shown.reduce((n, q) => n + (q.counts[state] ?? 0), 0);
      assert.ok(total > 0, `the seed left no task ${state}`);
    }
    assert.equal(await text('paused-media'), 'paused', 'media is paused but not shown so');
    assert.equal(await byTestId('resume-media').isVisible(), true, 'paused queue media has no Resume button');
    const file = await screenshot('queues');
    if (process.env.UPDATE_README_SCREENSHOT === '1') {
      mkdirSync(path.dirname(README_SHOT), { recursive: true });
      copyFileSync(file, README_SHOT);
      log(`README screenshot ${README_SHOT}`);
    }
  });

  step('queues page: Pause pauses the queue and Resume resumes it', async () => {
    phase = 'queues';
    const paused = async () => (await api.get('/v1/queues')).queues.find((q) => q.name === 'emails')?.paused;
    assert.equal(await paused(), false, 'emails paused before the test clicked anything');
    await byTestId('pause-emails').click();
    await eventually('GET /v1/queues says emails is paused after clicking Pause', async () => assert.equal(await paused(), true));
    await byTestId('resume-emails').waitFor();
    log('pause: emails paused');
    await byTestId('resume-emails').click();
    await eventually('GET /v1/queues says emails is not paused after clicking Resume', async () => assert.equal(await paused(), false));
    await byTestId('pause-emails').waitFor();
    log('resume: emails resumed');
    await assertClean('queues');
  });

  step('tasks page: lists the dead-letter set with a requeue-all button, and pages', async () => {
    await visit('tasks', '#/tasks', () => byTestId('task-table').waitFor());
    await screenshot('tasks');
    phase = 'tasks';
    // Paging: 60 tasks in thumbnails make a full first page and a short second one.
    await go('#/tasks?queue=thumbnails');
    await byTestId(`task-row-${ids.bulk[0]}`).waitFor();
    const rowIds = async () => (await page.locator('[data-testid^="task-row-"]').evaluateAll((rows) => rows.map((r) => Number(r.dataset.testid.slice(9)))));
    const first = await rowIds();
    assert.equal(first.length, 50, 'rows on the first page of thumbnails');
    await byTestId('next-page').click();
    await byTestId(`task-row-${ids.bulk[59]}`).waitFor();
    const second = await rowIds();
    assert.equal(second.length, ids.bulk.length - 50, 'rows on the second page of thumbnails');
    assert.ok(Math.min(...second) > Math.max(...first), `second page ${second} does not follow the first ${first}`);
    await byTestId('first-page').click();
    await byTestId(`task-row-${ids.bulk[0]}`).waitFor();
    log(`paging: ${first.length} + ${second.length} tasks over two pages`);
    // The filter form: kind and group applied through the URL, rows as the API lists them.
    await go('#/tasks');
    await byTestId('filter-kind').fill('render_report');
    await byTestId('filter-group').fill('finance');
    await byTestId('filter-apply').click();
    await page.waitForURL(/kind=render_report&group=finance/);
    // Worked out here from the whole list, so the server's own filtering is checked too.
    const all = (await api.get('/v1/tasks?limit=1000')).tasks;
    const want = all.filter((t) => t.kind === 'render_report' && t.group === 'finance').map((t) => t.id);
    assert.ok(want.length > 0, 'the seed made no render_report task in group finance');
    await byTestId(`task-row-${want[0]}`).waitFor();
    assert.deepEqual(await rowIds(), want, 'rows for kind=render_report group=finance');
    log(`filter kind+group: tasks ${want.join(',')}`);
    await go('#/tasks?queue=emails&state=failed');
    for (const id of ids.failed.slice(0, 2)) await byTestId(`task-row-${id}`).waitFor();
    assert.equal(await page.locator('[data-testid^="task-row-"]').count(), 2, 'rows in emails/failed');
    assert.equal(await byTestId('requeue-all').isVisible(), true, 'no "Requeue all shown" button on the failed filter');
    await assertClean('tasks');
  });

  step('tasks page: "Requeue all shown" requeues the listed dead-letter tasks', async () => {
    phase = 'requeue-all';
    const dead = ids.failed.slice(2); // the reports queue's; emails' are left for the detail page
    await go('#/tasks?queue=reports&state=failed');
    await byTestId(`task-row-${dead[0]}`).waitFor();
    await byTestId('requeue-all').click(); // arms it
    await byTestId('requeue-all').click();
    const report = page.locator('[data-testid="info-banner"][data-code="requeue-all"]');
    await report.waitFor();
    assert.match(await report.textContent(), new RegExp(`Requeued ${dead.length} of ${dead.length} tasks; 0 failed`), 'requeue-all report');
    for (const id of dead) assert.equal((await api.get(`/v1/tasks/${id}`)).state, 'queued', `task ${id} after "Requeue all shown"`);
    log(`requeue all: ${dead.join(',')} queued again`);
    await assertClean('requeue-all');
  });

  step('an API error shows as a readable, dismissible banner', async () => {
    phase = 'api-error'; // the 400 below is logged by Chromium on purpose
    await go('#/tasks?state=bogus');
    const banner = page.locator('[data-testid="error-banner"][data-code="invalid_request"]');
    await banner.waitFor();
    const shown = (await banner.innerText()).replace(/×\s*$/, '').replace(/\s+/g, ' ').trim();
    assert.match(shown, /invalid_request/, 'banner names the code');
    assert.ok(shown.length > 'invalid_request'.length + 5, `banner has no message: "${shown}"`);
    await banner.locator('button').click();
    await banner.waitFor({ state: 'detached' });
    log(`error banner: "${shown}"`);
    assert.deepEqual(pageErrors.filter((e) => e.phase === 'api-error').map((e) => e.text), [], 'uncaught page errors');
  });

  step('task page: requeueing a dead-lettered task brings it back', async () => {
    const id = ids.failed[0];
    phase = 'task-requeue';
    await go('#/tasks?queue=emails&state=failed');
    await byTestId(`task-link-${id}`).click();
    await eventually(`task ${id} page shows failed`, async () => assert.equal(await text('task-state'), 'failed'));
    await byTestId('requeue').click();
    await eventually(`GET /v1/tasks/${id} says queued after clicking Requeue`, async () => assert.equal((await api.get(`/v1/tasks/${id}`)).state, 'queued'));
    await eventually(`task ${id} page shows queued after the requeue`, async () => assert.equal(await text('task-state'), 'queued'));
    await byTestId('timeline-event-requeued').waitFor();
    log(`requeue: task ${id} failed -> queued`);
    await assertClean('task-requeue');
  });

  step('task page: a succeeded task shows claimed (with its token) and succeeded', async () => {
    const id = ids.succeeded[0];
    const { events } = await api.get(`/v1/tasks/${id}/events`);
    const claimed = events.find((e) => e.event === 'claimed');
    assert.ok(claimed?.token != null, `task ${id} has no claimed event with a token: ${JSON.stringify(events)}`);
    await visit('task', `#/tasks/${id}`, () => byTestId('timeline').waitFor());
    assert.equal(await text('task-state'), 'succeeded');
    const claimedText = await text('timeline-event-claimed');
    assert.ok(claimedText.includes(`token ${claimed.token}`), `claimed event shows "${claimedText}", expected "token ${claimed.token}"`);
    assert.ok(claimedText.includes(claimed.worker), `claimed event shows "${claimedText}", expected worker ${claimed.worker}`);
    await byTestId('timeline-event-succeeded').waitFor();
    assert.equal(await byTestId('requeue').count(), 0, 'a succeeded task offers Requeue');
    assert.equal(await byTestId('cancel').count(), 0, 'a succeeded task offers Cancel');
    log(`timeline of task ${id}: claimed with token ${claimed.token}, succeeded`);
    await screenshot('task');
  });

  step('live page: shows a task enqueued while it is open', async () => {
    await visit('live', '#/live', () => page.locator('[data-testid="stream-status-events"][data-state="open"]').waitFor());
    const { id } = await api.post('/v1/tasks', { queue: 'reports', kind: 'render_report', payload: { report: 'live-check' } });
    await page.locator(`[data-testid="live-row"][data-task="${id}"][data-event="enqueued"]`).waitFor({ timeout: 10_000 });
    log(`live: enqueued event of task ${id} shown`);
    await page.locator('[data-testid="stream-status-broadcast"][data-state="open"]').waitFor();
    await api.post('/v1/broadcast', { channel: 'deploys', message: { version: '1.4.2' } });
    await page.locator('[data-testid="live-row"][data-kind="broadcast"][data-event="deploys"]').waitFor({ timeout: 10_000 });
    log('live: broadcast shown');
    await sleep(300);
    await assertClean('live');
    await screenshot('live');
  });

  step('cluster page: shows the new leader within 15 s of killing the leader', async () => {
    await visit('cluster', '#/cluster', async () => {
      await byTestId(`member-row-${follower}`).waitFor();
      await eventually('the cluster page names the leader', async () => assert.equal(await text('leader-id'), String(leader)));
    });
    for (let id = 1; id <= 3; id += 1) await byTestId(`member-row-${id}`).waitFor();
    assert.equal(await byTestId('no-quorum-warning').count(), 0, 'quorum warning with every node up');
    await screenshot('cluster');

    phase = 'failover'; // 503s while the cluster elects are expected here
    const old = leader;
    log(`killing leader ${old} (pid ${cluster.pid(old)})`);
    const t0 = Date.now();
    await cluster.kill(old);
    let shown;
    try {
      shown = await waitFor(
        'the cluster page to name a new leader',
        async () => {
          const t = await text('leader-id');
          return /^\d+$/.test(t ?? '') && t !== String(old) ? Number(t) : null;
        },
        15_000,
        200,
      );
    } catch (e) {
      throw new Error(`${e.message}; page shows leader "${await text('leader-id').catch(() => '?')}"`);
    }
    log(`cluster page shows leader ${shown} after ${Date.now() - t0} ms`);
    leader = await cluster.leader();
    assert.equal(shown, leader, `page shows leader ${shown}, the surviving nodes agree on ${leader}`);
    await eventually(`node ${old} shown unreachable`, async () => assert.notEqual(await text(`health-${old}`), 'reachable'));
    await sleep(2500);
    assert.equal(await byTestId('no-quorum-warning').count(), 0, 'quorum warning with 2 of 3 voters up');
    await screenshot('cluster-failover');
  });
});
