// Linking a social account: a social verification record at the API, the provider's sign-in
// page, and back at <page>/social-callback, where the provider's answer is kept in
// sessionStorage (the page's memory, and so its token, does not survive the trip) until the user
// is signed in again; then the answer is verified and the identity linked after a step-up.
import { api, signInExperience } from './api.js';
import { config } from './auth.js';
import { withStepUp } from './dialogs.js';
import { state, rerender, announce, run } from './app.js';
import t from './strings.js';

const PENDING = 'account-page:social';

// connectors are the core's social connectors ({id, target, name}), from its public sign-in
// experience; none when the core does not say.
export async function connectors() {
  const body = await signInExperience();
  return Array.isArray(body?.socialConnectors) ? body.socialConnectors : [];
}

export function connectorName(c) {
  if (c.name && typeof c.name === 'object') return c.name[t.lang] || c.name.en || Object.values(c.name)[0] || c.target;
  return c.name || c.target;
}

// startLink sends the browser to the provider.
export async function startLink(connector) {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  const linkState = btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, '');
  const res = await api('POST', '/api/verifications/social', {
    body: { connectorId: connector.id, state: linkState, redirectUri: `${location.origin}${config.base}/social-callback` },
  });
  sessionStorage.setItem(PENDING, JSON.stringify({ recordId: res.verificationRecordId, state: linkState, target: connector.target }));
  location.assign(res.authorizationUri);
}

// takeProviderAnswer runs first on <page>/social-callback: it keeps the provider's answer with
// the pending link and takes it out of the address bar.
export function takeProviderAnswer() {
  if (location.pathname !== `${config.base}/social-callback`) return;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  if (pending) {
    pending.connectorData = Object.fromEntries(new URLSearchParams(location.search));
    sessionStorage.setItem(PENDING, JSON.stringify(pending));
  }
  history.replaceState(null, '', config.base);
}

// finishLink completes a pending link once the account is shown.
export async function finishLink() {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  if (!pending?.connectorData) return;
  sessionStorage.removeItem(PENDING);
  await run(async () => {
    // The provider must answer the request this page made (RFC 6749 section 10.12).
    if (pending.connectorData.state !== pending.state) throw new Error(t.socialStateMismatch);
    await api('POST', '/api/verifications/social/verify', {
      body: { verificationRecordId: pending.recordId, connectorData: pending.connectorData },
    });
    const res = await withStepUp(state.profile, (id) => api('POST', '/api/my-account/identities', {
      body: { newIdentifierVerificationRecordId: pending.recordId }, verificationId: id,
    }));
    if (res.cancelled) return;
    rerender(await api('GET', '/api/my-account'));
    announce(t.socialLinked);
  });
}
