// Where the user is signed in: the OIDC sessions, listed after a step-up (Logto requires one to
// read them), each but this device's with a way to sign it out. Hidden when the account center
// has session Off, the token lacks the sessions scope, or the server has no sessions routes.
import { api, ApiError } from './api.js';
import { h, format, replace, formatDate } from './dom.js';
import { confirmAction, withStepUp } from './dialogs.js';
import { hasScope } from './auth.js';
import { state, readable, editable, row, actionButton, announce, run } from './app.js';
import t from './strings.js';

const SCOPE = 'urn:logto:scope:sessions';
let section;

export async function mount(el) {
  section = el;
  if (!readable('session') || !hasScope(SCOPE)) return;
  // Probe without a record: a server with the route asks for one (401), one without says 404.
  try {
    await api('GET', '/api/my-account/sessions');
  } catch (err) {
    if (!(err instanceof ApiError) || err.missing || err.code !== 'verification_record.permission_denied') return;
  }
  replace(section,
    h('h2', { id: 'sessions-h' }, t.sessionsHeading),
    h('div', { id: 'sessions-list' }),
    h('div', { class: 'actions' }, h('button', { type: 'button', id: 'sessions-show', onclick: () => run(load) }, t.showSessions)));
  section.hidden = false;
}

async function load() {
  const res = await withStepUp(state.profile, (id) => api('GET', '/api/my-account/sessions', { verificationId: id }));
  if (res.cancelled) return;
  render(res.value?.sessions || []);
}

function render(sessions) {
  const canEdit = editable('session');
  const others = sessions.filter((s) => !s.isCurrent);
  // This device first, then the others as the core lists them.
  const list = h('ul', { class: 'list' }, [...sessions.filter((s) => s.isCurrent), ...others].map((s) => {
    const uid = s.payload?.uid || '';
    const label = s.isCurrent ? t.thisDevice : format(t.sessionApp, { app: s.clientId || '' });
    return h('li', {}, row({
      name: `session-${uid}`, label, value: format(t.sessionSince, { date: formatDate(s.payload?.loginTs) }),
      actions: canEdit && !s.isCurrent ? [actionButton(`session-${uid}`, t.sessionEnd, label, () => end(uid), 'danger')] : [],
    }));
  }));
  replace(section.querySelector('#sessions-list'), list, others.length === 0 && h('p', { class: 'empty' }, t.noOtherSessions));
  section.querySelector('#sessions-show')?.remove();
}

async function end(uid) {
  if (!await confirmAction({ title: t.sessionEndTitle, body: t.sessionEndBody, action: t.sessionEnd })) return;
  await run(async () => {
    const res = await withStepUp(state.profile, async (id) => {
      await api('DELETE', `/api/my-account/sessions/${encodeURIComponent(uid)}?revokeGrantsTarget=all`, { verificationId: id });
      return api('GET', '/api/my-account/sessions', { verificationId: id });
    });
    if (res.cancelled) return;
    render(res.value?.sessions || []);
    announce(t.sessionEnded);
  });
}
