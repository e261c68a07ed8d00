// Correcting treatments: the Edit and Delete buttons (under a chart marker's details and on
// each row of the Treatments view), and the confirmation before a delete. Deletes go through
// DELETE /api/v1/treatments/<_id>; the server's live update then removes the treatment from
// every open page, this one's included. Buttons appear only for callers the API would let.

import { api } from './auth.js';

export class TreatmentActions {
  /**
   * `may()` → {update, delete} for the signed-in caller; `edit(t)` opens the careportal on t;
   * `describe(t)` and `when(t)` make the confirmation's text; `done(text)` tells the user.
   */
  constructor(dialog, { may, edit, describe, when, done }) {
    this.dialog = dialog;
    this.may = may;
    this.editFn = edit;
    this.describe = describe;
    this.when = when;
    this.done = done;
    this.target = null;
    this.text = dialog.querySelector('.confirm-text');
    this.error = dialog.querySelector('.form-error');
    this.button = dialog.querySelector('[data-delete]');
    dialog.querySelector('[data-close]').addEventListener('click', () => dialog.close());
    this.button.addEventListener('click', () => this.remove());
  }

  /** Edit and Delete buttons for t, or nothing when the caller may do neither. */
  buttons(t) {
    const may = this.may();
    const out = [];
    if (!t || !t._id) return out;
    const button = (label, action, fn) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = label;
      b.dataset.action = action;
      b.addEventListener('click', (e) => {
        e.stopPropagation();
        fn(t);
      });
      return b;
    };
    if (may.update) out.push(button('Edit', 'edit', (x) => this.editFn(x)));
    if (may.delete) out.push(button('Delete', 'delete', (x) => this.confirm(x)));
    return out;
  }

  confirm(t) {
    this.target = t;
    const rest = this.describe(t);
    this.text.textContent = `Delete ${t.eventType || 'this treatment'} at ${this.when(t)}${rest ? ` (${rest})` : ''}? Every app that reads this site loses it.`;
    this.error.textContent = '';
    this.button.disabled = false;
    this.dialog.showModal();
    this.dialog.querySelector('[data-close]').focus();
  }

  async remove() {
    const t = this.target;
    if (!t) return;
    this.button.disabled = true;
    this.error.textContent = '';
    try {
      await api(`/api/v1/treatments/${encodeURIComponent(t._id)}`, { method: 'DELETE' });
      this.dialog.close();
      this.done(`${t.eventType || 'Treatment'} deleted`);
    } catch (e) {
      // The server's own words: a refused permission names what is missing.
      this.error.textContent = `Not deleted: ${e.message}`;
    } finally {
      this.button.disabled = false;
    }
  }
}
