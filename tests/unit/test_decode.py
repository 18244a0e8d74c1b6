"""decode(): the Better Stack body formats, limits at their edges, bad bodies (both kernels)."""
from __future__ import annotations

import random

import msgpack
import orjson
import pytest
from hypothesis import given, strategies as st

import fastingest
from fastingest import IngestError, Limits, decode
from fastingest.errors import PARSE_MESSAGE, SIZE_MESSAGE

from helpers import (JSON, MSGPACK, NDJSON, RECEIVED, event_lists, events, json_array_body,
                     json_object_body, msgpack_body, mutate, ndjson_body, using, valid_bodies)



def ok(body, ctype=JSON, **kw):
    return decode(body, ctype, received_ns=RECEIVED, **kw)


def fails(body, ctype=JSON, **kw) -> IngestError:
    with pytest.raises(IngestError) as info:
        decode(body, ctype, received_ns=RECEIVED, **kw)
    assert type(info.value).__mro__[-3] is IngestError or isinstance(info.value, IngestError)
    return info.value


# -- the four body examples of the Better Stack docs -------------------------------------

DOC_EVENT = {"message": "My first event", "nested": {"values": 123}}


def test_doc_single_json_object(impl):
    batch = ok(b'{"message":"My first event","nested":{"values":123}}')
    assert batch.events == [DOC_EVENT]
    assert list(batch.times_ns) == [RECEIVED]
    assert list(batch.offsets) == [0]


def test_doc_same_as_ndjson(impl):
    batch = ok(b'{"message":"My first event","nested":{"values":123}}', NDJSON)
    assert batch.events == [DOC_EVENT]
    assert list(batch.lines) == [1]


def test_doc_msgpack_map(impl):
    batch = ok(msgpack.packb(DOC_EVENT), MSGPACK)
    assert batch.events == [DOC_EVENT]


def test_doc_msgpack_array_of_two_maps(impl):
    body = msgpack.packb([{"message": "A"}, {"message": "B"}])
    batch = ok(body, MSGPACK)
    assert batch.events == [{"message": "A"}, {"message": "B"}]
    assert list(batch.offsets) == [1, 1 + len(msgpack.packb({"message": "A"}))]


def test_x_msgpack_and_parameters_and_case(impl):
    body = msgpack.packb([{"a": 1}])
    assert ok(body, "application/x-msgpack").events == [{"a": 1}]
    assert ok(b'[{"a":1}]', "Application/JSON; charset=utf-8").events == [{"a": 1}]
    assert ok(b'{"a":1}\n', " application/x-ndjson ; charset=UTF-8").events == [{"a": 1}]


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "", None, "application/jsonx",
                                   "application/ndjson"])
def test_unsupported_content_type_is_415(impl, ctype):
    err = fails(b"{}", ctype)
    assert err.status == 415
    assert "application/json" in err.message and "\n" not in err.message


# -- NDJSON framing -------------------------------------------------------------------------

def test_ndjson_crlf_blank_lines_offsets_and_lines(impl):
    body = b'\r\n{"a":1}\r\n   \n\t\r\n{"b":2}  \r\n\n{"c":"x\\ny"}'
    batch = ok(body, NDJSON)
    assert batch.events == [{"a": 1}, {"b": 2}, {"c": "x\ny"}]
    assert list(batch.lines) == [2, 5, 7]
    assert list(batch.offsets) == [body.index(b'{"a"'), body.index(b'{"b"'), body.index(b'{"c"')]


def test_ndjson_event_spanning_lines_is_rejected(impl):
    err = fails(b'{"a":1}\n{"b":\n2}\n', NDJSON)
    assert (err.status, err.message, err.line, err.offset) == (406, PARSE_MESSAGE, 2, 13)


def test_ndjson_two_values_on_a_line(impl):
    err = fails(b'{"a":1} {"b":2}\n', NDJSON)
    assert (err.status, err.line, err.offset) == (406, 1, 8)
    err = fails(b'{"a":1},{"b":2}\n', NDJSON)
    assert (err.status, err.line, err.offset) == (406, 1, 7)


