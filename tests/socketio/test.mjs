// Drives a running nightlite with the real socket.io-client, 4.x (Engine.IO 4) and 2.x
// (Engine.IO 3), both starting on polling and upgrading to websocket as they do by default.
// Usage: NIGHTLITE_URL=http://127.0.0.1:PORT NIGHTLITE_SECRET=... node test.mjs
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const clients = { '4.x': require('sio4'), '2.x': require('sio2') };
const URL = process.env.NIGHTLITE_URL;
const SECRET = process.env.NIGHTLITE_SECRET;
const SHA1 = createHash('sha1').update(SECRET).digest('hex');

let failed = 0;
function ok(cond, what) {
  if (!cond) throw new Error(what);
}
function waitFor(socket, event, pred = () => true, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    const on = (...args) => {
      if (pred(...args)) {
        clearTimeout(t);
        socket.off(event, on);
        resolve(args);
      }
    };
    socket.on(event, on);
  });
}
function emitAck(socket, event, payload, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ack for '${event}'`)), ms);
    socket.emit(event, payload, (reply) => { clearTimeout(t); resolve(reply); });
  });
}
async function rest(method, path, body, headers = {}) {
  const r = await fetch(URL + path, {
    method,
    headers: { 'content-type': 'application/json', 'api-secret': SHA1, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}
function tag() { return 'sio-' + Math.random().toString(16).slice(2, 10); }
function transportOf(socket) { return socket.io.engine.transport.name; }
async function upgraded(socket) {
  for (let i = 0; i < 50 && transportOf(socket) !== 'websocket'; i++) await new Promise(r => setTimeout(r, 100));
  ok(transportOf(socket) === 'websocket', `transport upgraded to websocket, is ${transportOf(socket)}`);
}

async function adminJwt() {
  const name = tag();
  ok((await rest('POST', '/api/v2/authorization/subjects', { name, roles: ['admin'] })).status === 200, 'subject created');
  const subj = (await rest('GET', '/api/v2/authorization/subjects')).body.find(s => s.name === name);
  const jwt = (await rest('GET', `/api/v2/authorization/request/${subj.accessToken}`, undefined, { 'api-secret': '' })).body.token;
  return { accessToken: subj.accessToken, jwt };
}

async function mainNamespace(io) {
  const socket = io(URL, { forceNew: true });
  try {
    await waitFor(socket, 'connect');
    const full = waitFor(socket, 'dataUpdate');
    const auth = await emitAck(socket, 'authorize', { client: 'test', secret: SHA1, history: 1 });
    ok(auth.read === true && auth.write === true && auth.write_treatment === true, `authorize ack ${JSON.stringify(auth)}`);
    const [data] = await full;
    ok(Array.isArray(data.sgvs) && data.delta === false, 'full dataUpdate');
    await upgraded(socket);
    const device = tag();
    const delta = waitFor(socket, 'dataUpdate', d => d.delta && (d.sgvs || []).some(s => s.device === device));
    const r = await rest('POST', '/api/v1/entries', [{ type: 'sgv', sgv: 123, date: Date.now(), device }]);
    ok(r.status === 200, 'v1 POST');
    const [d] = await delta;
    ok(d.sgvs.find(s => s.device === device).mgdl === 123, 'delta sgv mgdl');
    const denied = io(URL, { forceNew: true });
    await waitFor(denied, 'connect');
    denied.emit('authorize', { secret: '0'.repeat(40) });
    await waitFor(denied, 'disconnect');
    denied.close();
  } finally {
    socket.close();
  }
}

async function storageNamespace(io) {
  const { accessToken, jwt } = await adminJwt();
  const socket = io(URL + '/storage', { forceNew: true });
  try {
    await waitFor(socket, 'connect');
    const bad = await emitAck(socket, 'subscribe', { accessToken: 'nobody-0000000000000000' });
    ok(bad.success === false, 'bad token refused');
    const sub = await emitAck(socket, 'subscribe', { accessToken, collections: ['treatments', 'entries'] });
    ok(sub.success === true && sub.collections.includes('treatments'), `subscribe ${JSON.stringify(sub)}`);
    await upgraded(socket);
    const bearer = { authorization: 'Bearer ' + jwt, 'api-secret': '' };
    const device = tag();
    const created = waitFor(socket, 'create', e => e.colName === 'treatments' && e.doc.device === device);
    const c = await rest('POST', '/api/v3/treatments', { date: Date.now(), app: 'sio', device, eventType: 'Note', notes: 'a' }, bearer);
    ok(c.status === 201, `v3 create ${c.status}`);
    const [ce] = await created;
    ok(ce.doc.identifier === c.body.identifier && typeof ce.doc.srvModified === 'number', 'create event doc');
    const updated = waitFor(socket, 'update', e => e.doc.identifier === c.body.identifier);
    ok((await rest('PATCH', `/api/v3/treatments/${c.body.identifier}`, { notes: 'b' }, bearer)).status === 200, 'patch');
    const [ue] = await updated;
    ok(ue.doc.notes === 'b', 'update event');
    const deleted = waitFor(socket, 'delete', e => e.identifier === c.body.identifier);
    ok((await rest('DELETE', `/api/v3/treatments/${c.body.identifier}`, undefined, bearer)).status === 200, 'delete');
    await deleted;
    const v1created = waitFor(socket, 'create', e => e.colName === 'entries' && e.doc.device === device);
    await rest('POST', '/api/v1/entries', [{ type: 'sgv', sgv: 99, date: Date.now() - 1000, device }]);
    await v1created;
  } finally {
    socket.close();
  }
}

async function alarmNamespace(io) {
  const socket = io(URL + '/alarm', { forceNew: true });
  try {
    await waitFor(socket, 'connect');
    const sub = await emitAck(socket, 'subscribe', { secret: SHA1 });
    ok(sub.success === true, `alarm subscribe ${JSON.stringify(sub)}`);
    await upgraded(socket);
    const urgent = waitFor(socket, 'urgent_alarm');
    await rest('POST', '/api/v1/entries', [{ type: 'sgv', sgv: 350, date: Date.now(), device: tag() }]);
    const [n] = await urgent;
    ok(n.level === 2 && /HIGH/.test(n.title), `urgent alarm ${JSON.stringify(n)}`);
    const cleared = waitFor(socket, 'clear_alarm');
    // A short silence, so the next run's alarm sounds again.
    socket.emit('ack', 2, 'default', 300);
    await cleared;
    await rest('POST', '/api/v1/entries', [{ type: 'sgv', sgv: 110, date: Date.now() + 1000, device: tag() }]);
    await new Promise(r => setTimeout(r, 400));
  } finally {
    socket.close();
  }
}

for (const [version, io] of Object.entries(clients)) {
  for (const [name, run] of [['main namespace', mainNamespace], ['/storage', storageNamespace], ['/alarm', alarmNamespace]]) {
    const t = Date.now();
    try {
      await run(io);
      console.log(`PASS socket.io-client ${version} ${name} (${Date.now() - t} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL socket.io-client ${version} ${name}: ${e.message}`);
    }
  }
}
console.log(failed ? `${failed} failed` : 'all passed');
process.exit(failed ? 1 : 0);
