// The account page: signs the user in, loads the account, and shows each part the account
// center allows (Off: not shown; ReadOnly: shown, not editable; Edit: editable).
import { config, start, signIn, signOut, signedOut, whenRedirectIsSafe } from './auth.js';
import { api, ApiError } from './api.js';
import { h, format, field, replace } from './dom.js';
import { alertBox, showError, errorText, confirmAction, dialogForm, openDialog, withStepUp, dialogOpen } from './dialogs.js';
import { connectors, connectorName, startLink, takeProviderAnswer, finishLink } from './social.js';
import t from './strings.js';

const main = document.getElementById('main');
const statusLine = document.getElementById('status');
const fields = config.accountCenter?.fields || {};
const control = (name) => fields[name] || 'Off';
export const readable = (name) => control(name) === 'ReadOnly' || control(name) === 'Edit';
export const editable = (name) => control(name) === 'Edit';

// The account as GET /api/my-account last answered it.
export const state = { profile: null, connectors: [] };
let openForms = 0;

let statusTimer = 0;
export function announce(text) {
  // Cleared first so the same message twice is announced twice; gone after a few seconds.
  statusLine.textContent = '';
  clearTimeout(statusTimer);
  requestAnimationFrame(() => { statusLine.textContent = text; });
  statusTimer = setTimeout(() => { statusLine.textContent = ''; }, 5000);
}

function message(text, ...actions) {
  main.removeAttribute('aria-busy');
  replace(main, h('section', { class: 'card message' }, h('p', {}, text), actions.length ? h('div', { class: 'actions' }, actions) : null));
  main.focus();
}

async function boot() {
  document.title = t.title;
  document.documentElement.lang = t.lang;
  replace(document.getElementById('brand'), t.title);
  replace(document.getElementById('loading'), t.loading);
  takeProviderAnswer();
  let signedIn;
  try {
    signedIn = await start();
  } catch (err) {
    message(format(t.signInFailed, { reason: err.message }), h('button', { type: 'button', class: 'primary', onclick: () => signIn() }, t.tryAgain));
    return;
  }
  if (!signedIn) {
    if (signedOut()) {
      message(t.signedOut, h('button', { type: 'button', class: 'primary', onclick: () => signIn() }, t.signIn));
      return;
    }
    message(t.signingIn);
    await signIn();
    return;
  }
  whenRedirectIsSafe(() => !dialogOpen() && openForms === 0);
  addEventListener('account-page:signed-out', () => {
    document.querySelectorAll('dialog[open]').forEach((d) => d.close());
    message(t.sessionExpired, h('button', { type: 'button', class: 'primary', onclick: () => signIn() }, t.signIn));
  });
  if (!config.accountCenter) {
    message(t.settingsUnavailable, h('button', { type: 'button', onclick: () => location.reload() }, t.tryAgain));
    return;
  }
  if (!config.accountCenter.enabled) {
    renderWho(null);
    message(t.accountCenterDisabled);
    return;
  }
  try {
    [state.profile, state.connectors] = await Promise.all([
      api('GET', '/api/my-account'),
      editable('social') ? connectors() : [],
    ]);
  } catch (err) {
    // An unauthorized token is answered by the signed-out listener above.
    if (!(err instanceof ApiError && err.status === 401 && err.code === 'auth.unauthorized')) {
      message(errorText(err), h('button', { type: 'button', onclick: () => location.reload() }, t.tryAgain));
    }
    return;
  }
  render();
  performance.mark('account-page:ready');
  document.body.dataset.state = 'ready';
  finishLink();
  // Parts whose routes a server may not have: each hides itself when they are missing. Once
  // all have settled, data-parts="ready" says the page is complete.
  const parts = [];
  if (readable('mfa')) parts.push(import('./mfa.js').then((m) => m.mount(document.getElementById('mfa'))));
  if (readable('session')) parts.push(import('./sessions.js').then((m) => m.mount(document.getElementById('sessions'))));
  Promise.allSettled(parts).then(() => { document.body.dataset.parts = 'ready'; });
}

function renderWho(profile) {
  const who = document.getElementById('who');
  const name = profile?.name || profile?.username || profile?.primaryEmail || '';
  replace(who,
    name && h('span', { class: 'who-name' }, format(t.signedInAs, { name })),
    h('button', { type: 'button', id: 'sign-out', onclick: () => signOut() }, t.signOut));
}

