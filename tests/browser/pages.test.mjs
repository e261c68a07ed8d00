// Browser tests of the profile editor (/profile), the food editor (/food) with the careportal's
// food picks, and the admin page (/admin). Run through run.sh.

import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MIN, clean, iso, openBrowser, secretPage, seedDay, shot, startServer } from './lib.mjs';

/** Clicks a Save button and waits for the page to say it saved (or fails with what it said). */
async function save(page, button) {
  // What an earlier attempt said goes first, so only this attempt's answer is read.
  await page.evaluate(() => {
    for (const e of document.querySelectorAll('#status, .form-error')) e.textContent = '';
  });
  await page.click(button);
  await page.waitForFunction(() => /Saved|Could|Not allowed/.test(document.querySelector('#status').textContent) || document.querySelector('.form-error[role=alert]:not(:empty)'));
  const said = await page.evaluate(() => [document.querySelector('#status').textContent, ...[...document.querySelectorAll('.form-error')].map((e) => e.textContent)].join(' | '));
  assert.match(said, /^Saved/, said);
}

const get = async (srv, path) => (await srv.request('GET', path)).json;

describe('profile editor', () => {
  let srv;
  let now;
  before(async () => {
    srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable' });
    now = Date.now();
    await seedDay(srv, now);
  });

  test('editing a basal value on /profile is stored (unknown fields kept) and changes the main page\'s basal line', async () => {
    // An AndroidAPS-like record, newer than the fixture's: extra fields at every level.
    const start = iso(now - 2 * 24 * 60 * MIN);
    const [aaps] = await srv.post('/api/v1/profile', {
      defaultProfile: 'Home', startDate: start, units: 'mg/dl', enteredBy: 'AndroidAPS', app: 'AAPS', aapsVersion: { v: '3.2' },
      store: {
        Home: {
          dia: 5, carbratio: [{ time: '00:00', timeAsSeconds: 0, value: 10 }], sens: [{ time: '00:00', timeAsSeconds: 0, value: 50 }],
          basal: [{ time: '00:00', timeAsSeconds: 0, value: 0.8 }, { time: '12:00', timeAsSeconds: 43200, value: 1.1 }],
          target_low: [{ time: '00:00', timeAsSeconds: 0, value: 100 }], target_high: [{ time: '00:00', timeAsSeconds: 0, value: 120 }],
          units: 'mg/dl', timezone: 'UTC', loopSetting: 'keep-me',
        },
        Sport: { dia: 5, carbratio: [{ time: '00:00', value: 12 }], sens: [{ time: '00:00', value: 60 }], basal: [{ time: '00:00', value: 0.5 }], target_low: [{ time: '00:00', value: 140 }], target_high: [{ time: '00:00', value: 160 }], units: 'mg/dl', timezone: 'UTC' },
      },
    });
    assert.ok(aaps && aaps._id);
    const before = await get(srv, '/api/v1/profile.json?count=10');

    // The main page, 24 hours: both of the profile's basal steps are in view.
    const main = await secretPage(srv, { width: 1366, height: 800 });
    await main.page.goto(srv.base + '/');
    await main.page.click('#hours [data-hours="24"]');
    await main.page.waitForFunction(() => Number(document.querySelector('#chart').dataset.basal) >= 2);

    const b = await secretPage(srv);
    try {
      const { page } = b;
      await page.goto(srv.base + '/profile');
      await page.waitForSelector('#page:not([hidden])');
      // The history: both records, the newest (in force) first.
      assert.equal(await page.locator('#pe-record option').count(), 2);
      assert.match(await page.locator('#pe-record option').first().textContent(), /In force/);
      assert.equal(await page.inputValue('#pe-name'), 'Home');
      assert.equal(await page.locator('#pe-name-select option').count(), 2);
      // Validation: a row out of order, a value that is not positive.
      const basal = page.locator('.sched-box').first();
      await basal.locator('tbody tr').nth(1).locator('input.t').fill('00:00');
      await page.click('#pe-save');
      assert.match(await page.textContent('#pe-error'), /times must go up/);
      await basal.locator('tbody tr').nth(1).locator('input.t').fill('12:00');
      await basal.locator('tbody tr').nth(1).locator('input.value').fill('0');
      await page.click('#pe-save');
      assert.match(await page.textContent('#pe-error'), /Basal rates at 12:00: enter a number above 0/);
      // The edit: the 12:00 rate becomes the night's, one step for the whole day.
      await basal.locator('tbody tr').nth(1).locator('input.value').fill('0.8');
      await shot(page, 'profile-editor');
      await save(page, '#pe-save');
      assert.equal(await page.textContent('#pe-error'), '');

      const after = await get(srv, '/api/v1/profile.json?count=10');
      assert.equal(after.length, before.length, 'an edit replaces its record, as Nightscout\'s editor does');
      const doc = after.find((d) => d._id === aaps._id);
      assert.deepEqual(doc.store.Home.basal, [{ time: '00:00', timeAsSeconds: 0, value: 0.8 }, { time: '12:00', timeAsSeconds: 43200, value: 0.8 }]);
      assert.equal(doc.store.Home.loopSetting, 'keep-me');
      assert.deepEqual(doc.aapsVersion, { v: '3.2' });
      assert.equal(doc.app, 'AAPS');
      assert.equal(doc.identifier, aaps.identifier);
      assert.deepEqual(doc.store.Sport, {
        dia: 5, carbratio: [{ time: '00:00', value: 12 }], sens: [{ time: '00:00', value: 60 }], basal: [{ time: '00:00', value: 0.5 }],
        target_low: [{ time: '00:00', value: 140 }], target_high: [{ time: '00:00', value: 160 }], units: 'mg/dl', timezone: 'UTC',
      }, 'a profile not opened is sent back as it was');
      assert.equal(doc.startDate, aaps.startDate, 'the start stays as stored');

      // The main page's basal line follows, live.
      await main.page.waitForFunction(() => Number(document.querySelector('#chart').dataset.basal) === 1, null, { timeout: 5000 });

      // A new record from this one: a second document, the history grows.
      await page.click('#pe-record-new');
      await page.fill('#pe-dia', '6');
      await save(page, '#pe-save');
      const more = await get(srv, '/api/v1/profile.json?count=10');
      assert.equal(more.length, before.length + 1);
      assert.equal(more[0].store.Home.dia, 6);
      assert.equal(more[0].store.Home.loopSetting, 'keep-me');
      assert.notEqual(more[0]._id, aaps._id);
      assert.equal(await page.locator('#pe-record option').count(), 3);
      clean(b);
      clean(main);
    } finally {
      await b.close();
      await main.close();
    }
  });

  test('a reader sees the profiles without Save; adding a profile and a time row', async () => {
    const reader = await openBrowser(srv);
    try {
      await reader.page.goto(srv.base + '/profile');
      await reader.page.waitForSelector('#page:not([hidden])');
      assert.ok(await reader.page.locator('#pe-save').isHidden());
      assert.ok(await reader.page.evaluate(() => document.querySelector('#pe-editor').disabled));
      assert.equal(await reader.page.textContent('#signout'), 'Sign in');
      // The permission checks a reader fails are the only refusals.
      clean(reader, ['status of 401']);
    } finally {
      await reader.close();
    }
    const b = await secretPage(srv, { width: 390, height: 844 });
    try {
      const { page } = b;
      await page.goto(srv.base + '/profile');
      await page.waitForSelector('#page:not([hidden])');
      const count = (await get(srv, '/api/v1/profile.json?count=10')).length;
      await page.click('#pe-profile-add');
      assert.equal(await page.inputValue('#pe-name'), 'New profile');
      await page.click('#pe-save');
      assert.match(await page.textContent('#pe-error'), /New profile, Basal rates at 00:00: enter a number above 0/);
      await page.fill('#pe-name', 'Night');
      await page.fill('#pe-dia', '4.5');
      const boxes = page.locator('.sched-box');
      await boxes.nth(0).locator('input.value').first().fill('0.6');
      await boxes.nth(0).getByRole('button', { name: 'Add a time' }).click();
      await boxes.nth(0).locator('tbody tr').nth(1).locator('input.t').fill('06:30');
      await boxes.nth(0).locator('tbody tr').nth(1).locator('input.value').fill('0.9');
      await boxes.nth(1).locator('input.value').first().fill('9');
      await boxes.nth(2).locator('input.value').first().fill('45');
      await boxes.nth(3).locator('input.low').first().fill('90');
      await boxes.nth(3).locator('input.high').first().fill('110');
      await shot(page, 'profile-editor-phone');
      await save(page, '#pe-save');
      const docs = await get(srv, '/api/v1/profile.json?count=10');
      assert.equal(docs.length, count);
      const night = docs[0].store.Night;
      assert.deepEqual(night.basal.map((e) => [e.time, e.value, e.timeAsSeconds]), [['00:00', 0.6, 0], ['06:30', 0.9, 23400]]);
      assert.deepEqual([night.dia, night.carbratio[0].value, night.sens[0].value, night.target_low[0].value, night.target_high[0].value], [4.5, 9, 45, 90, 110]);
      assert.equal(docs[0].defaultProfile, 'Home');
      // Renaming the profile in force renames it there too.
      await page.selectOption('#pe-name-select', 'Home');
      await page.fill('#pe-name', 'Home base');
      await save(page, '#pe-save');
      const renamed = (await get(srv, '/api/v1/profile.json?count=10'))[0];
      assert.equal(renamed.defaultProfile, 'Home base');
      assert.deepEqual(Object.keys(renamed.store).sort(), ['Home base', 'Night', 'Sport']);
      assert.equal(renamed.store['Home base'].loopSetting, 'keep-me');
      clean(b);
    } finally {
      await b.close();
    }
  });
});

