# -*- coding: utf-8 -*-
"""Run Autobahn|Testsuite's fuzzingserver bound to the loopback interface only.

Python 2.7 (run it with the interpreter of the wstest virtualenv):

    <prefix>/py27/bin/python autobahn/fuzzingserver.py SPEC.json [more wstest options]

This is `wstest -m fuzzingserver -s SPEC.json -u 0`, except that every listening socket is
bound to 127.0.0.1 (set AUTOBAHN_BIND to choose another address). Stock wstest listens on all
interfaces, and it also starts a report web server on port 8080 unless `-u 0` is given;
this wrapper passes `-u 0` unless the caller supplies a --webport/-u of their own, and even
then that web server is kept on the loopback address.

The port comes from the "url" field of the spec. The process never exits on its own:
stop it (SIGTERM) once the client under test has visited /updateReports.
"""
from __future__ import print_function

import os
import sys

BIND = os.environ.get("AUTOBAHN_BIND", "127.0.0.1")


def usage():
    print(__doc__.strip(), file=sys.stderr)
    sys.exit(2)


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help") or not os.path.isfile(args[0]):
        usage()
    spec, extra = args[0], args[1:]

    # wstest insists on picking the reactor before anything imports twisted.internet.reactor.
    import autobahntestsuite.choosereactor  # noqa: F401  (import for its side effect)
    from twisted.internet import reactor
    import autobahn.twisted.websocket as ab_ws

    original_listen_ws = ab_ws.listenWS

    def loopback_listen_ws(factory, contextFactory=None, backlog=50, interface=""):
        return original_listen_ws(factory, contextFactory, backlog, interface or BIND)

    # fuzzing.py does `from autobahn.twisted.websocket import listenWS`, so the name must be
    # replaced before that module is imported (and again afterwards, to be safe).
    ab_ws.listenWS = loopback_listen_ws

    # Anything else that listens (the optional report web server) goes through the reactor.
    original_tcp = reactor.listenTCP
    original_ssl = reactor.listenSSL

    def loopback_tcp(port, factory, backlog=50, interface=""):
        return original_tcp(port, factory, backlog, interface or BIND)

    def loopback_ssl(port, factory, contextFactory, backlog=50, interface=""):
        return original_ssl(port, factory, contextFactory, backlog, interface or BIND)

    reactor.listenTCP = loopback_tcp
    reactor.listenSSL = loopback_ssl

    import autobahntestsuite.fuzzing as fuzzing
    fuzzing.listenWS = loopback_listen_ws
    import autobahntestsuite.wstest as wstest

    has_webport = any(a in ("-u", "--webport") or a.startswith("--webport=") for a in extra)
    argv = ["wstest", "--mode=fuzzingserver", "--spec=" + spec]
    if not has_webport:
        argv.append("--webport=0")
    sys.argv = argv + extra
    wstest.run()


if __name__ == "__main__":
    main()
