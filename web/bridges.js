// A pill per bridge (docs/bridges.md) under the status pills: the source, and whether it is
// fetching (with the last success), retrying after an error, or stopped. Read from the short
// summary in /api/v1/status.json, which only callers who may read the bridges' status get;
// without it (no bridges, or not allowed) nothing is shown. Its own list, so the viewer's
// redraw of #pills leaves it alone.

import { api } from './auth.js';
import { age } from './glucose.js';
import { pillItem } from './pills.js';

const MIN = 60000;
/** How often the summary is read again; sooner while a bridge is still starting. */
const EVERY = MIN;
const SOON = 5000;
/** A bridge with no success for this long is shown as a warning even when it is idle. */
const STALE = 30 * MIN;

const NAMES = {
  dexcomshare: 'Dexcom',
  linkup: 'LibreLinkUp',
  nightscout: 'Nightscout',
  glooko: 'Glooko',
  minimedcarelink: 'CareLink',
};

/** {key, label, value, detail, level} for one bridge's summary at `now`, as pills.js' pills. */
export function bridgePill(b, now) {
  const label = NAMES[b.source] || b.source;
  const since = typeof b.lastSuccess === 'number' ? `${age(now - b.lastSuccess)} ago` : null;
  const error = b.lastError && b.lastError.message ? `: ${b.lastError.message}` : '';
  const pill = { key: `bridge-${b.source}`, label, value: since || 'starting', detail: `${label} bridge`, level: '' };
  if (b.state === 'stopped: fatal') {
    return { ...pill, value: 'stopped', detail: `${label} bridge stopped${error}`, level: 'urgent' };
  }
  if (b.state === 'backing off') {
    return { ...pill, value: 'retrying', detail: `${label} bridge retrying${error}`, level: 'warn' };
  }
  pill.detail = since ? `${label} bridge, last fetch ${since}` : `${label} bridge starting`;
  if (since && now - b.lastSuccess > STALE) pill.level = 'warn';
  return pill;
}

function render(list, bridges) {
  const now = Date.now();
  list.replaceChildren(...bridges.map((b) => pillItem(bridgePill(b, now))));
  list.hidden = bridges.length === 0;
}

function start() {
  const pills = document.getElementById('pills');
  if (!pills) return;
  const list = document.createElement('ul');
  list.id = 'bridge-pills';
  list.className = 'pills';
  list.setAttribute('aria-label', 'Bridges');
  list.hidden = true;
  pills.after(list);
  let bridges = [];
  const refresh = async () => {
    let wait = EVERY;
    if (document.visibilityState !== 'hidden') {
      try {
        const status = await api('/api/v1/status.json');
        bridges = Array.isArray(status && status.bridges) ? status.bridges : [];
        if (bridges.some((b) => b.lastSuccess == null && !b.lastError)) wait = SOON;
      } catch {
        bridges = [];
      }
    }
    render(list, bridges);
    setTimeout(refresh, wait);
  };
  refresh();
}

start();
