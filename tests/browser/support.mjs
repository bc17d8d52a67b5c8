// What the browser tests share: the real server started from its binary,
// Chromium, and screenshots.
//
// The server runs as it would for a department: TLS on (its self-signed
// certificate, which the browser is told to accept), on free loopback
// ports, with a fresh data directory. Nothing here talks to the network
// beyond 127.0.0.1.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

/** The first admin's password, given to the server at its first start. */
export const ADMIN_PASSWORD = 'admin-password-for-browser-tests';

/** The binary under test: scripts/test builds it and says where. */
function binary() {
  const bin = process.env.GRADEBOOK_BIN;
  if (!bin) {
    throw new Error(
      'GRADEBOOK_BIN is not set: build the binary (cargo build -p gradebook-cli) and ' +
        'run GRADEBOOK_BIN=target/debug/gradebook node --test tests/browser/ (scripts/test does)',
    );
  }
  if (!fs.existsSync(bin)) throw new Error(`GRADEBOOK_BIN=${bin}: no such file`);
  return path.resolve(bin);
}

/** The environment without any GRADEBOOK_ setting of the caller's. */
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('GRADEBOOK_')) env[k] = v;
  }
  return env;
}

/**
 * Starts `gradebook serve` with TLS on free ports and waits for its
 * `listening … http=HOST:PORT` line. Its log goes to a file in its
 * temporary directory, shown by `stop` when something failed.
 */
export async function startServer() {
  const bin = binary();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gradebook-browser-'));
  const data = path.join(root, 'data');
  const logPath = path.join(root, 'server.log');
  const log = fs.openSync(logPath, 'w');
  const child = spawn(
    bin,
    ['serve', '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--no-quic', '--data', data],
    {
      env: { ...cleanEnv(), GRADEBOOK_ADMIN_PASSWORD: ADMIN_PASSWORD, RUST_LOG: 'info' },
      stdio: ['ignore', 'pipe', log],
    },
  );
  // Should this process end without `stop` (an uncaught error), the
  // server goes with it.
  const orphan = () => child.kill('SIGKILL');
  process.on('exit', orphan);

  const line = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no listening line within 30 s; log: ${logPath}`)), 30_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const found = out.split('\n').find((l) => l.startsWith('listening '));
      if (found) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code ?? signal}) before listening:\n${fs.readFileSync(logPath, 'utf8')}`));
    });
  });
  const field = (name) => {
    const m = line.match(new RegExp(`\\b${name}=(\\S+)`));
    if (!m) throw new Error(`no ${name}= in the listening line: ${line}`);
    return m[1];
  };
  if (field('tls') !== 'on') throw new Error(`expected TLS on: ${line}`);
  const http = field('http');
  const exited = new Promise((resolve) => child.once('exit', resolve));

  return {
    /** `https://127.0.0.1:PORT`, the portal. */
    url: `https://${http}`,
    /**
     * Stops the server (SIGINT, then SIGKILL after 10 s) and removes its
     * directory; after a failure, keeps it and prints the log's path.
     */
    async stop({ failed = false } = {}) {
      process.off('exit', orphan);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      fs.closeSync(log);
      if (failed) {
        console.error(`browser tests failed: the server's log is ${logPath}`);
      } else {
        fs.rmSync(root, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Debian's Chromium, headless, in a fresh profile: Playwright's `launch`
 * gives it a new temporary --user-data-dir and removes it on close. No
 * browser is downloaded (`npx playwright install` is never needed).
 */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.GRADEBOOK_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** The desktop size the tests browse at, and the phone size for pictures. */
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/**
 * A browser context of its own (cookies, storage) on the portal: one per
 * person, as two people on two machines. English unless switched.
 */
export function newContext(browser, server) {
  return browser.newContext({
    baseURL: server.url,
    ignoreHTTPSErrors: true,
    locale: 'en-GB',
    viewport: DESKTOP,
  });
}

/**
 * Asserts that the page, as it is, fits a phone's width: nothing makes it
 * scroll sideways (wide tables scroll inside their own box). Leaves it at
 * desktop width.
 */
export async function assertFitsPhone(page) {
  await page.setViewportSize(PHONE);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.setViewportSize(DESKTOP);
  assert.ok(width <= PHONE.width, `${page.url()} is ${width} px wide on a phone ${PHONE.width} px wide`);
}

/**
 * Switches the language of `page`'s context with `/lang` (what the link on
 * every page does), without leaving the page: the cookie it sets is the
 * context's.
 */
async function switchLanguage(page, lang) {
  const response = await page.request.get(`/lang?to=${lang}&back=/`, { maxRedirects: 0 });
  if (response.status() < 300 || response.status() >= 400) {
    throw new Error(`/lang?to=${lang} answered ${response.status()}`);
  }
}

/**
 * With GRADEBOOK_SCREENSHOTS=DIR, saves `NAME-{en,fr}-{desktop,phone}.png`
 * of the whole page (at the width of each, as tall as the page is): for
 * each language, switches with `/lang`, lets `show` bring the page back to
 * what is pictured (by default, loads again the address it is at), then
 * pictures it at both widths. The page is left in English at desktop
 * width, shown again.
 */
export async function screenshots(page, name, show) {
  const dir = process.env.GRADEBOOK_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  const here = page.url();
  const again = show ?? (() => page.goto(here));
  for (const lang of ['en', 'fr']) {
    await switchLanguage(page, lang);
    await again();
    for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
      await page.setViewportSize(viewport);
      // Let the layout settle at the new width.
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      await page.screenshot({
        path: path.join(dir, `${name}-${lang}-${size}.png`),
        fullPage: true,
        animations: 'disabled',
      });
    }
  }
  await page.setViewportSize(DESKTOP);
  await switchLanguage(page, 'en');
  await again();
}
