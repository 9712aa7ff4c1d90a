// The page's two-step verification and devices parts, in chromium, against Logto's documented
// Account API (logto-user-api.openapi.json) for the MFA and sessions routes: the browser answers
// those routes itself, from the documented shapes, until the module serves them (account.test.js
// drives them through the real module when it does). Everything else, sign-in, the step-up and
// the account, is the real ./caddy and dev core. Screenshots in tests/browser/output/mfa-sessions/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { start, outputDir, launchBrowser, signIn, totp } from './harness.js';

const shots = join(outputDir, 'mfa-sessions');
let stack;
let browser;
let page;
const problems = [];

// documented is the state behind the emulated routes, and what the page sent them.
const documented = {
  factors: [],
  sessions: [
    { payload: { uid: 'current-session', loginTs: Math.floor(Date.now() / 1000) - 60, exp: 0, iat: 0, jti: 'a', kind: 'Session', accountId: 'demouser0001' }, clientId: 'account-page', accountId: 'demouser0001', expiresAt: Date.now() + 3_600_000, isCurrent: true, lastSubmission: null },
    { payload: { uid: 'laptop-session', loginTs: Math.floor(Date.now() / 1000) - 86_400, exp: 0, iat: 0, jti: 'b', kind: 'Session', accountId: 'demouser0001' }, clientId: 'web-app', accountId: 'demouser0001', expiresAt: Date.now() + 3_600_000, isCurrent: false, lastSubmission: null },
  ],
  secret: 'JBSWY3DPEHPK3PXPJBSWY3DP',
  codes: Array.from({ length: 10 }, (_, i) => `${i}a${i}b${i}c${i}d${i}e`),
  deleted: [],
  withoutRecord: [],
};

const json = (route, status, body) => route.fulfill({ status, contentType: 'application/json', body: body === undefined ? '' : JSON.stringify(body) });
const denied = { code: 'verification_record.permission_denied', message: 'Permission denied, please re-authenticate.' };

async function emulate(route) {
  const req = route.request();
  const url = new URL(req.url());
  const path = url.pathname.replace('/api/my-account', '');
  const record = req.headers()['logto-verification-id'];
  const body = req.postData() ? JSON.parse(req.postData()) : undefined;
  const key = `${req.method()} ${path}`;
  const needsRecord = !['GET /mfa-verifications', 'POST /mfa-verifications/totp-secret/generate', 'POST /mfa-verifications/backup-codes/generate'].includes(key);
  if (needsRecord && !record) {
    documented.withoutRecord.push(key);
    return json(route, 401, denied);
  }
  switch (true) {
    case key === 'GET /mfa-verifications':
      return json(route, 200, documented.factors);
    case key === 'POST /mfa-verifications/totp-secret/generate':
      return json(route, 200, { secret: documented.secret });
    case key === 'POST /mfa-verifications/backup-codes/generate':
      return json(route, 200, { codes: documented.codes });
    case key === 'POST /mfa-verifications' && body.type === 'Totp':
      if (body.secret !== documented.secret || body.code !== totp(documented.secret)) {
        return json(route, 400, { code: 'session.mfa.invalid_totp_code', message: 'Invalid TOTP code.' });
      }
      documented.factors.push({ id: 'totp-1', type: 'Totp', createdAt: new Date().toISOString() });
      return json(route, 204);
    case key === 'POST /mfa-verifications' && body.type === 'BackupCode':
      assert.deepEqual(body.codes, documented.codes);
      documented.factors.push({ id: 'backup-1', type: 'BackupCode', createdAt: new Date().toISOString(), remainCodes: 10 });
      return json(route, 204);
    case req.method() === 'DELETE' && path.startsWith('/mfa-verifications/'):
      documented.deleted.push(path);
      documented.factors = documented.factors.filter((f) => `/mfa-verifications/${f.id}` !== path);
      return json(route, 204);
    case key === 'GET /sessions':
      return json(route, 200, { sessions: documented.sessions });
    case req.method() === 'DELETE' && path.startsWith('/sessions/'):
      assert.equal(url.searchParams.get('revokeGrantsTarget'), 'all');
      documented.deleted.push(path);
      documented.sessions = documented.sessions.filter((s) => `/sessions/${s.payload.uid}` !== path);
      return json(route, 204);
    default:
      return json(route, 404, { code: 'guard.invalid_path', message: 'Not found' });
  }
}

async function screenshot(n, name) {
  await page.screenshot({ path: join(shots, `${n}-${name}.png`), fullPage: (await page.locator('dialog[open]').count()) === 0 });
}

before(async () => {
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  stack = await start();
  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  await context.route(/\/api\/my-account\/(mfa-verifications|sessions)/, emulate);
  page = await context.newPage();
  page.on('pageerror', (err) => problems.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) problems.push(msg.text());
  });
  await signIn(page, stack.site);
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

