// The web console in Debian's Chromium, driven by Playwright (playwright-core).
//   CONSOLE_TEST='{"base","key","other_key","fixture","seeded","cookie_value","shots"}' node console.mjs
// base: the service (http://HOST:PORT); key / other_key: two tenants' keys;
// fixture: the fixture site's origin; seeded: a session id the test made
// through the API (with a cookie whose value is cookie_value); shots: the
// directory the README's screenshots are written to; home: the service's
// SESSHOST_HOME (to find, and kill, the session's Chromium).
// Prints one JSON line of what it saw (the Rust test asserts on it) and
// exits 1 at the first check that fails here.
import { readdirSync, readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.env.CONSOLE_TEST);
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const out = {};
const t0 = performance.now();
const log = (m) => process.stderr.write(`[console.mjs ${((performance.now() - t0) / 1000).toFixed(1)} s] ${m}\n`);
const check = (ok, what) => { if (!ok) throw new Error(`check failed: ${what}`); };

async function apiCall(method, path, key, body) {
  const r = await fetch(cfg.base + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null };
}

// The session's Chromium (its profile is under the service's home/run).
function chromiumOf(home) {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let cmd;
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
    if (cmd.includes('--user-data-dir=') && cmd.includes(`${home}/run`) && !cmd.includes('--type=')) return Number(pid);
  }
  return null;
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await ctx.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(cfg.base + '/');

  // A wrong key is refused, with the API's own words.
  log('wrong key');
  await page.getByLabel('API key').fill('shk_not_a_key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor({ state: 'visible' });
  out.wrong_key_alert = await alert.textContent();
  check(out.wrong_key_alert.includes('401 unauthorized'), `wrong key alert: ${out.wrong_key_alert}`);
  check(await page.locator('#sessions').isHidden(), 'no table for a wrong key');
  out.key_in_cookie = (await ctx.cookies()).length;
  await page.screenshot({ path: `${cfg.shots}/signin.png` });

  // Sign in: the table shows what the API says.
  log('sign in');
  out.names = { 'API key': await page.getByLabel('API key', { exact: true }).count(), 'Sign in': await page.getByRole('button', { name: 'Sign in' }).count() };
  await page.getByLabel('API key').fill(cfg.key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator(`#table tbody tr[data-id="${cfg.seeded}"]`).waitFor();
  check(await alert.isHidden(), 'no error after sign in');
  out.key_storage = await page.evaluate(() => ({ session: Object.keys(sessionStorage), local: Object.keys(localStorage), cookie: document.cookie }));
  const api = await apiCall('GET', '/v1/sessions', cfg.key);
  const rows = await page.locator('#table tbody tr').evaluateAll((trs) => trs.map((tr) => ({
    id: tr.dataset.id,
    state: tr.children[1].textContent,
    tags: [...tr.children[2].querySelectorAll('.tag')].map((t) => t.textContent),
    holder: tr.children[4].textContent,
  })));
  out.table = rows;
  out.api = api.json.sessions.map((s) => ({ id: s.id, state: s.state, tags: s.tags }));
  check(rows.length === api.json.sessions.length, 'as many rows as the API lists');
  for (const s of api.json.sessions) {
    const r = rows.find((x) => x.id === s.id);
    check(r && r.state === s.state && JSON.stringify(r.tags) === JSON.stringify(s.tags), `row ${s.id} matches the API`);
  }

  // Search filters the table.
  await page.getByLabel('Search').fill('seeded');
  out.search_rows = await page.locator('#table tbody tr').count();
  await page.screenshot({ path: `${cfg.shots}/sessions.png` });
  await page.getByLabel('Search').fill('');

  // Details: cookie values hidden until revealed.
  log('details');
  await page.locator(`#table tbody tr[data-id="${cfg.seeded}"]`).click();
  await page.getByRole('button', { name: 'Reveal values' }).waitFor();
  await page.locator('#d-cookies table').first().waitFor();
  out.cookie_names = await page.locator('#d-cookies td:first-child').allTextContents();
  out.value_before_reveal = (await page.content()).includes(cfg.cookie_value);
  check(!out.value_before_reveal, 'the cookie value is not on the page before Reveal values');
  await page.getByRole('button', { name: 'Reveal values' }).click();
  await page.locator('#d-cookies').getByText(cfg.cookie_value).waitFor();
  out.value_after_reveal = (await page.content()).includes(cfg.cookie_value);
  out.audit_rows = await page.locator('table[aria-label="Audit trail"] tbody tr').count();
  await page.screenshot({ path: `${cfg.shots}/detail.png`, fullPage: true });

  // Create a session in the console, then log in to the fixture by hand in the live view.
  log('create');
  await page.getByRole('button', { name: 'Back to sessions' }).click();
  await page.getByText('New session').click();
  await page.getByLabel('Name', { exact: true }).fill('manual-login');
  await page.getByLabel('Tags (comma separated)').fill('console, demo');
  await page.getByRole('button', { name: 'Create session' }).click();
  await page.getByRole('heading', { name: 'Session manual-login' }).waitFor();
  const id = (await page.locator('#d-facts dd').first().textContent()).trim();
  out.created = id;
  const created = await apiCall('GET', `/v1/sessions/${id}`, cfg.key);
  check(created.status === 200 && created.json.name === 'manual-login', 'the API shows the console-made session');

  log('live view');
  await page.getByRole('button', { name: 'Live view' }).click();
  const takeOver = page.getByRole('button', { name: 'Take over' });
  await page.getByRole('status').filter({ hasText: 'Not leased' }).waitFor();
  out.starts_with_take_over = await takeOver.isEnabled() && !(await page.getByRole('button', { name: 'Save and release' }).isEnabled());
  await takeOver.click();
  await page.getByRole('status').filter({ hasText: /^Live$/ }).waitFor({ timeout: 60000 });
  const leased = await apiCall('GET', `/v1/sessions/${id}`, cfg.key);
  out.leased_state = leased.json.state;
  await page.waitForFunction(() => window.sesshostLive.frames > 0, null, { timeout: 20000 });
  out.canvas = await page.locator('#l-screen').evaluate((c) => [c.width, c.height]);

  // The connection drops (the session's Chromium is killed; the service
  // replaces it under the same lease): the live view reconnects by itself.
  log('drop');
  const pid = chromiumOf(cfg.home);
  check(pid, 'the session\'s Chromium is running');
  process.kill(pid, 'SIGKILL');
  await page.getByRole('status').filter({ hasText: /Connection lost|reconnecting|Connecting/ }).waitFor({ timeout: 20000 });
  await page.waitForFunction(() => window.sesshostLive.connects >= 2, null, { timeout: 30000 });
  await page.getByRole('status').filter({ hasText: /^Live$/ }).waitFor({ timeout: 30000 });
  const framesBefore = await page.evaluate(() => window.sesshostLive.frames);
  out.reconnected = { connects: await page.evaluate(() => window.sesshostLive.connects), new_pid: chromiumOf(cfg.home) !== pid };

  // Address bar → the fixture's login form.
  const addr = page.getByLabel('Address');
  await addr.fill(`${cfg.fixture}/login`);
  await addr.press('Enter');
  await page.waitForFunction((u) => document.getElementById('l-addr').value === u, `${cfg.fixture}/login`, { timeout: 20000 });
  await page.waitForFunction((n) => window.sesshostLive.frames > n, framesBefore, { timeout: 20000 });
  const tabs = await page.getByLabel('Tab', { exact: true }).locator('option').allTextContents();
  out.tabs = tabs;
  // Wait for a frame of the loaded form, then click into its input
  // (the fixture's <input id=user> sits at the top left: ~(8..160, 8..30)).
  await page.waitForTimeout(500);
  const box = await page.locator('#l-screen').boundingBox();
  const [cw, ch] = out.canvas;
  await page.mouse.click(box.x + (60 / cw) * box.width, box.y + (19 / ch) * box.height);
  await page.keyboard.type('gra');
  // Paste the rest (a paste event on the screen → Input.insertText).
  await page.locator('#l-screen').evaluate((c) => {
    const dt = new DataTransfer();
    dt.setData('text/plain', 'ce');
    c.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  });
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${cfg.shots}/live-login.png` });
  await page.keyboard.press('Enter');
  await page.waitForFunction((u) => document.getElementById('l-addr').value === u, `${cfg.fixture}/app`, { timeout: 20000 });
  await page.waitForTimeout(1000);
  await page.screenshot({ path: `${cfg.shots}/live.png` });

  // Save and release: the state is committed.
  log('save and release');
  await page.getByRole('button', { name: 'Save and release' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved and released' }).waitFor({ timeout: 60000 });
  out.after_release = (await apiCall('GET', `/v1/sessions/${id}`, cfg.key)).json.state;
  out.release_status = await page.getByRole('status').textContent();

  // Health charts from /v1/metrics/history.
  log('health');
  await page.getByRole('button', { name: 'Health' }).click();
  await page.locator('#h-charts figure').first().waitFor();
  out.charts = await page.locator('#h-charts figure figcaption').allTextContents();
  out.hosts = await page.locator('#h-hosts tbody tr').count();
  await page.screenshot({ path: `${cfg.shots}/health.png`, fullPage: true });

  // Accessible names a screen reader reads (one visible control each).
  const names = async (list) => {
    for (const [role, name] of list) out.names[name] = await page.getByRole(role, { name, exact: true }).count();
  };
  await page.getByRole('button', { name: 'Sessions' }).click();
  await page.getByText('New session').click();
  await names([['button', 'Create session'], ['button', 'Sign out'], ['searchbox', 'Search']]);
  await page.locator(`#table tbody tr[data-id="${id}"]`).click();
  await page.getByRole('button', { name: 'Reveal values' }).waitFor();
  await names([['button', 'Live view'], ['button', 'Reveal values']]);
  await page.getByRole('button', { name: 'Live view' }).click();
  await names([['button', 'Take over'], ['button', 'Save and release'], ['textbox', 'Address'], ['application', 'Remote screen']]);
  // The only console error is the wrong key's 401 at the start.
  out.console_errors = consoleErrors.filter((e) => !e.includes('status of 401'));

  // Another tenant's key sees none of it (a separate tab: its own sessionStorage).
  log('other tenant');
  const other = await (await browser.newContext()).newPage();
  await other.goto(cfg.base + '/');
  await other.getByLabel('API key').fill(cfg.other_key);
  await other.getByRole('button', { name: 'Sign in' }).click();
  await other.locator('#count').filter({ hasText: 'sessions' }).waitFor();
  out.other_rows = await other.locator('#table tbody tr').count();
  out.other_sees_ids = (await other.content()).includes(id) || (await other.content()).includes(cfg.seeded);

  // The live view follows the session's own viewport (seeded at 1024×640).
  log('viewport');
  await page.getByRole('button', { name: 'Sessions' }).click();
  await page.locator(`#table tbody tr[data-id="${cfg.seeded}"]`).click();
  await page.getByRole('button', { name: 'Live view' }).click();
  await page.getByRole('button', { name: 'Take over' }).click();
  await page.getByRole('status').filter({ hasText: /^Live$/ }).waitFor({ timeout: 60000 });
  await page.waitForFunction(() => document.getElementById('l-screen').width !== 1280, null, { timeout: 10000 }).catch(() => {});
  out.seeded_canvas = await page.locator('#l-screen').evaluate((c) => [c.width, c.height]);
  await page.getByRole('button', { name: 'Save and release' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved and released' }).waitFor({ timeout: 60000 });

  // A page of another origin reaching a lease's CDP URL (its Origin header is
  // not passed to Chromium, which would refuse it).
  log('origin');
  const lease = await apiCall('POST', `/v1/sessions/${cfg.seeded}/acquire`, cfg.key, {});
  check(lease.status === 200, `acquire for the origin check: ${JSON.stringify(lease.json)}`);
  await other.goto(`${cfg.fixture}/`);
  out.origin_page = await other.evaluate(() => location.origin);
  out.origin_ws = await other.evaluate((url) => new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.onopen = () => ws.send(JSON.stringify({ id: 1, method: 'Browser.getVersion' }));
    ws.onmessage = (e) => { resolve(JSON.parse(e.data).result?.product ?? e.data); ws.close(); };
    ws.onerror = () => resolve('error');
    ws.onclose = (e) => resolve(`closed ${e.code}`);
  }), lease.json.cdp_url);
  await apiCall('POST', `/v1/sessions/${cfg.seeded}/release`, cfg.key, { lease_id: lease.json.lease_id });

  out.seconds = Math.round((performance.now() - t0) / 1000);
  console.log(JSON.stringify(out));
} catch (e) {
  const pages = browser.contexts().flatMap((c) => c.pages());
  const seen = pages[0] ? await pages[0].evaluate(() => ({ status: document.getElementById('l-status')?.textContent, tabs: [...document.querySelectorAll('#l-tab option')].map((o) => o.textContent), live: window.sesshostLive, alert: document.getElementById('error')?.textContent })).catch(() => null) : null;
  console.log(JSON.stringify({ ...out, failure: String(e.stack || e), seen }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
