// The profile editor at /profile (Nightscout's address): the profile documents (a history,
// newest first), each a store of named profiles with schedules for basal, carb ratio, ISF and
// targets. Saving sends the whole document back, so fields this editor does not know
// (AndroidAPS', Loop's, an entry's `timeAsSeconds`) stay: an edited record is replaced with
// `PUT /api/v1/profile` (its `_id`), a new record is added with `POST`, as Nightscout's editor
// does (docs/viewer.md).

import { $, api, can, el, refusal, say, start } from './page.js';

const MMOL = 18.01559;
const SCHEDULES = [
  { key: 'basal', title: 'Basal rates', unit: () => 'U/h' },
  { key: 'carbratio', title: 'Carb ratios (I:C)', unit: () => 'g/U' },
  { key: 'sens', title: 'Insulin sensitivity (ISF)', unit: (u) => `${unitLabel(u)}/U`, glucose: true },
];
/** The fields this editor writes in a profile; every other field is kept as it was. */
const NEW_PROFILE = { dia: '', carbs_hr: 20, delay: 20, timezone: '', basal: [], carbratio: [], sens: [], target_low: [], target_high: [] };

const state = { records: [], index: 0, doc: null, name: '', may: { create: false, update: false, delete: false }, units: 'mg/dl' };

const clone = (v) => JSON.parse(JSON.stringify(v));
const unitLabel = (u) => (String(u || '').startsWith('mmol') ? 'mmol/L' : 'mg/dL');
const isMmol = (u) => String(u || '').startsWith('mmol');
const pad = (n) => String(n).padStart(2, '0');

/** "H:MM" or "HH:MM" (or seconds in `timeAsSeconds`) as minutes of the day. */
function minutesOf(entry) {
  if (typeof entry.time === 'string' && /^\d{1,2}:\d{2}/.test(entry.time)) {
    const [h, m] = entry.time.split(':').map(Number);
    return h * 60 + m;
  }
  const s = Number(entry.timeAsSeconds);
  return Number.isFinite(s) ? Math.floor(s / 60) : NaN;
}
const timeText = (min) => `${pad(Math.floor(min / 60))}:${pad(min % 60)}`;

function localInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function startOf(doc) {
  const t = Date.parse(doc.startDate);
  return Number.isFinite(t) ? t : Number(doc.mills) || Date.parse(doc.created_at) || 0;
}

function recordLabel(doc, i) {
  if (!doc._id) return 'New record (not saved)';
  const when = new Date(startOf(doc)).toLocaleString();
  const names = Object.keys(doc.store || {}).join(', ');
  return `${i === 0 ? 'In force: ' : ''}valid from ${when} \u2013 ${names}`;
}

// ---------------------------------------------------------------------------------------------
// Rendering

function renderRecords() {
  const sel = $('pe-record');
  sel.replaceChildren(...state.records.map((d, i) => new Option(recordLabel(d, i), String(i))));
  sel.value = String(state.index);
  $('pe-record-delete').hidden = !state.may.delete || !state.doc._id || state.records.length < 2;
  $('pe-record-new').hidden = !state.may.create;
}

function renderRecord() {
  const doc = state.doc;
  $('pe-start').value = localInput(startOf(doc) || Date.now());
  state.startShown = $('pe-start').value;
  const names = Object.keys(doc.store);
  const opts = (value) => names.map((n) => new Option(n || '(unnamed)', n, false, n === value));
  $('pe-default').replaceChildren(...opts(doc.defaultProfile));
  $('pe-name-select').replaceChildren(...opts(state.name));
  $('pe-profile-remove').disabled = names.length < 2;
  renderProfile();
  const allowed = doc._id ? state.may.update : state.may.create;
  $('pe-editor').disabled = !allowed;
  $('pe-save').hidden = !allowed;
  $('pe-save').textContent = doc._id ? 'Save' : 'Save as a new record';
}

function numberInput(value, label, cls) {
  return el('input', { type: 'number', inputmode: 'decimal', step: 'any', min: '0', value: value ?? '', 'aria-label': label, class: cls });
}

function timeInput(min, label) {
  return el('input', { type: 'time', step: '60', value: Number.isFinite(min) ? timeText(min) : '', 'aria-label': label, class: 't' });
}