def test_ndjson_error_line_numbers(impl):
    body = b'{"a":1}\n\n{"a":2}\n{"a":tru}\n'
    err = fails(body, NDJSON)
    assert (err.status, err.line, err.offset) == (406, 4, body.index(b"}\n", 20))
    assert "line 4" in str(err) and f"byte {err.offset}" in str(err)


# -- bad bodies ---------------------------------------------------------------------------

@pytest.mark.parametrize("body, offset", [
    (b"", 0), (b"   \n", 4),                         # empty
    (b"1", 0), (b'"x"', 0), (b"null", 0), (b"true", 0),  # top-level scalars
    (b"[1]", 1), (b'[{"a":1}, 2]', 10), (b"[[]]", 1),   # elements that are not objects
    (b'{"a":1}x', 7), (b'[{"a":1}] []', 10),           # trailing garbage
    (b'[{"a":1},]', 9), (b'[{"a":1} {"b":1}]', 9),     # bad separators
    (b'{"a":1', 6), (b'[{"a":1}', 8), (b'[{"a":1},', 9), (b"[", 1),  # truncated
    (b"\xef\xbb", 0), (b"\xef\xbb\xbf", 3), (b"\xef\x00", 0),       # BOMs
    (b'{"a":}', 5), (b'{"a" 1}', 5), (b'{"a":[1}', 7),
])
def test_bad_json_bodies(impl, body, offset):
    err = fails(body)
    assert (err.status, err.message, err.offset) == (406, PARSE_MESSAGE, offset), err


@pytest.mark.parametrize("body, offset", [
    (b"", 0), (b"\x01", 0), (b"\xc1", 0), (b"\x91\x01", 1), (b"\x92\x80", 0),
    (b"\x80\x80", 1), (b"\x91\x80\xc0", 2), (b"\xdd\xff\xff\xff\xff", 0), (b"\xdc\x00", 0),
    (b"\x81\xa1a\xc1", 3), (b"\x81\xa1a", 3), (b"\x81\xa1a\xdb\xff\xff\xff\xff", 3),
])
def test_bad_msgpack_bodies(impl, body, offset):
    err = fails(body, MSGPACK)
    assert err.status in (406, 413), err
    assert err.offset == offset, err


def test_lone_bom_and_empty_bodies(impl):
    assert len(ok(b"", NDJSON)) == 0                 # zero lines: zero events
    assert len(ok(b"\xef\xbb\xbf", NDJSON)) == 0
    assert ok(b'\xef\xbb\xbf{"a":1}').events == [{"a": 1}]
    assert ok(b'\xef\xbb\xbf{"a":1}\n', NDJSON).events == [{"a": 1}]
    assert fails(b"\xef\xbb\xbf").status == 406
    assert ok(b"[]").events == [] and ok(b" [ \n ] ").events == []
    assert ok(msgpack.packb([]), MSGPACK).events == []


def test_duplicate_keys_last_wins(impl):
    assert ok(b'{"a":1,"a":2}').events == [{"a": 2}]


def test_invalid_utf8_and_nan_rejected(impl):
    for body in [b'{"a":"\xff"}', b'{"a":"\xed\xa0\x80"}', b'{"a":NaN}', b'{"a":"\x01"}', b'{"a":01}']:
        assert fails(body).status == 406


# -- limits at the edge -------------------------------------------------------------------

def _event_of_size(n: int) -> bytes:
    base = b'{"m":""}'
    return b'{"m":"' + b"x" * (n - len(base)) + b'"}'


@pytest.mark.parametrize("ctype", [JSON, NDJSON])
def test_event_of_exactly_max_event(impl, ctype):
    limits = Limits(max_event=100)
    ev = _event_of_size(100)
    assert len(ev) == 100
    body = b"[" + ev + b"]" if ctype == JSON else ev + b"\n"
    assert len(ok(body, ctype, limits=limits)) == 1
    big = _event_of_size(101)
    body = b"[" + big + b"]" if ctype == JSON else big + b"\n"
    err = fails(body, ctype, limits=limits)
    start = 1 if ctype == JSON else 0
    assert (err.status, err.message, err.offset) == (413, SIZE_MESSAGE, start + 100)


