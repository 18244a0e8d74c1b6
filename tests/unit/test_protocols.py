"""The protocols without any I/O: head + body chunks in, response + events out.

Every Better Stack and Samsara test runs twice: the events delivered as objects, and as
the JSON text a store keeps (``Delivery(raw_json=True)``, what the server asks for with
SQLite and NATS), read back with orjson: the answers and the stored members and values
must not depend on it."""
from __future__ import annotations

import gzip
import json
import zlib
from typing import Dict, List, Optional, Sequence

import brotli
import msgpack
import orjson
import pytest
import zstandard
from hypothesis import given, strategies as st

from fastingest.errors import MEDIA_TYPE_MESSAGE
from fastingest.compression import ENCODING_MESSAGE
from fastingest.limits import Limits
from fastingest.protocols import (Delivery, EventBatch, RawEvents, Request, Response, Service,
                                  bearer_token, client_in, declared_too_large, parse_networks)
from fastingest.protocols.betterstack import BetterStack
from fastingest.protocols.samsara import Samsara, is_json_media_type, parse_published

TOKEN = "tok-app"
TOKENS = {TOKEN: "app", "tok-web": "web"}
SMALL = Limits(max_body=4096, max_compressed=1024, max_event=512)
NOW_NS = 1_700_000_000_123_456_789
NOW_MS = NOW_NS // 1_000_000
TEXT = b"text/plain; charset=utf-8"


#: How the services of a test want their events (the ``delivery`` fixture sets it).
DELIVERY = Delivery()


@pytest.fixture(autouse=True, params=["objects", "json-text"])
def delivery(request):
    """Run each test with the events delivered as objects, then as JSON text."""
    global DELIVERY
    DELIVERY = Delivery(raw_json=request.param == "json-text")
    yield DELIVERY
    DELIVERY = Delivery()


def events_of(batch: EventBatch) -> List[dict]:
    """A batch's events: as handed out, or read back from their JSON text (each one line)."""
    if isinstance(batch, RawEvents):
        assert all(b"\n" not in text and b"\r" not in text for text in batch.raw)
        return [orjson.loads(text) for text in batch.raw]
    return batch.events


class Outcome:
    """What the server would do: the response and every event handed out for storing."""

    def __init__(self, response: Response, events: List[EventBatch], committed: bool) -> None:
        self.response = response
        self.batches = events
        self.committed = committed

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def body(self) -> bytes:
        return self.response.body

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def headers(self) -> Dict[bytes, bytes]:
        return dict(self.response.headers)

    @property
    def events(self) -> List[dict]:
        return [e for batch in self.batches for e in events_of(batch)]

    @property
    def times(self) -> List[int]:
        return [t for batch in self.batches for t in batch.times_ns]

    @property
    def sources(self) -> set:
        return {batch.source for batch in self.batches}


def drive(service: Service, method: str, path: str, headers: Dict[str, str],
          body: bytes = b"", chunks: Optional[Sequence[int]] = None,
          client: Optional[str] = "127.0.0.1") -> Outcome:
    """Run one exchange as a server would: stop feeding once the response is decided."""
    ex = service.start(method, path, [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                       client=client, received_ns=NOW_NS)
    handed: List[EventBatch] = []
    if ex.response is None:
        pieces = [body] if chunks is None else _split(body, chunks)
        for piece in pieces:
            out = ex.feed(piece)
            if out is not None:
                handed.append(out)
            if ex.response is not None:
                break
        else:
            out = ex.end()
            if out is not None:
                handed.append(out)
    if ex.response is None:
        return Outcome(ex.committed(), handed, True)
    return Outcome(ex.response, handed, False)


def _split(body: bytes, sizes: Sequence[int]) -> List[bytes]:
    out, pos, i = [], 0, 0
    while pos < len(body):
        n = max(1, sizes[i % len(sizes)])
        out.append(body[pos:pos + n])
        pos += n
        i += 1
    return out


def bs_service(limits: Limits = Limits()) -> Service:
    return Service([BetterStack(TOKENS, limits)], DELIVERY)


def both(limits: Limits = Limits(), **samsara) -> Service:
    return Service([BetterStack(TOKENS, limits), Samsara(limits=limits, **samsara)], DELIVERY)


def bs(body: bytes, ctype: str = "application/json", *, token: Optional[str] = TOKEN,
       encoding: Optional[str] = None, service: Optional[Service] = None,
       extra: Optional[Dict[str, str]] = None, chunks=None) -> Outcome:
    headers = {"Content-Type": ctype}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    headers.update(extra or {})
    return drive(service or bs_service(), "POST", "/", headers, body, chunks)


def deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,            # zlib-wrapped
    "deflate-raw": deflate_raw,          # raw deflate, same header value
    "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
    "br": brotli.compress,
}


