"""OTLP/HTTP logs, sans-I/O, on both kernel sets: every answer of PROTOCOLS.md §1, both
encodings, compression, limits, auth forms, malformed bodies; the protobuf walker
against the protobuf package's own parse."""
from __future__ import annotations

import gzip
import json

import pytest

from fastingest import IngestError, Limits, _kernels
from fastingest.otlpjson import OtlpJson
from fastingest.protocols.otlp import partial_success_body, status_body

from shippers import (RECEIVED, TOKEN, ENCODE, basic, bearer, field, otlp_json, otlp_request,
                      reference_events, run, service, varint)

pytest.importorskip("opentelemetry.proto")
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest  # noqa: E402

PB = {"Content-Type": "application/x-protobuf", **bearer()}
JS = {"Content-Type": "application/json", **bearer()}
TEXT = b"text/plain; charset=utf-8"


def status_of(body: bytes):
    """(code, message) of a protobuf google.rpc.Status."""
    from google.rpc.status_pb2 import Status
    s = Status.FromString(body)
    return s.code, s.message


def test_protobuf_request_is_stored_as_the_reference_mapping(impl):
    request = otlp_request(7)
    out = run(service(), "POST", "/v1/logs", PB, request.SerializeToString(), chunks=(5, 100))
    assert (out.status, out.body, out.header(b"content-type")) == (200, b"", b"application/x-protobuf")
    events, times = reference_events(request, RECEIVED)
    assert out.events == events and out.times == times
    assert set(out.sources) == {"app"}
    assert out.events[0]["trace_id"] == "000102030405060708090a0b0c0d0e0f"
    assert "trace_id" not in out.events[1]   # all zeros: no trace
    assert out.times[2] == 1_796_544_183_000_000_002   # no time: the observed time


def test_json_request_gives_the_same_events_as_protobuf(impl):
    request = otlp_request(5)
    out = run(service(), "POST", "/v1/logs", JS, otlp_json(request), chunks=(3,))
    assert (out.status, out.body, out.header(b"content-type")) == (200, b"{}", b"application/json")
    assert (out.events, out.times) == reference_events(request, RECEIVED)


def test_json_accepts_snake_case_enum_names_and_number_forms(impl):
    body = json.dumps({"resource_logs": [{"scope_logs": [{"log_records": [
        {"time_unix_nano": 1_700_000_000_000_000_001, "severity_number": "SEVERITY_NUMBER_WARN",
         "body": {"double_value": "NaN"}, "trace_id": "", "span_id": "00000000000000ff",
         "attributes": [{"key": "b", "value": {"bytes_value": "-_8"}}], "unknown": [1]}]}]}]}).encode()
    out = run(service(), "POST", "/otlp/v1/logs", JS, body)
    assert out.status == 200
    (event,) = out.events
    assert event["severity_number"] == 13 and event["span_id"] == "00000000000000ff"
    assert event["body"] != event["body"]   # NaN
    assert event["attributes"] == {"b": "+/8="} and "trace_id" not in event
    assert out.times == [1_700_000_000_000_000_001]


def test_empty_request_is_a_success(impl):
    assert run(service(), "POST", "/v1/logs", PB, b"").status == 200
    out = run(service(), "POST", "/v1/logs", JS, b"{}")
    assert (out.status, out.body, out.events) == (200, b"{}", [])


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate", "zstd", "br"])
def test_compressed_bodies(impl, coding):
    import brotli
    import zstandard
    encode = {**ENCODE, "zstd": zstandard.ZstdCompressor().compress, "br": brotli.compress}
    request = otlp_request(4)
    name = "deflate" if coding == "raw-deflate" else coding
    out = run(service(), "POST", "/v1/logs", {**PB, "Content-Encoding": name},
              encode[coding](request.SerializeToString()), chunks=(10,))
    assert out.status == 200 and out.events == reference_events(request, RECEIVED)[0]


