// Language and formats: LANGUAGE picks the viewer's language (a table loaded once, only that
// language's), the settings dialog switches it, TIME_FORMAT=24 gives 24-hour times in the
// chart's lists and the log, night mode dims the page.

import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { clean, openBrowser, seedDay, shot, startServer, text } from './lib.mjs';

describe('LANGUAGE=de, TIME_FORMAT=24', () => {
  let srv;
  before(async () => {
    srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable', LANGUAGE: 'de', TIME_FORMAT: '24' });
    await seedDay(srv, Date.now());
  });

  test('labels in German, 24-hour times; the switch changes the labels', async () => {
    const b = await openBrowser(srv, { width: 390, height: 844 });
    const { page } = b;
    const tables = [];
    page.on('request', (r) => {
      if (r.url().includes('/i18n/')) tables.push(r.url().replace(/^.*\/i18n\//, ''));
    });
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector('#conn.live');
      await page.waitForFunction(() => document.querySelector('#tab-log').textContent === 'Behandlungen');
      assert.equal(await page.getAttribute('html', 'lang'), 'de');
      assert.equal(await text(page, '#tab-now'), 'Jetzt');
      assert.equal(await text(page, '#day-today'), 'Heute');
      assert.match(await text(page, '#treatments-box summary'), /^Behandlungen im Diagramm \(\d+\)$/);
      assert.equal(await page.getAttribute('#day-prev', 'aria-label'), 'Vorheriger Tag');
      assert.equal(await text(page, '[data-pill="reservoir"] .k'), 'Reservoir');
      assert.match(await text(page, '#bg-ago'), /gerade eben|vor 1 Min\./);
      // Stored event types stay English; the user sees them in German.
      await page.click('#treatments-box summary');
      const rows = await page.locator('#treatments li').allTextContents();
      assert.ok(rows.some((r) => r.includes('Mahlzeiten-Bolus') && r.includes('4.5 IE Insulin')), rows.join('\n'));
      // TIME_FORMAT=24: every time is HH:MM, none with AM/PM.
      const times = await page.locator('#treatments li time').allTextContents();
      assert.ok(times.length >= 4, times.join());
      for (const t of times) assert.match(t, /^\d{2}:\d{2}$/);
      await shot(page, 'i18n-de-390');

      // The settings' language switch: French at once, then back to English.
      await page.click('#btn-menu');
      assert.equal(await text(page, 'label[for="set-lang"]'), 'Sprache');
      await page.selectOption('#set-lang', 'fr');
      await page.waitForFunction(() => document.querySelector('#tab-log').textContent === 'Traitements');
      assert.equal(await text(page, 'label[for="set-lang"]'), 'Langue');
      await page.click('#settings button[type="submit"]');
      assert.equal(await text(page, '#conn'), 'En direct');
      assert.ok((await page.locator('#treatments li').allTextContents()).some((r) => r.includes('Bolus repas')));
      await page.click('#btn-menu');
      await page.selectOption('#set-lang', 'en');
      await page.waitForFunction(() => document.querySelector('#tab-log').textContent === 'Treatments');
      await page.click('#settings button[type="submit"]');
      assert.equal(await text(page, '#tab-now'), 'Now');
      assert.ok((await page.locator('#treatments li').allTextContents()).some((r) => r.includes('Meal Bolus')));
      // The choice is remembered over a reload; only the tables asked for were loaded.
      await page.click('#btn-menu');
      await page.selectOption('#set-lang', 'sv');
      await page.click('#settings button[type="submit"]');
      await page.reload();
      await page.waitForFunction(() => document.querySelector('#tab-log').textContent === 'Behandlingar');
      assert.deepEqual([...new Set(tables)].sort(), ['de.json', 'fr.json', 'sv.json']);

      // Night mode: a theme that dims the page.
      await page.click('#btn-menu');
      await page.selectOption('#set-theme', 'night');
      await page.click('#settings button[type="submit"]');
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(bg, 'rgb(0, 0, 0)');
      await shot(page, 'i18n-night-390');
      clean(b);
    } finally {
      await b.close();
    }
  });
});

describe('the clock page, LANGUAGE=de, TIME_FORMAT=24', () => {
  test('24-hour time and the age in German', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable', LANGUAGE: 'de', TIME_FORMAT: '24' });
    await seedDay(srv, Date.now());
    const b = await openBrowser(srv);
    const { page } = b;
    try {
      await page.goto(`${srv.base}/clock?face=clock`);
      await page.waitForFunction(() => document.querySelector('#c-bg').textContent === '123');
      assert.match(await text(page, '#c-time'), /^\d{2}:\d{2}$/);
      assert.match(await text(page, '#c-ago'), /^(gerade eben|vor 1 Min\.)$/);
      clean(b);
    } finally {
      await b.close();
    }
  });
});

describe('TIME_FORMAT=12 (the default), English', () => {
  test('12-hour times', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable' });
    await seedDay(srv, Date.now());
    const b = await openBrowser(srv);
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector('#conn.live');
      await page.waitForFunction(() => document.querySelectorAll('#treatments li').length >= 4);
      const times = await page.locator('#treatments li time').allTextContents();
      for (const t of times) assert.match(t, /^\d{1,2}:\d{2}\s?[AP]M$/);
      assert.equal(await page.getAttribute('html', 'lang'), 'en');
      clean(b);
    } finally {
      await b.close();
    }
  });
});
