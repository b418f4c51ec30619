#!/usr/bin/env python3
"""Interop server peer built on python-websockets (see README.md in this directory).

    py_server.py [--tls CERT KEY]

Listens on 127.0.0.1 with an ephemeral port and prints `LISTENING <port>` as its first
line. On every path it echoes text and binary messages, with three special text messages:
  please-fragment -> replies "server-fragmented-message" split over 3 frames
  please-ping     -> pings with payload "server-ping", waits for the pong, then sends
                     "got-pong:server-ping"
  close-me        -> closes with code 4000, reason "server-bye"
Prints `PING <payload>` for each ping from a client, `CLOSE <code> <reason>` when a client
closes, and `CLOSE-ECHO <code> <reason>` with the client's reply to a close we started.
Exits when stdin reaches EOF, or after 60 seconds in any case.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import websockets  # noqa: F401
except ImportError:  # not run from the venv: re-exec with the one scripts/setup-peers.sh made
    venv = os.path.join(HERE, ".venv")
    venv_python = os.path.join(venv, "bin", "python")
    if os.path.exists(venv_python) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
        os.execv(venv_python, [venv_python] + sys.argv)
    sys.exit("py_server: python-websockets is missing; run scripts/setup-peers.sh")

import argparse
import asyncio
import ssl
import threading

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode

LIFETIME = 60
PONG_TIMEOUT = 10
MAX_SIZE = 16 * 1024 * 1024


def emit(line):
    print(line, flush=True)


def close_line(tag, code, reason):
    return "%s %d" % (tag, code) + (" " + reason if reason else "")


def watch_pings(ws):
    """Print PING lines. websockets answers pings itself and has no public hook for them,
    so wrap the protocol object's frame handler for this connection."""
    proto = ws.protocol
    original = proto.recv_frame

    def recv_frame(frame):
        if frame.opcode is Opcode.PING:
            emit("PING " + bytes(frame.data).decode("utf-8", "backslashreplace"))
        return original(frame)

    proto.recv_frame = recv_frame


async def handler(ws):
    watch_pings(ws)
    try:
        async for message in ws:
            if message == "please-fragment":
                await ws.send(iter(["server-", "fragmented-", "message"]))
            elif message == "please-ping":
                pong = await ws.ping(b"server-ping")
                try:
                    await asyncio.wait_for(pong, PONG_TIMEOUT)
                except asyncio.TimeoutError:
                    print("py_server: no pong for 'server-ping' within %d s" % PONG_TIMEOUT,
                          file=sys.stderr, flush=True)
                    await ws.close(1011, "no pong")
                    break
                await ws.send("got-pong:server-ping")
            elif message == "close-me":
                await ws.close(4000, "server-bye")
                break
            else:
                await ws.send(message)
    except ConnectionClosed:
        pass
    await ws.wait_closed()
    proto = ws.protocol
    rcvd = proto.close_rcvd
    if rcvd is None:
        emit("CLOSE 1006")  # connection dropped without a close frame
    elif proto.close_rcvd_then_sent is False:
        emit(close_line("CLOSE-ECHO", rcvd.code, rcvd.reason))
    else:
        emit(close_line("CLOSE", rcvd.code, rcvd.reason))


def exit_on_stdin_eof():
    try:
        while sys.stdin.buffer.read(65536):
            pass
    except (OSError, ValueError):
        pass
    sys.stdout.flush()
    os._exit(0)


async def main():
    ap = argparse.ArgumentParser(description="python-websockets interop server peer")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve wss:// with this certificate")
    args = ap.parse_args()

    ctx = None
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])

    async with serve(handler, "127.0.0.1", 0, ssl=ctx, max_size=MAX_SIZE,
                     compression="deflate", ping_interval=None) as server:
        port = next(s.getsockname()[1] for s in server.sockets)
        emit("LISTENING %d" % port)
        threading.Thread(target=exit_on_stdin_eof, daemon=True).start()
        await asyncio.sleep(LIFETIME)
        print("py_server: %d s lifetime over, exiting" % LIFETIME, file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