function render() {
  const p = state.profile;
  renderWho(p);
  main.removeAttribute('aria-busy');
  replace(main,
    h('h1', { class: 'visually-hidden' }, t.title),
    h('p', { id: 'page-error', class: 'error', role: 'alert' }),
    profileCard(p),
    readable('profile') && 'profile' in p && personalCard(p),
    securityCard(p),
    readable('social') && 'identities' in p && socialCard(p),
    h('section', { id: 'mfa', class: 'card', hidden: true, 'aria-labelledby': 'mfa-h' }),
    h('section', { id: 'sessions', class: 'card', hidden: true, 'aria-labelledby': 'sessions-h' }));
}

// rerender redraws after a change and puts the focus back on the same control.
export function rerender(profile) {
  if (profile) state.profile = profile;
  const focusId = document.activeElement?.id;
  const mfa = document.getElementById('mfa');
  const sessions = document.getElementById('sessions');
  render();
  // The optional parts keep what they loaded.
  document.getElementById('mfa').replaceWith(mfa);
  document.getElementById('sessions').replaceWith(sessions);
  const again = focusId && document.getElementById(focusId);
  if (again) again.focus();
}

// card is a section with a heading.
function card(id, heading, ...children) {
  return h('section', { id, class: 'card', 'aria-labelledby': `${id}-h` }, h('h2', { id: `${id}-h` }, heading), children);
}

// row shows one value, with its action buttons (Edit, Change, Remove, ...) at the end.
export function row({ name, label, value, empty = t.notSet, readOnly, actions = [] }) {
  return h('div', { class: 'row', 'data-field': name },
    h('div', { class: 'row-text' },
      h('span', { class: 'row-label', id: `${name}-label` }, label),
      h('span', { class: value ? 'row-value' : 'row-value empty', id: `${name}-value` }, value || empty),
      readOnly && h('span', { class: 'hint' }, t.readOnlyHint)),
    actions.length ? h('div', { class: 'row-actions' }, actions) : null);
}

// actionButton is a row's button, named with the row's label for screen readers.
export function actionButton(name, text, label, onclick, cls) {
  return h('button', { type: 'button', id: `${name}-${text.toLowerCase().replace(/\W+/g, '-')}`, class: cls, 'aria-label': `${text}: ${label}`, onclick }, text);
}

// inlineEdit replaces a row with a form; save(data) returns the new profile (or nothing).
function inlineEdit(rowEl, { name, label, inputs, save }) {
  openForms += 1;
  const error = alertBox();
  const done = () => { openForms -= 1; };
  const form = h('form', { class: 'row editing', 'data-field': name, 'aria-label': label },
    inputs, error,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary', id: `${name}-save` }, t.save),
      h('button', { type: 'button', onclick: () => { done(); rerender(); focusEdit(name); } }, t.cancel)));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(error, null);
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const profile = await save(new FormData(form));
      if (profile === undefined) return; // cancelled (e.g. the step-up)
      done();
      rerender(profile);
      announce(t.saved);
      focusEdit(name);
    } catch (err) {
      showError(error, err);
      form.querySelector('input')?.focus();
    } finally {
      button.disabled = false;
    }
  });
  rowEl.replaceWith(form);
  form.querySelector('input')?.focus();
}

function focusEdit(name) {
  document.querySelector(`[data-field="${name}"] button`)?.focus();
}

// editableRow is a row with an Edit button when the field is editable.
function editableRow({ name, field: acField, label, value, inputs, save }) {
  const canEdit = editable(acField);
  const el = row({
    name, label, value, readOnly: !canEdit,
    actions: canEdit ? [actionButton(name, t.edit, label, () => inlineEdit(el, { name, label, inputs: inputs(), save }))] : [],
  });
  return el;
}

function profileCard(p) {
  const rows = [];
  if (readable('avatar') && 'avatar' in p) {
    rows.push(h('div', { class: 'avatar-line' },
      p.avatar ? h('img', { class: 'avatar', src: p.avatar, alt: t.avatarAlt, width: 64, height: 64 }) : h('span', { class: 'avatar placeholder', 'aria-hidden': 'true' }, (p.name || p.username || '?').slice(0, 1).toUpperCase()),
      editableRow({
        name: 'avatar', field: 'avatar', label: t.avatar, value: p.avatar,
        inputs: () => field({ label: t.avatarUrl, name: 'avatar', type: 'url', value: p.avatar, autocomplete: 'photo' }),
        save: (d) => api('PATCH', '/api/my-account', { body: { avatar: String(d.get('avatar')).trim() || null } }),
      })));
  }
  if (readable('name') && 'name' in p) {
    rows.push(editableRow({
      name: 'name', field: 'name', label: t.name, value: p.name,
      inputs: () => field({ label: t.name, name: 'name', value: p.name, autocomplete: 'name', maxlength: 128 }),
      save: (d) => api('PATCH', '/api/my-account', { body: { name: String(d.get('name')).trim() || null } }),
    }));
  }
  if (readable('username') && 'username' in p) {
    rows.push(editableRow({
      name: 'username', field: 'username', label: t.username, value: p.username,
      inputs: () => field({ label: t.username, name: 'username', value: p.username, autocomplete: 'username', hint: t.usernameHint, required: true }),
      save: async (d) => {
        const res = await withStepUp(state.profile, (id) => api('PATCH', '/api/my-account', {
          body: { username: String(d.get('username')).trim() }, verificationId: id,
        }));
        return res.cancelled ? undefined : res.value;
      },
    }));
  }
  if (rows.length === 0) return null;
  return card('profile', t.profileHeading, rows);
}