def test_msgpack_event_of_exactly_max_event(impl):
    ev = {"m": "x" * 90}
    size = len(msgpack.packb(ev))
    limits = Limits(max_event=size)
    assert len(ok(msgpack.packb([ev, ev]), MSGPACK, limits=limits)) == 2
    big = {"m": "x" * 91}
    err = fails(msgpack.packb([ev, big]), MSGPACK, limits=limits)
    assert err.status == 413
    assert err.offset == 1 + size + 3   # the header of the str that does not fit


def test_declared_length_beyond_max_event_fails_at_once(impl):
    body = b"\x91\x81\xa1m\xdb\x7f\xff\xff\xff"   # a 2 GiB string, header only
    err = fails(body, MSGPACK)
    assert (err.status, err.offset) == (413, 4)


def _nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


@pytest.mark.parametrize("ctype", [JSON, NDJSON])
def test_depth_at_the_limit(impl, ctype):
    limits = Limits(max_depth=5)
    assert len(ok(_nested(5), ctype, limits=limits)) == 1
    err = fails(_nested(6), ctype, limits=limits)
    assert (err.status, err.offset) == (406, 5 * 5)
    assert "nesting" in err.detail


def test_msgpack_depth_at_the_limit(impl):
    limits = Limits(max_depth=4)
    deep4 = {"a": [{"b": []}]}
    assert ok(msgpack.packb(deep4), MSGPACK, limits=limits).events == [deep4]
    err = fails(msgpack.packb({"a": [{"b": [[]]}]}), MSGPACK, limits=limits)
    assert err.status == 406 and "nesting" in err.detail


def test_body_over_max_body_is_413(impl):
    limits = Limits(max_body=50)
    assert len(ok(b'{"a":"' + b"x" * 42 + b'"}', limits=limits)) == 1
    err = fails(b'{"a":"' + b"x" * 43 + b'"}', limits=limits)
    assert (err.status, err.offset) == (413, 50)


def test_deep_nesting_never_recursion_error(impl):
    for body in [b"[" * 100_000, b'{"a":' * 100_000, b"\x91" + b"\x81\xa1a" * 100_000 + b"\x80"]:
        err = fails(body, MSGPACK if body[:1] == b"\x91" else JSON)
        assert err.status == 406


# -- round trips and differential tests ---------------------------------------------------

def _check_roundtrip(evs, body, ctype):
    batch = ok(body, ctype)
    assert batch.events == evs
    assert list(batch.times_ns) == [RECEIVED] * len(evs)
    assert len(batch.offsets) == len(evs)


@given(evs=event_lists, seed=st.integers(0, 2**32))
def test_roundtrip_json_array(impl, evs, seed):
    _check_roundtrip(evs, json_array_body(evs, random.Random(seed)), JSON)


@given(ev=events, seed=st.integers(0, 2**32))
def test_roundtrip_json_object(impl, ev, seed):
    _check_roundtrip([ev], json_object_body(ev, random.Random(seed)), JSON)


@given(evs=event_lists, seed=st.integers(0, 2**32))
def test_roundtrip_ndjson(impl, evs, seed):
    _check_roundtrip(evs, ndjson_body(evs, random.Random(seed)), NDJSON)


@given(evs=event_lists)
def test_roundtrip_msgpack(impl, evs):
    _check_roundtrip(evs, msgpack_body(evs), MSGPACK)
    if evs:
        _check_roundtrip(evs[:1], msgpack_body(evs, single=True), MSGPACK)


def outcome(kernels, body, ctype, **kw):
    with using(kernels):
        try:
            b = decode(body, ctype, received_ns=RECEIVED, **kw)
        except IngestError as e:
            return ("error", type(e), e.status, e.message, e.detail, e.offset, e.line)
    return ("ok", b.events, list(b.times_ns), list(b.offsets), b.lines and list(b.lines), b.errors)


