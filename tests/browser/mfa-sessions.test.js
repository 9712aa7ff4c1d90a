// The page's two-step verification and devices parts, in chromium, against the real ./caddy and
// dev core: sign-in, the step-up, and every MFA and sessions call go through the module to the
// core (the Management API), and the core's records are checked after each step. Screenshots in
// tests/browser/output/mfa-sessions/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { start, outputDir, launchBrowser, signIn, totp, demo, management, mint, introspect } from './harness.js';

const shots = join(outputDir, 'mfa-sessions');
let stack;
let browser;
let page;
const problems = [];
// unproven are the MFA and sessions calls the page sent without a step-up record.
const unproven = [];
// elsewhere is the demo user signed in to another application (its own OIDC session).
let elsewhere;

// coreFactors are the demo user's factors as the core keeps them.
const coreFactors = () => management(stack.coreURL, 'GET', `/api/users/${demo.id}/mfa-verifications`);
const setFactors = (factors) => management(stack.coreURL, 'PATCH', '/api/sign-in-exp', { mfa: { factors, policy: 'PromptAtSignInAndSignUp' } });

async function screenshot(n, name) {
  await page.screenshot({ path: join(shots, `${n}-${name}.png`), fullPage: (await page.locator('dialog[open]').count()) === 0 });
}

// reload loads the page again (a silent sign-in at the core) until its optional parts are in.
async function reload() {
  await page.reload();
  await page.waitForSelector('body[data-parts="ready"]', { timeout: 20_000 });
}

before(async () => {
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  stack = await start();
  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  elsewhere = await mint(stack.coreURL, 'openid profile urn:logto:scope:sessions');
  page = await context.newPage();
  page.on('pageerror', (err) => problems.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) problems.push(msg.text());
  });
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (/^\/api\/my-account\/(mfa-verifications|sessions)/.test(u.pathname) && !req.headers()['logto-verification-id']) {
      unproven.push(`${req.method()} ${u.pathname}`);
    }
  });
  await signIn(page, stack.site);
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

test('offers only the factors the core enables', async () => {
  // No factor enabled (Logto's default): nothing to show or add. (The module has not read the
  // sign-in experience yet, so its policy cache never holds this state.)
  await setFactors([]);
  await reload();
  assert.ok(await page.locator('#mfa').evaluate((el) => el.hidden), 'two-step verification shown with no factor enabled');
  await setFactors(['Totp', 'BackupCode']);
  await reload();
  assert.ok(await page.locator('#mfa').evaluate((el) => !el.hidden), 'two-step verification hidden with factors enabled');
  assert.match(await page.textContent('#mfa'), /No second step is set up/);
  // Backup codes only beside another factor, as Logto requires.
  assert.equal(await page.locator('#mfa-add-backup').count(), 0);
});

test('enrols an authenticator app from a QR code made in the page', async () => {
  await page.click('#mfa-add-totp');
  // The step-up comes first (the module checks the password at the core).
  await page.fill('dialog[open] input[name="password"]', demo.password);
  await page.click('dialog[open] button[type=submit]');
  await page.locator('#totp-qr').waitFor();
  // A QR code: a square SVG of dark modules drawn from the otpauth URI, and the key by hand.
  const qr = await page.locator('#totp-qr').evaluate((svg) => ({
    size: svg.viewBox.baseVal.width, modules: (svg.querySelector('path').getAttribute('d').match(/M/g) || []).length,
    label: svg.getAttribute('aria-label'),
  }));
  assert.ok(qr.size >= 29 && qr.modules > 200, `QR ${JSON.stringify(qr)}`);
  assert.equal(qr.label, 'QR code for your authenticator app');
  const secret = (await page.textContent('#totp-secret')).replace(/\s/g, '');
  assert.match(secret, /^[A-Z2-7]{16,}$/, 'a base32 secret from the module');
  await screenshot('01', 'totp-qr');
  // What a phone's camera reads from it (zbarimg, a QR decoder) is the otpauth URI of the secret.
  const qrFile = join(shots, 'qr-code.png');
  await page.locator('#totp-qr').screenshot({ path: qrFile });
  const decoded = spawnSync('zbarimg', ['-q', '--raw', qrFile], { encoding: 'utf8' });
  assert.equal(decoded.status, 0, `zbarimg: ${decoded.error?.message || decoded.stderr}`);
  const uri = new URL(decoded.stdout.trim());
  assert.equal(uri.protocol, 'otpauth:');
  assert.equal(uri.host, 'totp');
  assert.equal(uri.searchParams.get('secret'), secret);
  assert.equal(decodeURIComponent(uri.pathname), `/127.0.0.1:${demo.email}`);

  // A wrong code: the module's (Logto's) message, the dialog stays, nothing bound.
  await page.fill('dialog[open] input[name="code"]', totp(secret, Date.now() - 10 * 60_000));
  await page.click('dialog[open] button[type=submit]');
  await page.locator('dialog[open] [role=alert]', { hasText: 'Invalid TOTP code.' }).waitFor();
  assert.deepEqual(await coreFactors(), []);
  await page.fill('dialog[open] input[name="code"]', totp(secret));
  await page.click('dialog[open] button[type=submit]');
  await page.locator('dialog[open]').waitFor({ state: 'detached' });
  await page.locator('#mfa', { hasText: 'Authenticator app' }).waitFor();
  assert.deepEqual((await coreFactors()).map((f) => f.type), ['Totp']);
});

