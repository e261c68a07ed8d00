// Helpers the browser tests share: the nightlite server with fixture data, Debian's chromium
// through playwright-core, screenshots and timings. Each *.test.mjs imports what it needs.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const BIN = process.env.NIGHTLITE_BIN;
export const OUT = process.env.NIGHTLITE_ARTIFACTS || 'target/browser';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SECRET = 'browser-test-secret-0123';
export const SECRET_SHA1 = createHash('sha1').update(SECRET).digest('hex');
export const MIN = 60000;
export const MMOL = 18.01559;
mkdirSync(OUT, { recursive: true });
if (!BIN) throw new Error('set NIGHTLITE_BIN to the nightlite binary (run.sh does)');

// ---------------------------------------------------------------------------------------------
// Servers

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const servers = [];

/** A nightlite on a free port with its own data directory and settings. */
export async function startServer(env = {}, { port, dir } = {}) {
  port = port || (await freePort());
  dir = dir || mkdtempSync(join(tmpdir(), 'nightlite-browser-'));
  const child = spawn(BIN, ['serve'], {
    env: {
      ...process.env,
      API_SECRET: SECRET,
      PORT: String(port),
      HOSTNAME: '127.0.0.1',
      NIGHTLITE_DATA_DIR: dir,
      NIGHTLITE_LOG: 'warn',
      AUTH_FAIL_DELAY: '50',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const base = `http://127.0.0.1:${port}`;
  const srv = {
    base,
    port,
    dir,
    child,
    async stop() {
      if (child.exitCode == null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    },
    async request(method, path, body, headers = {}) {
      const res = await fetch(base + path, {
        method,
        headers: { 'api-secret': SECRET_SHA1, 'Content-Type': 'application/json', Accept: 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let json = null;
      try {
        json = JSON.parse(text);
      } catch {
        // not JSON
      }
      return { status: res.status, headers: res.headers, text, json };
    },
    async post(path, body) {
      const r = await srv.request('POST', path, body);
      assert.equal(r.status, 200, `POST ${path}: ${r.text}`);
      return r.json;
    },
  };
  servers.push(srv);
  const deadline = Date.now() + 20000;
  for (;;) {
    if (child.exitCode != null) throw new Error(`nightlite exited: ${stderr}`);
    try {
      const r = await fetch(`${base}${env.BASE_PATH || ''}/api/versions`);
      if (r.ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`nightlite did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return srv;
}

after(async () => {
  for (const s of servers) {
    await s.stop();
    rmSync(s.dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Fixtures

export const iso = (ms) => new Date(ms).toISOString();
export const sgv = (mills, value, direction = 'Flat') => ({
  type: 'sgv', sgv: value, date: mills, dateString: iso(mills), device: 'browser-test', direction,
});

/** 24 hours of 1-minute readings ending 30 s ago, the newest 123 and five minutes earlier 118. */
export function day(now) {
  const out = [];
  for (let i = 0; i < 1440; i++) {
    const mills = now - 30000 - i * MIN;
    let v = Math.round(150 + 70 * Math.sin(i / 120) + ((i * 7) % 11));
    if (i === 0) v = 123;
    if (i === 5) v = 118;
    out.push(sgv(mills, v));
  }
  return out;
}

export async function seedDay(srv, now) {
  const readings = day(now);
  // Newest first in the fixture; the server orders them by date.
  // Two batches: well under the body limit, and exercising batch replies.
  await srv.post('/api/v1/entries', readings.slice(0, 720));
  await srv.post('/api/v1/entries', readings.slice(720));
  await srv.post('/api/v1/treatments', [
    { eventType: 'Meal Bolus', carbs: 45, insulin: 4.5, created_at: iso(now - 90 * MIN), enteredBy: 'fixture' },
    { eventType: 'Note', notes: 'walked the dog', created_at: iso(now - 60 * MIN) },
    { eventType: 'Temp Basal', absolute: 1.2, duration: 30, created_at: iso(now - 45 * MIN) },
    { eventType: 'Temporary Target', targetTop: 140, targetBottom: 120, duration: 60, units: 'mg/dl', created_at: iso(now - 30 * MIN) },
    { eventType: 'Site Change', created_at: iso(now - 50 * 60 * MIN) },
  ]);
  await srv.post('/api/v1/profile', {
    defaultProfile: 'Default', startDate: iso(now - 30 * 24 * 60 * MIN), units: 'mg/dl',
    store: { Default: { dia: 4, timezone: 'UTC', units: 'mg/dl', basal: [{ time: '00:00', value: 0.8 }, { time: '12:00', value: 1.1 }] } },
  });
  const predicted = Array.from({ length: 24 }, (_, k) => 123 + k * 2);
  await srv.post('/api/v1/devicestatus', {
    device: 'loop://iPhone',
    created_at: iso(now - 2 * MIN),
    loop: {
      timestamp: iso(now - 2 * MIN),
      iob: { iob: 1.25, timestamp: iso(now - 2 * MIN) },
      cob: { cob: 20.4, timestamp: iso(now - 2 * MIN) },
      predicted: { startDate: iso(now - 30000), values: predicted },
      enacted: { rate: 0.8, duration: 30, timestamp: iso(now - 2 * MIN), received: true },
    },
    pump: { reservoir: 85.5, battery: { percent: 60 }, clock: iso(now - 2 * MIN) },
    uploader: { battery: 15, name: 'iPhone' },
  });
  return readings;
}

// ---------------------------------------------------------------------------------------------
// Browser

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/** A fresh browser profile (own user-data-dir: nothing remembered between tests). */
export async function openBrowser(srv, { width = 412, height = 915, touch = false } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'nightlite-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width, height },
    deviceScaleFactor: 2,
    hasTouch: touch,
  });
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  const foreign = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(srv.base) && !u.startsWith(srv.base.replace('http', 'ws')) && !u.startsWith('data:')) foreign.push(u);
  });
  return {
    context,
    page,
    problems,
    foreign,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A page signed in with the API secret (as after typing it once). */
export async function secretPage(srv, opts) {
  const b = await openBrowser(srv, opts);
  await b.context.addInitScript((hash) => localStorage.setItem('nl.secretHash', hash), SECRET_SHA1);
  return b;
}

export async function shot(page, name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}

/** When the page first drew the chart with data, and what it downloaded to get there. */
export async function timings(page) {
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const mark = (name) => {
      const m = performance.getEntriesByName(name)[0];
      return m ? Math.round(m.startTime) : null;
    };
    return {
      firstRenderMs: Number(document.documentElement.dataset.firstRender),
      settingsMs: mark('nl:settings'),
      snapshotMs: mark('nl:snapshot'),
      domContentLoadedMs: Math.round(nav.domContentLoadedEventEnd),
      transferBytes: res.reduce((n, r) => n + (r.transferSize || 0), nav.transferSize || 0),
    };
  });
}

export const text = async (page, sel) => (await page.locator(sel).textContent()).replace(/\s+/g, ' ').trim();

/** No script errors (CSP refusals included) and nothing fetched from another origin. */
export function clean(b, allow = []) {
  const problems = b.problems.filter((p) => !allow.some((a) => p.includes(a)));
  assert.deepEqual(problems, [], 'console errors');
  assert.deepEqual(b.foreign, [], 'requests to another origin');
}
