// Alarms in the viewer: Nightscout's snooze durations for the alarm sounding, and an alarm
// already sounding shows on a freshly opened page at once.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { clean, openBrowser, sgv, shot, startServer, text } from './lib.mjs';

describe('alarms', () => {
  test('a fresh page shows the sounding alarm at once; snooze offers its durations', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable' });
    await srv.post('/api/v1/entries', [sgv(Date.now() - 60000, 100)]);
    // The engine raises the urgent low now; the page is opened only afterwards.
    await srv.post('/api/v1/entries', [sgv(Date.now(), 45, 'DoubleDown')]);
    await new Promise((r) => setTimeout(r, 300));
    const b = await openBrowser(srv, { width: 390, height: 844 });
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector('#conn.live');
      // Well before the engine's next evaluation (30 s with the default stale minutes).
      await page.waitForSelector('#alarm.urgent:not([hidden])', { timeout: 3000 });
      assert.equal(await text(page, '#alarm .alarm-msg'), 'Urgent LOW BG Now: 45 mg/dL');
      // Nightscout's alarmUrgentLowMins: 15, 30, 45.
      assert.equal(await text(page, '#alarm-ack'), 'Snooze 15 min');
      assert.deepEqual(await page.locator('#alarm-more button').allTextContents(), ['30 min', '45 min']);
      await shot(page, 'alarm-snooze-390');
      await page.click('#alarm-more button[data-mins="45"]');
      assert.ok(await page.locator('#alarm').isHidden());
      clean(b);
    } finally {
      await b.close();
    }
  });

  test('ALARM_URGENT_LOW_MINS sets the choices', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable', ALARM_URGENT_LOW_MINS: '5 10' });
    const b = await openBrowser(srv);
    const { page } = b;
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector('#conn.live');
      await srv.post('/api/v1/entries', [sgv(Date.now(), 45, 'DoubleDown')]);
      await page.waitForSelector('#alarm.urgent:not([hidden])', { timeout: 5000 });
      assert.equal(await text(page, '#alarm-ack'), 'Snooze 5 min');
      assert.deepEqual(await page.locator('#alarm-more button').allTextContents(), ['10 min']);
      clean(b);
    } finally {
      await b.close();
    }
  });

  test('a high offers 30 to 120 minutes, and the ack asks the server for the one chosen', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable' });
    const b = await openBrowser(srv);
    const { page } = b;
    const acks = [];
    page.on('websocket', (ws) => ws.on('framesent', (f) => {
      if (typeof f.payload === 'string' && f.payload.includes('"ack"')) acks.push(JSON.parse(f.payload));
    }));
    try {
      await page.goto(`${srv.base}/`);
      await page.waitForSelector('#conn.live');
      await srv.post('/api/v1/entries', [sgv(Date.now(), 200, 'SingleUp')]);
      await page.waitForSelector('#alarm.warn:not([hidden])', { timeout: 5000 });
      assert.equal(await text(page, '#alarm-ack'), 'Snooze 30 min');
      assert.deepEqual(await page.locator('#alarm-more button').allTextContents(), ['60 min', '90 min', '120 min']);
      await page.click('#alarm-more button[data-mins="90"]');
      await page.waitForFunction(() => document.querySelector('#alarm').hidden);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(acks.length, 1, JSON.stringify(acks));
      assert.equal(acks[0].silenceTime, 90 * 60000);
      assert.equal(acks[0].level, 1);
      clean(b);
    } finally {
      await b.close();
    }
  });
});
