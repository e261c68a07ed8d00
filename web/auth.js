// Credentials as Nightscout's own page keeps them: an access token from `?token=` or the API
// secret typed once, kept in localStorage as its SHA-1 (never the secret itself).

import { sha1hex } from './sha1.js';

const K_SECRET = 'nl.secretHash';
const K_TOKEN = 'nl.token';
/** Nightscout's access token shape: name (letters, digits; at most 10) - 16 hex. */
const TOKEN_RE = /^[a-z0-9]{1,10}-[0-9a-f]{16}$/;

export const store = {
  get(k) {
    try {
      return localStorage.getItem(k);
    } catch {
      return null;
    }
  },
  set(k, v) {
    try {
      if (v == null) localStorage.removeItem(k);
      else localStorage.setItem(k, v);
    } catch {
      // Private browsing without storage: the session still works until reload.
    }
  },
};

export function credentials() {
  return { secret: store.get(K_SECRET), token: store.get(K_TOKEN) };
}

export function signedIn() {
  const c = credentials();
  return Boolean(c.secret || c.token);
}

/** Takes `?token=` out of the address into storage, so it is not shared with a screenshot. */
export function takeTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get('token');
  if (!token) return;
  store.set(K_TOKEN, token.trim());
  url.searchParams.delete('token');
  history.replaceState(null, '', url.pathname + url.search + url.hash);
}

/** Stores what the user typed: an access token as is, anything else as an API secret. */
export async function remember(input) {
  const v = input.trim();
  if (TOKEN_RE.test(v)) {
    store.set(K_TOKEN, v);
    store.set(K_SECRET, null);
  } else {
    store.set(K_SECRET, await sha1hex(v));
    store.set(K_TOKEN, null);
  }
}

export function forget() {
  store.set(K_SECRET, null);
  store.set(K_TOKEN, null);
}

/** The WebSocket authorize message. */
export function authorizeMessage(history) {
  const c = credentials();
  const msg = { type: 'authorize', history };
  if (c.secret) msg.secret = c.secret;
  else if (c.token) msg.token = c.token;
  return msg;
}

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * An address on this server, relative to the page: the page is served at the server's base
 * path (BASE_PATH, or `/`), so `/api/...` must not resolve to the host's root.
 */
export function serverUrl(path) {
  return new URL(path.replace(/^\//, ''), document.baseURI);
}

/** fetch against the API with the stored credentials; JSON in and out. */
export async function api(path, { method = 'GET', body } = {}) {
  const c = credentials();
  const headers = { Accept: 'application/json' };
  let url = serverUrl(path).href;
  if (c.secret) headers['api-secret'] = c.secret;
  else if (c.token) url += `${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(c.token)}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) {
    const message = (data && data.message) || `${res.status} ${res.statusText}`;
    throw new HttpError(res.status, message);
  }
  return data;
}
