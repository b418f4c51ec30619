#!/usr/bin/env node
// Headless Chromium tabs of the tokio_chat page, driven one command per stdin line, for tests
// that mix browsers with other clients (tests/chat_scale.rs).
//
//   node chat_tabs.mjs
//
// Commands (one per line; TEXT is the rest of the line), each answered by one line:
//   open TAB URL      open URL in a new browser context (its own storage: another user) and
//                     wait until the chat is live            -> READY TAB NODE
//   say TAB TEXT      type TEXT and press Send                -> SAID TAB
//   arm TAB TEXT      send TEXT from the page's own `chatstate` handler the next time the
//                     connection drops, so it is queued while away   -> ARMED TAB
//   log TAB N         wait until the page shows at least N messages from the server and none
//                     pending                                 -> LOG TAB ID:TEXT ID:TEXT ...
//   stats TAB         the outages the page recorded           -> STATS TAB MS:ATTEMPTS ...
//                     (MS: from noticing the drop to being live again)
//   quit              close the browser and exit 0
// Meanwhile every connection-state change is reported as `STATE TAB STATE NODE ATTEMPT`.
// A failed command prints `FAIL <command>: <detail>` and exits 1. Each wait is limited to
// 20 s, the whole run to 120 s. The browser is /usr/bin/chromium (or $CHROMIUM).
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const WAIT_MS = 20_000;
const TOTAL_MS = 120_000;
const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let browser = null;
const tabs = new Map(); // name -> { page, logs }
const print = (line) => process.stdout.write(line + '\n');

async function finish(code, line) {
  if (line) print(line);
  if (code !== 0) {
    for (const [name, tab] of tabs) {
      for (const l of tab.logs.slice(-20)) process.stderr.write(`chat_tabs: tab ${name}: ${l}\n`);
    }
  }
  if (browser) await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  process.exit(code);
}

function tab(name) {
  const t = tabs.get(name);
  if (!t) throw new Error(`no tab ${name}`);
  return t;
}

async function open(name, url) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const logs = [];
  tabs.set(name, { page, logs });
  page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  await page.exposeFunction('reportChatState', (d) => print(`STATE ${name} ${d.state} ${d.node || '-'} ${d.attempt}`));
  await page.addInitScript(() => window.addEventListener('chatstate', (e) => window.reportChatState(e.detail)));
  const response = await page.goto(url, { timeout: WAIT_MS });
  if (!response || !response.ok()) throw new Error(`GET ${url}: HTTP ${response ? response.status() : 'no response'}`);
  await page.waitForFunction(() => window.chatReady === true, null, { timeout: WAIT_MS });
  const node = await page.evaluate(() => document.getElementById('status').textContent.replace(/^online\s*·\s*/, ''));
  print(`READY ${name} ${node}`);
}

async function say(name, text) {
  const { page } = tab(name);
  await page.fill('#msg', text, { timeout: WAIT_MS });
  await page.click('#send', { timeout: WAIT_MS });
  print(`SAID ${name}`);
}

async function arm(name, text) {
  await tab(name).page.evaluate((t) => {
    const once = (e) => {
      if (e.detail.state !== 'offline') return;
      window.removeEventListener('chatstate', once);
      document.getElementById('msg').value = t;
      document.getElementById('form').requestSubmit();
    };
    window.addEventListener('chatstate', once);
  }, text);
  print(`ARMED ${name}`);
}

async function logOf(name, n) {
  const { page } = tab(name);
  const read = () => page.evaluate(() => ({
    shown: [...document.querySelectorAll('#log li.msg[data-id]')]
      .map((li) => `${li.dataset.id}:${li.querySelector('.bubble').textContent}`),
    pending: document.querySelectorAll('#log li.pending').length,
  }));
  try {
    await page.waitForFunction((want) => document.querySelectorAll('#log li.msg[data-id]').length >= want
      && document.querySelectorAll('#log li.pending').length === 0, n, { timeout: WAIT_MS });
  } catch {
    const now = await read();
    throw new Error(`tab ${name} shows ${now.shown.length} messages (${now.pending} pending), not ${n}, after ${WAIT_MS / 1000} s: ${now.shown.join(' ')}`);
  }
  print(`LOG ${name} ${(await read()).shown.join(' ')}`.trimEnd());
}

async function stats(name) {
  const outages = await tab(name).page.evaluate(() => window.chatStats.outages);
  print(`STATS ${name} ${outages.map((o) => `${(o.upAt - o.downAt).toFixed(1)}:${o.attempts}`).join(' ')}`.trimEnd());
}

async function run(line) {
  const [command, name = '', ...rest] = line.split(' ');
  const text = rest.join(' ');
  switch (command) {
    case 'open': return open(name, text);
    case 'say': return say(name, text);
    case 'arm': return arm(name, text);
    case 'log': return logOf(name, Number(text));
    case 'stats': return stats(name);
    case 'quit': return finish(0);
    default: throw new Error('unknown command');
  }
}

setTimeout(() => finish(1, `FAIL run: exceeded ${TOTAL_MS / 1000} s`), TOTAL_MS).unref();
browser = await chromium.launch({ executablePath: EXECUTABLE, headless: true, args: ARGS, timeout: 30_000 });
print('STARTED');
// Commands run one after another, in the order they came.
let chain = Promise.resolve();
const oneLine = (t) => String(t).replace(/\x1b\[[0-9;]*m/g, '').split('\n').map((l) => l.trim()).filter(Boolean).join(' | ');
createInterface({ input: process.stdin })
  .on('line', (line) => {
    chain = chain.then(() => run(line)).catch((e) => finish(1, `FAIL ${line.slice(0, 60)}: ${oneLine(e.message)}`));
  })
  .on('close', () => { chain = chain.then(() => finish(0)); });
