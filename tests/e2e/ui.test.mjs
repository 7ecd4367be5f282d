// The stage-1 browser test (headless Debian Chromium through playwright-core), against the real
// binary: `$MILLIONS_BIN single --port PORT --data DIR`.
//
// Alice signs up, edits her profile, uploads a PNG, sees it in "My photos", asks for an edit
// (grayscale + rotate 90), waits for the job and sees the rotated version (24x32 from 32x24).
// Bob, in another browser context, signs up, looks Alice up by handle, sees her photos, follows
// her, sees her photo in his feed, survives a reload, unfollows, logs out. API errors show in the
// message area. Any console error or warning, or page error, fails the test.
// Ends with the line `N passed, N failed`; exit code 1 on any failure.
import path from 'node:path';
import { Checks, launch, png, startServer, watchConsole } from './lib.mjs';

const GLOBAL_TIMEOUT_MS = 90000;
const c = new Checks();
let server = null;
let browser = null;

const timer = setTimeout(async () => {
  c.check(false, `global timeout (${GLOBAL_TIMEOUT_MS / 1000} s)`);
  try { if (server) server.proc.kill('SIGKILL'); } catch (e) { /* gone */ }
  try { if (browser) await Promise.race([browser.close(), new Promise((r) => setTimeout(r, 2000))]); } catch (e) { /* gone */ }
  c.finish();
  process.exit(1);
}, GLOBAL_TIMEOUT_MS);

// One step of the flow: a failed step is counted and ends the flow (later steps depend on it).
async function step(name, fn) {
  let ok = false;
  let why = '';
  try {
    const r = await fn();
    ok = r === undefined ? true : Boolean(r);
  } catch (e) {
    why = ': ' + e.message.split('\n')[0];
  }
  c.check(ok, name + why);
  if (ok) console.log(`ok - ${name}`);
  else throw new Error('stopped after a failed step');
}

// Natural size of an <img> once it has loaded (fails if it does not load).
function naturalSize(page, selector) {
  return page.locator(selector).first().evaluate((img) => new Promise((resolve, reject) => {
    const done = () => (img.naturalWidth ? resolve([img.naturalWidth, img.naturalHeight]) : reject(new Error('image failed to load')));
    if (img.complete) done();
    else {
      img.addEventListener('load', done, { once: true });
      img.addEventListener('error', () => reject(new Error('image failed to load')), { once: true });
    }
  }));
}

async function newPage(watched, problems) {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await ctx.newPage();
  if (watched) watchConsole(page, problems);
  page.setDefaultTimeout(15000);
  return page;
}

async function signUp(page, handle, display) {
  await page.fill('#signup-handle', handle);
  if (display) await page.fill('#signup-display', display);
  await page.fill('#signup-password', 'password123');
  await page.click('#signup-submit');
}

