// Browser tests of the viewer: the real nightlite binary with fixture data, Debian's chromium
// driven by playwright-core. Run through run.sh, which installs both and builds the binary.
// Each test leaves a screenshot in $NIGHTLITE_ARTIFACTS (target/browser/).

import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIN, MMOL, OUT, SECRET, SECRET_SHA1, clean, freePort, iso, openBrowser, seedDay, sgv, shot, startServer, text, timings } from './lib.mjs';

// ---------------------------------------------------------------------------------------------
// Tests

describe('a day of 1-minute data (AUTH_DEFAULT_ROLES=readable, mg/dl)', () => {
  let srv;
  let now;
  let readings;
  before(async () => {
    srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable', CUSTOM_TITLE: 'Browser Test Site' });
    now = Date.now();
    readings = await seedDay(srv, now);
  });

  /**
   * Waits until the chart has drawn every fixture reading inside its window. The window slides:
   * the fixture's 1,440 readings span 1,439.5 minutes, so the oldest leaves a 24-hour chart 30 s
   * after seeding; the count is checked against the window the chart reports.
   */
  async function wholeDay(page) {
    await page.waitForFunction(() => Number(document.querySelector('#chart').dataset.points) >= 1400, null, { timeout: 10000 });
    const { from, points } = await page.evaluate(() => ({ ...document.querySelector('#chart').dataset }));
    const expected = readings.filter((r) => r.date >= Number(from)).length;
    assert.equal(Number(points), expected);
    assert.ok(expected >= 1438, `only ${expected} readings in the window`);
    return Number(points);
  }

  test('shows the value, trend, delta, pills and every point; measures the first render', async () => {
    const b = await openBrowser(srv);
    const { page } = b;
    try {
      // The 24-hour chart from the first load on, as for a user who chose it before.
      await b.context.addInitScript(() => {
        if (!localStorage.getItem('nl.hours')) localStorage.setItem('nl.hours', '24');
      });
      await page.goto(`${srv.base}/`);
      await wholeDay(page);
      const perf = { cold: await timings(page) };
      assert.equal(await text(page, '#bg-value'), '123');
      assert.equal(await text(page, '#bg-arrow'), '\u2192');
      assert.equal(await page.getAttribute('#bg-arrow', 'aria-label'), 'steady');
      assert.equal(await text(page, '#bg-delta'), '+5');
      assert.equal(await text(page, '#bg-units'), 'mg/dL');
      assert.match(await text(page, '#bg-ago'), /just now|1 min ago/);
      assert.equal(await text(page, '#title'), 'Browser Test Site');
      assert.match(await page.title(), /^123 \u2192 \+5 \u2013 Browser Test Site$/);
      assert.ok((await page.getAttribute('.now', 'class')).includes('in-range'));
      const pill = (k) => text(page, `[data-pill="${k}"] .v`);
      // IOB and COB from the server's properties (the Loop's, which take precedence over the
      // meal bolus), written as Nightscout's pills write them.
      await page.waitForFunction(() => document.querySelector('[data-pill="cob"] .v')?.textContent === '20.4g', null, { timeout: 5000 });
      assert.equal(await pill('iob'), '1.25U');
      assert.equal(await pill('reservoir'), '85.5U');
      assert.equal(await pill('pumpbattery'), '60%');
      assert.equal(await pill('uploader'), '15%');
      assert.equal(await page.getAttribute('[data-pill="uploader"]', 'class'), 'urgent');
      assert.match(await pill('loop'), /^\u2713 [23]m$/);
      assert.equal(await pill('cage'), '2d 2h');
      // Four treatments in the day (the site change is older), each a marker; the list names
      // them for screen readers.
      assert.equal(await text(page, '#treatments-count'), '4');
      assert.equal(await page.getAttribute('#chart', 'data-markers'), '4');
      // AR2 from 118 → 123: six forecast points and the 13-step cone (those inside the chart's
      // window), from /api/v2/properties; the profile's basal as a step line (0.8 and 1.1 U/h
      // in UTC: two or three steps over 24 hours).
      await page.waitForFunction(() => Number(document.querySelector('#chart').dataset.forecast) === 6, null, { timeout: 5000 });
      assert.ok(Number(await page.getAttribute('#chart', 'data-cone')) >= 6, 'the cone is drawn');
      const steps = Number(await page.getAttribute('#chart', 'data-basal'));
      assert.ok(steps >= 2 && steps <= 3, `${steps} basal steps`);
      const cone = await page.evaluate(async () => {
        const { ar2Cone } = await import(document.querySelector('script[type=module]').src.replace(/app\.js$/, 'forecast.js'));
        return ar2Cone({ mean: 120, mills: 1000 }, { mean5MinsAgo: 120 });
      });
      // Steady 120: the numbers src/plugins/ar2.rs cone_pairs_widen pins.
      assert.deepEqual(cone[0], { mills: 301000, low: 115, high: 125 });
      assert.deepEqual([cone[12].low, cone[12].high], [83, 186]);
      await shot(page, 'now-24h');

      // Again with the immutable files from the browser's cache.
      await page.reload();
      await wholeDay(page);
      assert.equal(await page.getAttribute('[data-hours="24"]', 'aria-pressed'), 'true');
      perf.warm = await timings(page);
      // One full redraw of the 1,440-point chart, as each new reading causes.
      perf.drawMs = await page.evaluate(() => {
        const chart = document.querySelector('#chart').glucoseChart;
        const t0 = performance.now();
        for (let i = 0; i < 50; i++) chart.draw();
        return Math.round(((performance.now() - t0) / 50) * 100) / 100;
      });
      perf.points = Number(await page.getAttribute('#chart', 'data-points'));
      perf.viewport = '412x915 CSS px at 2x';
      // A phone-class CPU: a fresh page (cold cache) with chromium's CPU slowed 4x, as
      // Lighthouse's mobile profile does.
      const phone = await openBrowser(srv);
      try {
        await phone.context.addInitScript(() => localStorage.setItem('nl.hours', '24'));
        const cdp = await phone.context.newCDPSession(phone.page);
        await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
        await phone.page.goto(`${srv.base}/`);
        await wholeDay(phone.page);
        perf.phoneCpu4x = await timings(phone.page);
      } finally {
        await phone.close();
      }
      writeFileSync(join(OUT, 'perf.json'), `${JSON.stringify(perf, null, 2)}\n`);
      console.log(`# viewer with 24 h of 1-minute data: ${JSON.stringify(perf)}`);
      assert.ok(perf.cold.firstRenderMs < 5000, `first render took ${perf.cold.firstRenderMs} ms`);
      assert.ok(perf.phoneCpu4x.firstRenderMs > 0, 'the phone-class first render was measured');

      await page.click('[data-hours="3"]');
      const points3h = Number(await page.getAttribute('#chart', 'data-points'));
      assert.ok(points3h >= 179 && points3h <= 181, `3 h shows ${points3h} points`);
      await shot(page, 'now-3h');
      // The dark theme, as a phone set to dark mode gets it.
      await page.emulateMedia({ colorScheme: 'dark' });
      assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(16, 19, 23)');
      await shot(page, 'now-dark');
      clean(b);
    } finally {
      await b.close();
    }
  });

  test('a v1 POST appears within 2 s without reload', async () => {
    const b = await openBrowser(srv);
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector('#conn.live');
      await page.waitForFunction(() => document.querySelector('#bg-value').textContent === '123');
      const before = Number(await page.getAttribute('#chart', 'data-points'));
      const t0 = Date.now();
      await srv.post('/api/v1/entries', [sgv(Date.now(), 141, 'FortyFiveUp')]);
      await page.waitForFunction(() => document.querySelector('#bg-value').textContent === '141', null, { timeout: 2000 });
      const took = Date.now() - t0;
      console.log(`# new reading shown ${took} ms after the POST`);
      assert.equal(await text(page, '#bg-arrow'), '\u2197');
      // One more dot (give or take one that slid out of the 3-hour window meanwhile), once the
      // chart has drawn the frame after the update.
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      const after = Number(await page.getAttribute('#chart', 'data-points'));
      assert.ok(after === before + 1 || after === before, `${before} points, then ${after}`);
      await shot(page, 'live-update');
      clean(b);
    } finally {
      await b.close();
    }
  });

  test('treatment details on tap', async () => {
    const b = await openBrowser(srv, { width: 900, height: 700 });
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.click('[data-hours="3"]');
      await page.waitForSelector('#chart[data-markers="4"]');
      const box = await page.locator('#chart').boundingBox();
      const hit = await page.evaluate(() => document.querySelector('#chart').glucoseChart.hits
        .filter((h) => h.item.t.eventType === 'Meal Bolus').map(({ x, y }) => ({ x, y }))[0]);
      assert.ok(hit, 'the meal bolus has a marker');
      await page.mouse.click(box.x + hit.x, box.y + hit.y);
      await page.waitForSelector('#tip:not([hidden])');
      const found = await text(page, '#tip');
      assert.ok(found, 'no marker answered a tap');
      assert.match(found, /4\.5 U insulin, 45 g carbs/);
      await shot(page, 'tap-details');
      await page.keyboard.press('Escape');
      assert.ok(await page.locator('#tip').isHidden());
      clean(b);
    } finally {
      await b.close();
    }
  });
});

