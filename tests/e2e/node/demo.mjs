// The demo's worker: connect to a leased session through sesshost's CDP
// proxy, open a page, store a value, disconnect (the service keeps the
// browser).   node demo.mjs CDP_URL
import { chromium } from 'playwright-core';

const browser = await chromium.connectOverCDP(process.argv[2], { timeout: 20000 });
const context = browser.contexts()[0];
const page = await context.newPage();
await page.setContent('<title>sesshost demo</title><h1>hello from a leased session</h1>');
await context.addCookies([{ name: 'demo', value: String(Date.now()), url: 'https://demo.sesshost.invalid/' }]);
console.log(`demo: Playwright connected through the proxy; page title "${await page.title()}", ${(await context.cookies()).length} cookie(s) in the session`);
await page.close();
await browser.close();
