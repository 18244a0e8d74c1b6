"""Splunk HEC, sans-I/O, on both kernel sets: concatenated event objects, raw lines,
health, every code of PROTOCOLS.md §4, auth forms, gzip, limits, exact decimal time; the
event reader on the concatenated-JSON scanner: bounded memory, a body streamed in any
chunks answering what it answers whole, valid bodies read as a stdlib decoder reads them."""
from __future__ import annotations

import gzip
import json
import random
import re
import sys
import tracemalloc

import pytest
from hypothesis import given, strategies as st

from fastingest import IngestError, Limits
from fastingest.hec import HecEventReader, event_time

from helpers import FUZZ, RECEIVED, TOKEN, basic, bearer, dump_json, json_values, mutate, run, service

sys.path.insert(0, str(FUZZ))
import harnesses  # noqa: E402,F401  (first: it registers the shipper harnesses)
from shipper_harnesses import check_hec  # noqa: E402

EVENT = "/services/collector/event"
RAW = "/services/collector/raw"
AUTH = {"Authorization": f"Splunk {TOKEN}"}
JSON_TYPE = b"application/json; charset=UTF-8"


def answer(out):
    assert out.header(b"content-type") == JSON_TYPE
    return out.status, json.loads(out.body)


def test_concatenated_objects_as_splunk_handler_sends_them(impl):
    records = [json.dumps({"event": f"line {i}", "host": "vm", "index": None, "source": "/app.py",
                           "sourcetype": "text", "time": 1796544182.4264505 + i},
                          sort_keys=True) for i in range(3)]
    body = "".join(records).encode()
    for chunks in ((), (1, 2, 3, 50, 51), tuple(range(1, len(body)))):
        out = run(service(), "POST", EVENT, AUTH, body, chunks=chunks)
        assert answer(out) == (200, {"text": "Success", "code": 0})
        assert [e["event"] for e in out.events] == ["line 0", "line 1", "line 2"]
        assert "index" not in out.events[0]   # null metadata is absent
        assert out.times == [1796544182426450500, 1796544183426450500, 1796544184426450500]


@pytest.mark.parametrize("path", ["/services/collector", "/services/collector/event/1.0"])
def test_other_event_paths_and_whitespace(impl, path):
    body = b' {"event": {"a": [1]}, "time": "1796544182.123456789"}\n\n{"event": 0}\r\n'
    out = run(service(), "POST", path, AUTH, body)
    assert out.status == 200
    assert out.events == [{"event": {"a": [1]}, "time": "1796544182.123456789"}, {"event": 0}]
    assert out.times == [1796544182123456789, RECEIVED]


def test_raw_lines_with_query_metadata(impl):
    out = run(service(), "POST", RAW, AUTH, b"first\r\n\nsecond \xff\nthird", chunks=(4,),
              query="host=h1&sourcetype=access&time=1796544182.5")
    assert answer(out) == (200, {"text": "Success", "code": 0})
    assert out.events == [{"event": "first", "host": "h1", "sourcetype": "access"},
                          {"event": "second \ufffd", "host": "h1", "sourcetype": "access"},
                          {"event": "third", "host": "h1", "sourcetype": "access"}]
    assert out.times == [1796544182500000000] * 3
    assert answer(run(service(), "POST", RAW, AUTH, b" \n\n")) == (400, {"text": "No data", "code": 5})


@pytest.mark.parametrize("body, code, number", [
    (b"", 5, None), (b"  \n ", 5, None),
    (b'{"event":"a"}{"event":', 6, 1), (b'[{"event":"a"}]', 6, 0), (b'{"event":"a"} 5', 6, 1),
    (b'{"event":"a"}{"event":tru}', 6, 1),
    (b'{"event":"a"}{"host":"h"}', 12, 1), (b'{"event":""}', 13, 0), (b'{"event":null}', 13, 0),
    (b'{"event":"a","fields":{"f":{"x":1}}}', 15, 0), (b'{"event":"a","fields":[1]}', 15, 0),
    # faults in body order: an envelope before a bad object, a bad object before an envelope
    (b'{"event":"a"}{"host":"h"}{"event":tru}', 12, 1), (b'{"event":tru}{"host":"h"}', 6, 0),
    (b'{"event":"a"}{"event":"\\ud800"}', 6, 1), (b'{"event":"a"}{"event":"b"}]', 6, 2),
    (b'{"event":"a"}{"event":' + b"[" * 130 + b"]" * 130 + b"}", 6, 1),  # deeper than 128
])
def test_body_codes(impl, body, code, number):
    status, doc = answer(run(service(), "POST", EVENT, AUTH, body))
    expected = {"text": doc["text"], "code": code}
    if number is not None:
        expected["invalid-event-number"] = number
    assert doc == expected and status == 400
    assert run(service(), "POST", EVENT, AUTH, body).events == []