/** A schedule's table: one row per time, values and remove buttons; Add appends a row. */
function scheduleTable(title, unit, rows, columns, add) {
  const body = el('tbody');
  const draw = () => {
    body.replaceChildren(...rows.map((r, i) => {
      const tr = el('tr');
      tr.entryIndex = i;
      tr.append(el('td', {}, timeInput(r.min, `${title}: from`)));
      for (const c of columns) tr.append(el('td', {}, numberInput(r[c.key], `${title}: ${c.label}`, c.key)));
      tr.append(el('td', {}, el('button', {
        type: 'button', text: '\u2212', 'aria-label': `Remove ${title} row ${i + 1}`, disabled: rows.length < 2,
        onclick: () => {
          readRows(body, rows, columns);
          rows.splice(i, 1);
          draw();
        },
      })));
      return tr;
    }));
  };
  draw();
  const head = el('tr', {}, el('th', { text: 'From' }), ...columns.map((c) => el('th', { text: `${c.label} (${unit})` })), el('th', {}, el('span', { class: 'sr-only', text: 'Remove' })));
  const table = el('table', { class: 'grid sched' }, el('thead', {}, head), body);
  const addButton = el('button', {
    type: 'button', text: `Add ${add}`,
    onclick: () => {
      readRows(body, rows, columns);
      const last = rows.length ? rows[rows.length - 1].min : -60;
      rows.push({ min: Math.min(23 * 60 + 30, (Number.isFinite(last) ? last : 0) + 60) });
      draw();
    },
  });
  const section = el('section', { class: 'sched-box' }, el('h3', { text: title }), table, el('div', { class: 'actions' }, addButton));
  section.sync = () => readRows(body, rows, columns);
  return section;
}

/** The table's inputs back into `rows` (times as minutes, values as typed). */
function readRows(body, rows, columns) {
  for (const tr of body.children) {
    const r = rows[tr.entryIndex];
    const t = tr.querySelector('input.t').value;
    r.min = /^\d{2}:\d{2}/.test(t) ? Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5)) : NaN;
    for (const c of columns) r[c.key] = tr.querySelector(`input.${c.key}`).value;
  }
}

/** The rows the form edits for the current profile (kept until the profile is left). */
let edit = null;

function renderProfile() {
  const p = state.doc.store[state.name];
  $('pe-name').value = state.name;
  $('pe-units').value = isMmol(p.units || state.doc.units || state.units) ? 'mmol' : 'mg/dl';
  $('pe-dia').value = p.dia ?? '';
  $('pe-carbs-hr').value = p.carbs_hr ?? '';
  $('pe-tz').value = p.timezone || '';
  const rowsOf = (list) => (Array.isArray(list) ? list : []).map((e) => ({ min: minutesOf(e), value: e.value, entry: e }));
  const highs = Array.isArray(p.target_high) ? p.target_high : [];
  edit = {
    schedules: SCHEDULES.map((s) => ({ ...s, rows: rowsOf(p[s.key]) })),
    targets: rowsOf(p.target_low).map((r, i) => ({ min: r.min, low: r.value, entry: r.entry, high: (highs[i] || {}).value, highEntry: highs[i] })),
  };
  for (const s of edit.schedules) if (!s.rows.length) s.rows.push({ min: 0 });
  if (!edit.targets.length) edit.targets.push({ min: 0 });
  draw();
}

function draw() {
  const units = $('pe-units').value;
  const boxes = edit.schedules.map((s) => scheduleTable(s.title, s.unit(units), s.rows, [{ key: 'value', label: 'value' }], 'a time'));
  boxes.push(scheduleTable('Target range', unitLabel(units), edit.targets, [{ key: 'low', label: 'low' }, { key: 'high', label: 'high' }], 'a time'));
  $('pe-schedules').replaceChildren(...boxes);
}

function syncAll() {
  if (edit) for (const box of $('pe-schedules').children) box.sync();
}

// ---------------------------------------------------------------------------------------------
// Reading the form back

/** Schedule entries from rows: each keeps its own extra fields; times and values are set. */
function entries(rows, key, seconds) {
  return rows.map((r) => {
    const e = { ...(r.entry || {}) };
    e.time = timeText(r.min);
    e.value = Number(r[key]);
    if (seconds) e.timeAsSeconds = r.min * 60;
    return e;
  });
}

/** Checks a schedule: from 00:00, times ascending, positive numbers. Returns an error or ''. */
function checkRows(rows, keys, what) {
  if (!rows.length) return `${what}: add at least one time`;
  if (rows[0].min !== 0) return `${what}: the first time must be 00:00`;
  for (let i = 0; i < rows.length; i++) {
    if (!Number.isFinite(rows[i].min)) return `${what}: enter every time`;
    if (i && rows[i].min <= rows[i - 1].min) return `${what}: times must go up (${timeText(rows[i].min)} after ${timeText(rows[i - 1].min)})`;
    for (const k of keys) {
      const v = Number(String(rows[i][k] ?? '').replace(',', '.'));
      if (String(rows[i][k] ?? '').trim() === '' || !Number.isFinite(v) || v <= 0) return `${what} at ${timeText(rows[i].min)}: enter a number above 0`;
      rows[i][k] = v;
    }
  }
  return '';
}

