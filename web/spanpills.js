// Pills for the states in force, from the treatments the page already holds: the profile (the
// newest Profile Switch still running, else the profile document's default), the temporary
// target and the override (Loop's Temporary Override; Trio's Exercise override). The server's
// /api/v4/state-spans says the same but takes only a JWT, which a page signed in with the API
// secret or open to readers has not; the rule is the same: the newest start whose duration
// covers now, a target with duration 0 (a cancel) ending the one before it.
//
// Also makes every pill tappable: a tap shows its detail under the pills (a phone has no
// hover), a second tap or a tap elsewhere hides it.

import { clock, fmt, unitLabel } from './glucose.js';
import { t } from './i18n.js';

const MIN = 60000;

/** The newest treatment of `types` started by `now` and still running (0 duration: open). */
function inForce(treatments, types, now, openEnded) {
  let newest = null;
  for (const x of treatments) {
    if (!types.includes(x.eventType) || !(x.mills <= now)) continue;
    if (!newest || x.mills >= newest.mills) newest = x;
  }
  if (!newest) return null;
  const d = Number(newest.duration);
  if (d > 0) return newest.mills + d * MIN > now ? newest : null;
  return openEnded ? newest : null;
}

const until = (x, tf) => (Number(x.duration) > 0 ? `, ${t('until')} ${clock(x.mills + Number(x.duration) * MIN, tf)}` : '');

/** {key, label (English: the list translates it), value, detail, level} for the profile, temp target and override in force. */
export function spanPills({ treatments, profiles, lastSwitch, now, units, timeFormat }) {
  const out = [];
  const list = lastSwitch ? [lastSwitch, ...treatments] : treatments;
  const sw = inForce(list, ['Profile Switch'], now, true);
  let newestDoc = null;
  for (const p of profiles) {
    if (!newestDoc || String(p.startDate || p.created_at) > String(newestDoc.startDate || newestDoc.created_at)) newestDoc = p;
  }
  const name = sw ? sw.profile || sw.profileJson?.name : newestDoc && newestDoc.defaultProfile;
  if (name) {
    const pct = sw && Number(sw.percentage) > 0 && Number(sw.percentage) !== 100 ? ` ${Number(sw.percentage)}%` : '';
    out.push({
      key: 'profile',
      label: 'Profile',
      value: `${name}${pct}`,
      detail: sw ? `${t('Profile Switch')} ${clock(sw.mills, timeFormat)}${until(sw, timeFormat)}` : t('Profile'),
      level: '',
    });
  }
  const tt = inForce(treatments, ['Temporary Target', 'Temporary Target Cancel'], now, false);
  if (tt && tt.eventType === 'Temporary Target' && Number(tt.targetTop) > 0) {
    const mmol = String(tt.units || '').startsWith('mmol');
    const mg = (v) => Number(v) * (mmol ? 18.01559 : 1);
    const range = Number(tt.targetTop) === Number(tt.targetBottom)
      ? fmt(mg(tt.targetTop), units)
      : `${fmt(mg(tt.targetBottom), units)}\u2013${fmt(mg(tt.targetTop), units)}`;
    out.push({
      key: 'temptarget',
      label: 'Temp target',
      value: range,
      detail: `${range} ${unitLabel(units)}${tt.reason ? `, ${tt.reason}` : ''}${until(tt, timeFormat)}`,
      level: '',
    });
  }
  const trioExercise = treatments.filter((x) => x.eventType === 'Exercise' && /trio/i.test(String(x.enteredBy || '')));
  const ov = inForce([...treatments.filter((x) => x.eventType === 'Temporary Override'), ...trioExercise], ['Temporary Override', 'Exercise'], now, true);
  if (ov) {
    const scale = Number(ov.insulinNeedsScaleFactor);
    const pct = scale > 0 && scale !== 1 ? ` ${Math.round(scale * 100)}%` : '';
    const label = ov.reasonDisplay || ov.reason || ov.notes || t('Override');
    out.push({
      key: 'override',
      label: 'Override',
      value: `${label}${pct}`,
      detail: `${label}${pct}${until(ov, timeFormat)}`,
      level: '',
    });
  }
  return out;
}

/** The newest Profile Switch, however old (the live window holds only a day). */
export async function newestSwitch(api) {
  try {
    const list = await api(`/api/v1/treatments.json?find[eventType]=${encodeURIComponent('Profile Switch')}&count=1`);
    const x = Array.isArray(list) && list[0];
    const mills = x && Date.parse(x.created_at);
    return Number.isFinite(mills) ? { ...x, mills } : null;
  } catch {
    return null;
  }
}

/**
 * A tap on a pill (these, pills.js' and the bridges' lists: every `.pills li`) shows its detail
 * (the pill's title) under the status pills; the same pill again, or a tap elsewhere, hides it.
 * Returns what to call after the pills are drawn again, to keep the open detail current.
 */
export function tapDetails(ul) {
  const box = document.createElement('p');
  box.className = 'pill-detail';
  box.id = 'pill-detail';
  box.setAttribute('role', 'status');
  box.hidden = true;
  ul.after(box);
  let open = null;
  const show = (li) => {
    open = li;
    li.setAttribute('aria-expanded', 'true');
    box.textContent = `${li.querySelector('.k')?.textContent || ''}: ${li.title}`;
    box.hidden = false;
  };
  const hide = () => {
    box.hidden = true;
    if (open) open.removeAttribute('aria-expanded');
    open = null;
  };
  document.addEventListener('click', (e) => {
    const li = e.target.closest('.pills li');
    const same = li && open && open.dataset.pill === li.dataset.pill;
    hide();
    if (li && !same) show(li);
  });
  return () => {
    if (!open) return;
    const li = document.querySelector(`.pills li[data-pill="${CSS.escape(open.dataset.pill)}"]`);
    if (li) show(li);
    else hide();
  };
}
