// Repeats a load while its page is shown. The next round starts only after the previous
// one finished, so a slow server never gets overlapping requests from one tab.

import { isAbort } from './api.js';
import { showError } from './banner.js';
import { sleep } from './sse.js';

export async function poll(signal, everyMs, load) {
  while (!signal.aborted) {
    try {
      await load();
    } catch (e) {
      if (signal.aborted || isAbort(e)) return;
      showError(e);
    }
    await sleep(everyMs, signal);
  }
}

/** Runs one action, reporting a failure instead of throwing. Returns whether it worked. */
export async function attempt(signal, action) {
  try {
    await action();
    return true;
  } catch (e) {
    if (!signal?.aborted && !isAbort(e)) showError(e);
    return false;
  }
}