describe('food editor', () => {
  test('add, edit (unknown fields kept) and delete a food; a quick pick of two foods; the careportal picks it and fills the carbs', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'readable' });
    await seedDay(srv, Date.now());
    const [bread] = await srv.post('/api/v1/food', { type: 'food', name: 'Bread', category: 'Bakery', portion: 50, unit: 'g', carbs: 24, gi: 2, source: 'imported', barcode: { ean: '4001' } });
    const b = await secretPage(srv);
    const { page } = b;
    page.on('dialog', (d) => d.accept());
    try {
      await page.goto(srv.base + '/food');
      await page.waitForSelector('#page:not([hidden])');
      assert.equal(await page.locator('#fe-list tr').count(), 1);
      // Add.
      await page.fill('#fe-name', 'Apple');
      await page.fill('#fe-category', 'Fruit');
      await page.fill('#fe-portion', '150');
      await page.fill('#fe-carbs', '-3');
      await save(page, '#fe-save').catch(() => {});
      assert.match(await page.textContent('#fe-error'), /Carbs: enter a number of 0 or more/);
      await page.fill('#fe-carbs', '18');
      await page.selectOption('#fe-gi', '1');
      await save(page, '#fe-save');
      const foods = async () => (await get(srv, '/api/v1/food.json')).filter((f) => f.type === 'food');
      const apple = (await foods()).find((f) => f.name === 'Apple');
      assert.deepEqual([apple.category, apple.portion, apple.unit, apple.carbs, apple.gi, apple.fat], ['Fruit', 150, 'g', 18, 1, 0]);
      await page.waitForFunction(() => document.querySelectorAll('#fe-list tr').length === 2);
      // Search.
      await page.fill('#fe-filter', 'app');
      assert.equal(await page.locator('#fe-list tr').count(), 1);
      await page.fill('#fe-filter', '');
      // Edit Bread: its own fields stay.
      await page.click('button[aria-label="Edit Bread"]');
      assert.equal(await page.inputValue('#fe-carbs'), '24');
      await page.fill('#fe-carbs', '25');
      await save(page, '#fe-save');
      const bread2 = (await foods()).find((f) => f._id === bread._id);
      assert.equal(bread2.carbs, 25);
      assert.equal(bread2.source, 'imported');
      assert.deepEqual(bread2.barcode, { ean: '4001' });
      assert.equal((await foods()).length, 2, 'an edit is not a new food');

      // A quick pick: two apples and a bread.
      await page.click('#qp-add');
      await page.fill('.qp input[type=text]', 'Breakfast');
      await page.selectOption('.qp select', { label: 'Apple (18 g)' });
      await page.fill('.qp input.portions', '2');
      await page.dispatchEvent('.qp input.portions', 'change');
      await page.selectOption('.qp select', { label: 'Bread (25 g)' });
      assert.equal(await page.textContent('.qp .qp-carbs'), '61 g carbs');
      await shot(page, 'food-editor');
      await save(page, '#qp-save');
      const [pick] = (await get(srv, '/api/v1/food/quickpicks.json'));
      assert.equal(pick.name, 'Breakfast');
      assert.equal(pick.carbs, 61);
      assert.equal(pick.position, 0);
      assert.deepEqual(pick.foods.map((f) => [f.name, f.portions]), [['Apple', 2], ['Bread', 1]]);

      // Delete Apple.
      await page.click('button[aria-label="Delete Apple"]');
      await page.waitForFunction(() => document.querySelectorAll('#fe-list tr').length === 1);
      assert.deepEqual((await foods()).map((f) => f.name), ['Bread']);

      // The careportal offers the quick pick and the foods; a pick fills the carbs.
      await page.goto(srv.base + '/');
      await page.waitForSelector('#btn-add:not([hidden])');
      await page.click('#btn-add');
      await page.selectOption('#cp-event', 'Meal Bolus');
      await page.waitForSelector('#cp-food:visible');
      assert.deepEqual(await page.locator('#cp-food option').allTextContents(), ['\u2014', 'Breakfast (61 g)', 'Bread, 50 g (25 g)']);
      await page.selectOption('#cp-food', { label: 'Breakfast (61 g)' });
      assert.equal(await page.inputValue('#cp-carbs'), '61');
      await page.fill('#cp-insulin', '6');
      await page.click('#careportal button[type=submit]');
      await page.waitForFunction(() => !document.querySelector('#careportal').open);
      const meal = (await get(srv, '/api/v1/treatments.json?find[insulin]=6'))[0];
      assert.equal(meal.carbs, 61);
      clean(b);
    } finally {
      await b.close();
    }
  });
});

