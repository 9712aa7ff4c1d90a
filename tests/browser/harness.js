// Starts what the browser tests run against: the dev identity core and the real ./caddy in front
// of it, on free loopback ports, and stops both when the tests end. Nothing here reads outside
// the repository.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { createHmac } from 'node:crypto';
import { chromium } from 'playwright-core';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const outputDir = join(root, 'tests/browser/output');

export const demo = { id: 'demouser0001', username: 'demo', email: 'demo@example.com', password: 'Demo-Passw0rd!' };
const m2m = { id: 'm2m-gateway', secret: 'dev-gateway-secret', resource: 'https://default.logto.app/api' };

export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

// waitFor polls fn until it returns a truthy value or timeout ms pass.
async function waitFor(what, fn, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// accountCenter is the site's static account-center setting for the tests: avatar read-only,
// phone off, the rest editable.
const accountCenter = `
			enabled true
			fields {
				name edit
				avatar read_only
				username edit
				email edit
				phone off
				password edit
				profile edit
				social edit
				customData off
				mfa edit
				session edit
			}`;

// start runs the dev core and Caddy; the returned stack's stop() ends both.
export async function start() {
  const dir = mkdtempSync(join(tmpdir(), 'account-page-'));
  const procs = [];
  const stop = async () => {
    for (const p of procs.reverse()) {
      if (p.exitCode === null && p.signalCode === null) {
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const caddyBin = process.env.CADDY_BIN || join(root, 'caddy');
    if (!existsSync(caddyBin)) throw new Error(`${caddyBin} is missing: run ./xcaddy.sh build`);
    let devcoreBin = process.env.DEVCORE_BIN;
    if (!devcoreBin) {
      devcoreBin = join(dir, 'devcore');
      const built = spawnSync('go', ['build', '-o', devcoreBin, './tests/devcore/cmd/devcore'], { cwd: root, stdio: 'inherit' });
      if (built.status !== 0) throw new Error('go build of the dev core failed');
    }

    const [httpPort, adminPort] = [await freePort(), await freePort()];
    const site = `http://127.0.0.1:${httpPort}`;
    const core = spawn(devcoreBin, ['-listen', '127.0.0.1:0', '-account-page', `${site}/account`], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(core);
    const line = await new Promise((ok, fail) => {
      core.once('exit', (code) => fail(new Error(`dev core exited (${code})`)));
      createInterface({ input: core.stdout }).once('line', ok);
    });
    const coreURL = JSON.parse(line).url;

    const caddyfile = `{
	admin 127.0.0.1:${adminPort}
	default_bind 127.0.0.1
	auto_https off
}

${site} {
	account_api {
		core_url ${coreURL}
		client_id ${m2m.id}
		client_secret ${m2m.secret}
		account_center {${accountCenter}
		}
		page /account {
			client_id account-page
		}
	}
	reverse_proxy ${coreURL}
}
`;
    writeFileSync(join(dir, 'Caddyfile'), caddyfile);
    const caddy = spawn(caddyBin, ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, XDG_CONFIG_HOME: join(dir, 'config'), XDG_DATA_HOME: join(dir, 'data') },
    });
    procs.push(caddy);
    let caddyLog = '';
    caddy.stderr.on('data', (b) => { caddyLog = (caddyLog + b).slice(-5_000); });
    await waitFor('caddy', async () => {
      if (caddy.exitCode !== null) throw Object.assign(new Error(`caddy exited:\n${caddyLog}`), { fatal: true });
      // The site answers once the config is loaded (the admin API refuses fetch's
      // Sec-Fetch-Mode without an origin, so ask the site itself).
      return (await fetch(`${site}/account`)).ok;
    }).catch((err) => { throw new Error(`${err.message}\n${caddyLog}`); });

    return { site, coreURL, stop, caddyLog: () => caddyLog };
  } catch (err) {
    await stop();
    throw err;
  }
}

// The core's view, through its Management API (as the gateway's machine-to-machine app).
export async function managementToken(coreURL) {
  const resp = await fetch(`${coreURL}/oidc/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${m2m.id}:${m2m.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: m2m.resource, scope: 'all' }),
  });
  return (await resp.json()).access_token;
}

// management makes a Management API call that must succeed; it resolves to the JSON answer, or
// null for a 204.
export async function management(coreURL, method, path, body) {
  const resp = await fetch(`${coreURL}${path}`, {
    method,
    headers: { authorization: `Bearer ${await managementToken(coreURL)}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!resp.ok) throw new Error(`${method} ${path}: ${resp.status} ${await resp.text()}`);
  return resp.status === 204 ? null : resp.json();
}

export function coreUser(coreURL, id = demo.id) {
  return management(coreURL, 'GET', `/api/users/${id}`);
}

export async function passwordMatches(coreURL, password, id = demo.id) {
  const resp = await fetch(`${coreURL}/api/users/${id}/password/verify`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await managementToken(coreURL)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ password }),
  });
  return resp.status === 204;
}

export async function introspect(coreURL, token) {
  const resp = await fetch(`${coreURL}/oidc/token/introspection`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${m2m.id}:${m2m.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ token }),
  });
  return resp.json();
}

// lastCode is the code the dev core's mock connector "sent" to an address.
export async function lastCode(coreURL, to) {
  const resp = await fetch(`${coreURL}/dev/verification-codes?to=${encodeURIComponent(to)}`);
  if (!resp.ok) throw new Error(`no code sent to ${to}`);
  return (await resp.json()).code;
}

// mint is a user token from the dev core's /dev API, as if the demo user had signed in to another
// application (a session of its own, session_id): {access_token, session_id, grant_id}.
export async function mint(coreURL, scope) {
  const resp = await fetch(`${coreURL}/dev/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId: demo.id, scope }),
  });
  return resp.json();
}


// totp is the current RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret, as an
// authenticator app computes it.
export function totp(secret, now = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secret.replace(/[\s=]/g, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.alloc(Math.floor(bits.length / 8));
  for (let i = 0; i < key.length; i += 1) key[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(now / 30_000)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

// launchBrowser starts Debian's chromium headless. Playwright gives every launch a new, empty
// --user-data-dir; the flags keep chromium off the network this machine does not have.
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// signIn opens the account page and signs in on the dev core's form.
export async function signIn(page, site, { username = demo.username, password = demo.password } = {}) {
  await page.goto(`${site}/account`);
  await page.waitForURL(/\/oidc\/auth/);
  await page.fill('#identifier', username);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
}
