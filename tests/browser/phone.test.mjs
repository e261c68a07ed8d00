// The viewer on a phone (390×844) and a laptop (1366×800): pills for the profile, temporary
// target and override in force; pills tappable (a tap shows the detail, a tap elsewhere hides
// it); the header fits when offline, in a language with long words; chart time labels apart.
// Screenshots: phone-390.png, phone-offline-390.png, laptop-1366.png in target/browser/.

import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MIN, clean, iso, openBrowser, seedDay, shot, startServer, text } from './lib.mjs';

describe('phone and laptop', () => {
  let srv;
  before(async () => {
    srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable', LANGUAGE: 'fr', TIME_FORMAT: '24' });
    const now = Date.now();
    await seedDay(srv, now);
    await srv.post('/api/v1/treatments', [
      { eventType: 'Temporary Override', reason: 'Running', insulinNeedsScaleFactor: 0.8, duration: 60, created_at: iso(now - 10 * MIN), enteredBy: 'Loop' },
      // A switch two days ago, older than the live window, still in force (no duration).
      { eventType: 'Profile Switch', profile: 'Weekend', duration: 0, created_at: iso(now - 48 * 60 * MIN) },
    ]);
  });

  test('390×844: span pills, tappable details, chart labels apart, the header offline', async () => {
    const b = await openBrowser(srv, { width: 390, height: 844, touch: true });
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector('#conn.live');
      await page.waitForSelector('[data-pill="profile"]');
      const pill = (k) => text(page, `[data-pill="${k}"] .v`);
      await page.waitForFunction(() => document.querySelector('[data-pill="profile"] .v').textContent === 'Weekend');
      assert.equal(await text(page, '[data-pill="profile"] .k'), 'Profil');
      assert.equal(await pill('temptarget'), '120\u2013140');
      assert.equal(await text(page, '[data-pill="temptarget"] .k'), 'Cible temporaire');
      assert.equal(await pill('override'), 'Running 80%');

      // Tap: the detail shows; the same pill again hides it; another pill, then elsewhere.
      assert.ok(await page.locator('#pill-detail').isHidden());
      await page.tap('[data-pill="temptarget"]');
      await page.waitForSelector('#pill-detail:not([hidden])');
      assert.match(await text(page, '#pill-detail'), /^Cible temporaire: 120\u2013140 mg\/dL, jusqu'à \d{2}:\d{2}$/);
      await page.tap('[data-pill="reservoir"]');
      assert.match(await text(page, '#pill-detail'), /^Réservoir: .*reservoir/);
      await page.tap('#bg-value');
      assert.ok(await page.locator('#pill-detail').isHidden());
      await page.tap('[data-pill="override"]');
      await page.tap('[data-pill="override"]');
      assert.ok(await page.locator('#pill-detail').isHidden());

      // Chart time labels (24-hour) at least 44 px apart on every range.
      for (const h of [2, 3, 4, 6, 12, 24]) {
        await page.tap(`[data-hours="${h}"]`);
        const gap = Number(await page.getAttribute('#chart', 'data-tick-gap'));
        assert.ok(gap >= 44, `${h} h: labels ${gap} px apart`);
      }
      await page.tap('[data-hours="3"]');
      // A marker's detail by tap too.
      await page.tap('#treatments-box summary');
      await shot(page, 'phone-390');

      // Offline: "Hors ligne – nouvel essai dans N s" on one line inside 390 px, no sideways scroll.
      await srv.stop();
      await page.waitForSelector('#conn.offline', { timeout: 5000 });
      await page.waitForFunction(() => /\d+ s$/.test(document.querySelector('#conn').textContent), null, { timeout: 10000 });
      assert.match(await text(page, '#conn'), /^Hors ligne – nouvel essai dans \d+ s$/);
      await page.evaluate(() => window.scrollTo(0, 0));
      const box = await page.locator('#conn').boundingBox();
      const menu = await page.locator('#btn-menu').boundingBox();
      const title = await page.locator('#title').boundingBox();
      assert.ok(box.x + box.width <= menu.x, `the state runs into the menu: ${JSON.stringify({ box, menu })}`);
      assert.ok(title.x + title.width <= box.x, `the title runs into the state: ${JSON.stringify({ title, box })}`);
      // One row: title, state and menu side by side (the state may take two lines in its pill).
      assert.ok(menu.y < box.y + box.height && box.y < menu.y + menu.height, JSON.stringify({ box, menu }));
      assert.ok(box.height < 40, `the state takes ${box.height} px`);
      assert.ok(menu.x + menu.width <= 390, JSON.stringify(menu));
      assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 390);
      await shot(page, 'phone-offline-390');
      clean(b, ['ERR_CONNECTION_REFUSED', 'WebSocket']);
    } finally {
      await b.close();
    }
  });
});

describe('laptop', () => {
  test('1366×800 screenshot with every pill', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable' });
    const now = Date.now();
    await seedDay(srv, now);
    const b = await openBrowser(srv, { width: 1366, height: 800 });
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector('[data-pill="temptarget"]');
      assert.equal(await text(page, '[data-pill="profile"] .v'), 'Default');
      // Hover still shows the detail as a title.
      assert.match(await page.getAttribute('[data-pill="temptarget"]', 'title'), /120\u2013140 mg\/dL/);
      await shot(page, 'laptop-1366');
      clean(b);
    } finally {
      await b.close();
    }
  });
});
