// The stage-1 browser test: sign up, upload, edit, see the edited version; a second user
// follows the first and sees the photo in the feed. No console errors allowed.
import path from 'node:path';
import { Checks, launch, png, startServer, watchConsole } from './lib.mjs';

const c = new Checks();
const timer = setTimeout(() => { console.error('FAIL: global timeout'); process.exit(1); }, 120000);
const server = await startServer();
const browser = await launch();
const problems = [];
try {
  const alice = await browser.newContext();
  const page = await alice.newPage();
  watchConsole(page, problems);
  page.setDefaultTimeout(15000);
  await page.goto(server.base + '/');
  c.check((await page.title()) === 'millions', 'page loads');

  await page.fill('#signup-handle', 'alice_e2e');
  await page.fill('#signup-display', 'Alice');
  await page.fill('#signup-password', 'password123');
  await page.click('#signup-submit');
  await page.waitForSelector('#whoami:has-text("@alice_e2e")');
  c.check(true, 'signed up and logged in');

  await page.setInputFiles('#upload-file', { name: 'pic.png', mimeType: 'image/png', buffer: png(32, 24) });
  await page.fill('#upload-caption', 'first photo');
  await page.click('#upload-submit');
  const card = page.locator('#mine .photo').first();
  await card.waitFor();
  c.check((await card.textContent()).includes('first photo'), 'photo listed with caption');

  await card.locator('.edit-button').click();
  await page.click('#op-grayscale');
  await page.click('#op-rotate90');
  c.check((await page.locator('#ops li').count()) === 2, 'two ops queued in the editor');
  await page.click('#edit-submit');
  await page.waitForSelector('#job-status:has-text("Job done")', { timeout: 30000 });
  c.check(true, 'edit job finished');
  const size = await page.evaluate(async () => {
    const img = document.getElementById('edit-preview');
    if (!img.complete) await new Promise((r) => img.addEventListener('load', r, { once: true }));
    return [img.naturalWidth, img.naturalHeight];
  });
  c.check(size[0] === 24 && size[1] === 32, `edited version is rotated (${size})`);
  await page.click('#edit-close');
  await page.waitForSelector('#mine img[data-testid="version-image"]');
  c.check(true, 'my photos show the edited version');

  const bob = await browser.newContext();
  const page2 = await bob.newPage();
  watchConsole(page2, problems);
  page2.setDefaultTimeout(15000);
  await page2.goto(server.base + '/');
  await page2.fill('#signup-handle', 'bob_e2e');
  await page2.fill('#signup-password', 'password123');
  await page2.click('#signup-submit');
  await page2.waitForSelector('#whoami:has-text("@bob_e2e")');
  await page2.click('#nav-people');
  await page2.fill('#lookup-handle', 'alice_e2e');
  await page2.click('#lookup-submit');
  await page2.waitForSelector('#person-name:has-text("alice_e2e")');
  await page2.click('#follow');
  await page2.waitForSelector('#person-stats:has-text("1 followers")');
  c.check(true, 'followed alice');
  await page2.click('#nav-feed');
  await page2.waitForSelector('#feed .photo');
  c.check((await page2.locator('#feed .photo').first().textContent()).includes('first photo'),
    "alice's photo in bob's feed");

  // A reload keeps the session (cookie) and shows no errors.
  await page2.reload();
  await page2.waitForSelector('#whoami:has-text("@bob_e2e")');
  c.check(true, 'session survives a reload');
  await page2.click('#logout');
  await page2.waitForSelector('#view-auth:not([hidden])');
  c.check(true, 'logged out');

  await page.screenshot({ path: path.join(server.dir, 'ui.png'), fullPage: true });
} catch (e) {
  c.check(false, 'browser flow: ' + e.message);
} finally {
  for (const p of problems) c.check(false, p);
  c.check(problems.length === 0, 'no console errors');
  await browser.close();
  await server.stop();
  clearTimeout(timer);
}
c.finish();
