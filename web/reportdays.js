// Day to day (Nightscout's daytoday report): one chart per local day of the report with its
// readings, carbs and insulin, temp basals and, where the uploader's device statuses carry
// them, IOB and COB, and the scheduled basal of the profile with its Profile Switches applied
// (forecast.js' basalSteps, the main chart's line). A day's data is fetched only when its chart is shown (seven at a time,
// newest first), so a 90-day report costs the phone seven days until asked for more.

import { api } from './auth.js';
import { basalSteps } from './forecast.js';
import { fmt } from './glucose.js';

const H = 3600000;
const PAGE = 7;

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

const range = (from, to) => {
  const a = encodeURIComponent(new Date(from).toISOString());
  const b = encodeURIComponent(new Date(to).toISOString());
  return `find[created_at][$gte]=${a}&find[created_at][$lt]=${b}`;
};

/** IOB (U) and COB (g) of a device status: OpenAPS/AndroidAPS or Loop's fields. */
export function iobCob(ds) {
  const o = ds.openaps || {};
  const iob = Array.isArray(o.iob) ? o.iob[0]?.iob : o.iob?.iob ?? ds.loop?.iob?.iob;
  const cob = o.suggested?.COB ?? o.enacted?.COB ?? ds.loop?.cob?.cob;
  return { iob: Number.isFinite(iob) ? iob : null, cob: Number.isFinite(cob) ? cob : null };
}

export class DayToDay {
  constructor({ settings }) {
    this.settings = settings;
    this.days = [];
  }

  /** Fills `card` with the charts of `days` (groups of /api/v2/stats/days, newest first). */
  show(card, days, bands) {
    this.card = card;
    this.bands = bands;
    this.list = days;
    this.days = [];
    this.shown = 0;
    // The profile documents, read once per report (none without the permission to read them).
    this.profiles = null;
    this.box = document.createElement('div');
    this.box.className = 'r-days';
    this.more = document.createElement('button');
    this.more.type = 'button';
    this.more.className = 'r-more';
    this.more.addEventListener('click', () => this.page());
    card.append(this.box, this.more);
    if (!days.length) {
      const p = document.createElement('p');
      p.className = 'muted';
      p.textContent = 'No readings in this period.';
      card.insertBefore(p, this.box);
    }
    this.page();
  }

  page() {
    const next = this.list.slice(this.shown, this.shown + PAGE);
    this.shown += next.length;
    for (const d of next) this.add(d);
    const left = this.list.length - this.shown;
    this.more.hidden = left <= 0;
    this.more.textContent = `Show ${Math.min(PAGE, left)} more of ${left} days`;
  }

  add(d) {
    const fig = document.createElement('figure');
    fig.className = 'r-day';
    const cap = document.createElement('figcaption');
    const inRange = d.count ? ((d.ranges.inRange * 100) / d.count).toFixed(0) : '\u2013';
    const units = this.settings.units();
    cap.textContent = `${new Date(d.start).toLocaleDateString(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' })}: mean ${fmt(d.mean, units)}, ${inRange}\u202f% in range`;
    const canvas = document.createElement('canvas');
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', `Glucose on ${d.date}: ${d.count} readings`);
    const totals = document.createElement('p');
    totals.className = 'muted r-day-totals';
    fig.append(cap, canvas, totals);
    this.box.append(fig);
    const day = { d, canvas, totals, data: null, fig };
    this.days.push(day);
    this.load(day);
  }

  async load(day) {
    const from = day.d.start;
    // The next local midnight (23 or 25 hours on daylight-saving days).
    const next = new Date(from);
    next.setDate(next.getDate() + 1);
    const to = next.getTime();
    day.to = to;
    try {
      this.profiles ||= api('/api/v1/profile.json?count=100').catch(() => []);
      const before = encodeURIComponent(new Date(from).toISOString());
      const [sgv, treatments, statuses, profiles, older] = await Promise.all([
        api(`/api/v1/entries/sgv.json?find[date][$gte]=${from}&find[date][$lt]=${to}&count=3000`),
        api(`/api/v1/treatments.json?${range(from - 12 * H, to)}&count=3000`),
        api(`/api/v1/devicestatus.json?${range(from, to)}&count=2000`).catch(() => []),
        this.profiles,
        // The newest switches before the day: a permanent one (or a long temporary one) may
        // still be in force at its midnight.
        api(`/api/v1/treatments.json?find[eventType]=${encodeURIComponent('Profile Switch')}&find[created_at][$lt]=${before}&count=10`).catch(() => []),
      ]);
      const switches = new Map();
      for (const t of [...older, ...treatments]) if (t.eventType === 'Profile Switch') switches.set(t._id, t);
      const basal = basalSteps(Array.isArray(profiles) ? profiles : [], [...switches.values()], from, to - 1);
      // The steps as "hh:mm rate" (local time), so the day's basal is readable without the canvas.
      const hhmm = (ms) => new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
      day.fig.dataset.basal = basal.map((b) => `${hhmm(b.mills)} ${b.rate}`).join(', ');
      day.data = { sgv, treatments, statuses, basal };
      const today = treatments.filter((t) => Date.parse(t.created_at) >= from);
      const carbs = today.reduce((a, t) => a + (Number(t.carbs) || 0), 0);
      const insulin = today.reduce((a, t) => a + (Number(t.insulin) || 0), 0);
      day.totals.textContent = `${sgv.length} reading${sgv.length === 1 ? '' : 's'}, carbs ${Math.round(carbs)} g, bolus insulin ${insulin.toFixed(2)} U`;
      day.fig.dataset.loaded = 'true';
      this.draw(day);
    } catch (e) {
      day.totals.textContent = `Could not load this day: ${e.message}`;
    }
  }