@given(evs=event_lists, seed=st.integers(0, 2**32))
def test_kernels_agree_on_mutated_bodies(both_impls, evs, seed):
    rnd = random.Random(seed)
    cy, py = both_impls
    for ctype, body in valid_bodies(evs, rnd):
        for _ in range(3):
            bad = mutate(body, rnd)
            limits = Limits(max_event=rnd.choice([8, 64, 1 << 20]), max_depth=rnd.choice([2, 3, 128]))
            assert outcome(cy, bad, ctype, limits=limits) == outcome(py, bad, ctype, limits=limits), bad


@given(body=st.binary(max_size=64), ctype=st.sampled_from([JSON, NDJSON, MSGPACK]))
def test_kernels_agree_on_random_bytes(both_impls, body, ctype):
    cy, py = both_impls
    assert outcome(cy, body, ctype) == outcome(py, body, ctype)


def test_valid_orjson_output_decodes(impl):
    evs = [{"dt": "2022-12-31T13:45:59Z", "level": "info", "msg": "héllo ✓", "ctx": {"a": [1, 2.5, None]}}] * 50
    assert ok(orjson.dumps(evs)).events == evs
    assert ok(b"\n".join(orjson.dumps(e) for e in evs), NDJSON).events == evs


def test_extension_is_in_use():
    """After a normal install the compiled kernels are the ones running."""
    import os
    if os.environ.get("FASTINGEST_PUREPYTHON"):
        pytest.skip("pure-Python run requested")
    assert fastingest.IMPLEMENTATION == "cython"
    from fastingest import _build, _kernels, _oneobject, _timestamps, _validate, _whole
    from fastingest.framing import _framing
    active = _kernels.active
    assert (active.framing, active.build, active.whole, active.one_object, active.validate,
            active.timestamps) == (_framing, _build, _whole, _oneobject, _validate, _timestamps)
    for module in (_framing, _build, _whole, _oneobject, _validate, _timestamps):
        assert module.__file__.endswith((".so", ".pyd")), module


# -- event time through decode ----------------------------------------------------------

DT_CASES = [
    (b'"2022-12-31T13:45:59.123456Z"', 1672494359123456000),
    (b'"2022-12-31 13:45:59.123456+02:00"', 1672487159123456000),
    (b'"2023-08-09 07:03:30+00:00"', 1691564610000000000),
    (b'"20221231T134559Z"', 1672494359000000000),
    (b"1672490759", 1672490759000000000),
    (b"1672490759123", 1672490759123000000),
    (b"1672490759123456", 1672490759123456000),
    (b"1672490759123456000", 1672490759123456000),
    (b"1672490759.123456", 1672490759123456000),
    (b'"1672490759"', 1672490759000000000),
    (b'"2022-12-31T23:59:60.5Z"', 1672531200500000000),
]


@pytest.mark.parametrize("dt, expected", DT_CASES)
@pytest.mark.parametrize("ctype", [JSON, NDJSON])
def test_dt_forms(impl, dt, expected, ctype):
    body = b'{"msg":"x","dt":' + dt + b"}"
    batch = ok(body, ctype)
    assert list(batch.times_ns) == [expected]
    assert batch.events[0]["dt"] == orjson.loads(dt)        # the event keeps dt unchanged


@pytest.mark.parametrize("dt", [b'"not a time"', b'"2022-02-30T00:00:00Z"', b"true", b"null",
                                b"[1]", b'{"s":1}', b'"2022-12-31T24:00:01Z"', b"99999999999"])
def test_unparseable_dt_falls_back_to_reception(impl, dt):
    batch = ok(b'[{"dt":' + dt + b'},{"a":1}]')
    assert list(batch.times_ns) == [RECEIVED, RECEIVED]
    assert batch.events[0]["dt"] == orjson.loads(dt)


def test_dt_missing_and_nested_dt_ignored(impl):
    batch = ok(b'{"a":{"dt":1672490759}}\n{"dt":1672490759}\n', NDJSON)
    assert list(batch.times_ns) == [RECEIVED, 1672490759000000000]


def test_duplicate_dt_last_wins(impl):
    assert list(ok(b'{"dt":1,"dt":1672490759}').times_ns) == [1672490759000000000]


@pytest.mark.parametrize("ts", [msgpack.Timestamp(1672490759), msgpack.Timestamp(1672490759, 123456789),
                                msgpack.Timestamp(2**33 + 5, 7), msgpack.Timestamp(-5, 999)])