describe('admin', () => {
  test('create a token in /admin and sign in with its address on a second page; roles; revoke; no admin page for a reader', async () => {
    const srv = await startServer({ AUTH_DEFAULT_ROLES: 'denied' });
    await seedDay(srv, Date.now());
    const admin = await secretPage(srv, { width: 1366, height: 800 });
    admin.page.on('dialog', (d) => d.accept());
    const follower = await openBrowser(srv);
    try {
      const { page } = admin;
      await page.goto(srv.base + '/admin');
      await page.waitForSelector('#page:not([hidden])');
      // Built-in roles are offered and cannot be deleted.
      assert.ok((await page.locator('#ad-subject-roles option').allTextContents()).includes('readable'));
      assert.match(await page.textContent('#ad-roles tr[data-role="admin"]'), /built in/);
      assert.match(await page.textContent('#ad-server'), /Database \(with its log\)\d/);
      assert.match(await page.textContent('#ad-server'), /Automatic backupsoff/);
      assert.match(await page.textContent('#ad-server'), /Backupsnone yet/);
      // A backup (SIGUSR1, as `systemctl kill -s USR1`) shows after a reload.
      srv.child.kill('SIGUSR1');
      for (let i = 0; i < 100 && !(await get(srv, '/api/v1/backups')).backups.length; i++) await new Promise((r) => setTimeout(r, 100));
      await page.reload();
      await page.waitForSelector('#page:not([hidden])');
      assert.match(await page.textContent('#ad-server'), /Backups1, newest /);

      await page.fill('#ad-subject-name', 'Anna phone');
      await page.selectOption('#ad-subject-roles', ['readable']);
      await page.click('#ad-subject-form button[type=submit]');
      await page.waitForSelector('#ad-subjects tr[data-subject="Anna phone"]');
      const url = await page.getAttribute('#ad-subjects tr[data-subject="Anna phone"] a.token-url', 'href');
      assert.match(url, new RegExp(`^${srv.base}/\\?token=annaphone-[0-9a-f]{16}$`));
      const token = new URL(url).searchParams.get('token');
      const [stored] = (await srv.request('GET', '/api/v2/authorization/subjects')).json.filter((s) => s.name === 'Anna phone');
      assert.deepEqual([stored.accessToken, stored.roles], [token, ['readable']]);
      await shot(page, 'admin');

      // The second page: a fresh browser opens the address and sees the data.
      await follower.page.goto(url);
      await follower.page.waitForFunction(() => /^\d+$/.test(document.querySelector('#bg-value').textContent));
      assert.equal(new URL(follower.page.url()).searchParams.get('token'), null, 'the token leaves the address');
      // A reader's token does not open /admin.
      await follower.page.goto(srv.base + '/admin');
      await follower.page.waitForSelector('#view-signin:not([hidden])');
      assert.equal(await follower.page.locator('#ad-subjects tr').count(), 0);

      // A role of one's own, then deleted.
      await page.fill('#ad-role-name', 'entries-reader');
      await page.fill('#ad-role-perms', 'api:entries:read api:entries,treatments:read');
      await page.click('#ad-role-form button[type=submit]');
      await page.waitForSelector('#ad-roles tr[data-role="entries-reader"]');
      const role = (await srv.request('GET', '/api/v2/authorization/roles')).json.find((r) => r.name === 'entries-reader');
      assert.deepEqual(role.permissions, ['api:entries:read', 'api:entries,treatments:read']);
      await page.click('button[aria-label="Delete role entries-reader"]');
      await page.waitForFunction(() => !document.querySelector('#ad-roles tr[data-role="entries-reader"]'));

      // Revoked: the token no longer reads.
      await page.click('button[aria-label="Revoke Anna phone"]');
      await page.waitForFunction(() => !document.querySelector('#ad-subjects tr[data-subject="Anna phone"]'));
      const r = await fetch(`${srv.base}/api/v1/entries.json?token=${token}`);
      assert.equal(r.status, 401);
      clean(admin);
      clean(follower, ['status of 401']);
    } finally {
      await admin.close();
      await follower.close();
    }
  });
});