  redraw() {
    for (const day of this.days) if (day.data) this.draw(day);
  }

  draw(day) {
    const { canvas } = day;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (!w || !h || !day.data) return;
    const dpr = Math.min(window.devicePixelRatio || 1, 3);
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const c = { fg: css('--fg'), muted: css('--muted'), grid: css('--grid'), band: css('--band'), ok: css('--ok'),
      warn: css('--warn'), urgent: css('--urgent'), carbs: css('--carbs'), bolus: css('--bolus'), basal: css('--basal'), pred: css('--pred') };
    const units = this.settings.units();
    const { sgv, treatments, statuses, basal } = day.data;
    const from = day.d.start;
    const to = day.to;
    const b = this.bands;
    // Glucose above, a strip for basal, IOB and COB below.
    const pad = { l: 4, r: 36, t: 14, b: 18 };
    const strip = Math.min(40, h * 0.25);
    const pw = w - pad.l - pad.r;
    const gh = h - pad.t - pad.b - strip - 4;
    const yMax = Math.max(300, ...sgv.map((s) => s.sgv || 0));
    const X = (t) => pad.l + ((t - from) / (to - from)) * pw;
    const Y = (mg) => pad.t + (1 - (Math.min(Math.max(mg, 40), yMax) - 40) / (yMax - 40)) * gh;
    const sTop = pad.t + gh + 4;
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    ctx.fillStyle = c.band;
    ctx.fillRect(pad.l, Y(b.high), pw, Y(b.low) - Y(b.high));
    ctx.strokeStyle = c.grid;
    ctx.fillStyle = c.muted;
    ctx.beginPath();
    for (let k = 0; k <= 24; k += 3) {
      const x = Math.round(X(from + k * H)) + 0.5;
      ctx.moveTo(x, pad.t);
      ctx.lineTo(x, sTop + strip);
      ctx.textAlign = k === 0 ? 'left' : k === 24 ? 'right' : 'center';
      ctx.fillText(String(k).padStart(2, '0'), x, h - 8);
    }
    ctx.stroke();
    ctx.textAlign = 'left';
    for (const v of [b.low, b.high]) ctx.fillText(fmt(v, units), pad.l + pw + 3, Y(v));
    for (const s of sgv) {
      const v = s.sgv;
      if (!(v >= 39)) continue;
      ctx.fillStyle = v < b.veryLow || v > b.veryHigh ? c.urgent : v < b.low || v > b.high ? c.warn : c.ok;
      ctx.fillRect(X(s.date) - 1.25, Y(v) - 1.25, 2.5, 2.5);
    }
    // Temp basals: bars in the strip, height by rate against the day's highest.
    const basals = treatments.filter((t) => t.eventType === 'Temp Basal' && Number.isFinite(Number(t.absolute ?? t.rate)));
    const maxRate = Math.max(0.1, ...basals.map((t) => Number(t.absolute ?? t.rate)), ...basal.map((b) => b.rate));
    ctx.globalAlpha = 0.45;
    ctx.fillStyle = c.basal;
    for (const t of basals) {
      const start = Date.parse(t.created_at);
      const end = start + (Number(t.duration) || 0) * 60000;
      const rate = Number(t.absolute ?? t.rate);
      const hgt = (rate / maxRate) * strip;
      const x0 = Math.max(X(start), pad.l);
      const x1 = Math.min(X(end), pad.l + pw);
      if (x1 > x0) ctx.fillRect(x0, sTop + strip - hgt, x1 - x0, hgt);
    }
    ctx.globalAlpha = 1;
    // The scheduled basal (profile and switches) as a step line on the same scale.
    if (basal.length) {
      const Yb = (rate) => sTop + strip - (rate / maxRate) * strip + 0.5;
      ctx.strokeStyle = c.basal;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      basal.forEach((b, i) => {
        const x = Math.max(X(b.mills), pad.l);
        if (i) ctx.lineTo(x, Yb(basal[i - 1].rate));
        ctx[i ? 'lineTo' : 'moveTo'](x, Yb(b.rate));
      });
      ctx.lineTo(pad.l + pw, Yb(basal[basal.length - 1].rate));
      ctx.stroke();
      ctx.lineWidth = 1;
    }
    // IOB and COB lines over the strip, each scaled to its own maximum.
    const pts = statuses.map((ds) => ({ t: Date.parse(ds.created_at), ...iobCob(ds) })).sort((p, q) => p.t - q.t);
    for (const [key, colour, unit] of [['iob', c.bolus, 'U'], ['cob', c.carbs, 'g']]) {
      const line = pts.filter((p) => p[key] != null);
      if (!line.length) continue;
      const max = Math.max(0.1, ...line.map((p) => p[key]));
      ctx.strokeStyle = colour;
      ctx.beginPath();
      line.forEach((p, i) => {
        const y = sTop + strip - (Math.max(0, p[key]) / max) * strip;
        if (i) ctx.lineTo(X(p.t), y);
        else ctx.moveTo(X(p.t), y);
      });
      ctx.stroke();
      ctx.fillStyle = colour;
      ctx.fillText(`${key.toUpperCase()} ${key === 'iob' ? max.toFixed(1) : Math.round(max)}${unit}`, pad.l + pw + 3, key === 'iob' ? sTop + 6 : sTop + 18);
    }
    // Carbs above the curve, insulin below it, labelled with their amounts.
    ctx.textAlign = 'center';
    for (const t of treatments) {
      const at = Date.parse(t.created_at);
      if (!(at >= from && at < to)) continue;
      const carbs = Number(t.carbs);
      const insulin = Number(t.insulin);
      if (carbs > 0) {
        ctx.fillStyle = c.carbs;
        ctx.beginPath();
        ctx.arc(X(at), pad.t + 2, 4, 0, Math.PI * 2);
        ctx.fill();
        ctx.fillText(`${Math.round(carbs)}g`, X(at), pad.t + 12);
      }
      if (insulin > 0) {
        ctx.fillStyle = c.bolus;
        const y = pad.t + gh - 4;
        ctx.beginPath();
        ctx.moveTo(X(at) - 4, y - 6);
        ctx.lineTo(X(at) + 4, y - 6);
        ctx.lineTo(X(at), y);
        ctx.fill();
        ctx.fillText(`${insulin.toFixed(insulin < 10 ? 2 : 1)}U`, X(at), y - 12);
      }
    }
  }
}

