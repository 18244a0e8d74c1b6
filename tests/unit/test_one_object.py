"""decode() answers a body that is one small JSON object or MessagePack map without a
scanner (``oneobject`` and its compiled twin ``_oneobject``): every condition of that
shortcut is a sufficient one, and any body near its edges must get exactly the general
path's answer — the StreamDecoder's, which never takes it."""
from __future__ import annotations

import sys

import msgpack
import pytest

from fastingest import Limits, decode

from helpers import FUZZ

sys.path.insert(0, str(FUZZ))
from harnesses import RECEIVED, Options, check_body, encode_input  # noqa: E402

JSON, NDJSON, MSGPACK = "application/json", "application/x-ndjson", "application/msgpack"


def nested(depth: int) -> bytes:
    """An object ``depth`` levels deep (the event itself is level 1)."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def answer(body: bytes, ctype: str, limits: Limits = Limits()) -> tuple:
    """check_body's answer (both kernel sets, whole and streamed in odd chunks, agree)."""
    opts = Options(encode_input(body, 0, (1, 7, len(body) // 2)), ctype)
    opts.limits = limits
    return check_body(body, ctype, None, opts)


EDGES = [
    # (name, content type, body, limits, expected status or None for accepted)
    ("plain object", JSON, b'{"dt":"2022-12-31T13:45:59Z","m":1}', Limits(), None),
    ("leading and trailing whitespace", JSON, b' \r\n\t{"a":1} \n\n', Limits(), None),
    ("ndjson line with CRLF", NDJSON, b'{"a":1}\r\n', Limits(), None),
    ("ndjson line without newline", NDJSON, b'{"a":1}', Limits(), None),
    ("ndjson newline inside the object is two lines", NDJSON, b'{"a":\n1}\n', Limits(), 406),
    ("ndjson leading blank line", NDJSON, b'\n{"a":1}\n', Limits(), None),
    ("ndjson two lines", NDJSON, b'{"a":1}\n{"b":2}\n', Limits(), None),
    ("depth exactly max_depth", JSON, nested(5), Limits(max_depth=5), None),
    ("depth over max_depth", JSON, nested(6), Limits(max_depth=5), 406),
    ("brackets in strings overcount, still accepted", JSON,
     b'{"s":"[[[[[[[[[[{{{{{{{{{{"}', Limits(max_depth=2), None),
    ("body exactly max_event", JSON, b'{"a":"' + b"x" * 8 + b'"}', Limits(max_event=16), None),
    ("event over max_event", JSON, b'{"a":"' + b"x" * 9 + b'"}', Limits(max_event=16), 413),
    ("whitespace makes the body, not the event, too big", JSON,
     b'{"a":"' + b"x" * 8 + b'"}' + b" " * 20, Limits(max_event=16), None),
    ("body over max_body", JSON, b'{"a":1}' + b" " * 20, Limits(max_body=16), 413),
    ("trailing garbage", JSON, b'{"a":1} x', Limits(), 406),
    ("two objects", JSON, b'{"a":1}{"b":2}', Limits(), 406),
    ("array of one", JSON, b'[{"a":1}]', Limits(), None),
    ("not an object", JSON, b'"{"', Limits(), 406),
    ("empty object", JSON, b"{}", Limits(), None),
    ("unterminated", JSON, b'{"a":1', Limits(), 406),
    ("lone surrogate", JSON, b'{"a":"\\ud800"}', Limits(), 406),
    ("a BOM is skipped (README)", JSON, b"\xef\xbb\xbf{\"a\":1}", Limits(), None),
    ("msgpack map", MSGPACK, msgpack.packb({"dt": msgpack.Timestamp(1, 5), "m": "x"},
                                           datetime=False), Limits(), None),
    ("msgpack map16", MSGPACK, b"\xde\x00\x01\xa1a\x01", Limits(), None),
    ("msgpack trailing byte", MSGPACK, msgpack.packb({"a": 1}) + b"\x00", Limits(), 406),
    ("msgpack truncated", MSGPACK, msgpack.packb({"a": "xyz"})[:-1], Limits(), 406),
    ("msgpack depth over max_depth", MSGPACK, msgpack.packb({"a": {"b": {"c": 1}}}),
     Limits(max_depth=2), 406),
    ("msgpack depth exactly max_depth", MSGPACK, msgpack.packb({"a": [{"b": [1]}]}),
     Limits(max_depth=4), None),
    ("msgpack depth over max_depth in a list", MSGPACK, msgpack.packb({"a": [{"b": [[1]]}]}),
     Limits(max_depth=4), 406),
    ("msgpack depth over max_depth after a shallow member", MSGPACK,
     msgpack.packb({"x": 1, "y": {}, "a": {"b": {"c": {}}}}), Limits(max_depth=3), 406),
    ("msgpack bytes key", MSGPACK, b"\x81\xc4\x01a\x01", Limits(), None),
    ("msgpack invalid utf-8 key", MSGPACK, b"\x81\xa2\xff\xfe\x01", Limits(), 406),
    ("msgpack non-string key", MSGPACK, b"\x81\x01\x01", Limits(), 406),
    ("msgpack over max_event", MSGPACK, msgpack.packb({"a": "x" * 20}), Limits(max_event=16), 413),
    ("msgpack not a map", MSGPACK, b"\xa1a", Limits(), 406),
]


@pytest.mark.parametrize("name,ctype,body,limits,status", EDGES, ids=[e[0] for e in EDGES])
def test_one_object_edges_get_the_general_answer(name, ctype, body, limits, status):
    got = answer(body, ctype, limits)
    if status is None:
        assert got[0] == "ok", got
    else:
        assert got[0] == "error" and got[2] == status, got


def test_one_object_offsets_lines_and_times(impl):
    batch = decode(b'  {"dt": 1672490759123, "a": 1}', JSON, received_ns=RECEIVED)
    assert (batch.events, list(batch.times_ns), list(batch.offsets), batch.lines) == (
        [{"dt": 1672490759123, "a": 1}], [1672490759123000000], [2], None)
    batch = decode(b'{"a": 1}\r\n', NDJSON, received_ns=RECEIVED)
    assert (list(batch.times_ns), list(batch.offsets), list(batch.lines)) == ([RECEIVED], [0], [1])
    batch = decode(msgpack.packb({"dt": msgpack.Timestamp(1, 5)}, datetime=False), MSGPACK)
    assert (list(batch.times_ns), list(batch.offsets), batch.lines) == ([1_000_000_005], [0], None)


def test_one_object_limits_object_changes_between_calls(impl):
    """The compiled path remembers the last Limits; another object must be read anew."""
    body = nested(4)
    assert decode(body, JSON, limits=Limits(max_depth=4)).events
    with pytest.raises(Exception) as info:
        decode(body, JSON, limits=Limits(max_depth=3))
    assert getattr(info.value, "status", None) == 406
    assert decode(body, JSON, limits=Limits(max_depth=4)).events


@pytest.mark.parametrize("body,kind,limits,taken", [
    (b'{"a":1}', 1, Limits(), ({"a": 1}, 0)),
    (b' \t\r\n{"a":1} ', 1, Limits(), ({"a": 1}, 4)),
    (b'{"a":1}\r\n', 2, Limits(), ({"a": 1}, 0)),
    (b' {"a":1}\n', 2, Limits(), None),                 # NDJSON: the line must start with it
    (b'{"a":1}\n{}', 2, Limits(), None),                # a second line
    (b'[{"a":1}]', 1, Limits(), None),                  # an array
    (b'\xef\xbb\xbf{}', 1, Limits(), None),             # a BOM
    (b'{"a":[[1]]}', 1, Limits(max_depth=3), ({"a": [[1]]}, 0)),
    (b'{"a":[[1]]}', 1, Limits(max_depth=2), None),     # the bound over {/[ bytes
    (b'{"a":"[[["}', 1, Limits(max_depth=2), None),     # ... counts them in strings too
    (b'{"a":1}', 1, Limits(max_event=6), None),         # over max_event
    (b'{"a":1} x', 1, Limits(), None),                  # orjson refuses: the general path decides
    (b'"x"', 1, Limits(), None),
    (b"", 1, Limits(), None),
    (msgpack.packb({"a": [1]}), 3, Limits(), ({"a": [1]}, 0)),
    (msgpack.packb({"a": [1]}), 3, Limits(max_depth=1), None),   # nesting of the map built
    (msgpack.packb([{"a": 1}]), 3, Limits(), None),
    (msgpack.packb({"a": 1}) + b"\x00", 3, Limits(), None),
    (msgpack.packb({1: 1}), 3, Limits(), None),          # msgpack refuses an int key
])
def test_one_object_conditions(impl, body, kind, limits, taken):
    assert impl.one_object.one_object(body, kind, limits.max_event, limits.max_depth) == taken


def test_one_object_size_cap(impl):
    from fastingest.constants import ONE_OBJECT_MAX
    body = b'{"a":"' + b"x" * (ONE_OBJECT_MAX - 8) + b'"}'
    assert len(body) == ONE_OBJECT_MAX and impl.one_object.one_object(body, 1, 1 << 20, 8)
    assert impl.one_object.one_object(body + b" ", 1, 1 << 20, 8) is None


def test_nesting_within(impl):
    nested = {"a": [{"b": [1]}], "c": {}}
    assert impl.one_object.nesting_within(nested, 4)
    assert not impl.one_object.nesting_within(nested, 3)
    deep = {}
    for _ in range(999):
        deep = {"a": deep}
    assert impl.one_object.nesting_within(deep, 1000)      # no recursion limit in the way
    assert not impl.one_object.nesting_within(deep, 999)
