#!/usr/bin/env node
// The tokio_chat page as two people would use it, in headless Chromium: A on a phone
// (390×844), B on a desktop (1280×800). Run by tests/chat_scale.rs.
//
//   node chat_page.mjs http://127.0.0.1:PORT/ [SCREENSHOT_DIR]
//
// Steps, each printed as `OK <step> [detail]`:
//   pages-ready         both tabs live (window.chatReady)
//   blank-not-sent      whitespace only: Send stays disabled, Enter sends nothing
//   escaped             "<script>...<img onerror>...<b>" arrives in B as text: no elements, no script run
//   nick-and-time       A renamed "Ann Lee": B shows that name and the time next to her message
//   order               50 messages from A appear in B in the order sent, as in A
//   phone-layout        A after 50+ messages: input, Send and connection state inside the
//                       viewport, the newest message visible, no page scroll either way
//   desktop-layout      the same for B
//   favicon             GET /favicon.ico answers 200 with an image
//   offline-shown       (after printing `KILL` and reading `killed` on stdin: the server is
//                       gone) both tabs say they are offline, in view
//   pending-while-away  a message sent by A while offline shows as pending, with a banner
//   reconnected         (after printing `START` and reading `started`: the server is back on
//                       the same port) both tabs are live again by themselves; detail: ms
//   pending-delivered   A's queued message went out: B shows it, A no longer has it pending
// The first failure prints `FAIL <step>: <detail>` and exits 1; success exits 0. Each wait is
// limited to 20 s, the whole run to 100 s. With SCREENSHOT_DIR, PNGs of both tabs (live and
// offline) are written there.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

const WAIT_MS = 20_000;
const TOTAL_MS = 100_000;
const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const [url, shots] = process.argv.slice(2);
if (!url || !/^https?:\/\//.test(url)) {
  process.stderr.write('usage: node chat_page.mjs http://127.0.0.1:PORT/ [SCREENSHOT_DIR]\n');
  process.exit(2);
}

let step = 'launch';
let browser = null;
const logs = { A: [], B: [] };
class StepFailed extends Error {}
const print = (line) => process.stdout.write(line + '\n');
const ok = (detail) => print(`OK ${step}${detail ? ' ' + detail : ''}`);
const check = (cond, detail) => { if (!cond) throw new StepFailed(detail); };

async function finish(code, line) {
  if (line) print(line);
  if (code !== 0) {
    for (const [name, lines] of Object.entries(logs)) {
      for (const l of lines.slice(-20)) process.stderr.write(`chat_page: page ${name}: ${l}\n`);
    }
  }
  if (browser) await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  process.exit(code);
}

// stdin lines, one at a time, for the test's answers (`killed`, `started`).
const stdinLines = [];
let stdinWaiter = null;
createInterface({ input: process.stdin }).on('line', (l) => {
  if (stdinWaiter) { const w = stdinWaiter; stdinWaiter = null; w(l); } else stdinLines.push(l);
});
function readLine() {
  return stdinLines.length ? Promise.resolve(stdinLines.shift()) : new Promise((r) => { stdinWaiter = r; });
}
async function handOff(ask, answer) {
  print(ask);
  const line = await readLine();
  check(line === answer, `expected ${answer} on stdin, got ${JSON.stringify(line)}`);
}

async function openPage(name, contextOptions) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  page.on('console', (m) => logs[name].push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs[name].push(`pageerror: ${e.message}`));
  const sent = [];
  page.on('websocket', (ws) => ws.on('framesent', (f) => sent.push(String(f.payload))));
  const response = await page.goto(url, { timeout: WAIT_MS });
  check(response && response.ok(), `GET ${url} in ${name}: HTTP ${response ? response.status() : 'no response'}`);
  return { page, sent };
}

const waitFor = (page, what, fn, arg) => page.waitForFunction(fn, arg, { timeout: WAIT_MS })
  .catch(() => { throw new StepFailed(`${what} within ${WAIT_MS / 1000} s`); });
const texts = (page) => page.evaluate(() => [...document.querySelectorAll('#log li.msg:not(.pending) .bubble')].map((b) => b.textContent));
const waitText = (page, name, text) => waitFor(page, `page ${name} did not show ${JSON.stringify(text)}`,
  (t) => [...document.querySelectorAll('#log li.msg:not(.pending) .bubble')].some((b) => b.textContent === t), text);