describe('units', () => {
  test('DISPLAY_UNITS=mmol shows mmol/L; the settings switch to mg/dL and back', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable', DISPLAY_UNITS: 'mmol' });
    const now = Date.now();
    await srv.post('/api/v1/entries', [sgv(now - 5 * MIN - 30000, 110), sgv(now - 30000, 123, 'SingleDown')]);
    const b = await openBrowser(srv);
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForFunction(() => document.querySelector('#bg-value').textContent !== '---');
      assert.equal(await text(page, '#bg-value'), (123 / MMOL).toFixed(1)); // 6.8
      assert.equal(await text(page, '#bg-units'), 'mmol/L');
      assert.equal(await text(page, '#bg-delta'), '+0.7'); // 13 mg/dl in 5 min
      assert.equal(await text(page, '#bg-arrow'), '\u2193');
      await shot(page, 'units-mmol');
      await page.click('#btn-menu');
      await page.selectOption('#set-units', 'mg/dl');
      await page.click('#settings button[type=submit]');
      assert.equal(await text(page, '#bg-value'), '123');
      assert.equal(await text(page, '#bg-units'), 'mg/dL');
      await page.reload();
      await page.waitForFunction(() => document.querySelector('#bg-value').textContent === '123');
      await page.click('#btn-menu');
      await page.selectOption('#set-units', '');
      await page.click('#settings button[type=submit]');
      assert.equal(await text(page, '#bg-value'), '6.8');
      clean(b);
    } finally {
      await b.close();
    }
  });
});

