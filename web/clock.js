// The clock faces at /clock (Nightscout's /clock/clock, /clock/color, /clock/bgclock): the
// newest reading, its trend and delta and the time, updated live over the WebSocket with the
// credentials the main page stored (or ?token=). Nothing else is loaded: a small page for an
// old tablet or a watch's browser.

import { api, authorizeMessage, store, takeTokenFromUrl } from './auth.js';
import { ago, arrow, clock, delta, fmt, fmtDelta, MIN_VALID, rangeOf } from './glucose.js';
import { setLanguage } from './i18n.js';
import { Live } from './live.js';

const $ = (id) => document.getElementById(id);
const FACES = ['clock', 'color', 'bgclock'];
const requested = new URLSearchParams(location.search).get('face');
const face = FACES.includes(requested) ? requested : 'clock';
/** An hour of readings: enough for the delta. */
const HISTORY_HOURS = 1;

const state = { settings: null, sgvs: new Map(), conn: 'connecting' };

function render() {
  const s = state.settings;
  if (!s) return;
  const now = Date.now();
  const units = s.units || 'mg/dl';
  const th = s.thresholds || {};
  const limits = { bgHigh: th.bgHigh ?? 260, bgTargetTop: th.bgTargetTop ?? 180, bgTargetBottom: th.bgTargetBottom ?? 80, bgLow: th.bgLow ?? 55 };
  const tf = Number(s.timeFormat) || 12;
  const sgvs = [...state.sgvs.values()].sort((a, b) => a.mills - b.mills);
  const latest = sgvs[sgvs.length - 1];
  const classes = [`face-${face}`];
  $('c-time').textContent = clock(now, tf);
  if (latest) {
    const stale = now - latest.mills > (Number(s.alarmTimeagoWarnMins) || 15) * 60000;
    const [sym, words] = arrow(latest.direction);
    const d = delta(sgvs);
    $('c-bg').textContent = fmt(latest.mgdl, units);
    $('c-arrow').textContent = sym;
    $('c-arrow').setAttribute('aria-label', words);
    $('c-delta').textContent = d ? fmtDelta(d.mgdl, units) : '';
    $('c-ago').textContent = ago(latest.mills, now);
    classes.push(stale ? 'stale' : rangeOf(latest.mgdl, limits));
    document.title = `${fmt(latest.mgdl, units)} ${sym} \u2013 ${s.customTitle || 'Nightscout'}`;
  } else {
    $('c-bg').textContent = '---';
    $('c-ago').textContent = state.conn === 'live' ? 'no recent readings' : '';
  }
  if (state.conn !== 'live') classes.push('offline');
  document.body.className = classes.join(' ');
  document.body.dataset.conn = state.conn;
}

function note(html) {
  const p = $('c-note');
  p.hidden = !html;
  p.replaceChildren();
  if (!html) return;
  p.append(html.text);
  if (html.link) {
    const a = document.createElement('a');
    a.href = './';
    a.textContent = html.link;
    p.append(' ', a);
  }
}

const live = new Live(() => authorizeMessage(HISTORY_HOURS));
live.addEventListener('state', (e) => {
  state.conn = e.detail.state;
  note(state.conn === 'offline' ? { text: 'Offline, reconnecting\u2026' } : null);
  render();
});
live.addEventListener('denied', () => note({ text: 'This site needs a secret or token:', link: 'sign in on the main page' }));
live.addEventListener('data', (e) => {
  const msg = e.detail;
  if (!msg.delta) state.sgvs.clear();
  for (const it of Array.isArray(msg.sgvs) ? msg.sgvs : []) {
    if (!it || !it._id) continue;
    if (it.action === 'remove') state.sgvs.delete(it._id);
    else if (Number(it.mgdl) >= MIN_VALID) state.sgvs.set(it._id, { ...it, mgdl: Number(it.mgdl) });
  }
  const cutoff = Date.now() - 2 * HISTORY_HOURS * 3600000;
  for (const [id, it] of state.sgvs) if (!(it.mills >= cutoff)) state.sgvs.delete(id);
  render();
});

async function start() {
  takeTokenFromUrl();
  document.body.className = `face-${face}`;
  live.start();
  for (;;) {
    try {
      state.settings = (await api('/api/v1/status.json')).settings || {};
      // The main page's language choice (same origin), else the site's LANGUAGE.
      await setLanguage(store.get('nl.lang') || state.settings.language);
      break;
    } catch (e) {
      if (e.status === 401) {
        note({ text: 'This site needs a secret or token:', link: 'sign in on the main page' });
        return;
      }
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
  render();
  setInterval(render, 10000);
}

start();
