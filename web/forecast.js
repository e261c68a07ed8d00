// What the chart draws ahead of and under the readings: the AR2 forecast's cone of uncertainty
// (Nightscout's lib/plugins/ar2.js forecastCone, as src/plugins/ar2.rs `cone`) around the
// forecast the server computes (/api/v2/properties ar2), and the effective basal over the
// chart's window: the profile documents with their Profile Switches applied.

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

/** ar2.js getConeFactor: AR2_CONE_FACTOR from the status' `extendedSettings.ar2.coneFactor`,
 *  2 when absent, not a number or below 0. */
export function coneFactor(extendedSettings) {
  const v = Number(extendedSettings && extendedSettings.ar2 && extendedSettings.ar2.coneFactor);
  return Number.isNaN(v) || v < 0 ? 2 : v;
}

/** The profile a document holds: `store[defaultProfile]`, or the document itself. */
function profileOf(doc) {
  if (doc.defaultProfile && doc.store) return doc.store[doc.defaultProfile] || null;
  return doc;
}

const formats = new Map();

/** The wall clock in `zone` at `ms` (UTC without a zone or for one the browser does not know). */
function wall(ms, zone) {
  const key = zone || 'UTC';
  let f = formats.get(key);
  if (!f) {
    const opts = { hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' };
    try {
      f = new Intl.DateTimeFormat('en-GB', { ...opts, timeZone: key });
    } catch {
      f = new Intl.DateTimeFormat('en-GB', { ...opts, timeZone: 'UTC' });
    }
    formats.set(key, f);
  }
  const p = Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, Number(x.value)]));
  return { date: Date.UTC(p.year, p.month - 1, p.day), secs: p.hour * 3600 + p.minute * 60 + p.second };
}

/**
 * Seconds elapsed since local midnight at `ms` in `zone`, as the server's plugins count them
 * (Nightscout's moment diff from startOf('day')): on a day the clocks change they differ from
 * the clock time by the hour the clocks moved.
 */
function secondsOfDay(ms, zone) {
  const at = Math.floor(ms / 1000) * 1000;
  const { date, secs } = wall(at, zone);
  // The zone's offset at a moment: its wall clock read as UTC, minus the moment.
  const offset = (t) => {
    const w = wall(t, zone);
    return w.date + w.secs * 1000 - t;
  };
  let midnight = date - offset(at);
  midnight = date - offset(midnight);
  const elapsed = Math.round((at - midnight) / 1000);
  return elapsed >= 0 && elapsed < 90000 ? elapsed : secs;
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

/** A number as the profile rules read one (a number, or numeric text), else null. */
function number(v) {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
}

const text = (v) => (typeof v === 'string' && v !== '' ? v : null);

/**
 * A Profile Switch treatment as src/profiles/switch.rs reads it: start, end (null: until the
 * next switch), percentage (100 unless positive), timeshift in ms (hours up to 24, else ms:
 * AndroidAPS), the profile names and its `profileJson` profile.
 */
export function readSwitch(t) {
  const minutes = number(t.duration);
  const original = number(t.originalDuration);
  const inMs = number(t.durationInMilliseconds);
  let duration = null;
  if (minutes != null && original != null && original > 0 && (minutes === original || inMs === original * 60000)) {
    // AndroidAPS v3 before 2025: `duration` holds the milliseconds.
    duration = Math.round(original);
  } else if (minutes != null) {
    duration = minutes * 60000 >= 1 ? Math.round(minutes * 60000) : null;
  } else if (inMs != null) {
    duration = inMs >= 1 ? Math.round(inMs) : null;
  }
  const shift = number(t.timeshift);
  const pct = number(t.percentage);
  let json = t.profileJson;
  if (typeof json === 'string') {
    try {
      json = JSON.parse(json);
    } catch {
      json = null;
    }
  }
  const mills = Number(t.mills) || Date.parse(t.created_at) || 0;
  return {
    mills,
    end: duration == null ? null : mills + duration,
    percentage: pct > 0 ? pct : 100,
    timeshift: shift == null ? 0 : Math.round(Math.abs(shift) <= 24 ? shift * 3600000 : shift),
    profile: text(t.profile),
    original: text(t.originalProfileName),
    json: json && typeof json === 'object' && !Array.isArray(json) ? json : null,
  };
}

/**
 * The profile in force at `t` by src/profiles/timeline.rs' rules (docs/api-v4.md): the newest
 * document started (else the first); the latest switch started at or after that document and
 * still running (so an ended temporary switch gives way to the one before it); its
 * `profileJson`, else the store's profile of its name or original name, else the default.
 */
function inForce(docs, switches, t) {
  let doc = docs[0];
  for (const x of docs) if (x.start <= t) doc = x;
  let sw = null;
  for (const s of switches) if (s.mills >= doc.start && s.mills <= t && (s.end == null || t < s.end)) sw = s;
  const store = doc.d.store && typeof doc.d.store === 'object' ? doc.d.store : null;
  const named = (n) => (n != null && store && store[n] && typeof store[n] === 'object' ? store[n] : null);
  const fallback = profileOf(doc.d);
  const profile = (sw && (sw.json || named(sw.profile) || named(sw.original))) || fallback;
  return { profile, fallback, percentage: sw ? sw.percentage : 100, timeshift: sw ? sw.timeshift : 0 };
}

/**
 * The effective basal from `from` to `to` as steps `{mills, rate}` (each until the next), read
 * every 5 minutes and at each document start and switch start and end: the profile in force
 * ([`inForce`]), its `basal` in its `timezone` (the default profile's, else UTC),
 * moved by the switch's timeshift and scaled by its percentage, as the server's
 * /api/v4/profile/timeline and the basal property apply them. `switches` are Profile Switch
 * treatments: those that may be in force over the window (an older permanent one included).
 */
export function basalSteps(profiles, switches, from, to) {
  const docs = profiles
    .map((d) => ({ d, start: Number(d.mills) || Date.parse(d.startDate) || 0 }))
    .sort((a, b) => a.start - b.start);
  if (!docs.length) return [];
  const sw = switches.map(readSwitch).sort((a, b) => a.mills - b.mills);
  const times = new Set();
  for (let t = Math.floor(from / FIVE_MIN) * FIVE_MIN; t <= to; t += FIVE_MIN) times.add(Math.max(t, from));
  for (const t of [...docs.map((x) => x.start), ...sw.map((s) => s.mills), ...sw.map((s) => s.end)]) {
    if (t != null && t > from && t <= to) times.add(t);
  }
  const out = [];
  for (const t of [...times].sort((a, b) => a - b)) {
    const f = inForce(docs, sw, t);
    if (!f.profile) continue;
    const zone = f.profile.timezone || (f.fallback && f.fallback.timezone);
    const secs = (((secondsOfDay(t, zone) - Math.round(f.timeshift / 1000)) % 86400) + 86400) % 86400;
    const base = scheduleAt(f.profile.basal, secs);
    if (base == null) continue;
    const rate = (base * f.percentage) / 100;
    if (!out.length || out[out.length - 1].rate !== rate) out.push({ mills: t, rate });
  }
  return out;
}