/** The current profile's form into the document; an error message when it is not valid. */
function collect() {
  syncAll();
  const doc = state.doc;
  const old = doc.store[state.name];
  const p = old;
  const what = state.name || '(unnamed)';
  for (const s of edit.schedules) {
    const err = checkRows(s.rows, ['value'], `${what}, ${s.title}`);
    if (err) return err;
  }
  const err = checkRows(edit.targets, ['low', 'high'], `${what}, target range`);
  if (err) return err;
  for (const r of edit.targets) if (r.low > r.high) return `${what}, target range at ${timeText(r.min)}: low is above high`;
  const dia = Number($('pe-dia').value);
  if (!(dia > 0)) return `${what}: enter the insulin action time (DIA) in hours`;
  const tz = $('pe-tz').value.trim();
  if (tz) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
    } catch {
      return `${what}: unknown time zone '${tz}'`;
    }
  }
  const carbsHr = $('pe-carbs-hr').value.trim();
  // AndroidAPS and Loop keep `timeAsSeconds` beside each time: kept in step, and given to
  // new schedules of a record that uses it.
  const docSeconds = JSON.stringify(doc.store).includes('"timeAsSeconds"');
  const seconds = (list) => docSeconds || (Array.isArray(list) && list.some((e) => e && e.timeAsSeconds != null));
  for (const s of edit.schedules) p[s.key] = entries(s.rows, 'value', seconds(old[s.key]));
  p.target_low = entries(edit.targets, 'low', seconds(old.target_low));
  const highs = edit.targets.map((r) => ({ ...r, entry: r.highEntry }));
  p.target_high = entries(highs, 'high', seconds(old.target_high));
  p.dia = dia;
  if (carbsHr !== '') p.carbs_hr = Number(carbsHr);
  if (tz || p.timezone != null) p.timezone = tz;
  p.units = $('pe-units').value;
  // The name last: a rename moves the profile to its new key.
  const name = $('pe-name').value.trim();
  if (name !== state.name) {
    if (!name) return 'Enter a name for the profile';
    if (Object.hasOwn(doc.store, name)) return `There is already a profile named '${name}'`;
    const store = {};
    for (const [k, v] of Object.entries(doc.store)) store[k === state.name ? name : k] = v;
    doc.store = store;
    if (doc.defaultProfile === state.name) doc.defaultProfile = name;
    // The lists follow, so the choice of the profile in force keeps pointing at it.
    for (const o of [...$('pe-default').options, ...$('pe-name-select').options]) {
      if (o.value === state.name) Object.assign(o, { value: name, text: name });
    }
    state.name = name;
  }
  return '';
}

/** Switches the edited profile after keeping what was typed; errors stay shown. */
function leaveProfile() {
  const err = collect();
  $('pe-error').textContent = err;
  return !err;
}

// ---------------------------------------------------------------------------------------------
// Loading and saving

async function load(select) {
  const [records, settings, create, update, del] = await Promise.all([
    api('/api/v1/profile.json?count=100'),
    api('/api/v1/status.json').catch(() => ({})),
    can('api:profile:create'),
    can('api:profile:update'),
    can('api:profile:delete'),
  ]);
  state.may = { create, update, delete: del };
  state.units = (settings.settings && settings.settings.units) || 'mg/dl';
  state.records = (Array.isArray(records) ? records : []).filter((d) => d && d.store && typeof d.store === 'object');
  if (!state.records.length) {
    state.records.push({ defaultProfile: 'Default', startDate: new Date().toISOString(), units: state.units, store: { Default: clone({ ...NEW_PROFILE, units: state.units }) } });
    say('No profile stored yet: fill in this one and save it.');
  }
  const found = select ? state.records.findIndex((d) => d._id === select) : -1;
  open(found >= 0 ? found : 0);
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  $('pe-tz-list').replaceChildren(...zones.map((z) => new Option(z)));
}

function open(i) {
  state.index = i;
  state.doc = clone(state.records[i]);
  const names = Object.keys(state.doc.store);
  state.name = names.includes(state.doc.defaultProfile) ? state.doc.defaultProfile : names[0];
  $('pe-error').textContent = '';
  renderRecords();
  renderRecord();
}