describe('BASE_PATH', () => {
  test('the viewer, its API calls and its WebSocket stay under the sub-path', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable', BASE_PATH: '/ns' });
    const now = Date.now();
    await srv.post('/ns/api/v1/entries', [sgv(now - 5 * MIN - 30000, 110), sgv(now - 30000, 115)]);
    const b = await openBrowser(srv);
    const { page } = b;
    const outside = [];
    page.on('request', (r) => {
      const path = new URL(r.url()).pathname;
      if (!path.startsWith('/ns/')) outside.push(r.url());
    });
    try {
      await page.goto(`${srv.base}/ns`);
      assert.equal(new URL(page.url()).pathname, '/ns/');
      await page.waitForFunction(() => document.querySelector('#bg-value').textContent === '115');
      // Live over the WebSocket at /ns/ws.
      await srv.post('/ns/api/v1/entries', [sgv(Date.now(), 131)]);
      await page.waitForFunction(() => document.querySelector('#bg-value').textContent === '131', null, { timeout: 5000 });
      assert.deepEqual(outside.filter((u) => !u.endsWith('/ns')), [], 'requests outside /ns/');
      await shot(page, 'base-path');
      clean(b);
    } finally {
      await b.close();
    }
  });
});

describe('AUTH_DEFAULT_ROLES=denied', () => {
  let srv;
  before(async () => {
    srv = await startServer({ AUTH_DEFAULT_ROLES: 'denied' });
    await srv.post('/api/v1/entries', [sgv(Date.now() - 30000, 97)]);
  });

  test('asks for credentials, then signs in with ?token=', async () => {
    const b = await openBrowser(srv);
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector('#view-signin:not([hidden])');
      assert.ok(await page.locator('#view-now').isHidden());
      await shot(page, 'signin-asked');
      const created = await srv.post('/api/v2/authorization/subjects', { name: 'Browser follower', roles: ['readable'] });
      const subjects = (await srv.request('GET', '/api/v2/authorization/subjects')).json;
      const token = subjects.find((s) => s._id === created._id).accessToken;
      await page.goto(`${srv.base}/?token=${token}`);
      await page.waitForFunction(() => document.querySelector('#bg-value').textContent === '97');
      assert.ok(!page.url().includes('token='), 'the token stays out of the address bar');
      // A readable token may not add treatments.
      assert.ok(await page.locator('#btn-add').isHidden());
      // Remembered: a plain reload stays signed in.
      await page.goto(`${srv.base}/`);
      await page.waitForFunction(() => document.querySelector('#bg-value').textContent === '97');
      await shot(page, 'signin-token');
      // 401s of the first, unauthenticated load are expected; nothing else.
      clean(b, ['401']);
    } finally {
      await b.close();
    }
  });

  test('the API secret typed once; careportal round trip', async () => {
    const b = await openBrowser(srv);
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector('#view-signin:not([hidden])');
      await page.fill('#signin-input', SECRET);
      await page.press('#signin-input', 'Enter');
      await page.waitForFunction(() => document.querySelector('#bg-value').textContent === '97');
      const stored = await page.evaluate(() => localStorage.getItem('nl.secretHash'));
      assert.equal(stored, SECRET_SHA1, 'the SHA-1 is kept, never the secret');
      await page.waitForSelector('#btn-add:not([hidden])');

      await page.click('#btn-add');
      await page.selectOption('#cp-event', 'Carb Correction');
      assert.ok(await page.locator('#cp-insulin').isHidden());
      await page.fill('#cp-carbs', '25');
      await page.fill('#cp-notes', 'browser round trip');
      await page.fill('#cp-by', 'Playwright');
      await shot(page, 'careportal-form');
      await page.click('#careportal button[type=submit]');
      await page.waitForSelector('#toast:not([hidden])');
      assert.equal(await text(page, '#toast'), 'Carb Correction saved');
      // Back through the live connection, onto the chart and its list.
      await page.waitForFunction(() => /Carb Correction/.test(document.querySelector('#treatments').textContent), null, { timeout: 2000 });
      assert.match(await text(page, '#treatments'), /Carb Correction \u2013 25 g carbs, \u201cbrowser round trip\u201d, by Playwright/);
      const stored2 = (await srv.request('GET', '/api/v1/treatments.json?find[eventType]=Carb%20Correction')).json;
      assert.equal(stored2.length, 1);
      assert.equal(stored2[0].carbs, 25);
      assert.equal(stored2[0].notes, 'browser round trip');
      assert.equal(stored2[0].enteredBy, 'Playwright');
      assert.ok(Math.abs(Date.parse(stored2[0].created_at) - Date.now()) < 60000);

      // A form error is shown, not posted.
      await page.click('#btn-add');
      await page.selectOption('#cp-event', 'Correction Bolus');
      await page.click('#careportal button[type=submit]');
      assert.equal(await text(page, '#careportal .form-error'), 'Correction Bolus needs insulin');
      await page.click('#careportal [data-close]');
      await shot(page, 'careportal-saved');
      clean(b, ['401']);
    } finally {
      await b.close();
    }
  });

  test('a wrong secret is refused and asked again', async () => {
    const b = await openBrowser(srv);
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector('#view-signin:not([hidden])');
      await page.fill('#signin-input', 'not-the-secret-at-all');
      await page.press('#signin-input', 'Enter');
      await page.waitForFunction(() => /not accepted/.test(document.querySelector('#signin-error').textContent), null, { timeout: 10000 });
      assert.equal(await page.evaluate(() => localStorage.getItem('nl.secretHash')), null);
      await shot(page, 'signin-refused');
    } finally {
      await b.close();
    }
  });
});