/**
 * Week to week (Nightscout's weektoweek report): each week's glucose over Monday..Sunday, one
 * curve per week of its hourly means (`curve` of /api/v2/stats/weeks: [hour of the week, mean]),
 * so weeks can be compared hour by hour. A curve breaks where an hour has no readings.
 */
export function drawWeekToWeek(canvas, { weeks, units, bands }) {
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (!w || !h) return;
  const dpr = Math.min(window.devicePixelRatio || 1, 3);
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const pad = { l: 6, r: 36, t: 8, b: 18 };
  const pw = w - pad.l - pad.r;
  const ph = h - pad.t - pad.b;
  const curves = weeks.map((wk) => (Array.isArray(wk.curve) ? wk.curve : []));
  const yMax = Math.max(250, ...curves.flat().map(([, v]) => v + 20));
  // Hour k of the week is drawn at its middle.
  const X = (k) => pad.l + ((k + 0.5) / 168) * pw;
  const Y = (mg) => pad.t + (1 - (Math.min(Math.max(mg, 40), yMax) - 40) / (yMax - 40)) * ph;
  ctx.font = '11px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  ctx.fillStyle = css('--band');
  ctx.fillRect(pad.l, Y(bands.high), pw, Y(bands.low) - Y(bands.high));
  ctx.strokeStyle = css('--grid');
  ctx.beginPath();
  for (let d = 1; d < 7; d++) {
    const x = Math.round(pad.l + (d / 7) * pw) + 0.5;
    ctx.moveTo(x, pad.t);
    ctx.lineTo(x, pad.t + ph);
  }
  ctx.stroke();
  ctx.fillStyle = css('--muted');
  ctx.textAlign = 'center';
  ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].forEach((name, i) => ctx.fillText(name, pad.l + ((i + 0.5) / 7) * pw, h - 8));
  ctx.textAlign = 'left';
  for (const v of [bands.low, bands.high]) ctx.fillText(fmt(v, units), pad.l + pw + 3, Y(v));
  curves.forEach((pts, k) => {
    ctx.strokeStyle = weekColour(k, weeks.length);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    pts.forEach(([hour, v], j) => {
      if (j && hour === pts[j - 1][0] + 1) ctx.lineTo(X(hour), Y(v));
      else ctx.moveTo(X(hour), Y(v));
    });
    ctx.stroke();
    // A lone hour would draw nothing: a dot shows it.
    ctx.fillStyle = ctx.strokeStyle;
    pts.forEach(([hour, v], j) => {
      const joined = (j && hour === pts[j - 1][0] + 1) || (j + 1 < pts.length && pts[j + 1][0] === hour + 1);
      if (!joined) ctx.fillRect(X(hour) - 1.5, Y(v) - 1.5, 3, 3);
    });
  });
  ctx.lineWidth = 1;
  canvas.dataset.weeks = String(curves.filter((c) => c.length).length);
  canvas.dataset.hours = String(curves.reduce((n, c) => n + c.length, 0));
}

/** The colour of week `k` of `n`: oldest blue-grey to newest orange. */
export function weekColour(k, n) {
  const f = n > 1 ? k / (n - 1) : 1;
  return `hsl(${Math.round(210 - 180 * f)} 70% 50%)`;
}
