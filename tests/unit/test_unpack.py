"""The MessagePack object builder (``fastingest._unpack``, twin ``fastingest.unpack``)
against ``msgpack.unpackb``: the same objects for every map msgpack accepts, refused
exactly where msgpack refuses (or a limit is crossed), each event's time as
``parse_dt(event["dt"])``; and whole bodies against the general path (scanner + msgpack).
"""
from __future__ import annotations

import random
import struct

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from fastingest import Limits, decode, parse_dt
from helpers import mutate

MAX_DEPTH = Limits().max_depth


def examples(n: int) -> int:
    """n examples under the dev profile, scaled with the active profile (ci, long)."""
    return max(10, int(n * settings.default.max_examples / 200))


def reference(data: bytes, max_depth: int = 1000):
    """What the builder must answer: (event, time) or None where it must refuse."""
    try:
        event = msgpack.unpackb(data, raw=False, strict_map_key=True, timestamp=0)
    except Exception:
        return None
    if type(event) is not dict or _depth(event) > max_depth:
        return None
    return event, (parse_dt(event["dt"]) if "dt" in event else None)


def _depth(value) -> int:
    if type(value) is dict:
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if type(value) is list:
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def answer(impl, data: bytes, max_depth: int = 1000):
    try:
        return impl.unpack.unpack_map(data, max_depth)
    except ValueError:
        return None


