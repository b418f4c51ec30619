#!/usr/bin/env python3
"""Interop client peer built on python-websockets (see README.md in this directory).

    py_client.py ws://127.0.0.1:PORT [--ca CAFILE]
    py_client.py wss://127.0.0.1:PORT --ca CAFILE

Runs the scripted exchange against a server under test, printing `OK <n> <name>` per step,
or `FAIL <n> <name>: <detail>` and exiting 1 at the first failure. Exit 0 only if all 8
steps passed. The whole run is limited to 30 seconds.
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
    sys.exit("py_client: python-websockets is missing; run scripts/setup-peers.sh")

import argparse
import asyncio
import ssl
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

TOTAL_TIMEOUT = 30
STEP_TIMEOUT = 10
MAX_SIZE = 16 * 1024 * 1024

STEPS = {
    1: "text-echo",
    2: "binary-echo",
    3: "fragmented-send",
    4: "fragmented-receive",
    5: "client-ping",
    6: "server-ping",
    7: "client-close",
    8: "server-close",
}


class StepFailed(Exception):
    pass


class Runner:
    def __init__(self, base_url, ssl_context):
        self.base_url = base_url
        self.ssl_context = ssl_context
        self.step = 0

    def begin(self, step):
        self.step = step

    def ok(self):
        print("OK %d %s" % (self.step, STEPS[self.step]), flush=True)

    def connect(self, path):
        return connect(
            self.base_url + path,
            ssl=self.ssl_context,
            max_size=MAX_SIZE,
            # permessage-deflate, as python-websockets does by default (it compresses
            # every message).
            compression="deflate",
            open_timeout=STEP_TIMEOUT,
            close_timeout=STEP_TIMEOUT,
            ping_interval=None,
        )

    async def recv(self, ws):
        try:
            return await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
        except asyncio.TimeoutError:
            raise StepFailed("no message within %d s" % STEP_TIMEOUT)
        except ConnectionClosed as e:
            raise StepFailed("connection closed while waiting for a message: %s" % e)

    async def expect(self, ws, want):
        got = await self.recv(ws)
        if type(got) is not type(want):
            kind = "text" if isinstance(got, str) else "binary"
            raise StepFailed("expected a %s message, got %s (%s)"
                             % ("text" if isinstance(want, str) else "binary", kind, describe(got)))
        if got != want:
            raise StepFailed("expected %s, got %s" % (describe(want), describe(got)))

    async def run(self):
        async with self.connect("/interop") as ws:
            self.begin(1)
            await ws.send("hello")
            await self.expect(ws, "hello")
            self.ok()

            self.begin(2)
            blob = bytes(i % 251 for i in range(1 << 20))
            await ws.send(blob)
            await self.expect(ws, blob)
            self.ok()

            self.begin(3)
            await ws.send(iter(["frag-", "ment-", "ed"]))
            await self.expect(ws, "frag-ment-ed")
            self.ok()

            self.begin(4)
            await ws.send("please-fragment")
            await self.expect(ws, "server-fragmented-message")
            self.ok()

            self.begin(5)
            pong = await ws.ping(b"client-ping")
            try:
                await asyncio.wait_for(pong, STEP_TIMEOUT)
            except asyncio.TimeoutError:
                raise StepFailed("no pong with payload 'client-ping' within %d s" % STEP_TIMEOUT)
            self.ok()

            self.begin(6)
            await ws.send("please-ping")  # the library answers the server's ping by itself
            await self.expect(ws, "got-pong:server-ping")
            self.ok()

            self.begin(7)
            await ws.close(4000, "client-bye")
            check_close(ws, 4000, None, initiated_by_us=True)
            self.ok()

        self.begin(8)
        async with self.connect("/server-close") as ws:
            await ws.send("close-me")
            try:
                extra = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
                raise StepFailed("expected the server to close, got a message: %s" % describe(extra))
            except asyncio.TimeoutError:
                raise StepFailed("server did not close within %d s" % STEP_TIMEOUT)
            except ConnectionClosed:
                pass
            try:
                await asyncio.wait_for(ws.wait_closed(), STEP_TIMEOUT)
            except asyncio.TimeoutError:
                raise StepFailed("TCP connection not closed within %d s" % STEP_TIMEOUT)
            check_close(ws, 4000, "server-bye", initiated_by_us=False)
            self.ok()


def check_close(ws, code, reason, initiated_by_us):
    proto = ws.protocol
    rcvd = proto.close_rcvd
    if rcvd is None:
        raise StepFailed("no close frame received from the server (connection dropped)")
    if rcvd.code != code:
        raise StepFailed("server's close code is %d (reason %r), expected %d"
                         % (rcvd.code, rcvd.reason, code))
    if reason is not None and rcvd.reason != reason:
        raise StepFailed("server's close reason is %r, expected %r" % (rcvd.reason, reason))
    if proto.close_sent is None:
        raise StepFailed("close handshake incomplete: no close frame was sent by us")
    if initiated_by_us and proto.close_rcvd_then_sent:
        raise StepFailed("unexpected: server closed before our close frame was sent")
    if not initiated_by_us and proto.close_rcvd_then_sent is False:
        raise StepFailed("unexpected: we sent a close frame before the server's")


def describe(value):
    if isinstance(value, str):
        return "text %r" % (value if len(value) <= 60 else value[:60] + "...(%d chars)" % len(value))
    if len(value) <= 32:
        return "binary %s" % value.hex()
    first_bad = next((i for i in range(len(value)) if value[i] != i % 251), None)
    extra = "" if first_bad is None else ", first byte differing from i%%251 at %d" % first_bad
    return "binary of %d bytes%s" % (len(value), extra)


def parse_args():
    ap = argparse.ArgumentParser(description="python-websockets interop client peer")
    ap.add_argument("url", help="ws://127.0.0.1:PORT or wss://127.0.0.1:PORT")
    ap.add_argument("--ca", help="CA certificate (PEM) to trust for wss://")
    return ap.parse_args()


async def main():
    args = parse_args()
    parts = urlsplit(args.url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        print("FAIL 0 arguments: URL must be ws://HOST:PORT or wss://HOST:PORT", flush=True)
        return 1
    base = "%s://%s" % (parts.scheme, parts.netloc)
    ctx = None
    if parts.scheme == "wss":
        ctx = ssl.create_default_context(cafile=args.ca) if args.ca else ssl.create_default_context()
    elif args.ca:
        print("py_client: --ca ignored for a ws:// URL", file=sys.stderr)

    runner = Runner(base, ctx)
    try:
        await asyncio.wait_for(runner.run(), TOTAL_TIMEOUT)
    except StepFailed as e:
        detail = str(e)
    except asyncio.TimeoutError:
        detail = "whole run exceeded %d s" % TOTAL_TIMEOUT
    except ConnectionClosed as e:
        detail = "connection closed unexpectedly: %s" % e
    except Exception as e:  # handshake errors, TLS errors, refused connections, ...
        detail = "%s: %s" % (type(e).__name__, e)
    else:
        return 0
    step = runner.step
    print("FAIL %d %s: %s" % (step, STEPS.get(step, "connect"), detail), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
