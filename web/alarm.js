// Alarms from the server (docs/websocket.md): a banner that screen readers announce, a beep
// made with WebAudio (no sound files to download), and a snooze that acknowledges the alarm
// for everyone, as Nightscout does. Acknowledging needs `notifications:*:ack`
// (docs/security.md); without it the server refuses the ack, so the snooze also holds on this
// page alone: alarms no more severe than the snoozed one stay quiet here until it ends.
// Browsers only let a page make sound after the user touched it, so the audio starts at the
// first tap or key press. The snooze offers Nightscout's durations for the alarm sounding
// (its settings alarmUrgentHighMins, alarmHighMins, alarmLowMins, alarmUrgentLowMins,
// alarmUrgentMins, alarmWarnMins): the main button the first, the others beside it.

import { t } from './i18n.js';

const DEFAULT_MINS = [30, 60, 90, 120];
/** Nightscout's defaults, for a site whose settings do not say (or are not loaded yet). */
const NIGHTSCOUT_MINS = { alarmLowMins: [15, 30, 45, 60], alarmUrgentLowMins: [15, 30, 45] };

/** The snooze minutes Nightscout offers for an alarm (level 2 urgent, eventName high/low). */
export function snoozeMinutes(n, s = {}) {
  const urgent = (n.level ?? 1) >= 2;
  const key = n.eventName === 'high'
    ? (urgent ? 'alarmUrgentHighMins' : 'alarmHighMins')
    : n.eventName === 'low'
      ? (urgent ? 'alarmUrgentLowMins' : 'alarmLowMins')
      : (urgent ? 'alarmUrgentMins' : 'alarmWarnMins');
  const list = Array.isArray(s[key]) ? s[key].map(Number).filter((m) => m > 0) : [];
  return list.length ? list : NIGHTSCOUT_MINS[key] || DEFAULT_MINS;
}

export class Alarms {
  constructor({ banner, title, text, ack, more, sound, send, settings }) {
    this.el = { banner, title, text, ack, more, sound };
    this.send = send;
    this.settings = settings || (() => ({}));
    this.mins = DEFAULT_MINS;
    this.audio = null;
    this.current = null;
    this.beeper = null;
    this.snoozed = null;
    const unlock = () => this.unlock();
    window.addEventListener('pointerdown', unlock, { once: false, passive: true });
    window.addEventListener('keydown', unlock, { once: false });
    // "Allow sound" goes only after the tap's click: hiding it at pointerdown moved the snooze
    // buttons under the finger, and the click landed beside them.
    window.addEventListener('click', () => {
      if (this.audible) this.el.sound.hidden = true;
    });
    ack.addEventListener('click', () => this.acknowledge(this.mins[0]));
    more.addEventListener('click', (e) => {
      const b = e.target.closest('button[data-mins]');
      if (b) this.acknowledge(Number(b.dataset.mins));
    });
    sound.addEventListener('click', () => {
      this.unlock();
      this.beep();
    });
  }

  unlock() {
    if (!this.audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      try {
        this.audio = new Ctx();
      } catch {
        return;
      }
    }
    if (this.audio.state === 'suspended') this.audio.resume();
  }

  get audible() {
    return Boolean(this.audio && this.audio.state === 'running');
  }

  /** Two short tones; urgent alarms higher and more often. */
  beep(urgent = false) {
    if (!this.audible) return;
    const ctx = this.audio;
    const t0 = ctx.currentTime;
    for (const [start, freq] of [[0, urgent ? 1046 : 784], [0.28, urgent ? 1318 : 988]]) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'sine';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t0 + start);
      gain.gain.exponentialRampToValueAtTime(0.4, t0 + start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + start + 0.22);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t0 + start);
      osc.stop(t0 + start + 0.25);
    }
  }

  /** Shows the alarm sounding again (the settings or the language changed). */
  refresh() {
    if (this.last && !this.el.banner.hidden) this.handle(this.last, false);
  }

  handle(msg, sound = true) {
    this.last = msg;
    const n = msg.notify || {};
    if (msg.type === 'clear_alarm') {
      this.clear();
      return;
    }
    const urgent = msg.type === 'urgent_alarm';
    const announcement = msg.type === 'announcement';
    const level = n.level ?? (urgent ? 2 : 1);
    const s = this.snoozed;
    if (!announcement && s && Date.now() < s.until && level <= s.level) return;
    this.current = { level, group: n.group || 'default', announcement };
    const b = this.el.banner;
    b.hidden = false;
    b.className = `alarm ${urgent ? 'urgent' : announcement ? 'info' : 'warn'}`;
    this.el.title.textContent = n.title ? t(n.title) : urgent ? t('Urgent alarm') : t('Alarm');
    // The server's message is Nightscout's ("BG Now: 45 mg/dl"); the units as the page spells them.
    this.el.text.textContent = String(n.message || '')
      .replace(/^BG Now:/, `${t('BG Now')}:`)
      .replace(/ mg\/dl$/, ' mg/dL')
      .replace(/ mmol$/, ' mmol/L');
    this.mins = snoozeMinutes({ ...n, level }, this.settings());
    this.el.ack.textContent = announcement ? t('Dismiss') : t('Snooze {0} min', this.mins[0]);
    this.el.more.replaceChildren(...(announcement ? [] : this.mins.slice(1)).map((m) => {
      const o = document.createElement('button');
      o.type = 'button';
      o.dataset.mins = String(m);
      o.textContent = t('{0} min', m);
      o.setAttribute('aria-label', t('Snooze {0} min', m));
      return o;
    }));
    this.el.sound.hidden = announcement || this.audible;
    if (!sound) return;
    clearInterval(this.beeper);
    if (!announcement) {
      this.beep(urgent);
      this.beeper = setInterval(() => this.beep(urgent), urgent ? 2000 : 4000);
    }
  }

  acknowledge(mins) {
    const cur = this.current;
    if (cur && !cur.announcement) {
      const ms = mins * 60000;
      this.send({ type: 'ack', level: cur.level, group: cur.group, silenceTime: ms });
      this.snoozed = { level: cur.level, until: Date.now() + ms };
    }
    // The server answers with clear_alarm; hide at once so the tap feels answered.
    this.clear();
  }

  clear() {
    this.current = null;
    clearInterval(this.beeper);
    this.beeper = null;
    this.el.banner.hidden = true;
  }
}
