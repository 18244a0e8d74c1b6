"""The MessagePack-to-JSON transcoder (fastingest/transcode.py, _transcode.pyx): for every
event the codec accepts, both twins write exactly what ``jsonout.dumps`` writes for the
decoded event — the JSON the stores kept before the raw path — and refuse malformed data
with the same ValueError (never reading past the end)."""
from __future__ import annotations

import struct

import msgpack
import orjson
import pytest
from hypothesis import given, strategies as st

from fastingest import transcode as pure_transcode
from fastingest.builders import unpack_msgpack
from fastingest.jsonout import dumps

from helpers import kernel_sets


def reference(data: bytes) -> bytes:
    """What the object path stores for a MessagePack event: decoded, then jsonout.dumps."""
    return dumps(unpack_msgpack(data))


def check(data: bytes) -> bytes:
    """Every kernel set's transcoding of ``data``: equal to the reference, and to each other."""
    expected = reference(data)
    for kernels in kernel_sets():
        assert kernels.transcode.msgpack_to_json(data) == expected, kernels.name
        assert kernels.transcode.events_to_json([data, data]) == [expected, expected]
    return expected


def pack(value, single_floats: bool = False) -> bytes:
    return msgpack.packb(value, use_bin_type=True, datetime=False, use_single_float=single_floats)


# -- strategies: every MessagePack type the codec accepts -----------------------------------------

timestamps = st.builds(
    msgpack.Timestamp,
    st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 2**34 - 1),
              st.integers(-2**63, 2**63 - 1),
              st.integers(-62135596800 - 5, -62135596800 + 5),   # around 0001-01-01
              st.integers(253402300799 - 5, 253402300799 + 5)),  # around 9999-12-31
    st.integers(0, 999_999_999))
scalars = (st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.binary(max_size=12) | timestamps
           | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=9)))
keys = st.text(max_size=6) | st.binary(max_size=4)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(keys, inner, max_size=4), max_leaves=14)
mp_events = st.dictionaries(keys, values, max_size=8)


@given(mp_events, st.booleans())
def test_transcoding_writes_what_jsonout_writes(event, single_floats):
    try:
        data = pack(event, single_floats)
    except OverflowError:   # a float beyond float32's range: as a double
        data = pack(event)
    check(data)


@given(st.lists(st.tuples(st.text(max_size=3) | st.binary(max_size=3), values), max_size=12))
def test_repeated_and_colliding_keys_keep_the_decoded_events_answer(pairs):
    """Maps written pair by pair, keys repeated at will (msgpack-python packs dicts only):
    the decoded map keeps the last value at the first key's place, and a bin key whose
    base64 is a text key of the map collides only once written."""
    body = bytearray(b"\xdf" + len(pairs).to_bytes(4, "big"))
    for key, value in pairs:
        body += pack(key) + pack(value)
    check(bytes(body))


@given(st.floats(allow_nan=True, allow_infinity=True, width=64))
def test_floats_as_orjson_writes_them(value):
    for kernels in kernel_sets():
        assert kernels.transcode.format_float(value) == orjson.dumps(value)
    check(b"\x81\xa1f\xcb" + struct.pack(">d", value))
    try:
        check(b"\x81\xa1f\xca" + struct.pack(">f", value))
    except OverflowError:   # beyond float32's range
        pass


# -- named regressions: the edges of each rule -------------------------------------------------------

@pytest.mark.parametrize("event", [
    {},
    {"": "", "e": [], "m": {}, "b": b""},
    {"ints": [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1, -1, -32, -33,
              -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63]},
    {"floats": [0.0, -0.0, 1.0, 0.1, 1e-5, -1.2345e-5, 1e-6, 1e-7, 1e15, 1e16, 1e21, 5e-324,
                1.7976931348623157e308, float("nan"), float("inf"), float("-inf")]},
    {"controls": "".join(chr(c) for c in range(0x20)) + '"\\/\x7f\u2028\u00e9\U0001f600'},
    {"".join(chr(c) for c in range(0x20)) + '"\\': 1},
    {"bin": bytes(range(256)), b"\x00\xff": b"\xfb\xff", "b1": b"a", "b2": b"ab", "b3": b"abc"},
    {"ext": msgpack.ExtType(0, b""), "ext127": msgpack.ExtType(127, b"\x00" * 16),
     "ext8": msgpack.ExtType(5, b"x" * 300)},
    {"ts32": msgpack.Timestamp(0, 0), "ts32max": msgpack.Timestamp(2**32 - 1, 0),
     "ts64": msgpack.Timestamp(2**34 - 1, 999_999_999), "ts96": msgpack.Timestamp(-1, 1),
     "first": msgpack.Timestamp(-62135596800, 0), "before": msgpack.Timestamp(-62135596801, 999),
     "last": msgpack.Timestamp(253402300799, 999_999_999), "after": msgpack.Timestamp(253402300800, 0),
     "far": msgpack.Timestamp(-2**63, 0), "leap": msgpack.Timestamp(951782400, 0)},
    {"k%d" % i: i for i in range(40)},   # more keys than the pairwise check covers
])
def test_edges(event):
    check(pack(event))


