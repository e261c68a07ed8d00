// The food editor at /food (Nightscout's address): the food database (`type: food`) with add,
// edit and delete, and quick picks (`type: quickpick`: several foods in portions, their carbs
// summed) that the careportal offers. Through /api/v1/food; an edit sends the stored document
// back with the changed fields, so fields this page does not know stay.

import { $, api, can, el, refusal, say, start } from './page.js';

/** Nightscout's position for a hidden quick pick (lib/food/food.js). */
const HIDDEN = 99999;
const NUMBERS = ['portion', 'carbs', 'fat', 'protein', 'energy'];
const TEXTS = ['name', 'category', 'subcategory'];

const state = { foods: [], picks: [], removed: [], editing: null, may: { create: false, update: false, delete: false } };

const clone = (v) => JSON.parse(JSON.stringify(v));
const num = (v) => {
  const n = Number(String(v ?? '').replace(',', '.'));
  return Number.isFinite(n) ? n : 0;
};
/** Nightscout's page stores form fields, so `hidden` may be the string "true". */
const yes = (v) => v === true || v === 'true';
const round = (n) => Math.round(n * 10) / 10;

function pickCarbs(q) {
  return round((Array.isArray(q.foods) ? q.foods : []).reduce((s, f) => s + num(f.carbs) * (f.portions == null ? 1 : num(f.portions)), 0));
}

// ---------------------------------------------------------------------------------------------
// The food list

function portionText(f) {
  return f.portion ? `${f.portion} ${f.unit || ''}`.trim() : '';
}

function renderFoods() {
  const q = $('fe-filter').value.trim().toLowerCase();
  const cat = $('fe-filter-cat').value;
  const rows = state.foods
    .filter((f) => (!cat || f.category === cat) && (!q || String(f.name || '').toLowerCase().includes(q)))
    .sort((a, b) => String(a.name || '').localeCompare(String(b.name || '')))
    .map((f) => el('tr', { 'data-id': f._id },
      el('td', { text: f.name || '' }),
      el('td', { text: portionText(f) }),
      el('td', { text: f.carbs != null ? `${f.carbs} g` : '' }),
      el('td', { text: f.gi ?? '' }),
      el('td', { text: [f.category, f.subcategory].filter(Boolean).join(' / ') }),
      el('td', {}, el('div', { class: 'cell-actions' },
        state.may.update ? el('button', { type: 'button', text: 'Edit', 'aria-label': `Edit ${f.name}`, onclick: () => editFood(f) }) : null,
        state.may.delete ? el('button', { type: 'button', class: 'danger', text: 'Delete', 'aria-label': `Delete ${f.name}`, onclick: () => deleteFood(f) }) : null))));
  $('fe-list').replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colspan: 6, class: 'muted', text: state.foods.length ? 'No food matches.' : 'No food stored yet.' }))]));
}

function renderCategories() {
  const cats = [...new Set(state.foods.map((f) => f.category).filter(Boolean))].sort();
  const subs = [...new Set(state.foods.map((f) => f.subcategory).filter(Boolean))].sort();
  const chosen = $('fe-filter-cat').value;
  $('fe-filter-cat').replaceChildren(new Option('All', ''), ...cats.map((c) => new Option(c, c, false, c === chosen)));
  $('fe-cats').replaceChildren(...cats.map((c) => new Option(c)));
  $('fe-subcats').replaceChildren(...subs.map((c) => new Option(c)));
}

function editFood(f) {
  state.editing = f;
  for (const k of TEXTS) $(`fe-${k}`).value = f[k] ?? '';
  for (const k of NUMBERS) $(`fe-${k}`).value = f[k] ?? '';
  $('fe-unit').value = ['g', 'ml', 'pcs', 'oz'].includes(f.unit) ? f.unit : 'g';
  $('fe-gi').value = ['1', '2', '3'].includes(String(f.gi)) ? String(f.gi) : '2';
  $('fe-form-title').textContent = `Edit ${f.name || 'food'}`;
  $('fe-save').textContent = 'Save food';
  $('fe-error').textContent = '';
  $('fe-editor').disabled = !state.may.update;
  $('fe-name').focus();
}

function clearForm() {
  state.editing = null;
  $('fe-form').reset();
  $('fe-form-title').textContent = 'Add food';
  $('fe-save').textContent = 'Add food';
  $('fe-error').textContent = '';
  $('fe-editor').disabled = !state.may.create;
}

/** The form's food: the stored document (when editing) with the form's fields set. */
function formFood() {
  const name = $('fe-name').value.trim();
  if (!name) return 'Enter a name';
  const f = state.editing ? clone(state.editing) : { type: 'food' };
  for (const k of TEXTS) f[k] = $(`fe-${k}`).value.trim();
  f.name = name;
  for (const k of NUMBERS) {
    const raw = $(`fe-${k}`).value.trim().replace(',', '.');
    const v = raw === '' ? 0 : Number(raw);
    if (!Number.isFinite(v) || v < 0) return `${k[0].toUpperCase()}${k.slice(1)}: enter a number of 0 or more`;
    f[k] = v;
  }
  f.unit = $('fe-unit').value;
  f.gi = Number($('fe-gi').value);
  return f;
}

async function saveFood() {
  const f = formFood();
  $('fe-error').textContent = typeof f === 'string' ? f : '';
  if (typeof f === 'string') return;
  try {
    if (state.editing) await api('/api/v1/food', { method: 'PUT', body: f });
    else await api('/api/v1/food', { method: 'POST', body: f });
    say(`Saved ${f.name}.`);
    clearForm();
    await reload();
  } catch (e) {
    $('fe-error').textContent = refusal(e, 'save the food');
  }
}