async function send(page, text) {
  await page.fill('#msg', text, { timeout: WAIT_MS });
  await page.click('#send', { timeout: WAIT_MS });
}

// Where the things a user needs are, against the viewport.
async function layout(page) {
  return page.evaluate(() => {
    const box = (el) => { const r = el.getBoundingClientRect(); return { top: r.top, bottom: r.bottom, left: r.left, right: r.right }; };
    const msgs = document.querySelectorAll('#log li.msg');
    return {
      vw: window.innerWidth, vh: window.innerHeight,
      input: box(document.getElementById('msg')), send: box(document.getElementById('send')),
      status: box(document.getElementById('status')),
      scroller: box(document.getElementById('scroller')),
      newest: msgs.length ? box(msgs[msgs.length - 1]) : null,
      pageScroll: { w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight, y: window.scrollY },
    };
  });
}
function checkLayout(name, l) {
  const inside = (b) => b.top >= 0 && b.left >= 0 && b.bottom <= l.vh + 0.5 && b.right <= l.vw + 0.5 && b.bottom > b.top;
  check(inside(l.input), `${name}: the input is outside the ${l.vw}×${l.vh} viewport: ${JSON.stringify(l.input)}`);
  check(inside(l.send), `${name}: Send is outside the viewport: ${JSON.stringify(l.send)}`);
  check(inside(l.status), `${name}: the connection state is outside the viewport: ${JSON.stringify(l.status)}`);
  check(l.newest && l.newest.bottom <= l.scroller.bottom + 1 && l.newest.bottom > l.scroller.top,
    `${name}: the newest message is not in view: ${JSON.stringify(l.newest)} in ${JSON.stringify(l.scroller)}`);
  check(l.pageScroll.w <= l.vw && l.pageScroll.h <= l.vh && l.pageScroll.y === 0,
    `${name}: the page itself scrolls: ${JSON.stringify(l.pageScroll)} in ${l.vw}×${l.vh}`);
}
async function shot(page, file) {
  if (shots) await page.screenshot({ path: join(shots, file) });
}

