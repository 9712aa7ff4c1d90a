// The Account API on the page's own origin, with the signed-in user's access token.
import { accessToken } from './auth.js';

// ApiError is a refused request: Logto's {code, message} and the HTTP status.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || String(status));
    this.status = status;
    this.code = code || '';
  }

  // missing reports a route this server does not have (yet): the page hides what needs it.
  get missing() {
    return this.status === 404 || this.status === 501 || this.status === 405;
  }
}

// api sends one request. body is sent as JSON; verificationId is the step-up record. It
// resolves to the JSON answer, or null for an empty one.
export async function api(method, path, { body, verificationId } = {}) {
  const headers = { authorization: `Bearer ${await accessToken()}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (verificationId) headers['logto-verification-id'] = verificationId;
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'network', '');
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!resp.ok) {
    // The token is no longer good (revoked, or its session ended elsewhere): the page says so.
    if (resp.status === 401 && data?.code === 'auth.unauthorized') dispatchEvent(new Event('account-page:signed-out'));
    throw new ApiError(resp.status, data?.code, data?.message);
  }
  return data;
}

// signInExperience is the core's public sign-in experience (its social connectors, the MFA
// factors users may add), read once per page load and without credentials; null when the core
// does not say.
let publicSignInExperience;
export function signInExperience() {
  publicSignInExperience ??= fetch('/api/.well-known/sign-in-exp', { credentials: 'omit' })
    .then((resp) => (resp.ok ? resp.json() : null))
    .catch(() => null);
  return publicSignInExperience;
}
