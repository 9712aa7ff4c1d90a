// The account page in a real browser: Debian's chromium driven by playwright-core, against the
// real ./caddy in front of the dev identity core. One user story from sign-in to sign-out, in
// order; each step leaves a screenshot in tests/browser/output/account/. Sizes and times are printed,
// never asserted (the machine is shared).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { start, outputDir, demo, coreUser, passwordMatches, introspect, lastCode, totp, launchBrowser } from './harness.js';

let stack;
let browser;
let context;
let page;
let accessToken = ''; // the page's token, seen on the wire, to check that sign-out ends it
const problems = []; // console errors, CSP violations and uncaught exceptions
const shots = join(outputDir, 'account');
let shot = 0;

// screenshot saves the page as the user sees it: the whole page, or with a dialog open the
// viewport (a full-page capture would cut the dialog's backdrop at the viewport's edge).
async function screenshot(name) {
  shot += 1;
  const file = join(shots, `${String(shot).padStart(2, '0')}-${name}.png`);
  const dialog = await page.locator('dialog[open]').count();
  await page.screenshot({ path: file, fullPage: dialog === 0 });
  return file;
}

// watch collects the page's problems; the main page's token exchanges are noted in accessToken.
function watch(p) {
  // A refused request is logged by the browser itself ("Failed to load resource"): those are the
  // test's own wrong passwords and codes, and the probes of optional routes.
  p.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) problems.push(`console: ${msg.text()}`);
  });
  p.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  p.on('response', async (resp) => {
    if (p === page && resp.url().endsWith('/oidc/token') && resp.request().method() === 'POST') {
      try { accessToken = (await resp.json()).access_token || accessToken; } catch { /* not JSON */ }
    }
  });
}

async function ready() {
  await page.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
}