def test_msgpack_timestamp_ext(impl, ts):
    body = msgpack.packb([{"dt": ts}, {"dt": 1672490759123}], datetime=False)
    batch = ok(body, MSGPACK)
    assert list(batch.times_ns) == [ts.seconds * 10**9 + ts.nanoseconds, 1672490759123000000]
    assert batch.events[0]["dt"] == ts                      # kept as msgpack.Timestamp


def test_msgpack_timestamp_out_of_range(impl):
    body = msgpack.packb({"dt": msgpack.Timestamp(2**34 + 5, 7)}, datetime=False)   # year 2514
    assert list(ok(body, MSGPACK).times_ns) == [RECEIVED]


def test_msgpack_float_and_string_dt(impl):
    body = msgpack.packb([{"dt": 1672490759.123456}, {"dt": "2022-12-31T13:45:59Z"}, {"dt": b"bytes"}])
    assert list(ok(body, MSGPACK).times_ns) == [1672490759123456000, 1672494359000000000, RECEIVED]


def test_received_ns_defaults_to_now(impl):
    import time
    before = time.time_ns()
    batch = decode(b'{"a":1}', JSON)
    assert before <= batch.times_ns[0] <= time.time_ns()


# -- the compiled entry of decode() ----------------------------------------------------------

def test_decode_is_the_compiled_entry_with_the_python_signature():
    """With the compiled kernels, fastingest.decode is _whole.decode (no Python frame for
    the common case), with the Python function's signature, text and module."""
    import inspect

    from fastingest import _kernels
    if _kernels.cython is None:
        pytest.skip("compiled kernels not loaded")
    assert decode is _kernels.cython.whole.decode
    assert decode.__module__ == "fastingest.decode"
    params = inspect.signature(decode).parameters
    assert list(params) == ["body", "content_type", "content_encoding", "limits",
                            "received_ns", "errors"]
    assert params["limits"].default == fastingest.Limits()
    assert params["errors"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "Decode one request body" in (decode.__doc__ or "")


@pytest.mark.parametrize("active", ["cython", "python"])
def test_decode_entry_follows_the_active_kernels(active, monkeypatch):
    """The compiled entry takes its fast path only while the compiled kernels are the
    active set: with the twins active every call runs the pure whole-body path."""
    from fastingest import _kernels, whole
    if _kernels.cython is None:
        pytest.skip("compiled kernels not loaded")
    calls = []
    real = whole.decode_whole

    def spy(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(whole, "decode_whole", spy)
    monkeypatch.setattr(_kernels, "active", _kernels.cython if active == "cython" else _kernels.python)
    body = b'{"dt":"2026-01-02T03:04:05.123456789Z","a":1}'
    batch = decode(body, JSON)
    assert batch.events == [{"dt": "2026-01-02T03:04:05.123456789Z", "a": 1}]
    assert list(batch.times_ns) == [1767323045123456789]
    assert len(calls) == (0 if active == "cython" else 1)


@pytest.mark.parametrize("case", ["gzip", "bytearray", "memoryview", "over max_body", "collect"])
def test_decode_entry_hands_the_other_cases_to_the_python_path(impl, case):
    """Compressed bodies, other buffers, a body over max_body and errors='collect' answer
    as the Python decode() does (same batch, same 413 with its offset)."""
    import gzip
    body = b'{"a":1}\n{"a":2}\n'
    kw = {}
    if case == "gzip":
        body, kw = gzip.compress(body), {"content_encoding": "gzip"}
    elif case == "bytearray":
        body = bytearray(body)
    elif case == "memoryview":
        body = memoryview(body)
    elif case == "collect":
        body, kw = b'{"a":1}\n{"a":\n{"a":2}\n', {"errors": "collect"}
    else:
        err = fails(body, NDJSON, limits=Limits(max_body=10))
        assert err.status == 413 and err.offset == 10
        return
    batch = ok(body, NDJSON, **kw)
    assert [e["a"] for e in batch.events] == [1, 2]
    assert list(batch.lines) == ([1, 3] if case == "collect" else [1, 2])
