// Our own small charts on <canvas>: the glucose chart of the Now view and the AGP of the
// reports. Canvas rather than SVG because 1,440 dots plus markers redraw in about a
// millisecond and keep a phone smooth; every value is in mg/dl, labels in display units.

import { fmt, rangeOf, treatmentMgdl } from './glucose.js';

const H = 3600000;
const TAU = Math.PI * 2;

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

function colours() {
  return {
    fg: css('--fg'), muted: css('--muted'), grid: css('--grid'), band: css('--band'),
    'urgent-low': css('--urgent'), low: css('--warn'), 'in-range': css('--ok'),
    high: css('--warn'), 'urgent-high': css('--urgent'), urgent: css('--urgent'), warn: css('--warn'),
    carbs: css('--carbs'), bolus: css('--bolus'), note: css('--note'), device: css('--device'),
    pred: css('--pred'), ar2: css('--ar2'), basal: css('--basal'), tt: css('--tt'), mbg: css('--mbg'), bg: css('--bg'),
  };
}

/** Sizes the backing store to the element and returns a context in CSS pixels, or null. */
function prepare(canvas) {
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (!w || !h) return null;
  const dpr = Math.min(window.devicePixelRatio || 1, 3);
  const bw = Math.round(w * dpr);
  const bh = Math.round(h * dpr);
  if (canvas.width !== bw || canvas.height !== bh) {
    canvas.width = bw;
    canvas.height = bh;
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

/** Short time labels: "14:00" or "2pm" / "2:30pm". */
export function tickLabel(ms, timeFormat) {
  const d = new Date(ms);
  const hh = d.getHours();
  const mm = d.getMinutes();
  const m2 = String(mm).padStart(2, '0');
  if (timeFormat === 24) return `${String(hh).padStart(2, '0')}:${m2}`;
  const h12 = hh % 12 || 12;
  return `${h12}${mm ? `:${m2}` : ''}${hh < 12 ? 'am' : 'pm'}`;
}

/** First index in `arr` (sorted by mills) whose mills is >= t. */
function lowerBound(arr, t) {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid].mills < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The glucose at time t, from the nearest reading within 15 minutes. */
function glucoseAt(sgvs, t) {
  const i = lowerBound(sgvs, t);
  let best = null;
  for (const j of [i - 1, i]) {
    const s = sgvs[j];
    if (s && Math.abs(s.mills - t) < 15 * 60000 && (!best || Math.abs(s.mills - t) < Math.abs(best.mills - t))) best = s;
  }
  return best ? best.mgdl : null;
}

/** What kind of marker a treatment gets. */
export function markerKind(t) {
  const e = t.eventType || '';
  if (e === 'Temp Basal') return 'basal';
  if (e === 'Temporary Target') return 'tt';
  if (Number(t.insulin) > 0 || Number(t.carbs) > 0) return 'dose';
  if (e === 'BG Check' || (treatmentMgdl(t) != null && !e)) return 'bg';
  if (/Change|Start|Stop/.test(e)) return 'device';
  return 'note';
}

export class GlucoseChart {
  /** `onPick(item, x, y)` is called with the tapped treatment or reading (or null). */
  constructor(canvas, { onPick, onDraw } = {}) {
    this.canvas = canvas;
    this.onPick = onPick || (() => {});
    this.onDraw = onDraw || (() => {});
    this.data = null;
    this.hits = [];
    this.dots = [];
    this.pending = false;
    // What was drawn stays inspectable (the browser tests tap markers where the chart put them).
    canvas.glucoseChart = this;
    if (window.ResizeObserver) new ResizeObserver(() => this.schedule()).observe(canvas);
    canvas.addEventListener('click', (e) => this.pick(e));
  }

  set(data) {
    this.data = data;
    this.schedule();
  }

  /** Draws at the next frame, once however many updates arrive before it. */
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw() {
    const d = this.data;
    const p = d && prepare(this.canvas);
    if (!p) return;
    const { ctx, w, h } = p;
    const c = colours();
    const { sgvs, mbgs, treatments, predictions, now, hours, th, units, timeFormat } = d;
    const ar2 = d.ar2 || { predicted: [], cone: [] };
    const scheduled = d.basal || [];
    const ahead = predictions.length || ar2.predicted.length;
    const future = ahead ? Math.min(3 * H, Math.max(0.5 * H, hours * H * 0.2)) : hours * H * 0.03;
    const x0 = now - hours * H;
    const x1 = now + future;
    const first = lowerBound(sgvs, x0);
    const visible = sgvs.slice(first);
    let vmax = 0;
    for (const s of visible) if (s.mgdl > vmax) vmax = s.mgdl;
    for (const s of predictions) for (const v of s.values) if (v.mills <= x1 && v.mgdl > vmax) vmax = v.mgdl;
    for (const v of ar2.predicted) if (v.mills <= x1 && v.mgdl > vmax) vmax = v.mgdl;
    const yMin = 35;
    const yMax = Math.min(450, Math.max(th.bgHigh + 30, vmax + 15));
    const basals = treatments.filter((t) => markerKind(t) === 'basal' && t.mills + (Number(t.duration) || 0) * 60000 > x0);
    const strip = basals.length || scheduled.length;
    const pad = { l: 6, r: 42, t: 10, b: 22 + (strip ? 18 : 0) };
    const pw = w - pad.l - pad.r;
    const ph = h - pad.t - pad.b;
    const X = (ms) => pad.l + ((ms - x0) / (x1 - x0)) * pw;
    const Y = (mg) => pad.t + (1 - (Math.min(Math.max(mg, yMin), yMax) - yMin) / (yMax - yMin)) * ph;

    ctx.font = '12px system-ui, sans-serif';
    ctx.textBaseline = 'middle';

    // Target band and the high/low lines.
    ctx.fillStyle = c.band;
    ctx.fillRect(pad.l, Y(th.bgTargetTop), pw, Y(th.bgTargetBottom) - Y(th.bgTargetTop));
    ctx.setLineDash([4, 4]);
    ctx.lineWidth = 1;
    for (const [v, col] of [[th.bgHigh, c.urgent], [th.bgLow, c.urgent], [th.bgTargetTop, c.warn], [th.bgTargetBottom, c.warn]]) {
      ctx.strokeStyle = col;
      ctx.globalAlpha = 0.55;
      ctx.beginPath();
      ctx.moveTo(pad.l, Math.round(Y(v)) + 0.5);
      ctx.lineTo(pad.l + pw, Math.round(Y(v)) + 0.5);
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    ctx.setLineDash([]);

    // Y labels at the thresholds, in display units.
    ctx.fillStyle = c.muted;
    ctx.textAlign = 'left';
    for (const v of [th.bgLow, th.bgTargetBottom, th.bgTargetTop, th.bgHigh]) ctx.fillText(fmt(v, units), pad.l + pw + 4, Y(v));

    // Time grid on local hours.
    // The finest step whose labels do not touch ("10:30am" needs about 52 px): a phone gets
    // fewer labels than a desktop for the same range.
    const labelPx = timeFormat === 24 ? 44 : 56;
    const step = [0.5, 1, 2, 3, 4, 6].map((k) => k * H).find((st) => (st / (x1 - x0)) * pw >= labelPx) || 6 * H;
    const tz = new Date(x0).getTimezoneOffset() * 60000;
    ctx.textAlign = 'center';
    ctx.strokeStyle = c.grid;
    ctx.beginPath();
    for (let t = Math.ceil((x0 - tz) / step) * step + tz; t <= x1; t += step) {
      const x = Math.round(X(t)) + 0.5;
      ctx.moveTo(x, pad.t);
      ctx.lineTo(x, pad.t + ph);
      // A label cut by the canvas' left edge is left out (its grid line stays).
      const label = tickLabel(t, timeFormat);
      if (x >= ctx.measureText(label).width / 2) ctx.fillText(label, x, h - 10);
    }
    ctx.stroke();

    // Now.
    ctx.strokeStyle = c.muted;
    ctx.setLineDash([2, 3]);
    ctx.beginPath();
    ctx.moveTo(Math.round(X(now)) + 0.5, pad.t);
    ctx.lineTo(Math.round(X(now)) + 0.5, pad.t + ph);
    ctx.stroke();
    ctx.setLineDash([]);

    this.hits = [];
    // Temporary targets: a band over their duration.
    for (const t of treatments) {
      if (markerKind(t) !== 'tt') continue;
      const dur = (Number(t.duration) || 0) * 60000;
      if (!dur || t.mills + dur < x0) continue;
      const mmol = String(t.units || '').startsWith('mmol');
      const top = Number(t.targetTop) * (mmol ? 18.01559 : 1);
      const bottom = Number(t.targetBottom) * (mmol ? 18.01559 : 1);
      if (!(top > 0 && bottom > 0)) continue;
      const xa = Math.max(X(t.mills), pad.l);
      const xb = Math.min(X(t.mills + dur), pad.l + pw);
      ctx.fillStyle = c.tt;
      ctx.globalAlpha = 0.35;
      ctx.fillRect(xa, Y(top) - 2, Math.max(xb - xa, 2), Y(bottom) - Y(top) + 4);
      ctx.globalAlpha = 1;
      this.hits.push({ x: xa, y: (Y(top) + Y(bottom)) / 2, r: 10, item: { kind: 'treatment', t } });
    }

    // Temp basals: a strip under the chart, height by rate; the profile's scheduled basal a
    // step line over it, on the same scale.
    let basalDrawn = 0;
    if (strip) {
      const base = h - 22;
      const maxRate = Math.max(0.1, ...basals.map((t) => Number(t.absolute ?? t.rate) || 0), ...scheduled.map((b) => b.rate));
      if (scheduled.length) {
        ctx.strokeStyle = c.basal;
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        scheduled.forEach((b, i) => {
          const xa = Math.max(X(b.mills), pad.l);
          const xb = Math.min(i + 1 < scheduled.length ? X(scheduled[i + 1].mills) : X(now), pad.l + pw);
          const y = base - Math.max(1, (b.rate / maxRate) * 14);
          if (i === 0) ctx.moveTo(xa, y);
          else ctx.lineTo(xa, y);
          ctx.lineTo(xb, y);
        });
        ctx.stroke();
        basalDrawn = scheduled.length;
      }
      ctx.fillStyle = c.basal;
      for (const t of basals) {
        const rate = Number(t.absolute ?? t.rate) || 0;
        const xa = Math.max(X(t.mills), pad.l);
        const xb = Math.min(X(t.mills + (Number(t.duration) || 0) * 60000), pad.l + pw);
        const bh = Math.max(1, (rate / maxRate) * 14);
        ctx.fillRect(xa, base - bh, Math.max(1, xb - xa), bh);
        this.hits.push({ x: xa, y: base - bh / 2, r: 8, item: { kind: 'treatment', t } });
      }
    }

    // Glucose dots, one path per colour.
    // Dots about as wide as the time between readings: a dense day reads as a line, a few
    // hours as separate readings.
    const r = Math.max(2, Math.min(3.5, (pw / Math.max(visible.length, 1)) * 0.45));
    const paths = {};
    this.dots = [];
    for (const s of visible) {
      const x = X(s.mills);
      const y = Y(s.mgdl);
      const k = rangeOf(s.mgdl, th);
      const path = paths[k] || (paths[k] = new Path2D());
      path.moveTo(x + r, y);
      path.arc(x, y, r, 0, TAU);
      this.dots.push({ x, y, s });
    }
    for (const [k, path] of Object.entries(paths)) {
      ctx.fillStyle = c[k];
      ctx.fill(path);
    }

    // AR2: the cone, a translucent band, and the forecast's points (Nightscout's cyan).
    const inView = (v) => v.mills >= now - 5 * 60000 && v.mills <= x1;
    const cone = ar2.cone.filter(inView);
    if (cone.length > 1) {
      ctx.fillStyle = c.ar2;
      ctx.globalAlpha = 0.18;
      ctx.beginPath();
      cone.forEach((v, i) => (i ? ctx.lineTo(X(v.mills), Y(v.high)) : ctx.moveTo(X(v.mills), Y(v.high))));
      for (let i = cone.length - 1; i >= 0; i--) ctx.lineTo(X(cone[i].mills), Y(cone[i].low));
      ctx.closePath();
      ctx.fill();
      ctx.globalAlpha = 1;
    }
    const forecast = ar2.predicted.filter(inView);
    if (forecast.length) {
      ctx.fillStyle = c.ar2;
      const path = new Path2D();
      for (const v of forecast) {
        path.moveTo(X(v.mills) + 2.5, Y(v.mgdl));
        path.arc(X(v.mills), Y(v.mgdl), 2.5, 0, TAU);
      }
      ctx.fill(path);
    }

    // Predictions: small rings after now.
    const predColours = { Loop: c.pred, IOB: c.bolus, ZT: c.muted, COB: c.carbs, UAM: c.warn };
    ctx.lineWidth = 1;
    for (const s of predictions) {
      ctx.strokeStyle = predColours[s.name] || c.pred;
      const path = new Path2D();
      for (const v of s.values) {
        if (v.mills < now - 5 * 60000 || v.mills > x1) continue;
        path.moveTo(X(v.mills) + 2, Y(v.mgdl));
        path.arc(X(v.mills), Y(v.mgdl), 2, 0, TAU);
      }
      ctx.stroke(path);
    }

    // Finger checks.
    for (const m of mbgs) {
      if (m.mills < x0) continue;
      this.ring(ctx, X(m.mills), Y(m.mgdl), 5, c.mbg, c.bg);
    }

    // Treatment markers on the glucose curve.
    for (const t of treatments) {
      const kind = markerKind(t);
      if (kind === 'basal' || kind === 'tt' || t.mills < x0) continue;
      const x = X(t.mills);
      const g = treatmentMgdl(t) ?? glucoseAt(sgvs, t.mills);
      const y = g != null ? Y(g) : pad.t + 14;
      let hr = 7;
      if (kind === 'dose') {
        const carbs = Number(t.carbs) || 0;
        const insulin = Number(t.insulin) || 0;
        if (carbs > 0) {
          const cr = Math.min(14, 4 + Math.sqrt(carbs));
          ctx.fillStyle = c.carbs;
          ctx.beginPath();
          ctx.arc(x, y - cr - 4, cr, 0, TAU);
          ctx.fill();
          hr = Math.max(hr, cr + 4);
        }
        if (insulin > 0) {
          const s = Math.min(12, 4 + Math.sqrt(insulin) * 3);
          ctx.fillStyle = c.bolus;
          ctx.beginPath();
          ctx.moveTo(x - s, y + 5);
          ctx.lineTo(x + s, y + 5);
          ctx.lineTo(x, y + 5 + s * 1.4);
          ctx.closePath();
          ctx.fill();
          hr = Math.max(hr, s + 4);
        }
      } else if (kind === 'bg') {
        this.ring(ctx, x, y, 5, c.mbg, c.bg);
      } else if (kind === 'device') {
        ctx.fillStyle = c.device;
        ctx.beginPath();
        ctx.moveTo(x, y - 14);
        ctx.lineTo(x + 6, y - 8);
        ctx.lineTo(x, y - 2);
        ctx.lineTo(x - 6, y - 8);
        ctx.closePath();
        ctx.fill();
      } else {
        ctx.fillStyle = c.note;
        ctx.fillRect(x - 5, y - 15, 10, 10);
      }
      this.hits.push({ x, y, r: hr + 6, item: { kind: 'treatment', t } });
    }

    this.canvas.dataset.from = String(x0);
    this.canvas.dataset.tickGap = String(Math.round((step / (x1 - x0)) * pw));
    this.canvas.dataset.points = String(visible.length);
    this.canvas.dataset.markers = String(this.hits.length);
    this.canvas.dataset.forecast = String(forecast.length);
    this.canvas.dataset.cone = String(cone.length);
    this.canvas.dataset.basal = String(basalDrawn);
    this.onDraw(visible.length);
  }

  ring(ctx, x, y, r, stroke, fill) {
    ctx.beginPath();
    ctx.arc(x, y, r, 0, TAU);
    ctx.fillStyle = fill;
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = stroke;
    ctx.stroke();
  }

  pick(e) {
    const rect = this.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left;
    const y = e.clientY - rect.top;
    let best = null;
    let bestD = Infinity;
    for (const hit of this.hits) {
      const dd = Math.hypot(hit.x - x, hit.y - y);
      if (dd <= Math.max(hit.r, 18) && dd < bestD) {
        best = hit;
        bestD = dd;
      }
    }
    if (!best && this.dots.length) {
      // The nearest reading by time, if the tap is close to it.
      let lo = 0;
      let hi = this.dots.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.dots[mid].x < x) lo = mid + 1;
        else hi = mid;
      }
      for (const j of [lo - 1, lo]) {
        const dot = this.dots[j];
        if (dot && Math.abs(dot.x - x) < 12 && Math.abs(dot.y - y) < 40) {
          const dd = Math.hypot(dot.x - x, dot.y - y);
          if (dd < bestD) {
            best = { x: dot.x, y: dot.y, item: { kind: 'sgv', s: dot.s } };
            bestD = dd;
          }
        }
      }
    }
    this.onPick(best && best.item, best ? best.x : x, best ? best.y : y);
  }
}

/**
 * The ambulatory glucose profile: 5-95 % and 25-75 % bands and the median by time of day,
 * from `/api/v2/stats` buckets.
 */
export function drawAgp(canvas, { agp, bucketMinutes, units, bands, timeFormat }) {
  const p = prepare(canvas);
  if (!p) return;
  const { ctx, w, h } = p;
  const c = colours();
  const pad = { l: 6, r: 42, t: 10, b: 22 };
  const pw = w - pad.l - pad.r;
  const ph = h - pad.t - pad.b;
  const yMin = 35;
  const yMax = Math.min(450, Math.max(300, ...agp.map((b) => b.p95 + 10)));
  const X = (min) => pad.l + (min / 1440) * pw;
  const Y = (mg) => pad.t + (1 - (Math.min(Math.max(mg, yMin), yMax) - yMin) / (yMax - yMin)) * ph;
  ctx.font = '12px system-ui, sans-serif';
  ctx.textBaseline = 'middle';

  ctx.fillStyle = c.band;
  ctx.fillRect(pad.l, Y(bands.high), pw, Y(bands.low) - Y(bands.high));
  ctx.fillStyle = c.muted;
  ctx.textAlign = 'left';
  for (const v of [bands.veryLow, bands.low, bands.high, bands.veryHigh]) ctx.fillText(fmt(v, units), pad.l + pw + 4, Y(v));
  ctx.strokeStyle = c.grid;
  ctx.textAlign = 'center';
  ctx.beginPath();
  for (let m = 0; m <= 1440; m += 180) {
    const x = Math.round(X(m)) + 0.5;
    ctx.moveTo(x, pad.t);
    ctx.lineTo(x, pad.t + ph);
    const midnight = new Date();
    midnight.setHours(0, 0, 0, 0);
    ctx.textAlign = m === 0 ? 'left' : m === 1440 ? 'right' : 'center';
    ctx.fillText(tickLabel(midnight.getTime() + m * 60000, timeFormat), x, h - 10);
  }
  ctx.stroke();
  if (!agp.length) return;

  const mid = (b) => b.minute + bucketMinutes / 2;
  const band = (lo, hi, colour, alpha) => {
    ctx.beginPath();
    agp.forEach((b, i) => (i ? ctx.lineTo(X(mid(b)), Y(b[hi])) : ctx.moveTo(X(mid(b)), Y(b[hi]))));
    for (let i = agp.length - 1; i >= 0; i--) ctx.lineTo(X(mid(agp[i])), Y(agp[i][lo]));
    ctx.closePath();
    ctx.globalAlpha = alpha;
    ctx.fillStyle = colour;
    ctx.fill();
    ctx.globalAlpha = 1;
  };
  band('p5', 'p95', c.pred, 0.22);
  band('p25', 'p75', c.pred, 0.45);
  ctx.beginPath();
  agp.forEach((b, i) => (i ? ctx.lineTo(X(mid(b)), Y(b.p50)) : ctx.moveTo(X(mid(b)), Y(b.p50))));
  ctx.lineWidth = 2.5;
  ctx.strokeStyle = c.fg;
  ctx.stroke();
  ctx.lineWidth = 1;
  canvas.dataset.buckets = String(agp.length);
}
