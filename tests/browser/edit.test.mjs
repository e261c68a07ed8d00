// Browser tests of correcting treatments (edit and delete from the chart and the Treatments
// view, seen live on a second page), looking back at past days, chart ranges and the legend,
// and the careportal's event types. Run through run.sh.

import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MIN, clean, iso, openBrowser, secretPage, seedDay, sgv, shot, startServer, text } from './lib.mjs';

/** Taps the chart marker of a treatment (by _id or event type); waits for the details. */
async function tapMarker(page, which) {
  const box = await page.locator('#chart').boundingBox();
  const hit = await page.evaluate((w) => document.querySelector('#chart').glucoseChart.hits
    .filter((h) => h.item.t._id === w || h.item.t.eventType === w).map(({ x, y }) => ({ x, y }))[0], which);
  assert.ok(hit, `${which} has a marker`);
  await page.mouse.click(box.x + hit.x, box.y + hit.y);
  await page.waitForSelector('#tip:not([hidden])');
}

const storedTreatments = async (srv, q) => (await srv.request('GET', `/api/v1/treatments.json?${q}`)).json;

describe('correcting treatments', () => {
  let srv;
  let now;
  before(async () => {
    srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable' });
    now = Date.now();
    await seedDay(srv, now);
  });

  test('edit from a chart marker keeps unknown fields; delete from the list; both reach a second page live', async () => {
    // The mistake: 200 g instead of 20, from an uploader with fields this viewer does not know.
    const [created] = await srv.post('/api/v1/treatments', {
      eventType: 'Meal Bolus', carbs: 200, insulin: 2, created_at: iso(now - 20 * MIN), enteredBy: 'uploader',
      pumpId: 4711, uploaderExtra: { nested: [1, 'two'] }, isSMB: false,
      // A finger check entered in mmol/L: this mg/dL page shows 130 and must not rewrite it.
      glucose: 7.2, units: 'mmol', glucoseType: 'Finger',
    });
    const a = await secretPage(srv, { width: 900, height: 800 });
    const b = await secretPage(srv, { width: 900, height: 800 });
    try {
      for (const p of [a.page, b.page]) {
        await p.goto(`${srv.base}/`);
        await p.click('[data-hours="3"]');
        await p.waitForFunction(() => /200 g carbs/.test(document.querySelector('#treatments').textContent));
      }
      const { page } = a;
      await tapMarker(page, created._id);
      assert.match(await text(page, '#tip'), /2 U insulin, 200 g carbs/);
      await shot(page, 'edit-details');
      await page.click('#tip [data-action="edit"]');
      await page.waitForSelector('#careportal[open]');
      assert.equal(await page.inputValue('#cp-carbs'), '200');
      assert.equal(await page.inputValue('#cp-insulin'), '2');
      assert.equal(await page.inputValue('#cp-glucose'), '130');
      assert.ok(await page.locator('#cp-event').isDisabled(), 'the event type stays');
      await page.fill('#cp-carbs', '20');
      await shot(page, 'edit-form');
      await page.click('#careportal button[type=submit]');
      await page.waitForSelector('#toast:not([hidden])');
      assert.equal(await text(page, '#toast'), 'Meal Bolus changed');
      // The other page sees the correction without reloading.
      await b.page.waitForFunction(() => /Meal Bolus \u2013 2 U insulin, 20 g carbs/.test(document.querySelector('#treatments').textContent), null, { timeout: 3000 });
      assert.doesNotMatch(await text(b.page, '#treatments'), /200 g carbs/);
      // Read back through the API: the edit changed carbs and nothing else.
      const [stored] = await storedTreatments(srv, `find[_id]=${created._id}`);
      assert.equal(stored.carbs, 20);
      assert.equal(stored.insulin, 2);
      assert.equal(stored.pumpId, 4711);
      assert.deepEqual(stored.uploaderExtra, { nested: [1, 'two'] });
      assert.equal(stored.isSMB, false);
      assert.deepEqual([stored.glucose, stored.units, stored.glucoseType], [7.2, 'mmol', 'Finger']);
      assert.equal(stored.enteredBy, 'uploader');
      assert.equal(stored.created_at, created.created_at);
      assert.equal(stored.identifier, created.identifier);

      // Delete from the Treatments view, after a confirmation.
      await page.click('#tab-log');
      await page.waitForSelector('#view-log:not([hidden])');
      const row = page.locator(`#log-list li[data-id="${created._id}"]`);
      assert.match(await row.textContent(), /Meal Bolus/);
      await shot(page, 'treatments-view');
      await row.locator('[data-action="delete"]').click();
      await page.waitForSelector('#confirm[open]');
      assert.match(await text(page, '#confirm .confirm-text'), /^Delete Meal Bolus at .*2 U insulin, 20 g carbs/);
      // Cancel first: nothing happens.
      await page.click('#confirm [data-close]');
      assert.equal((await storedTreatments(srv, `find[_id]=${created._id}`)).length, 1);
      await row.locator('[data-action="delete"]').click();
      await shot(page, 'delete-confirm');
      await page.click('#confirm [data-delete]');
      await page.waitForFunction(() => !document.querySelector('#confirm').open);
      assert.equal(await text(page, '#toast'), 'Meal Bolus deleted');
      await page.waitForSelector(`#log-list li[data-id="${created._id}"]`, { state: 'detached', timeout: 3000 });
      await b.page.waitForFunction(() => !/Meal Bolus \u2013 2 U insulin, 20 g carbs/.test(document.querySelector('#treatments').textContent), null, { timeout: 3000 });
      assert.equal((await storedTreatments(srv, `find[_id]=${created._id}`)).length, 0);
      clean(a);
      clean(b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('no Edit or Delete for a reader or a careportal token; a refused delete shows the server\'s message', async () => {
    const reader = await openBrowser(srv, { width: 900, height: 800 });
    try {
      await reader.page.goto(`${srv.base}/`);
      await reader.page.click('[data-hours="3"]');
      await reader.page.waitForSelector('#conn.live');
      await reader.page.waitForFunction(() => Number(document.querySelector('#chart').dataset.markers) >= 4);
      await tapMarker(reader.page, 'Note');
      assert.equal(await reader.page.locator('#tip button').count(), 0);
      await reader.page.click('#tab-log');
      await reader.page.waitForFunction(() => document.querySelectorAll('#log-list li').length >= 4);
      assert.equal(await reader.page.locator('#log-list button').count(), 0);
      clean(reader);
    } finally {
      await reader.close();
    }

    const subject = async (name, roles) => {
      const created = await srv.post('/api/v2/authorization/subjects', { name, roles });
      const all = (await srv.request('GET', '/api/v2/authorization/subjects')).json;
      return all.find((s) => s._id === created._id);
    };
    const carer = await subject('Carer', ['readable', 'careportal']);
    const c = await openBrowser(srv, { width: 900, height: 800 });
    try {
      await c.page.goto(`${srv.base}/?token=${carer.accessToken}`);
      await c.page.waitForSelector('#btn-add:not([hidden])');
      await c.page.click('#tab-log');
      await c.page.waitForFunction(() => document.querySelectorAll('#log-list li').length >= 4);
      assert.equal(await c.page.locator('#log-list button').count(), 0, 'careportal may add, not change');
      clean(c);
    } finally {
      await c.close();
    }

    // An admin whose token is revoked while the page is open: the server refuses the delete
    // and the dialog says why, in the server's words.
    const admin = await subject('Admin', ['admin']);
    const d = await openBrowser(srv, { width: 900, height: 800 });
    try {
      await d.page.goto(`${srv.base}/?token=${admin.accessToken}#log`);
      await d.page.waitForFunction(() => document.querySelectorAll('#log-list [data-action="delete"]').length >= 4);
      const del = await srv.request('DELETE', `/api/v2/authorization/subjects/${admin._id}`);
      assert.equal(del.status, 200, del.text);
      const refused = await fetch(`${srv.base}/api/v1/treatments/000000000000000000000000?token=${admin.accessToken}`, { method: 'DELETE' });
      const message = (await refused.json()).message;
      assert.ok(message, 'the server explains a refusal');
      await d.page.locator('#log-list [data-action="delete"]').first().click();
      await d.page.click('#confirm [data-delete]');
      await d.page.waitForFunction(() => document.querySelector('#confirm .form-error').textContent !== '');
      assert.equal(await text(d.page, '#confirm .form-error'), `Not deleted: ${message}`);
      assert.ok(await d.page.locator('#confirm').isVisible(), 'the dialog stays open');
      await shot(d.page, 'delete-refused');
      assert.equal((await storedTreatments(srv, 'find[eventType]=Note')).length, 1, 'nothing deleted');
      clean(d, ['401', '403']);
    } finally {
      await d.close();
    }
  });
});

describe('looking back', () => {
  test('a past day from the date picker and previous/next; ranges 2 and 4 h; the legend', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable' });
    const now = Date.now();
    const today = new Date(now);
    today.setHours(0, 0, 0, 0);
    const twoDaysAgo = new Date(today);
    twoDaysAgo.setDate(twoDaysAgo.getDate() - 2);
    const noon = twoDaysAgo.getTime() + 12 * 60 * MIN;
    // Two days ago: 36 readings (every 5 minutes from noon) and a correction bolus at 13:00.
    await srv.post('/api/v1/entries', Array.from({ length: 36 }, (_, k) => sgv(noon + k * 5 * MIN, 100 + k)));
    await srv.post('/api/v1/treatments', { eventType: 'Correction Bolus', insulin: 1.5, created_at: iso(noon + 60 * MIN) });
    // Now: 5 hours of readings.
    await srv.post('/api/v1/entries', Array.from({ length: 60 }, (_, k) => sgv(now - 30000 - k * 5 * MIN, 120)));
    const b = await openBrowser(srv, { width: 1366, height: 800 });
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForFunction(() => Number(document.querySelector('#chart').dataset.points) > 0);
      await page.click('[data-hours="2"]');
      await page.waitForFunction(() => Number(document.querySelector('#chart').dataset.points) === 24);
      await page.click('[data-hours="4"]');
      await page.waitForFunction(() => Number(document.querySelector('#chart').dataset.points) === 48);
      assert.equal(await page.getAttribute('[data-hours="4"]', 'aria-pressed'), 'true');
      const pad = (n) => String(n).padStart(2, '0');
      const day = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
      assert.equal(await page.inputValue('#day'), day(today));
      assert.ok(await page.locator('#day-next').isDisabled(), 'no day after today');

      // The date picker: two days ago, whole, with its treatment.
      await page.fill('#day', day(twoDaysAgo));
      await page.waitForFunction((from) => document.querySelector('#chart').dataset.from === String(from) && Number(document.querySelector('#chart').dataset.points) === 36, twoDaysAgo.getTime());
      assert.equal(await page.getAttribute('#chart', 'data-markers'), '1');
      assert.equal(await page.getAttribute('[data-hours="4"]', 'aria-pressed'), 'false');
      await shot(page, 'past-day');
      await page.click('#tab-log');
      await page.waitForFunction(() => /Correction Bolus/.test(document.querySelector('#log-list').textContent));
      assert.equal(await page.locator('#log-list li').count(), 1);
      // The Treatments view has the day picker too: the day after is empty.
      await page.click('#day-next');
      await page.waitForFunction(() => document.querySelector('#log-period').textContent.endsWith(': 0 treatments'));
      await page.click('#day-prev');
      await page.waitForFunction(() => document.querySelectorAll('#log-list li').length === 1);
      await shot(page, 'past-day-treatments');
      await page.click('#tab-now');
      // Next: yesterday, empty; next again: today, live.
      await page.click('#day-next');
      await page.waitForFunction(() => document.querySelector('#chart').dataset.points === '0');
      await page.click('#day-prev');
      await page.waitForFunction(() => document.querySelector('#chart').dataset.points === '36');
      await page.click('#day-today');
      await page.waitForFunction(() => Number(document.querySelector('#chart').dataset.points) === 48);
      assert.equal(await page.inputValue('#day'), day(today));

      // The legend names every marker and curve.
      await page.click('#legend summary');
      const legend = await text(page, '#legend');
      for (const word of ['Carbs', 'Insulin bolus', 'BG check', 'Temporary target', 'Temp basal', 'prediction', 'AR2 forecast']) {
        assert.ok(legend.includes(word), `legend names ${word}`);
      }
      await shot(page, 'legend');
      clean(b);
    } finally {
      await b.close();
    }
  });
});

describe('careportal event types', () => {
  test('fields per type, validation reset on type change, and what is stored', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable' });
    const now = Date.now();
    await seedDay(srv, now);
    const b = await secretPage(srv, { width: 412, height: 915 });
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector('#btn-add:not([hidden])');
      // A phone: the time labels of the 3-hour chart keep apart ("10:30am" is about 52 px).
      await page.click('[data-hours="3"]');
      await page.waitForFunction(() => Number(document.querySelector('#chart').dataset.points) > 0);
      const gap = Number(await page.getAttribute('#chart', 'data-tick-gap'));
      assert.ok(gap >= 52, `time labels ${gap} px apart`);
      await page.click('#btn-add');
      const options = await page.locator('#cp-event option').allTextContents();
      for (const name of ['BG Check', 'Snack Bolus', 'Meal Bolus', 'Correction Bolus', 'Carb Correction', 'Combo Bolus',
        'Announcement', 'Note', 'Question', 'Exercise', 'Pump Site Change', 'CGM Sensor Start', 'CGM Sensor Insert',
        'CGM Sensor Stop', 'Pump Battery Change', 'Insulin Cartridge Change', 'Temp Basal Start', 'Temp Basal End',
        'Profile Switch', 'D.A.D. Alert', 'Temporary Target', 'Temporary Target Cancel']) {
        assert.ok(options.includes(name), `offers ${name}`);
      }
      await page.selectOption('#cp-event', 'Temp Basal Start');
      assert.ok(await page.locator('#cp-percent').isVisible());
      assert.ok(await page.locator('#cp-carbs').isHidden());
      await page.fill('#cp-percent', '50');
      await page.click('#careportal button[type=submit]');
      assert.equal(await text(page, '#careportal .form-error'), 'Temp Basal Start needs a duration');
      await shot(page, 'careportal-tempbasal');
      // Another type: the error and the hidden fields' values go.
      await page.selectOption('#cp-event', 'Exercise');
      assert.equal(await text(page, '#careportal .form-error'), '');
      assert.ok(await page.locator('#cp-percent').isHidden());
      assert.equal(await page.inputValue('#cp-percent'), '');
      await page.fill('#cp-duration', '45');
      await page.click('#careportal button[type=submit]');
      await page.waitForFunction(() => !document.querySelector('#careportal').open);
      const [exercise] = await storedTreatments(srv, 'find[eventType]=Exercise');
      assert.equal(exercise.duration, 45);
      assert.equal(exercise.percent, undefined, 'nothing of the other type');

      // Sensor Start takes the sensor code and transmitter ID, as Nightscout's careportal; other
      // types do not show them.
      await page.click('#btn-add');
      await page.selectOption('#cp-event', 'Sensor Start');
      await page.fill('#cp-sensor-code', '1234');
      await page.fill('#cp-transmitter', '8G1ABC');
      await page.click('#careportal button[type=submit]');
      await page.waitForFunction(() => !document.querySelector('#careportal').open);
      const [sensor] = await storedTreatments(srv, 'find[eventType]=Sensor%20Start');
      assert.deepEqual([sensor.sensorCode, sensor.transmitterId], ['1234', '8G1ABC']);
      await page.click('#btn-add');
      await page.selectOption('#cp-event', 'Note');
      assert.ok(await page.locator('#cp-sensor-code').isHidden());
      await page.keyboard.press('Escape');

      // Profile Switch offers the profile store's names.
      await page.click('#btn-add');
      await page.selectOption('#cp-event', 'Profile Switch');
      assert.deepEqual(await page.locator('#cp-profile option').allTextContents(), ['Default']);
      await page.click('#careportal button[type=submit]');
      await page.waitForFunction(() => !document.querySelector('#careportal').open);
      assert.equal((await storedTreatments(srv, 'find[eventType]=Profile%20Switch'))[0].profile, 'Default');

      // Combo Bolus: 4 U, 60 % now, the rest over 2 hours.
      await page.click('#btn-add');
      await page.selectOption('#cp-event', 'Combo Bolus');
      await page.fill('#cp-insulin', '4');
      await page.fill('#cp-split-now', '60');
      assert.equal(await page.inputValue('#cp-split-ext'), '40');
      await page.fill('#cp-duration', '120');
      await page.click('#careportal button[type=submit]');
      await page.waitForFunction(() => !document.querySelector('#careportal').open);
      const [combo] = await storedTreatments(srv, 'find[eventType]=Combo%20Bolus');
      assert.deepEqual([combo.enteredinsulin, combo.insulin, combo.splitNow, combo.splitExt, combo.relative, combo.duration], [4, 2.4, 60, 40, 0.8, 120]);

      // A Meal Bolus with the carbs eaten 15 minutes after the insulin: two treatments.
      await page.click('#btn-add');
      await page.selectOption('#cp-event', 'Meal Bolus');
      await page.fill('#cp-carbs', '30');
      await page.fill('#cp-insulin', '3');
      await page.fill('#cp-prebolus', '15');
      await page.click('#careportal button[type=submit]');
      await page.waitForFunction(() => !document.querySelector('#careportal').open);
      const meal = (await storedTreatments(srv, 'find[eventType]=Meal%20Bolus&find[created_at][$gte]=' + iso(now)))
        .sort((x, y) => Date.parse(x.created_at) - Date.parse(y.created_at));
      assert.equal(meal.length, 2, JSON.stringify(meal));
      assert.deepEqual([meal[0].insulin, meal[0].carbs, meal[1].carbs, meal[1].insulin], [3, undefined, 30, undefined]);
      assert.equal(Date.parse(meal[1].created_at) - Date.parse(meal[0].created_at), 15 * MIN);

      // Cancelling a temporary target: Nightscout's form, duration 0.
      await page.click('#btn-add');
      await page.selectOption('#cp-event', 'Temporary Target Cancel');
      await page.click('#careportal button[type=submit]');
      await page.waitForFunction(() => !document.querySelector('#careportal').open);
      const cancels = (await storedTreatments(srv, 'find[eventType]=Temporary%20Target')).filter((t) => t.duration === 0);
      assert.equal(cancels.length, 1);
      clean(b);
    } finally {
      await b.close();
    }
  });
});

