// The viewer's entry point: settings from /api/v1/status.json, live data from /ws, and the
// Now (live or any past day), Treatments, Reports, sign-in and careportal views wired together. No framework and no build step:
// the browser loads these modules as they are in web/.

import { Alarms } from './alarm.js';
import { api, authorizeMessage, credentials, forget, remember, signedIn, store, takeTokenFromUrl } from './auth.js';
import { Careportal } from './careportal.js';
import { GlucoseChart } from './chart.js';
import { LANGUAGES, locale, setLanguage, t as tr, translatePage } from './i18n.js';
import { ar2Cone, basalSteps, coneFactor } from './forecast.js';
import { ago, arrow, clock, delta, fmt, fmtDelta, MIN_VALID, rangeOf, RANGE_WORDS, treatmentMgdl, unitLabel } from './glucose.js';
import { Live } from './live.js';
import { AGE_EVENTS, ageKey, pillItem, pills, predictions } from './pills.js';
import { Reports } from './reports.js';
import { newestSwitch, spanPills, tapDetails } from './spanpills.js';
import { TreatmentActions } from './treatments.js';

const $ = (id) => document.getElementById(id);
const H = 3600000;
/** The live snapshot asks for a day of data: the longest chart. */
const HISTORY_HOURS = 24;
const KEEP_MS = 25 * H;
const RANGES = [2, 3, 4, 6, 12, 24];

const state = {
  settings: null,
  auth: null,
  conn: 'connecting',
  hours: RANGES.includes(Number(store.get('nl.hours'))) ? Number(store.get('nl.hours')) : 3,
  lists: { sgvs: new Map(), mbgs: new Map(), treatments: new Map(), devicestatus: new Map() },
  sorted: { sgvs: [], mbgs: [], treatments: [], devicestatus: [] },
  ages: {},
  /** Profile documents by _id (not cut to the live window: they start long before it). */
  profiles: new Map(),
  /** The newest Profile Switches from before the live window (one may still be in force). */
  olderSwitches: [],
  /** The server's AR2 forecast and its cone: {predicted: [{mills, mgdl}], cone: [...]}. */
  ar2: null,
  /** The server's properties for the pills (iob, cob, bwp, basal), or null when not read. */
  props: null,
  /** AR2_CONE_FACTOR as the server's status sends it (extendedSettings.ar2.coneFactor). */
  coneFactor: 2,
  lastAnnounced: null,
  firstRender: null,
  /** The past day shown (its local midnight in ms), or null for the live chart. */
  day: null,
  /** That day's data from the REST API: {sgvs, mbgs, treatments: Map by _id}. */
  past: null,
};

const settings = {
  units: () => store.get('nl.units') || (state.settings && state.settings.units) || 'mg/dl',
  timeFormat: () => Number(state.settings && state.settings.timeFormat) || 12,
  thresholds: () => {
    const t = (state.settings && state.settings.thresholds) || {};
    return { bgHigh: t.bgHigh ?? 260, bgTargetTop: t.bgTargetTop ?? 180, bgTargetBottom: t.bgTargetBottom ?? 80, bgLow: t.bgLow ?? 55 };
  },
  staleMins: () => Number(state.settings && state.settings.alarmTimeagoWarnMins) || 15,
};

// ---------------------------------------------------------------------------------------------
// Views

function showView(name) {
  for (const v of ['signin', 'now', 'log', 'reports']) $(`view-${v}`).hidden = v !== name;
  for (const tab of ['now', 'log', 'reports']) {
    if (tab === name) $(`tab-${tab}`).setAttribute('aria-current', 'page');
    else $(`tab-${tab}`).removeAttribute('aria-current');
  }
  // One day picker, in whichever of the two views that follow it is shown.
  const nav = document.querySelector('.day-nav');
  if (name === 'log') $('log-title').after(nav);
  if (name === 'now') document.querySelector('.chart-head').prepend(nav);
  if (name === 'reports') reports.load();
  if (name === 'now') chart.schedule();
  if (name === 'log') renderLog();
}

