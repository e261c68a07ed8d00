// The treatments log and profile changes of a report's window (Nightscout's treatments and
// profiles reports). Temp basals are left out of the log (a loop writes one every few
// minutes; the day-to-day charts draw them); at most LIMIT treatments are listed, and the
// log says so when there are more.

import { api } from './auth.js';
import { fmt, treatmentMgdl } from './glucose.js';
import { section, table } from './reporttable.js';

const LIMIT = 2000;

const iso = (ms) => encodeURIComponent(new Date(ms).toISOString());

export class TreatmentLog {
  constructor({ settings }) {
    this.settings = settings;
    this.ticket = 0;
  }

  async show(parent, from, to) {
    const ticket = ++this.ticket;
    const log = section(parent, 'r-treatments', 'Treatments');
    const profiles = section(parent, 'r-profiles', 'Profile changes');
    const status = (card, text) => {
      const p = document.createElement('p');
      p.className = 'muted';
      p.textContent = text;
      card.append(p);
    };
    const win = `find[created_at][$gte]=${iso(from)}&find[created_at][$lt]=${iso(to)}`;
    try {
      const [list, switches, docs] = await Promise.all([
        api(`/api/v1/treatments.json?${win}&find[eventType][$ne]=Temp%20Basal&count=${LIMIT + 1}`),
        api(`/api/v1/treatments.json?${win}&find[eventType]=Profile%20Switch&count=500`),
        api('/api/v1/profile.json?count=100'),
      ]);
      if (ticket !== this.ticket) return;
      this.fillLog(log, list, status);
      this.fillProfiles(profiles, switches, docs, from, to, status);
    } catch (e) {
      if (ticket === this.ticket) status(log, `Could not load the treatments: ${e.message}`);
    }
  }

  fillLog(card, list, status) {
    const units = this.settings.units();
    const shown = list.slice(0, LIMIT);
    const carbs = shown.reduce((a, t) => a + (Number(t.carbs) || 0), 0);
    const insulin = shown.reduce((a, t) => a + (Number(t.insulin) || 0), 0);
    status(card, list.length > LIMIT
      ? `The newest ${LIMIT} treatments (more in this period; pick fewer days to see them all).`
      : `${shown.length} treatments: carbs ${Math.round(carbs)} g, insulin ${insulin.toFixed(2)} U (temp basals are drawn on the day charts).`);
    const when = (t) => new Date(Date.parse(t.created_at)).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });
    card.append(table(
      ['Time', 'Event', 'Glucose', 'Carbs', 'Insulin', 'Duration', 'Notes', 'By'],
      shown.map((t) => {
        const bg = treatmentMgdl(t);
        return [when(t), t.eventType || '', bg == null ? '' : fmt(bg, units), t.carbs ? `${t.carbs} g` : '',
          t.insulin ? `${t.insulin} U` : '', t.duration ? `${t.duration} min` : '', t.notes || t.reason || '', t.enteredBy || ''];
      }),
    ));
  }

  fillProfiles(card, switches, docs, from, to, status) {
    const rows = [];
    for (const t of switches) {
      rows.push([Date.parse(t.created_at), 'Profile Switch', `${t.profile || ''}${t.percentage && t.percentage !== 100 ? ` ${t.percentage} %` : ''}${t.duration ? ` for ${t.duration} min` : ''}`, t.enteredBy || '']);
    }
    for (const d of docs) {
      const at = Date.parse(d.startDate || d.created_at);
      if (!(at >= from && at < to)) continue;
      const names = Object.keys(d.store || {}).join(', ');
      rows.push([at, 'Profile saved', `default ${d.defaultProfile || '?'} (profiles ${names}; ${d.units || ''})`, d.enteredBy || '']);
    }
    rows.sort((a, b) => b[0] - a[0]);
    if (!rows.length) status(card, 'No profile changes in this period.');
    else card.append(table(['Time', 'Change', 'What', 'By'], rows.map(([at, ...r]) => [new Date(at).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' }), ...r])));
  }
}