def test_method_auth_and_content_type_answers():
    svc = service()
    out = run(svc, "GET", "/v1/logs", PB)
    assert (out.status, out.body, out.header(b"content-type")) == (
        405, b"405 method not allowed, supported: [POST]", TEXT)
    out = run(svc, "POST", "/v1/logs", {"Content-Type": "application/x-protobuf"})
    assert out.status == 401 and status_of(out.body)[0] == 16
    out = run(svc, "POST", "/v1/logs", {**PB, "Authorization": "Bearer nope"})
    assert out.status == 403 and status_of(out.body)[0] == 7
    out = run(svc, "POST", "/v1/logs", {"Content-Type": "application/json"})
    assert out.status == 401 and json.loads(out.body)["code"] == 16
    out = run(svc, "POST", "/v1/logs", {**bearer(), "Content-Type": "text/plain"})
    assert (out.status, out.body, out.header(b"content-type")) == (
        415, b"415 unsupported media type, supported: [application/json, application/x-protobuf]",
        TEXT)
    ok = otlp_request(1).SerializeToString()
    assert run(svc, "POST", "/v1/logs", {**basic(), "Content-Type": "application/x-protobuf"},
               ok).status == 200
    assert run(svc, "POST", "/v1/logs", {**PB, "Content-Encoding": "lz4"}, ok).status == 400
    out = run(svc, "POST", "/v1/logs", {**PB, "Content-Type": "Application/X-Protobuf; x=1"}, ok)
    assert out.status == 200


@pytest.mark.parametrize("body, detail", [
    (b"\x0a\x05\x12\x03", "truncated protobuf message"),
    (b"\x0b", "protobuf groups (wire types 3 and 4) are not supported"),
    (b"\x0e", "invalid protobuf wire type"),
    (b"\x00", "protobuf field number 0"),
    (b"\x08" + b"\xff" * 9 + b"\x02", "varint longer than 64 bits"),
    (field(1, field(2, field(2, field(3, b"\xff\xfe")))), "invalid UTF-8 in a protobuf string field"),
])
def test_malformed_protobuf_is_400_status_3(impl, body, detail):
    out = run(service(), "POST", "/v1/logs", PB, body)
    assert out.status == 400 and out.header(b"content-type") == b"application/x-protobuf"
    code, message = status_of(out.body)
    assert code == 3 and message.startswith(detail)
    assert out.events == []


@pytest.mark.parametrize("body", [
    b'{"resourceLogs": [', b"[]", b'{"resourceLogs": {}}',
    b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}',
    b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1.5"}]}]}]}',
    b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"boolValue":1}}]}]}]}',
])
def test_malformed_json_is_400_status_3(impl, body):
    out = run(service(), "POST", "/v1/logs", JS, body)
    assert out.status == 400 and json.loads(out.body)["code"] == 3


def test_limits_are_413(impl):
    small = Limits(max_body=1000, max_compressed=1000, max_event=200)
    svc = service(otlp={"limits": small})
    big = otlp_request(40).SerializeToString()
    out = run(svc, "POST", "/v1/logs", PB, big, chunks=(500,))
    assert out.status == 413 and status_of(out.body)[0] == 2
    out = run(svc, "POST", "/v1/logs", {**PB, "Content-Length": "5000"}, b"")
    assert out.status == 413
    one = otlp_request(1).SerializeToString()
    assert len(one) < 1000
    tiny = service(otlp={"limits": Limits(max_event=50)})
    assert run(tiny, "POST", "/v1/logs", PB, one).status == 413
    out = run(svc, "POST", "/v1/logs", {**PB, "Content-Encoding": "gzip"},
              gzip.compress(b"\x0a\x00" * 4000))
    assert out.status == 413


