// Building blocks of the report sections: a card with a heading and a plain table.

/** A table of `rows` (arrays of cell texts) under `head`; the first cell of a row is its header. */
export function table(head, rows, caption) {
  const t = document.createElement('table');
  t.className = 'r-table';
  if (caption) t.createCaption().textContent = caption;
  const tr = t.createTHead().insertRow();
  for (const h of head) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = h;
    tr.append(th);
  }
  const body = t.createTBody();
  for (const row of rows) {
    const r = body.insertRow();
    row.forEach((cell, i) => {
      const c = document.createElement(i ? 'td' : 'th');
      if (!i) c.scope = 'row';
      c.textContent = cell;
      r.append(c);
    });
  }
  return t;
}

/** A report section: a card with a heading, returned so the caller fills it. */
export function section(parent, id, title) {
  const card = document.createElement('section');
  card.className = 'card r-section';
  card.id = id;
  const h = document.createElement('h3');
  h.textContent = title;
  card.append(h);
  parent.append(card);
  return card;
}
