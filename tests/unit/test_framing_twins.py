"""The scanners' twins agree (hypothesis): the same spans, lines and faults for any
chunking, on inputs dense in the bytes the scans stop at (quotes, backslash runs,
brackets, newlines) so that every branch of the compiled 64-byte block scan is crossed,
and on MessagePack bodies with flipped bytes. Each scanner's own states and edges are
pinned in test_json_scanner.py, test_ndjson_scanner.py, test_msgpack_scanner.py and
test_json_concat_scanner.py."""
from __future__ import annotations

import msgpack
from hypothesis import given, strategies as st

from fastingest.constants import KIND_JSON, KIND_JSON_CONCAT, KIND_MSGPACK, KIND_NDJSON

from helpers import scan

JSON_KINDS = [KIND_JSON, KIND_NDJSON, KIND_JSON_CONCAT]


def run(framing, kind, body, cuts, max_event, max_depth, collect):
    """The format's scanner of one kernel set over ``body`` cut at ``cuts``."""
    return scan(framing.SCANNERS[kind](max_event, max_depth, collect), body, cuts)


# Fragments that make strings, escapes and brackets meet at every alignment.
FRAGMENTS = [b'"', b"\\", b"\\\\", b'\\"', b"{", b"}", b"[", b"]", b"\n", b"\r\n", b" ",
             b",", b":", b"a", b"0", b'"k":', b'"v"', b"\xc3\xa9", b"x" * 30, b"\\" * 7,
             b'{"a":"', b'"}', b"\x00"]
bodies = st.lists(st.sampled_from(FRAGMENTS), max_size=120).map(b"".join)


def valid_like(frags):
    """A mostly well-formed JSON body with long strings full of escapes."""
    parts = []
    for f in frags:
        parts.append(b'{"s":"' + f.replace(b'\\', b'\\\\').replace(b'"', b'\\"').replace(b"\n", b"\\n") + b'","n":[1,{"x":[]}]}')
    return parts


@given(body=bodies, cuts=st.lists(st.integers(0, 3000), max_size=6),
       kind=st.sampled_from(JSON_KINDS), max_event=st.sampled_from([40, 100, 1 << 20]),
       max_depth=st.sampled_from([1, 3, 64]), collect=st.booleans())
def test_twins_agree_on_dense_bodies(both_impls, body, cuts, kind, max_event, max_depth, collect):
    cy, py = both_impls
    prefix = b"[" if kind == KIND_JSON and body[:1] != b"{" else b""
    body = prefix + body
    args = (kind, body, cuts, max_event, max_depth, collect and kind == KIND_NDJSON)
    assert run(cy.framing, *args) == run(py.framing, *args)


@given(frags=st.lists(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(b"".join), max_size=12),
       cuts=st.lists(st.integers(0, 5000), max_size=6), kind=st.sampled_from(JSON_KINDS))
def test_twins_agree_on_escape_heavy_events(both_impls, frags, cuts, kind):
    cy, py = both_impls
    events = valid_like(frags)
    if kind == KIND_NDJSON:
        body = b"\n".join(events) + b"\n"
    elif kind == KIND_JSON:
        body = b"[" + b",".join(events) + b"]"
    else:
        body = b"".join(events)
    args = (kind, body, cuts, 1 << 20, 64, False)
    result = run(cy.framing, *args)
    assert result == run(py.framing, *args)
    assert result[2] is None and len(result[0]) == len(events)


@given(evs=st.lists(st.dictionaries(st.text(max_size=5), st.one_of(
    st.integers(-2**63, 2**64 - 1), st.text(max_size=300), st.binary(max_size=300), st.lists(st.integers(-2**63, 2**64 - 1), max_size=20)),
    max_size=5), max_size=6), cuts=st.lists(st.integers(0, 4000), max_size=8),
    flip=st.integers(0, 4000), max_event=st.sampled_from([30, 300, 1 << 20]))
def test_twins_agree_on_msgpack(both_impls, evs, cuts, flip, max_event):
    cy, py = both_impls
    body = bytearray(msgpack.packb(evs))
    if flip < len(body) and flip % 3 == 0:
        body[flip] ^= 0xFF
    args = (KIND_MSGPACK, bytes(body), cuts, max_event, 4, False)
    assert run(cy.framing, *args) == run(py.framing, *args)
