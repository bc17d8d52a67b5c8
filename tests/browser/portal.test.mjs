// The web portal in a real browser: Debian's Chromium, headless, driven by
// Playwright, against the real `gradebook serve` over HTTPS.
//
//   GRADEBOOK_BIN=target/debug/gradebook node --test tests/browser/
//
// The tests run in order and build on each other, as a term does: data
// made first, a student who signs in with the keyboard, sees their
// published grades, and sees a new one appear while the page is open; a
// form posted without its CSRF token changes nothing. With
// GRADEBOOK_SCREENSHOTS=DIR the same run pictures each page (see
// scripts/screenshots).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ADMIN_PASSWORD, launchBrowser, newContext, screenshots, startServer } from './support.mjs';

const PROMOTION = 'RT2-2026';
const STUDENT_PASSWORD = 'student-password-for-browser-tests';

/** The class, as a department's export would give it (French headers, `;`). */
const STUDENTS = [
  { last: 'Dupont', first: 'Alice', number: '260001', email: 'alice.dupont@etu.example.org' },
  { last: 'Martin', first: 'Bruno', number: '260002', email: '' },
  { last: 'Leroy', first: 'Chloé', number: '260003', email: 'chloe.leroy@etu.example.org' },
  { last: 'Nguyen', first: 'David', number: '260004', email: '' },
  { last: 'Moreau', first: 'Émilie', number: '260005', email: '' },
];
const STUDENTS_CSV =
  'Nom;Prénom;Numéro;E-mail\n' + STUDENTS.map((s) => `${s.last};${s.first};${s.number};${s.email}`).join('\n') + '\n';

/** Signs in with the login form as a person would (mouse and fields). */
async function signIn(page, path, username, password) {
  await page.goto(path);
  assert.equal(new URL(page.url()).pathname, '/login', 'sent to the login page');
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL((u) => u.pathname === path), page.click('form[action="/login"] button[type="submit"]')]);
}

/** Creates an account with the admin's form and waits for its notice. */
async function createUser(page, { username, password, role, student }) {
  const form = page.locator('form#create-user');
  await form.locator('[name="username"]').fill(username);
  await form.locator('[name="password"]').fill(password);
  await form.locator('[name="role"]').selectOption(role);
  await form.locator('[name="student"]').fill(student === undefined ? '' : String(student));
  await Promise.all([page.waitForURL((u) => u.pathname === '/admin/users'), form.locator('button[type="submit"]').click()]);
  await page.locator('#notice').waitFor();
}