const claims = [
  ['givenName', t.givenName, 'given-name'],
  ['familyName', t.familyName, 'family-name'],
  ['nickname', t.nickname, 'nickname'],
  ['website', t.website, 'url'],
  ['birthdate', t.birthdate, 'bday'],
  ['locale', t.locale, 'language'],
];

function personalCard(p) {
  const claimsOf = p.profile || {};
  const canEdit = editable('profile');
  const view = h('div', { class: 'claims' }, claims.map(([k, label]) => row({ name: `profile-${k}`, label, value: claimsOf[k] })));
  const el = card('personal', t.personalHeading, view);
  if (!canEdit) {
    view.append(h('p', { class: 'hint' }, t.readOnlyHint));
    return el;
  }
  const edit = actionButton('personal', t.edit, t.personalHeading, () => {
    inlineEdit(view, {
      name: 'personal', label: t.personalHeading,
      inputs: claims.map(([k, label, ac]) => field({ label, name: k, value: claimsOf[k], autocomplete: ac, type: k === 'birthdate' ? 'date' : k === 'website' ? 'url' : 'text' })),
      save: async (d) => {
        const body = {};
        for (const [k] of claims) {
          const v = String(d.get(k) || '').trim();
          if (v !== (claimsOf[k] || '')) body[k] = v;
        }
        if (Object.keys(body).length) await api('PATCH', '/api/my-account/profile', { body });
        return api('GET', '/api/my-account');
      },
    });
  });
  view.dataset.field = 'personal';
  el.append(h('div', { class: 'actions', 'data-field': 'personal' }, edit));
  return el;
}

function securityCard(p) {
  const rows = [];
  if (readable('email') && 'primaryEmail' in p) rows.push(identifierRow(p, 'email'));
  if (readable('phone') && 'primaryPhone' in p) rows.push(identifierRow(p, 'phone'));
  if (readable('password') && 'hasPassword' in p) rows.push(passwordRow(p));
  if (rows.length === 0) return null;
  return card('security', t.securityHeading, rows);
}

// identifierRow is the primary email or phone: change (a code to the new address, then the
// step-up) or remove (confirmed, then the step-up).
function identifierRow(p, kind) {
  const key = kind === 'email' ? 'primaryEmail' : 'primaryPhone';
  const label = kind === 'email' ? t.email : t.phone;
  const value = p[key];
  const canEdit = editable(kind);
  const actions = [];
  if (canEdit) {
    actions.push(actionButton(kind, value ? t.change : t.add, label, () => changeIdentifier(kind)));
    if (value) {
      actions.push(actionButton(kind, t.remove, label, async () => {
        const sure = await confirmAction({
          title: kind === 'email' ? t.removeEmailTitle : t.removePhoneTitle,
          body: format(kind === 'email' ? t.removeEmailBody : t.removePhoneBody, { value }),
          action: t.remove,
        });
        if (!sure) return;
        await run(async () => {
          const res = await withStepUp(state.profile, (id) => api('DELETE', `/api/my-account/primary-${kind}`, { verificationId: id }));
          if (!res.cancelled) { rerender(await api('GET', '/api/my-account')); announce(t.removed); }
        });
      }, 'danger'));
    }
  }
  return row({ name: kind, label, value, readOnly: !canEdit, actions });
}

// run does a row action; a failure is shown at the top of the page and announced.
export async function run(fn) {
  const box = document.getElementById('page-error');
  replace(box);
  try {
    await fn();
  } catch (err) {
    replace(box, errorText(err));
    box.scrollIntoView({ block: 'nearest' });
  }
}