def test_fields_may_be_strings_and_string_arrays(impl):
    out = run(service(), "POST", EVENT, AUTH, b'{"event":"a","fields":{"f":"x","g":["y","z"]}}')
    assert out.status == 200


def test_auth_codes():
    svc = service()
    ok = b'{"event":"a"}'
    assert answer(run(svc, "POST", EVENT, {}, ok)) == (401, {"text": "Token is required", "code": 2})
    assert answer(run(svc, "POST", EVENT, bearer(), ok)) == \
        (401, {"text": "Invalid authorization", "code": 3})
    assert answer(run(svc, "POST", EVENT, {"Authorization": "Splunk"}, ok))[1]["code"] == 3
    assert answer(run(svc, "POST", EVENT, {"Authorization": "Splunk x"}, ok)) == \
        (403, {"text": "Invalid token", "code": 4})
    assert run(svc, "POST", EVENT, basic(user="x"), ok).status == 200
    assert answer(run(svc, "POST", EVENT, {}, ok, query=f"token={TOKEN}")) == \
        (400, {"text": "Query string authorization is not enabled", "code": 16})
    allowed = service(splunk={"query_token": True})
    assert run(allowed, "POST", EVENT, {}, ok, query=f"token={TOKEN}").status == 200
    assert answer(run(allowed, "POST", EVENT, {}, ok, query="token=no"))[1]["code"] == 4


def test_index_restriction_is_code_7(impl):
    svc = service(splunk={"indexes": frozenset({"main"})})
    assert run(svc, "POST", EVENT, AUTH, b'{"event":"a","index":"main"}').status == 200
    assert answer(run(svc, "POST", EVENT, AUTH, b'{"event":"a"}{"event":"b","index":"x"}')) == \
        (400, {"text": "Incorrect index", "code": 7, "invalid-event-number": 1})
    assert answer(run(svc, "POST", RAW, AUTH, b"x", query="index=x"))[1]["code"] == 7


def test_health_ack_and_methods():
    svc = service()
    assert answer(run(svc, "GET", "/services/collector/health", {})) == \
        (200, {"text": "HEC is healthy", "code": 17})
    assert answer(run(svc, "GET", "/services/collector/health/1.0", {}, query="token=zz")) == \
        (400, {"text": "Invalid token", "code": 21})
    assert answer(run(svc, "GET", "/services/collector/health", {}, query=f"token={TOKEN}"))[0] == 200
    assert answer(run(svc, "POST", "/services/collector/ack", AUTH, b"{}")) == \
        (400, {"text": "ACK is disabled", "code": 14})
    assert run(svc, "GET", EVENT, AUTH).status == 405


def test_gzip_limits_and_store_failure(impl):
    body = b"".join(b'{"event":"e%d"}' % i for i in range(500))
    out = run(service(), "POST", EVENT, {**AUTH, "Content-Encoding": "gzip"}, gzip.compress(body),
              chunks=(10, 100))
    assert out.status == 200 and len(out.events) == 500
    small = service(splunk={"limits": Limits(max_body=1000, max_compressed=1000, max_event=30)})
    assert answer(run(small, "POST", EVENT, AUTH, body)) == (413, {"text": "Content too large"})
    assert run(small, "POST", EVENT, AUTH, b'{"event":"' + b"x" * 40 + b'"}').status == 413
    assert run(small, "POST", EVENT, AUTH, b'{"event":"' + b"x" * 40, chunks=(5,)).status == 413
    assert run(small, "POST", RAW, AUTH, b"y" * 40).status == 413
    assert answer(run(service(), "POST", EVENT, {**AUTH, "Content-Encoding": "gzip"}, b"junk"))[1] \
        == {"text": "Invalid data format", "code": 6}
    out = run(service(), "POST", EVENT, AUTH, b'{"event":"a"}', store_fails=True)
    assert answer(out) == (503, {"text": "Server is busy", "code": 9})


