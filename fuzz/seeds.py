#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into fuzz/corpus/<target>/.

The seeds are the requests of docs/protocol.md's transcripts, in both
encodings, framed for each target: single frames, pipelined streams, frames
cut short, over-long lines and lengths, datagrams with and without an id.
Standard library only (MessagePack is written by hand below).
Run from anywhere: python3 fuzz/seeds.py
"""

import hashlib
import json
import os
import re
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_FRAME = 256  # gradebook_proto::fuzzing::FUZZ_MAX_FRAME


def msgpack(v):
    """MessagePack of a JSON value, maps as rmp-serde writes them."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if 0 <= v < 2**32:
            return b"\xce" + struct.pack(">I", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        if len(b) < 256:
            return b"\xd9" + bytes([len(b)]) + b
        return b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, list):
        head = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return head + b"".join(msgpack(x) for x in v)
    if isinstance(v, dict):
        head = bytes([0x80 | len(v)]) if len(v) < 16 else b"\xde" + struct.pack(">H", len(v))
        return head + b"".join(msgpack(k) + msgpack(x) for k, x in v.items())
    raise TypeError(type(v))


def prefixed(b):
    return struct.pack(">I", len(b)) + b


def requests():
    """The transcripts' requests, as text and as parsed values (when valid)."""
    text = open(os.path.join(ROOT, "docs", "protocol.md"), encoding="utf-8").read()
    lines = [m.group(1) for m in re.finditer(r'^> (\{.*)$', text, re.M)]
    out = []
    for line in lines:
        try:
            out.append((line, json.loads(line)))
        except ValueError:
            out.append((line, None))
    return out


def write(target, data):
    d = os.path.join(ROOT, "fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    reqs = requests()
    valid = [v for _, v in reqs if isinstance(v, dict)]

    # json_lines: one line, CRLF, pipelined, cut short, empty lines, too long.
    for line, _ in reqs:
        b = line.encode()
        write("json_lines", b + b"\n")
        write("json_lines", b + b"\r\n")
        write("json_lines", b[: len(b) // 2])
    for i in range(0, len(reqs), 6):
        block = [l.encode() for l, _ in reqs[i : i + 6]]
        write("json_lines", b"\n".join(block) + b"\n\n\r\n" + block[0][:10])
    write("json_lines", b"x" * (MAX_FRAME + 3))
    write("json_lines", b"{" + b" " * (MAX_FRAME - 2) + b"}\r\n")
    write("json_lines", b"{" + b" " * (MAX_FRAME - 1) + b"}\n")
    write("json_lines", b"\n\n\r\n\r\n")
    write("json_lines", b'[1,"ping"]\n[]\n"ping"\n\xff\xfe{\n')
    # hello switching to MessagePack, then MessagePack frames (spec §4).
    hello = b'{"id":1,"cmd":"hello","args":{"encoding":"msgpack"}}\n'
    write("json_lines", hello + prefixed(msgpack({"id": 2, "cmd": "ping"})))
    write("json_lines", hello + b"".join(prefixed(msgpack(v)) for v in valid[:8]))
    write("json_lines", hello + b"\x00\x00\x01\x01")

    # msgpack_frames: the same in length-prefixed MessagePack.
    for v in valid:
        m = prefixed(msgpack(v))
        write("msgpack_frames", m)
        write("msgpack_frames", m[: len(m) // 2])
    for i in range(0, len(valid), 6):
        write("msgpack_frames", b"".join(prefixed(msgpack(v)) for v in valid[i : i + 6]))
    write("msgpack_frames", b"\x00\x00\x01\x01" + b"\x80" * 20)
    write("msgpack_frames", b"\xff\xff\xff\xff")
    write("msgpack_frames", b"\x00\x00\x00\x00" * 3)
    write("msgpack_frames", prefixed(msgpack([1, "ping"])))
    write("msgpack_frames", prefixed(msgpack({"id": 1, "cmd": "hello", "args": {"encoding": "json"}}))
          + b'{"id":2,"cmd":"ping"}\n')
    write("msgpack_frames", prefixed(b"\x83\xa2id\x01\xa3cmd\xa4ping\xa4args" + b"\x91" * 100 + b"\xc0"))

    # udp_datagram: each request alone, in both encodings, with a token, a
    # pad, a string id, too long an id, no id.
    for line, v in reqs:
        write("udp_datagram", line.encode())
        if isinstance(v, dict):
            write("udp_datagram", msgpack(v))
    for v in valid[:20]:
        w = dict(v, token="27cf6308" * 8)
        write("udp_datagram", json.dumps(w, separators=(",", ":")).encode())
        write("udp_datagram", msgpack(w))
    write("udp_datagram", b'{"id":"a7","cmd":"ping","pad":"' + b"p" * 64 + b'"}')
    write("udp_datagram", msgpack({"id": "a7", "cmd": "promotion.list", "pad": "p" * 40}))
    write("udp_datagram", json.dumps({"id": "i" * 129, "cmd": "ping"}).encode())
    write("udp_datagram", b'{"cmd":"ping"}')
    write("udp_datagram", msgpack({"cmd": "ping"}))
    write("udp_datagram", b' {"id":7,"cmd":"hello"}')
    write("udp_datagram", b'{"id":1,"cmd":"ping","args":{"x":1}}')
    write("udp_datagram", b'{"id":1,"cmd":"grade.add","args":{"student":1,"subject":"'
          + "é".encode() * 300 + b'","value":12}}')


if __name__ == "__main__":
    main()