test('creates backup codes beside the app and shows them once', async () => {
  await page.click('#mfa-add-backup');
  await page.locator('#backup-codes').waitFor();
  const codes = await page.locator('#backup-codes li').allTextContents();
  assert.equal(codes.length, 10);
  assert.equal(new Set(codes).size, 10, 'ten different codes');
  await screenshot('02', 'backup-codes');
  await page.click('dialog[open] button[type=submit]');
  await page.locator('#mfa', { hasText: 'Backup codes (10 left)' }).waitFor();
  assert.equal(await page.locator('#mfa-add-backup').count(), 0);
  const backup = (await coreFactors()).find((f) => f.type === 'BackupCode');
  assert.ok(backup, 'the core keeps the backup codes');
  assert.equal(backup.remainCodes, 10);
});

test('removes a factor after a confirmation', async () => {
  const app = (await coreFactors()).find((f) => f.type === 'Totp');
  await page.click(`[data-field="mfa-${app.id}"] button.danger`);
  await page.locator('dialog[open]', { hasText: 'Remove Authenticator app?' }).waitFor();
  await page.click('dialog[open] button.danger');
  await page.locator(`[data-field="mfa-${app.id}"]`).waitFor({ state: 'detached' });
  await screenshot('03', 'factors');
  // The page shows what the core keeps.
  const left = await coreFactors();
  assert.ok(!left.some((f) => f.type === 'Totp'), 'the app is removed at the core');
  assert.equal(await page.locator('#mfa [data-field^="mfa-"]').count(), left.length);
});

test('lists the devices after a step-up and signs out another one', async () => {
  // The core's OIDC sessions: this browser's (the page's token carries its sid), which cannot be
  // signed out here, and the other application's.
  const coreSessions = async () => (await management(stack.coreURL, 'GET', `/api/users/${demo.id}/sessions`)).sessions.map((s) => s.payload.uid);
  assert.equal((await coreSessions()).length, 2);
  await page.locator('#sessions:not([hidden])').waitFor();
  await page.click('#sessions-show');
  await page.locator('#sessions-list', { hasText: 'This device' }).waitFor();
  assert.equal(await page.locator('#sessions-list li', { hasText: 'This device' }).locator('button').count(), 0);
  await screenshot('04', 'sessions');
  await page.click(`[data-field="session-${elsewhere.session_id}"] button.danger`);
  await page.locator('dialog[open]', { hasText: 'Sign out this device?' }).waitFor();
  await page.click('dialog[open] button.danger');
  await page.locator(`[data-field="session-${elsewhere.session_id}"]`).waitFor({ state: 'detached' });
  await page.locator('#sessions-list', { hasText: 'You are signed in nowhere else.' }).waitFor();
  // At the core: that session is gone, and its token with it; this browser's stays.
  const left = await coreSessions();
  assert.equal(left.length, 1);
  assert.ok(!left.includes(elsewhere.session_id));
  assert.equal((await introspect(stack.coreURL, elsewhere.access_token)).active, false);
});

test('every protected call carried the step-up record, and nothing broke on the page', () => {
  // Without a record go only the reads of the factors, the generators (Logto asks none for
  // them), and the probe that tells whether the sessions route exists.
  const allowed = new Set(['GET /api/my-account/mfa-verifications', 'POST /api/my-account/mfa-verifications/totp-secret/generate',
    'POST /api/my-account/mfa-verifications/backup-codes/generate', 'GET /api/my-account/sessions']);
  assert.deepEqual(unproven.filter((c) => !allowed.has(c)), []);
  assert.ok(unproven.includes('GET /api/my-account/sessions'), 'the sessions probe was sent');
  assert.deepEqual(problems, []);
});