def test_resource_and_scope_over_max_event_are_413(impl):
    # both are built whole and shared by their records: bounded like a record
    big = otlp_request(1, resource={f"k{i}": "v" * 20 for i in range(20)})
    tight = service(otlp={"limits": Limits(max_event=300)})
    out = run(tight, "POST", "/v1/logs", PB, big.SerializeToString())
    assert out.status == 413 and status_of(out.body)[0] == 2
    out = run(tight, "POST", "/v1/logs", JS, otlp_json(big))
    assert out.status == 413
    scope = field(1, field(2, field(1, field(1, "s" * 400)) + field(2, b"")))
    assert run(tight, "POST", "/v1/logs", PB, scope).status == 413


def test_store_failure_is_503_with_retry_after():
    out = run(service(), "POST", "/v1/logs", PB, otlp_request(1).SerializeToString(),
              store_fails=True)
    assert out.status == 503 and out.header(b"retry-after") == b"1"
    assert status_of(out.body)[0] == 14


def test_success_and_partial_success_bodies():
    assert partial_success_body(0, "", "application/x-protobuf") == b""
    assert partial_success_body(2, "bad", "application/x-protobuf") == b"\x0a\x07\x08\x02\x12\x03bad"
    assert partial_success_body(2, "bad", "application/json") == \
        b'{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"bad"}}'
    assert status_body(3, "x", "application/json") == b'{"code":3,"message":"x"}'
    assert status_body(3, "x", "application/x-protobuf") == b"\x08\x03\x12\x01x"


def test_times_fall_back_in_order(impl):
    rec = lambda t, o: field(1, field(2, field(2, (field(1, t.to_bytes(8, "little"), 1) if t is not None else b"")  # noqa: E731
                                              + (field(11, o.to_bytes(8, "little"), 1) if o is not None else b""))))
    svc = service()
    for t, o, want in [(5, 6, 5), (0, 6, 6), (None, None, RECEIVED), (1 << 63, 7, 7),
                       ((1 << 64) - 1, (1 << 63), RECEIVED)]:
        out = run(svc, "POST", "/v1/logs", PB, rec(t, o))
        assert out.times == [want], (t, o)


def test_fields_in_any_order_and_merged_like_protobuf(impl):
    # scope_logs before resource; resource sent twice (merged); unknown fields skipped
    kv = lambda k, v: field(1, field(1, k) + field(2, field(1, v)))  # noqa: E731
    record = field(2, field(5, field(1, "hi")) + field(99, 5, 0) + field(100, 77, 5))
    rl = field(2, record) + field(1, kv("a", "1")) + field(1, kv("b", "2")) + field(1000, b"zz")
    body = field(1, rl)
    out = run(service(), "POST", "/v1/logs", PB, body)
    assert out.status == 200
    assert out.events == [{"body": "hi", "resource": {"a": "1", "b": "2"}}]
    parsed = ExportLogsServiceRequest.FromString(body)
    assert (out.events, out.times) == reference_events(parsed, RECEIVED)


def test_deep_any_value_is_cut_at_max_depth(impl):
    value = field(1, "leaf")
    for _ in range(10):
        value = field(5, field(1, value))   # array_value { values: value }
    body = field(1, field(2, field(2, field(5, value))))
    assert run(service(), "POST", "/v1/logs", PB, body).status == 200
    shallow = service(otlp={"limits": Limits(max_depth=5)})
    out = run(shallow, "POST", "/v1/logs", PB, body)
    assert out.status == 400 and "nesting deeper than 5" in status_of(out.body)[1]


def test_batches_are_bounded_by_body_bytes(impl):
    reader = _kernels.active.protobuf.OtlpLogs(otlp_request(300).SerializeToString(), 1,
                                               1 << 20, 128)
    sizes = []
    while not reader.done:
        events, times = reader.read(4096)
        sizes.append(len(events))
    assert sum(sizes) == 300 and max(sizes) < 60 and reader.count == 300


def test_json_reader_needs_an_object():
    with pytest.raises(IngestError):
        OtlpJson(b"  ", 1, 100, 10)
    assert varint(300) == b"\xac\x02" and TOKEN
