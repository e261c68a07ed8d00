// What the chart draws ahead of and under the readings: the AR2 forecast's cone of uncertainty
// (Nightscout's lib/plugins/ar2.js forecastCone, as src/plugins/ar2.rs `cone`) around the
// forecast the server computes (/api/v2/properties ar2), and the scheduled basal of the
// profile documents over the chart's window.

const BG_REF = 140;
const FIVE_MIN = 300000;
/** forecastCone's steps: how far each later point spreads, in log space. */
const CONE_STEPS = [0.020, 0.041, 0.061, 0.081, 0.099, 0.116, 0.132, 0.146, 0.159, 0.171, 0.182, 0.192, 0.201];

/**
 * The cone from the `bgnow` and `delta` properties: 13 steps 5 minutes apart, each
 * `{mills, low, high}` in mg/dl (rounded, held to 36..400); [] when AR2 makes no forecast.
 */
export function ar2Cone(bgnow, delta, factor = 2) {
  const mean = Number(bgnow && bgnow.mean);
  const before = delta && delta.mean5MinsAgo;
  if (!(mean >= 36) || typeof before !== 'number' || !before) return [];
  let prev = Math.log(before / BG_REF);
  let curr = Math.log(mean / BG_REF);
  let t = Number(bgnow.mills) || Date.now();
  const at = (k, step) => Math.min(400, Math.max(36, Math.round(BG_REF * Math.exp(curr + k * step))));
  return CONE_STEPS.map((step) => {
    [prev, curr] = [curr, -0.723 * prev + 1.716 * curr];
    t += FIVE_MIN;
    return { mills: t, low: at(-factor, step), high: at(factor, step) };
  });
}

/** The profile a document holds: `store[defaultProfile]`, or the document itself. */
function profileOf(doc) {
  if (doc.defaultProfile && doc.store) return doc.store[doc.defaultProfile] || null;
  return doc;
}

const formats = new Map();

/** Seconds since local midnight at `ms` in `zone` (the browser's zone without one). */
function secondsOfDay(ms, zone) {
  const key = zone || '';
  let f = formats.get(key);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-GB', { timeZone: zone || undefined, hourCycle: 'h23', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    } catch {
      f = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', hourCycle: 'h23', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    }
    formats.set(key, f);
  }
  const p = Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return Number(p.hour) * 3600 + Number(p.minute) * 60 + Number(p.second);
}

/** A schedule's value at `secs` after midnight: the last entry at or before, else the day's last. */
function scheduleAt(schedule, secs) {
  if (!Array.isArray(schedule)) {
    const v = Number(schedule);
    return Number.isFinite(v) ? v : null;
  }
  const entries = schedule
    .map((e) => {
      const [h, m] = String(e.time || '').split(':').map(Number);
      const s = Number.isFinite(h) && Number.isFinite(m) ? h * 3600 + m * 60 : Number(e.timeAsSeconds);
      return { s, v: Number(e.value) };
    })
    .filter((e) => Number.isFinite(e.s) && Number.isFinite(e.v))
    .sort((a, b) => a.s - b.s);
  if (!entries.length) return null;
  let found = entries[entries.length - 1];
  for (const e of entries) if (e.s <= secs) found = e;
  return found.v;
}

/**
 * The scheduled basal from `from` to `to` as steps `{mills, rate}` (each until the next), read
 * every 5 minutes: the profile document in force (the newest started, else the first), its
 * default profile's `basal` in its `timezone`. Profile Switches are not applied here.
 */
export function basalSteps(profiles, from, to) {
  const docs = profiles
    .map((d) => ({ d, start: Number(d.mills) || Date.parse(d.startDate) || 0 }))
    .sort((a, b) => a.start - b.start);
  if (!docs.length) return [];
  const out = [];
  for (let t = Math.floor(from / FIVE_MIN) * FIVE_MIN; t <= to; t += FIVE_MIN) {
    let doc = docs[0];
    for (const x of docs) if (x.start <= t) doc = x;
    const p = profileOf(doc.d);
    const rate = p ? scheduleAt(p.basal, secondsOfDay(t, p.timezone)) : null;
    if (rate == null) continue;
    if (!out.length || out[out.length - 1].rate !== rate) out.push({ mills: Math.max(t, from), rate });
  }
  return out;
}
