// The Node half of host/cli/benches/service_load.rs (the Rust half starts
// the fixture site and `host run`, loads the metadata routes and measures
// memory). Every mode prints one JSON line on stdout and exits 0, or
// prints the error on stderr and exits 1.
//
//   node load.mjs cycle ADDR KEY BASE_ID N APP_URL
//     N × (fork BASE_ID → acquire → connectOverCDP → goto APP_URL until the
//     page says "logged in" → release → delete the fork); per-phase ms.
//   node load.mjs playwright STATE_JSON N APP_URL
//     N × Playwright's own launch → newContext({storageState}) → goto
//     APP_URL until logged in → storageState() → close, on Debian Chromium.
//   node load.mjs soak ADDR KEY IDS_CSV WORKERS SECONDS APP_URL
//     WORKERS loops for SECONDS: take a session no other worker holds,
//     acquire (FIFO wait ≤ 60 s), read localStorage.counter on APP_URL,
//     write counter + 1, release. Then reads every session's counter back
//     through a fresh lease: `lost` counts sessions whose last value did
//     not survive.
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.SESSHOST_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

const now = () => performance.now();

async function api(addr, key, method, path, body) {
  const res = await fetch(`http://${addr}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// Open APP_URL in a new tab of `browser` and wait until the fixture page
// has asked /api/me and shows "logged in as …".
async function loggedInPage(context, url, marks) {
  const page = await context.newPage();
  if (marks) marks.push(now());
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('status')?.textContent.startsWith('logged in'),
    null, { timeout: 20000 });
  return page;
}

async function cycle([addr, key, base, n, url]) {
  const rows = [];
  for (let i = 0; i < Number(n); i++) {
    const t0 = now();
    const s = await api(addr, key, 'POST', `/v1/sessions/${base}/fork`, {});
    const t1 = now();
    const lease = await api(addr, key, 'POST', `/v1/sessions/${s.id}/acquire`, { lease_seconds: 60 });
    const t2 = now();
    const browser = await chromium.connectOverCDP(lease.cdp_url, { timeout: 20000 });
    const t3 = now();
    const marks = [];
    const page = await loggedInPage(browser.contexts()[0], url, marks);
    const t4 = now();
    await page.close();
    await browser.close();
    await api(addr, key, 'POST', `/v1/sessions/${s.id}/release`, { lease_id: lease.lease_id });
    const t5 = now();
    await api(addr, key, 'DELETE', `/v1/sessions/${s.id}`);
    rows.push({ create: t1 - t0, acquire: t2 - t1, connect: t3 - t2, page: t4 - t3,
      new_page: marks[0] - t3, goto: t4 - marks[0],
      release: t5 - t4, acquire_to_page: t4 - t1, cycle: t5 - t0 });
  }
  return { rows };
}

async function playwright([stateFile, n, url]) {
  const rows = [];
  for (let i = 0; i < Number(n); i++) {
    const t0 = now();
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
    const t1 = now();
    const context = await browser.newContext({ storageState: stateFile });
    await loggedInPage(context, url);
    const t2 = now();
    await context.storageState();
    await browser.close();
    const t3 = now();
    rows.push({ launch: t1 - t0, page: t2 - t1, save_close: t3 - t2, cycle: t3 - t0 });
  }
  return { rows };
}

async function withLease(addr, key, id, fn) {
  const t0 = now();
  const lease = await api(addr, key, 'POST', `/v1/sessions/${id}/acquire`, { lease_seconds: 60, wait_seconds: 60 });
  const acquired = now() - t0;
  const browser = await chromium.connectOverCDP(lease.cdp_url, { timeout: 20000 });
  try {
    const out = await fn(browser.contexts()[0]);
    return { acquired, out };
  } finally {
    await browser.close();
    await api(addr, key, 'POST', `/v1/sessions/${id}/release`, { lease_id: lease.lease_id });
  }
}

async function soak([addr, key, idsCsv, workers, seconds, url]) {
  const ids = idsCsv.split(',');
  const busy = new Set();
  const expected = Object.fromEntries(ids.map((id) => [id, 0]));
  const acquires = [];
  const errors = [];
  let cycles = 0;
  const end = now() + Number(seconds) * 1000;
  const worker = async (w) => {
    let next = w;
    while (now() < end) {
      // Round-robin over the sessions, skipping those another worker holds.
      let id;
      for (let k = 0; k < ids.length; k++) {
        const cand = ids[(next + k) % ids.length];
        if (!busy.has(cand)) { id = cand; next = (next + k + 1) % ids.length; break; }
      }
      if (!id) { await new Promise((r) => setTimeout(r, 10)); continue; }
      busy.add(id);
      try {
        const { acquired } = await withLease(addr, key, id, async (context) => {
          const page = await loggedInPage(context, url);
          const seen = Number(await page.evaluate(() => localStorage.getItem('counter') ?? '0'));
          if (seen !== expected[id]) errors.push(`${id}: read ${seen}, expected ${expected[id]}`);
          await page.evaluate((v) => localStorage.setItem('counter', String(v)), seen + 1);
          await page.close();
          expected[id] = seen + 1;
        });
        acquires.push(acquired);
        cycles++;
      } catch (e) {
        errors.push(`${id}: ${e.message}`);
      } finally {
        busy.delete(id);
      }
    }
  };
  await Promise.all([...Array(Number(workers)).keys()].map(worker));
  // Read every counter back through a fresh lease.
  let lost = 0;
  const finals = {};
  for (const id of ids) {
    const { out } = await withLease(addr, key, id, async (context) => {
      const page = await loggedInPage(context, url);
      const v = Number(await page.evaluate(() => localStorage.getItem('counter') ?? '0'));
      await page.close();
      return v;
    });
    finals[id] = out;
    if (out !== expected[id]) lost++;
  }
  const writes = Object.values(expected).reduce((a, b) => a + b, 0);
  return { cycles, writes, lost, stale_reads: errors.filter((e) => e.includes('read')).length,
    errors: errors.slice(0, 10), error_count: errors.length, acquire_ms: acquires };
}

const [mode, ...rest] = process.argv.slice(2);
const modes = { cycle, playwright, soak };
if (!modes[mode]) {
  console.error(`usage: node load.mjs cycle|playwright|soak …`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await modes[mode](rest)));
} catch (e) {
  console.error(e.stack || String(e));
  process.exit(1);
}
