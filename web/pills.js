// The status pills under the current value. IOB, COB, BWP and basal come from the server's
// /api/v2/properties (Nightscout's iob, cob, boluswizardpreview and basalprofile plugins, device
// statuses and Care Portal treatments combined there), written as those plugins' pills write
// them; without the properties IOB and COB fall back to the newest device status. The others
// (pump, upbat, loop/openaps, cage/sage/iage/bage) are computed here from the live data in their
// simplest form. Each pill: {key, label, value, detail, level}, level being '', 'warn' or
// 'urgent'.

import { age, fmt } from './glucose.js';

const H = 3600000;
const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && v.trim() !== '' && Number.isFinite(+v) ? +v : null);
const time = (v) => {
  const t = typeof v === 'number' ? v : Date.parse(v);
  return Number.isFinite(t) ? t : null;
};
const round = (v, d) => Math.round(v * 10 ** d) / 10 ** d;

/** The newest device status (they arrive oldest first) for which `pick` finds something. */
function newest(list, pick) {
  for (let i = list.length - 1; i >= 0; i--) {
    const v = pick(list[i]);
    if (v != null) return { ds: list[i], v };
  }
  return null;
}

function level(value, warn, urgent, below = true) {
  if (value == null) return '';
  if (below ? value <= urgent : value >= urgent) return 'urgent';
  if (below ? value <= warn : value >= warn) return 'warn';
  return '';
}

function openapsIob(o) {
  const iob = Array.isArray(o.iob) ? o.iob[0] : o.iob;
  return num(iob && iob.iob) ?? num(o.suggested && o.suggested.IOB) ?? num(o.enacted && o.enacted.IOB);
}

/** IOB and COB from the newest device status that has them, when the properties are missing. */
function deviceIobCob(out, devicestatus, since) {
  const iob = newest(devicestatus, (d) =>
    (d.loop && num(d.loop.iob && d.loop.iob.iob)) ??
    (d.openaps && openapsIob(d.openaps)) ??
    (d.pump && d.pump.iob && (num(d.pump.iob.iob) ?? num(d.pump.iob.bolusiob))));
  if (iob) out.push({ key: 'iob', label: 'IOB', value: `${round(iob.v, 2)}U`, detail: `insulin on board, ${since(iob.ds)}`, level: '' });

  const cob = newest(devicestatus, (d) =>
    (d.loop && num(d.loop.cob && d.loop.cob.cob)) ??
    (d.openaps && (num(d.openaps.suggested && d.openaps.suggested.COB) ?? num(d.openaps.enacted && d.openaps.enacted.COB))));
  if (cob) out.push({ key: 'cob', label: 'COB', value: `${round(cob.v, 0)}g`, detail: `carbs on board, ${since(cob.ds)}`, level: '' });
}

/** sandbox.roundInsulinForDisplayFormat (the default style): floored to hundredths. */
function roundInsulin(insulin) {
  if (insulin === 0) return '0';
  return (Math.floor(insulin * 100) / 100).toFixed(2);
}

const info = (pairs) => pairs.filter(([, v]) => v != null && v !== '').map(([k, v]) => `${k}: ${v}`).join('; ');
const clockOf = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

/**
 * The IOB, COB, BWP and basal pills from the server's properties, with the values and texts of
 * Nightscout's updateVisualisation in iob.js, cob.js, boluswizardpreview.js and
 * basalprofile.js; a pill whose property is absent (no data, no profile, DISABLE) is left out,
 * and so is BWP when it has no estimate (its `errors`: no profile, no current reading).
 */
