#!/usr/bin/env node
// Drive a chat page in headless Chromium (two tabs) through playwright-core.
//
//   node browser_chat.mjs http://127.0.0.1:PORT/
//
// The page must connect a WebSocket to ws(s)://<same host>/ws, set `window.chatReady = true`
// once it is open, and have <input id="msg">, <button id="send"> and <ul id="log">, where
// each received message is appended as an <li> holding the message text.
// Steps: both tabs ready; "hello from A" typed and sent in tab A shows up in tab B;
// "hello from B" goes the other way; a 100 KiB message of 'x' from B reaches A intact.
// Prints `OK <step>` per step, or `FAIL <step>: <detail>` and exits 1. Exit 0 = all passed.
// The browser is /usr/bin/chromium (override with CHROMIUM=/path); the whole run is
// limited to 60 seconds.
import { chromium } from 'playwright-core';

const STEP_TIMEOUT_MS = 10_000;
const TOTAL_TIMEOUT_MS = 60_000;
const BIG_LEN = 100 * 1024;
const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let step = 'launch';
let browser = null;
const pageLogs = { A: [], B: [] };

class StepFailed extends Error {}

// Error texts from Playwright span several lines and carry terminal colours: flatten them.
function oneLine(text) {
  return String(text).replace(/\x1b\[[0-9;]*m/g, '').split('\n').map((l) => l.trim()).filter(Boolean).join(' | ');
}

function ok() {
  process.stdout.write(`OK ${step}\n`);
}

async function finish(code, line) {
  if (line) process.stdout.write(line + '\n');
  if (code !== 0) {
    for (const [name, lines] of Object.entries(pageLogs)) {
      for (const l of lines.slice(-20)) process.stderr.write(`browser_chat: page ${name}: ${l}\n`);
    }
  }
  if (browser) {
    await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  }
  process.exit(code);
}

// Texts of the <li> elements in #log, shortened for messages.
async function logSummary(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('#log li')].map((li) => {
      const t = li.textContent;
      return t.length > 60 ? `${t.slice(0, 60)}...(${t.length} chars)` : t;
    }),
  ).catch((e) => [`<cannot read log: ${e.message}>`]);
}

async function openPage(context, name, url) {
  const page = await context.newPage();
  page.on('console', (msg) => pageLogs[name].push(`console.${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => pageLogs[name].push(`pageerror: ${err.message}`));
  page.on('websocket', (ws) => {
    pageLogs[name].push(`websocket opened: ${ws.url()}`);
    ws.on('close', () => pageLogs[name].push(`websocket closed: ${ws.url()}`));
  });
  const resp = await page.goto(url, { timeout: STEP_TIMEOUT_MS });
  if (!resp || !resp.ok()) {
    throw new StepFailed(`GET ${url} in page ${name}: HTTP ${resp ? resp.status() : 'no response'}`);
  }
  return page;
}

async function waitReady(page, name) {
  try {
    await page.waitForFunction(() => window.chatReady === true, null, { timeout: STEP_TIMEOUT_MS });
  } catch {
    throw new StepFailed(`window.chatReady did not become true in page ${name} within ${STEP_TIMEOUT_MS / 1000} s`);
  }
}

async function send(page, text) {
  await page.fill('#msg', text, { timeout: STEP_TIMEOUT_MS });
  await page.click('#send', { timeout: STEP_TIMEOUT_MS });
}

// Wait until some <li> in #log contains `text`.
async function waitForText(page, name, text) {
  try {
    await page.waitForFunction(
      (t) => [...document.querySelectorAll('#log li')].some((li) => li.textContent.includes(t)),
      text,
      { timeout: STEP_TIMEOUT_MS },
    );
  } catch {
    throw new StepFailed(`page ${name} did not show ${JSON.stringify(text)} within ${STEP_TIMEOUT_MS / 1000} s; its log: ${JSON.stringify(await logSummary(page))}`);
  }
}

// Wait until some <li> in #log holds a run of at least `len` 'x' characters; return the
// longest such run (it must be exactly `len` for the message to be intact).
async function waitForXRun(page, name, len) {
  try {
    const handle = await page.waitForFunction(
      (n) => {
        let best = 0;
        for (const li of document.querySelectorAll('#log li')) {
          for (const run of li.textContent.match(/x+/g) || []) best = Math.max(best, run.length);
        }
        return best >= n ? best : false;
      },
      len,
      { timeout: STEP_TIMEOUT_MS },
    );
    return await handle.jsonValue();
  } catch {
    throw new StepFailed(`page ${name} did not show a ${len}-character message within ${STEP_TIMEOUT_MS / 1000} s; its log: ${JSON.stringify(await logSummary(page))}`);
  }
}

async function run(url) {
  browser = await chromium.launch({ executablePath: EXECUTABLE, headless: true, args: ARGS, timeout: 30_000 });
  const context = await browser.newContext();

  step = 'pages-ready';
  const a = await openPage(context, 'A', url);
  const b = await openPage(context, 'B', url);
  await waitReady(a, 'A');
  await waitReady(b, 'B');
  ok();

  step = 'a-to-b';
  await send(a, 'hello from A');
  await waitForText(b, 'B', 'hello from A');
  ok();

  step = 'b-to-a';
  await send(b, 'hello from B');
  await waitForText(a, 'A', 'hello from B');
  ok();

  step = 'large-message';
  await send(b, 'x'.repeat(BIG_LEN));
  const got = await waitForXRun(a, 'A', BIG_LEN);
  if (got !== BIG_LEN) throw new StepFailed(`page A shows ${got} 'x' characters, sent ${BIG_LEN}`);
  ok();
}

const url = process.argv[2];
if (!url || !/^https?:\/\//.test(url) || process.argv.length !== 3) {
  process.stderr.write('usage: node browser_chat.mjs http://127.0.0.1:PORT/\n');
  process.exit(2);
}
setTimeout(() => finish(1, `FAIL ${step}: whole run exceeded ${TOTAL_TIMEOUT_MS / 1000} s`), TOTAL_TIMEOUT_MS);
run(url).then(
  () => finish(0),
  (err) => finish(1, `FAIL ${step}: ${oneLine(err instanceof StepFailed ? err.message : `${err?.name}: ${err?.message}`)}`),
);
