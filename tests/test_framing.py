"""Scanner (framing kernel) level: the twins find the same spans, lines and faults, for
any chunking; inputs dense in the bytes the scan stops at (quotes, backslash runs,
brackets, newlines) so every branch of the compiled 64-byte block scan is crossed."""
from __future__ import annotations

import msgpack
from hypothesis import given, strategies as st

from fastingest import constants as framing

KINDS = [framing.KIND_JSON, framing.KIND_NDJSON, framing.KIND_MSGPACK]


def run(module, kind, body, cuts, max_event, max_depth, collect):
    sc = module.Scanner(kind, max_event, max_depth, collect)
    spans, errors = [], []
    points = sorted(set(c for c in cuts if 0 < c < len(body)))
    for a, b in zip([0] + points, points + [len(body)]):
        f = sc.feed(body[a:b])
        spans += list(zip(f.offsets(), f.raw(), f.line_numbers() or [None] * len(f)))
        errors += f.line_errors
        if f.error is not None:
            e = f.error
            return spans, errors, (type(e).__name__, e.status, e.detail, e.offset, e.line)
    f = sc.finish()
    errors += f.line_errors
    e = f.error
    return spans, errors, e and (type(e).__name__, e.status, e.detail, e.offset, e.line)


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
       kind=st.sampled_from(KINDS[:2]), max_event=st.sampled_from([40, 100, 1 << 20]),
       max_depth=st.sampled_from([1, 3, 64]), collect=st.booleans())
def test_twins_agree_on_dense_bodies(both_impls, body, cuts, kind, max_event, max_depth, collect):
    cy, py = both_impls
    prefix = b"[" if kind == framing.KIND_JSON and body[:1] != b"{" else b""
    body = prefix + body
    args = (kind, body, cuts, max_event, max_depth, collect and kind == framing.KIND_NDJSON)
    assert run(cy.framing, *args) == run(py.framing, *args)


@given(frags=st.lists(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(b"".join), max_size=12),
       cuts=st.lists(st.integers(0, 5000), max_size=6), ndjson=st.booleans())
def test_twins_agree_on_escape_heavy_events(both_impls, frags, cuts, ndjson):
    cy, py = both_impls
    events = valid_like(frags)
    if ndjson:
        body, kind = b"\n".join(events) + b"\n", framing.KIND_NDJSON
    else:
        body, kind = b"[" + b",".join(events) + b"]", framing.KIND_JSON
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
    args = (framing.KIND_MSGPACK, bytes(body), cuts, max_event, 4, False)
    assert run(cy.framing, *args) == run(py.framing, *args)
