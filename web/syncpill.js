// The sync pill (docs/sync.md) after the bridges' pills: the sync's state, the local changes
// still waiting for the site, and the last success. Read from the short summary in
// /api/v1/status.json, which only callers who may read the sync's status get; without it (no
// SYNC_URL, or not allowed) nothing is shown.

import { api } from './auth.js';
import { age } from './glucose.js';
import { t } from './i18n.js';
import { pillItem } from './pills.js';

const MIN = 60000;
/** How often the summary is read again; sooner while a run is in progress. */
const EVERY = MIN;
const SOON = 5000;
/** No success for this long shows as a warning even when nothing failed. */
const STALE = 30 * MIN;

/** {key, label, value, detail, level} for the sync's summary `s` at `now`, as pills.js' pills. */
export function syncPill(s, now) {
  const since = typeof s.lastSuccess === 'number' ? t('{0} ago', age(now - s.lastSuccess)) : null;
  const pending = Number(s.pending) > 0 ? t('{0} pending', s.pending) : '';
  const error = s.lastError && s.lastError.message ? `: ${s.lastError.message}` : '';
  const about = [t('Sync with {0}', s.remote), since ? t('last success {0}', since) : t('never synced'), pending]
    .filter(Boolean).join(', ');
  const pill = { key: 'sync', label: t('Sync'), value: since || '\u2013', detail: about, level: '' };
  if (s.running || !['IDLE', 'ERROR', 'QUEUED'].includes(s.state)) {
    pill.value = t('syncing');
  } else if (s.state === 'QUEUED') {
    return { ...pill, value: t('waiting'), detail: `${about}${error}`, level: 'warn' };
  } else if (s.state === 'ERROR') {
    return { ...pill, value: t('failed'), detail: `${about}${error}`, level: 'urgent' };
  }
  if (pending) pill.value = `${pill.value} \u2191${s.pending}`;
  if (!since || now - s.lastSuccess > STALE) pill.level = 'warn';
  return pill;
}

function start() {
  const pills = document.getElementById('pills');
  if (!pills) return;
  const list = document.createElement('ul');
  list.id = 'sync-pills';
  list.className = 'pills';
  list.setAttribute('aria-label', 'Sync');
  list.hidden = true;
  (document.getElementById('bridge-pills') || pills).after(list);
  const refresh = async () => {
    let wait = EVERY;
    let sync = null;
    if (document.visibilityState !== 'hidden') {
      try {
        const status = await api('/api/v1/status.json');
        sync = status && status.sync && typeof status.sync === 'object' ? status.sync : null;
      } catch {
        sync = null;
      }
    }
    list.replaceChildren(...(sync ? [pillItem(syncPill(sync, Date.now()))] : []));
    list.hidden = !sync;
    if (sync && sync.running) wait = SOON;
    setTimeout(refresh, wait);
  };
  refresh();
}

start();
