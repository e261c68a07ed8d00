// The live connection: nightlite's plain WebSocket (docs/websocket.md). Authorizes, receives
// the snapshot and deltas, and reconnects with backoff. A phone that sleeps, changes network or
// loses the server shows "offline" and catches up by itself when the server is back.

import { serverUrl } from './auth.js';

const BACKOFF_S = [1, 2, 4, 8, 15, 30];
/** Browsers hide WebSocket pings from scripts, so the page pings at the protocol level. */
const PING_MS = 30000;
/** No message for this long (pongs included): the connection is dead even if not closed. */
const DEAD_MS = 70000;

export class Live extends EventTarget {
  /** `authorize()` returns the authorize message (credentials and history hours). */
  constructor(authorize) {
    super();
    this.authorize = authorize;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.pinger = null;
    this.lastSeen = 0;
    this.state = 'connecting';
    this.stopped = false;
    window.addEventListener('online', () => this.kick());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.kick();
    });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setState(state, retryIn) {
    this.state = state;
    this.emit('state', { state, retryIn });
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000);
    }
  }

  /** Reconnect now if down, or if the connection went silent while the page slept. */
  kick() {
    if (this.stopped) return;
    const dead = this.ws && Date.now() - this.lastSeen > DEAD_MS;
    if (!this.ws || dead) {
      if (this.ws) this.ws.close();
      this.ws = null;
      clearTimeout(this.timer);
      this.attempt = 0;
      this.connect();
    }
  }

  connect() {
    clearTimeout(this.timer);
    this.setState('connecting');
    const address = serverUrl('ws');
    address.protocol = address.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = address.href;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    this.lastSeen = Date.now();
    ws.onopen = async () => {
      this.lastSeen = Date.now();
      ws.send(JSON.stringify(await this.authorize()));
    };
    ws.onmessage = (ev) => {
      this.lastSeen = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.message(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.pinger);
      if (ev.code === 1008) {
        this.setState('denied');
        this.emit('denied', {});
        return;
      }
      if (this.stopped) return;
      // 4000: fell behind the server; a fresh snapshot fixes it at once.
      if (ev.code === 4000) this.attempt = 0;
      this.retry();
    };
  }

  retry() {
    const base = BACKOFF_S[Math.min(this.attempt, BACKOFF_S.length - 1)];
    this.attempt++;
    // Jitter so that many viewers do not reconnect in the same instant after a restart.
    const delay = Math.round(base * 1000 * (0.8 + Math.random() * 0.4));
    this.setState('offline', delay);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  message(msg) {
    switch (msg.type) {
      case 'auth':
        if (msg.ok) {
          this.attempt = 0;
          this.setState('live');
          clearInterval(this.pinger);
          this.pinger = setInterval(() => {
            if (Date.now() - this.lastSeen > DEAD_MS) this.kick();
            else this.send({ type: 'ping' });
          }, PING_MS);
        }
        this.emit('auth', msg);
        break;
      case 'dataUpdate':
        this.emit('data', msg);
        break;
      case 'alarm':
      case 'urgent_alarm':
      case 'clear_alarm':
      case 'announcement':
        this.emit('alarm', msg);
        break;
      default:
        break;
    }
  }
}
