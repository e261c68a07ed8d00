// The admin page at /admin (Nightscout's address), for the API secret or an admin token:
// subjects with their access tokens and sign-in addresses (copyable), roles, and what the
// server reports about itself (bridges, database size, free disk, settings, backups),
// read-only, and the sync (adminsync.js). Everything goes through /api/v2/authorization
// (docs/auth.md), /api/v1/status.json, /api/v1/backups (docs/data-care.md) and /api/v4/sync.

import { loadSync } from './adminsync.js';
import { $, api, el, refusal, say, start } from './page.js';

const AUTHZ = '/api/v2/authorization';

/** The address that signs a browser or a follower app in with a token. */
export function tokenUrl(token) {
  return new URL(`./?token=${encodeURIComponent(token)}`, document.baseURI).href;
}

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    say(`Copied ${what}.`);
  } catch {
    // No clipboard (plain http, an old browser): the text is selectable in the table.
    say(`Copy it from the table: ${text}`);
  }
}

function bytes(n) {
  if (!(Number(n) >= 0)) return 'unknown';
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

function renderSubjects(subjects) {
  const rows = subjects.map((s) => {
    const url = s.accessToken ? tokenUrl(s.accessToken) : '';
    return el('tr', { 'data-subject': s.name },
      el('td', {}, el('strong', { text: s.name }), s.notes ? el('div', { class: 'muted', text: s.notes }) : null),
      el('td', { text: (s.roles || []).join(', ') }),
      el('td', {}, el('div', { class: 'token', text: s.accessToken || '' }), el('a', { class: 'token token-url', href: url, text: url })),
      el('td', {}, el('div', { class: 'cell-actions' },
        el('button', { type: 'button', text: 'Copy address', 'aria-label': `Copy the sign-in address of ${s.name}`, onclick: () => copy(url, `the address of ${s.name}`) }),
        el('button', {
          type: 'button', class: 'danger', text: 'Revoke', 'aria-label': `Revoke ${s.name}`,
          onclick: async () => {
            if (!window.confirm(`Revoke ${s.name}? Its token and every session opened with it stop working at once.`)) return;
            try {
              await api(`${AUTHZ}/subjects/${encodeURIComponent(s._id)}`, { method: 'DELETE' });
              say(`Revoked ${s.name}.`);
              await load();
            } catch (e) {
              say(refusal(e, 'revoke it'), true);
            }
          },
        }))));
  });
  $('ad-subjects').replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: 4, class: 'muted', text: 'No subjects yet: only the API secret signs in.' }))]));
}

function renderRoles(roles) {
  $('ad-roles').replaceChildren(...roles.map((r) => el('tr', { 'data-role': r.name },
    el('td', { text: r.name }),
    el('td', { class: 'token', text: (r.permissions || []).join(' ') }),
    el('td', {}, r._id ? el('button', {
      type: 'button', class: 'danger', text: 'Delete', 'aria-label': `Delete role ${r.name}`,
      onclick: async () => {
        if (!window.confirm(`Delete the role ${r.name}?`)) return;
        try {
          await api(`${AUTHZ}/roles/${encodeURIComponent(r._id)}`, { method: 'DELETE' });
          say(`Deleted the role ${r.name}.`);
          await load();
        } catch (e) {
          say(refusal(e, 'delete the role'), true);
        }
      },
    }) : el('span', { class: 'muted', text: 'built in' })))));
  const chosen = new Set([...$('ad-subject-roles').selectedOptions].map((o) => o.value));
  $('ad-subject-roles').replaceChildren(...roles.map((r) => new Option(r.name, r.name, false, chosen.has(r.name))));
}

const BRIDGE_STATES = { idle: 'fetching', 'backing off': 'retrying after an error', 'stopped: fatal': 'stopped' };

function renderServer(status) {
  const s = status.settings || {};
  const facts = [
    ['nightlite', status.nightliteVersion || ''],
    ['Nightscout API', status.version || ''],
    ['Server time', status.serverTime ? new Date(status.serverTime).toLocaleString() : ''],
    ['Database (with its log)', bytes(status.dbsize)],
    ['Free disk', bytes(status.diskFree)],
    ['Units', s.units || ''],
    ['Visitors without a token', s.authDefaultRoles || ''],
    ['Plugins', (s.enable || []).join(' ')],
  ];
  const b = status.backupState;
  if (b) {
    const newest = b.backups[0];
    facts.push(
      ['Automatic backups', b.intervalHours > 0 ? `every ${b.intervalHours} h, the newest ${b.keep} kept` : 'off (BACKUP_INTERVAL_HOURS)'],
      ['Backups', b.backups.length ? `${b.backups.length}, newest ${new Date(newest.date).toLocaleString()} (${bytes(newest.bytes)})` : 'none yet'],
    );
  }
  $('ad-server').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })]));
  const bridges = Array.isArray(status.bridges) ? status.bridges : [];
  $('ad-bridges').replaceChildren(bridges.length
    ? el('ul', {}, ...bridges.map((b) => el('li', { 'data-bridge': b.source },
      el('strong', { text: b.source }), ` \u2013 ${BRIDGE_STATES[b.state] || b.state}`,
      b.lastSuccess ? `, last fetch ${new Date(b.lastSuccess).toLocaleString()}` : ', no fetch yet',
      b.lastError && b.lastError.message ? el('div', { class: 'form-error', text: b.lastError.message }) : null)))
    : el('p', { class: 'muted', text: 'No bridge configured (CONNECT_SOURCE).' }));
}

async function load() {
  // The subjects list reveals tokens: only an admin gets it (a 401 shows the sign-in form).
  const [subjects, roles, status, backups] = await Promise.all([
    api(`${AUTHZ}/subjects`),
    api(`${AUTHZ}/roles`),
    api('/api/v1/status.json').catch(() => ({})),
    api('/api/v1/backups').catch(() => null),
  ]);
  if (status && backups) status.backupState = backups;
  renderSubjects(Array.isArray(subjects) ? subjects : []);
  renderRoles(Array.isArray(roles) ? roles : []);
  renderServer(status || {});
  await loadSync();
}

$('ad-subject-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = $('ad-subject-name').value.trim();
  const roles = [...$('ad-subject-roles').selectedOptions].map((o) => o.value);
  if (!name) return;
  const body = { name, roles };
  const notes = $('ad-subject-notes').value.trim();
  if (notes) body.notes = notes;
  try {
    const saved = await api(`${AUTHZ}/subjects`, { method: 'POST', body });
    e.target.reset();
    await load();
    say(`Created ${name}${saved && saved.accessToken ? `: its address is ${tokenUrl(saved.accessToken)}` : ''}.`);
  } catch (err) {
    say(refusal(err, 'create the subject'), true);
  }
});

$('ad-role-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = $('ad-role-name').value.trim();
  const permissions = $('ad-role-perms').value.split(/\s+/).filter(Boolean);
  if (!name) return;
  try {
    await api(`${AUTHZ}/roles`, { method: 'POST', body: { name, permissions } });
    e.target.reset();
    await load();
    say(`Created the role ${name}.`);
  } catch (err) {
    say(refusal(err, 'create the role'), true);
  }
});

start(load);