def header_value(name: str) -> str:
    return "deflate" if name == "deflate-raw" else name


# -- Better Stack: accepted ------------------------------------------------------------

EVENTS = [{"message": "A", "dt": 1672490759}, {"message": "B", "nested": {"values": 123}}]


@pytest.mark.parametrize("ctype,body", [
    ("application/json", json.dumps(EVENTS).encode()),
    ("application/json; charset=utf-8", json.dumps(EVENTS).encode()),
    ("APPLICATION/JSON", json.dumps(EVENTS).encode()),
    ("application/x-ndjson", b"\r\n".join(json.dumps(e).encode() for e in EVENTS) + b"\r\n\r\n"),
    ("application/msgpack", msgpack.packb(EVENTS)),
    ("application/x-msgpack", msgpack.packb(EVENTS)),
])
def test_betterstack_accepts_each_content_type(ctype, body):
    out = bs(body, ctype)
    assert (out.status, out.body, out.headers[b"content-type"]) == (202, b"", TEXT)
    assert out.committed and out.events == EVENTS and out.sources == {"app"}
    assert out.times == [1672490759 * 10**9, NOW_NS]   # dt, else reception time


@pytest.mark.parametrize("ctype,body", [
    ("application/json", b'{"message":"My first event","nested":{"values":123}}'),
    ("application/x-ndjson", b'{"message":"My first event","nested":{"values":123}}'),
    ("application/msgpack", msgpack.packb({"message": "My first event", "nested": {"values": 123}})),
])
def test_betterstack_single_event(ctype, body):
    out = bs(body, ctype)
    assert out.status == 202 and out.events == [{"message": "My first event", "nested": {"values": 123}}]


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("ctype,raw", [
    ("application/json", json.dumps(EVENTS).encode()),
    ("application/x-ndjson", b"\n".join(json.dumps(e).encode() for e in EVENTS)),
    ("application/msgpack", msgpack.packb(EVENTS)),
])
def test_betterstack_each_encoding(name, ctype, raw):
    out = bs(ENCODERS[name](raw), ctype, encoding=header_value(name), chunks=[7, 1, 100])
    assert (out.status, out.body) == (202, b"")
    assert out.events == EVENTS


def test_betterstack_dt_forms_and_msgpack_timestamp():
    body = msgpack.packb([
        {"dt": "2022-12-31T13:45:59.123456Z"},
        {"dt": "2022-12-31 13:45:59.123456+02:00"},
        {"dt": 1672490759123},
        {"dt": msgpack.Timestamp(1672490759, 5)},
        {"dt": "not a time"},
    ], datetime=False)
    out = bs(body, "application/msgpack")
    assert out.status == 202
    assert out.times == [1672494359123456000, 1672487159123456000, 1672490759123000000,
                         1672490759000000005, NOW_NS]
    assert out.events[4] == {"dt": "not a time"}   # kept unchanged


def test_betterstack_empty_array_is_accepted_and_stores_nothing():
    out = bs(b"[]")
    assert (out.status, out.events) == (202, [])


