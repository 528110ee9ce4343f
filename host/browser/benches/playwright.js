// Side-by-side figure for the browser bench: Playwright launch +
// newContext({storageState}) + first page usable, on the same Chromium.
// Usage: node playwright.js NODE_MODULES_PARENT RUNS APP_URL STATE.json...
const [, , dir, runs, appUrl, ...files] = process.argv;
const { chromium } = require(require('path').join(dir, 'node_modules', 'playwright-core'));
const median = (a) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)];
(async () => {
  for (const file of files) {
    const times = [];
    for (let i = 0; i < Number(runs); i++) {
      const t0 = performance.now();
      const browser = await chromium.launch({ executablePath: process.env.SESSHOST_CHROMIUM || '/usr/bin/chromium' });
      const ctx = await browser.newContext({ storageState: file });
      const page = await ctx.newPage();
      await page.goto(appUrl);
      await page.waitForFunction(() => (document.getElementById('status') || {}).textContent?.startsWith('logged in as'));
      times.push(performance.now() - t0);
      await browser.close();
    }
    console.log(`  playwright cold open, ${require('path').basename(file)}`.padEnd(46) + median(times).toFixed(1).padStart(9));
  }
})().catch((e) => { console.error(e); process.exit(1); });
