// Round trip through real Playwright + Chromium:
//   node check.mjs IN.json OUT.json
// loads IN (a storageState written by sessbundle::interop::to_playwright)
// into a fresh context (Playwright restores origins' storage through an
// intercepted page, no network), then writes what Playwright reads back
// with storageState({ indexedDB: true }) to OUT.
import { chromium } from 'playwright-core';
import { writeFileSync } from 'node:fs';

const [input, output] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.SESSHOST_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
try {
  const context = await browser.newContext({ storageState: input });
  const state = await context.storageState({ indexedDB: true });
  writeFileSync(output, JSON.stringify(state, null, 2));
} finally {
  await browser.close();
}
