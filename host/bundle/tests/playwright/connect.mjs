// What a Playwright user sees when attaching to `host session open`:
//   node connect.mjs WS_URL
// prints {cookies, pages: [{url, localStorage, sessionStorage}]} of the
// browser's first (default) context, then disconnects without closing it.
import { chromium } from 'playwright-core';

const browser = await chromium.connectOverCDP(process.argv[2]);
const context = browser.contexts()[0];
const pages = [];
for (const page of context.pages()) {
  const storage = await page.evaluate(() => ({
    localStorage: Object.fromEntries(Object.entries(localStorage)),
    sessionStorage: Object.fromEntries(Object.entries(sessionStorage)),
  })).catch(() => ({}));
  pages.push({ url: page.url(), ...storage });
}
console.log(JSON.stringify({ contexts: browser.contexts().length, cookies: await context.cookies(), pages }));
// connectOverCDP: close() only disconnects, the browser stays.
await browser.close();
