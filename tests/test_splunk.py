"""Splunk HEC, sans-I/O, on both kernel sets: concatenated event objects, raw lines,
health, every code of PROTOCOLS.md §4, auth forms, gzip, limits, exact decimal time."""
from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given, strategies as st

from fastingest import Limits
from fastingest.hec import event_time

from shippers import RECEIVED, TOKEN, basic, bearer, run, service

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


@given(st.from_regex(r"-?[0-9]{0,20}(\.[0-9]{0,25})?([eE][+-]?[0-9]{1,2})?", fullmatch=True),
       st.sampled_from([6, 9]))
def test_decimal_arithmetic_is_exact(text, digits):
    """decimal_to_ns (both its digits-only shortcut and its general path) against
    Python's Decimal: truncated toward zero, None outside int64."""
    from decimal import Decimal, InvalidOperation, localcontext

    from fastingest.shipping import decimal_to_ns
    try:
        with localcontext() as ctx:
            ctx.prec = 200
            value = Decimal(text) * (10 ** digits)
    except InvalidOperation:
        assert decimal_to_ns(text, digits) is None
        return
    expected = int(value)   # truncates toward zero
    if not -(1 << 63) <= expected < (1 << 63):
        expected = None
    assert decimal_to_ns(text, digits) == expected