function route() {
  if (!$('view-signin').hidden && needSignin) return;
  showView({ '#reports': 'reports', '#log': 'log' }[location.hash] || 'now');
}

let needSignin = false;
function showSignin(message, cancellable = false) {
  needSignin = !cancellable;
  if (needSignin) setConn('denied');
  $('signin-error').textContent = message || '';
  $('signin-cancel').hidden = !cancellable;
  showView('signin');
  $('signin-input').value = '';
  $('signin-input').focus();
}

function toast(text) {
  const t = $('toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), 4000);
}

function setConn(s, retryIn) {
  state.conn = s;
  const el = $('conn');
  el.className = `conn ${s}`;
  el.textContent = {
    live: tr('Live'),
    connecting: tr('Connecting\u2026'),
    offline: retryIn ? tr('Offline \u2013 retrying in {0} s', Math.ceil(retryIn / 1000)) : tr('Offline'),
    denied: tr('Not signed in'),
  }[s];
  renderNow();
}

// ---------------------------------------------------------------------------------------------
// Data

function applyData(msg) {
  const L = state.lists;
  if (!msg.delta) {
    for (const m of Object.values(L)) m.clear();
    state.profiles.clear();
  }
  for (const p of Array.isArray(msg.profiles) ? msg.profiles : []) {
    if (!p || !p._id) continue;
    if (p.action === 'remove') state.profiles.delete(p._id);
    else state.profiles.set(p._id, p);
  }
  loadProperties();
  let treatmentsChanged = false;
  for (const name of Object.keys(L)) {
    const items = msg[name];
    if (!Array.isArray(items)) continue;
    if (name === 'treatments') treatmentsChanged = true;
    for (const it of items) {
      if (!it || !it._id) continue;
      if (it.action === 'remove') L[name].delete(it._id);
      else L[name].set(it._id, it);
      if (name === 'treatments' && state.past) pastTreatment(it);
    }
  }
  const cutoff = Date.now() - KEEP_MS;
  for (const [name, m] of Object.entries(L)) {
    for (const [id, it] of m) if (!(it.mills >= cutoff)) m.delete(id);
    let arr = [...m.values()];
    if (name === 'sgvs' || name === 'mbgs') {
      arr = arr
        .map((s) => ({ ...s, mgdl: Number(s.mgdl) }))
        .filter((s) => Number.isFinite(s.mgdl) && s.mgdl >= MIN_VALID);
    }
    arr.sort((a, b) => a.mills - b.mills);
    state.sorted[name] = arr;
  }
  if (treatmentsChanged) {
    for (const t of state.sorted.treatments) {
      const k = ageKey(t.eventType);
      if (k && !(state.ages[k] >= t.mills)) state.ages[k] = t.mills;
    }
  }
  render();
}

/** A live change to a treatment, applied to the past day shown when it belongs there. */
function pastTreatment(it) {
  const m = state.past.treatments;
  if (it.action === 'remove') m.delete(it._id);
  else if (m.has(it._id) || (it.mills >= state.past.from && it.mills < state.past.to)) m.set(it._id, it);
}

/** Local midnight of the day holding ms. */
function midnight(ms) {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}
/** The next local midnight (not always 24 h later: daylight saving). */
function nextMidnight(day) {
  const d = new Date(day);
  d.setDate(d.getDate() + 1);
  return d.getTime();
}
const pad2 = (n) => String(n).padStart(2, '0');
const dayInput = (ms) => {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
};

/**
 * Shows a day: null (or today) is the live chart; an earlier day is loaded once through the
 * REST API, readings and treatments (the treatments from 12 hours before, for temp targets
 * and basals running into it). Live changes to its treatments still apply.
 */
async function showDay(day) {
  if (day != null && day >= midnight(Date.now())) day = null;
  state.day = day;
  state.past = null;
  $('day').value = dayInput(day ?? Date.now());
  $('day').max = dayInput(Date.now());
  $('day-next').disabled = day == null;
  $('day-today').disabled = day == null;
  for (const o of document.querySelectorAll('[data-hours]')) o.setAttribute('aria-pressed', String(day == null && Number(o.dataset.hours) === state.hours));
  showTip(null);
  if (day == null) {
    render();
    renderLog();
    return;
  }
  const from = day;
  const to = nextMidnight(day);
  const range = (field, a, b) => `find[${field}][$gte]=${encodeURIComponent(a)}&find[${field}][$lt]=${encodeURIComponent(b)}`;
  $('log-status').textContent = 'Loading…';
  try {
    const [sgvs, mbgs, treatments] = await Promise.all([
      api(`/api/v1/entries/sgv.json?${range('date', from, to)}&count=3000`),
      api(`/api/v1/entries/mbg.json?${range('date', from, to)}&count=500`),
      api(`/api/v1/treatments.json?${range('created_at', new Date(from - 12 * H).toISOString(), new Date(to).toISOString())}&count=2000`),
    ]);
    if (state.day !== day) return;
    const entries = (list, field) => (Array.isArray(list) ? list : [])
      .map((e) => ({ ...e, mgdl: Number(e[field]), mills: Number(e.date) }))
      .filter((e) => Number.isFinite(e.mgdl) && e.mgdl >= MIN_VALID && Number.isFinite(e.mills))
      .sort((a, b) => a.mills - b.mills);
    const m = new Map();
    for (const t of Array.isArray(treatments) ? treatments : []) {
      const mills = Date.parse(t.created_at);
      if (t._id && Number.isFinite(mills)) m.set(t._id, { ...t, mills });
    }
    state.past = { from, to, sgvs: entries(sgvs, 'sgv'), mbgs: entries(mbgs, 'mbg'), treatments: m };
    $('log-status').textContent = '';
  } catch (e) {
    state.past = { from, to, sgvs: [], mbgs: [], treatments: new Map() };
    $('log-status').textContent = `Could not load that day: ${e.message}`;
  }
  render();
  renderLog();
}

let forecastTimer = null;
let propertiesTimer = null;

/** The server's properties, once per burst of updates: the AR2 forecast (its bgnow and delta
 *  give the cone) and the IOB, COB, BWP and basal pills, computed there from device statuses and
 *  Care Portal treatments as /api/v2/properties computes them. Without the permission or
 *  offline the chart has no forecast and the pills fall back to the device statuses. */
function loadProperties() {
  clearTimeout(propertiesTimer);
  propertiesTimer = setTimeout(async () => {
    try {
      const p = await api('/api/v2/properties/bgnow,delta,ar2,iob,cob,bwp,basal');
      const predicted = (p && p.ar2 && p.ar2.forecast && p.ar2.forecast.predicted) || [];
      state.ar2 = {
        predicted: predicted.map((x) => ({ mills: Number(x.mills), mgdl: Number(x.mgdl) })),
        cone: ar2Cone(p && p.bgnow, p && p.delta, state.coneFactor),
      };
      state.props = p && typeof p === 'object' ? p : null;
    } catch {
      state.ar2 = null;
      state.props = null;
    }
    renderNow();
    renderChart();
  }, 300);
}

/** The newest device-change treatments (weeks old, older than the live window) for the ages. */
async function loadAges() {
  const since = new Date(Date.now() - 40 * 24 * H).toISOString();
  await Promise.all(Object.entries(AGE_EVENTS).map(async ([key, events]) => {
    const q = events.map((e) => `find[eventType][$in][]=${encodeURIComponent(e)}`).join('&');
    try {
      const list = await api(`/api/v1/treatments.json?${q}&find[created_at][$gte]=${encodeURIComponent(since)}&count=1`);
      const t = Array.isArray(list) && list[0];
      const at = t && Date.parse(t.created_at);
      if (Number.isFinite(at) && !(state.ages[key] >= at)) state.ages[key] = at;
    } catch {
      // No treatments permission or offline: the pill is simply not shown.
    }
  }));
  renderNow();
}

// ---------------------------------------------------------------------------------------------
// Rendering

function describe(t) {
  const units = settings.units();
  const parts = [];
  if (Number(t.insulin) > 0) parts.push(tr('{0} U insulin', Number(t.insulin)));
  if (Number(t.carbs) > 0) parts.push(tr('{0} g carbs', Number(t.carbs)));
  const g = treatmentMgdl(t);
  if (g != null) parts.push(`BG ${fmt(g, units)} ${unitLabel(units)}${t.glucoseType ? ` (${t.glucoseType})` : ''}`);
  if (t.eventType === 'Temporary Target' && t.targetTop) {
    const mmol = String(t.units || '').startsWith('mmol');
    const conv = (v) => fmt(Number(v) * (mmol ? 18.01559 : 1), units);
    parts.push(`target ${conv(t.targetBottom)}\u2013${conv(t.targetTop)} ${unitLabel(units)}`);
  }
  if (t.eventType === 'Temp Basal') {
    if (t.absolute != null || t.rate != null) parts.push(`${Number(t.absolute ?? t.rate)} U/h`);
    else if (t.percent != null) parts.push(`${t.percent > 0 ? '+' : ''}${t.percent} %`);
  }
  if (Number(t.duration) > 0) parts.push(`${Number(t.duration)} min`);
  if (t.reason) parts.push(String(t.reason));
  if (typeof t.sensorCode === 'string' && t.sensorCode) parts.push(`${tr('Sensor code')}: ${t.sensorCode}`);
  if (typeof t.transmitterId === 'string' && t.transmitterId) parts.push(`${tr('Transmitter ID')}: ${t.transmitterId}`);
  if (t.notes) parts.push(`\u201c${t.notes}\u201d`);
  if (t.enteredBy) parts.push(`by ${t.enteredBy}`);
  return parts.join(', ');
}

function render() {
  // Nothing is drawn before the settings say which units and thresholds to draw with.
  if (!state.settings) return;
  renderNow();
  renderChart();
}

function renderNow() {
  if (!state.settings) return;
  const now = Date.now();
  const units = settings.units();
  const th = settings.thresholds();
  const sgvs = state.sorted.sgvs;
  const latest = sgvs[sgvs.length - 1];
  const box = document.querySelector('.now');
  const classes = ['now'];
  $('bg-units').textContent = unitLabel(units);
  if (latest) {
    const stale = now - latest.mills > settings.staleMins() * 60000;
    const [sym, words] = arrow(latest.direction);
    $('bg-value').textContent = fmt(latest.mgdl, units);
    $('bg-arrow').textContent = sym;
    $('bg-arrow').setAttribute('aria-label', words);
    const d = delta(sgvs);
    $('bg-delta').textContent = d ? fmtDelta(d.mgdl, units) : '';
    $('bg-ago').textContent = stale ? `${ago(latest.mills, now)} \u2013 ${tr('no recent data')}` : ago(latest.mills, now);
    classes.push(stale ? 'stale' : rangeOf(latest.mgdl, th));
    const title = state.settings ? state.settings.customTitle || 'Nightscout' : 'Nightscout';
    document.title = `${fmt(latest.mgdl, units)} ${sym} ${d ? fmtDelta(d.mgdl, units) : ''} \u2013 ${title}`;
    if (state.lastAnnounced !== latest._id) {
      state.lastAnnounced = latest._id;
      $('bg-summary').textContent = `${fmt(latest.mgdl, units)} ${unitLabel(units)}, ${words || 'no trend'}, ${RANGE_WORDS[rangeOf(latest.mgdl, th)]}`;
    }
  } else {
    $('bg-value').textContent = '---';
    $('bg-arrow').textContent = '';
    $('bg-delta').textContent = '';
    $('bg-ago').textContent = state.conn === 'live' ? tr('no readings in the last day') : '';
  }
  if (state.conn !== 'live') classes.push('offline');
  box.className = classes.join(' ');

  const list = pills({ devicestatus: state.sorted.devicestatus, now, units, ages: state.ages, props: state.props })
    .concat(spanPills({ treatments: state.sorted.treatments, profiles: [...state.profiles.values()], lastSwitch: state.lastSwitch, now, units, timeFormat: settings.timeFormat() }));
  const ul = $('pills');
  ul.replaceChildren(...list.map((p) => pillItem({ ...p, label: tr(p.label) })));
  pillDetail();
}

/** Profile Switches for the basal line: those of the live window and the older ones read. */
function switches() {
  const all = new Map(state.olderSwitches.map((t) => [t._id, t]));
  for (const t of state.sorted.treatments) if (t.eventType === 'Profile Switch') all.set(t._id, t);
  return [...all.values()];
}

/** The newest Profile Switches before the live window: a permanent one (or a long temporary
 *  one) started days ago may still set the basal. */
async function loadOlderSwitches() {
  const before = new Date(Date.now() - HISTORY_HOURS * H).toISOString();
  try {
    const list = await api(`/api/v1/treatments.json?find[eventType]=${encodeURIComponent('Profile Switch')}&find[created_at][$lt]=${encodeURIComponent(before)}&count=10`);
    state.olderSwitches = (Array.isArray(list) ? list : []).map((t) => ({ ...t, mills: Number(t.mills) || Date.parse(t.created_at) }));
  } catch {
    state.olderSwitches = [];
  }
  renderChart();
}

/** The treatments of the day shown (the live chart's: the last 24 hours), oldest first. */
function dayTreatments() {
  if (state.past) return [...state.past.treatments.values()].sort((a, b) => a.mills - b.mills);
  return state.sorted.treatments;
}

function renderChart() {
  if (!state.settings) return;
  const past = state.day != null ? state.past || { from: state.day, to: nextMidnight(state.day), sgvs: [], mbgs: [], treatments: new Map() } : null;
  // A past day is drawn whole, midnight to midnight, without predictions.
  const now = past ? past.to : Date.now();
  const hours = past ? (past.to - past.from) / H : state.hours;
  const from = now - hours * H;
  const treatments = dayTreatments().filter((t) => t.mills >= from - 12 * H && t.mills <= now);
  chart.set({
    sgvs: past ? past.sgvs : state.sorted.sgvs,
    mbgs: past ? past.mbgs : state.sorted.mbgs,
    treatments,
    predictions: past ? [] : predictions(state.sorted.devicestatus, now),
    ar2: (!past && state.ar2) || { predicted: [], cone: [] },
    basal: basalSteps([...state.profiles.values()], switches(), from, now),
    now,
    hours,
    th: settings.thresholds(),
    units: settings.units(),
    timeFormat: settings.timeFormat(),
  });
  const shown = treatments.filter((t) => t.mills >= from).reverse();
  $('treatments-count').textContent = String(shown.length);
  $('treatments').replaceChildren(...shown.map((t) => {
    const li = document.createElement('li');
    li.dataset.id = t._id;
    const time = document.createElement('time');
    time.dateTime = new Date(t.mills).toISOString();
    time.textContent = clock(t.mills, settings.timeFormat());
    const what = document.createElement('strong');
    what.textContent = tr(t.eventType || 'Treatment');
    const rest = describe(t);
    li.append(time, what, document.createTextNode(rest ? ` \u2013 ${rest}` : ''));
    return li;
  }));
  if (!$('view-log').hidden) renderLog();
  const latest = state.sorted.sgvs[state.sorted.sgvs.length - 1];
  if (past) {
    $('chart').setAttribute('aria-label', `Glucose chart of ${new Date(past.from).toDateString()}. Treatments are listed below.`);
    return;
  }
  $('chart').setAttribute('aria-label', `Glucose chart, last ${state.hours} hours${latest ? `, latest ${fmt(latest.mgdl, settings.units())} ${unitLabel(settings.units())}` : ''}. Treatments are listed below.`);
}

/** The Treatments view: the day's treatments, newest first, with Edit and Delete. */
function renderLog() {
  if (!state.settings) return;
  const tf = settings.timeFormat();
  const from = state.past ? state.past.from : Date.now() - 24 * H;
  const to = state.past ? state.past.to : Infinity;
  const list = dayTreatments().filter((t) => t.mills >= from && t.mills < to).reverse();
  const day = new Date(from).toLocaleDateString(locale(), { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' });
  $('log-period').textContent = `${state.past ? day : tr('The last 24 hours')}: ${tr(list.length === 1 ? '1 treatment' : '{0} treatments', list.length)}`;
  $('log-list').replaceChildren(...list.map((t) => {
    const li = document.createElement('li');
    li.dataset.id = t._id;
    const time = document.createElement('time');
    time.dateTime = new Date(t.mills).toISOString();
    time.textContent = state.past ? clock(t.mills, tf) : `${new Date(t.mills).toLocaleDateString(locale(), { weekday: 'short' })} ${clock(t.mills, tf)}`;
    const what = document.createElement('strong');
    what.textContent = tr(t.eventType || 'Treatment');
    const rest = describe(t);
    li.append(time, what, document.createTextNode(rest ? ` \u2013 ${rest}` : ''));
    const buttons = actions.buttons(t);
    if (buttons.length) {
      const div = document.createElement('div');
      div.className = 'row-actions';
      div.append(...buttons);
      li.append(div);
    }
    return li;
  }));
}

function showTip(item, x, y) {
  const tip = $('tip');
  if (!item) {
    tip.hidden = true;
    return;
  }
  const units = settings.units();
  const tf = settings.timeFormat();
  const head = document.createElement('strong');
  const body = document.createElement('span');
  if (item.kind === 'sgv') {
    head.textContent = `${fmt(item.s.mgdl, units)} ${unitLabel(units)} ${arrow(item.s.direction)[0]}`;
    body.textContent = clock(item.s.mills, tf);
  } else {
    const t = item.t;
    head.textContent = tr(t.eventType || 'Treatment');
    body.textContent = `${clock(t.mills, tf)}${describe(t) ? ` \u2013 ${describe(t)}` : ''}`;
  }
  tip.replaceChildren(head, body);
  const buttons = item.kind === 'treatment' ? actions.buttons(item.t) : [];
  if (buttons.length) {
    const div = document.createElement('div');
    div.className = 'tip-actions';
    div.append(...buttons);
    tip.append(div);
  }
  tip.hidden = false;
  const wrap = tip.parentElement.getBoundingClientRect();
  const left = Math.min(Math.max(0, x - tip.offsetWidth / 2), wrap.width - tip.offsetWidth);
  tip.style.left = `${left}px`;
  tip.style.top = `${Math.max(0, y - tip.offsetHeight - 14)}px`;
}

// ---------------------------------------------------------------------------------------------
// Set-up

const chart = new GlucoseChart($('chart'), {
  onPick: showTip,
  onDraw: (points) => {
    if (state.firstRender == null && points > 0) {
      state.firstRender = performance.now();
      performance.mark('nl:first-render');
      document.documentElement.dataset.firstRender = String(Math.round(state.firstRender));
    }
  },
});
const pillDetail = tapDetails($('pills'));
const reports = new Reports($('view-reports'), { settings, store });
const live = new Live(() => authorizeMessage(HISTORY_HOURS));
const alarms = new Alarms({
  banner: $('alarm'),
  title: $('alarm-title'),
  text: $('alarm-text'),
  ack: $('alarm-ack'),
  more: $('alarm-more'),
  sound: $('alarm-sound'),
  send: (m) => live.send(m),
  settings: () => state.settings || {},
});
const careportal = new Careportal($('careportal'), {
  units: settings.units(),
  store,
  onSaved: (t, edited) => toast(`${t.eventType} ${edited ? 'changed' : 'saved'}`),
  profiles: () => {
    // The names in the newest profile document, the one in force.
    let newest = null;
    for (const p of state.profiles.values()) {
      if (!newest || String(p.startDate || p.created_at) > String(newest.startDate || newest.created_at)) newest = p;
    }
    return newest && newest.store ? Object.keys(newest.store) : [];
  },
});
const actions = new TreatmentActions($('confirm'), {
  may: () => ({ update: Boolean(state.auth && state.auth.update_treatment), delete: Boolean(state.auth && state.auth.delete_treatment) }),
  edit: (t) => {
    showTip(null);
    careportal.edit(t);
  },
  describe,
  when: (t) => `${new Date(t.mills).toLocaleDateString(locale())} ${clock(t.mills, settings.timeFormat())}`,
  done: (text) => {
    showTip(null);
    toast(text);
  },
});

live.addEventListener('state', (e) => setConn(e.detail.state, e.detail.retryIn));
live.addEventListener('data', (e) => {
  if (!e.detail.delta && !performance.getEntriesByName('nl:snapshot').length) performance.mark('nl:snapshot');
  applyData(e.detail);
});
live.addEventListener('alarm', (e) => alarms.handle(e.detail));
live.addEventListener('auth', (e) => {
  const a = e.detail;
  state.auth = a.ok ? a : null;
  $('btn-add').hidden = !(a.ok && a.write_treatment);
  renderLog();
  if (a.ok && needSignin) {
    needSignin = false;
    route();
  }
});
live.addEventListener('denied', refused);

$('chart').addEventListener('keydown', (e) => {
  if (e.key === 'Escape') showTip(null);
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') showTip(null);
});
document.addEventListener('click', (e) => {
  if (!e.target.closest('#chart, #tip')) showTip(null);
});

for (const b of document.querySelectorAll('[data-hours]')) {
  b.setAttribute('aria-pressed', String(Number(b.dataset.hours) === state.hours));
  b.addEventListener('click', () => {
    state.hours = Number(b.dataset.hours);
    store.set('nl.hours', String(state.hours));
    // A range is of the live chart: from a past day it goes back to now.
    if (state.day != null) showDay(null);
    for (const o of document.querySelectorAll('[data-hours]')) o.setAttribute('aria-pressed', String(o === b));
    showTip(null);
    renderChart();
  });
}
$('day').addEventListener('change', (e) => {
  const [y, m, d] = e.target.value.split('-').map(Number);
  if (y && m && d) showDay(new Date(y, m - 1, d).getTime());
});
$('day-prev').addEventListener('click', () => {
  const d = new Date(state.day ?? midnight(Date.now()));
  d.setDate(d.getDate() - 1);
  showDay(d.getTime());
});
$('day-next').addEventListener('click', () => {
  if (state.day != null) showDay(nextMidnight(state.day));
});
$('day-today').addEventListener('click', () => showDay(null));

$('btn-add').addEventListener('click', () => careportal.open());
$('btn-menu').addEventListener('click', () => {
  $('set-theme').value = store.get('nl.theme') || 'auto';
  $('set-lang').value = store.get('nl.lang') || '';
  $('set-units').value = store.get('nl.units') || '';
  const c = credentials();
  $('set-who').textContent = c.secret
    ? 'Signed in with the API secret.'
    : c.token ? 'Signed in with an access token.' : 'Not signed in: you see what the site shows everyone.';
  $('set-signout').hidden = !signedIn();
  $('settings').showModal();
});
$('set-theme').addEventListener('change', (e) => {
  store.set('nl.theme', e.target.value === 'auto' ? null : e.target.value);
  applyTheme();
});
$('set-lang').addEventListener('change', async (e) => {
  store.set('nl.lang', e.target.value || null);
  await applyLanguage();
  alarms.refresh();
  setConn(state.conn);
  render();
  renderLog();
});
$('set-units').addEventListener('change', (e) => {
  store.set('nl.units', e.target.value || null);
  careportal.setUnits(settings.units());
  state.lastAnnounced = null;
  render();
  if (!$('view-reports').hidden && reports.stats) reports.render();
});
$('set-sound').addEventListener('click', () => {
  alarms.unlock();
  alarms.beep(true);
});
$('set-signin').addEventListener('click', () => {
  $('settings').close();
  showSignin('', true);
});
$('set-signout').addEventListener('click', () => {
  forget();
  $('settings').close();
  restart();
});
$('signin-cancel').addEventListener('click', () => route());
$('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const v = $('signin-input').value;
  if (!v.trim()) return;
  await remember(v);
  refusal = '';
  $('signin-error').textContent = '';
  needSignin = false;
  route();
  restart();
});
window.addEventListener('hashchange', route);
// Canvas colours are read when drawing: redraw when the device switches between light and dark.
window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);

/** The language picked here, else the site's LANGUAGE; the page's own text follows it. */
async function applyLanguage() {
  await setLanguage(store.get('nl.lang') || (state.settings && state.settings.language) || 'en');
  translatePage();
}

/** Night mode: the theme picked here; without one, the site's NIGHT_MODE dims the page
 *  between its dayEnd and dayStart hours (Nightscout's 21 and 7). */
function applyTheme() {
  let t = store.get('nl.theme');
  const s = state.settings;
  if (!t && s && s.nightMode) {
    const h = new Date().getHours();
    if (h >= (s.dayEnd ?? 21) || h < (s.dayStart ?? 7)) t = 'night';
  }
  if (t) document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
  chart.schedule();
  reports.drawAgp();
}

let statusTimer = null;
let refusal = '';
/** Stored credentials that the server refused are dropped, and the user asked again. */
function refused() {
  if (signedIn()) {
    forget();
    refusal = 'That secret or token was not accepted.';
  }
  live.stop();
  showSignin(refusal);
}

/**
 * Settings (units, thresholds, title) and the live connection, requested together so the
 * first chart waits for one round trip less; data that arrives first is drawn once the
 * settings are known.
 */
async function restart() {
  live.stop();
  clearTimeout(statusTimer);
  state.settings = null;
  const status = api('/api/v1/status.json');
  live.start();
  try {
    const st = await status;
    state.settings = st.settings || {};
    state.coneFactor = coneFactor(st.extendedSettings);
    if (!performance.getEntriesByName('nl:settings').length) performance.mark('nl:settings');
  } catch (e) {
    if (e.status === 401) {
      refused();
      return;
    }
    live.stop();
    setConn('offline', 5000);
    statusTimer = setTimeout(restart, 5000);
    return;
  }
  const s = state.settings;
  await applyLanguage();
  applyTheme();
  alarms.refresh();
  const title = s.customTitle || 'Nightscout';
  $('title').textContent = title;
  document.title = title;
  $('set-units-default').textContent = `${tr("The site's")} (${unitLabel(s.units)})`;
  $('set-lang-default').textContent = `${tr("The site's")} (${LANGUAGES[String(s.language || 'en').split(/[_-]/)[0]] || s.language})`;
  careportal.setUnits(settings.units());
  route();
  showDay(state.day);
  loadAges();
  loadOlderSwitches();
  newestSwitch(api).then((x) => {
    state.lastSwitch = x;
    renderNow();
  });
}

setInterval(() => {
  renderNow();
  if (state.settings && state.settings.nightMode) applyTheme();
}, 15000);
setInterval(() => {
  if (document.visibilityState !== 'visible') return;
  // IOB and COB decay between updates, as Nightscout's clients see on its minute data ticks.
  if (state.settings && state.conn === 'live') loadProperties();
  renderChart();
}, 60000);

takeTokenFromUrl();
applyTheme();
restart();