describe('reports', () => {
  test('numbers match a hand computation', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable' });
    const now = Date.now();
    // 50, 60, 100, 150, 200, 300 mg/dl over the last hours; BG_TARGET 80-180 (defaults).
    await srv.post('/api/v1/entries', [50, 60, 100, 150, 200, 300].map((v, k) => sgv(now - (k + 1) * 40 * MIN, v)));
    const b = await openBrowser(srv, { width: 1024, height: 900 });
    const { page } = b;
    try {
      await page.goto(`${srv.base}/#reports`);
      await page.click('[data-days="1"]');
      await page.waitForFunction(() => document.querySelector('#r-count').textContent === '6');
      // very low 50, low 60, in range 100 and 150, high 200, very high 300: 1/6 and 2/6
      assert.equal(await text(page, '#r-veryhigh'), '16.7 %');
      assert.equal(await text(page, '#r-high'), '16.7 %');
      assert.equal(await text(page, '#r-inrange'), '33.3 %');
      assert.equal(await text(page, '#r-low'), '16.7 %');
      assert.equal(await text(page, '#r-verylow'), '16.7 %');
      // mean 860/6 = 143.3; GMI 3.31 + 0.02392 × 143.33 = 6.74; SD (population) 86.92; CV 60.64
      assert.equal(await text(page, '#r-mean'), '143 mg/dL');
      assert.equal(await text(page, '#r-gmi'), '6.7 %');
      assert.equal(await text(page, '#r-sd'), '86.9 mg/dL');
      assert.equal(await text(page, '#r-cv'), '60.6 %');
      assert.equal(await text(page, '#r-inrange-limits'), '80\u2013180 mg/dL');
      // Six readings 40 minutes apart: at most six 15-minute buckets on the AGP.
      const buckets = Number(await page.getAttribute('#agp', 'data-buckets'));
      assert.ok(buckets >= 5 && buckets <= 6, `${buckets} AGP buckets`);
      assert.equal(await page.getAttribute('[data-days="1"]', 'aria-pressed'), 'true');
      await shot(page, 'reports');
      // Light theme, chosen in the settings.
      await page.click('#btn-menu');
      await page.selectOption('#set-theme', 'light');
      await page.click('#settings button[type=submit]');
      assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
      await shot(page, 'reports-light');
      clean(b);
    } finally {
      await b.close();
    }
  });
});

