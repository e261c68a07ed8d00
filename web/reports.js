// Reports (Nightscout's /report): time in ranges, mean, GMI, variability and the AGP, daily,
// hourly and weekly statistics for the last 1 to 90 days or any picked dates, from
// GET /api/v2/stats and /api/v2/stats/days|hours|weeks (computed by the server in SQL, so a
// phone never downloads 90 days of readings); day-to-day charts, the treatments log and
// profile changes come from reportdays.js and reportlog.js.

import { api } from './auth.js';
import { drawAgp } from './chart.js';
import { fmt, unitLabel } from './glucose.js';
import { DayToDay, drawWeekToWeek, weekColour } from './reportdays.js';
import { TreatmentLog } from './reportlog.js';
import { section, table } from './reporttable.js';

const RANGES = [
  ['veryHigh', 'Very high', 'urgent'],
  ['high', 'High', 'warn'],
  ['inRange', 'In range', 'ok'],
  ['low', 'Low', 'warn'],
  ['veryLow', 'Very low', 'urgent'],
];

const pct = (v) => (v == null ? '\u2013' : `${v.toFixed(1)}\u202f%`);
const DAY = 86400000;

/** yyyy-mm-dd of a local date. */
export function dateInput(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** Local midnight of a yyyy-mm-dd, epoch ms. */
function midnight(text) {
  const [y, m, d] = text.split('-').map(Number);
  return new Date(y, m - 1, d).getTime();
}

export class Reports {
  constructor(root, { settings, store }) {
    this.root = root;
    this.settings = settings;
    this.store = store;
    this.days = Number(store.get('nl.reportDays')) || 14;
    // A picked window (local midnights, epoch ms), or null for the last `days` days.
    this.range = null;
    this.stats = null;
    this.groups = null;
    this.loading = 0;
    this.canvas = root.querySelector('#agp');
    this.sections = root.querySelector('#r-sections');
    this.dayToDay = new DayToDay({ settings });
    this.log = new TreatmentLog({ settings });
    for (const b of root.querySelectorAll('[data-days]')) {
      b.addEventListener('click', () => {
        this.days = Number(b.dataset.days);
        this.range = null;
        store.set('nl.reportDays', String(this.days));
        this.load();
      });
    }
    this.$('#r-range').addEventListener('submit', (e) => {
      e.preventDefault();
      const from = midnight(this.$('#r-from').value);
      const to = midnight(this.$('#r-to').value);
      const status = this.$('#r-status');
      if (!Number.isFinite(from) || !Number.isFinite(to) || to < from) {
        status.textContent = 'Pick a start date on or before the end date.';
        return;
      }
      // To the midnight after the last day, whatever its length.
      const end = new Date(to);
      end.setDate(end.getDate() + 1);
      this.range = { start: from, end: end.getTime() };
      this.load();
    });
    this.$('#r-print').addEventListener('click', () => window.print());
    // Charts are drawn in the theme's colours; paper gets the print stylesheet's.
    window.matchMedia('print').addEventListener('change', () => this.redraw());
    window.addEventListener('beforeprint', () => this.redraw());
    if (window.ResizeObserver) new ResizeObserver(() => this.drawAgp()).observe(this.canvas);
  }

  drawWeeks() {
    const g = this.groups;
    if (!this.weekCanvas || !g || this.root.hidden) return;
    drawWeekToWeek(this.weekCanvas, { weeks: g.weeks.groups, units: this.settings.units(), bands: this.stats.bands });
  }

  redraw() {
    this.drawAgp();
    this.drawWeeks();
    this.dayToDay.redraw();
  }

  /** The query string of the window shown. */
  window() {
    if (this.range) {
      const tz = -new Date(this.range.start).getTimezoneOffset();
      return `start=${this.range.start}&end=${this.range.end}&tz=${tz}`;
    }
    return `days=${this.days}&tz=${-new Date().getTimezoneOffset()}`;
  }

  $(sel) {
    return this.root.querySelector(sel);
  }

  async load() {
    for (const b of this.root.querySelectorAll('[data-days]')) {
      b.setAttribute('aria-pressed', String(!this.range && Number(b.dataset.days) === this.days));
    }
    const status = this.$('#r-status');
    status.textContent = 'Loading\u2026';
    this.root.setAttribute('aria-busy', 'true');
    const ticket = ++this.loading;
    try {
      const q = this.window();
      const [stats, days, hours, weeks, loop] = await Promise.all([
        ...['', '/days', '/hours', '/weeks'].map((by) => api(`/api/v2/stats${by}?${q}`)),
        // Device statuses have their own permission: without it the report has no loop part.
        api(`/api/v2/stats/loop?${q}`).catch(() => null),
      ]);
      if (ticket !== this.loading) return;
      this.stats = stats;
      this.groups = { days, hours, weeks, loop };
      if (!this.range) {
        this.$('#r-from').value = dateInput(new Date(stats.from));
        this.$('#r-to').value = dateInput(new Date(stats.to - 1));
      }
      this.render();
      status.textContent = stats.count ? '' : 'No readings in this period.';
    } catch (e) {
      if (ticket === this.loading) status.textContent = `Could not load the report: ${e.message}`;
    } finally {
      if (ticket === this.loading) this.root.setAttribute('aria-busy', 'false');
    }
  }

  render() {
    const s = this.stats;
    const units = this.settings.units();
    const b = s.bands;
    const set = (id, text) => {
      this.$(id).textContent = text;
    };
    set('#r-period', this.range
      ? `${new Date(s.from).toLocaleDateString()} to ${new Date(s.to - 1).toLocaleDateString()} (${s.days} day${s.days === 1 ? '' : 's'})`
      : `Last ${s.days} day${s.days === 1 ? '' : 's'}, to ${new Date(s.to).toLocaleString()}`);
    const held = this.groups ? this.groups.days.groups.length : 0;
    set('#r-held', `${held} of ${s.days} day${s.days === 1 ? '' : 's'} hold readings`);
    this.$('#r-held').dataset.days = String(held);
    set('#r-count', s.count.toLocaleString());
    set('#r-mean', s.mean == null ? '\u2013' : `${fmt(s.mean, units)} ${unitLabel(units)}`);
    set('#r-sd', s.sd == null ? '\u2013' : `${units === 'mmol' ? fmt(s.sd, units) : s.sd.toFixed(1)} ${unitLabel(units)}`);
    set('#r-cv', pct(s.cv));
    set('#r-gmi', pct(s.gmi));
    const limits = {
      veryHigh: `above ${fmt(b.veryHigh, units)}`,
      high: `${fmt(b.high, units)}\u2013${fmt(b.veryHigh, units)}`,
      inRange: `${fmt(b.low, units)}\u2013${fmt(b.high, units)}`,
      low: `${fmt(b.veryLow, units)}\u2013${fmt(b.low, units)}`,
      veryLow: `below ${fmt(b.veryLow, units)}`,
    };
    const bar = this.$('#r-bar');
    bar.replaceChildren();
    for (const [key, label, level] of RANGES) {
      const r = s.ranges[key];
      set(`#r-${key.toLowerCase()}`, pct(r.percent));
      set(`#r-${key.toLowerCase()}-limits`, `${limits[key]} ${unitLabel(units)}`);
      const seg = document.createElement('div');
      seg.className = `seg ${level}`;
      // CSSOM, not a style attribute: the page's CSP allows no inline styles.
      seg.style.flexGrow = String(r.percent || 0);
      seg.title = `${label}: ${pct(r.percent)}`;
      bar.append(seg);
    }
    bar.setAttribute('aria-label', RANGES.map(([k, label]) => `${label} ${pct(s.ranges[k].percent)}`).join(', '));
    this.drawAgp();
    this.renderSections();
  }

  /** Daily, hourly and weekly statistics, day-to-day charts, treatments and profiles. */
  renderSections() {
    const units = this.settings.units();
    const g = this.groups;
    this.sections.replaceChildren();
    if (!g) return;
    const u = unitLabel(units);
    const share = (x, ...keys) => pct(x.count ? (keys.reduce((a, k) => a + x.ranges[k], 0) * 100) / x.count : null);
    const spread = (x) => [fmt(x.min, units), fmt(x.p25, units), fmt(x.p50, units), fmt(x.p75, units), fmt(x.max, units)];
    const sd = (v) => (units === 'mmol' ? fmt(v, units) : v.toFixed(1));
    const day = (ms) => new Date(ms).toLocaleDateString(undefined, { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' });

    // Nightscout's glucose distribution: below, in and above the target range and overall.
    const dist = section(this.sections, 'r-distribution', 'Glucose distribution');
    const sd0 = this.stats.distribution || {};
    const b = this.stats.bands;
    const names = {
      low: `Low (below ${fmt(b.low, units)})`,
      inRange: `In range (${fmt(b.low, units)}\u2013${fmt(b.high, units)})`,
      high: `High (above ${fmt(b.high, units)})`,
      overall: 'Overall',
    };
    const a1c = (r) => (r.a1c ? `${r.a1c.dcct.toFixed(1)}\u202f% (${Math.round(r.a1c.ifcc)} mmol/mol), GMI ${r.gmi.toFixed(1)}\u202f%` : '');
    dist.append(table(
      ['Range', '% of readings', 'Readings', `Mean (${u})`, 'Median', 'SD', 'A1c estimate'],
      Object.keys(names).filter((k) => sd0[k]).map((k) => [names[k], pct(sd0[k].percent), String(sd0[k].count),
        fmt(sd0[k].mean, units), fmt(sd0[k].median, units), sd(sd0[k].sd), a1c(sd0[k])]),
    ));

    const daily = section(this.sections, 'r-daily', 'Daily stats');
    daily.append(table(
      ['Date', 'Readings', 'Low', 'In range', 'High', `Min (${u})`, '25 %', 'Median', '75 %', 'Max', 'Mean', 'SD'],
      g.days.groups.map((d) => [day(d.start), String(d.count), share(d, 'veryLow', 'low'), share(d, 'inRange'),
        share(d, 'high', 'veryHigh'), ...spread(d), fmt(d.mean, units), sd(d.sd)]),
    ));

    const hourly = section(this.sections, 'r-hourly', 'Hourly stats');
    const tf = this.settings.timeFormat();
    const hour = (h) => (tf === 24 ? `${String(h).padStart(2, '0')}:00` : `${h % 12 || 12}${h < 12 ? 'am' : 'pm'}`);
    hourly.append(table(
      ['Hour', 'Readings', 'Low', 'In range', 'High', `Min (${u})`, '25 %', 'Median', '75 %', 'Max', 'Mean', 'SD'],
      g.hours.groups.map((x) => [hour(x.hour), String(x.count), share(x, 'veryLow', 'low'), share(x, 'inRange'),
        share(x, 'high', 'veryHigh'), ...spread(x), fmt(x.mean, units), sd(x.sd)]),
    ));

    const weekly = section(this.sections, 'r-weekly', 'Week to week');
    weekly.append(table(
      ['Week from', 'Readings', 'Low', 'In range', 'High', `Mean (${u})`, 'Median', 'SD', 'GMI'],
      g.weeks.groups.map((w) => [day(w.start), String(w.count), share(w, 'veryLow', 'low'), share(w, 'inRange'),
        share(w, 'high', 'veryHigh'), fmt(w.mean, units), fmt(w.p50, units), sd(w.sd), pct(3.31 + 0.02392 * w.mean)]),
    ));
    // Each week's hourly means, Monday to Sunday, one curve per week, with a key under it.
    this.weekCanvas = document.createElement('canvas');
    this.weekCanvas.className = 'r-weeks';
    this.weekCanvas.setAttribute('role', 'img');
    this.weekCanvas.setAttribute('aria-label', 'Hourly mean glucose of each week, Monday to Sunday');
    const key = document.createElement('p');
    key.className = 'r-week-key';
    g.weeks.groups.forEach((w, k) => {
      const item = document.createElement('span');
      // CSSOM, not a style attribute: the page's CSP allows no inline styles.
      item.style.color = weekColour(k, g.weeks.groups.length);
      item.textContent = `\u25a0 ${day(w.start)}`;
      key.append(item, ' ');
    });
    weekly.querySelector('h3').after(this.weekCanvas, key);
    this.drawWeeks();

    const loop = section(this.sections, 'r-loop', 'Loop analysis');
    if (g.loop && g.loop.statuses) {
      const p = document.createElement('p');
      p.className = 'muted';
      p.textContent = `${g.loop.statuses} loop device statuses, ${g.loop.enacted} with a change the pump received; means by hour of the day.`;
      loop.append(p, table(
        ['Hour', 'Statuses', 'IOB (U)', 'COB (g)', 'Enacted'],
        g.loop.hours.map((x) => [hour(x.hour), String(x.statuses), x.iob == null ? '\u2013' : x.iob.toFixed(2),
          x.cob == null ? '\u2013' : x.cob.toFixed(0), String(x.enacted)]),
      ));
    } else {
      const p = document.createElement('p');
      p.className = 'muted';
      p.textContent = g.loop ? 'No loop device statuses (IOB or COB) in this period.' : 'Device statuses are not readable with these credentials.';
      loop.append(p);
    }

    this.dayToDay.show(section(this.sections, 'r-daytoday', 'Day to day'), g.days.groups.slice().reverse(), this.stats.bands);
    this.log.show(this.sections, this.stats.from, this.stats.to);
  }

  drawAgp() {
    const s = this.stats;
    if (!s || this.root.hidden) return;
    drawAgp(this.canvas, {
      agp: s.agp,
      bucketMinutes: s.bucketMinutes,
      units: this.settings.units(),
      bands: s.bands,
      timeFormat: this.settings.timeFormat(),
    });
    const med = s.agp.map((b) => b.p50);
    this.canvas.setAttribute('aria-label', s.agp.length
      ? `Ambulatory glucose profile over ${s.days} days: median from ${fmt(Math.min(...med), this.settings.units())} to ${fmt(Math.max(...med), this.settings.units())} ${unitLabel(this.settings.units())}`
      : 'Ambulatory glucose profile: no data');
  }
}
