// The sync (docs/sync.md) in the viewer: a nightlite syncing with a second one shows a sync
// pill on the main page and a Sync section on /admin (status, runs, conflicts, Sync now).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { clean, secretPage, seedDay, shot, startServer, text } from './lib.mjs';

const wait = (ms) => new Promise((r) => setTimeout(r, ms));

async function runs(srv) {
  return (await srv.request('GET', '/api/v4/sync/runs')).json.runs;
}

async function until(what, check) {
  for (let i = 0; i < 300; i++) {
    const v = await check();
    if (v) return v;
    await wait(50);
  }
  throw new Error(`never: ${what}`);
}

describe('sync', () => {
  let site;
  let here;
  let token;
  before(async () => {
    site = await startServer({ AUTH_DEFAULT_ROLES: 'denied' });
    const { _id } = await site.post('/api/v2/authorization/subjects', { name: 'sync', roles: ['admin'] });
    token = (await site.request('GET', '/api/v2/authorization/subjects')).json.find((s) => s._id === _id).accessToken;
    here = await startServer({ AUTH_DEFAULT_ROLES: 'denied', SYNC_URL: `${site.base}?token=${token}` });
    await seedDay(here, Date.now());
    await until('the start run', async () => (await runs(here)).some((r) => r.trigger === 'start' && r.outcome === 'complete'));
  });
  after(async () => {
    await here.stop();
    await site.stop();
  });

  test('the main page shows a sync pill; /admin the status, runs and conflicts', async () => {
    const b = await secretPage(here, { width: 1366, height: 900 });
    const { page } = b;
    try {
      await page.goto(`${here.base}/`);
      await page.waitForSelector('#sync-pills [data-pill="sync"]');
      assert.equal(await text(page, '[data-pill="sync"] .k'), 'Sync');
      assert.match(await text(page, '[data-pill="sync"] .v'), /^\d+m ago/);
      const title = await page.getAttribute('[data-pill="sync"]', 'title');
      assert.match(title, new RegExp(`^Sync with ${site.base}, last success `));
      assert.ok(!(await page.content()).includes(token), 'the token is on the page');
      await shot(page, 'sync-pill');

      await page.goto(`${here.base}/admin`);
      await page.waitForSelector('#ad-sync dl');
      const facts = await text(page, '#ad-sync dl');
      assert.match(facts, /StateIDLE/);
      assert.match(facts, new RegExp(`Site${site.base}`));
      assert.match(facts, /Conflicts0 held, 0 in all/);
      assert.match(await text(page, '#ad-sync tbody tr'), /start.*complete/);
      assert.match(await text(page, '#ad-sync'), /No conflict\./);
      assert.ok(!(await page.content()).includes(token), 'the token is on /admin');

      // Sync now: a run with the trigger "manual".
      await page.click('#ad-sync-now');
      await page.waitForFunction(() => /Sync started/.test(document.querySelector('#status').textContent));
      await until('the manual run', async () => (await runs(here)).some((r) => r.trigger === 'manual' && r.outcome));

      // A held conflict (as the engine logs one; shown here through the page's request) has
      // both buttons; "Keep there" asks the server, which knows no such conflict: the page
      // says so.
      const held = {
        id: 7, collection: 'treatments', identity: 't-1', detectedAt: Date.now(), strategy: 'manual',
        reason: 'changed on both sides', kept: null, localDoc: { notes: 'here' }, remoteDoc: { notes: 'there' },
        resolvedAt: null, applied: true,
      };
      await page.route('**/api/v4/sync/conflicts?limit=50', (r) => r.fulfill({ json: { conflicts: [held] } }));
      const sent = [];
      await page.route('**/api/v4/sync/conflicts/7', (r) => {
        sent.push([r.request().method(), r.request().postDataJSON()]);
        r.continue();
      });
      await page.reload();
      await page.waitForSelector('#ad-sync tr[data-conflict="7"]');
      assert.match(await text(page, '#ad-sync tr[data-conflict="7"]'), /treatments t-1.*\{"notes":"here"\}.*\{"notes":"there"\}/);
      await page.click('button[aria-label="Keep the site\'s version of t-1"]');
      await page.waitForFunction(() => /no sync conflict 7/.test(document.querySelector('#status').textContent));
      assert.deepEqual(sent, [['POST', { keep: 'remote' }]]);
      await shot(page, 'sync-admin');
      clean(b, ['status of 404']);
    } finally {
      await b.close();
    }
  });
});
