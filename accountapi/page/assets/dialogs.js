// Modal dialogs (native <dialog>: focus moves in, Escape closes, the rest of the page is inert),
// the confirmation every destructive action asks for, and the step-up ("confirm it is you")
// that sensitive changes need.
import { api, ApiError } from './api.js';
import { h, format, field, replace } from './dom.js';
import t from './strings.js';

let openCount = 0;
export const dialogOpen = () => openCount > 0;

// errorText is what the user reads about a failed request: Logto's own message where there
// is one (it says what to fix), else a plain sentence.
export function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t.networkError;
    if (err.message && err.message !== err.code && err.message !== String(err.status)) return err.message;
    return format(t.unexpectedError, { status: err.status });
  }
  return String(err?.message || err);
}

// alertBox is a form's error line, announced when it changes.
export function alertBox() {
  return h('p', { class: 'error', role: 'alert' });
}

export function showError(box, err) {
  replace(box, err ? errorText(err) : '');
}

// openDialog shows a modal. build(body, close) fills it; close(value) resolves the promise.
export function openDialog(title, build) {
  return new Promise((resolve) => {
    const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
    const body = h('div', { class: 'dialog-body' });
    const dlg = h('dialog', { 'aria-labelledby': titleId }, h('h2', { id: titleId }, title), body);
    const opener = document.activeElement;
    let result;
    const close = (value) => { result = value; dlg.close(); };
    dlg.addEventListener('close', () => {
      openCount -= 1;
      dlg.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(result);
    });
    build(body, close);
    document.body.append(dlg);
    openCount += 1;
    dlg.showModal();
    const first = dlg.querySelector('input, button.primary, button');
    if (first) first.focus();
  });
}

// confirmAction asks before a destructive action; resolves true to go on.
export function confirmAction({ title, body, action }) {
  return openDialog(title, (el, close) => {
    el.append(
      h('p', {}, body),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'danger', onclick: () => close(true) }, action),
        h('button', { type: 'button', onclick: () => close(false) }, t.cancel)));
  }).then(Boolean);
}

// A form inside a dialog: submit runs onSubmit(form data); an error shows in the form and keeps
// the dialog open. onSubmit returns the dialog's result, or undefined to stay open.
export function dialogForm(el, close, { fields, submit, onSubmit, intro }) {
  const error = alertBox();
  const button = h('button', { type: 'submit', class: 'primary' }, submit);
  const form = h('form', { novalidate: false },
    intro && h('p', {}, intro), fields, error,
    h('div', { class: 'actions' }, button, h('button', { type: 'button', onclick: () => close(null) }, t.cancel)));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(error, null);
    button.disabled = true;
    try {
      const out = await onSubmit(new FormData(form), form);
      if (out !== undefined) close(out);
    } catch (err) {
      showError(error, err);
      const bad = form.querySelector('input');
      if (bad) bad.focus();
    } finally {
      button.disabled = false;
    }
  });
  el.append(form);
  return form;
}

// The last step-up record, reused until shortly before it expires (Logto's records last 10
// minutes and are not single-use), so a user is asked once for a few changes in a row.
let record = null;

export function forgetStepUp() {
  record = null;
}

// stepUp proves the user's identity for a sensitive change: with the current password, or with
// a code sent to the primary email or phone. It resolves to the verification record id, or null
// when the user cancelled or has nothing to prove it with (then the API decides, e.g. a first
// password needs no proof).
export async function stepUp(profile) {
  if (record && record.expiresAt - Date.now() > 60_000) return record.id;
  const methods = [];
  if (profile.hasPassword) methods.push({ kind: 'password', label: t.stepUpByPassword });
  if (profile.primaryEmail) methods.push({ kind: 'email', value: profile.primaryEmail, label: format(t.stepUpByEmail, { value: profile.primaryEmail }) });
  if (profile.primaryPhone) methods.push({ kind: 'phone', value: profile.primaryPhone, label: format(t.stepUpByPhone, { value: profile.primaryPhone }) });
  if (methods.length === 0) return null;

  const id = await openDialog(t.stepUpTitle, (el, close) => {
    const show = (method) => {
      replace(el);
      if (method.kind === 'password') {
        dialogForm(el, close, {
          intro: t.stepUpIntro,
          fields: field({ label: t.stepUpPassword, name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
          submit: t.continue,
          onSubmit: async (data) => {
            const res = await api('POST', '/api/verifications/password', { body: { password: data.get('password') } });
            return remember(res);
          },
        });
      } else {
        showCodeStep(el, close, method);
      }
      const others = methods.filter((m) => m !== method);
      if (others.length) {
        el.append(h('div', { class: 'alternatives' }, others.map((m) =>
          h('button', { type: 'button', class: 'link', onclick: () => show(m) }, m.label))));
      }
      const first = el.querySelector('input, button');
      if (first) first.focus();
    };
    show(methods[0]);
  });
  return id || null;
}

function remember(res) {
  record = { id: res.verificationRecordId, expiresAt: Date.parse(res.expiresAt) || Date.now() + 9 * 60_000 };
  return record.id;
}

// showCodeStep sends a code to the user's own address, then verifies what the user types.
function showCodeStep(el, close, method) {
  const identifier = { type: method.kind, value: method.value };
  const error = alertBox();
  const sendButton = h('button', { type: 'button', class: 'primary' }, t.sendCode);
  const area = h('div', {}, h('p', {}, t.stepUpIntro), error,
    h('div', { class: 'actions' }, sendButton, h('button', { type: 'button', onclick: () => close(null) }, t.cancel)));
  el.append(area);
  sendButton.addEventListener('click', async () => {
    sendButton.disabled = true;
    try {
      const sent = await api('POST', '/api/verifications/verification-code', { body: { identifier } });
      replace(area);
      dialogForm(area, close, {
        intro: format(t.codeSentTo, { to: method.value }),
        fields: field({ label: t.code, name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric', required: true }),
        submit: t.verify,
        onSubmit: async (data) => {
          const res = await api('POST', '/api/verifications/verification-code/verify', {
            body: { identifier, verificationId: sent.verificationRecordId, code: String(data.get('code')).trim() },
          });
          return remember({ verificationRecordId: res.verificationRecordId, expiresAt: sent.expiresAt });
        },
      });
      area.querySelector('input').focus();
    } catch (err) {
      showError(error, err);
      sendButton.disabled = false;
    }
  });
}

// withStepUp runs fn(recordId) after a step-up; a refused record (expired, wrong user) is
// forgotten and asked for once more.
export async function withStepUp(profile, fn) {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const id = await stepUp(profile);
    if (id === null && (profile.hasPassword || profile.primaryEmail || profile.primaryPhone)) return { cancelled: true };
    try {
      return { value: await fn(id) };
    } catch (err) {
      if (err instanceof ApiError && err.code === 'verification_record.permission_denied' && attempt === 0 && id) {
        forgetStepUp();
        continue;
      }
      throw err;
    }
  }
  return { cancelled: true };
}