describe('clock faces', () => {
  test('/clock/color, /clock/bgclock and /clock update live; an unknown face is a 404', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable', BASE_PATH: '/ns' });
    const now = Date.now();
    await srv.post('/ns/api/v1/entries', [sgv(now - 5 * MIN - 30000, 110), sgv(now - 30000, 115)]);
    const unknown = await fetch(`${srv.base}/ns/clock/sundial`, { redirect: 'manual' });
    assert.equal(unknown.status, 404);
    assert.match((await unknown.json()).message, /no clock face 'sundial'/);
    const b = await openBrowser(srv, { width: 800, height: 480 });
    const { page } = b;
    try {
      // Nightscout's address, redirected under the base path.
      await page.goto(`${srv.base}/ns/clock/color`);
      assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, '/ns/clock?face=color');
      await page.waitForFunction(() => document.querySelector('#c-bg').textContent === '115');
      assert.equal(await text(page, '#c-arrow'), '\u2192');
      assert.equal(await text(page, '#c-delta'), '+5');
      assert.match(await page.getAttribute('body', 'class'), /face-color in-range/);
      const green = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      await shot(page, 'clock-color');
      // A new high reading: the number and the colour follow without a reload.
      await srv.post('/ns/api/v1/entries', [sgv(Date.now(), 200, 'SingleUp')]);
      await page.waitForFunction(() => document.querySelector('#c-bg').textContent === '200', null, { timeout: 3000 });
      assert.equal(await text(page, '#c-arrow'), '\u2191');
      assert.match(await page.getAttribute('body', 'class'), /face-color high/);
      assert.notEqual(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), green);
      await shot(page, 'clock-color-high');

      await page.goto(`${srv.base}/ns/clock/bgclock`);
      await page.waitForFunction(() => document.querySelector('#c-bg').textContent === '200');
      assert.match(await page.getAttribute('body', 'class'), /face-bgclock/);
      await shot(page, 'clock-bgclock');
      await page.goto(`${srv.base}/ns/clock`);
      await page.waitForFunction(() => document.querySelector('#c-bg').textContent === '200');
      assert.match(await page.getAttribute('body', 'class'), /face-clock/);
      assert.match(await text(page, '#c-time'), /\d:\d\d/);
      await srv.post('/ns/api/v1/entries', [sgv(Date.now() + 1000, 190, 'Flat')]);
      await page.waitForFunction(() => document.querySelector('#c-bg').textContent === '190', null, { timeout: 3000 });
      await shot(page, 'clock-simple');
      clean(b);
    } finally {
      await b.close();
    }
  });
});
