// The careportal: a form that adds a treatment (POST /api/v1/treatments) or corrects one
// (PUT /api/v1/treatments with the stored document, so fields this form does not know stay).
// Everyone's chart shows the result through the live connection, this one's included.

import { api } from './auth.js';
import { fromUnits, MMOL, toUnits, unitLabel } from './glucose.js';
import { t as tr } from './i18n.js';

/**
 * Nightscout's careportal event types (lib/plugins/careportal.js plus the temporary targets):
 * the label, the field groups shown, those needed, and the eventType stored when it differs.
 */
const EVENTS = {
  'BG Check': { show: ['glucose'], need: ['glucose'] },
  'Snack Bolus': { show: ['glucose', 'carbs', 'insulin', 'prebolus'], need: ['carbs|insulin'] },
  'Meal Bolus': { show: ['glucose', 'carbs', 'insulin', 'prebolus'], need: ['carbs|insulin'] },
  'Correction Bolus': { show: ['glucose', 'insulin'], need: ['insulin'] },
  'Carb Correction': { show: ['glucose', 'carbs'], need: ['carbs'] },
  'Combo Bolus': { show: ['glucose', 'carbs', 'insulin', 'prebolus', 'duration', 'split'], need: ['insulin', 'duration'] },
  Announcement: { show: ['glucose'], need: ['notes'] },
  Note: { show: ['glucose', 'duration'], need: ['notes'] },
  Question: { show: ['glucose'], need: ['notes'] },
  Exercise: { show: ['duration'], need: ['duration'] },
  'Site Change': { label: 'Pump Site Change', show: ['glucose', 'insulin'], need: [] },
  'Sensor Start': { label: 'CGM Sensor Start', show: ['glucose', 'sensor'], need: [] },
  'Sensor Change': { label: 'CGM Sensor Insert', show: ['glucose', 'sensor'], need: [] },
  'Sensor Stop': { label: 'CGM Sensor Stop', show: ['glucose'], need: [] },
  'Pump Battery Change': { show: ['glucose'], need: [] },
  'Insulin Change': { label: 'Insulin Cartridge Change', show: ['glucose'], need: [] },
  'Temp Basal Start': { show: ['glucose', 'duration', 'basal'], need: ['duration', 'percent|absolute'], store: 'Temp Basal' },
  'Temp Basal End': { show: ['glucose', 'duration'], need: [], store: 'Temp Basal' },
  'Profile Switch': { show: ['glucose', 'duration', 'profile'], need: ['profile'] },
  'D.A.D. Alert': { show: ['glucose'], need: [] },
  'Temporary Target': { show: ['target', 'duration'], need: ['targetBottom', 'targetTop', 'duration'] },
  'Temporary Target Cancel': { show: [], need: [], store: 'Temporary Target' },
};

/** The fields each group writes: an edit sets or removes exactly these, and keeps the rest. */
const GROUP_FIELDS = {
  glucose: ['glucose', 'glucoseType'],
  carbs: ['carbs', 'protein', 'fat'],
  insulin: ['insulin'],
  duration: ['duration'],
  split: ['splitNow', 'splitExt', 'enteredinsulin', 'relative'],
  basal: ['percent', 'absolute'],
  profile: ['profile'],
  target: ['targetBottom', 'targetTop', 'reason'],
  // Nightscout's careportal: the sensor's code and the transmitter's id, as typed.
  sensor: ['sensorCode', 'transmitterId'],
  // Only when adding: the server stores the carbs as their own treatment at that time.
  prebolus: [],
};
const NUMBERS = ['glucose', 'carbs', 'protein', 'fat', 'insulin', 'preBolus', 'duration', 'splitNow', 'percent', 'absolute', 'targetBottom', 'targetTop'];
/** Numbers that may be negative: a lower temp basal, carbs eaten before the bolus. */
const SIGNED = ['percent', 'preBolus'];

const NAMES = {
  glucose: 'a glucose value',
  carbs: 'carbs',
  'carbs|insulin': 'carbs or insulin',
  insulin: 'insulin',
  targetBottom: 'a target bottom',
  targetTop: 'a target top',
  duration: 'a duration',
  preBolus: 'the carb time',
  notes: 'a note',
  profile: 'a profile',
  'percent|absolute': 'a percent or an absolute rate',
};

/** The careportal entry an existing treatment is edited as. */
export function formEvent(t) {
  const e = t.eventType || '';
  if (e === 'Temp Basal') return t.percent != null || t.absolute != null || t.rate != null ? 'Temp Basal Start' : 'Temp Basal End';
  if (e === 'Temporary Target' && !(Number(t.duration) > 0)) return 'Temporary Target Cancel';
  return e;
}

