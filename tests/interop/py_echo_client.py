#!/usr/bin/env python3
"""Echo-server client peer built on python-websockets (see README.md in this directory).

    py_echo_client.py ws://127.0.0.1:PORT/PATH [--ca CAFILE]

Connects offering the subprotocols `echo.v1, echo.v0` and checks a plain echo server:
the first offered subprotocol chosen, a text, a 1 MiB binary message and a fragmented text
echoed, a ping answered, and the closing handshake completed with code 1000. Prints
`OK <n> <name>` per step, or `FAIL <n> <name>: <detail>` and exits 1 at the first failure.
The whole run is limited to 30 seconds.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import websockets  # noqa: F401
except ImportError:  # not run from the venv: re-exec with the one scripts/setup-peers.sh made
    venv_python = os.path.join(HERE, ".venv", "bin", "python")
    if os.path.exists(venv_python) and os.path.realpath(sys.prefix) != os.path.realpath(
        os.path.join(HERE, ".venv")
    ):
        os.execv(venv_python, [venv_python] + sys.argv)
    sys.exit("py_echo_client: python-websockets is missing; run scripts/setup-peers.sh")

import argparse
import asyncio
import ssl

from websockets.asyncio.client import connect

TOTAL_TIMEOUT = 30
STEP_TIMEOUT = 10
STEPS = {
    1: "subprotocol",
    2: "text-echo",
    3: "binary-echo",
    4: "fragmented-echo",
    5: "ping",
    6: "close",
}


class StepFailed(Exception):
    pass


async def run(url, ssl_context, state):
    async with connect(
        url,
        ssl=ssl_context,
        subprotocols=["echo.v1", "echo.v0"],
        max_size=16 * 1024 * 1024,
        compression=None,
        open_timeout=STEP_TIMEOUT,
        close_timeout=STEP_TIMEOUT,
        ping_interval=None,
    ) as ws:

        async def expect(want):
            got = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
            if got != want:
                raise StepFailed("echo differs: sent %d, got %d (%s)"
                                 % (len(want), len(got), type(got).__name__))

        def ok():
            print("OK %d %s" % (state["step"], STEPS[state["step"]]), flush=True)

        state["step"] = 1
        if ws.subprotocol != "echo.v1":
            raise StepFailed("server chose %r, the first offered is 'echo.v1'" % ws.subprotocol)
        ok()
        state["step"] = 2
        await ws.send("hello")
        await expect("hello")
        ok()
        state["step"] = 3
        blob = bytes(i % 251 for i in range(1 << 20))
        await ws.send(blob)
        await expect(blob)
        ok()
        state["step"] = 4
        await ws.send(iter(["frag-", "ment-", "ed"]))
        await expect("frag-ment-ed")
        ok()
        state["step"] = 5
        pong = await ws.ping(b"echo-ping")
        await asyncio.wait_for(pong, STEP_TIMEOUT)
        ok()
        state["step"] = 6
        await ws.close(1000, "bye")
        rcvd = ws.protocol.close_rcvd
        if rcvd is None or rcvd.code != 1000:
            raise StepFailed("close handshake incomplete: received %r" % (rcvd,))
        ok()


async def main():
    ap = argparse.ArgumentParser(description="python-websockets echo client peer")
    ap.add_argument("url")
    ap.add_argument("--ca")
    args = ap.parse_args()
    ctx = ssl.create_default_context(cafile=args.ca) if args.url.startswith("wss:") else None
    state = {"step": 0}
    try:
        await asyncio.wait_for(run(args.url, ctx, state), TOTAL_TIMEOUT)
        return 0
    except asyncio.TimeoutError:
        detail = "timed out"
    except Exception as e:  # handshake errors, refused connections, closed connections, ...
        detail = "%s: %s" % (type(e).__name__, e)
    print("FAIL %d %s: %s" % (state["step"], STEPS.get(state["step"], "connect"), detail),
          flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