async function changeIdentifier(kind) {
  const label = kind === 'email' ? t.newEmail : t.newPhone;
  // First the new address and its code (the record proves the address), then the step-up.
  const proof = await openDialog(label, (el, close) => {
    dialogForm(el, close, {
      fields: field({ label, name: 'value', type: kind === 'email' ? 'email' : 'tel', autocomplete: kind === 'email' ? 'email' : 'tel', required: true }),
      submit: t.sendCode,
      onSubmit: async (d) => {
        const value = String(d.get('value')).trim();
        const identifier = { type: kind, value };
        const sent = await api('POST', '/api/verifications/verification-code', { body: { identifier } });
        replace(el);
        dialogForm(el, close, {
          intro: format(t.codeSentTo, { to: value }),
          fields: field({ label: t.code, name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric', required: true }),
          submit: t.verify,
          onSubmit: async (d2) => {
            await api('POST', '/api/verifications/verification-code/verify', {
              body: { identifier, verificationId: sent.verificationRecordId, code: String(d2.get('code')).trim() },
            });
            return { value, recordId: sent.verificationRecordId };
          },
        });
        el.querySelector('input').focus();
        return undefined;
      },
    });
  });
  if (!proof) return;
  await run(async () => {
    const body = kind === 'email'
      ? { email: proof.value, newIdentifierVerificationRecordId: proof.recordId }
      : { phone: proof.value, newIdentifierVerificationRecordId: proof.recordId };
    const res = await withStepUp(state.profile, (id) => api('POST', `/api/my-account/primary-${kind}`, { body, verificationId: id }));
    if (res.cancelled) return;
    rerender(await api('GET', '/api/my-account'));
    announce(kind === 'email' ? t.emailChanged : t.phoneChanged);
    focusEdit(kind);
  });
}

function passwordRow(p) {
  const canEdit = editable('password');
  const text = p.hasPassword ? t.changePassword : t.setPassword;
  return row({
    name: 'password', label: t.password, value: p.hasPassword ? t.passwordSet : '', empty: t.passwordNotSet, readOnly: !canEdit,
    actions: canEdit ? [actionButton('password', p.hasPassword ? t.change : t.add, t.password, () => run(async () => {
      // Step-up first (by the current password, or a code where the user has none): a new
      // password typed before a failed proof would be typed for nothing.
      const res = await withStepUp(state.profile, (id) => openDialog(text, (el, close) => {
        dialogForm(el, close, {
          fields: [
            field({ label: t.newPassword, name: 'password', type: 'password', autocomplete: 'new-password', required: true }),
            field({ label: t.confirmPassword, name: 'again', type: 'password', autocomplete: 'new-password', required: true }),
          ],
          submit: t.save,
          onSubmit: async (d) => {
            if (d.get('password') !== d.get('again')) throw new Error(t.passwordsDiffer);
            await api('POST', '/api/my-account/password', { body: { password: d.get('password') }, verificationId: id });
            return true;
          },
        });
      }));
      if (res.cancelled || !res.value) return;
      rerender(await api('GET', '/api/my-account'));
      announce(t.passwordChanged);
      focusEdit('password');
    }))] : [],
  });
}

function socialCard(p) {
  const canEdit = editable('social');
  const identities = Object.entries(p.identities || {});
  const list = identities.length
    ? h('ul', { class: 'list' }, identities.map(([target, info]) => {
      const who = info?.details?.email || info?.details?.name || info?.userId || '';
      const known = state.connectors.find((c) => c.target === target);
      const name = known ? connectorName(known) : target;
      return h('li', { class: 'row', 'data-field': `social-${target}` },
        h('div', { class: 'row-text' }, h('span', { class: 'row-label' }, name), h('span', { class: 'row-value' }, who)),
        canEdit && h('div', { class: 'row-actions' }, actionButton(`social-${target}`, t.disconnect, name, async () => {
          const sure = await confirmAction({ title: format(t.disconnectTitle, { name }), body: format(t.disconnectBody, { name }), action: t.disconnect });
          if (!sure) return;
          await run(async () => {
            const res = await withStepUp(state.profile, (id) => api('DELETE', `/api/my-account/identities/${encodeURIComponent(target)}`, { verificationId: id }));
            if (!res.cancelled) { rerender(await api('GET', '/api/my-account')); announce(t.removed); }
          });
        }, 'danger')));
    }))
    : h('p', { class: 'empty' }, t.noIdentities);
  const linkable = canEdit ? state.connectors.filter((c) => !(c.target in (p.identities || {}))) : [];
  return card('social', t.socialHeading, list,
    linkable.length ? h('div', { class: 'actions' }, linkable.map((c) => h('button', {
      type: 'button', id: `social-connect-${c.target}`, onclick: () => run(() => startLink(c)),
    }, format(t.connect, { name: connectorName(c) })))) : null,
    !canEdit && h('p', { class: 'hint' }, t.readOnlyHint));
}

boot();