async function run() {
  browser = await chromium.launch({ executablePath: EXECUTABLE, headless: true, args: ARGS, timeout: 30_000 });
  step = 'pages-ready';
  const a = await openPage('A', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const b = await openPage('B', { viewport: { width: 1280, height: 800 } });
  for (const [p, n] of [[a.page, 'A'], [b.page, 'B']]) await waitFor(p, `page ${n} not live`, () => window.chatReady === true);
  ok();

  step = 'blank-not-sent';
  await a.page.fill('#msg', '   \t ');
  check(await a.page.$eval('#send', (el) => el.disabled), 'Send is enabled for whitespace only');
  await a.page.press('#msg', 'Enter');
  check(await a.page.$$eval('#log li', (l) => l.length) === 0, 'whitespace-only message shown');
  await send(a.page, 'first real message');
  await waitText(b.page, 'B', 'first real message');
  check(!a.sent.some((f) => /^say\n[^\n]*\n[^\n]*\n\s*$/.test(f)), `a whitespace-only say went out: ${JSON.stringify(a.sent)}`);
  ok();

  step = 'escaped';
  const nasty = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"><b>bold</b>';
  await send(a.page, nasty);
  await waitText(b.page, 'B', nasty);
  for (const [p, n] of [[a.page, 'A'], [b.page, 'B']]) {
    const r = await p.evaluate((t) => ({
      pwned: window.pwned,
      elements: [...document.querySelectorAll('#log .bubble')].filter((x) => x.textContent === t).map((x) => x.children.length),
    }), nasty);
    check(r.pwned === undefined && r.elements.length === 1 && r.elements[0] === 0, `page ${n}: ${JSON.stringify(r)}`);
  }
  ok();

  step = 'nick-and-time';
  await a.page.fill('#nick', 'Ann Lee');
  await a.page.press('#nick', 'Tab'); // change event
  await send(a.page, 'hi from Ann');
  await waitText(b.page, 'B', 'hi from Ann');
  const meta = await b.page.evaluate(() => {
    const li = [...document.querySelectorAll('#log li.msg')].find((x) => x.querySelector('.bubble').textContent === 'hi from Ann');
    const t = li.querySelector('time');
    return { nick: li.querySelector('.nick').textContent, time: t.textContent, at: Date.parse(t.dateTime), shown: getComputedStyle(li.querySelector('.meta')).display !== 'none' };
  });
  check(meta.nick === 'Ann Lee' && meta.shown, `B shows ${JSON.stringify(meta)}`);
  check(/\d{1,2}:\d{2}/.test(meta.time) && Math.abs(Date.now() - meta.at) < 120_000, `time ${JSON.stringify(meta)}`);
  ok(`"${meta.nick}" at ${meta.time}`);

  step = 'order';
  const batch = Array.from({ length: 50 }, (_, i) => `m${String(i + 1).padStart(2, '0')}`);
  for (const t of batch) await send(a.page, t);
  await waitText(b.page, 'B', 'm50');
  await waitFor(a.page, 'page A still has pending messages', () => document.querySelectorAll('#log li.pending').length === 0);
  for (const [p, n] of [[a.page, 'A'], [b.page, 'B']]) {
    const seen = (await texts(p)).filter((t) => /^m\d\d$/.test(t));
    check(seen.join(',') === batch.join(','), `page ${n} shows ${seen.join(',')}`);
  }
  ok('50 messages');

  step = 'phone-layout';
  checkLayout('A (390×844)', await layout(a.page));
  await shot(a.page, 'chat-phone.png');
  ok();
  step = 'desktop-layout';
  checkLayout('B (1280×800)', await layout(b.page));
  await shot(b.page, 'chat-desktop.png');
  ok();

  step = 'favicon';
  const icon = await a.page.evaluate(() => fetch('/favicon.ico').then((r) => [r.status, r.headers.get('content-type')]));
  check(icon[0] === 200 && /^image\//.test(icon[1]), `GET /favicon.ico: ${icon}`);
  ok();

  step = 'offline-shown';
  await handOff('KILL', 'killed');
  for (const [p, n] of [[a.page, 'A'], [b.page, 'B']]) {
    await waitFor(p, `page ${n} does not say it is offline`, () => window.chatReady === false
      && /^(offline|reconnecting)/.test(document.getElementById('status').textContent));
  }
  checkLayout('A offline', await layout(a.page));
  ok();

  step = 'pending-while-away';
  await send(a.page, 'sent while away');
  const away = await a.page.evaluate(() => {
    const li = [...document.querySelectorAll('#log li.pending')].find((x) => x.querySelector('.bubble').textContent === 'sent while away');
    const r = li && li.getBoundingClientRect();
    return { pending: !!li, label: li ? li.querySelector('.when').textContent : '', inView: !!r && r.bottom <= document.getElementById('scroller').getBoundingClientRect().bottom + 1,
      banner: document.getElementById('away').hidden ? null : document.getElementById('away').textContent };
  });
  check(away.pending && away.inView && away.banner && away.banner.includes('1 message'), `A shows ${JSON.stringify(away)}`);
  await shot(a.page, 'chat-phone-offline.png');
  ok(`"${away.label}"`);

  step = 'reconnected';
  await handOff('START', 'started');
  const t0 = Date.now();
  for (const [p, n] of [[a.page, 'A'], [b.page, 'B']]) await waitFor(p, `page ${n} did not reconnect by itself`, () => window.chatReady === true);
  ok(`${Date.now() - t0} ms after the restart`);

  step = 'pending-delivered';
  await waitText(b.page, 'B', 'sent while away');
  await waitFor(a.page, 'page A still has it pending', () => document.querySelectorAll('#log li.pending').length === 0);
  await waitText(a.page, 'A', 'sent while away');
  await shot(b.page, 'chat-desktop-after.png');
  ok();
}

setTimeout(() => finish(1, `FAIL ${step}: whole run exceeded ${TOTAL_MS / 1000} s`), TOTAL_MS).unref();
const oneLine = (t) => String(t).replace(/\x1b\[[0-9;]*m/g, '').split('\n').map((l) => l.trim()).filter(Boolean).join(' | ');
run().then(() => finish(0), (e) => finish(1, `FAIL ${step}: ${oneLine(e instanceof StepFailed ? e.message : `${e?.name}: ${e?.message}`)}`));
