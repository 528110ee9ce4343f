// A worker using a leased session through sesshost's proxied CDP URL:
//   node client.mjs LIB CDP_URL OP URL [ARG]
// LIB: playwright (connectOverCDP) | puppeteer (connect)
// OP:
//   login URL USER   open URL (the fixture's /login), log in as USER, wait for /app
//   app URL [N]      open URL (the fixture's /app); with N, store localStorage.counter = N
//   hog URL MB       open URL, hold MB MiB of JS heap in it, leave the tab open
//   rtt URL N        open URL, then N sequential CDP round trips
//                    (Runtime.evaluate "1" on the page's session); adds rtt_p50_ms
// Prints one JSON line {url, title, status, counter} and disconnects
// (never closes the browser: the service owns it). Exits 1 on failure.
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';

const [lib, cdp, op, url, arg] = process.argv.slice(2);
const t0 = performance.now();
let browser, page;
if (lib === 'playwright') {
  browser = await chromium.connectOverCDP(cdp, { timeout: 20000 });
  const ctx = browser.contexts()[0];
  page = await ctx.newPage();
} else if (lib === 'puppeteer') {
  browser = await puppeteer.connect({ browserWSEndpoint: cdp, defaultViewport: null, protocolTimeout: 20000 });
  page = await browser.newPage();
} else {
  console.error(`unknown LIB ${lib}`);
  process.exit(2);
}
const connected = performance.now();
try {
  if (op === 'login') {
    await page.goto(url);
    await page.type('#user', arg);
    await Promise.all([
      page.waitForFunction(() => location.pathname === '/app' && document.getElementById('status')?.textContent.startsWith('logged in')),
      page.click('#go'),
    ]);
  } else if (op === 'app') {
    await page.goto(url);
    await page.waitForFunction(() => location.pathname !== '/app' || document.getElementById('status')?.textContent !== 'checking');
    if (arg !== undefined) await page.evaluate((n) => localStorage.setItem('counter', n), arg);
  } else if (op === 'hog') {
    // Hold ARG MB of JS heap in this tab, and leave the tab open.
    await page.goto(url);
    await page.evaluate((mb) => {
      window.hog = [];
      for (let i = 0; i < mb; i++) window.hog.push(new Array(131072).fill(i + 0.5));
    }, Number(arg));
  } else if (op === 'rtt') {
    await page.goto(url);
    const session = lib === 'playwright' ? await page.context().newCDPSession(page) : await page.createCDPSession();
    const times = [];
    for (let i = 0; i < Number(arg); i++) {
      const t = performance.now();
      await session.send('Runtime.evaluate', { expression: '1' });
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    var rtt = Math.round(times[Math.floor(times.length / 2)] * 1000) / 1000;
  } else {
    throw new Error(`unknown OP ${op}`);
  }
  const out = await page.evaluate(() => ({
    url: location.href,
    title: document.title,
    status: document.getElementById('status')?.textContent ?? null,
    counter: localStorage.getItem('counter'),
  }));
  out.connect_ms = Math.round(connected - t0);
  if (op === 'rtt') out.rtt_p50_ms = rtt;
  out.total_ms = Math.round(performance.now() - t0);
  if (op !== 'hog') await page.close();
  console.log(JSON.stringify(out));
} finally {
  if (lib === 'playwright') await browser.close(); else await browser.disconnect();
}
