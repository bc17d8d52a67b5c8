// The web portal in a real browser: Debian's Chromium, headless, driven by
// Playwright, against the real `gradebook serve` over HTTPS.
//
//   GRADEBOOK_BIN=target/debug/gradebook node --test tests/browser/
//
// The tests run in order and build on each other, as a term does: the
// admin makes a teacher's account; the teacher creates a promotion,
// imports its students from a file, enters a column of grades in the grid
// and publishes it, then enters one more; a student signs in with the
// keyboard alone and sees exactly the published grades, and a grade the
// teacher publishes while her page is open appears without a reload; forms
// posted without their CSRF token change nothing; the audit log's chain is
// intact. Each person has a browser context of their own (their own
// cookies), as on two machines. With GRADEBOOK_SCREENSHOTS=DIR the same
// run pictures each page (see scripts/screenshots).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ADMIN_PASSWORD, assertFitsPhone, launchBrowser, newContext, screenshots, startServer } from './support.mjs';

const PROMOTION = 'RT2-2026';
const TEACHER_PASSWORD = 'teacher-password-for-browser-tests';
const STUDENT_PASSWORD = 'student-password-for-browser-tests';

/** The class, as a department's export gives it (French headers, `;`). */
const STUDENTS = [
  { last: 'Dupont', first: 'Alice', number: '260001', email: 'alice.dupont@etu.example.org' },
  { last: 'Martin', first: 'Bruno', number: '260002', email: '' },
  { last: 'Leroy', first: 'Chloé', number: '260003', email: 'chloe.leroy@etu.example.org' },
  { last: 'Nguyen', first: 'David', number: '260004', email: '' },
  { last: 'Moreau', first: 'Émilie', number: '260005', email: '' },
];
const STUDENTS_CSV =
  'Nom;Prénom;Numéro;E-mail\n' + STUDENTS.map((s) => `${s.last};${s.first};${s.number};${s.email}`).join('\n') + '\n';

/** The Networks midterm (coefficient 2), by student number, as typed. */
const NETWORKS = { 260001: '14.5', 260002: '9', 260003: '12.25', 260004: '17', 260005: '6,75' };
/** Alice's number: the student who signs in. */
const ALICE = '260001';

/** Signs in with the login form, mouse and fields, to land on `path`. */
async function signIn(page, path, username, password) {
  await page.goto(path);
  assert.equal(new URL(page.url()).pathname, '/login', 'sent to the login page');
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForURL((u) => u.pathname === path),
    page.click('form[action="/login"] button[type="submit"]'),
  ]);
}

/** Creates an account with the admin's form and waits for its notice. */
async function createUser(page, { username, password, role, student }) {
  const form = page.locator('form#create-user');
  await form.locator('[name="username"]').fill(username);
  await form.locator('[name="password"]').fill(password);
  await form.locator('[name="role"]').selectOption(role);
  await form.locator('[name="student"]').fill(student === undefined ? '' : String(student));
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/admin/users'),
    form.locator('button[type="submit"]').click(),
  ]);
  await page.locator('#notice').waitFor();
  const row = page.locator('table#users tbody tr', { has: page.locator('th', { hasText: new RegExp(`^${username}$`) }) });
  assert.equal(await row.count(), 1, `${username} is listed`);
  return row;
}

/** The promotion's export, read as the signed-in teacher: one object per line. */
async function exported(page) {
  const response = await page.request.get(`/promotions/${PROMOTION}/export.csv`);
  assert.equal(response.status(), 200);
  const [head, ...lines] = (await response.text()).replace(/^\uFEFF/, '').trim().split(/\r?\n/);
  const names = head.split(',');
  return lines.map((line) => Object.fromEntries(line.split(',').map((v, k) => [names[k], v])));
}

/** The grades of one column in the export, by student number. */
async function column(page, subject, label) {
  const out = {};
  for (const l of await exported(page)) {
    if (l.subject === subject && l.label === label) out[l.number] = Number(l.value);
  }
  return out;
}

/** Which element has the focus, by id. */
const focused = (page) => page.evaluate(() => document.activeElement?.id);