@pytest.mark.parametrize("value, ns", [
    (1796544182.4264505, 1796544182426450500), ("1796544182.4264505", 1796544182426450500),
    (1796544182, 1796544182000000000), ("1796544182.123456789123", 1796544182123456789),
    (1.7965441824264505e9, 1796544182426450500), ("-1.5", -1500000000),
    ("soon", RECEIVED), (None, RECEIVED), (True, RECEIVED), (float("nan"), RECEIVED), (1e300, RECEIVED),
])
def test_event_time_is_exact_decimal_seconds(value, ns):
    assert event_time(value, RECEIVED) == ns


def decimal_reference(text, digits):
    """``text`` x 10**digits by Python's Decimal, truncated toward zero; None outside int64."""
    from decimal import Decimal, InvalidOperation, localcontext
    try:
        with localcontext() as ctx:
            ctx.prec = 200
            value = Decimal(text) * (10 ** digits)
    except InvalidOperation:
        return None
    if abs(value) >= 1 << 64:
        return None
    expected = int(value)   # truncates toward zero
    return expected if -(1 << 63) <= expected < (1 << 63) else None


@given(st.from_regex(r"-?[0-9]{0,20}(\.[0-9]{0,25})?([eE][+-]?[0-9]{1,2})?", fullmatch=True),
       st.sampled_from([6, 9]))
def test_decimal_arithmetic_is_exact(text, digits):
    """decimal_to_ns (both its digits-only shortcut and its general path) against
    Python's Decimal: truncated toward zero, None outside int64."""
    from fastingest.shipping import decimal_to_ns
    assert decimal_to_ns(text, digits) == decimal_reference(text, digits)


@given(st.from_regex(r"[+-]?0{0,60}[0-9]{0,40}(\.[0-9]{0,80})?([eE][+-]?[0-9]{1,4})?",
                     fullmatch=True), st.sampled_from([6, 9]))
def test_decimal_arithmetic_with_long_digit_runs_and_exponents(text, digits):
    """Leading zeros, long fractions and four-digit exponents: still exact, no huge ints."""
    from fastingest.shipping import decimal_to_ns
    assert decimal_to_ns(text, digits) == decimal_reference(text, digits)


@pytest.mark.parametrize("text", ["1" * 5000, "0" * 5000 + "1", "1" * 5000 + "e-4990",
                                  "-" + "9" * 4400, "0." + "0" * 5000 + "1"])
def test_a_time_of_thousands_of_digits_is_no_crash(impl, text):
    """A ``time`` over Python's 4300-digit int conversion limit raised ValueError out of
    the exchange (found measuring HEC's time reading); only the integer part of the
    result is converted now, so such a time is read exactly or is the reception time."""
    expected = decimal_reference(text, 9)
    assert event_time(text, RECEIVED) == (RECEIVED if expected is None else expected)
    out = run(service(), "POST", EVENT, AUTH, b'{"event":"a","time":"%s"}' % text.encode())
    assert out.status == 200 and out.times == [RECEIVED if expected is None else expected]
    out = run(service(), "POST", RAW, AUTH, b"line", query="time=" + text)
    assert out.status == 200 and out.times == [RECEIVED if expected is None else expected]


# -- the event reader on the concatenated-JSON scanner ----------------------------------------

def read(body, limits=Limits(), chunks=None, encoding=None):
    """HecEventReader over ``body`` (cut into ``chunks`` bytes each): its events and times."""
    reader = HecEventReader(encoding, limits, RECEIVED)
    events, times = [], []
    pieces = [body] if chunks is None else [body[i:i + chunks] for i in range(0, len(body), chunks)]
    for piece in pieces:
        for got, when in reader.feed(piece):
            events += got
            times += list(when)
    for got, when in reader.close():
        events += got
        times += list(when)
    return events, times


def test_a_utf8_bom_opens_a_body(impl):
    """The concatenated-JSON scanner takes a byte order mark at offset 0, as the codec's
    JSON and NDJSON scanners do (the validator-framed reader before it answered code 6)."""
    assert read(b'\xef\xbb\xbf{"event":"a"}{"event":"b"}')[0] == [{"event": "a"}, {"event": "b"}]
    out = run(service(), "POST", EVENT, AUTH, b"\xef\xbb\xbf \n")
    assert answer(out) == (400, {"text": "No data", "code": 5})
    assert answer(run(service(), "POST", EVENT, AUTH, b'\xef\xbb{"event":"a"}')) == \
        (400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 0})


