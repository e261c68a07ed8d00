// Reports (/report): a picked date range with the days it holds, daily, hourly and weekly
// statistics in mmol, day-to-day charts, the treatments log and profile changes checked
// against numbers worked by hand; the print stylesheet; a 90-day report on 90 days of data.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, openBrowser, shot, text, clean, sgv, iso, MIN, OUT } from './lib.mjs';

const H = 60 * MIN;

/** Local midnight `days` days before today (the browser runs in this process's zone). */
function midnightBefore(days) {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  d.setDate(d.getDate() - days);
  return d;
}

const ymd = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;

/** The cells of a report table's rows, header cell first. */
const rows = (page, sel) => page.$$eval(`${sel} tbody tr`, (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.replace(/\s+/g, " "))));

describe('reports', () => {
  test('a picked range in mmol: numbers match a hand computation; print stylesheet', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable', DISPLAY_UNITS: 'mmol' });
    const d1 = midnightBefore(10).getTime();
    const d2 = midnightBefore(9).getTime();
    // Day 1: 72, 108, 180 mg/dl (4.0, 6.0, 10.0 mmol/L); day 2: 252 (14.0). Day 3 is empty.
    await srv.post('/api/v1/entries', [
      sgv(d1 + 8 * H + 10 * MIN, 72), sgv(d1 + 8 * H + 20 * MIN, 108), sgv(d1 + 20 * H, 180),
      sgv(d2 + 8 * H, 252),
      // Outside the picked days.
      sgv(d1 - H, 400), sgv(midnightBefore(7).getTime() + H, 400),
    ]);
    await srv.post('/api/v1/treatments', [
      { eventType: 'Meal Bolus', carbs: 30, insulin: 3, created_at: iso(d1 + 12 * H), enteredBy: 'mum' },
      { eventType: 'Temp Basal', absolute: 1.5, duration: 60, created_at: iso(d1 + 12 * H) },
      { eventType: 'Profile Switch', profile: 'Sport', duration: 120, created_at: iso(d2 + 9 * H), enteredBy: 'dad' },
      // Before the report: a permanent switch to Default at 50 %, still in force.
      { eventType: 'Profile Switch', profile: 'Default', percentage: 50, duration: 0, created_at: iso(d1 - 2 * 24 * H) },
    ]);
    // Saved long before the report, in this process's (and so the browser's) time zone.
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    await srv.post('/api/v1/profile', {
      defaultProfile: 'Default', startDate: iso(d1 - 30 * 24 * H), units: 'mg/dl',
      store: {
        Default: { dia: 4, timezone: zone, units: 'mg/dl', basal: [{ time: '00:00', value: 0.5 }, { time: '06:00', value: 1 }] },
        Sport: { dia: 4, timezone: zone, units: 'mg/dl', basal: [{ time: '00:00', value: 2 }] },
      },
    });
    // Loop statuses at 08:00 and 08:30 on day 1: IOB (1 + 2) / 2 = 1.5 U, COB 20 g, one enacted.
    await srv.post('/api/v1/devicestatus', [
      { device: 'loop://iPhone', created_at: iso(d1 + 8 * H), loop: { iob: { iob: 1 }, cob: { cob: 20 }, enacted: { received: true } } },
      { device: 'loop://iPhone', created_at: iso(d1 + 8 * H + 30 * MIN), loop: { iob: { iob: 2 } } },
    ]);
    const b = await openBrowser(srv, { width: 1366, height: 800 });
    const { page } = b;
    try {
      await page.goto(`${srv.base}/report`);
      assert.ok(page.url().endsWith('/#reports'), page.url());
      await page.waitForFunction(() => document.querySelector('#r-count').textContent !== '–');
      await page.fill('#r-from', ymd(new Date(d1)));
      await page.fill('#r-to', ymd(midnightBefore(8)));
      await page.click('#r-range button[type=submit]');
      await page.waitForFunction(() => document.querySelector('#r-count').textContent === '4');
      assert.equal(await text(page, '#r-held'), '2 of 3 days hold readings');
      // Mean (72 + 108 + 180 + 252) / 4 = 153 mg/dl = 8.5 mmol/L.
      assert.equal(await text(page, '#r-mean'), '8.5 mmol/L');

      // Daily stats: Date, Readings, Low, In range, High, Min, 25 %, Median, 75 %, Max, Mean, SD.
      const daily = await rows(page, '#r-daily');
      assert.equal(daily.length, 2);
      // Day 1: 72, 108, 180: quartiles at ranks 0.5 and 1.5 → 90 and 144 mg/dl; mean 120 (6.7);
      // SD sqrt((48² + 12² + 60²) / 3) = 44.4 mg/dl = 2.5 mmol/L.
      assert.deepEqual(daily[0].slice(1), ['3', '33.3 %', '66.7 %', '0.0 %', '4.0', '5.0', '6.0', '8.0', '10.0', '6.7', '2.5']);
      assert.deepEqual(daily[1].slice(1, 5), ['1', '0.0 %', '0.0 %', '100.0 %']);
      assert.equal(daily[1][9], '14.0');

      // Hourly: 08 holds 72, 108, 252: mean 144 mg/dl = 8.0, median 108 = 6.0; 20 holds 180.
      const hourly = await rows(page, '#r-hourly');
      assert.equal(hourly.length, 2);
      assert.equal(hourly[0][1], '3');
      assert.equal(hourly[0][7], '6.0');
      assert.equal(hourly[0][10], '8.0');
      assert.equal(hourly[1][1], '1');

      // Glucose distribution (target 80-180 mg/dl): low 72; in range 108, 180 (mean 144 = 8.0,
      // SD 36 = 2.0); high 252. Overall mean 153 = 8.5, median (108 + 180) / 2 = 8.0,
      // SD sqrt((81² + 45² + 27² + 99²) / 4) = 69.1 = 3.8; A1c (153 + 46.7) / 28.7 = 7.0 %,
      // IFCC (6.958 - 2.15) × 10.929 = 53 mmol/mol; GMI 3.31 + 0.02392 × 153 = 7.0 %.
      assert.deepEqual(await rows(page, '#r-distribution'), [
        ['Low (below 4.4)', '25.0 %', '1', '4.0', '4.0', '0.0', ''],
        ['In range (4.4–10.0)', '50.0 %', '2', '8.0', '8.0', '2.0', ''],
        ['High (above 10.0)', '25.0 %', '1', '14.0', '14.0', '0.0', ''],
        ['Overall', '100.0 %', '4', '8.5', '8.0', '3.8', '7.0 % (53 mmol/mol), GMI 7.0 %'],
      ]);

      assert.deepEqual(await rows(page, '#r-loop'), [['8am', '2', '1.50', '20', '1']]);

      const weekly = await rows(page, '#r-weekly');
      assert.equal(weekly.reduce((n, r) => n + Number(r[1]), 0), 4);
      assert.equal(await page.getAttribute('#r-weekly canvas', 'data-weeks'), String(weekly.length));
      // Hourly curves: day 1 08h (72, 108) and 20h (180), day 2 08h (252): three hours in all.
      assert.equal(await page.getAttribute('#r-weekly canvas', 'data-hours'), '3');

      // Day to day, newest first, each with its data; day 1 has the meal.
      await page.waitForFunction(() => document.querySelectorAll('#r-daytoday figure[data-loaded]').length === 2);
      const totals = await page.$$eval('#r-daytoday .r-day-totals', (ps) => ps.map((p) => p.textContent));
      assert.deepEqual(totals, ['1 reading, carbs 0 g, bolus insulin 0.00 U', '3 readings, carbs 30 g, bolus insulin 3.00 U']);
      // Basal lines: Default at the older permanent switch's 50 % (0.25, then 0.5 from 06:00);
      // on day 2 Sport (2 U/h) from 09:00 for 120 minutes, then the 50 % Default again.
      const basal = await page.$$eval('#r-daytoday figure', (fs) => fs.map((f) => f.dataset.basal));
      assert.deepEqual(basal, ['00:00 0.25, 06:00 0.5, 09:00 2, 11:00 0.5', '00:00 0.25, 06:00 0.5']);
      await page.locator('#r-daytoday').screenshot({ path: join(OUT, 'report-daytoday.png') });

      // Treatments log without the temp basal; the profile switch under profile changes.
      await page.waitForSelector('#r-profiles table');
      const log = await rows(page, '#r-treatments');
      assert.deepEqual(log.map((r) => r[1]), ['Profile Switch', 'Meal Bolus']);
      assert.deepEqual(log[1].slice(3, 5), ['30 g', '3 U']);
      assert.match(await text(page, '#r-treatments p'), /^2 treatments: carbs 30 g, insulin 3\.00 U/);
      const profiles = await rows(page, '#r-profiles');
      assert.deepEqual(profiles.map((r) => r.slice(1)), [['Profile Switch', 'Sport for 120 min', 'dad']]);
      await shot(page, 'report-range');

      // Print: no header, tabs, buttons or form; black on white; sections start new pages.
      await page.emulateMedia({ media: 'print' });
      const print = await page.evaluate(() => {
        const cs = (sel) => getComputedStyle(document.querySelector(sel));
        return {
          header: cs('header.bar').display,
          form: cs('#r-range').display,
          buttons: cs('.seg-buttons').display,
          body: cs('body').backgroundColor,
          fg: cs('body').color,
          daily: cs('#r-daily').breakBefore,
          card: cs('.report-grid .card').breakInside,
        };
      });
      assert.deepEqual(print, {
        header: 'none', form: 'none', buttons: 'none', body: 'rgb(255, 255, 255)', fg: 'rgb(0, 0, 0)', daily: 'page', card: 'avoid',
      });
      await shot(page, 'report-print');
      await page.pdf({ path: join(OUT, 'report.pdf'), format: 'A4' });
      await page.emulateMedia({ media: 'screen' });
      assert.notEqual(await page.evaluate(() => getComputedStyle(document.querySelector('header.bar')).display), 'none');
      clean(b);
    } finally {
      await b.close();
    }
  });

  test('a 90-day report renders from 90 days of 5-minute readings', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable' });
    const now = Date.now();
    const n = 90 * 288;
    const all = Array.from({ length: n }, (_, k) => sgv(now - 60000 - k * 5 * MIN, Math.round(140 + 60 * Math.sin(k / 40))));
    for (let i = 0; i < n; i += 2000) await srv.post('/api/v1/entries', all.slice(i, i + 2000));
    const b = await openBrowser(srv, { width: 390, height: 844 });
    const { page } = b;
    try {
      await page.goto(`${srv.base}/#reports`);
      const t0 = Date.now();
      await page.click('[data-days="90"]');
      await page.waitForFunction((want) => document.querySelector('#r-count').textContent === want, n.toLocaleString('en-US'));
      await page.waitForSelector('#r-daily table');
      const ms = Date.now() - t0;
      const held = Number(await page.getAttribute('#r-held', 'data-days'));
      // 90 × 24 hours from now span 90 or 91 local days.
      assert.ok(held === 90 || held === 91, `${held} days`);
      assert.equal((await rows(page, '#r-daily')).length, held);
      assert.equal((await rows(page, '#r-hourly')).length, 24);
      const weeks = (await rows(page, '#r-weekly')).length;
      assert.ok(weeks >= 13 && weeks <= 15, `${weeks} weeks`);
      // Week to week: a line per week.
      assert.equal(await page.getAttribute('#r-weekly canvas', 'data-weeks'), String(weeks));
      // 90 × 24 hours of readings touch 2,160 or 2,161 clock hours, each in one week's curve.
      const hours = Number(await page.getAttribute('#r-weekly canvas', 'data-hours'));
      assert.ok(hours === 2160 || hours === 2161, `${hours} hours`);
      await page.locator('#r-weekly').screenshot({ path: join(OUT, 'report-week-to-week.png') });
      // Seven day charts at first, the rest on request.
      await page.waitForFunction(() => document.querySelectorAll('#r-daytoday figure[data-loaded]').length === 7);
      assert.equal(await text(page, '#r-daytoday .r-more'), `Show 7 more of ${held - 7} days`);
      await page.click('#r-daytoday .r-more');
      await page.waitForFunction(() => document.querySelectorAll('#r-daytoday figure[data-loaded]').length === 14);
      console.log(`90-day report rendered in ${ms} ms (debug or release binary as run)`);
      await shot(page, 'report-90-days-phone');
      clean(b);
    } finally {
      await b.close();
    }
  });
});
