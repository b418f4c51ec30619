#!/usr/bin/env node
// Interop client peer built on Node's `ws` (see README.md in this directory).
//
//   node node_client.mjs ws://127.0.0.1:PORT [--ca CAFILE]
//   node node_client.mjs wss://127.0.0.1:PORT --ca CAFILE
//
// Runs the scripted exchange against a server under test, printing `OK <n> <name>` per step,
// or `FAIL <n> <name>: <detail>` and exiting 1 at the first failure. Exit 0 only if all 8
// steps passed. The whole run is limited to 30 seconds.
import fs from 'node:fs';
import WebSocket from 'ws';

const TOTAL_TIMEOUT_MS = 30_000;
const STEP_TIMEOUT_MS = 10_000;
const MAX_PAYLOAD = 16 * 1024 * 1024;

const STEPS = {
  0: 'connect',
  1: 'text-echo',
  2: 'binary-echo',
  3: 'fragmented-send',
  4: 'fragmented-receive',
  5: 'client-ping',
  6: 'server-ping',
  7: 'client-close',
  8: 'server-close',
};

let step = 0;

class StepFailed extends Error {}

function fail(detail) {
  process.stdout.write(`FAIL ${step} ${STEPS[step]}: ${detail}\n`);
  process.exit(1);
}

function ok() {
  process.stdout.write(`OK ${step} ${STEPS[step]}\n`);
}

function describe(value, isBinary) {
  if (!isBinary) {
    const s = value.toString('utf8');
    return `text ${JSON.stringify(s.length > 60 ? s.slice(0, 60) + `...(${s.length} chars)` : s)}`;
  }
  if (value.length <= 32) return `binary ${value.toString('hex')}`;
  return `binary of ${value.length} bytes`;
}

// A WebSocket whose events are queued, so the script can wait for them in order.
class Conn {
  constructor(url, ca) {
    this.events = [];
    this.waiter = null;
    this.pings = [];
    const opts = { maxPayload: MAX_PAYLOAD, perMessageDeflate: { threshold: 0 }, handshakeTimeout: STEP_TIMEOUT_MS };
    if (ca) opts.ca = fs.readFileSync(ca);
    this.ws = new WebSocket(url, opts);
    const push = (ev) => {
      this.events.push(ev);
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w();
      }
    };
    this.ws.on('open', () => push({ type: 'open' }));
    this.ws.on('message', (data, isBinary) => push({ type: 'message', data, isBinary }));
    this.ws.on('ping', (data) => {
      this.pings.push(data.toString('utf8'));
      push({ type: 'ping', data });
    });
    this.ws.on('pong', (data) => push({ type: 'pong', data }));
    this.ws.on('close', (code, reason) => push({ type: 'close', code, reason: reason.toString('utf8') }));
    this.ws.on('error', (err) => push({ type: 'error', err }));
    this.ws.on('unexpected-response', (req, res) => {
      push({ type: 'error', err: new Error(`handshake refused: HTTP ${res.statusCode}`) });
      req.destroy();
    });
  }

  // Next queued event, waiting at most STEP_TIMEOUT_MS.
  async next(what) {
    if (this.events.length === 0) {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          this.waiter = null;
          reject(new StepFailed(`no ${what} within ${STEP_TIMEOUT_MS / 1000} s`));
        }, STEP_TIMEOUT_MS);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.events.shift();
  }

  // Next event that is not a ping/pong (those are recorded or answered by ws itself).
  async nextMain(what) {
    for (;;) {
      const ev = await this.next(what);
      if (ev.type !== 'ping' && ev.type !== 'pong') return ev;
    }
  }

  async open() {
    const ev = await this.nextMain('open');
    if (ev.type === 'open') return;
    if (ev.type === 'error') throw new StepFailed(`connect failed: ${ev.err.message}`);
    throw new StepFailed(`connect failed: ${ev.type} ${ev.code ?? ''}`);
  }

  async expectMessage(want, wantBinary) {
    const ev = await this.nextMain('message');
    if (ev.type === 'close') throw new StepFailed(`connection closed (code ${ev.code} ${JSON.stringify(ev.reason)}) while waiting for a message`);
    if (ev.type === 'error') throw new StepFailed(`error while waiting for a message: ${ev.err.message}`);
    if (ev.type !== 'message') throw new StepFailed(`unexpected event ${ev.type}`);
    const wantBuf = Buffer.isBuffer(want) ? want : Buffer.from(want, 'utf8');
    if (ev.isBinary !== wantBinary) {
      throw new StepFailed(`expected a ${wantBinary ? 'binary' : 'text'} message, got ${describe(ev.data, ev.isBinary)}`);
    }
    if (!wantBuf.equals(ev.data)) {
      throw new StepFailed(`expected ${describe(wantBuf, wantBinary)}, got ${describe(ev.data, ev.isBinary)}`);
    }
  }

  async expectPong(payload) {
    for (;;) {
      const ev = await this.next(`pong with payload ${JSON.stringify(payload)}`);
      if (ev.type === 'pong' && ev.data.toString('utf8') === payload) return;
      if (ev.type === 'ping' || ev.type === 'pong') continue; // other control frames: keep waiting
      if (ev.type === 'message') throw new StepFailed(`expected a pong, got ${describe(ev.data, ev.isBinary)}`);
      if (ev.type === 'close') throw new StepFailed(`connection closed (code ${ev.code}) while waiting for a pong`);
      throw new StepFailed(`error while waiting for a pong: ${ev.err?.message}`);
    }
  }

  async expectClose(code, reason) {
    const ev = await this.nextMain('close');
    if (ev.type === 'message') throw new StepFailed(`expected a close, got ${describe(ev.data, ev.isBinary)}`);
    if (ev.type === 'error') throw new StepFailed(`error while closing: ${ev.err.message}`);
    if (ev.code !== code) throw new StepFailed(`server's close code is ${ev.code} (reason ${JSON.stringify(ev.reason)}), expected ${code}`);
    if (reason !== null && ev.reason !== reason) throw new StepFailed(`server's close reason is ${JSON.stringify(ev.reason)}, expected ${JSON.stringify(reason)}`);
  }
}

