// Glucose values: units, ranges, trend arrows, deltas and times, shared by every view.
// Values travel in mg/dl (as Nightscout stores them) and are converted only for display.

import { locale, t } from './i18n.js';

export const MMOL = 18.01559;
/// Dexcom sends values below this as error codes, not glucose.
export const MIN_VALID = 39;

export const unitLabel = (units) => (units === 'mmol' ? 'mmol/L' : 'mg/dL');

export function toUnits(mgdl, units) {
  return units === 'mmol' ? mgdl / MMOL : mgdl;
}

export function fromUnits(value, units) {
  return units === 'mmol' ? value * MMOL : value;
}

/** A glucose value as shown: whole mg/dl, or mmol/l with one decimal. */
export function fmt(mgdl, units) {
  if (mgdl == null || !Number.isFinite(mgdl)) return '---';
  return units === 'mmol' ? (mgdl / MMOL).toFixed(1) : String(Math.round(mgdl));
}

/** A signed difference in display units. */
export function fmtDelta(mgdl, units) {
  const v = units === 'mmol' ? Math.round((mgdl / MMOL) * 10) / 10 : Math.round(mgdl);
  const text = units === 'mmol' ? Math.abs(v).toFixed(1) : String(Math.abs(v));
  return (v > 0 ? '+' : v < 0 ? '\u2212' : '\u00b1') + text;
}

/** The colour class of a value: urgent beyond BG_LOW/BG_HIGH, warn outside the target. */
export function rangeOf(mgdl, th) {
  if (mgdl < th.bgLow) return 'urgent-low';
  if (mgdl < th.bgTargetBottom) return 'low';
  if (mgdl > th.bgHigh) return 'urgent-high';
  if (mgdl > th.bgTargetTop) return 'high';
  return 'in-range';
}

export const RANGE_WORDS = {
  'urgent-low': 'urgent low',
  low: 'low',
  'in-range': 'in range',
  high: 'high',
  'urgent-high': 'urgent high',
};

const ARROWS = {
  DoubleUp: ['\u21c8', 'rising quickly'],
  SingleUp: ['\u2191', 'rising'],
  FortyFiveUp: ['\u2197', 'rising slowly'],
  Flat: ['\u2192', 'steady'],
  FortyFiveDown: ['\u2198', 'falling slowly'],
  SingleDown: ['\u2193', 'falling'],
  DoubleDown: ['\u21ca', 'falling quickly'],
  'NOT COMPUTABLE': ['\u2013', 'trend not computable'],
  'RATE OUT OF RANGE': ['\u21d5', 'rate out of range'],
};

/** [symbol, words] for a Nightscout direction, or empty strings when unknown. */
export function arrow(direction) {
  return ARROWS[direction] || ['', ''];
}

/**
 * The change over the last 5 minutes: the newest reading against the one nearest to 5 minutes
 * before it (1-minute and 5-minute CGMs alike), scaled to 5 minutes. Only a reading 2.5 to 11
 * minutes older counts: scaling a 1-minute step up to 5 minutes would multiply its noise.
 * `sgvs` oldest first.
 */
export function delta(sgvs) {
  const n = sgvs.length;
  if (n < 2) return null;
  const last = sgvs[n - 1];
  let best = null;
  for (let i = n - 2; i >= 0; i--) {
    const dt = last.mills - sgvs[i].mills;
    if (dt > 11 * 60000) break;
    if (dt < 150000) continue;
    if (!best || Math.abs(dt - 300000) < Math.abs(last.mills - best.mills - 300000)) best = sgvs[i];
  }
  if (!best) return null;
  const dt = last.mills - best.mills;
  return { mgdl: ((last.mgdl - best.mgdl) * 300000) / dt, minutes: dt / 60000 };
}

/** "just now", "3 min ago", "2 h 5 min ago". */
export function ago(mills, now) {
  const mins = Math.floor((now - mills) / 60000);
  if (mins < 1) return t('just now');
  if (mins < 60) return t('{0} min ago', mins);
  const h = Math.floor(mins / 60);
  if (h < 48) return t('{0} h {1} min ago', h, mins % 60);
  return t('{0} days ago', Math.floor(h / 24));
}

/** "2d 5h", "7h", "35m": an age, as the age pills show it. */
export function age(ms) {
  const mins = Math.max(0, Math.floor(ms / 60000));
  if (mins < 60) return `${mins}m`;
  const h = Math.floor(mins / 60);
  if (h < 24) return `${h}h`;
  return `${Math.floor(h / 24)}d${h % 24 ? ` ${h % 24}h` : ''}`;
}

/** A time of day: TIME_FORMAT 24 gives 13:05, 12 gives 1:05 PM, in the page's language. */
export function clock(mills, timeFormat) {
  return new Date(mills).toLocaleTimeString(locale(), {
    hour: timeFormat === 24 ? '2-digit' : 'numeric',
    minute: '2-digit',
    hour12: timeFormat !== 24,
  });
}

/** A treatment's glucose in mg/dl (a BG check is stored in the units it was entered in). */
export function treatmentMgdl(t) {
  const g = Number(t.glucose);
  if (!Number.isFinite(g) || g <= 0) return null;
  const units = String(t.units || '').toLowerCase();
  if (units.startsWith('mmol') || (!units && g < 35)) return g * MMOL;
  return g;
}