test('enrols an authenticator app from a QR code made in the page', async () => {
  await page.locator('#mfa:not([hidden])').waitFor();
  assert.match(await page.textContent('#mfa'), /No second step is set up/);
  await page.click('#mfa-add-totp');
  // The step-up comes first (the real module checks the password).
  await page.fill('dialog[open] input[name="password"]', 'Demo-Passw0rd!');
  await page.click('dialog[open] button[type=submit]');
  await page.locator('#totp-qr').waitFor();
  // A QR code: a square SVG of dark modules drawn from the otpauth URI, and the key by hand.
  const qr = await page.locator('#totp-qr').evaluate((svg) => ({
    size: svg.viewBox.baseVal.width, modules: (svg.querySelector('path').getAttribute('d').match(/M/g) || []).length,
    label: svg.getAttribute('aria-label'),
  }));
  assert.ok(qr.size >= 29 && qr.modules > 200, `QR ${JSON.stringify(qr)}`);
  assert.equal(qr.label, 'QR code for your authenticator app');
  assert.equal((await page.textContent('#totp-secret')).replace(/\s/g, ''), documented.secret);
  await screenshot('01', 'totp-qr');
  // What a phone's camera reads from it (zbarimg, a QR decoder) is the otpauth URI of the secret.
  const qrFile = join(shots, 'qr-code.png');
  await page.locator('#totp-qr').screenshot({ path: qrFile });
  const decoded = spawnSync('zbarimg', ['-q', '--raw', qrFile], { encoding: 'utf8' });
  assert.equal(decoded.status, 0, `zbarimg: ${decoded.error?.message || decoded.stderr}`);
  const uri = new URL(decoded.stdout.trim());
  assert.equal(uri.protocol, 'otpauth:');
  assert.equal(uri.host, 'totp');
  assert.equal(uri.searchParams.get('secret'), documented.secret);
  assert.equal(decodeURIComponent(uri.pathname), '/127.0.0.1:demo@example.com');

  await page.fill('dialog[open] input[name="code"]', '000000');
  await page.click('dialog[open] button[type=submit]');
  await page.locator('dialog[open] [role=alert]', { hasText: 'Invalid TOTP code.' }).waitFor();
  await page.fill('dialog[open] input[name="code"]', totp(documented.secret));
  await page.click('dialog[open] button[type=submit]');
  await page.locator('dialog[open]').waitFor({ state: 'detached' });
  await page.locator('#mfa', { hasText: 'Authenticator app' }).waitFor();
});

test('creates backup codes beside the app and shows them once', async () => {
  await page.click('#mfa-add-backup');
  await page.locator('#backup-codes').waitFor();
  assert.deepEqual(await page.locator('#backup-codes li').allTextContents(), documented.codes);
  await screenshot('02', 'backup-codes');
  await page.click('dialog[open] button[type=submit]');
  await page.locator('#mfa', { hasText: 'Backup codes (10 left)' }).waitFor();
  assert.equal(await page.locator('#mfa-add-backup').count(), 0);
});

test('removes a factor after a confirmation', async () => {
  await page.click('#mfa-totp-1-remove');
  await page.locator('dialog[open]', { hasText: 'Remove Authenticator app?' }).waitFor();
  await page.click('dialog[open] button.danger');
  await page.locator('[data-field="mfa-totp-1"]').waitFor({ state: 'detached' });
  assert.ok(documented.deleted.includes('/mfa-verifications/totp-1'));
  await screenshot('03', 'factors');
});

test('lists the devices after a step-up and signs out another one', async () => {
  await page.locator('#sessions:not([hidden])').waitFor();
  await page.click('#sessions-show');
  await page.locator('#sessions-list', { hasText: 'This device' }).waitFor();
  // This device cannot be signed out from here; the other can.
  assert.equal(await page.locator('[data-field="session-current-session"] button').count(), 0);
  await screenshot('04', 'sessions');
  await page.click('#session-laptop-session-sign-out');
  await page.locator('dialog[open]', { hasText: 'Sign out this device?' }).waitFor();
  await page.click('dialog[open] button.danger');
  await page.locator('[data-field="session-laptop-session"]').waitFor({ state: 'detached' });
  assert.ok(documented.deleted.includes('/sessions/laptop-session'));
  await page.locator('#sessions-list', { hasText: 'You are signed in nowhere else.' }).waitFor();
});

test('every protected call carried the step-up record, and nothing broke on the page', () => {
  // Only the probe that tells whether the sessions route exists goes without a record.
  assert.deepEqual(documented.withoutRecord, ['GET /sessions']);
  assert.deepEqual(problems, []);
});