async function run(base, ca) {
  const a = new Conn(`${base}/interop`, ca);
  await a.open();

  step = 1;
  a.ws.send('hello');
  await a.expectMessage('hello', false);
  ok();

  step = 2;
  const blob = Buffer.alloc(1 << 20);
  for (let i = 0; i < blob.length; i++) blob[i] = i % 251;
  a.ws.send(blob, { binary: true });
  await a.expectMessage(blob, true);
  ok();

  step = 3;
  a.ws.send('frag-', { fin: false });
  a.ws.send('ment-', { fin: false });
  a.ws.send('ed', { fin: true });
  await a.expectMessage('frag-ment-ed', false);
  ok();

  step = 4;
  a.ws.send('please-fragment');
  await a.expectMessage('server-fragmented-message', false);
  ok();

  step = 5;
  a.ws.ping('client-ping');
  await a.expectPong('client-ping');
  ok();

  step = 6;
  a.pings.length = 0;
  a.ws.send('please-ping'); // ws answers the server's ping by itself (autoPong)
  await a.expectMessage('got-pong:server-ping', false);
  if (!a.pings.includes('server-ping')) {
    throw new StepFailed(`got the reply but saw no ping "server-ping" (pings seen: ${JSON.stringify(a.pings)})`);
  }
  ok();

  step = 7;
  a.ws.close(4000, 'client-bye');
  await a.expectClose(4000, null);
  ok();

  step = 8;
  const b = new Conn(`${base}/server-close`, ca);
  await b.open();
  b.ws.send('close-me');
  await b.expectClose(4000, 'server-bye');
  ok();
}

function main() {
  const args = process.argv.slice(2);
  let url = null;
  let ca = null;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--ca' && i + 1 < args.length) ca = args[++i];
    else if (url === null) url = args[i];
    else fail(`unexpected argument ${args[i]}`);
  }
  let parsed;
  try {
    parsed = new URL(url ?? '');
  } catch {
    fail('usage: node_client.mjs ws[s]://HOST:PORT [--ca CAFILE]');
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') fail('URL must be ws:// or wss://');
  if (ca && parsed.protocol === 'ws:') {
    process.stderr.write('node_client: --ca ignored for a ws:// URL\n');
    ca = null;
  }
  const base = `${parsed.protocol}//${parsed.host}`;

  setTimeout(() => fail(`whole run exceeded ${TOTAL_TIMEOUT_MS / 1000} s`), TOTAL_TIMEOUT_MS);
  run(base, ca).then(
    () => process.exit(0),
    (err) => fail(err instanceof StepFailed ? err.message : `${err?.name}: ${err?.message}`),
  );
}

main();