describe('alarms, offline and reconnect', () => {
  test('an urgent low alarm shows and is snoozed; offline shows; reconnects', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable' });
    await srv.post('/api/v1/entries', [sgv(Date.now() - 60000, 100)]);
    const b = await openBrowser(srv);
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector('#conn.live');
      await page.mouse.click(5, 5); // a user gesture, so sound may play
      await srv.post('/api/v1/entries', [sgv(Date.now(), 45, 'DoubleDown')]);
      await page.waitForSelector('#alarm.urgent:not([hidden])', { timeout: 5000 });
      assert.match(await text(page, '#alarm'), /Urgent LOW.*BG Now: 45/);
      assert.ok((await page.getAttribute('.now', 'class')).includes('urgent-low'));
      await shot(page, 'alarm');
      await page.click('#alarm-ack');
      assert.ok(await page.locator('#alarm').isHidden());
      // A readable viewer may not acknowledge for everyone (docs/security.md): the server keeps
      // alarming, and the snooze holds on this page.
      await new Promise((r) => setTimeout(r, 50));
      await srv.post('/api/v1/entries', [sgv(Date.now(), 44, 'DoubleDown')]);
      await page.waitForFunction(() => document.querySelector('#bg-value')?.textContent === '44', null, { timeout: 5000 });
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(await page.locator('#alarm').isHidden(), 'the snooze holds on this page');

      // The server goes away: the page says so, keeps the last data, and comes back.
      await srv.stop();
      await page.waitForSelector('#conn.offline', { timeout: 5000 });
      assert.match(await text(page, '#conn'), /^Offline/);
      assert.equal(await text(page, '#bg-value'), '44');
      await shot(page, 'offline');
      await startServer({ AUTH_DEFAULT_ROLES: 'readable' }, { port: srv.port, dir: srv.dir });
      await page.waitForSelector('#conn.live', { timeout: 20000 });
      clean(b, ['ERR_CONNECTION_REFUSED', 'WebSocket']);
    } finally {
      await b.close();
    }
  });
});

