// What the profile, food and admin pages share: the theme, credentials (a `?token=` in the
// address, or the API secret or token typed into the sign-in form, kept as auth.js keeps them
// for the main page), what the caller may do, a status line and small DOM helpers.

import { api, forget, remember, signedIn, store, takeTokenFromUrl } from './auth.js';

export const $ = (id) => document.getElementById(id);

/** An element with properties (`class`, `text`, `data-*` and attributes too) and children. */
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k in e && !k.includes('-')) e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...children.filter((c) => c != null));
  return e;
}

/** Whether the caller has a permission (the API's own check, so the answer is the server's). */
export async function can(permission) {
  try {
    const r = await api(`/api/v2/authorization/debug/check/${encodeURIComponent(permission)}`);
    return Boolean(r && r.check);
  } catch {
    return false;
  }
}

/** The status line: what happened last, or an error (announced to screen readers). */
export function say(text, error = false) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('form-error', error);
}

/** The server's refusal as a sentence: a missing permission says what to sign in with. */
export function refusal(e, what) {
  if (e && (e.status === 401 || e.status === 403)) return `Not allowed to ${what}: sign in with a secret or token that may.`;
  return `Could not ${what}: ${(e && e.message) || e}`;
}

/**
 * Starts a page: theme, token from the address, then `load()`; a 401 shows the sign-in form,
 * whose credentials are kept for the main page and the clock as well.
 */
export function start(load) {
  const theme = store.get('nl.theme');
  if (theme) document.documentElement.dataset.theme = theme;
  takeTokenFromUrl();
  const form = $('signin-form');
  const section = $('view-signin');
  const main = $('page');
  const run = async () => {
    try {
      await load();
      section.hidden = true;
      main.hidden = false;
    } catch (e) {
      if (e && e.status === 401) {
        section.hidden = false;
        main.hidden = true;
        $('signin-input').focus();
      } else {
        main.hidden = false;
        say(`Could not load: ${(e && e.message) || e}`, true);
      }
    }
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    await remember($('signin-input').value);
    $('signin-input').value = '';
    run();
  });
  const button = $('signout');
  button.textContent = signedIn() ? 'Sign out' : 'Sign in';
  button.addEventListener('click', () => {
    if (!signedIn()) {
      section.hidden = false;
      $('signin-input').focus();
      return;
    }
    forget();
    location.reload();
  });
  run();
}

export { api };