describe('the web portal in Chromium', () => {
  let server;
  let browser;
  let failed = false;
  /** Student record ids by number, read from the grid. */
  const ids = {};
  /** Each person's browser (a context: their own cookies) and page. */
  let adminPage;
  let teacherPage;
  let alicePage;
  /** The grid's address for the Networks midterm. */
  let networksGrid;

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
  });

  after(async () => {
    await browser?.close();
    await server?.stop({ failed });
  });

  step("the admin creates a teacher's account", async () => {
    adminPage = await (await newContext(browser, server)).newPage();
    await signIn(adminPage, '/admin/users', 'admin', ADMIN_PASSWORD);
    const row = await createUser(adminPage, { username: 'mdupuis', password: TEACHER_PASSWORD, role: 'teacher' });
    assert.equal((await row.locator('td').first().innerText()).trim(), 'teacher');
  });

  step('the teacher creates a promotion whose grades are published by hand', async () => {
    teacherPage = await (await newContext(browser, server)).newPage();
    const page = teacherPage;
    await signIn(page, '/promotions', 'mdupuis', TEACHER_PASSWORD);
    assert.equal(await page.locator('table#promotions').count(), 0, 'no promotion yet');
    const form = page.locator('form#create-promotion');
    await form.locator('[name="name"]').fill(PROMOTION);
    await form.locator('[name="year"]').fill('2026');
    await form.locator('[name="description"]').fill('Réseaux et télécoms, 2e année');
    await form.locator('[name="publication"]').selectOption('manual');
    await Promise.all([
      page.waitForURL((u) => u.pathname === `/promotions/${PROMOTION}`),
      form.locator('button[type="submit"]').click(),
    ]);
    assert.match(await page.locator('#publication-mode').innerText(), /by hand/);
    await page.goto('/promotions');
    const row = page.locator('table#promotions tbody tr');
    assert.equal(await row.count(), 1);
    assert.match(await row.innerText(), new RegExp(`${PROMOTION}\\s+2026\\s+0`));
    await assertFitsPhone(page);
    await screenshots(page, 'promotions');
  });

  step('the teacher imports the students from a CSV file: preview, then commit', async () => {
    const page = teacherPage;
    const file = { name: 'etudiants.csv', mimeType: 'text/csv', buffer: Buffer.from(STUDENTS_CSV) };
    const preview = async () => {
      await page.goto(`/promotions/${PROMOTION}/import`);
      const form = page.locator('form#import');
      await form.locator('[name="file"]').setInputFiles(file);
      await form.locator('[name="kind"][value="students"]').check();
      await Promise.all([page.waitForLoadState(), form.locator('button[value="preview"]').click()]);
      await page.locator('table#import-preview').waitFor();
    };
    await preview();
    const rows = page.locator('table#import-preview tbody tr');
    assert.equal(await rows.count(), STUDENTS.length);
    assert.match(await rows.nth(2).innerText(), /Leroy\s+Chloé\s+260003/);
    assert.equal(await page.locator('#import-added').innerText(), String(STUDENTS.length));
    assert.equal(await page.locator('#import-bad').innerText(), '0');
    // A preview changes nothing.
    assert.deepEqual(await exported(page), []);
    await assertFitsPhone(page);
    await screenshots(page, 'import', preview);

    await Promise.all([page.waitForLoadState(), page.locator('form#import-commit button[value="commit"]').click()]);
    await page.locator('#import-status.ok').waitFor();
    assert.equal(await page.locator('#import-added').innerText(), String(STUDENTS.length));
    const students = await exported(page);
    assert.deepEqual(
      students.map((s) => `${s.first_name} ${s.last_name} ${s.number} ${s.email}`).sort(),
      STUDENTS.map((s) => `${s.first} ${s.last} ${s.number} ${s.email}`).sort(),
    );
  });

  step('the teacher enters a column in the grid: typing, pasting, the keyboard; 45 is refused, the rest saved', async () => {
    const page = teacherPage;
    await page.goto(`/promotions/${PROMOTION}`);
    const open = page.locator('form#open-grid');
    await open.locator('[name="subject"]').fill('Networks');
    await open.locator('[name="label"]').fill('Midterm');
    await open.locator('[name="coefficient"]').fill('2');
    await Promise.all([
      page.waitForURL((u) => u.pathname === `/promotions/${PROMOTION}/grid`),
      open.locator('button[type="submit"]').click(),
    ]);
    networksGrid = new URL(page.url()).pathname + new URL(page.url()).search;

    // The rows, in the page's order: each student's number and cell.
    const order = [];
    for (const row of await page.locator('form#grid tbody tr').all()) {
      const number = (await row.locator('td').first().innerText()).trim();
      const id = await row.locator('input[data-student]').getAttribute('data-student');
      ids[number] = Number(id);
      order.push(number);
    }
    assert.deepEqual([...order].sort(), STUDENTS.map((s) => s.number).sort());
    const cell = (number) => page.locator(`#grade-${ids[number]}`);

    // A column copied from a spreadsheet, pasted into the first cell: it
    // fills the first three rows; the second row's value is 45.
    const refusedNumber = order[1];
    const pasted = order.slice(0, 3).map((n) => (n === refusedNumber ? '45' : NETWORKS[n]));
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    await cell(order[0]).click();
    await page.evaluate((text) => navigator.clipboard.writeText(text), pasted.join('\n') + '\n');
    await page.keyboard.press('ControlOrMeta+V');
    for (const [k, n] of order.slice(0, 3).entries()) {
      assert.equal(await cell(n).inputValue(), pasted[k], `row ${k + 1} filled by the paste`);
    }
    assert.equal(await cell(order[3]).inputValue(), '', 'the paste stops after its values');
    assert.match(await page.locator('#grid-status').innerText(), /3/);
    assert.equal(await focused(page), `grade-${ids[order[2]]}`, 'the last pasted cell has the focus');

    // On with the keyboard: ↓ to row 4, type, Enter to row 5, ↑ and back.
    await page.keyboard.press('ArrowDown');
    assert.equal(await focused(page), `grade-${ids[order[3]]}`);
    await page.keyboard.type(NETWORKS[order[3]]);
    await page.keyboard.press('Enter');
    assert.equal(await focused(page), `grade-${ids[order[4]]}`, 'Enter moves down without saving');
    assert.equal(new URL(page.url()).pathname, `/promotions/${PROMOTION}/grid`);
    await page.keyboard.press('ArrowUp');
    assert.equal(await focused(page), `grade-${ids[order[3]]}`);
    await page.keyboard.press('ArrowDown');
    await page.keyboard.type(NETWORKS[order[4]]);
    // Enter in the last cell saves the column.
    await Promise.all([page.waitForLoadState(), page.keyboard.press('Enter')]);

    // 45 is refused beside its cell, which keeps it; the others are saved.
    const error = page.locator(`#error-${ids[refusedNumber]}`);
    await error.waitFor();
    assert.match(await error.innerText(), /20/);
    assert.equal(await cell(refusedNumber).inputValue(), '45');
    assert.equal(await cell(refusedNumber).getAttribute('aria-invalid'), 'true');
    assert.match(await page.locator('#grid-status').innerText(), /4\D+1/);
    const expected = Object.fromEntries(
      Object.entries(NETWORKS).map(([n, v]) => [n, Number(v.replace(',', '.'))]),
    );
    const saved = { ...expected };
    delete saved[refusedNumber];
    assert.deepEqual(await column(page, 'Networks', 'Midterm'), saved);

    // The picture shows a refused cell, typed again on a fresh grid.
    await assertFitsPhone(page);
    await screenshots(page, 'grid', async () => {
      await page.goto(networksGrid);
      await cell(refusedNumber).fill('45');
      await Promise.all([page.waitForLoadState(), page.locator('form#grid button[type="submit"]').click()]);
      await error.waitFor();
    });

    // Corrected, and saved with the button.
    await cell(refusedNumber).fill(NETWORKS[refusedNumber]);
    await Promise.all([page.waitForLoadState(), page.locator('form#grid button[type="submit"]').click()]);
    assert.equal(await page.locator('[id^="error-"]').count(), 0);
    assert.deepEqual(await column(page, 'Networks', 'Midterm'), expected);
  });

  step('the teacher publishes the column, then enters one more grade, unpublished', async () => {
    const page = teacherPage;
    await page.goto(networksGrid);
    await Promise.all([page.waitForLoadState(), page.locator('form#publish-column button').click()]);
    assert.match(await page.locator('#grid-status').innerText(), /5 grades published/);

    // Maths: Alice's quiz only.
    await page.goto(`/promotions/${PROMOTION}/grid?subject=Maths&label=Quiz&coefficient=1`);
    await page.locator(`#grade-${ids[ALICE]}`).fill('11');
    await Promise.all([page.waitForLoadState(), page.locator('form#grid button[type="submit"]').click()]);
    assert.deepEqual(await column(page, 'Maths', 'Quiz'), { [ALICE]: 11 });

    await page.goto(`/promotions/${PROMOTION}`);
    const evaluations = await page.locator('table#evaluations tbody tr').allInnerTexts();
    const networks = evaluations.find((r) => r.startsWith('Networks'));
    const maths = evaluations.find((r) => r.startsWith('Maths'));
    assert.match(networks, /Midterm\s+2\S*\s+5\s+5/, networks);
    assert.match(maths, /Quiz\s+1\S*\s+1\s+0/, maths);
    // Alice, 14.5, is second: 17 is above her.
    const alice = page.locator(`table#students tbody tr[data-student="${ids[ALICE]}"]`);
    assert.equal((await alice.locator('td.rank').innerText()).trim(), '2');
    await assertFitsPhone(page);
    await screenshots(page, 'promotion');
  });

  step("the admin creates the student's account, linked to her record", async () => {
    const page = adminPage;
    await page.goto('/admin/users');
    const row = await createUser(page, {
      username: 'adupont',
      password: STUDENT_PASSWORD,
      role: 'student',
      student: ids[ALICE],
    });
    assert.equal((await row.locator('td').nth(1).innerText()).trim(), String(ids[ALICE]));
    await assertFitsPhone(page);
    await screenshots(page, 'admin-users');
  });

  step('the student signs in with the keyboard alone', async () => {
    alicePage = await (await newContext(browser, server)).newPage();
    const page = alicePage;
    await page.goto('/me');
    // Not signed in: sent to the login page, which comes back to /me.
    assert.match(page.url(), /\/login\?next=(%2F|\/)me$/);
    await assertFitsPhone(page);
    await screenshots(page, 'login');

    // From the top of the page, Tab until the user name field (autofocus
    // may have put the focus there already).
    await page.evaluate(() => document.activeElement?.blur());
    let reached = false;
    for (let i = 0; i < 10 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = (await focused(page)) === 'username';
    }
    assert.ok(reached, 'Tab reaches the user name field');
    await page.keyboard.type('adupont');
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'password');
    await page.keyboard.type(STUDENT_PASSWORD);
    await Promise.all([page.waitForURL((u) => u.pathname === '/me'), page.keyboard.press('Enter')]);
    assert.match(await page.locator('#live .summary h2').innerText(), /Alice Dupont/);
  });

  step('the student sees exactly the published grades', async () => {
    const page = alicePage;
    const captions = await page.locator('#live table caption').allInnerTexts();
    assert.equal(captions.length, 1, `one subject: ${captions}`);
    assert.match(captions[0], /^Networks\b/);
    const grades = await page.locator('#live table td.grade').allInnerTexts();
    assert.deepEqual(grades.map(Number), [Number(NETWORKS[ALICE])]);
    // The unpublished Maths quiz is nowhere, nor counted.
    assert.doesNotMatch(await page.locator('#live').innerText(), /Maths|Quiz/);
    assert.equal(await page.locator('#my-average').innerText(), '14.50');
    assert.equal(await page.locator('#my-rank').innerText(), '2 / 5');
  });

  step('a grade the teacher publishes appears on the open page without a reload', async () => {
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

    // The teacher publishes Maths with the promotion page's form.
    const teacher = teacherPage;
    await teacher.goto(`/promotions/${PROMOTION}`);
    const publish = teacher.locator('form#publish');
    await publish.locator('[name="subject"]').fill('Maths');
    await Promise.all([teacher.waitForLoadState(), publish.locator('button.primary').click()]);
    assert.match(await teacher.locator('#flash').innerText(), /1 grade published/);

    await page.locator('#live table caption', { hasText: 'Maths' }).waitFor({ timeout: 10_000 });
    const grades = await page.locator('#live table td.grade').allInnerTexts();
    assert.deepEqual(grades.map(Number).sort(), [11, 14.5]);
    // (14.5 × 2 + 11 × 1) / 3
    assert.equal(await page.locator('#my-average').innerText(), '13.33');
    assert.equal(await page.evaluate(() => window.__sameDocument), 'still here');
    assert.equal(navigations, 0, 'no navigation happened');
    await assertFitsPhone(page);
    await screenshots(page, 'student');
  });

  step('a POST without its CSRF token is refused with 403 and changes nothing', async () => {
    const page = teacherPage;
    await page.goto(`/promotions/${PROMOTION}`);
    const lockedState = () => page.locator('#locked-state').getAttribute('class');
    assert.doesNotMatch(await lockedState(), /locked/);
    const before = await exported(page);

    // From the page's own script: same origin, the session cookie sent,
    // no token, or a wrong one.
    const post = (path, headers = {}) =>
      page.evaluate(
        ([path, headers]) =>
          fetch(path, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
            body: 'subject=Maths',
          }).then((r) => r.status),
        [path, headers],
      );
    assert.equal(await post(`/promotions/${PROMOTION}/lock`), 403);
    assert.equal(await post(`/promotions/${PROMOTION}/unpublish`), 403);
    assert.equal(await post(`/promotions/${PROMOTION}/lock`, { 'x-csrf-token': '0'.repeat(32) }), 403);

    // The page's own lock form, its token taken out, clicked as a person would.
    await page.evaluate(() => document.querySelector('form#lock input[name="csrf"]').remove());
    const [response] = await Promise.all([page.waitForNavigation(), page.locator('form#lock button').click()]);
    assert.equal(response.status(), 403);

    // Nothing changed: not locked, Maths still published, the same grades.
    await page.goto(`/promotions/${PROMOTION}`);
    assert.doesNotMatch(await lockedState(), /locked/);
    const maths = (await page.locator('table#evaluations tbody tr').allInnerTexts()).find((r) => r.startsWith('Maths'));
    assert.match(maths, /Quiz\s+1\S*\s+1\s+1/, maths);
    assert.deepEqual(await exported(page), before);

    // The student's logout form without its token: still signed in.
    const alice = alicePage;
    await alice.evaluate(() => document.querySelector('form[action="/logout"] input[name="csrf"]').remove());
    const [refused] = await Promise.all([alice.waitForNavigation(), alice.locator('form[action="/logout"] button').click()]);
    assert.equal(refused.status(), 403);
    await alice.goto('/me');
    assert.equal(new URL(alice.url()).pathname, '/me');

    // With its token, the same form does lock: the refusal was the token's.
    await Promise.all([page.waitForLoadState(), page.locator('form#lock button').click()]);
    assert.match(await lockedState(), /locked/);
  });

  step('the audit log lists the grade changes and its chain is intact', async () => {
    const page = adminPage;
    await page.goto('/admin/audit');
    const commands = await page.locator('table#audit tbody td code').allInnerTexts();
    // Five Networks grades (one of them refused first, then added) and the quiz.
    assert.equal(commands.filter((c) => c === 'grade.add').length, STUDENTS.length + 1, `${commands}`);
    const verify = async () => {
      await page.goto('/admin/audit');
      await Promise.all([page.waitForLoadState(), page.locator('form#verify-chain button').click()]);
      await page.locator('#chain-status').waitFor();
    };
    await verify();
    assert.match(await page.locator('#chain-status').getAttribute('class'), /\bok\b/);
    assert.match(await page.locator('#chain-status').innerText(), /intact/);
    await assertFitsPhone(page);
    await screenshots(page, 'audit', verify);
  });
});