before(async () => {
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  stack = await start();
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  page = await context.newPage();
  watch(page);
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

// wire counts the bytes a page receives (CDP encodedDataLength: headers and body as they came
// over the connection) per request URL, from when it is called until stop().
async function wire(p) {
  const cdp = await p.context().newCDPSession(p);
  await cdp.send('Network.enable');
  const urls = new Map();
  const bytes = new Map();
  cdp.on('Network.requestWillBeSent', (e) => {
    // A redirect's response ends here: count it under its own URL.
    if (e.redirectResponse) bytes.set(`${e.requestId}:${e.redirectResponse.url}`, { url: e.redirectResponse.url, n: e.redirectResponse.encodedDataLength || 0 });
    urls.set(e.requestId, e.request.url);
  });
  cdp.on('Network.loadingFinished', (e) => bytes.set(e.requestId, { url: urls.get(e.requestId), n: e.encodedDataLength }));
  return {
    stop: async () => {
      await cdp.detach();
      return [...bytes.values()];
    },
  };
}

test('signs in with the core (code + PKCE) and shows the account', async () => {
  const meter = await wire(page);
  const started = Date.now();
  const first = await page.goto(`${stack.site}/account`);
  // The page's own response carries the strict headers.
  const h = first.headers();
  assert.match(h['content-security-policy'], /script-src 'self';/);
  assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
  assert.doesNotMatch(h['content-security-policy'], /unsafe-inline|unsafe-eval/);
  assert.equal(h['x-frame-options'], 'DENY');
  assert.equal(h['referrer-policy'], 'no-referrer');

  // The page sends the browser to the core's sign-in form (same origin, through Caddy).
  await page.waitForURL(/\/oidc\/auth/);
  const auth = new URL(page.url());
  assert.equal(auth.origin, stack.site);
  assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(auth.searchParams.get('client_id'), 'account-page');
  assert.equal(auth.searchParams.get('redirect_uri'), `${stack.site}/account/callback`);
  for (const s of ['openid', 'profile', 'email', 'identities']) assert.ok(auth.searchParams.get('scope').split(' ').includes(s), s);
  await screenshot('sign-in-form');
  await page.fill('#identifier', demo.username);
  await page.fill('#password', demo.password);
  await page.click('button[type=submit]');
  await ready();
  const elapsed = Date.now() - started;
  const received = await meter.stop();
  await page.waitForSelector('body[data-parts="ready"]'); // the optional parts too, for the picture
  await screenshot('account');

  // The code left the address bar, and no token is in web storage.
  assert.equal(new URL(page.url()).pathname, '/account');
  assert.equal(new URL(page.url()).search, '');
  assert.ok(accessToken, 'the page exchanged a code for a token');
  const storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.ok(!storage.includes(accessToken), 'the access token is in web storage');
  assert.equal(await page.evaluate(() => localStorage.length), 0);

  assert.equal(await page.textContent('#name-value'), 'Demo User');
  assert.equal(await page.textContent('#username-value'), demo.username);
  assert.equal(await page.textContent('#email-value'), demo.email);

  const pageBytes = received.filter((r) => new URL(r.url).pathname.startsWith('/account')).reduce((a, r) => a + r.n, 0);
  const total = received.reduce((a, r) => a + r.n, 0);
  console.log(`# first load, signing in: page ${pageBytes} bytes over the wire (HTML, CSS, scripts), ${total} bytes in all ` +
    `(with the sign-in form, the token exchange and the API), ${received.length} responses, ${elapsed} ms including typing`);
});

test('a signed-in visit renders the account quickly (measured, not asserted)', async () => {
  // A fresh browser context with the core's session cookie: an empty cache, a silent sign-in.
  const fresh = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  await fresh.addCookies(await context.cookies());
  const p = await fresh.newPage();
  watch(p);
  const meter = await wire(p);
  const started = Date.now();
  await p.goto(`${stack.site}/account`);
  await p.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
  const shown = Date.now() - started;
  const received = await meter.stop();
  if (process.env.DEBUG_WIRE) for (const r of received) console.log(`#   ${r.n}\t${r.url}`);
  const inPage = await p.evaluate(() => {
    const ready = performance.getEntriesByName('account-page:ready')[0];
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    return { ready: Math.round(ready.startTime), fcp: fcp ? Math.round(fcp.startTime) : -1 };
  });
  const pageBytes = received.filter((r) => new URL(r.url).pathname.startsWith('/account')).reduce((a, r) => a + r.n, 0);
  const total = received.reduce((a, r) => a + r.n, 0);
  console.log(`# first render (signed in at the core, empty cache): account shown ${shown} ms after navigation ` +
    `(redirect to the core and back, token, API); in the final document: first paint ${inPage.fcp} ms, account rendered ${inPage.ready} ms`);
  console.log(`# bytes over the wire: page ${pageBytes}, in all ${total} (${received.length} responses)`);
  assert.equal(await p.textContent('#username-value'), demo.username);
  await fresh.close();
});

test('changes the name', async () => {
  await page.click('#name-edit');
  const input = page.locator('input[name="name"]');
  assert.equal(await page.evaluate(() => document.activeElement?.name), 'name', 'focus moves to the field');
  await input.fill('Ada Lovelace');
  await screenshot('edit-name');
  await page.click('#name-save');
  await page.waitForFunction(() => document.querySelector('#name-value')?.textContent === 'Ada Lovelace');
  assert.equal((await coreUser(stack.coreURL)).name, 'Ada Lovelace');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'name-edit', 'focus returns to Edit');
});

test('changes the username after a step-up with the current password', async () => {
  await page.click('#username-edit');
  await page.fill('input[name="username"]', 'ada_l');
  await page.click('#username-save');
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /Confirm it is you/);
  // A wrong password: Logto's message, in the dialog, and nothing changed.
  await dialog.locator('input[name="password"]').fill('not-my-password');
  await dialog.locator('button[type=submit]').click();
  await dialog.locator('[role=alert]:not(:empty)').waitFor();
  await screenshot('step-up-wrong-password');
  assert.equal((await coreUser(stack.coreURL)).username, demo.username);

  await dialog.locator('input[name="password"]').fill(demo.password);
  await dialog.locator('button[type=submit]').click();
  await page.waitForFunction(() => document.querySelector('#username-value')?.textContent === 'ada_l');
  assert.equal((await coreUser(stack.coreURL)).username, 'ada_l');
});

test('changes the password', async () => {
  await page.click('#password-change');
  // The step-up record from the username change is still fresh: straight to the new password.
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor();
  await dialog.locator('input[name="password"]').fill('Another-Passw0rd!');
  await dialog.locator('input[name="again"]').fill('Another-Passw0rd!');
  await screenshot('new-password');
  await dialog.locator('button[type=submit]').click();
  await dialog.waitFor({ state: 'detached' });
  await page.waitForFunction(() => document.getElementById('status')?.textContent.includes('password'));
  assert.ok(await passwordMatches(stack.coreURL, 'Another-Passw0rd!'));
  assert.ok(!await passwordMatches(stack.coreURL, demo.password));
});

