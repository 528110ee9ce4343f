// Console figures on loopback, in Debian's Chromium via Playwright:
//   CONSOLE_TEST='{"base":"http://HOST:PORT","key":"shk_…"}' node console_bench.mjs
// (the Rust test `console -- --ignored bench` starts a service and runs it).
// Prints one JSON line:
//   page_weight_bytes  bytes of every response the console's first load fetched
//   first_paint_ms / first_contentful_paint_ms  from the Paint Timing API
//   live_fps           screencast frames drawn per second, 1280×800, on a page
//                      that repaints every animation frame (5 s window)
//   input_latency_ms   {p50, p99, n}: key press in the console → the next frame
//                      drawn, on a page that repaints on each key (no caret blink)
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.env.CONSOLE_TEST);
const args = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const out = {};
const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : null; };

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args });
try {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await ctx.newPage();
  let weight = 0;
  const files = [];
  page.on('response', async (r) => {
    try { const b = await r.body(); weight += b.length; files.push(`${new URL(r.url()).pathname} ${b.length}`); } catch { /* redirects */ }
  });
  await page.goto(cfg.base + '/', { waitUntil: 'networkidle' });
  out.page_weight_bytes = weight;
  out.files = [...files];
  const paint = await page.evaluate(() => Object.fromEntries(performance.getEntriesByType('paint').map((e) => [e.name, Math.round(e.startTime)])));
  out.first_paint_ms = paint['first-paint'];
  out.first_contentful_paint_ms = paint['first-contentful-paint'];

  // A session, opened in the live view with Take over.
  const r = await fetch(`${cfg.base}/v1/sessions`, { method: 'POST', headers: { Authorization: `Bearer ${cfg.key}`, 'Content-Type': 'application/json' }, body: '{"name":"bench"}' });
  const s = await r.json();
  await page.getByLabel('API key').fill(cfg.key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator(`#table tbody tr[data-id="${s.id}"]`).click();
  await page.getByRole('button', { name: 'Live view' }).click();
  await page.getByRole('button', { name: 'Take over' }).click();
  await page.getByRole('status').filter({ hasText: /^Live$/ }).waitFor({ timeout: 60000 });
  out.viewport = await page.locator('#l-screen').evaluate((c) => [c.width, c.height]);

  // Frame rate: a page that repaints every animation frame.
  const anim = 'data:text/html,<body style="margin:0;font:120px sans-serif"><div id=n></div><div id=b style="width:1280px;height:400px"></div><script>let i=0;(function f(){n.textContent=i++;b.style.background="rgb("+(i&255)+",90,160)";requestAnimationFrame(f)})()</script>';
  const addr = page.getByLabel('Address');
  await addr.fill(anim);
  await addr.press('Enter');
  await page.waitForTimeout(1500);
  const f0 = await page.evaluate(() => window.sesshostLive.frames);
  await page.waitForTimeout(5000);
  const f1 = await page.evaluate(() => window.sesshostLive.frames);
  out.live_fps = Math.round(((f1 - f0) / 5) * 10) / 10;

  // Input → frame: a page that changes on each key (and nothing else).
  const keys = 'data:text/html,<body style="margin:0;font:80px sans-serif;caret-color:transparent" tabindex=0><div id=n>0</div><script>let i=0;addEventListener("keydown",()=>{n.textContent=++i})</script>';
  await addr.fill(keys);
  await addr.press('Enter');
  await page.waitForTimeout(1500);
  const box = await page.locator('#l-screen').boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForTimeout(500);
  await page.evaluate(() => { window.sesshostLive.latencies.length = 0; window.sesshostLive.inputAt = null; });
  for (let i = 0; i < 60; i++) {
    const n = await page.evaluate(() => window.sesshostLive.latencies.length);
    await page.keyboard.down('a');
    await page.waitForFunction((k) => window.sesshostLive.latencies.length > k, n, { timeout: 5000 }).catch(() => {});
    await page.keyboard.up('a');
    await page.waitForTimeout(120);
    await page.evaluate(() => { window.sesshostLive.inputAt = null; });
  }
  const lat = await page.evaluate(() => window.sesshostLive.latencies);
  out.input_latency_ms = { p50: Math.round(q(lat, 0.5)), p99: Math.round(q(lat, 0.99)), n: lat.length };

  await page.getByRole('button', { name: 'Save and release' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved and released' }).waitFor({ timeout: 60000 });
  console.log(JSON.stringify(out));
} catch (e) {
  console.log(JSON.stringify({ ...out, failure: String(e.stack || e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
