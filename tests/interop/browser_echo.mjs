#!/usr/bin/env node
// Load an echo page in headless Chromium (through playwright-core) and report what it saw.
//
//   node browser_echo.mjs URL [--cert CERT.pem]
//
// The page (examples/axum_echo.rs's /echo.html) opens a WebSocket to its own host, checks
// the echo, and sets `window.echoResult` to "ok ..." or "fail ...". With --cert, Chromium
// trusts that self-signed certificate for this run only, by the SHA-256 of its public key
// (--ignore-certificate-errors-spki-list), so an https page loads as over any valid
// certificate: HTTP/2 by ALPN, and its WebSocket over HTTP/2 when the server allows it
// (RFC 8441).
// Prints `PAGE <http version of the page load>` (e.g. h2, http/1.1), then `OK echo <result>`,
// or `FAIL <step>: <detail>` and exits 1. The browser is /usr/bin/chromium (override with
// CHROMIUM=/path); the whole run is limited to 60 seconds.
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const STEP_TIMEOUT_MS = 15_000;
const TOTAL_TIMEOUT_MS = 60_000;
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

let step = 'arguments';
let browser = null;
const logs = [];

function oneLine(text) {
  return String(text).replace(/\x1b\[[0-9;]*m/g, '').split('\n').map((l) => l.trim()).filter(Boolean).join(' | ');
}

async function finish(code, line) {
  if (line) process.stdout.write(line + '\n');
  if (code !== 0) for (const l of logs.slice(-20)) process.stderr.write(`browser_echo: ${l}\n`);
  if (browser) await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  process.exit(code);
}

// base64(SHA-256(SubjectPublicKeyInfo)), the form --ignore-certificate-errors-spki-list takes.
function spkiPin(certFile) {
  const cert = new X509Certificate(readFileSync(certFile));
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

async function run(url, certFile) {
  const args = [...ARGS];
  if (certFile) args.push(`--ignore-certificate-errors-spki-list=${spkiPin(certFile)}`);
  step = 'launch';
  browser = await chromium.launch({ executablePath: EXECUTABLE, headless: true, args, timeout: 30_000 });
  const page = await (await browser.newContext()).newPage();
  page.on('console', (msg) => logs.push(`console.${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => logs.push(`pageerror: ${err.message}`));
  page.on('websocket', (ws) => logs.push(`websocket opened: ${ws.url()}`));

  step = 'page';
  const response = await page.goto(url, { timeout: STEP_TIMEOUT_MS });
  if (!response || !response.ok()) {
    throw new Error(`GET ${url}: HTTP ${response ? response.status() : 'no response'}`);
  }
  const version = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  process.stdout.write(`PAGE ${version}\n`);

  step = 'echo';
  const handle = await page.waitForFunction(() => window.echoResult, null, { timeout: STEP_TIMEOUT_MS });
  const result = await handle.jsonValue();
  if (!String(result).startsWith('ok')) throw new Error(`page says: ${result}`);
  process.stdout.write(`OK echo ${result}\n`);
}

const argv = process.argv.slice(2);
const url = argv[0];
const certAt = argv.indexOf('--cert');
const certFile = certAt > 0 ? argv[certAt + 1] : null;
if (!url || !/^https?:\/\//.test(url) || (certAt > 0 && !certFile)) {
  process.stderr.write('usage: node browser_echo.mjs URL [--cert CERT.pem]\n');
  process.exit(2);
}
setTimeout(() => finish(1, `FAIL ${step}: whole run exceeded ${TOTAL_TIMEOUT_MS / 1000} s`), TOTAL_TIMEOUT_MS);
run(url, certFile).then(
  () => finish(0),
  (err) => finish(1, `FAIL ${step}: ${oneLine(err?.message ?? err)}`),
);
