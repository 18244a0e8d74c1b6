"""split(): the raw pass-through gives decode()'s answers without building objects."""
from __future__ import annotations

import random

import msgpack
import orjson
import pytest
from hypothesis import given, strategies as st

from fastingest import IngestError, Limits, StreamDecoder, decode, split

from helpers import (RECEIVED, event_lists, json_array_body, json_object_body, msgpack_body, mutate,
                     ndjson_body, using)

JSON, NDJSON, MSGPACK = "application/json", "application/x-ndjson", "application/msgpack"


def both(body, ctype, **kw):
    out = []
    for fn in (decode, split):
        try:
            out.append(fn(body, ctype, received_ns=RECEIVED, **kw))
        except IngestError as e:
            out.append((type(e), e.status, e.message, e.detail, e.offset, e.line))
    return out


def check_same(body, ctype, **kw):
    dec, raw = both(body, ctype, **kw)
    if isinstance(dec, tuple):
        assert raw == dec
        return
    assert not isinstance(raw, tuple), raw
    loads = (lambda b: msgpack.unpackb(b, timestamp=0)) if ctype == MSGPACK else orjson.loads
    assert [loads(r) for r in raw.raw] == dec.events
    assert list(raw.times_ns) == list(dec.times_ns)
    assert list(raw.offsets) == list(dec.offsets)
    assert list(raw.lines or []) == list(dec.lines or [])
    assert raw.errors == dec.errors
    for r, off in zip(raw.raw, raw.offsets):
        if not kw.get("content_encoding"):
            assert body[off:off + len(r)] == r


DTS = [b'"2022-12-31T13:45:59.123456789Z"', b'"2022-12-31 13:45:59+02:00"', b"1672490759",
       b"1672490759123", b"-1672490759123456", b"1672490759.5", b"1.6724907595e9", b"1e400x",
       b"18446744073709551616", b"9223372036854775807", b"-9223372036854775808",
       b'"\\u0032022-12-31T13:45:59Z"', b'"not a time"', b"true", b"null", b"[1]",
       b'{"dt":1}', b'"1672490759"', b"0", b"-0", b"1E3", b'""']


@pytest.mark.parametrize("dt", DTS)
def test_json_dt_values(impl, dt):
    body = b'[{"a":{"dt":5},"dt":' + dt + b',"z":[1,"]"]}]'
    check_same(body, JSON)


@pytest.mark.parametrize("key", [b'"dt"', b'"\\u0064t"', b'"d\\u0074"', b'"dt "', b'"DT"', b'"d"'])
def test_json_dt_key_spellings(impl, key):
    check_same(b'{' + key + b':1672490759, "x": "dt"}', JSON)


def test_json_last_dt_wins(impl):
    check_same(b'{"dt":1672490759,"b":1,"dt":"2022-12-31T13:45:59Z"}\n{"dt":"x","dt":5}\n', NDJSON)


MP_DTS = [msgpack.Timestamp(1672490759, 5), msgpack.Timestamp(0), msgpack.Timestamp(2**33, 999999999),
          msgpack.Timestamp(-2**40, 1), 1672490759, -1, 2**63 - 1, 2**64 - 1, -2**63, 1.5,
          1672490759.123456, "2022-12-31T13:45:59Z", b"2022-12-31T13:45:59Z", None, True, [1],
          {"dt": 1}, msgpack.ExtType(5, b"x"), 255, 65535, 2**32 - 1, -129, -32769]


@pytest.mark.parametrize("dt", MP_DTS, ids=repr)
def test_msgpack_dt_values(impl, dt):
    check_same(msgpack.packb([{"a": 1, "dt": dt}], datetime=False), MSGPACK)
    check_same(msgpack.packb({"dt": dt}, datetime=False, use_single_float=True), MSGPACK)


def test_msgpack_long_str_keys(impl):
    # "dt" written as str8/str16/str32 by other packers is still the key "dt".
    for head in (b"\xd9\x02", b"\xda\x00\x02", b"\xdb\x00\x00\x00\x02", b"\xa2"):
        body = b"\x82\xa1a\x01" + head + b"dt\xce\x63\xb0\x2f\x07"
        check_same(body, MSGPACK)
    check_same(b"\x81\xc4\x02dt\x01", MSGPACK)    # a bin key b"dt" is not "dt"


@given(evs=event_lists, seed=st.integers(0, 2**32))
def test_split_equals_decode(impl, evs, seed):
    rnd = random.Random(seed)
    dts = [b'"2022-12-31T13:45:59.123Z"', 1672490759123, 1.5e9, "x", None]
    evs = [dict(e, dt=rnd.choice(dts)) if rnd.random() < 0.5 else e for e in evs]
    evs = [{k: (v.decode() if isinstance(v, bytes) else v) for k, v in e.items()} for e in evs]
    bodies = [(JSON, json_array_body(evs, rnd)), (NDJSON, ndjson_body(evs, rnd)), (MSGPACK, msgpack_body(evs))]
    if evs:
        bodies += [(JSON, json_object_body(evs[0], rnd)), (MSGPACK, msgpack_body(evs, single=True))]
    for ctype, body in bodies:
        check_same(body, ctype)
        bad = mutate(body, rnd)
        limits = Limits(max_event=rnd.choice([16, 1 << 20]), max_depth=rnd.choice([2, 128]))
        check_same(bad, ctype, limits=limits)
        if ctype == NDJSON:
            check_same(bad, ctype, errors="collect")


def test_split_gzip_and_stream(impl):
    import gzip
    body = b"".join(b'{"i":%d,"dt":%d}\n' % (i, 1672490759000 + i) for i in range(1000))
    check_same(gzip.compress(body), NDJSON, content_encoding="gzip")
    dec = StreamDecoder(NDJSON, raw=True)
    raws = []
    for i in range(0, len(body), 333):
        raws += dec.feed(body[i:i + 333]).raw
    raws += dec.close().raw
    assert raws == body.splitlines()


@given(body=st.binary(max_size=80), ctype=st.sampled_from([JSON, NDJSON, MSGPACK]))
def test_kernels_agree_on_split(both_impls, body, ctype):
    results = []
    for kernels in both_impls:
        with using(kernels):
            try:
                r = split(body, ctype, received_ns=RECEIVED)
                results.append((r.raw, list(r.times_ns), list(r.offsets)))
            except IngestError as e:
                results.append((e.status, e.detail, e.offset, e.line))
    assert results[0] == results[1]