test('changes the primary email with a verification code', async () => {
  await page.click('#email-change');
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor();
  await dialog.locator('input[name="value"]').fill('ada@example.com');
  await dialog.locator('button[type=submit]').click();
  await dialog.locator('input[name="code"]').waitFor();
  // A wrong code first: Logto's message shows, the dialog stays.
  await dialog.locator('input[name="code"]').fill('000000');
  await dialog.locator('button[type=submit]').click();
  await dialog.locator('[role=alert]:not(:empty)').waitFor();
  await screenshot('email-code');
  await dialog.locator('input[name="code"]').fill(await lastCode(stack.coreURL, 'ada@example.com'));
  await dialog.locator('button[type=submit]').click();
  await page.waitForFunction(() => document.querySelector('#email-value')?.textContent === 'ada@example.com');
  assert.equal((await coreUser(stack.coreURL)).primaryEmail, 'ada@example.com');
});

test('asks before removing the email, and a cancel keeps it', async () => {
  await page.click('#email-remove');
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /Remove your email address\?/);
  await screenshot('confirm-remove-email');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal((await coreUser(stack.coreURL)).primaryEmail, 'ada@example.com');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'email-remove', 'focus returns to the button');
});

test('connects a social account through the provider, then disconnects it', async () => {
  await page.click('#social-connect-mock-social');
  // The dev core's page plays the provider: the person picks the social account and continues.
  await page.waitForURL(/\/dev\/mock-social/);
  await page.fill('#userId', 'ada-on-social');
  await page.click('button[type=submit]');
  // Back on the page, signed in again silently: the page's memory (and the step-up) is gone,
  // so linking asks who it is.
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor({ timeout: 20_000 });
  assert.equal(new URL(page.url()).pathname, '/account', 'the provider\'s answer left the address bar');
  await dialog.locator('input[name="password"]').fill('Another-Passw0rd!');
  await dialog.locator('button[type=submit]').click();
  await page.locator('[data-field="social-mock-social"]').waitFor();
  await screenshot('social-connected');
  assert.equal((await coreUser(stack.coreURL)).identities['mock-social']?.userId, 'ada-on-social');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('account-page:social')), null, 'the provider\'s answer is dropped once used');

  await page.click('#social-mock-social-disconnect');
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /Disconnect mock-social-connector\?/);
  await dialog.getByRole('button', { name: 'Disconnect' }).click();
  await page.locator('[data-field="social-mock-social"]').waitFor({ state: 'detached' });
  assert.deepEqual((await coreUser(stack.coreURL)).identities, {});
});

test('a step-up can be a code to the primary email instead of the password', async () => {
  // A new tab: the page's memory, and with it the last step-up, starts empty.
  const tab = await context.newPage();
  watch(tab);
  try {
    await tab.goto(`${stack.site}/account`);
    await tab.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
    await tab.click('#username-edit');
    await tab.fill('input[name="username"]', 'ada_coded');
    await tab.click('#username-save');
    const dialog = tab.locator('dialog[open]');
    await dialog.getByRole('button', { name: 'Send a code to ada@example.com' }).click();
    await dialog.getByRole('button', { name: 'Send code' }).click();
    await dialog.locator('input[name="code"]').waitFor();
    await dialog.locator('input[name="code"]').fill(await lastCode(stack.coreURL, 'ada@example.com'));
    await dialog.locator('button[type=submit]').click();
    await tab.waitForFunction(() => document.querySelector('#username-value')?.textContent === 'ada_coded');
    assert.equal((await coreUser(stack.coreURL)).username, 'ada_coded');
  } finally {
    await tab.close();
  }
});

test('a read-only field is shown but cannot be edited', async () => {
  const avatar = page.locator('[data-field="avatar"]');
  assert.equal(await avatar.count(), 1);
  assert.match(await avatar.textContent(), /Managed by your administrator/);
  assert.equal(await avatar.locator('button').count(), 0);
  assert.equal(await page.locator('input[name="avatar"]').count(), 0);
});

test('an off field is not shown', async () => {
  assert.equal(await page.locator('[data-field="phone"]').count(), 0);
  assert.doesNotMatch(await page.textContent('main'), /Phone/);
});

// answerStepUp confirms with the password when the page asks (a fresh step-up record is reused
// without asking), then waits for what comes next.
async function answerStepUp(next) {
  const asked = page.locator('dialog[open] input[name="password"][autocomplete="current-password"]');
  await Promise.race([asked.waitFor(), page.locator(next).waitFor()]);
  if (await asked.count()) {
    await asked.fill('Another-Passw0rd!');
    await page.locator('dialog[open] button[type=submit]').click();
    await page.locator(next).waitFor();
  }
}