async function deleteFood(f) {
  if (!window.confirm(`Delete ${f.name}${f.carbs != null ? ` (${f.carbs} g carbs)` : ''}?`)) return;
  try {
    await api(`/api/v1/food/${encodeURIComponent(f._id)}`, { method: 'DELETE' });
    say(`Deleted ${f.name}.`);
    if (state.editing && state.editing._id === f._id) clearForm();
    await reload();
  } catch (e) {
    say(refusal(e, 'delete the food'), true);
  }
}

// ---------------------------------------------------------------------------------------------
// Quick picks: edited in place, saved together (their order is their position)

function renderPicks() {
  const write = state.may.update;
  const showHidden = $('qp-hidden').checked;
  const cards = state.picks.map((q, i) => {
    if (yes(q.hidden) && !showHidden) return null;
    const foods = Array.isArray(q.foods) ? q.foods : (q.foods = []);
    const name = el('input', { type: 'text', value: q.name || '', 'aria-label': 'Quick pick name', disabled: !write, oninput: (e) => (q.name = e.target.value) });
    const check = (key, label) => el('label', { class: 'check' }, el('input', {
      type: 'checkbox', checked: yes(q[key]), disabled: !write,
      onchange: (e) => {
        q[key] = e.target.checked;
        if (key === 'hidden') renderPicks();
      },
    }), label);
    const list = el('ul', {}, ...foods.map((f, j) => el('li', {},
      `${f.name} (${num(f.carbs)} g) \u00d7 `,
      el('input', {
        type: 'number', inputmode: 'decimal', min: '0', step: 'any', value: f.portions ?? 1, class: 'portions', 'aria-label': `Portions of ${f.name}`, disabled: !write,
        onchange: (e) => {
          f.portions = num(e.target.value);
          renderPicks();
        },
      }),
      write ? el('button', { type: 'button', text: '\u2212', 'aria-label': `Remove ${f.name}`, onclick: () => { foods.splice(j, 1); renderPicks(); } }) : null)));
    const add = write ? el('select', {
      'aria-label': `Add a food to ${q.name || 'the quick pick'}`,
      onchange: (e) => {
        const f = state.foods.find((x) => x._id === e.target.value);
        if (f) foods.push({ ...clone(f), portions: 1 });
        renderPicks();
      },
    }, new Option('Add a food\u2026', ''), ...state.foods.map((f) => new Option(`${f.name} (${f.carbs ?? 0} g)`, f._id))) : null;
    return el('div', { class: 'qp', 'data-pick': q._id || '' },
      el('div', { class: 'qp-head' }, name,
        write ? el('button', { type: 'button', text: '\u2191', 'aria-label': 'Move to the top', disabled: i === 0, onclick: () => { state.picks.unshift(...state.picks.splice(i, 1)); renderPicks(); } }) : null,
        state.may.delete ? el('button', { type: 'button', class: 'danger', text: 'Delete', 'aria-label': `Delete quick pick ${q.name}`, onclick: () => { if (q._id) state.removed.push(q._id); state.picks.splice(i, 1); renderPicks(); } }) : null),
      el('div', { class: 'qp-head' }, check('hidden', 'Hidden'), check('hideafteruse', 'Hide after use'), el('strong', { class: 'qp-carbs', text: `${pickCarbs(q)} g carbs` })),
      list, add);
  }).filter(Boolean);
  const hidden = state.picks.filter((q) => yes(q.hidden)).length;
  $('qp-list').replaceChildren(...(cards.length ? cards : [el('p', { class: 'muted', text: 'No quick picks.' })]));
  $('qp-hidden').parentElement.lastChild.textContent = ` Show hidden${hidden ? ` (${hidden})` : ''}`;
  $('qp-save').hidden = !write;
  $('qp-add').hidden = !state.may.create;
}

async function savePicks() {
  try {
    for (const id of state.removed) await api(`/api/v1/food/${encodeURIComponent(id)}`, { method: 'DELETE' });
    state.removed = [];
    const visible = state.picks.filter((q) => !yes(q.hidden));
    for (const q of state.picks) {
      q.position = yes(q.hidden) ? HIDDEN : visible.indexOf(q);
      q.carbs = pickCarbs(q);
      if (q._id) await api('/api/v1/food', { method: 'PUT', body: q });
      else await api('/api/v1/food', { method: 'POST', body: q });
    }
    say('Saved the quick picks.');
    await reload();
  } catch (e) {
    say(refusal(e, 'save the quick picks'), true);
  }
}

// ---------------------------------------------------------------------------------------------

async function reload() {
  const all = await api('/api/v1/food.json');
  const docs = Array.isArray(all) ? all : [];
  state.foods = docs.filter((d) => d && d.type === 'food');
  state.picks = docs.filter((d) => d && d.type === 'quickpick').sort((a, b) => num(a.position) - num(b.position));
  state.removed = [];
  renderCategories();
  renderFoods();
  renderPicks();
}

async function load() {
  const [create, update, del] = await Promise.all([can('api:food:create'), can('api:food:update'), can('api:food:delete')]);
  state.may = { create, update, delete: del };
  await reload();
  clearForm();
  $('fe-form').hidden = !create && !update;
}

$('fe-filter').addEventListener('input', renderFoods);
$('fe-filter-cat').addEventListener('change', renderFoods);
$('fe-clear').addEventListener('click', clearForm);
$('fe-form').addEventListener('submit', (e) => {
  e.preventDefault();
  saveFood();
});
$('qp-hidden').addEventListener('change', renderPicks);
$('qp-add').addEventListener('click', () => {
  state.picks.unshift({ type: 'quickpick', name: 'New quick pick', foods: [], carbs: 0, hideafteruse: false, hidden: false, position: 0 });
  renderPicks();
  $('qp-list').querySelector('input').focus();
});
$('qp-save').addEventListener('click', savePicks);

start(load);