def same(a, b) -> bool:
    """Equal, and of the same types all the way down (1 == 1.0 == True would hide a bug)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a) and \
            all(type(k) is type(j) for k, j in zip(a, b))
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is float and a != a:
        return b != b
    return a == b


def check(impl, data: bytes, max_depth: int = 1000) -> None:
    want, got = reference(data, max_depth), answer(impl, data, max_depth)
    assert (want is None) == (got is None), (data, want, got)
    if want is not None:
        assert same(got[0], want[0]) and got[1] == want[1], (data, want, got)


# -- values msgpack can pack: every type, every width -------------------------------------

keys = st.text(max_size=40) | st.binary(max_size=6) | st.sampled_from(["dt", "level", "message"])
scalars = (
    st.none() | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True) | st.text(max_size=40) | st.binary(max_size=40)
    | st.builds(msgpack.Timestamp, st.integers(min_value=-(2**63), max_value=2**63 - 1),
                st.integers(min_value=0, max_value=999_999_999))
    | st.builds(msgpack.ExtType, st.integers(min_value=0, max_value=127), st.binary(max_size=20))
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(keys, inner, max_size=4), max_leaves=20)
dt_values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1), st.floats(),
    st.sampled_from(["2026-03-14T09:26:53.589793+05:30", "2026-03-14T09:26:53Z", "1700000000",
                     " 2026-03-14 ", "nope", "2026-02-30"]),
    st.binary(max_size=30), st.none(), st.booleans(), values)
maps = st.dictionaries(keys, values, max_size=8)


@given(maps, st.none() | dt_values, st.booleans())
def test_builds_what_msgpack_builds(impl, event, dt, single_float):
    if dt is not None:
        event["dt"] = dt
    try:
        data = msgpack.packb(event, use_bin_type=True, use_single_float=single_float)
    except OverflowError:   # a double beyond float32's range
        data = msgpack.packb(event, use_bin_type=True)
    check(impl, data)


@settings(max_examples=examples(100))
@given(maps, st.randoms(use_true_random=False))
def test_refuses_what_msgpack_refuses(impl, event, rnd):
    data = msgpack.packb(event, use_bin_type=True)
    for _ in range(5):
        check(impl, mutate(data, rnd))


@settings(max_examples=examples(60))
@given(st.lists(maps, max_size=6), st.randoms(use_true_random=False), st.booleans())
def test_whole_body_as_the_general_path(impl, events, rnd, corrupt):
    body = msgpack.packb(events if len(events) != 1 or rnd.random() < 0.5 else events[0],
                         use_bin_type=True)
    if corrupt:
        body = mutate(body, rnd)
    limits = Limits(max_event=rnd.choice([16, 64, 1 << 20]), max_depth=rnd.choice([1, 2, 3, 128]))
    try:
        batch = decode(body, "application/msgpack", limits=limits, received_ns=7)
    except Exception:
        want = None
    else:
        want = (batch.events, list(batch.times_ns), list(batch.offsets))
    got = impl.unpack.unpack_body(body, limits.max_event, limits.max_depth, 7)
    if got is not None:
        got = (got[0], list(got[1]), list(got[2]))
    assert (want is None) == (got is None), (body, want, got)
    if want is not None:
        assert same(got[0], want[0]) and got[1:] == want[1:]


# -- named regressions and edges ----------------------------------------------------------

def ext(code: int, data: bytes) -> bytes:
    return b"\xc7" + bytes([len(data)]) + struct.pack("b", code) + data


def fixmap(*entries: bytes) -> bytes:
    return bytes([0x80 | (len(entries) // 2)]) + b"".join(entries)


DT = b"\xa2dt"


@pytest.mark.parametrize("data", [
    fixmap(DT, b"\xd6\xff" + struct.pack(">I", 1_700_000_000)),                     # ts 32
    fixmap(DT, b"\xd7\xff" + struct.pack(">Q", (999_999_999 << 34) | 1_700_000_000)),  # ts 64
    fixmap(DT, ext(-1, struct.pack(">Iq", 999_999_999, -5))),                      # ts 96
    fixmap(DT, b"\xd7\xff" + struct.pack(">Q", (1_000_000_000 << 34))),            # ns too big
    fixmap(DT, ext(-1, struct.pack(">Iq", 1_000_000_000, 0))),                     # ns too big
    fixmap(DT, ext(-1, b"\x00" * 5)),                                               # bad length
    fixmap(DT, ext(-2, b"ab")), fixmap(DT, ext(-128, b"")), fixmap(DT, ext(127, b"")),
    fixmap(b"\xc4\x02dt", b"\x01"),                       # a bytes key b"dt": no event time
    fixmap(b"\xd9\x02dt", b"\x05", DT, b"\x06"),          # str8 "dt", then fixstr: the last wins
    fixmap(DT, b"\x05", b"\xda\x00\x02dt", b"\xcb" + struct.pack(">d", 1.5e9)),
    fixmap(DT, b"\xca" + struct.pack(">f", 1.5e9)),      # float32 dt
    fixmap(DT, b"\xcf" + b"\xff" * 8), fixmap(DT, b"\xd3\x80" + b"\x00" * 7),
    fixmap(DT, b"\xc3"), fixmap(DT, b"\xc0"), fixmap(DT, b"\x90"),
    fixmap(DT, b"\xa4\xff\xfe\xfd\xfc"),                 # invalid UTF-8 value
    fixmap(b"\xa2\xc3\x28", b"\x01"),                     # invalid UTF-8 key
    fixmap(b"\x01", b"\x01"), fixmap(b"\xc0", b"\x01"), fixmap(b"\x80", b"\x01"),   # non-str keys
    fixmap(b"\xa1a", b"\xc1"),                            # reserved byte
    fixmap(b"\xa1a", b"\x92\x01"),                        # array cut short
    fixmap(b"\xa1a", b"\xdd\xff\xff\xff\xff"),            # huge declared count
    fixmap(b"\xa1a", b"\xdb\xff\xff\xff\xff"),            # huge declared length
    fixmap(b"\xa1a", b"\x01") + b"\x00",                  # data after the map
    b"\x80", b"\xde\x00\x00", b"\xdf\x00\x00\x00\x00", b"", b"\x90", b"\x01",
    fixmap(b"\xa1" + bytes([0xE9]), b"\x01"),             # a lone latin-1 byte
    fixmap(b"\xd9\x20" + b"k" * 32, b"\x01"), fixmap(b"\xbf" + b"k" * 31, b"\x01"),
    fixmap(b"\xd9\x21" + b"k" * 33, b"\x01"),             # a key too long for the cache
    fixmap(b"\xa2" + "é".encode(), b"\x01"),           # non-ASCII key: never cached
])
def test_edges(impl, data):
    check(impl, data)


def test_key_cache_collisions_keep_keys_apart(impl):
    """Many distinct short keys through the 512-entry cache: each map gets its own."""
    rnd = random.Random(14)
    for _ in range(300):
        ks = ["".join(rnd.choice("abcdé") for _ in range(rnd.randrange(0, 6))) for _ in range(5)]
        event = {k: i for i, k in enumerate(ks)}
        check(impl, msgpack.packb(event))


@pytest.mark.parametrize("max_depth", [1, 2, 3])
def test_nesting_limit(impl, max_depth):
    for levels in range(1, 5):
        value = 1
        for _ in range(levels - 1):
            value = {"a": value} if levels % 2 else [value]
        data = msgpack.packb({"x": value}) if levels > 1 else msgpack.packb({})
        check(impl, data, max_depth)


def test_event_limit_is_the_general_paths(impl):
    """An event of exactly max_event bytes is built; one byte more is refused."""
    event = msgpack.packb({"message": "x" * 50})
    for max_event in (len(event), len(event) - 1):
        body = msgpack.packb([{"a": 1}, msgpack.unpackb(event)])
        got = impl.unpack.unpack_body(body, max_event, MAX_DEPTH, 0)
        assert (got is not None) == (max_event == len(event))


def test_timestamp_is_msgpacks(impl):
    data = fixmap(DT, b"\xd7\xff" + struct.pack(">Q", (5 << 34) | 1_700_000_000))
    event, t = impl.unpack.unpack_map(data)
    ts = event["dt"]
    assert type(ts) is msgpack.Timestamp and ts == msgpack.Timestamp(1_700_000_000, 5)
    assert (ts.seconds, ts.nanoseconds) == (1_700_000_000, 5) and t == 1_700_000_000_000_000_005
    assert hash(ts) == hash(msgpack.Timestamp(1_700_000_000, 5))


def test_events_share_their_key_objects(impl):
    """Every event of a body holds the same str object per key, as msgpack-python's
    interned keys do: found when "message" and "path" (one slot of the direct-mapped
    cache) evicted each other on every event, 2 new str per event, 3.7 MiB more than
    msgpack.unpackb for a 10 MiB body; and then, in the whole suite, when a key left in a
    slot by earlier bodies kept it for good. So the cache is filled with other keys first."""
    rnd = random.Random(14)
    for _ in range(3000):
        key = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rnd.randrange(1, 12)))
        impl.unpack.unpack_map(msgpack.packb({key: 1}))
    keys = ["dt", "level", "message", "service", "host", "context", "request", "id",
            "method", "path", "status", "duration_ms", "user", "locale", "tags", "ok"]
    body = msgpack.packb([{k: i for i, k in enumerate(keys)} for _ in range(3)])
    events = impl.unpack.unpack_body(body, 1 << 20, MAX_DEPTH, 0)[0]
    for key in keys:
        found = [next(k for k in event if k == key) for event in events]
        assert found[0] is found[1] is found[2], key


def test_short_string_values_are_shared_objects(both_impls):
    """Short ASCII values (up to 16 bytes) come from the compiled builder's value cache:
    one str object for every event's "info"; non-ASCII and longer values are built per
    event. Both twins build equal events."""
    cython, python = both_impls
    evs = [{"level": "info", "city": "Zürich", "id": "x" * 17, "tags": ["eu", "eu"]}] * 3
    body = msgpack.packb(evs)
    built = cython.unpack.unpack_body(body, 1 << 20, MAX_DEPTH, 0)[0]
    assert built == python.unpack.unpack_body(body, 1 << 20, MAX_DEPTH, 0)[0] == evs
    assert built[0]["level"] is built[1]["level"] is built[2]["level"]
    assert built[0]["tags"][0] is built[0]["tags"][1] is built[2]["tags"][1]
    assert built[0]["city"] is not built[1]["city"]
    assert built[0]["id"] is not built[1]["id"]