describe('http', () => {
  test('page and assets: CSP, caching, gzip', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'denied' });
    const page = await fetch(`${srv.base}/`, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    const csp = page.headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|https?:/);
    const html = await page.text();
    const asset = html.match(/"(static\/[0-9a-f]+\/app\.js)"/)[1];
    const js = await fetch(`${srv.base}/${asset}`, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.match(js.headers.get('content-type'), /^text\/javascript/);
    const etag = page.headers.get('etag');
    const again = await fetch(`${srv.base}/`, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
  });
});

describe('bridges', () => {
  test('a pill shows a bridge that cannot reach its vendor, without its credentials', async () => {
    const vendor = await freePort(); // nothing listens there: every request is refused
    const account = 'browser-bridge@example.org';
    const password = 'Browser-Bridge-Pa55';
    const srv = await startServer({
      AUTH_DEFAULT_ROLES: 'readable',
      CONNECT_SOURCE: 'dexcomshare',
      CONNECT_SHARE_ACCOUNT_NAME: account,
      CONNECT_SHARE_PASSWORD: password,
      CONNECT_SHARE_SERVER: `http://127.0.0.1:${vendor}`,
    });
    await srv.post('/api/v1/entries', [sgv(Date.now() - MIN, 120)]);
    const b = await openBrowser(srv);
    const { page } = b;
    const pill = '#bridge-pills [data-pill="bridge-dexcomshare"]';
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector(`${pill}.warn`, { timeout: 20000 });
      assert.equal(await text(page, `${pill} .k`), 'Dexcom');
      assert.equal(await text(page, `${pill} .v`), 'retrying');
      assert.match(await page.getAttribute(pill, 'title'), /^Dexcom bridge retrying: /);
      const html = await page.content();
      assert.ok(!html.includes(password) && !html.includes(account), 'no credential on the page');
      await shot(page, 'bridge-pill');
      clean(b);
    } finally {
      await b.close();
    }
  });

  test('no bridge pill on a site without bridges', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable' });
    await srv.post('/api/v1/entries', [sgv(Date.now() - MIN, 120)]);
    const b = await openBrowser(srv);
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForFunction(() => document.querySelector('#bg-value')?.textContent === '120');
      await page.waitForSelector('#bridge-pills', { state: 'attached' });
      assert.ok(await page.locator('#bridge-pills').isHidden());
      assert.equal(await page.locator('#bridge-pills li').count(), 0);
      clean(b);
    } finally {
      await b.close();
    }
  });
});

