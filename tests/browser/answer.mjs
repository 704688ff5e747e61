// Drives Debian's headless chromium through the answer page on a 360 px
// phone viewport: the English form, answering it, the thank-you page, a
// second visit ("already answered"), and the Dutch form. Run by
// tests/api/browser.rs with one JSON argument: {english, dutch, out}.
// A screenshot of each state goes to `out`. Exits non-zero on any failure.
import { chromium } from 'playwright-core';

const { english, dutch, out } = JSON.parse(process.argv[2]);
const check = (ok, what) => {
  if (!ok) throw new Error(`check failed: ${what}`);
};

const browser = await chromium.launch({
  executablePath: process.env.PEIL_CHROMIUM || '/usr/bin/chromium',
  // STACK.md: without the background-networking flags chromium floods the
  // closed network with connection attempts.
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const page = await browser.newPage({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  const blocked = [];
  page.on('console', (m) => { if (m.type() === 'error') blocked.push(m.text()); });

  let response = await page.goto(english);
  check(response.status() === 200, `the form answers 200, not ${response.status()}`);
  check(await page.getAttribute('html', 'lang') === 'en', 'the English form is in English');
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 360, `no sideways scrolling on a phone (page is ${width} px wide)`);
  const fieldsets = await page.locator('fieldset').count();
  check(fieldsets >= 5, `one fieldset per closed question (${fieldsets})`);
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input:not([type=hidden]), textarea')]
    .filter((el) => !el.closest('label') && !document.querySelector(`label[for="${el.id}"]`)).length);
  check(unlabelled === 0, `every control has a label (${unlabelled} without)`);
  // Keyboard: the language switch first, then the first answer.
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement.className) === 'language', 'Tab reaches the language switch first');
  await page.screenshot({ path: `${out}/1-form-en.png`, fullPage: true });

  for (let i = 0; i < fieldsets; i++) {
    await page.locator('fieldset').nth(i).locator('label').nth(3).click();
  }
  await page.locator('textarea').first().fill('More time for learning on the job.');
  await page.screenshot({ path: `${out}/2-filled-en.png`, fullPage: true });
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button').click()]);
  await page.waitForSelector('h1');
  check((await page.textContent('h1')).includes('Thank you'), 'the thank-you page follows');
  await page.screenshot({ path: `${out}/3-thanks-en.png`, fullPage: true });

  // The 409 of the next page is meant; chromium reports it as a console error.
  check(blocked.length === 0, `no console errors: ${blocked.join('; ')}`);
  response = await page.goto(english);
  blocked.length = 0;
  check(response.status() === 409, `a second visit is 409, not ${response.status()}`);
  check((await page.textContent('h1')).includes('Already answered'), 'a second visit says so');
  await page.screenshot({ path: `${out}/4-answered-en.png`, fullPage: true });

  response = await page.goto(dutch);
  check(response.status() === 200, 'the Dutch form answers 200');
  check(await page.getAttribute('html', 'lang') === 'nl', 'the Dutch form is in Dutch');
  check((await page.textContent('body')).includes('Wie ziet wat'), 'the Dutch privacy statement');
  check((await page.textContent('.language')) === 'English', 'a switch to English');
  await page.screenshot({ path: `${out}/5-form-nl.png`, fullPage: true });
  // The strict CSP blocks nothing the page itself needs.
  check(blocked.length === 0, `no console errors: ${blocked.join('; ')}`);
  console.log('browser checks passed');
} finally {
  await browser.close();
}
