#!/usr/bin/env node
// Interop server peer built on Node's `ws` (see README.md in this directory).
//
//   node node_server.mjs [--tls CERT KEY]
//
// Listens on 127.0.0.1 with an ephemeral port and prints `LISTENING <port>` as its first
// line. On every path it echoes text and binary messages, with three special text messages:
//   please-fragment -> replies "server-fragmented-message" split over 3 frames
//   please-ping     -> pings with payload "server-ping", waits for the pong, then sends
//                      "got-pong:server-ping"
//   close-me        -> closes with code 4000, reason "server-bye"
// Prints `PING <payload>` for each ping from a client, `CLOSE <code> <reason>` when a client
// closes, and `CLOSE-ECHO <code> <reason>` with the client's reply to a close we started.
// Exits when stdin reaches EOF, or after 60 seconds in any case.
import fs from 'node:fs';
import https from 'node:https';
import { WebSocketServer } from 'ws';

const LIFETIME_MS = 60_000;
const PONG_TIMEOUT_MS = 10_000;
const MAX_PAYLOAD = 16 * 1024 * 1024;

function emit(line) {
  process.stdout.write(line + '\n');
}

function closeLine(tag, code, reason) {
  return reason ? `${tag} ${code} ${reason}` : `${tag} ${code}`;
}

function usage() {
  process.stderr.write('usage: node_server.mjs [--tls CERT KEY]\n');
  process.exit(2);
}

const argv = process.argv.slice(2);
let tls = null;
if (argv.length === 3 && argv[0] === '--tls') {
  tls = { cert: fs.readFileSync(argv[1]), key: fs.readFileSync(argv[2]) };
} else if (argv.length !== 0) {
  usage();
}

// permessage-deflate on, for every message (ws compresses only from 1 KiB by default).
const options = { maxPayload: MAX_PAYLOAD, perMessageDeflate: { threshold: 0 } };
let wss;
let listener;
if (tls) {
  listener = https.createServer(tls);
  wss = new WebSocketServer({ ...options, server: listener });
} else {
  wss = new WebSocketServer({ ...options, host: '127.0.0.1', port: 0 });
  listener = wss;
}

function onListening() {
  emit(`LISTENING ${listener.address().port}`);
}

if (tls) {
  listener.listen(0, '127.0.0.1', onListening);
} else {
  wss.on('listening', onListening);
}

wss.on('connection', (ws) => {
  let weClosed = false;

  ws.on('ping', (data) => emit(`PING ${data.toString('utf8')}`));

  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      ws.send(data, { binary: true });
      return;
    }
    const text = data.toString('utf8');
    if (text === 'please-fragment') {
      ws.send('server-', { fin: false });
      ws.send('fragmented-', { fin: false });
      ws.send('message', { fin: true });
    } else if (text === 'please-ping') {
      const timer = setTimeout(() => {
        ws.off('pong', onPong);
        process.stderr.write("node_server: no pong for 'server-ping' within 10 s\n");
        weClosed = true;
        ws.close(1011, 'no pong');
      }, PONG_TIMEOUT_MS);
      const onPong = (payload) => {
        if (payload.toString('utf8') !== 'server-ping') return;
        clearTimeout(timer);
        ws.off('pong', onPong);
        ws.send('got-pong:server-ping');
      };
      ws.on('pong', onPong);
      ws.ping('server-ping');
    } else if (text === 'close-me') {
      weClosed = true;
      ws.close(4000, 'server-bye');
    } else {
      ws.send(text);
    }
  });

  ws.on('close', (code, reason) => {
    // 1006: the connection dropped without a close frame.
    const tag = weClosed && code !== 1006 ? 'CLOSE-ECHO' : 'CLOSE';
    emit(closeLine(tag, code, reason.toString('utf8')));
  });

  ws.on('error', (err) => process.stderr.write(`node_server: ${err.message}\n`));
});

function quit() {
  process.exit(0);
}
process.stdin.on('end', quit);
process.stdin.on('close', quit);
process.stdin.on('error', quit);
process.stdin.resume();
setTimeout(() => {
  process.stderr.write('node_server: 60 s lifetime over, exiting\n');
  quit();
}, LIFETIME_MS).unref();
