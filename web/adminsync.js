// /admin's Sync section (docs/sync.md): the sync's status, its last runs and its conflict log,
// with "Keep here" / "Keep there" for a conflict held for a decision and "Sync now", both for
// callers with api:sync:admin. Read from /api/v4/sync/*.

import { $, api, can, el, refusal, say } from './page.js';

const when = (ms) => (typeof ms === 'number' ? new Date(ms).toLocaleString() : '\u2013');
const counts = (c) => (c ? `\u2191${c.uploaded} \u2193${c.downloaded}, ${c.conflicts} conflicts, ${c.refused} refused` : '');
const json = (v) => (v == null ? '\u2013' : JSON.stringify(v));

function facts(s) {
  const pending = (s.collections || []).map((c) => `${c.collection} ${c.pending}`).join(', ');
  const rows = [
    ['State', s.running ? `${s.state} (${s.running})` : s.state],
    ['Site', s.remote],
    ['Direction', s.direction],
    ['Conflicts settled', s.conflictStrategy],
    ['Every', `${s.intervalMinutes} min`],
    ['Last success', when(s.lastSuccess)],
    ['Next run', when(s.nextRun)],
    ['Waiting for the site', pending],
    ['Conflicts', `${s.conflicts.open} held, ${s.conflicts.total} in all`],
  ];
  if (s.lastError) rows.push(['Last error', s.lastError.message]);
  return el('dl', { class: 'facts' }, ...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v ?? '') })]));
}

function runTable(runs) {
  if (!runs.length) return el('p', { class: 'muted', text: 'No run yet.' });
  return el('div', { class: 'scroll' }, el('table', { class: 'grid' },
    el('thead', {}, el('tr', {}, ...['Started', 'Trigger', 'Outcome', 'Counts', 'Error'].map((h) => el('th', { text: h })))),
    el('tbody', {}, ...runs.map((r) => el('tr', { 'data-run': r.id },
      el('td', { text: when(r.started) }), el('td', { text: r.trigger }),
      el('td', { text: r.outcome || 'running' }), el('td', { text: counts(r.counts) }),
      el('td', { text: r.error || '' }))))));
}

async function decide(c, keep, reload) {
  try {
    await api(`/api/v4/sync/conflicts/${c.id}`, { method: 'POST', body: { keep } });
    say(`Kept ${keep === 'local' ? 'this server\u2019s' : 'the site\u2019s'} version of ${c.collection} ${c.identity}; the next sync carries it out.`);
    await reload();
  } catch (e) {
    say(refusal(e, 'decide the conflict'), true);
  }
}

function conflictTable(conflicts, admin, reload) {
  if (!conflicts.length) return el('p', { class: 'muted', text: 'No conflict.' });
  return el('div', { class: 'scroll' }, el('table', { class: 'grid' },
    el('thead', {}, el('tr', {}, ...['Found', 'Document', 'Why', 'Here', 'There', 'Kept'].map((h) => el('th', { text: h })))),
    el('tbody', {}, ...conflicts.map((c) => el('tr', { 'data-conflict': c.id },
      el('td', { text: when(c.detectedAt) }), el('td', { text: `${c.collection} ${c.identity}` }),
      el('td', { text: `${c.reason} (${c.strategy})` }),
      el('td', {}, el('code', { text: json(c.localDoc) })), el('td', {}, el('code', { text: json(c.remoteDoc) })),
      el('td', {}, c.kept
        ? `${c.kept === 'local' ? 'here' : 'there'}${c.applied ? '' : ' (at the next sync)'}`
        : admin
          ? el('div', { class: 'cell-actions' },
            el('button', { type: 'button', text: 'Keep here', 'aria-label': `Keep this server's version of ${c.identity}`, onclick: () => decide(c, 'local', reload) }),
            el('button', { type: 'button', text: 'Keep there', 'aria-label': `Keep the site's version of ${c.identity}`, onclick: () => decide(c, 'remote', reload) }))
          : 'held'))))));
}

/** Fills #ad-sync; nothing but a note when the caller may not read the sync or it is off. */
export async function loadSync() {
  const box = $('ad-sync');
  if (!box) return;
  let status;
  try {
    status = await api('/api/v4/sync/status');
  } catch (e) {
    box.replaceChildren(el('p', { class: 'muted', text: refusal(e, 'read the sync') }));
    return;
  }
  if (!status || !status.configured) {
    box.replaceChildren(el('p', { class: 'muted', text: 'Sync is off (SYNC_URL is not set).' }));
    return;
  }
  const [runs, conflicts, admin] = await Promise.all([
    api('/api/v4/sync/runs?limit=10').then((r) => r.runs).catch(() => []),
    api('/api/v4/sync/conflicts?limit=50').then((r) => r.conflicts).catch(() => []),
    can('api:sync:admin'),
  ]);
  const now = admin
    ? el('button', {
      type: 'button', id: 'ad-sync-now', text: 'Sync now',
      onclick: async () => {
        try {
          await api('/api/v4/sync/run', { method: 'POST', body: {} });
          say('Sync started.');
        } catch (e) {
          say(refusal(e, 'start the sync'), true);
        }
      },
    })
    : null;
  box.replaceChildren(facts(status), now,
    el('h3', { text: 'Last runs' }), runTable(runs),
    el('h3', { text: 'Conflicts' }), conflictTable(conflicts, admin, loadSync));
}
