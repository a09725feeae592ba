// Entry point: the routes and the last line of defence for errors.

import { installTokenForm } from './auth.js';
import { showError } from './banner.js';
import { isAbort } from './api.js';
import { startRouter } from './router.js';
import * as cluster from './pages/cluster.js';
import * as queues from './pages/queues.js';
import * as tasks from './pages/tasks.js';
import * as task from './pages/task.js';
import * as live from './pages/live.js';

const report = (e) => {
  if (!isAbort(e)) showError(e);
};

// Anything a page forgot to catch still reaches the banner rather than a blank view.
window.addEventListener('unhandledrejection', (e) => {
  e.preventDefault();
  report(e.reason);
});
window.addEventListener('error', (e) => report(e.error ?? e.message));

installTokenForm();
startRouter({
  view: document.getElementById('view'),
  fallback: '#/queues',
  onError: report,
  routes: [
    { name: 'cluster', title: 'Cluster', pattern: /^\/cluster$/, nav: '/cluster', page: cluster },
    { name: 'queues', title: 'Queues', pattern: /^\/queues$/, nav: '/queues', page: queues },
    { name: 'tasks', title: 'Tasks', pattern: /^\/tasks$/, nav: '/tasks', page: tasks },
    { name: 'task', title: 'Task', pattern: /^\/tasks\/(\d+)$/, nav: '/tasks', page: task },
    { name: 'live', title: 'Live', pattern: /^\/live$/, nav: '/live', page: live },
  ],
});