test('two-step verification and devices, through the module', async () => {
  await page.waitForSelector('body[data-parts="ready"]');
  await page.locator('#mfa:not([hidden])').waitFor();
  await page.click('#mfa-add-totp');
  await answerStepUp('#totp-qr');
  await screenshot('mfa-totp-qr');
  const secret = (await page.textContent('#totp-secret')).replace(/\s/g, '');
  await page.fill('dialog[open] input[name="code"]', totp(secret));
  await page.click('dialog[open] button[type=submit]');
  await page.locator('dialog[open]').waitFor({ state: 'detached' });
  await page.locator('#mfa', { hasText: 'Authenticator app' }).waitFor();
  // Backup codes, beside the app: shown once, then active.
  await page.click('#mfa-add-backup');
  await answerStepUp('#backup-codes');
  assert.equal(await page.locator('#backup-codes li').count(), 10);
  await page.click('dialog[open] button[type=submit]');
  await page.locator('#mfa', { hasText: 'Backup codes' }).waitFor();
  await screenshot('mfa-factors');

  await page.locator('#sessions:not([hidden])').waitFor();
  await page.click('#sessions-show');
  await answerStepUp('#sessions-list .list');
  await page.locator('#sessions-list', { hasText: 'This device' }).waitFor();
  await screenshot('sessions');
});

test('is usable at phone width, and every control has a name', async () => {
  await page.setViewportSize({ width: 375, height: 812 });
  await page.waitForFunction(() => document.getElementById('status').textContent === '', null, { timeout: 10_000 });
  await screenshot('phone');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 375px`);
  const unnamed = await page.evaluate(() => [...document.querySelectorAll('button, input')]
    .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || el.textContent.trim()))
    .map((el) => el.outerHTML));
  assert.deepEqual(unnamed, []);
  // Keyboard: the first Tab stops are the sign-out button and then the first Edit button.
  await page.setViewportSize({ width: 1100, height: 900 });
  await page.click('#brand'); // moves the sequential focus starting point to the top
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'sign-out');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'name-edit');
});

test('renews the access token before it expires', async () => {
  // Tokens issued now live 62 s: the page renews 60 s before expiry, so at once.
  const ttl = (seconds) => fetch(`${stack.coreURL}/dev/user-token-ttl`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ seconds }),
  });
  const fresh = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  await fresh.addCookies(await context.cookies());
  const p = await fresh.newPage();
  watch(p);
  const tokens = [];
  p.on('response', async (resp) => {
    if (resp.url().endsWith('/oidc/token')) tokens.push((await resp.json()).access_token);
  });
  // With a refresh token the page uses it; without one (a core that issued none) it signs in
  // again silently, once no form is open.
  const renewed = new Promise((resolve) => p.on('request', (req) => {
    const u = new URL(req.url());
    if (u.pathname === '/oidc/auth' && u.searchParams.get('prompt') === 'none') resolve('a silent sign-in (prompt=none)');
    if (u.pathname === '/oidc/token' && (req.postData() || '').includes('grant_type=refresh_token')) resolve('the refresh token');
  }));
  try {
    assert.equal((await ttl(62)).status, 204);
    await p.goto(`${stack.site}/account`);
    await p.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
    await ttl(0); // the renewed token lives the usual hour
    const how = await Promise.race([renewed, new Promise((_, fail) => setTimeout(() => fail(new Error('no renewal within 30 s')), 30_000))]);
    for (let i = 0; i < 200 && tokens.length < 2; i += 1) await new Promise((r) => setTimeout(r, 100));
    assert.ok(tokens.length >= 2, `one token, then a renewed one: ${tokens.length}`);
    // A silent sign-in reloads the page: it is back once the renewed token has loaded the account.
    await p.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
    assert.notEqual(tokens.at(-1), tokens[0]);
    // The renewed token works at the API.
    await p.click('#name-edit');
    await p.fill('input[name="name"]', 'Ada King');
    await p.click('#name-save');
    await p.waitForFunction(() => document.querySelector('#name-value')?.textContent === 'Ada King');
    console.log(`# the token was renewed before expiry by ${how}`);
  } finally {
    await ttl(0);
    await fresh.close();
  }
});

test('signs out: the session ends at the core and the token is dead', async () => {
  const token = accessToken;
  assert.equal((await introspect(stack.coreURL, token)).active, true);
  await page.click('#sign-out');
  await page.waitForURL(`${stack.site}/account`);
  await page.getByText('You are signed out.').waitFor();
  await screenshot('signed-out');
  assert.equal((await introspect(stack.coreURL, token)).active, false);
  // Signing in again needs the password: the core's session is gone.
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/oidc\/auth/);
  assert.equal(await page.locator('#password').count(), 1);
});

test('no console error, CSP violation or uncaught exception on the way', () => {
  assert.deepEqual(problems, []);
});
