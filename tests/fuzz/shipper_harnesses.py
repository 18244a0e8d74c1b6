"""Fuzz harnesses of the shipper-protocol readers (each a ``check(data: bytes) -> None``).

Every one asserts, on arbitrary bytes: only :class:`fastingest.IngestError` escapes; the
compiled kernels and the pure-Python twins give the same events and times, or the same
error (type, status, message, detail, offset); and, for the streaming readers, the body
fed whole gives what it gives fed in fuzzer-chosen chunks. Registered in
``harnesses.HARNESSES``.

Input layout: byte 0 picks the limits (and batch size), byte 1 a chunk cut, the rest is
the body.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

from fastingest import IngestError, Limits
from fastingest.bulk import BulkReader
from fastingest.hec import HecEventReader, HecRawReader
from fastingest.lokiformat import LokiJson, labels_too_long, line_too_long, parse_labels
from fastingest.otlpjson import OtlpJson
from fastingest.snappy import compress_block, decompress_block

from harnesses import RECEIVED, kernel_sets, same, using

LIMITS = (
    Limits(),
    Limits(max_event=24, max_depth=3),
    Limits(max_event=64, max_depth=2, max_body=256, max_compressed=256),
    Limits(max_event=4096, max_depth=6, max_body=2048),
)


def _error_view(exc: IngestError) -> tuple:
    return ("error", type(exc).__name__, exc.status, exc.message, exc.detail, exc.offset,
            getattr(exc, "code", None), getattr(exc, "event_number", None),
            getattr(exc, "type", None))


def _head(data: bytes) -> Tuple[Limits, int, int, bytes]:
    limits = LIMITS[data[0] & 3] if data else LIMITS[0]
    batch = 1 + ((data[0] >> 2) & 63) * 64 if data else 1024
    body = data[2:]
    cut = data[1] % (len(body) + 1) if len(data) > 1 else 0
    return limits, batch, cut, body


def _agree(run: Callable[[], tuple]) -> tuple:
    """``run`` on every kernel set; they must agree."""
    answers = []
    for kernels in kernel_sets():
        with using(kernels):
            try:
                answers.append(run())
            except IngestError as exc:
                answers.append(_error_view(exc))
    assert all(same(a, answers[0]) for a in answers), ("kernels disagree", answers)
    return answers[0]


def _drain(reader: Any, batch: int) -> tuple:
    events: List[Any] = []
    times: List[int] = []
    while not reader.done:
        got, when = reader.read(batch)
        assert len(got) == len(when)
        events.extend(got)
        times.extend(when)
    return ("ok", events, times)


def check_otlp_protobuf(data: bytes) -> None:
    limits, batch, _, body = _head(data)

    def run() -> tuple:
        from fastingest import _kernels
        reader = _kernels.active.protobuf.OtlpLogs(body, RECEIVED, limits.max_event,
                                                   limits.max_depth)
        return _drain(reader, batch)

    _agree(run)


def check_loki_protobuf(data: bytes) -> None:
    limits, batch, _, body = _head(data)

    def too_long(stream: str, size: int) -> IngestError:
        return line_too_long(stream, size, limits.max_event)

    def run() -> tuple:
        from fastingest import _kernels
        reader = _kernels.active.protobuf.LokiPush(
            body, RECEIVED, limits.max_event, parse_labels, too_long,
            lambda size: labels_too_long(size, limits.max_event))
        return _drain(reader, batch) + (reader.streams,)

    _agree(run)


def check_snappy(data: bytes) -> None:
    limits, _, _, body = _head(data)
    try:
        out = decompress_block(body, limits.max_body)
    except IngestError:
        pass
    else:
        assert len(out) <= limits.max_body
    assert decompress_block(compress_block(body), len(body)) == body


def check_shipper_json(data: bytes) -> None:
    """OTLP JSON and Loki JSON documents (the validator differs between the kernels)."""
    limits, batch, _, body = _head(data)
    _agree(lambda: _drain(OtlpJson(body, RECEIVED, limits.max_event, limits.max_depth), batch))
    _agree(lambda: _drain(LokiJson(body, RECEIVED, limits.max_event, limits.max_depth), batch))


def _stream(make: Callable[[], Any], pieces: List[bytes]) -> tuple:
    reader = make()
    out: List[Any] = []
    for piece in pieces:
        for got in reader.feed(piece):
            out.append(got)
    for got in reader.close():
        out.append(got)
    return ("ok", _flatten(out))


def _flatten(batches: List[Any]) -> list:
    flat: List[Any] = []
    for got in batches:
        if isinstance(got, tuple):   # HEC: (events, times)
            flat.extend(zip(got[0], list(got[1])))
        else:                        # bulk: actions
            flat.extend(got)
    return flat


def _whole_equals_chunked(make: Callable[[], Any], body: bytes, cut: int) -> None:
    def run() -> tuple:
        whole = _safe(lambda: _stream(make, [body]))
        chunked = _safe(lambda: _stream(make, [body[:cut], body[cut:]]))
        bytewise = _safe(lambda: _stream(make, [body[i:i + 1] for i in range(len(body))])) \
            if len(body) <= 256 else chunked
        assert same(whole, chunked) and same(whole, bytewise), (whole, chunked, bytewise)
        return whole

    _agree(run)


def _safe(fn: Callable[[], tuple]) -> tuple:
    try:
        return fn()
    except IngestError as exc:
        return _error_view(exc)


def check_hec(data: bytes) -> None:
    limits, _, cut, body = _head(data)
    if data and data[0] & 128:
        _whole_equals_chunked(
            lambda: HecRawReader(None, limits, RECEIVED, {"host": "h"}, None), body, cut)
    else:
        _whole_equals_chunked(lambda: HecEventReader(None, limits, RECEIVED), body, cut)


def check_bulk(data: bytes) -> None:
    limits, _, cut, body = _head(data)
    _whole_equals_chunked(lambda: BulkReader(None, limits, RECEIVED), body, cut)


_HEADERS = (
    (b"authorization", b"Bearer tok"), (b"authorization", b"Splunk tok"),
    (b"authorization", b"Basic dTp0b2s="), (b"authorization", b"ApiKey tok"),
    (b"content-type", b"application/x-protobuf"), (b"content-type", b"application/json"),
    (b"content-type", b"application/x-ndjson"), (b"content-encoding", b"gzip"),
    (b"content-encoding", b"snappy"), (b"content-length", b"12"), (b"x-scope-orgid", b"t"),
)
_ROUTES = (("POST", "/v1/logs"), ("PUT", "/_bulk"), ("POST", "/logs/_bulk"),
           ("POST", "/loki/api/v1/push"), ("POST", "/api/prom/push"),
           ("POST", "/services/collector/event"), ("POST", "/services/collector/raw"),
           ("GET", "/"), ("HEAD", "/"), ("GET", "/services/collector/health"),
           ("GET", "/v1/logs"), ("POST", "/services/collector"), ("DELETE", "/_bulk"),
           ("POST", "/otlp/v1/logs"), ("GET", "/loki/api/v1/push"), ("POST", "/nope"))
_STATUSES = {200, 204, 400, 401, 403, 404, 405, 406, 413, 415, 422, 429, 503}


def check_shipper_exchange(data: bytes) -> None:
    """The four protocols' sans-I/O exchanges: any head and body give a documented
    status and never an exception; both kernel sets answer the same, and every batch
    handed out is well formed."""
    from fastingest.protocols import Service
    from fastingest.protocols.elasticsearch import Elasticsearch
    from fastingest.protocols.loki import Loki
    from fastingest.protocols.otlp import Otlp
    from fastingest.protocols.splunk import Splunk

    if len(data) < 3:
        return
    route = _ROUTES[data[0] & 15]
    headers = [_HEADERS[b % len(_HEADERS)] for b in data[2:2 + (data[1] & 7)]]
    rest = data[2 + (data[1] & 7):]
    cut = (data[2] * 7) % (len(rest) + 1) if rest else 0
    limits = LIMITS[(data[1] >> 6) & 3]
    tokens = {"tok": "app"}
    answers = []
    for kernels in kernel_sets():
        with using(kernels):
            service = Service([Elasticsearch(tokens, limits), Otlp(tokens, limits),
                               Loki(tokens, limits), Splunk(tokens, limits)])
            ex = service.start(route[0], route[1], headers, client="127.0.0.1",
                               received_ns=RECEIVED, query="host=h&token=x"[:data[0] >> 4])
            stored: List[Any] = []

            def take(batches: Any) -> None:
                for batch in batches:
                    assert batch.events and len(batch.events) == len(batch.times_ns)
                    stored.extend(batch.events)

            for chunk in (rest[:cut], rest[cut:]):
                if ex.response is not None:
                    break
                if chunk:
                    take(ex.feed_batches(chunk))
            if ex.response is None:
                take(ex.end_batches())
            response = ex.committed() if ex.response is None else ex.response
            if ex.response is not None:
                stored = []
            assert response.status in _STATUSES, response
            answers.append((response.status, response.headers, _stable(response.body),
                            repr(stored)))
    assert all(a == answers[0] for a in answers), ("protocols disagree", answers)


def _stable(body: bytes) -> bytes:
    """A response body without what differs between runs (ES's took and generated ids)."""
    import re
    return re.sub(rb'"took":\d+|"_id":"[A-Za-z0-9_-]{20}"', b"", body)


SHIPPER_HARNESSES: Dict[str, Callable[[bytes], None]] = {
    "shipper_exchange": check_shipper_exchange,
    "otlp_protobuf": check_otlp_protobuf,
    "loki_protobuf": check_loki_protobuf,
    "snappy": check_snappy,
    "shipper_json": check_shipper_json,
    "hec": check_hec,
    "bulk": check_bulk,
}