describe('the web portal in Chromium', () => {
  let server;
  let browser;
  let failed = false;
  /** Student record ids by number. */
  const ids = {};
  /** Each person's browser (a context of their own) and page. */
  let admin;
  let adminPage;
  let alice;
  let alicePage;

  /** A test whose failure keeps the server's log. */
  const step = (name, fn) =>
    test(name, async (t) => {
      try {
        await fn(t);
      } catch (e) {
        failed = true;
        throw e;
      }
    });

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    await server.cli(['login', 'admin'], { env: { GRADEBOOK_PASSWORD: ADMIN_PASSWORD } });
  });

  after(async () => {
    await browser?.close();
    await server?.stop({ failed });
  });

  step('the class is set up with the command line', async () => {
    const file = path.join(server.root, 'students.csv');
    fs.writeFileSync(file, STUDENTS_CSV);
    await server.cli(['promotion', 'create', PROMOTION, '--year', '2026', '--publication', 'manual', '--json']);
    const imported = await server.cli(['import', 'students', file, '--promotion', PROMOTION, '--json']);
    assert.equal(imported.imported, STUDENTS.length);
    const shown = await server.cli(['promotion', 'show', PROMOTION, '--json']);
    for (const s of shown.students) ids[s.number] = s.id;
    // Networks, published; one Maths grade of Alice's stays unpublished.
    const networks = ['14.5', '9', '12.25', '17', '6.75'];
    for (const [k, s] of STUDENTS.entries()) {
      await server.cli(['grade', 'add', String(ids[s.number]), 'Networks', networks[k], '--coef', '2', '--label', 'Midterm']);
    }
    await server.cli(['grade', 'publish', PROMOTION, '--subject', 'Networks']);
    await server.cli(['grade', 'add', String(ids['260001']), 'Maths', '11', '--label', 'Quiz']);
  });

  step("the admin creates the student's account, linked to her record", async () => {
    admin = await newContext(browser, server);
    adminPage = await admin.newPage();
    const page = adminPage;
    await signIn(page, '/admin/users', 'admin', ADMIN_PASSWORD);
    await createUser(page, { username: 'adupont', password: STUDENT_PASSWORD, role: 'student', student: ids['260001'] });
    const row = page.locator('table#users tbody tr', { has: page.locator('th', { hasText: /^adupont$/ }) });
    await assert.doesNotReject(row.waitFor());
    assert.equal((await row.locator('td').nth(1).innerText()).trim(), String(ids['260001']));
    await screenshots(page, 'admin-users');
  });

  step('the login form is filled and sent with the keyboard alone', async () => {
    alice = await newContext(browser, server);
    alicePage = await alice.newPage();
    const page = alicePage;
    await page.goto('/me');
    // Not signed in: sent to the login page, which comes back to /me.
    assert.match(page.url(), /\/login\?next=(%2F|\/)me$/);
    await screenshots(page, 'login');

    // From the top of the page: the skip link first, then on with Tab
    // until the user name field (autofocus may already have put it there).
    await page.evaluate(() => document.activeElement?.blur());
    let reached = false;
    for (let i = 0; i < 10 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.id === 'username');
    }
    assert.ok(reached, 'Tab reaches the user name field');
    await page.keyboard.type('adupont');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'password');
    await page.keyboard.type(STUDENT_PASSWORD);
    await Promise.all([page.waitForURL((u) => u.pathname === '/me'), page.keyboard.press('Enter')]);
    assert.equal(new URL(page.url()).pathname, '/me');
    assert.match(await page.locator('#live .summary h2').innerText(), /Alice Dupont/);
  });

  step('a student sees exactly their published grades', async () => {
    const page = alicePage;
    const captions = await page.locator('#live table caption').allInnerTexts();
    assert.equal(captions.length, 1, `one subject: ${captions}`);
    assert.match(captions[0], /^Networks\b/);
    const grades = await page.locator('#live table td.grade').allInnerTexts();
    assert.deepEqual(grades, ['14.5']);
    // The unpublished Maths grade is nowhere, nor counted.
    assert.doesNotMatch(await page.locator('#live').innerText(), /Maths|Quiz/);
    assert.equal(await page.locator('#my-average').innerText(), '14.50');
    assert.equal(await page.locator('#my-rank').innerText(), '2 / 5');
  });

  step('a grade published while the page is open appears without reloading', async () => {
    const page = alicePage;
    // The page listens to /events once loaded.
    await page.waitForSelector('body[data-live="on"]', { state: 'attached' });
    let navigations = 0;
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) navigations += 1;
    });
    await page.evaluate(() => {
      window.__sameDocument = 'still here';
    });

    await server.cli(['grade', 'publish', PROMOTION, '--subject', 'Maths']);

    await page.locator('#live table caption', { hasText: 'Maths' }).waitFor({ timeout: 10_000 });
    const grades = await page.locator('#live table td.grade').allInnerTexts();
    assert.deepEqual(grades.sort(), ['11', '14.5']);
    assert.equal(await page.evaluate(() => window.__sameDocument), 'still here');
    assert.equal(navigations, 0, 'no navigation happened');
    await screenshots(page, 'student');
  });

  step('a POST without its CSRF token is refused and changes nothing', async () => {
    const page = alicePage;
    // From the page's own script: same origin, the session cookie sent,
    // but no token.
    const status = await page.evaluate(() =>
      fetch('/logout', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' }).then(
        (r) => r.status,
      ),
    );
    assert.equal(status, 403);
    // A wrong token in the header is no better.
    const wrong = await page.evaluate(() =>
      fetch('/logout', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': '0'.repeat(32) },
        body: '',
      }).then((r) => r.status),
    );
    assert.equal(wrong, 403);
    // The page's own form, its token removed, submitted as a person would.
    await page.evaluate(() => document.querySelector('form[action="/logout"] input[name="csrf"]').remove());
    const [response] = await Promise.all([
      page.waitForNavigation(),
      page.locator('form[action="/logout"] button').click(),
    ]);
    assert.equal(response.status(), 403);
    // Still signed in.
    const me = await page.goto('/me');
    assert.equal(me.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/me');
    // With the token (the page as served), the same form signs out.
    await Promise.all([page.waitForURL((u) => u.pathname === '/login'), page.locator('form[action="/logout"] button').click()]);
    const again = await page.goto('/me');
    assert.match(page.url(), /\/login/);
    assert.equal(again.status(), 200);
  });

  step('the audit log lists the grade changes and its chain is intact', async () => {
    const page = adminPage;
    await page.goto('/admin/audit');
    const commands = await page.locator('table#audit tbody td code').allInnerTexts();
    const added = commands.filter((c) => c === 'grade.add').length;
    assert.equal(added, STUDENTS.length + 1, `grade.add entries: ${commands}`);
    const verify = async () => {
      await page.goto('/admin/audit');
      await Promise.all([page.waitForLoadState(), page.locator('form#verify-chain button').click()]);
      await page.locator('#chain-status').waitFor();
    };
    await verify();
    assert.equal(await page.locator('#chain-status').getAttribute('class').then((c) => c.split(' ').includes('ok')), true);
    assert.match(await page.locator('#chain-status').innerText(), /intact/);
    await screenshots(page, 'audit', verify);
  });
});