export function therapyPills(props) {
  const out = [];
  const pill = (key, label, value, pairs, otherwise = '') => out.push({ key, label, value, detail: info(pairs) || otherwise, level: '' });
  const { iob, cob, bwp, basal } = props;
  if (iob && iob.display !== undefined) {
    const last = iob.lastBolus;
    pill('iob', 'IOB', `${roundInsulin(iob.display)}U`, [
      ['Last Bolus', last && `${roundInsulin(Number(last.insulin))}U @ ${clockOf(last.mills)}`],
      ['Basal IOB', typeof iob.basaliob === 'number' ? iob.basaliob.toFixed(2) : null],
      ['Source', iob.source],
      ['Device', iob.device],
      ['Careportal IOB', typeof iob.treatmentIob === 'number' ? iob.treatmentIob.toFixed(2) : null],
    ], 'insulin on board');
  }
  if (cob && cob.cob !== undefined) {
    const tc = cob.treatmentCOB;
    const last = cob.lastCarbs || (tc && tc.lastCarbs);
    pill('cob', 'COB', `${Math.round(cob.cob * 10) / 10}g`, [
      ['Source', cob.source],
      ['Careportal COB', tc && tc.cob ? Math.round(tc.cob * 10) / 10 : null],
      ['Last Carbs', last && `${last.carbs}g @ ${new Date(last.mills).toLocaleString()}`],
    ], 'carbs on board');
  }
  if (bwp && bwp.bolusEstimateDisplay !== undefined) {
    const e = bwp.bolusEstimateDisplay;
    pill('bwp', 'BWP', e >= 0 ? `${e}U` : e < 0 ? '< 0U' : '', [
      ['Insulin on Board', `${bwp.displayIOB}U`],
      ['Expected effect', `-${bwp.effectDisplay}`],
      ['Expected outcome', bwp.outcomeDisplay],
    ]);
  }
  if (basal && basal.display !== undefined) {
    const cur = basal.current || {};
    const t = cur.treatment;
    const temp = t && (t.percent ? `${t.percent > 0 ? '+' : ''}${t.percent}%` : !Number.isNaN(Number(t.absolute)) ? `${t.absolute}U/h` : '');
    const combo = cur.combobolustreatment;
    pill('basal', 'BASAL', String(basal.display), [
      ['Current basal', basal.display],
      ['Active temp basal', temp],
      ['Basal profile value', t && typeof cur.basal === 'number' ? `${cur.basal.toFixed(3)} U` : null],
      ['Active combo bolus', combo && combo.relative ? `+${combo.relative}U/h` : null],
    ]);
  }
  return out;
}

/**
 * The pills for the current state; `ages` maps an age key to the newest such treatment time;
 * `props` are the server's properties (null when not fetched).
 */
export function pills({ devicestatus, now, units, ages, props = null }) {
  const out = [];
  const since = (ds) => `${age(now - ds.mills)} ago`;

  if (props) out.push(...therapyPills(props));
  else deviceIobCob(out, devicestatus, since);

  const reservoir = newest(devicestatus, (d) => d.pump && num(d.pump.reservoir));
  if (reservoir) {
    const v = reservoir.v;
    out.push({ key: 'reservoir', label: 'Reservoir', value: `${round(v, 1)}U`, detail: `pump reservoir, ${since(reservoir.ds)}`, level: level(v, 20, 10) });
  }

  const pumpBat = newest(devicestatus, (d) => d.pump && d.pump.battery && (num(d.pump.battery.percent) != null ? { p: num(d.pump.battery.percent) } : num(d.pump.battery.voltage) != null ? { volt: num(d.pump.battery.voltage) } : null));
  if (pumpBat) {
    const { p, volt } = pumpBat.v;
    out.push(p != null
      ? { key: 'pumpbattery', label: 'Pump battery', value: `${round(p, 0)}%`, detail: `pump battery, ${since(pumpBat.ds)}`, level: level(p, 30, 20) }
      : { key: 'pumpbattery', label: 'Pump battery', value: `${round(volt, 2)}V`, detail: `pump battery, ${since(pumpBat.ds)}`, level: level(volt, 1.35, 1.3) });
  }

  const upbat = newest(devicestatus, (d) => {
    const u = d.uploader;
    return num(u && typeof u === 'object' ? u.battery : null) ?? num(d.uploaderBattery);
  });
  if (upbat) out.push({ key: 'uploader', label: 'Uploader', value: `${round(upbat.v, 0)}%`, detail: `uploader battery (${upbat.ds.device || 'phone'}), ${since(upbat.ds)}`, level: level(upbat.v, 30, 20) });

  const loop = newest(devicestatus, (d) => (d.loop ? { kind: 'Loop', at: time(d.loop.timestamp) ?? d.mills, failed: d.loop.failureReason, enacted: d.loop.enacted } : d.openaps && (d.openaps.suggested || d.openaps.enacted) ? { kind: 'OpenAPS', at: Math.max(time(d.openaps.enacted && d.openaps.enacted.timestamp) ?? 0, time(d.openaps.suggested && d.openaps.suggested.timestamp) ?? 0) || d.mills, failed: null, enacted: d.openaps.enacted } : null));
  if (loop) {
    const l = loop.v;
    const mins = (now - l.at) / 60000;
    const lvl = l.failed ? 'urgent' : mins > 15 ? (mins > 30 ? 'urgent' : 'warn') : '';
    const sym = l.failed ? '\u2715' : mins > 15 ? '\u26a0' : '\u2713';
    let detail = `${l.kind} ${l.failed ? `failed: ${l.failed}` : 'ran'} ${age(now - l.at)} ago`;
    const e = l.enacted;
    if (e && num(e.rate) != null) detail += `; temp basal ${round(num(e.rate), 2)}U/h`;
    if (e && num(e.bg) != null) detail += `; BG ${fmt(num(e.bg), units)}`;
    out.push({ key: 'loop', label: l.kind, value: `${sym} ${age(now - l.at)}`, detail, level: lvl });
  }

  // Ages: (key, label, treatment kind, warn hours, urgent hours), Nightscout's defaults.
  const AGES = [
    ['cage', 'CAGE', 'cannula', 48, 72],
    ['sage', 'SAGE', 'sensor', 164, 166],
    ['iage', 'IAGE', 'insulin', 48, 72],
    ['bage', 'BAGE', 'pump battery', 336, 360],
  ];
  for (const [key, label, what, warn, urgent] of AGES) {
    const at = ages[key];
    if (at == null) continue;
    const hours = (now - at) / H;
    out.push({ key, label, value: age(now - at), detail: `${what} age, changed ${new Date(at).toLocaleString()}`, level: level(hours, warn, urgent, false) });
  }
  return out;
}