const problems = [];
try {
  server = await startServer();
  browser = await launch();
  const alice = await newPage(true, problems);
  const apiCalls = [];
  alice.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/api/')) apiCalls.push(r.url()); });

  await step('page loads logged out, without calling the API', async () => {
    await alice.goto(server.base + '/');
    await alice.waitForSelector('#view-auth:not([hidden])');
    return (await alice.title()) === 'millions' && apiCalls.length === 0;
  });

  await step('alice signs up and is logged in', async () => {
    await signUp(alice, 'alice_e2e', 'Alice');
    await alice.waitForSelector('#whoami:has-text("@alice_e2e")');
    await alice.waitForSelector('#view-mine:not([hidden])');
  });

  await step('alice edits her profile (PATCH /api/me)', async () => {
    await alice.click('#nav-profile');
    await alice.waitForSelector('#me-name:has-text("@alice_e2e")');
    await alice.fill('#profile-display', 'Alice <b>Liddell</b>');
    await alice.fill('#profile-bio', 'Down the rabbit hole.');
    await alice.click('#profile-submit');
    await alice.waitForSelector('#message.ok:has-text("Profile saved")');
    return (await alice.textContent('#me-name')) === 'Alice <b>Liddell</b> @alice_e2e' &&
      (await alice.textContent('#me-bio')) === 'Down the rabbit hole.';
  });

  await step('alice uploads a PNG and sees it in My photos', async () => {
    await alice.click('#nav-mine');
    await alice.setInputFiles('#upload-file', { name: 'pic.png', mimeType: 'image/png', buffer: png(32, 24) });
    await alice.waitForSelector('#upload-preview:not([hidden])');
    await alice.fill('#upload-caption', 'first photo');
    await alice.click('#upload-submit');
    await alice.waitForSelector('#mine .photo:has-text("first photo")');
    const size = await naturalSize(alice, '#mine .photo img');
    return size[0] === 32 && size[1] === 24;
  });

  await step('the editor queues grayscale + rotate 90', async () => {
    await alice.locator('#mine .photo').first().locator('.edit-button').click();
    await alice.waitForSelector('#editor[open]');
    await alice.click('#op-grayscale');
    await alice.click('#op-rotate90');
    return (await alice.locator('#ops li').count()) === 2;
  });

  await step('the edit job is polled until done', async () => {
    await alice.click('#edit-submit');
    await alice.waitForSelector('#job-status[data-status="done"]', { timeout: 30000 });
    return (await alice.textContent('#job-status')) === 'Job done';
  });

  await step('the edited version is shown, rotated to 24x32', async () => {
    await alice.waitForSelector('#edit-result-figure:not([hidden])');
    const size = await naturalSize(alice, '#edit-result');
    return size[0] === 24 && size[1] === 32;
  });

  await step('My photos shows the newest version', async () => {
    await alice.click('#edit-close');
    await alice.waitForSelector('#mine img[data-testid="version-image"]');
    const size = await naturalSize(alice, '#mine img[data-testid="version-image"]');
    return size[0] === 24 && size[1] === 32;
  });

  const bob = await newPage(true, problems);
  await step('bob signs up in another browser context', async () => {
    await bob.goto(server.base + '/');
    await signUp(bob, 'bob_e2e');
    await bob.waitForSelector('#whoami:has-text("@bob_e2e")');
  });

  await step("bob looks alice up by handle and sees her profile and photos", async () => {
    await bob.click('#nav-people');
    await bob.fill('#lookup-handle', 'alice_e2e');
    await bob.click('#lookup-submit');
    await bob.waitForSelector('#person-name:has-text("@alice_e2e")');
    await bob.waitForSelector('#person-photos .photo:has-text("first photo")');
    return (await bob.textContent('#person-bio')) === 'Down the rabbit hole.' &&
      (await bob.locator('#person-name b').count()) === 0; // user text is not parsed as HTML
  });

  await step('bob follows alice', async () => {
    await bob.click('#follow');
    await bob.waitForSelector('#person-stats:has-text("1 followers")');
  });

  await step("alice's photo is in bob's feed", async () => {
    await bob.click('#nav-feed');
    const card = bob.locator('#feed .photo:has-text("first photo")');
    await card.waitFor();
    await bob.waitForSelector('#feed .photo .owner:has-text("@alice_e2e")');
    const size = await naturalSize(bob, '#feed .photo img');
    return size[0] === 24 && size[1] === 32;
  });

  await step('the session survives a reload', async () => {
    await bob.reload();
    await bob.waitForSelector('#whoami:has-text("@bob_e2e")');
    await bob.waitForSelector('#feed .photo:has-text("first photo")');
  });

  await step('bob unfollows alice and his feed empties', async () => {
    await bob.goto(server.base + '/#user/alice_e2e');
    await bob.waitForSelector('#person-stats:has-text("1 followers")');
    await bob.click('#unfollow');
    await bob.waitForSelector('#person-stats:has-text("0 followers")');
    await bob.click('#nav-feed');
    await bob.waitForSelector('#feed .empty');
  });

  // The 409 is expected here, and Chromium logs every 4xx response as a console error, so this
  // page's console is not watched.
  await step('an API error shows in the message area', async () => {
    const carol = await newPage(false, problems);
    await carol.goto(server.base + '/');
    await signUp(carol, 'alice_e2e');
    await carol.waitForSelector('#message:not([hidden]):has-text("handle_taken")');
    await carol.context().close();
  });

  await step('bob logs out; a reload stays logged out', async () => {
    await bob.click('#logout');
    await bob.waitForSelector('#view-auth:not([hidden])');
    await bob.reload();
    await bob.waitForSelector('#view-auth:not([hidden])');
    return (await bob.locator('#nav').isHidden());
  });

  await step('screenshot', async () => {
    await alice.click('#nav-mine');
    await alice.waitForSelector('#mine img[data-testid="version-image"]');
    const file = path.join(server.dir, 'ui.png');
    await alice.screenshot({ path: file, fullPage: true });
    console.log(`screenshot: ${file}`);
  });
} catch (e) {
  if (e.message !== 'stopped after a failed step') c.check(false, 'browser flow: ' + e.message);
} finally {
  for (const p of problems) console.error('FAIL:', p);
  c.check(problems.length === 0, 'no console errors or warnings, no page errors');
  if (browser) await browser.close().catch(() => {});
  if (server) {
    await server.stop();
    console.log(`server log: ${server.logPath}`);
  }
  clearTimeout(timer);
}
c.finish();
