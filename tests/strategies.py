"""Hypothesis strategies and encoders for bodies of every format (shared by the tests)."""
from __future__ import annotations

import json
import random

import msgpack
from hypothesis import strategies as st

RECEIVED = 1_700_000_000_123_456_789

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
events = st.dictionaries(st.text(max_size=10), json_values, max_size=6)
event_lists = st.lists(events, max_size=8)

WS = [b"", b" ", b"\t", b"\r\n", b"\n", b"  \n\t"]
LINE_WS = [b"", b" ", b"\t", b"\r"]


def dump_json(value, rnd: random.Random, ws=WS) -> bytes:
    """JSON text with random insignificant whitespace and random escaping."""
    w = lambda: rnd.choice(ws)  # noqa: E731
    if isinstance(value, dict):
        items = [w() + _scalar(k, rnd) + w() + b":" + w() + dump_json(v, rnd, ws) + w() for k, v in value.items()]
        return b"{" + (b",".join(items) if items else w()) + b"}"
    if isinstance(value, list):
        items = [w() + dump_json(v, rnd, ws) + w() for v in value]
        return b"[" + (b",".join(items) if items else w()) + b"]"
    return _scalar(value, rnd)


def _scalar(value, rnd: random.Random) -> bytes:
    return json.dumps(value, ensure_ascii=rnd.random() < 0.5).encode()


def json_array_body(evs, rnd: random.Random) -> bytes:
    return rnd.choice(WS) + dump_json(evs, rnd) + rnd.choice(WS)


def json_object_body(ev, rnd: random.Random) -> bytes:
    return rnd.choice(WS) + dump_json(ev, rnd) + rnd.choice(WS)


def ndjson_body(evs, rnd: random.Random) -> bytes:
    out = []
    for ev in evs:
        for _ in range(rnd.randrange(3) if rnd.random() < 0.3 else 0):
            out.append(rnd.choice(LINE_WS) + b"\n")      # blank / whitespace-only lines
        out.append(rnd.choice(LINE_WS) + dump_json(ev, rnd, LINE_WS) + rnd.choice(LINE_WS)
                   + rnd.choice([b"\n", b"\r\n"]))
    body = b"".join(out)
    if body and rnd.random() < 0.3:
        body = body.rstrip(b"\r\n")                       # no newline after the last line
    return body


def msgpack_body(evs, single: bool = False) -> bytes:
    return msgpack.packb(evs[0] if single else evs, use_bin_type=True)


def mutate(body: bytes, rnd: random.Random) -> bytes:
    """A random corruption of a valid body: flips, insertions, deletions, cuts, splices."""
    b = bytearray(body)
    for _ in range(rnd.randrange(1, 4)):
        op = rnd.randrange(5)
        pos = rnd.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] ^= 1 << rnd.randrange(8)
        elif op == 1:
            b[pos:pos] = bytes([rnd.choice(b'{}[]",:\\\n\r 0a\x00\xff\xc3\xc1\x80\x90\xdd')])
        elif op == 2 and b:
            del b[pos:pos + rnd.randrange(1, 4)]
        elif op == 3:
            del b[pos:]
        else:
            b[pos:pos] = body[rnd.randrange(len(body) + 1):][: rnd.randrange(8)]
    return bytes(b)
