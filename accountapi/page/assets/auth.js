// Sign-in with the identity core: OpenID Connect authorization code with PKCE (RFC 7636, S256)
// for a public client. The tokens live in this module's memory only, never in web storage, so a
// reload signs in again (silently while the core's session lasts).
// sessionStorage holds only the PKCE verifier and state between the redirect and the callback,
// a flag that the user signed out, and (social.js) a social provider's one-time answer until
// the user is signed in again to link it.

const config = JSON.parse(document.querySelector('meta[name="account-page-config"]').content);
export { config };

const RENEW_BEFORE_MS = 60_000;
const PENDING = 'account-page:pending';
const SIGNED_OUT = 'account-page:signed-out';

let tokens = null; // {accessToken, refreshToken, idToken, expiresAt, scopes:Set}
let renewTimer = 0;
let renewing = null;
let canRedirect = () => true; // the app says when a redirect would lose nothing

const pageURL = () => location.origin + config.base;
const callbackURL = () => `${pageURL()}/callback`;

function randomString(bytes) {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return base64url(b);
}

function base64url(bytes) {
  let s = '';
  for (const x of bytes) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

// signIn sends the browser to the core's authorization endpoint. prompt "none" asks for a
// silent answer (the core's session), used to renew without a refresh token.
export async function signIn({ prompt } = {}) {
  const verifier = randomString(48);
  const state = randomString(24);
  sessionStorage.removeItem(SIGNED_OUT);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, hash: location.hash, prompt: prompt || '' }));
  const q = new URLSearchParams({
    client_id: config.clientId,
    redirect_uri: callbackURL(),
    response_type: 'code',
    scope: config.scopes,
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: 'S256',
  });
  // Logto asks for consent to issue a refresh token (offline_access).
  q.set('prompt', prompt || 'consent');
  location.assign(`${config.authorizationEndpoint}?${q}`);
}

// SignInError is a failed sign-in: the core's error, or a callback that does not match.
export class SignInError extends Error {}

// start completes a callback if this is one, and reports whether the user is signed in. Without
// tokens it returns false; the caller decides whether to redirect (not after a sign-out).
export async function start() {
  const params = new URLSearchParams(location.search);
  if (location.pathname === `${config.base}/callback`) {
    const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
    sessionStorage.removeItem(PENDING);
    // The code leaves the address bar and the history at once.
    history.replaceState(null, '', config.base + (pending?.hash || ''));
    if (!pending || params.get('state') !== pending.state) throw new SignInError('state mismatch');
    // RFC 9207: the answer must come from our issuer (no mix-up with another one).
    const issuer = config.issuer || `${location.origin}/oidc`;
    if (params.has('iss') && params.get('iss') !== issuer) throw new SignInError('issuer mismatch');
    if (params.get('error')) {
      // A silent renewal that needs the user falls back to the sign-in form.
      if (pending.prompt === 'none' && params.get('error') === 'login_required') {
        await signIn();
        return new Promise(() => {});
      }
      throw new SignInError(params.get('error_description') || params.get('error'));
    }
    await tokenRequest({
      grant_type: 'authorization_code',
      code: params.get('code') || '',
      redirect_uri: callbackURL(),
      code_verifier: pending.verifier,
    });
    return true;
  }
  return false;
}

export function signedOut() {
  return sessionStorage.getItem(SIGNED_OUT) === '1';
}

async function tokenRequest(form) {
  const started = Date.now();
  const resp = await fetch(config.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: config.clientId, ...form }),
    credentials: 'omit',
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok || !body.access_token) {
    throw new SignInError(body.error_description || body.message || `token endpoint ${resp.status}`);
  }
  tokens = {
    accessToken: body.access_token,
    // With rotation the new refresh token replaces the old one; without one in the answer, keep it.
    refreshToken: body.refresh_token || tokens?.refreshToken || '',
    idToken: body.id_token || tokens?.idToken || '',
    expiresAt: started + (Number(body.expires_in) || 3600) * 1000,
    scopes: new Set(String(body.scope || config.scopes).split(' ')),
  };
  scheduleRenewal();
}

function scheduleRenewal() {
  clearTimeout(renewTimer);
  const wait = Math.max(0, tokens.expiresAt - RENEW_BEFORE_MS - Date.now());
  renewTimer = setTimeout(() => renew().catch(() => {}), wait);
}

// renew gets a new access token before the current one expires: with the refresh token when
// the core gave one, else by a silent redirect once the app has nothing unsaved.
function renew() {
  if (renewing) return renewing;
  renewing = (async () => {
    if (tokens?.refreshToken) {
      try {
        await tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.refreshToken });
        return;
      } catch {
        tokens.refreshToken = '';
      }
    }
    while (!canRedirect()) await new Promise((r) => setTimeout(r, 2000));
    await signIn({ prompt: 'none' });
    await new Promise(() => {}); // the page is going away
  })().finally(() => { renewing = null; });
  return renewing;
}

export function whenRedirectIsSafe(fn) {
  canRedirect = fn;
}

// accessToken returns a live access token, renewing first when it is about to expire.
export async function accessToken() {
  if (!tokens) throw new SignInError('not signed in');
  if (Date.now() > tokens.expiresAt - RENEW_BEFORE_MS) await renew();
  return tokens.accessToken;
}

export function hasScope(scope) {
  return !!tokens?.scopes.has(scope);
}

// signOut forgets the tokens, revokes the refresh token, and ends the session at the core,
// which sends the browser back to the page.
export async function signOut() {
  const refresh = tokens?.refreshToken;
  const idToken = tokens?.idToken;
  tokens = null;
  clearTimeout(renewTimer);
  sessionStorage.setItem(SIGNED_OUT, '1');
  if (refresh) {
    await fetch(config.revocationEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: config.clientId, token: refresh, token_type_hint: 'refresh_token' }),
      credentials: 'omit',
    }).catch(() => {});
  }
  const q = new URLSearchParams({ client_id: config.clientId, post_logout_redirect_uri: pageURL() });
  // The hint names the user to the core, and lets the module drop its cached answers about the
  // user's tokens as the sign-out passes through.
  if (idToken) q.set('id_token_hint', idToken);
  location.assign(`${config.endSessionEndpoint}?${q}`);
}
