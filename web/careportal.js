// The careportal: a form that adds a treatment through POST /api/v1/treatments. Everyone's
// chart shows it through the live connection, this one's included.

import { api } from './auth.js';
import { fromUnits, unitLabel } from './glucose.js';

/** Which field groups each event type shows, and which of them it needs. */
const EVENTS = {
  'BG Check': { show: ['glucose'], need: ['glucose'] },
  'Carb Correction': { show: ['carbs'], need: ['carbs'] },
  'Correction Bolus': { show: ['insulin'], need: ['insulin'] },
  'Meal Bolus': { show: ['carbs', 'insulin'], need: [] },
  Note: { show: [], need: ['notes'] },
  'Temporary Target': { show: ['target'], need: ['targetBottom', 'targetTop', 'duration'] },
  'Site Change': { show: [], need: [] },
  'Sensor Change': { show: [], need: [] },
  'Insulin Change': { show: [], need: [] },
  'Pump Battery Change': { show: [], need: [] },
};

const NAMES = {
  glucose: 'a glucose value',
  carbs: 'carbs',
  insulin: 'insulin',
  targetBottom: 'a target bottom',
  targetTop: 'a target top',
  duration: 'a duration',
  notes: 'a note',
};

const pad = (n) => String(n).padStart(2, '0');
function localInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export class Careportal {
  constructor(dialog, { units, store, onSaved }) {
    this.dialog = dialog;
    this.form = dialog.querySelector('form');
    this.units = units;
    this.store = store;
    this.onSaved = onSaved;
    this.error = dialog.querySelector('.form-error');
    this.defaultWhen = '';
    const f = this.form;
    f.elements.eventType.addEventListener('change', () => this.showFields());
    dialog.querySelector('[data-close]').addEventListener('click', () => dialog.close());
    f.addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
  }

  setUnits(units) {
    this.units = units;
    for (const el of this.dialog.querySelectorAll('.glucose-units')) el.textContent = unitLabel(units);
    const step = units === 'mmol' ? '0.1' : '1';
    for (const name of ['glucose', 'targetBottom', 'targetTop']) this.form.elements[name].step = step;
  }

  open() {
    const f = this.form;
    f.reset();
    this.error.textContent = '';
    f.elements.enteredBy.value = this.store.get('nl.enteredBy') || '';
    this.defaultWhen = localInput(Date.now());
    f.elements.when.value = this.defaultWhen;
    this.showFields();
    this.dialog.showModal();
    f.elements.eventType.focus();
  }

  showFields() {
    const ev = EVENTS[this.form.elements.eventType.value] || EVENTS.Note;
    for (const group of this.dialog.querySelectorAll('[data-group]')) {
      group.hidden = !ev.show.includes(group.dataset.group);
    }
  }

  /** The treatment the form describes, or an error message. */
  treatment() {
    const f = this.form.elements;
    const eventType = f.eventType.value;
    const ev = EVENTS[eventType] || EVENTS.Note;
    const t = { eventType };
    const number = (name) => {
      const raw = f[name].value.trim().replace(',', '.');
      if (raw === '') return null;
      const v = Number(raw);
      return Number.isFinite(v) && v >= 0 ? v : NaN;
    };
    const fields = {};
    for (const name of ['glucose', 'carbs', 'insulin', 'targetBottom', 'targetTop', 'duration']) {
      const group = f[name].closest('[data-group]');
      if (group && group.hidden) continue;
      const v = number(name);
      if (Number.isNaN(v)) return `Enter ${NAMES[name]} as a number`;
      if (v != null) fields[name] = v;
    }
    const notes = f.notes.value.trim();
    for (const need of ev.need) {
      if (need === 'notes' ? !notes : fields[need] == null) return `${eventType} needs ${NAMES[need]}`;
    }
    if (eventType === 'Meal Bolus' && fields.carbs == null && fields.insulin == null) return 'Meal Bolus needs carbs or insulin';
    if (fields.glucose != null) {
      t.glucose = fields.glucose;
      t.glucoseType = f.glucoseType.value;
      t.units = this.units === 'mmol' ? 'mmol' : 'mg/dl';
    }
    if (fields.carbs != null) t.carbs = fields.carbs;
    if (fields.insulin != null) t.insulin = fields.insulin;
    if (eventType === 'Temporary Target') {
      // Stored in mg/dl, as AndroidAPS and Loop upload them, so every client reads them alike.
      const bottom = Math.round(fromUnits(fields.targetBottom, this.units));
      const top = Math.round(fromUnits(fields.targetTop, this.units));
      if (bottom > top) return 'Temporary Target: the bottom is above the top';
      Object.assign(t, { targetBottom: bottom, targetTop: top, duration: fields.duration, units: 'mg/dl' });
      const reason = f.reason.value.trim();
      if (reason) t.reason = reason;
    }
    if (notes) t.notes = notes;
    const by = f.enteredBy.value.trim();
    if (by) t.enteredBy = by;
    const when = f.when.value;
    const ms = when && when !== this.defaultWhen ? new Date(when).getTime() : Date.now();
    if (!Number.isFinite(ms)) return 'Time: enter a date and time';
    t.created_at = new Date(ms).toISOString();
    return t;
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
      await api('/api/v1/treatments', { method: 'POST', body: t });
      this.store.set('nl.enteredBy', t.enteredBy || null);
      this.dialog.close();
      this.onSaved(t);
    } catch (e) {
      this.error.textContent = e.status === 401 ? 'Not allowed: sign in with a secret or token that may add treatments.' : `Not saved: ${e.message}`;
    } finally {
      button.disabled = false;
    }
  }
}
