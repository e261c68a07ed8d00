// Reports: time in ranges, mean, GMI, variability and the AGP for 1 to 90 days, from
// GET /api/v2/stats (computed by the server in SQL, so a phone never downloads 90 days).

import { api } from './auth.js';
import { drawAgp } from './chart.js';
import { fmt, unitLabel } from './glucose.js';

const RANGES = [
  ['veryHigh', 'Very high', 'urgent'],
  ['high', 'High', 'warn'],
  ['inRange', 'In range', 'ok'],
  ['low', 'Low', 'warn'],
  ['veryLow', 'Very low', 'urgent'],
];

const pct = (v) => (v == null ? '\u2013' : `${v.toFixed(1)}\u202f%`);

export class Reports {
  constructor(root, { settings, store }) {
    this.root = root;
    this.settings = settings;
    this.store = store;
    this.days = Number(store.get('nl.reportDays')) || 14;
    this.stats = null;
    this.loading = 0;
    this.canvas = root.querySelector('#agp');
    for (const b of root.querySelectorAll('[data-days]')) {
      b.addEventListener('click', () => {
        this.days = Number(b.dataset.days);
        store.set('nl.reportDays', String(this.days));
        this.load();
      });
    }
    if (window.ResizeObserver) new ResizeObserver(() => this.drawAgp()).observe(this.canvas);
  }

  $(sel) {
    return this.root.querySelector(sel);
  }

  async load() {
    for (const b of this.root.querySelectorAll('[data-days]')) {
      b.setAttribute('aria-pressed', String(Number(b.dataset.days) === this.days));
    }
    const status = this.$('#r-status');
    status.textContent = 'Loading\u2026';
    this.root.setAttribute('aria-busy', 'true');
    const ticket = ++this.loading;
    try {
      const tz = -new Date().getTimezoneOffset();
      const stats = await api(`/api/v2/stats?days=${this.days}&tz=${tz}`);
      if (ticket !== this.loading) return;
      this.stats = stats;
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
    set('#r-period', `Last ${s.days} day${s.days === 1 ? '' : 's'}, to ${new Date(s.to).toLocaleString()}`);
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