/** Which age a treatment resets, by its eventType. */
export function ageKey(eventType) {
  switch (eventType) {
    case 'Site Change': return 'cage';
    case 'Sensor Start':
    case 'Sensor Change': return 'sage';
    case 'Insulin Change': return 'iage';
    case 'Pump Battery Change': return 'bage';
    default: return null;
  }
}

/** eventTypes per age key, for fetching the newest one of each over REST. */
export const AGE_EVENTS = {
  cage: ['Site Change'],
  sage: ['Sensor Start', 'Sensor Change'],
  iage: ['Insulin Change'],
  bage: ['Pump Battery Change'],
};

/**
 * Predicted values from the newest device status, as series of {mills, mgdl} with a name:
 * Loop's `loop.predicted` or OpenAPS' `predBGs` (IOB, ZT, COB, UAM), 5 minutes apart.
 */
export function predictions(devicestatus, now) {
  for (let i = devicestatus.length - 1; i >= 0; i--) {
    const d = devicestatus[i];
    if (now - d.mills > 30 * 60000) return [];
    if (d.loop && d.loop.predicted && Array.isArray(d.loop.predicted.values)) {
      const start = time(d.loop.predicted.startDate) ?? d.mills;
      return [{ name: 'Loop', values: series(d.loop.predicted.values, start) }];
    }
    const o = d.openaps;
    if (o) {
      const s = [o.enacted, o.suggested]
        .filter((x) => x && x.predBGs)
        .sort((a, b) => (time(b.timestamp) ?? 0) - (time(a.timestamp) ?? 0))[0];
      if (s) {
        const start = time(s.deliverAt) ?? time(s.timestamp) ?? d.mills;
        return ['IOB', 'ZT', 'COB', 'UAM']
          .filter((k) => Array.isArray(s.predBGs[k]))
          .map((k) => ({ name: k, values: series(s.predBGs[k], start) }));
      }
    }
  }
  return [];
}

function series(values, start) {
  const out = [];
  values.forEach((v, k) => {
    const mgdl = num(v);
    if (mgdl != null && mgdl >= 39) out.push({ mills: start + k * 300000, mgdl });
  });
  return out;
}

/**
 * A pill's list item: label, value and, for screen readers, the detail and level (the status
 * pills app.js draws and the bridges' pills).
 */
export function pillItem(p) {
  const li = document.createElement('li');
  li.className = p.level;
  li.dataset.pill = p.key;
  li.title = p.detail;
  const k = document.createElement('span');
  k.className = 'k';
  k.textContent = p.label;
  const v = document.createElement('span');
  v.className = 'v';
  v.textContent = p.value;
  const sr = document.createElement('span');
  sr.className = 'sr-only';
  sr.textContent = ` (${p.detail}${p.level ? `, ${p.level}` : ''})`;
  li.append(k, v, sr);
  return li;
}