describe('treatment math (a Care Portal site: no device statuses)', () => {
  const flat = (v) => [{ time: '00:00', value: v, timeAsSeconds: 0 }];
  /** Readings every 5 minutes for 3 hours, ending 150 (6 min ago) and 160 (1 min ago). */
  async function seed(srv, now) {
    const readings = [];
    for (let i = 2; i < 36; i++) readings.push(sgv(now - MIN - i * 5 * MIN, Math.round(120 + 30 * Math.sin(i / 20))));
    readings.push(sgv(now - 6 * MIN, 150), sgv(now - MIN, 160));
    await srv.post('/api/v1/entries', readings);
    await srv.post('/api/v1/profile', {
      defaultProfile: 'Default', startDate: iso(now - 30 * 24 * 60 * MIN), units: 'mg/dl',
      store: {
        Default: { dia: 4, carbs_hr: 30, delay: 20, timezone: 'UTC', units: 'mg/dl', carbratio: flat(10), sens: flat(40), basal: flat(0.9), target_low: flat(100), target_high: flat(120) },
        Night: { dia: 3, carbs_hr: 30, timezone: 'UTC', units: 'mg/dl', carbratio: flat(12), sens: flat(60), basal: flat(0.5), target_low: flat(100), target_high: flat(120) },
      },
    });
  }

  test('IOB, COB, BWP and basal pills show the server\'s numbers; the cone uses AR2_CONE_FACTOR', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable', ENABLE: 'careportal ar2', AR2_CONE_FACTOR: '1' });
    const now = Date.now();
    await seed(srv, now);
    const at = (mins) => iso(now - mins * MIN);
    await srv.post('/api/v1/treatments', [
      { eventType: 'Meal Bolus', created_at: at(120), insulin: 4.5, carbs: 45, enteredBy: 'xdrip' },
      { eventType: 'Correction Bolus', created_at: at(40), insulin: 1.5, enteredBy: 'careportal' },
      { eventType: 'Carb Correction', created_at: at(20), carbs: 15, enteredBy: 'careportal' },
      { eventType: 'Temp Basal', created_at: at(10), duration: 30, absolute: 1.5, enteredBy: 'careportal' },
    ]);
    const b = await openBrowser(srv);
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector('[data-pill="bwp"]', { timeout: 10000 });
      const pill = (k) => text(page, `[data-pill="${k}"] .v`);
      const shown = { iob: await pill('iob'), cob: await pill('cob'), bwp: await pill('bwp'), basal: await pill('basal') };
      const p = (await srv.request('GET', '/api/v2/properties')).json;
      assert.equal((await srv.request('GET', '/api/v1/devicestatus.json')).json.length, 0);
      // Nightscout's pills: roundInsulinForDisplayFormat(iob.display) + 'U', round(cob, 1) + 'g',
      // BWP '< 0U' below zero, basal's display.
      assert.equal(p.iob.source, 'Care Portal');
      // IOB decays between the page's request and this one: at most a hundredth apart.
      const serverIob = Math.floor(Number(p.iob.display) * 100) / 100;
      assert.match(shown.iob, /^\d+\.\d\dU$/);
      assert.ok(Math.abs(parseFloat(shown.iob) - serverIob) <= 0.0101, `${shown.iob} vs ${p.iob.display}`);
      assert.equal(shown.cob, `${Math.round(p.cob.cob * 10) / 10}g`);
      assert.equal(shown.basal, p.basal.display);
      // By hand (tests/it/treatment_math.rs): IOB 3.2048, COB 15 g, basal T: 1.500U, BWP
      // 160 - 3.2048·40 < 100: about -1.7 U.
      assert.match(shown.iob, /^3\.2[01]U$/);
      assert.equal(shown.cob, '15g');
      assert.equal(shown.basal, 'T: 1.500U');
      assert.ok(Number(p.bwp.bolusEstimateDisplay) < 0);
      assert.equal(shown.bwp, '< 0U');
      assert.match(await page.getAttribute('[data-pill="iob"]', 'title'), /Source: Care Portal/);

      // AR2_CONE_FACTOR=1 reaches the page through the status; the cone is the factor-1 cone.
      await page.waitForFunction(() => Number(document.querySelector('#chart').dataset.cone) > 0, null, { timeout: 5000 });
      const cones = await page.evaluate(async ({ bgnow, delta }) => {
        const { ar2Cone } = await import(document.querySelector('script[type=module]').src.replace(/app\.js$/, 'forecast.js'));
        return { drawn: document.querySelector('#chart').glucoseChart.data.ar2.cone, one: ar2Cone(bgnow, delta, 1), two: ar2Cone(bgnow, delta, 2) };
      }, { bgnow: p.bgnow, delta: p.delta });
      assert.deepEqual(cones.drawn, cones.one);
      assert.notDeepEqual(cones.one, cones.two);
      await shot(page, 'careportal-pills');
      clean(b);
    } finally {
      await b.close();
    }
  });

  test('the basal line follows Profile Switches: percentage, profileJson, a temporary switch ending, one from before the window', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable' });
    const now = Date.now();
    await seed(srv, now);
    const at = (mins) => iso(now - mins * MIN);
    await srv.post('/api/v1/treatments', [
      // Permanent, 30 hours ago (before the live window): Default at 150 %.
      { eventType: 'Profile Switch', created_at: at(30 * 60), profile: 'Default', percentage: 150, duration: 0, enteredBy: 'careportal' },
      // Night for 50 minutes, then back to the permanent one.
      { eventType: 'Profile Switch', created_at: at(170), profile: 'Night', duration: 50, enteredBy: 'careportal' },
      // AndroidAPS: its own profile (0.8 U/h) at 50 % for 30 minutes.
      { eventType: 'Profile Switch', created_at: at(60), profile: 'Sport', percentage: 50, duration: 30, profileJson: JSON.stringify({ units: 'mg/dl', timezone: 'UTC', basal: flat(0.8) }), enteredBy: 'AAPS' },
    ]);
    const b = await openBrowser(srv);
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForFunction(() => {
        const d = document.querySelector('#chart').glucoseChart.data;
        // The permanent switch from before the live window arrives by REST after the snapshot.
        return d && d.basal.length === 5 && d.basal[0].rate !== 0.9;
      }, null, { timeout: 10000 });
      const steps = await page.evaluate(() => document.querySelector('#chart').glucoseChart.data.basal);
      assert.deepEqual(steps.map((s) => s.rate), [1.35, 0.5, 1.35, 0.4, 1.35]);
      assert.deepEqual(steps.slice(1).map((s) => Math.round((now - s.mills) / MIN)), [170, 120, 60, 30]);
      // The server's basal property agrees on the rate now (0.9 × 150 %).
      const p = (await srv.request('GET', '/api/v2/properties/basal')).json;
      assert.equal(p.basal.current.basal, steps[steps.length - 1].rate);
      assert.equal(await page.getAttribute('#chart', 'data-basal'), '5');
      // A timeshift (AndroidAPS' milliseconds), docs/api-v4.md's example: 0.8 U/h from 00:00,
      // 1.2 from 06:00; 150 % and -1 h from 04:00 UTC for two hours: 1.2, 1.8 from 05:00, then
      // the profile's own 1.2 from 06:00.
      const shifted = await page.evaluate(async () => {
        const { basalSteps } = await import(document.querySelector('script[type=module]').src.replace(/app\.js$/, 'forecast.js'));
        const day = Date.parse('2026-04-20T00:00:00Z');
        const doc = { startDate: '2026-04-01T00:00:00Z', defaultProfile: 'Weekday', store: { Weekday: { timezone: 'UTC', basal: [{ time: '00:00', value: 0.8 }, { time: '06:00', value: 1.2 }, { time: '22:00', value: 0.6 }] } } };
        const sw = { eventType: 'Profile Switch', mills: day + 4 * 3600000, profile: 'Weekday (150%,-1h)', originalProfileName: 'Weekday', percentage: 150, timeshift: -3600000, duration: 120 };
        return basalSteps([doc], [sw], day + 3 * 3600000, day + 7 * 3600000).map((s) => [(s.mills - day) / 3600000, Math.round(s.rate * 1000) / 1000]);
      });
      assert.deepEqual(shifted, [[3, 0.8], [4, 1.2], [5, 1.8], [6, 1.2]]);
      // The day Berlin's clocks go forward, as the server's plugins count it (src/plugins/profile.rs
      // dst_day_counts_elapsed_seconds_like_moment): 02:30 UTC is 04:30 on the clock but 3.5 h
      // after midnight, still the 00:00 rate; an hour later the 04:00 rate.
      const dst = await page.evaluate(async () => {
        const { basalSteps } = await import(document.querySelector('script[type=module]').src.replace(/app\.js$/, 'forecast.js'));
        const doc = { startDate: '2024-01-01T00:00:00Z', defaultProfile: 'D', store: { D: { timezone: 'Europe/Berlin', basal: [{ time: '00:00', value: 1 }, { time: '04:00', value: 2 }] } } };
        return ['2024-03-31T02:30:00Z', '2024-03-31T03:30:00Z'].map((at) => basalSteps([doc], [], Date.parse(at), Date.parse(at))[0].rate);
      });
      assert.deepEqual(dst, [1, 2]);
      await shot(page, 'basal-switches');
      clean(b);
    } finally {
      await b.close();
    }
  });
});
