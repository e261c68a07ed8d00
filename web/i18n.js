// The viewer's language: a table of English phrase -> translation, one JSON file per language
// in web/i18n/, loaded once (only the language chosen: LANGUAGE, or the one picked in the
// settings). English needs no table. `t('Snooze {0} min', 15)` fills {0}, {1}... Text in
// index.html is translated where it stands (translatePage), its English kept to switch back.

/** The languages offered, by code, each in its own words. */
export const LANGUAGES = {
  en: 'English',
  de: 'Deutsch',
  fr: 'Français',
  es: 'Español',
  nl: 'Nederlands',
  it: 'Italiano',
  pl: 'Polski',
  cs: 'Čeština',
  sv: 'Svenska',
};

let table = {};
let lang = 'en';

export function t(phrase, ...args) {
  const s = table[phrase] ?? phrase;
  return args.length ? s.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)] ?? '')) : s;
}

export const language = () => lang;

/** The locale for dates and times: the language's, or the browser's own for English (so an
 *  English page in Britain keeps day/month dates). */
export const locale = () => (lang === 'en' ? undefined : lang);

/** Loads `code`'s table (Nightscout's codes, e.g. `de` or `pt_BR`: the part before `_` here). */
export async function setLanguage(code) {
  const c = String(code || 'en').toLowerCase().split(/[_-]/)[0];
  let next = {};
  if (c !== 'en' && LANGUAGES[c]) {
    try {
      const res = await fetch(new URL(`i18n/${c}.json`, import.meta.url));
      if (res.ok) next = await res.json();
    } catch {
      // Offline at start: English until the next load.
    }
  }
  table = next;
  lang = LANGUAGES[c] && (c === 'en' || Object.keys(next).length) ? c : 'en';
  document.documentElement.lang = lang;
  return lang;
}

const original = new WeakMap();
const ATTRS = ['aria-label', 'title', 'placeholder'];

/** Translates the page's own text and labels (English kept, so a switch can go back). */
export function translatePage(root = document.body) {
  const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT | NodeFilter.SHOW_ELEMENT);
  for (let n = walk.currentNode; n; n = walk.nextNode()) {
    if (n.nodeType === Node.TEXT_NODE) {
      if (!original.has(n)) {
        const key = n.nodeValue.trim();
        if (!key || !/[A-Za-z]/.test(key)) continue;
        original.set(n, n.nodeValue);
      }
      const en = original.get(n);
      const key = en.trim();
      n.nodeValue = en.replace(key, t(key));
      continue;
    }
    for (const a of ATTRS) {
      const k = `data-en-${a}`;
      if (!n.hasAttribute(a)) continue;
      if (!n.hasAttribute(k)) n.setAttribute(k, n.getAttribute(a));
      n.setAttribute(a, t(n.getAttribute(k)));
    }
  }
}
