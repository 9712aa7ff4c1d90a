// Two-step verification: the user's factors, an authenticator app (TOTP, enrolled with a QR
// code made here from the otpauth URI), backup codes, and removing a factor. Only the factors
// the sign-in experience enables are offered. Hidden when the account center has mfa Off, the
// server has no MFA routes, or the user has no factor and may add none.
import { api, signInExperience } from './api.js';
import { h, format, field, replace, formatDate } from './dom.js';
import { confirmAction, dialogForm, openDialog, withStepUp } from './dialogs.js';
import { state, readable, editable, row, actionButton, announce, run } from './app.js';
import t from './strings.js';

let section;

export async function mount(el) {
  section = el;
  if (!readable('mfa')) return;
  await refresh();
}

async function refresh() {
  let factors;
  let experience;
  try {
    [factors, experience] = await Promise.all([api('GET', '/api/my-account/mfa-verifications'), signInExperience()]);
  } catch (err) {
    // Missing routes (404/501) or a token without the identities scope: nothing to show.
    section.hidden = true;
    return;
  }
  // A core that does not say which factors it enables: offer both, the API decides.
  const offered = Array.isArray(experience?.mfa?.factors) ? experience.mfa.factors : ['Totp', 'BackupCode'];
  render(Array.isArray(factors) ? factors : [], offered);
}

function factorName(f) {
  switch (f.type) {
    case 'Totp': return t.factorTotp;
    case 'BackupCode': return format(t.factorBackupCode, { count: f.remainCodes ?? '?' });
    case 'WebAuthn': return f.name || t.factorWebAuthn;
    case 'EmailVerificationCode': return t.factorEmail;
    case 'PhoneVerificationCode': return t.factorPhone;
    default: return f.type;
  }
}

function render(factors, offered) {
  const canEdit = editable('mfa');
  const list = factors.length
    ? h('ul', { class: 'list' }, factors.map((f) => h('li', {},
      row({
        name: `mfa-${f.id}`, label: factorName(f), value: format(t.factorAdded, { date: formatDate(f.createdAt) }),
        actions: canEdit ? [actionButton(`mfa-${f.id}`, t.remove, factorName(f), () => removeFactor(f), 'danger')] : [],
      }))))
    : h('p', { class: 'empty' }, t.noFactors);
  const actions = [];
  if (canEdit && offered.includes('Totp') && !factors.some((f) => f.type === 'Totp')) {
    actions.push(h('button', { type: 'button', id: 'mfa-add-totp', onclick: () => run(addTotp) }, t.addTotp));
  }
  // Logto accepts backup codes only beside another factor.
  if (canEdit && offered.includes('BackupCode') && factors.some((f) => f.type !== 'BackupCode') && !factors.some((f) => f.type === 'BackupCode')) {
    actions.push(h('button', { type: 'button', id: 'mfa-add-backup', onclick: () => run(addBackupCodes) }, t.addBackupCodes));
  }
  // Nothing set up and nothing the user may add (the core enables no factor, or only backup
  // codes, which need another factor beside them).
  if (factors.length === 0 && !actions.length) {
    section.hidden = true;
    return;
  }
  replace(section,
    h('h2', { id: 'mfa-h' }, t.mfaHeading),
    h('p', { class: 'hint' }, t.mfaIntro),
    list,
    actions.length ? h('div', { class: 'actions' }, actions) : null,
    !canEdit && h('p', { class: 'hint' }, t.readOnlyHint));
  section.hidden = false;
}

async function removeFactor(f) {
  const name = factorName(f);
  if (!await confirmAction({ title: format(t.removeFactorTitle, { name }), body: t.removeFactorBody, action: t.remove })) return;
  await run(async () => {
    const res = await withStepUp(state.profile, (id) => api('DELETE', `/api/my-account/mfa-verifications/${encodeURIComponent(f.id)}`, { verificationId: id }));
    if (res.cancelled) return;
    await refresh();
    announce(t.removed);
  });
}

function otpauthURI(secret) {
  const p = state.profile;
  const issuer = location.hostname;
  const account = p.primaryEmail || p.username || p.primaryPhone || p.id;
  const q = new URLSearchParams({ secret, issuer, algorithm: 'SHA1', digits: '6', period: '30' });
  return `otpauth://totp/${encodeURIComponent(issuer)}:${encodeURIComponent(account)}?${q}`;
}

async function addTotp() {
  const res = await withStepUp(state.profile, async (id) => {
    const { secret } = await api('POST', '/api/my-account/mfa-verifications/totp-secret/generate');
    const { qrSVG } = await import('./qr.js');
    return openDialog(t.totpTitle, (el, close) => {
      dialogForm(el, close, {
        intro: t.totpScan,
        fields: [
          h('figure', { class: 'qr' }, qrSVG(otpauthURI(secret), t.qrLabel)),
          h('p', {}, `${t.totpKey}: `, h('code', { class: 'secret', id: 'totp-secret' }, secret.replace(/(.{4})/g, '$1 ').trim())),
          field({ label: t.totpCode, name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric', pattern: '[0-9]{6}', required: true }),
        ],
        submit: t.verify,
        onSubmit: async (d) => {
          await api('POST', '/api/my-account/mfa-verifications', {
            body: { type: 'Totp', secret, code: String(d.get('code')).trim() }, verificationId: id,
          });
          return true;
        },
      });
    });
  });
  if (res.cancelled || !res.value) return;
  await refresh();
  announce(t.totpAdded);
}

async function addBackupCodes() {
  const res = await withStepUp(state.profile, async (id) => {
    const { codes } = await api('POST', '/api/my-account/mfa-verifications/backup-codes/generate');
    return openDialog(t.backupTitle, (el, close) => {
      dialogForm(el, close, {
        intro: t.backupIntro,
        fields: h('ul', { class: 'codes', id: 'backup-codes' }, codes.map((c) => h('li', {}, h('code', {}, c)))),
        submit: t.backupSaved,
        onSubmit: async () => {
          await api('POST', '/api/my-account/mfa-verifications', { body: { type: 'BackupCode', codes }, verificationId: id });
          return true;
        },
      });
    });
  });
  if (res.cancelled || !res.value) return;
  await refresh();
  announce(t.backupAdded);
}