const pad = (n) => String(n).padStart(2, '0');
function localInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export class Careportal {
  /** `profiles()` names the profiles a Profile Switch may choose. */
  constructor(dialog, { units, store, onSaved, profiles }) {
    this.dialog = dialog;
    this.form = dialog.querySelector('form');
    this.units = units;
    this.store = store;
    this.onSaved = onSaved;
    this.profiles = profiles || (() => []);
    this.error = dialog.querySelector('.form-error');
    this.title = dialog.querySelector('h2');
    this.defaultWhen = '';
    /** The treatment being edited, or null when adding. */
    this.editing = null;
    const f = this.form;
    const select = f.elements.eventType;
    select.replaceChildren(...Object.entries(EVENTS).map(([value, ev]) => new Option(ev.label || value, value)));
    select.addEventListener('change', () => this.showFields(true));
    f.elements.splitNow.addEventListener('input', () => {
      f.elements.splitExt.value = String(100 - (Number(f.elements.splitNow.value) || 0));
    });
    this.foodPick = this.makeFoodPick();
    dialog.querySelector('[data-close]').addEventListener('click', () => dialog.close());
    f.addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
  }

  /**
   * A "Food" choice above the carbs (/food's quick picks and foods): picking one fills the
   * carbs (and a food's fat and protein). Shown only when the site has food stored.
   */
  makeFoodPick() {
    const select = document.createElement('select');
    select.id = 'cp-food';
    const label = document.createElement('label');
    label.htmlFor = 'cp-food';
    label.textContent = 'Food';
    const wrap = document.createElement('div');
    wrap.dataset.group = 'food-none';
    wrap.hidden = true;
    wrap.append(label, select);
    const carbs = this.form.querySelector('[data-group="carbs"]');
    carbs.before(wrap);
    select.addEventListener('change', () => {
      const o = select.selectedOptions[0];
      const f = this.form.elements;
      if (!o || !o.value) return;
      for (const k of ['carbs', 'fat', 'protein']) if (o.dataset[k] != null) f[k].value = o.dataset[k];
    });
    return { wrap, select };
  }

  /** Reads the food database for the Food choice; without access to it the choice stays hidden. */
  async loadFoods() {
    const { wrap, select } = this.foodPick;
    let docs = [];
    try {
      const all = await api('/api/v1/food.json');
      docs = Array.isArray(all) ? all : [];
    } catch {
      docs = [];
    }
    const num = (v) => (Number.isFinite(Number(v)) ? Number(v) : 0);
    const picks = docs
      .filter((d) => d && d.type === 'quickpick' && !(d.hidden === true || d.hidden === 'true'))
      .sort((a, b) => num(a.position) - num(b.position));
    const foods = docs.filter((d) => d && d.type === 'food').sort((a, b) => String(a.name).localeCompare(String(b.name)));
    const option = (text, values) => {
      const o = new Option(text, 'x');
      for (const [k, v] of Object.entries(values)) if (num(v) > 0 || k === 'carbs') o.dataset[k] = String(num(v));
      return o;
    };
    const group = (label, items) => {
      const g = document.createElement('optgroup');
      g.label = label;
      g.append(...items);
      return g;
    };
    select.replaceChildren(new Option('\u2014', ''));
    if (picks.length) select.append(group('Quick picks', picks.map((q) => option(`${q.name} (${num(q.carbs)} g)`, { carbs: q.carbs }))));
    if (foods.length) {
      select.append(group('Foods', foods.map((f) => option(`${f.name}${f.portion ? `, ${f.portion} ${f.unit || ''}` : ''} (${num(f.carbs)} g)`, { carbs: f.carbs, fat: f.fat, protein: f.protein }))));
    }
    wrap.dataset.group = picks.length || foods.length ? 'carbs' : 'food-none';
    this.showFields(false);
  }

  setUnits(units) {
    this.units = units;
    for (const el of this.dialog.querySelectorAll('.glucose-units')) el.textContent = unitLabel(units);
    const step = units === 'mmol' ? '0.1' : '1';
    for (const name of ['glucose', 'targetBottom', 'targetTop']) this.form.elements[name].step = step;
  }

  /** The add form, empty but for who enters and when. */
  open() {
    this.prepare(null);
    this.form.elements.enteredBy.value = this.store.get('nl.enteredBy') || '';
    this.form.elements.eventType.value = 'BG Check';
    this.showFields(false);
    this.loadFoods();
    this.dialog.showModal();
    this.form.elements.eventType.focus();
  }

  /** The form filled from an existing treatment; its event type stays as it is. */
  edit(t) {
    this.prepare(t);
    const f = this.form.elements;
    const key = formEvent(t);
    const select = f.eventType;
    if (!EVENTS[key]) select.append(new Option(key || '(no event type)', key));
    select.value = key;
    select.disabled = true;
    const mmolDoc = String(t.units || '').startsWith('mmol');
    const glucose = (v) => {
      const mg = Number(v) * (mmolDoc ? MMOL : 1);
      const shown = toUnits(mg, this.units);
      return this.units === 'mmol' ? String(Math.round(shown * 10) / 10) : String(Math.round(shown));
    };
    for (const name of NUMBERS) {
      const v = t[name] ?? (name === 'absolute' ? t.rate : undefined);
      if (v == null || v === '' || !f[name]) continue;
      f[name].value = ['glucose', 'targetBottom', 'targetTop'].includes(name) ? glucose(v) : String(v);
    }
    if (t.enteredinsulin != null) f.insulin.value = String(t.enteredinsulin);
    if (t.splitExt != null) f.splitExt.value = String(t.splitExt);
    if (t.glucoseType) f.glucoseType.value = t.glucoseType;
    if (t.reason) f.reason.value = t.reason;
    for (const name of GROUP_FIELDS.sensor) if (typeof t[name] === 'string') f[name].value = t[name];
    if (t.profile) this.profileOptions(t.profile);
    f.notes.value = t.notes || '';
    f.enteredBy.value = t.enteredBy || '';
    this.defaultWhen = localInput(t.mills);
    f.when.value = this.defaultWhen;
    this.showFields(false);
    // What the untouched form says: a field the user leaves as it was is not rewritten (a
    // glucose stored in mmol stays in mmol even when this page shows mg/dL).
    const initial = this.treatment();
    this.initial = typeof initial === 'string' ? {} : initial;
    this.dialog.showModal();
    f.notes.focus();
  }

  prepare(t) {
    const f = this.form;
    f.reset();
    for (const o of [...f.elements.eventType.options]) if (!EVENTS[o.value]) o.remove();
    f.elements.eventType.disabled = false;
    this.editing = t;
    this.initial = {};
    this.title.textContent = t ? `${tr('Edit')}: ${tr(t.eventType || 'Treatment')}` : tr('Add treatment');
    this.error.textContent = '';
    this.profileOptions('');
    this.defaultWhen = localInput(Date.now());
    f.elements.when.value = this.defaultWhen;
  }

  profileOptions(current) {
    const names = [...new Set([...this.profiles(), current].filter(Boolean))];
    this.form.elements.profile.replaceChildren(...names.map((n) => new Option(n, n, false, n === current)));
  }

  /** The entry's settings: a known event type, or for an edit the groups its fields fill. */
  event() {
    const key = this.form.elements.eventType.value;
    if (EVENTS[key]) return EVENTS[key];
    const t = this.editing || {};
    const show = Object.keys(GROUP_FIELDS).filter((g) => GROUP_FIELDS[g].some((n) => t[n] != null));
    return { show, need: [], store: key };
  }

  /**
   * Shows the groups of the chosen type. On a change of type the hidden groups' values and
   * the last error go, so nothing typed for another type is saved with this one.
   */
  showFields(changed) {
    const ev = this.event();
    for (const group of this.dialog.querySelectorAll('[data-group]')) {
      group.hidden = !ev.show.includes(group.dataset.group) || (group.dataset.group === 'prebolus' && Boolean(this.editing));
      if (changed && group.hidden) {
        for (const input of group.querySelectorAll('input')) input.value = input.defaultValue;
      }
    }
    if (changed) this.error.textContent = '';
    if (this.form.elements.eventType.value === 'Profile Switch' && !this.form.elements.profile.value) this.profileOptions('');
  }

  /** The treatment the form describes (only the fields it manages), or an error message. */
  treatment() {
    const f = this.form.elements;
    const key = f.eventType.value;
    const ev = this.event();
    const t = { eventType: ev.store || key };
    const fields = {};
    for (const name of NUMBERS) {
      const group = f[name].closest('[data-group]');
      if (group && group.hidden) continue;
      const raw = f[name].value.trim().replace(',', '.');
      if (raw === '') continue;
      const v = Number(raw);
      if (!Number.isFinite(v) || (!SIGNED.includes(name) && v < 0)) return `Enter ${NAMES[name] || name} as a number`;
      fields[name] = v;
    }
    const notes = f.notes.value.trim();
    const profile = ev.show.includes('profile') ? f.profile.value : '';
    const has = (n) => (n === 'notes' ? Boolean(notes) : n === 'profile' ? Boolean(profile) : fields[n] != null);
    for (const need of ev.need) {
      if (!need.split('|').some(has)) return `${key} needs ${NAMES[need]}`;
    }
    if (fields.glucose != null) {
      t.glucose = fields.glucose;
      t.glucoseType = f.glucoseType.value;
      t.units = this.units === 'mmol' ? 'mmol' : 'mg/dl';
    }
    for (const name of ['carbs', 'protein', 'fat', 'insulin', 'duration', 'percent', 'absolute']) {
      if (fields[name] != null) t[name] = fields[name];
    }
    if (profile) t.profile = profile;
    if (fields.preBolus && t.carbs) t.preBolus = fields.preBolus;
    if (key === 'Combo Bolus') {
      // Stored as Nightscout's careportal stores it: the part given now as insulin, the
      // extended part as a rate over the duration.
      const now = Math.min(100, Math.max(0, fields.splitNow ?? 100));
      Object.assign(t, {
        enteredinsulin: fields.insulin,
        insulin: Math.round(fields.insulin * now) / 100,
        splitNow: now,
        splitExt: 100 - now,
        relative: fields.duration > 0 ? Math.round(((fields.insulin * (100 - now)) / 100 / fields.duration) * 60 * 1000) / 1000 : 0,
      });
    }
    if (key === 'Temporary Target') {
      // Stored in mg/dl, as AndroidAPS and Loop upload them, so every client reads them alike.
      const bottom = Math.round(fromUnits(fields.targetBottom, this.units));
      const top = Math.round(fromUnits(fields.targetTop, this.units));
      if (bottom > top) return 'Temporary Target: the bottom is above the top';
      if (bottom < 72 || top > 324) return `Temporary Target: keep it within ${this.units === 'mmol' ? '4\u201318 mmol/L' : '72\u2013324 mg/dL'}`;
      Object.assign(t, { targetBottom: bottom, targetTop: top, units: 'mg/dl' });
      const reason = f.reason.value.trim();
      if (reason) t.reason = reason;
    }
    if (ev.show.includes('sensor')) {
      for (const name of GROUP_FIELDS.sensor) {
        const v = f[name].value.trim();
        if (v) t[name] = v;
      }
    }
    if (key === 'Temporary Target Cancel' || (key === 'Temp Basal End' && t.duration == null)) t.duration = 0;
    if (notes) t.notes = notes;
    const by = f.enteredBy.value.trim();
    if (by) t.enteredBy = by;
    const when = f.when.value;
    if (when !== this.defaultWhen || !this.editing) {
      const ms = when && when !== this.defaultWhen ? new Date(when).getTime() : Date.now();
      if (!Number.isFinite(ms)) return 'Time: enter a date and time';
      t.created_at = new Date(ms).toISOString();
    }
    return t;
  }

  /**
   * The stored document with the user's changes applied: a field of the groups the form
   * shows is set or removed only when its value changed; everything else (fields of
   * uploaders this viewer does not know) is kept as stored.
   */
  async merged(t) {
    const id = this.editing._id;
    const found = await api(`/api/v1/treatments.json?find[_id]=${encodeURIComponent(id)}`);
    const doc = Array.isArray(found) && found[0];
    if (!doc) throw new Error('this treatment no longer exists');
    const same = (name) => JSON.stringify(t[name]) === JSON.stringify(this.initial[name]);
    const managed = ['notes', 'enteredBy', ...this.event().show.flatMap((g) => GROUP_FIELDS[g])];
    for (const name of managed) {
      if (same(name)) continue;
      if (t[name] == null) delete doc[name];
      else doc[name] = t[name];
    }
    // The units travel with the values written in them.
    if (t.units && !['glucose', 'targetBottom', 'targetTop'].every(same)) doc.units = t.units;
    if (t.duration != null && !same('duration')) doc.duration = t.duration;
    // AndroidAPS writes a temp basal's rate twice; both follow the edit.
    if (t.absolute != null && doc.rate != null) doc.rate = t.absolute;
    if (t.created_at) {
      doc.created_at = t.created_at;
      if (typeof doc.date === 'number') doc.date = Date.parse(t.created_at);
    }
    return doc;
  }

  async save() {
    const t = this.treatment();
    if (typeof t === 'string') {
      this.error.textContent = t;
      return;
    }
    const button = this.form.querySelector('[type=submit]');
    button.disabled = true;
    this.error.textContent = '';
    try {
      if (this.editing) await api('/api/v1/treatments', { method: 'PUT', body: await this.merged(t) });
      else await api('/api/v1/treatments', { method: 'POST', body: t });
      if (!this.editing) this.store.set('nl.enteredBy', t.enteredBy || null);
      this.dialog.close();
      this.onSaved(t, Boolean(this.editing));
    } catch (e) {
      const what = this.editing ? 'change' : 'add';
      this.error.textContent = e.status === 401 || e.status === 403
        ? `Not allowed: ${e.message}. Sign in with a secret or token that may ${what} treatments.`
        : `Not saved: ${e.message}`;
    } finally {
      button.disabled = false;
    }
  }
}