async function save() {
  const err = collect();
  $('pe-error').textContent = err;
  if (err) return;
  const doc = state.doc;
  doc.defaultProfile = $('pe-default').value || state.name;
  // The start is rewritten only when changed: the input shows minutes, a stored one may have more.
  const shown = $('pe-start').value;
  if (shown !== state.startShown || !doc.startDate) {
    const start = Date.parse(shown);
    if (!Number.isFinite(start)) {
      $('pe-error').textContent = 'Enter the date and time the record is valid from';
      return;
    }
    doc.startDate = new Date(start).toISOString();
  }
  // As Nightscout's editor: the record is stamped with the time it was saved.
  doc.created_at = new Date().toISOString();
  const def = doc.store[doc.defaultProfile];
  if (doc.units != null && def && def.units) doc.units = def.units;
  const button = $('pe-save');
  button.disabled = true;
  say('Saving\u2026');
  try {
    let id = doc._id;
    if (id) {
      await api('/api/v1/profile', { method: 'PUT', body: doc });
    } else {
      const out = await api('/api/v1/profile', { method: 'POST', body: doc });
      const saved = Array.isArray(out) ? out[0] : out;
      id = saved && saved._id;
    }
    await load(id);
    say(`Saved at ${new Date().toLocaleTimeString()}.`);
  } catch (e) {
    say(refusal(e, 'save the profile'), true);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Events

$('pe-record').addEventListener('change', (e) => open(Number(e.target.value)));
$('pe-record-new').addEventListener('click', () => {
  if (!leaveProfile()) return;
  const copy = clone(state.doc);
  for (const k of ['_id', 'identifier', 'srvModified', 'srvCreated', 'mills', 'created_at']) delete copy[k];
  copy.startDate = new Date().toISOString();
  state.records.unshift(copy);
  open(0);
  say('A new record, valid from now: change it and save.');
});
$('pe-record-delete').addEventListener('click', async () => {
  const doc = state.records[state.index];
  if (!doc._id || !window.confirm(`Delete the record ${recordLabel(doc, -1)}?`)) return;
  try {
    await api(`/api/v1/profile/${encodeURIComponent(doc._id)}`, { method: 'DELETE' });
    await load();
    say('Record deleted.');
  } catch (e) {
    say(refusal(e, 'delete the record'), true);
  }
});
$('pe-name-select').addEventListener('change', (e) => {
  const next = e.target.value;
  if (!leaveProfile()) {
    e.target.value = state.name;
    return;
  }
  state.name = next;
  renderRecord();
});
$('pe-profile-add').addEventListener('click', () => {
  if (!leaveProfile()) return;
  let name = 'New profile';
  for (let i = 2; Object.hasOwn(state.doc.store, name); i++) name = `New profile ${i}`;
  state.doc.store[name] = clone({ ...NEW_PROFILE, units: $('pe-units').value, timezone: $('pe-tz').value });
  state.name = name;
  renderRecord();
});
$('pe-profile-clone').addEventListener('click', () => {
  if (!leaveProfile()) return;
  let name = `${state.name} copy`;
  while (Object.hasOwn(state.doc.store, name)) name += ' 2';
  state.doc.store[name] = clone(state.doc.store[state.name]);
  state.name = name;
  renderRecord();
});
$('pe-profile-remove').addEventListener('click', () => {
  const names = Object.keys(state.doc.store);
  if (names.length < 2 || !window.confirm(`Remove the profile '${state.name}' from this record?`)) return;
  delete state.doc.store[state.name];
  if (state.doc.defaultProfile === state.name) state.doc.defaultProfile = Object.keys(state.doc.store)[0];
  state.name = state.doc.defaultProfile;
  renderRecord();
});
$('pe-units').addEventListener('change', (e) => {
  // The glucose values follow the units, so a profile keeps its meaning.
  syncAll();
  const toMmol = e.target.value === 'mmol';
  const conv = (v) => {
    const n = Number(v);
    if (v === '' || v == null || !Number.isFinite(n)) return v;
    return toMmol ? Math.round((n / MMOL) * 10) / 10 : Math.round(n * MMOL);
  };
  for (const r of edit.schedules.find((s) => s.key === 'sens').rows) r.value = conv(r.value);
  for (const r of edit.targets) Object.assign(r, { low: conv(r.low), high: conv(r.high) });
  draw();
});
$('pe-form').addEventListener('submit', (e) => {
  e.preventDefault();
  save();
});

start(() => load());
