#!/usr/bin/env python3
"""Turns spec-vectors/**/*.vec into fuzz corpus files, one per vector and target.

    python3 fuzz/seed.py [OUT_DIR]        # default: fuzz/seeds

OUT_DIR/<target>/<vector name> is written for every target a vector can seed, in the input
format that target reads (see the comments below and fuzz/fuzz_targets/*.rs). The vector
syntax is documented in spec-vectors/README.md; this reads only the keys it needs.
Seeds larger than MAX_SEED bytes are skipped: libFuzzer sizes -max_len from the corpus, and
large seeds slow every execution without adding coverage.
"""
import hashlib
import base64
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_SEED = 8192
TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))')


def unescape(s):
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            n = s[i + 1]
            if n == "x":
                out.append(int(s[i + 2 : i + 4], 16))
                i += 4
                continue
            out += {"\\": b"\\", '"': b'"', "r": b"\r", "n": b"\n", "t": b"\t"}[n]
            i += 2
        else:
            out += c.encode()
            i += 1
    return bytes(out)


def parse_bytes(value):
    """Returns (wire bytes, clear bytes after the last mask= on the line)."""
    out = bytearray()
    clear = bytearray()
    key, key_at = None, 0
    pos = 0
    while pos < len(value):
        m = TOKEN.match(value, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        if m.group(1) is not None:
            chunk = unescape(m.group(1))
            if value[pos : pos + 1] == "*":
                n = re.match(r"\*(\d+)", value[pos:])
                pos += n.end()
                chunk *= int(n.group(1))
        else:
            tok = m.group(2)
            if tok.startswith("mask="):
                key = bytes.fromhex(tok[5:])
                key_at = 0
                out += key
                continue
            if tok.startswith("ramp*"):
                chunk = bytes(i % 256 for i in range(int(tok[5:])))
            elif "*" in tok:
                hexpart, n = tok.split("*")
                chunk = bytes.fromhex(hexpart) * int(n)
            else:
                chunk = bytes.fromhex(tok)
        if key is not None:
            clear += chunk
            chunk = bytes(b ^ key[(key_at + i) % 4] for i, b in enumerate(chunk))
            key_at += len(chunk)
        out += chunk
    return bytes(out), bytes(clear)


def vectors(path):
    block = []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line == "---":
            yield block
            block = []
        elif line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition(":")
            block.append((key.strip(), value.strip()))
    yield block


def script(inputs, eof, sends):
    """The connection targets' script: op byte, length byte, argument (common::drive)."""
    out = bytearray()
    for kind, arg in sends:
        op = {"binary": 7, "ping": 9, "pong": 15}.get(kind)
        if op is not None and len(arg) < 256:
            out += bytes([op, len(arg)]) + arg
    data = b"".join(inputs)
    for i in range(0, len(data), 255):
        chunk = data[i : i + 255]
        out += bytes([0, len(chunk)]) + chunk
    if eof:
        out += bytes([14, 0])
    out += bytes([12, 0])
    return bytes(out)


# proxy_response: a control byte (bits 0-1: 0 http, 1 http with credentials, 2 socks5h,
# 3 socks5h with credentials; bit 2: EOF at the end; bits 3-7: cut step), then the proxy's
# answer bytes. Written here, not from spec-vectors/, which has no proxy vectors.
OK_V4 = bytes([5, 0, 0, 1, 10, 0, 0, 1, 0x1F, 0x90])
PROXY_SEEDS = [
    ("http_200_with_server_bytes", b"\x00HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01"),
    ("http_10_200_tinyproxy",
     b"\x08HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n"),
    ("http_100_then_200",
     b"\x00HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nVia: 1.1 p\r\n\r\n"),
    ("http_200_ignores_framing",
     b"\x00HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("http_407_no_credentials",
     b"\x00HTTP/1.1 407 Proxy Authentication Required\r\n"
     b"Proxy-Authenticate: Basic realm=\"p\"\r\n\r\n"),
    ("http_407_credentials", b"\x01HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"),
    ("http_401_credentials_tinyproxy", b"\x01HTTP/1.0 401 Unauthorized\r\n\r\n"),
    ("http_502_with_body", b"\x00HTTP/1.1 502 Bad Gateway\r\nContent-Length: 4\r\n\r\nnope"),
    ("http_bare_lf", b"\x00HTTP/1.1 200 OK\nX: y\r\n\r\n"),
    ("http_truncated_eof", b"\x04HTTP/1.1 200 OK\r\nX: y\r\n"),
    ("http_too_many_headers", b"\x00HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20 + b"\r\n"),
    ("socks5_no_auth_ipv4", bytes([2, 5, 0]) + OK_V4 + b"data"),
    ("socks5_no_auth_ipv6", bytes([2, 5, 0, 5, 0, 0, 4]) + bytes(16) + bytes([0, 80])),
    ("socks5_no_auth_domain", bytes([2, 5, 0, 5, 0, 0, 3, 4]) + b"host" + bytes([0, 80, 1])),
    ("socks5_password_ok", bytes([3, 5, 2, 1, 0]) + OK_V4),
    ("socks5_password_rejected", bytes([3, 5, 2, 1, 1])),
    ("socks5_no_acceptable_method", bytes([2, 5, 0xFF])),
    ("socks5_host_unreachable", bytes([2, 5, 0, 5, 4, 0, 1, 0, 0, 0, 0, 0, 0])),
    ("socks5_bad_address_type", bytes([2, 5, 0, 5, 0, 0, 9])),
    ("socks5_truncated_eof", bytes([6, 5, 0, 5, 0, 0, 1, 127])),
    ("socks5_http_answer", b"\x02HTTP/1.1 400 Bad Request\r\n\r\n"),
]


# uri: the URI string itself; client_request: the URI, then NUL-separated fields starting with
# P (subprotocol), E (extension offer) or H (header "name:value"). Written here: RFC 6455 §3
# URIs valid and not, IPv6 literals, default and explicit ports, percent-encoding.
URI_SEEDS = [
    ("plain", b"ws://example.com"),
    ("path_query", b"WSS://Example.com:8443/chat?x=1&y=%20"),
    ("ipv6_port_query", b"ws://[::1]:9001?q"),
    ("ipv6_full", b"wss://[2001:db8::8a2e:370:7334]/a/b"),
    ("ipv4_empty_port", b"ws://127.0.0.1:/a?"),
    ("leading_zero_port", b"ws://a:00080/"),
    ("sub_delims_host", b"ws://a,b!$&'()*+;=/p:@/?q/?"),
    ("pct_host", b"ws://%41b.example/"),
    ("fragment", b"ws://a/#f"),
    ("userinfo", b"ws://u:p@a/"),
    ("port_overflow", b"ws://a:65536/"),
    ("port_zero", b"ws://a:0/"),
    ("zone_id", b"ws://[fe80::1%25eth0]/"),
    ("bad_pct", b"ws://a/%2"),
    ("non_ascii", "ws://a/\u00e9".encode()),
    ("http_scheme", b"http://a/"),
]
CLIENT_REQUEST_SEEDS = [
    ("protocols_headers",
     b"ws://[::1]:9001/chat\0Pchat\0Psuperchat\0HOrigin:http://example.com\0HX-Id: 7 "),
    ("deflate_offer", b"ws://a/\0Epermessage-deflate; client_max_window_bits\0Ex-test; a=1"),
    ("quoted_param", b"wss://a:8443/?q\0Ex; a=\"b,c\"\0Hcookie:a=b; c=d"),
    ("owned_header", b"ws://a/\0HHost:b"),
    ("injection", b"ws://a/\0HX:a\r\nY: b"),
    ("duplicate_protocol", b"ws://a/\0Pp\0Pp"),
    ("obs_text_value", "ws://a/\0HX-Name:caf\u00e9\tbar".encode()),
    # Found by the CI smoke after the Origin policy landed: the target's server must admit
    # any Origin, since our client sends whatever Origin its caller sets.
    ("origin_of_another_host", b"ws://t\0PcPperchat\0HOrigin:h7 "),
]


KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


def masked_frame(b0, payload):
    """One frame from a client: first byte `b0`, masked with KEY."""
    n = len(payload)
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n <= 0xFFFF:
        head = bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))


