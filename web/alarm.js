// Alarms from the server (docs/websocket.md): a banner that screen readers announce, a beep
// made with WebAudio (no sound files to download), and a snooze that acknowledges the alarm
// for everyone, as Nightscout does. Acknowledging needs `notifications:*:ack`
// (docs/security.md); without it the server refuses the ack, so the snooze also holds on this
// page alone: alarms no more severe than the snoozed one stay quiet here until it ends.
// Browsers only let a page make sound after the user touched it, so the audio starts at the
// first tap or key press.

const SNOOZE_MS = 30 * 60000;

export class Alarms {
  constructor({ banner, title, text, ack, sound, send }) {
    this.el = { banner, title, text, ack, sound };
    this.send = send;
    this.audio = null;
    this.current = null;
    this.beeper = null;
    this.snoozed = null;
    const unlock = () => this.unlock();
    window.addEventListener('pointerdown', unlock, { once: false, passive: true });
    window.addEventListener('keydown', unlock, { once: false });
    ack.addEventListener('click', () => this.acknowledge());
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
    this.el.sound.hidden = true;
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

  handle(msg) {
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
    this.el.title.textContent = n.title || (urgent ? 'Urgent alarm' : 'Alarm');
    this.el.text.textContent = n.message || '';
    this.el.ack.textContent = announcement ? 'Dismiss' : 'Snooze 30 min';
    this.el.sound.hidden = announcement || this.audible;
    clearInterval(this.beeper);
    if (!announcement) {
      this.beep(urgent);
      this.beeper = setInterval(() => this.beep(urgent), urgent ? 2000 : 4000);
    }
  }

  acknowledge() {
    const cur = this.current;
    if (cur && !cur.announcement) {
      this.send({ type: 'ack', level: cur.level, group: cur.group, silenceTime: SNOOZE_MS });
      this.snoozed = { level: cur.level, until: Date.now() + SNOOZE_MS };
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