def test_an_object_over_max_event_is_refused_before_it_ends(impl):
    """Only the unfinished object is kept: one that goes on past max_event is a 413 as
    soon as its first max_event + 1 bytes arrived, never held until its end."""
    limits = Limits(max_event=1000)
    reader = HecEventReader(None, limits, RECEIVED)
    assert [len(e) for e, _ in reader.feed(b'{"event":"a"}{"event":"' + b"x" * 980)] == [1]
    with pytest.raises(IngestError) as info:
        list(reader.feed(b"x" * 100))
    assert info.value.status == 413 and info.value.offset == 13 + 1000


@pytest.mark.parametrize("mib", [4, 16])
def test_memory_is_one_piece_whatever_the_body(impl, mib):
    """A gzip body of ``mib`` MiB of 1 KiB objects, streamed in 64 KiB chunks, each batch
    dropped once taken: the peak is a few pieces of body (256 KiB each), whatever the
    body's size or its compression ratio."""
    one = b'{"event":"' + b"x" * 1000 + b'","time":1796544182.5}'
    n = mib * 1024 * 1024 // len(one)
    body = gzip.compress(one * n, compresslevel=1)
    reader = HecEventReader("gzip", Limits(max_body=64 << 20, max_compressed=64 << 20), RECEIVED)
    count = 0
    tracemalloc.start()
    try:
        for i in range(0, len(body), 64 * 1024):
            for events, times in reader.feed(body[i:i + 64 * 1024]):
                count += len(events)
                del events, times
        for events, times in reader.close():
            count += len(events)
            del events, times
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == n
    assert peak < 3 * 1024 * 1024, f"{peak} bytes at the peak for a {mib} MiB body"


SPACE = [b"", b"", b" ", b"\n", b"\r\n", b"\t "]
envelopes = st.fixed_dictionaries(
    {"event": json_values.filter(lambda v: v is not None and v != "")},
    optional={"time": st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-2**40, 2**40)
              | st.from_regex(r"-?[0-9]{1,11}(\.[0-9]{0,12})?", fullmatch=True),
              "host": st.none() | st.text(max_size=8), "index": st.none() | st.text(max_size=4),
              "fields": st.dictionaries(st.text(max_size=4),
                                        st.text(max_size=4) | st.lists(st.text(max_size=3), max_size=2),
                                        max_size=3)})


def hec_body(envs, seed):
    rnd = random.Random(seed)
    return b"".join(rnd.choice(SPACE) + dump_json(e, rnd) for e in envs) + rnd.choice(SPACE)


def stdlib_reading(body):
    """What ``json.JSONDecoder.raw_decode`` reads from a valid body, as HEC stores it."""
    text, decoder, space = body.decode(), json.JSONDecoder(), re.compile(r"[ \t\r\n]*")
    events, at = [], space.match(text, 0).end()
    while at < len(text):
        obj, at = decoder.raw_decode(text, at)
        at = space.match(text, at).end()
        events.append({k: v for k, v in obj.items()
                       if v is not None or k not in ("time", "host", "index", "fields")})
    return events, [event_time(e["time"], RECEIVED) if "time" in e else RECEIVED for e in events]


@given(st.lists(envelopes, min_size=1, max_size=8), st.integers(0, 2**32 - 1),
       st.sampled_from([None, 1, 7, 64]), st.booleans())
def test_valid_bodies_read_as_the_stdlib_decoder_reads_them(impl, envs, seed, chunks, gzipped):
    body = hec_body(envs, seed)
    expected = stdlib_reading(body)
    if gzipped:
        body = gzip.compress(body)
    assert read(body, chunks=chunks, encoding="gzip" if gzipped else None) == expected


@given(st.lists(envelopes, max_size=6), st.integers(0, 2**32 - 1), st.integers(0, 127),
       st.integers(0, 255))
def test_hec_bodies_whole_equal_streamed_on_both_twins(envs, seed, limits, cut):
    """The fuzz harness's check (whole, cut in two, byte by byte; compiled and pure
    kernels alike) on HEC-like bodies, two thirds of them corrupted."""
    body = hec_body(envs, seed)
    if seed % 3:
        body = mutate(body, random.Random(seed))
    check_hec(bytes([limits, cut]) + body)