def test_betterstack_events_are_handed_out_while_streaming():
    body = b"\n".join(json.dumps({"i": i}).encode() for i in range(50)) + b"\n"
    ex = bs_service().start("POST", "/", [(b"authorization", b"Bearer " + TOKEN.encode()),
                                          (b"content-type", b"application/x-ndjson")],
                            received_ns=NOW_NS)
    first = ex.feed(body[:len(body) // 2])
    assert first is not None and 0 < len(events_of(first)) < 50
    rest = [ex.feed(body[len(body) // 2:]), ex.end()]
    total = events_of(first) + [e for r in rest if r for e in events_of(r)]
    assert total == [{"i": i} for i in range(50)]
    assert ex.committed().status == 202


# -- Better Stack: refused ---------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {},                                            # no Authorization
    {"Authorization": "Bearer nope"},              # unknown token
    {"Authorization": "Bearer"},                   # no token
    {"Authorization": f"Basic {TOKEN}"},           # wrong scheme
    {"Authorization": TOKEN},                      # no scheme
])
def test_betterstack_403(headers):
    out = drive(bs_service(), "POST", "/", {"Content-Type": "application/json", **headers}, b"{}")
    assert (out.status, out.body, out.headers[b"content-type"]) == (403, b"Unauthorized", TEXT)
    assert out.events == []


def test_betterstack_bearer_is_case_insensitive_and_tolerates_spaces():
    out = drive(bs_service(), "POST", "/", {"Authorization": f"bearer   {TOKEN} ",
                                            "Content-Type": "application/json"}, b"{}")
    assert out.status == 202


def test_betterstack_token_maps_to_its_source():
    assert bs(b"{}", token="tok-web").sources == {"web"}


@pytest.mark.parametrize("ctype,body", [
    ("application/json", b'[{"a": 1}, {"a": tru}]'),
    ("application/json", b'[{"a": 1}, 2]'),              # element not an object
    ("application/json", b'"just a string"'),
    ("application/json", b""),
    ("application/json", b'[{"a": 1}'),                  # truncated
    ("application/json", b'{"s": "\xff"}'),              # invalid UTF-8
    ("application/json", b"[" * 200 + b"]" * 200),       # too deep
    ("application/x-ndjson", b'{"a": 1}\n{"a": \n'),
    ("application/x-ndjson", b'{"a": 1}\n[1]\n'),
    ("application/msgpack", b"\xc1"),
    ("application/msgpack", msgpack.packb([{"a": 1}, 3])),
    ("application/msgpack", msgpack.packb([{"a": 1}])[:-1]),
])
def test_betterstack_406(ctype, body):
    out = bs(body, ctype)
    assert (out.status, out.body, out.headers[b"content-type"]) == (
        406, b"Couldn't parse JSON content.", TEXT)
    assert not out.committed


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "", "application/jsonx"])
def test_betterstack_415_content_type(ctype):
    out = bs(b"{}", ctype)
    assert (out.status, out.body.decode()) == (415, MEDIA_TYPE_MESSAGE)
    assert b"application/json" in out.body and b"\n" not in out.body


def test_betterstack_415_missing_content_type():
    out = drive(bs_service(), "POST", "/", {"Authorization": f"Bearer {TOKEN}"}, b"{}")
    assert (out.status, out.body.decode()) == (415, MEDIA_TYPE_MESSAGE)


@pytest.mark.parametrize("encoding", ["lz4", "compress", "gzip, snappy"])
def test_betterstack_415_content_encoding(encoding):
    out = bs(b"{}", encoding=encoding)
    assert (out.status, out.body.decode()) == (415, ENCODING_MESSAGE)
    assert "gzip" in ENCODING_MESSAGE and "\n" not in ENCODING_MESSAGE


@pytest.mark.parametrize("name", ["gzip", "deflate", "zstd", "br"])
def test_betterstack_400_corrupt_compressed(name):
    good = ENCODERS[name](json.dumps(EVENTS).encode())
    for bad in (good[:len(good) // 2], b"\x00garbage" * 4):
        out = bs(bad, encoding=name)
        assert out.status == 400 and out.body and b"\n" not in out.body
        assert out.headers[b"content-type"] == TEXT and not out.committed


def test_betterstack_413_declared_content_length_before_reading():
    svc = bs_service(SMALL)
    over = {"Content-Length": str(SMALL.max_body + 1)}
    ex = svc.start("POST", "/", [(b"authorization", f"Bearer {TOKEN}".encode()),
                                 (b"content-type", b"application/json"),
                                 (b"content-length", str(SMALL.max_body + 1).encode())])
    assert ex.response is not None   # decided from the head: nothing is read
    assert (ex.response.status, ex.response.body) == (413, b"payload reached size limit")
    assert bs(b"{}", extra=over, service=svc).status == 413
    # exactly at the limit is fine (the real body decides)
    assert bs(b"{}", extra={"Content-Length": str(SMALL.max_body)}, service=svc).status == 202


def test_betterstack_413_declared_uses_compressed_limit_when_encoded():
    svc = bs_service(SMALL)
    size = str(SMALL.max_compressed + 1)   # under max_body, over max_compressed
    assert bs(b"{}", extra={"Content-Length": size}, service=svc).status == 202
    out = bs(gzip.compress(b"{}"), encoding="gzip", extra={"Content-Length": size}, service=svc)
    assert out.status == 413
    identity = bs(b"{}", encoding="identity", extra={"Content-Length": size}, service=svc)
    assert identity.status == 202


@pytest.mark.parametrize("case", ["body", "compressed", "event", "decompressed"])
def test_betterstack_413_while_streaming(case):
    svc = bs_service(SMALL)
    line = json.dumps({"message": "x" * 40}).encode() + b"\n"
    if case == "body":            # identity body over max_body, sent chunked
        out = bs(line * 200, "application/x-ndjson", service=svc, chunks=[64])
    elif case == "compressed":    # incompressible bytes over max_compressed
        import os
        noise = json.dumps([{"n": os.urandom(300).hex()}]).encode()
        out = bs(gzip.compress(noise), encoding="gzip", service=svc, chunks=[100])
    elif case == "event":
        out = bs(json.dumps([{"m": "x" * 600}]).encode(), service=svc)
    else:                         # a small gzip body inflating past max_body
        out = bs(gzip.compress(line * 200), "application/x-ndjson", encoding="gzip",
                 service=svc, chunks=[50])
    assert (out.status, out.body) == (413, b"payload reached size limit")
    assert not out.committed


def test_betterstack_cut_off_at_the_limit_stops_reading():
    svc = bs_service(SMALL)
    ex = svc.start("POST", "/", [(b"authorization", f"Bearer {TOKEN}".encode()),
                                 (b"content-type", b"application/x-ndjson")])
    line = b'{"m": "' + b"x" * 90 + b'"}\n'
    fed = 0
    while ex.response is None:
        ex.feed(line)
        fed += len(line)
        assert fed <= SMALL.max_body + len(line)
    assert ex.response.status == 413
    with pytest.raises(RuntimeError):
        ex.feed(line)   # the server must stop sending the body


def test_betterstack_first_fault_in_body_order_wins():
    svc = bs_service(SMALL)
    # a parse error before the size limit is crossed: 406, not 413
    body = b'{"a": 1}\n{"a": \n' + b'{"m": "' + b"x" * 5000 + b'"}\n'
    assert bs(body, "application/x-ndjson", service=svc).status == 406


def test_betterstack_routing():
    svc = bs_service()
    out = drive(svc, "GET", "/", {"Authorization": f"Bearer {TOKEN}"})
    assert (out.status, out.body, out.headers[b"allow"]) == (405, b"Method not allowed.", b"POST")
    out = drive(svc, "POST", "/v1/events", {"Content-Type": "application/json"}, b"[]")
    assert (out.status, out.headers[b"content-type"]) == (404, TEXT)   # no Samsara here


@pytest.mark.parametrize("headers,status", [
    # auth first: a bad token hides every other problem
    ({"Content-Type": "text/plain", "Content-Encoding": "lz4", "Content-Length": "999999999"}, 403),
    # then Content-Type, then Content-Encoding, then Content-Length
    ({"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain", "Content-Encoding": "lz4",
      "Content-Length": "999999999"}, 415),
    ({"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
      "Content-Encoding": "lz4", "Content-Length": "999999999"}, 415),
    ({"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
      "Content-Length": "999999999"}, 413),
])
def test_betterstack_order_of_checks(headers, status):
    ex = bs_service().start("POST", "/", [(k.lower().encode(), v.encode()) for k, v in headers.items()])
    assert ex.response is not None and ex.response.status == status


@given(st.lists(st.integers(1, 40), min_size=1, max_size=8), st.sampled_from(sorted(ENCODERS)))
def test_betterstack_chunking_does_not_change_the_outcome(sizes, name):
    raw = b"\n".join(json.dumps({"i": i, "dt": 1672490759 + i}).encode() for i in range(30))
    body = ENCODERS[name](raw)
    whole = bs(body, "application/x-ndjson", encoding=header_value(name))
    split = bs(body, "application/x-ndjson", encoding=header_value(name), chunks=sizes)
    assert (split.status, split.events, split.times) == (whole.status, whole.events, whole.times)
    assert whole.status == 202 and len(whole.events) == 30


# -- Samsara: events -----------------------------------------------------------------------

def sam_event(i: int = 0, **extra) -> dict:
    return {"timestamp": 1_700_000_000_000 + i, "sourceId": "3aw4sedrtcyvgbuhjkn",
            "eventName": "user.item.added", **extra}


def sam(body, *, ctype: Optional[str] = "application/json", published: Optional[str] = "1700000000999",
        encoding: Optional[str] = None, service: Optional[Service] = None, extra=None,
        chunks=None, client="127.0.0.1") -> Outcome:
    headers = {}
    if ctype is not None:
        headers["Content-Type"] = ctype
    if published is not None:
        headers["X-Samsara-publishedTimestamp"] = published
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    headers.update(extra or {})
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return drive(service or both(), "POST", "/v1/events", headers, body, chunks, client)


def test_samsara_accepts_and_enriches():
    out = sam([sam_event(0, page="orders"), sam_event(1, action="remove")])
    assert (out.status, out.body) == (202, b"")
    assert b"content-type" not in out.headers
    assert out.events == [
        sam_event(0, page="orders", receivedAt=NOW_MS, publishedAt=1700000000999),
        sam_event(1, action="remove", receivedAt=NOW_MS, publishedAt=1700000000999),
    ]
    assert out.times == [1_700_000_000_000_000_000, 1_700_000_000_001_000_000]
    assert out.sources == {"samsara"}


def test_samsara_warning_without_published_header():
    out = sam([sam_event()], published=None)
    assert out.status == 202
    assert out.headers[b"content-type"] == b"application/json"
    assert out.json == {"status": "OK", "warning":
                        "For completeness, please provide the 'X-Samsara-publishedTimestamp' header."}
    assert "publishedAt" not in out.events[0] and out.events[0]["receivedAt"] == NOW_MS


@pytest.mark.parametrize("given_value,kept", [
    (None, False), (False, False), (0, True), (123, True), ("yesterday", True), ({"a": 1}, True),
])
def test_samsara_received_and_published_only_fill_null_false_or_absent(given_value, kept):
    out = sam([sam_event(receivedAt=given_value, publishedAt=given_value)])
    assert out.status == 202
    event = out.events[0]
    assert event["receivedAt"] == (given_value if kept else NOW_MS)
    assert event["publishedAt"] == (given_value if kept else 1700000000999)


def test_samsara_event_time_is_timestamp_ms():
    out = sam([sam_event(timestamp=-1500), sam_event(timestamp=0),
               sam_event(timestamp=10**17)])   # out of the int64 ns range
    assert out.status == 202
    assert out.times == [-1_500_000_000, 0, NOW_NS]
    assert out.events[2]["timestamp"] == 10**17   # kept as sent


@pytest.mark.parametrize("ctype", [
    "application/json", "application/json; charset=utf-8", "Application/JSON",
    "application/vnd.samsara+json", "application/ld+json; charset=utf-8",
])
def test_samsara_json_content_types(ctype):
    assert sam([sam_event()], ctype=ctype).status == 202


@pytest.mark.parametrize("ctype", [None, "", "text/plain", "application/x-ndjson",
                                   "application/msgpack", "application/+json", "text/x+json",
                                   "application/json-seq"])
def test_samsara_400_content_type(ctype):
    out = sam([sam_event()], ctype=ctype)
    assert out.status == 400
    assert out.body == b'{"status":"ERROR","message":"Invalid format, content-type must be application/json"}'
    assert out.headers[b"content-type"] == b"application/json"


@pytest.mark.parametrize("value,ok", [
    ("1700000000999", True), ("-5", True), ("+5", True), ("007", True),
    (str(2**63 - 1), True), (str(2**63), False), ("12a", False), ("1.5", False), ("", False),
    ("1e3", False), ("٣", False), ("0x10", False),
])
def test_samsara_published_timestamp_header(value, ok):
    out = sam([sam_event()], published=value)
    if ok:
        assert out.status == 202 and out.body == b""
        assert out.events[0]["publishedAt"] == int(value)
    else:
        assert out.status == 400
        assert out.body == (b'{"status":"ERROR","message":'
                            b'"X-Samsara-publishedTimestamp must be a valid timestamp."}')


@pytest.mark.parametrize("body", [b'[{"timestamp": 1,', b"not json", b"", b"[{}, {", b"[{}]]"])
def test_samsara_malformed_json(body):
    out = sam(body)
    assert (out.status, out.body, out.headers[b"content-type"]) == (
        400, b"Malformed JSON in request body.", TEXT)


@pytest.mark.parametrize("body", [b'{"timestamp": 1, "sourceId": "a", "eventName": "b"}',
                                  b' \r\n\t{}', b"\xef\xbb\xbf{}"])
def test_samsara_object_body_is_400(body):
    out = sam(body)
    assert out.status == 400
    assert out.json == {"status": "ERROR", "message": "The body must be a JSON array of events."}
    assert out.events == []


def test_samsara_element_not_an_object():
    out = sam(b'[{"timestamp": 1, "sourceId": "a", "eventName": "b"}, 7]')
    assert out.status == 400
    assert out.json == {"status": "ERROR", "message": "Each event must be a JSON object."}


def test_samsara_bom_and_whitespace_before_the_array():
    assert sam(b"\xef\xbb\xbf \n[" + json.dumps(sam_event()).encode() + b"]").status == 202
    assert sam(b" " * 1000 + json.dumps([sam_event()]).encode(), chunks=[300]).status == 202


def test_samsara_empty_array():
    out = sam(b"[]")
    assert (out.status, out.events) == (202, [])


def test_samsara_per_event_validation_array():
    body = [
        sam_event(0),
        {"sourceId": "a", "eventName": "b"},
        {"timestamp": "not a timestamp", "sourceId": 5, "eventName": "b"},
        {"timestamp": 1.0, "sourceId": "a", "eventName": None},
        {"timestamp": True, "sourceId": "a", "eventName": "b"},
        sam_event(5),
        {},
    ]
    out = sam(body, chunks=[17])
    assert out.status == 400 and out.headers[b"content-type"] == b"application/json"
    assert out.json == [
        "OK",
        {"timestamp": "missing required key"},
        {"timestamp": "must be an integer", "sourceId": "must be a string"},
        {"timestamp": "must be an integer", "eventName": "must be a string"},
        {"timestamp": "must be an integer"},
        "OK",
        {"timestamp": "missing required key", "sourceId": "missing required key",
         "eventName": "missing required key"},
    ]
    assert not out.committed


def test_samsara_invalid_event_stops_handing_out_events():
    good = [sam_event(i) for i in range(200)]
    body = json.dumps(good[:100] + [{}] + good[100:]).encode()
    out = sam(body, chunks=[512])
    assert out.status == 400 and len(out.json) == 201
    # events before the bad one may have been handed out (the server aborts them), none after
    assert len(out.events) <= 100


def test_samsara_gzip_and_other_encodings():
    raw = json.dumps([sam_event(0), sam_event(1)]).encode()
    for name, encode in ENCODERS.items():
        out = sam(encode(raw), encoding=header_value(name), chunks=[9])
        assert out.status == 202 and len(out.events) == 2


def test_samsara_encoding_and_size_errors_are_json():
    out = sam(b"[]", encoding="lz4")
    assert out.status == 415 and out.json == {"status": "ERROR", "message": ENCODING_MESSAGE}
    out = sam(gzip.compress(b"[]")[:-3], encoding="gzip")
    assert out.status == 400 and out.json["status"] == "ERROR"
    svc = both(SMALL)
    out = sam(b"[]", service=svc, extra={"Content-Length": str(SMALL.max_body + 1)})
    assert out.status == 413 and out.json == {"status": "ERROR", "message": "payload reached size limit"}
    out = sam([sam_event(i) for i in range(100)], service=svc, chunks=[100])
    assert out.status == 413 and out.json["message"] == "payload reached size limit"


@pytest.mark.parametrize("headers,expected", [
    ({"Content-Type": "text/plain", "X-Samsara-publishedTimestamp": "x"}, "content-type"),
    ({"Content-Type": "application/json", "X-Samsara-publishedTimestamp": "x",
      "Content-Encoding": "lz4"}, "X-Samsara"),
    ({"Content-Type": "application/json", "Content-Encoding": "lz4",
      "Content-Length": "999999999"}, "Content-Encoding"),
])
def test_samsara_order_of_checks(headers, expected):
    out = drive(both(), "POST", "/v1/events", headers, b"[]")
    assert expected.encode() in out.body


def test_samsara_optional_token_auth():
    svc = Service([Samsara(tokens=TOKENS)], DELIVERY)
    assert sam([sam_event()], service=svc).status == 403
    out = sam([sam_event()], service=svc, extra={"Authorization": "Bearer tok-web"})
    assert out.status == 202 and out.sources == {"web"}
    out = sam([sam_event()], service=svc, ctype="text/plain")   # auth is checked first
    assert out.json == {"status": "ERROR", "message": "Unauthorized"}


def test_samsara_custom_source():
    assert sam([sam_event()], service=Service([Samsara(source="devices")], DELIVERY)).sources == {"devices"}


# -- Samsara: api-status, routing ----------------------------------------------------------

def put_status(svc: Service, body, client: Optional[str] = "127.0.0.1") -> Outcome:
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return drive(svc, "PUT", "/v1/api-status", {"Content-Type": "application/json"}, body,
                 client=client)


def test_api_status_transitions():
    svc = both()
    get = lambda: drive(svc, "GET", "/v1/api-status", {})
    assert (get().status, get().json) == (200, {"status": "online"})
    out = put_status(svc, {"status": "offline"})
    assert (out.status, out.json) == (200, {"status": "offline"})
    assert (get().status, get().json) == (503, {"status": "offline"})
    # offline only drains the balancer: ingestion keeps working
    assert sam([sam_event()], service=svc).status == 202
    assert bs(b"{}", service=svc).status == 202
    assert put_status(svc, {"status": "offline"}).status == 200   # idempotent
    assert put_status(svc, {"status": "online"}).json == {"status": "online"}
    assert (get().status, get().json) == (200, {"status": "online"})


@pytest.mark.parametrize("body", [
    {"status": "maintenance"}, {"status": None}, {"state": "online"}, {}, [{"status": "online"}],
    [{"status": "online"}, {"status": "offline"}], b"online", b"", b'{"status": "online"',
    b'{"status": "' + b"x" * 100_000 + b'"}',
])
def test_api_status_bad_put_is_400_and_changes_nothing(body):
    svc = both(online=False)
    out = put_status(svc, body)
    assert out.status == 400 and out.json["status"] == "ERROR"
    assert drive(svc, "GET", "/v1/api-status", {}).status == 503


@pytest.mark.parametrize("client,allowed", [
    ("127.0.0.1", True), ("127.9.8.7", True), ("::1", True), ("::ffff:127.0.0.1", False),
    ("10.0.0.1", False), ("192.168.1.5", False), ("::2", False), ("fe80::1%eth0", False),
    (None, False), ("/tmp/sock", False), ("localhost", False),
])
def test_api_status_put_allow_list_default_loopback(client, allowed):
    svc = both()
    out = put_status(svc, {"status": "offline"}, client=client)
    if allowed:
        assert out.status == 200
    else:
        assert out.status == 403
        assert out.json == {"status": "ERROR", "message": "Forbidden"}
        assert drive(svc, "GET", "/v1/api-status", {}).status == 200


def test_api_status_put_custom_networks():
    svc = both(admin_networks=["10.0.0.0/8", "2001:db8::/32"])
    assert put_status(svc, {"status": "offline"}, client="10.1.2.3").status == 200
    assert put_status(svc, {"status": "online"}, client="2001:db8::7").status == 200
    assert put_status(svc, {"status": "offline"}, client="127.0.0.1").status == 403


def test_samsara_routing():
    svc = both()
    for method, path in [("GET", "/nope"), ("POST", "/v1/event"), ("POST", "/v1/events/"),
                         ("GET", "/v2/events"), ("DELETE", "/x")]:
        out = drive(svc, method, path, {})
        assert (out.status, out.body) == (404, b'{"status":"ERROR","message":"Not found"}')
    out = drive(svc, "GET", "/v1/events", {})
    assert (out.status, out.headers[b"allow"]) == (405, b"POST")
    out = drive(svc, "DELETE", "/v1/api-status", {})
    assert (out.status, out.headers[b"allow"]) == (405, b"GET, PUT")


# -- helpers -----------------------------------------------------------------------------

def test_helpers():
    req = Request("post", "/", [(b"Authorization", b"Bearer  abc "), (b"content-length", b"10")])
    assert req.method == "POST" and bearer_token(req) == "abc"
    assert not declared_too_large(req, Limits(max_body=10, max_compressed=5))
    assert declared_too_large(Request("POST", "/", [(b"content-length", b"11")]),
                              Limits(max_body=10, max_compressed=5))
    assert not declared_too_large(Request("POST", "/", [(b"content-length", b"x1")]), SMALL)
    nets = parse_networks(["10.0.0.0/8", "::1"])
    assert client_in("10.2.3.4", nets) and client_in("::1", nets) and not client_in("11.0.0.1", nets)
    with pytest.raises(ValueError):
        parse_networks(["not a network"])
    assert is_json_media_type("application/problem+json") and not is_json_media_type(None)
    assert parse_published("-0") == 0 and parse_published(" 1") is None


def test_misuse_raises():
    ex = bs_service().start("POST", "/", [(b"authorization", f"Bearer {TOKEN}".encode()),
                                          (b"content-type", b"application/json")])
    with pytest.raises(RuntimeError):
        ex.committed()            # the body has not ended
    ex.feed(b"{}")
    ex.end()
    with pytest.raises(RuntimeError):
        ex.end()
    assert ex.committed().status == 202


def test_store_failure_response():
    ex = both().start("POST", "/v1/events", [(b"content-type", b"application/json")])
    ex.feed(json.dumps([sam_event()]).encode())
    failed = ex.failed()
    assert failed.status == 503 and dict(failed.headers)[b"retry-after"] == b"1"
    ex = bs_service().start("POST", "/", [(b"authorization", f"Bearer {TOKEN}".encode()),
                                          (b"content-type", b"application/json")])
    assert ex.failed().status == 503 and ex.response.status == 503