def test_timestamps_as_text_between_years_1_and_9999():
    assert check(pack({"t": msgpack.Timestamp(1672490759, 5)})) == \
        b'{"t":"2022-12-31T12:45:59.000000005Z"}'
    assert check(pack({"t": msgpack.Timestamp(253402300800, 0)})) == \
        b'{"t":{"seconds":253402300800,"nanoseconds":0}}'


def test_repeated_key_in_a_large_map_is_found_by_sorting():
    """40 keys, the 31st repeating the 7th: the decoded map keeps the later value at the
    earlier place (checked by sorting the keys, beyond the pairwise check's 8)."""
    body = bytearray(b"\xde\x00\x28")
    for i in range(40):
        body += pack("k%d" % (6 if i == 30 else i)) + pack(i)
    assert b'"k6":30' in check(bytes(body))


def test_a_bin_key_colliding_with_a_text_key_after_base64():
    body = b"\x83" + pack("YQ==") + b"\x01" + pack(b"a") + b"\x02" + pack("z") + b"\x03"
    assert check(body) == b'{"YQ==":2,"z":3}'


def test_nesting_deeper_than_orjson_writes():
    """orjson stops at 254 levels; jsonout then writes iteratively, the transcoder always."""
    deep = b"\x81\xa1a" + b"\x91" * 1000 + b"\xc0"
    assert check(deep).endswith(b"[null" + b"]" * 1000 + b"}")
    deep_maps = b"\x81\xa1a" * 600 + b"\xc0"
    check(deep_maps)


def test_float_writer_falls_back_to_orjson(monkeypatch):
    """Where orjson writes floats otherwise than the writer expects (checked at import),
    every float is written by orjson itself."""
    for kernels in kernel_sets():
        assert kernels.transcode.NATIVE_FLOATS is True   # this orjson: the writer's own
    monkeypatch.setattr(pure_transcode, "NATIVE_FLOATS", False)
    data = pack({"f": [1e-5, 0.1, float("nan"), 1e22]})
    assert pure_transcode.msgpack_to_json(data) == reference(data)


@pytest.mark.parametrize("data", [
    b"", b"\x91\x01", b"\x01", b"\x81", b"\x81\xa1a", b"\x81\x01\x02", b"\x81\xa1a\xc1",
    b"\x81\xa1a\x01\x00", b"\x81\xa1a\xd9", b"\x81\xa1a\xdb\xff\xff\xff\xff",
    b"\x81\xa1a\xdd\xff\xff\xff\xff", b"\x81\xa1a\xdf\x00\x00\x00\x02\xa1b",
    b"\x81\xa1a\xd6\xff\x00", b"\x81\xa1a\xc7\x03\xff\x00\x00\x00", b"\x81\xa1a\xcb\x00",
    b"\x81\xc4\x01", b"\x81\x91\x01\x02",
])
def test_malformed_data_is_a_value_error_in_both_twins(data):
    """The transcoder is for validated events; anything else is refused alike, never
    read past its end."""
    messages = set()
    for kernels in kernel_sets():
        with pytest.raises(ValueError) as caught:
            kernels.transcode.msgpack_to_json(data)
        messages.add(str(caught.value))
    assert len(messages) == 1


def test_any_buffer_gives_the_bytes_answer():
    data = pack({"a": [1, "x", b"y"]})
    for kernels in kernel_sets():
        for buffer in (bytearray(data), memoryview(data), memoryview(b"xx" + data)[2:]):
            assert kernels.transcode.msgpack_to_json(buffer) == reference(data)