# http_client_request: requests as users of other WebSocket clients build them.
HTTP_CLIENT_SEEDS = [
    ("tungstenite_style_headers", b"\x00wss://example.com:8443/feed?x=1\nhost: example.com:8443\n"
     b"upgrade: websocket\nconnection: Upgrade\nsec-websocket-version: 13\n"
     b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\nsec-websocket-protocol: a, b\n"
     b"sec-websocket-extensions: permessage-deflate; client_max_window_bits\n"
     b"authorization: Bearer xyz\norigin: https://example.com"),
    ("ipv6_and_cookie", b"\x00ws://[::1]:9001/\ncookie: a=1; b=2\nx-trace: \xc3\xa9t\xc3\xa9"),
    ("post_is_refused", b"\x01ws://example.com/"),
    ("host_mismatch", b"\x00ws://example.com/\nhost: other.example"),
]


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "seeds")
    seeds = {}

    def add(target, name, data):
        if len(data) <= MAX_SEED:
            seeds.setdefault(target, {})[name] = data

    vec_dir = os.path.join(ROOT, "spec-vectors")
    for dirpath, _, files in sorted(os.walk(vec_dir)):
        for f in sorted(files):
            if not f.endswith(".vec"):
                continue
            for block in vectors(os.path.join(dirpath, f)):
                keys = dict(block)
                if "name" not in keys:
                    continue
                name, kind = keys["name"], keys.get("kind")
                ins = [parse_bytes(v) for k, v in block if k == "in"]
                wire = [w for w, _ in ins]
                if kind == "frames":
                    role = keys["role"]
                    sends = []
                    for k, v in block:
                        if k == "send":
                            word, _, rest = v.partition(" ")
                            if word in ("binary", "ping", "pong"):
                                sends.append((word, parse_bytes(rest)[0]))
                    add(f"{role}_connection", name, script(wire, keys.get("eof") == "yes", sends))
                    for i, frame in enumerate(wire):
                        add("frame_decode", f"{name}_{i}", frame[:64])
                    if f == "utf8.vec":
                        # The text as the validator sees it: payloads in the clear, in order.
                        text = b"".join(clear if clear else w[2:] for w, clear in ins)
                        add("utf8", name, b"\x07" + text)
                elif kind == "server-handshake":
                    add("server_handshake", name, b"\x00" + b"".join(wire))
                    # http_request: control 0 (same-host policy), 5 (any origin, and the
                    # same head as an HTTP/2 extended CONNECT).
                    add("http_request", name, b"\x00" + b"".join(wire))
                    add("http_request", name + "_h2_any", b"\x05" + b"".join(wire))
                elif kind == "client-handshake":
                    # http_client_request: the vector's URI and the subprotocols it offers.
                    lines = [keys["uri"]] + [
                        "sec-websocket-protocol: " + v for k, v in block if k == "protocol"
                    ]
                    add("http_client_request", name, b"\x00" + "\n".join(lines).encode())
                    # The target's nonce is "the sample nonce", as in every client vector.
                    add("client_handshake", name, b"\x00" + b"".join(wire))
                elif kind == "deflate-inflate":
                    # Control 0: PerMessage, context takeover, 8-bit window, 64-byte limit;
                    # 0x0f: 15 bits; then a cut seed and the payloads, each length-prefixed.
                    msgs = b"".join(bytes([min(len(w), 255)]) + w[:255] for w in wire)
                    add("deflate_inflate", name, b"\x07\x00" + msgs)
                    add("deflate_inflate", name + "_cut", b"\x47\x05" + msgs)
                    # The same payloads as compressed binary messages to a server connection
                    # (raw mode; control 0x37: 15-bit window, context takeover, 64 KiB).
                    frames = b"".join(masked_frame(0xC2, w) for w in wire)
                    add("deflate_connection", name, b"\x37\x00" + frames)
                elif kind in ("deflate-server", "deflate-client"):
                    headers = [v for k, v in block if k == "header"]
                    add("deflate_negotiation", name, b"\x00" + "\n".join(headers).encode())
                    add("deflate_negotiation", name + "_narrow", b"\xc9" + "\n".join(headers).encode())
    # Round trips: plain chat-like text that the target compresses first (control bit 0x80).
    chat = [
        b'{"type":"message","room":"general","user":{"id":7,"nick":"ada"},"text":"deploy is green"}',
        b'{"type":"message","room":"general","user":{"id":8,"nick":"ken"},"text":"thanks, merged"}',
        b"",
        b"Hello",
    ]
    msgs = b"".join(bytes([len(m)]) + m for m in chat)
    add("deflate_inflate", "round_trip_chat", b"\x87\x03" + msgs)
    add("deflate_inflate", "round_trip_chat_no_takeover_retain", b"\x9c\x06" + msgs)
    # deflate_connection, build mode (control bit 0x40): items `flags len data`.
    def item(flags, data):
        return bytes([flags, len(data)]) + data

    chat_items = b"".join(item(0x04, m) for m in chat if m)  # compressed text, one frame
    add("deflate_connection", "build_chat", b"\x77\x06" + chat_items)
    add("deflate_connection", "build_chat_no_takeover_9_bits", b"\x79\x01" + chat_items)
    add(
        "deflate_connection",
        "build_fragmented_ping_between_plain",
        b"\x74\x03"
        + item(0x1C, chat[0])  # compressed text in 4 frames
        + item(0x02, b"ping")
        + item(0x05, b"plain text")  # uncompressed text
        + item(0x04, chat[1]),
    )
    # 255 zeros x 64 compress to a few dozen bytes and inflate past the 1 KiB limit: 1009.
    add("deflate_connection", "build_bomb_over_1_kib", b"\x47\x00" + item(0x24, bytes(255)))
    # A raw continuation with RSV1 set (1002), and a raw text frame with RSV1 and garbage.
    add(
        "deflate_connection",
        "build_rsv1_on_continuation",
        b"\x77\x02" + item(0x0C | 0x03, b"\x00") + item(0x0C | 0x03, b"\x00"),
    )
    add("deflate_connection", "build_garbage", b"\x77\x02" + item(0x1F, b"\xff\xff\xff\xff"))
    for name, data in PROXY_SEEDS:
        add("proxy_response", name, data)
    for name, data in URI_SEEDS:
        add("uri", name, data)
        add("client_request", "uri_" + name, data)
    for name, data in CLIENT_REQUEST_SEEDS:
        add("client_request", name, data)
    for name, data in HTTP_CLIENT_SEEDS:
        add("http_client_request", name, data)
    for target, files in sorted(seeds.items()):
        d = os.path.join(out_dir, target)
        os.makedirs(d, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as fh:
                fh.write(data)
        print(f"{target}: {len(files)} seeds in {d}")


if __name__ == "__main__":
    main()
