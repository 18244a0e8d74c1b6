"""Helpers for the shipper-protocol tests: request bodies as the real clients build them,
a reference conversion through the ``protobuf`` package, and a sans-I/O runner."""
from __future__ import annotations

import base64
import gzip
import zlib
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from fastingest.protocols import Events, Response, Service
from fastingest.shipping import encode_field as field, encode_varint as varint
from fastingest.protocols.elasticsearch import Elasticsearch
from fastingest.protocols.loki import Loki
from fastingest.protocols.otlp import Otlp
from fastingest.protocols.splunk import Splunk

TOKEN = "tok-1"
TOKENS = {TOKEN: "app", "tok-2": "web"}
RECEIVED = 1_700_000_000_000_000_007


def service(**kw: Any) -> Service:
    """Every shipper protocol over TOKENS (``kw``: per-protocol constructor options,
    e.g. ``otlp={"limits": ...}``)."""
    return Service([
        Elasticsearch(TOKENS, **kw.get("elasticsearch", {})),
        Otlp(TOKENS, **kw.get("otlp", {})),
        Loki(TOKENS, **kw.get("loki", {})),
        Splunk(TOKENS, **kw.get("splunk", {})),
    ])


class Outcome:
    """What one request gave: the response and the events handed out before it."""

    def __init__(self, response: Response, events: List[Dict[str, Any]], times: List[int],
                 sources: List[str], error: Optional[Exception]) -> None:
        self.response = response
        self.events = events
        self.times = times
        self.sources = sources
        self.error = error

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def body(self) -> bytes:
        return self.response.body

    def header(self, name: bytes) -> Optional[bytes]:
        for key, value in self.response.headers:
            if key == name:
                return value
        return None

    def headers(self, name: bytes) -> List[bytes]:
        return [v for k, v in self.response.headers if k == name]


def run(svc: Service, method: str, path: str, headers: Dict[str, str], body: bytes = b"",
        chunks: Sequence[int] = (), query: str = "", store_fails: bool = False) -> Outcome:
    """One request through the sans-I/O exchange, as the server drives it: the body cut
    at ``chunks``, each chunk's batches taken one by one, commit at the end."""
    head = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    exchange = svc.start(method, path, head, client="127.0.0.1", received_ns=RECEIVED,
                         query=query)
    events: List[Dict[str, Any]] = []
    times: List[int] = []
    sources: List[str] = []

    def take(batches: Iterator[Events]) -> None:
        for batch in batches:
            assert batch.events and len(batch.events) == len(batch.times_ns)
            events.extend(batch.events)
            times.extend(batch.times_ns)
            sources.extend([batch.source] * len(batch.events))

    if exchange.response is None:
        cuts = [0, *sorted(set(c for c in chunks if 0 < c < len(body))), len(body)]
        for a, b in zip(cuts, cuts[1:]):
            if a == b:
                continue
            take(exchange.feed_batches(body[a:b]))
            if exchange.response is not None:
                break
        if exchange.response is None:
            take(exchange.end_batches())
    if exchange.response is None:
        response = exchange.failed() if store_fails else exchange.committed()
    else:
        response = exchange.response
        events, times, sources = [], [], []   # aborted: nothing is stored
    return Outcome(response, events, times, sources, exchange.error)


def bearer(token: str = TOKEN) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(token: str = TOKEN, user: str = "user") -> Dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


def deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


ENCODE = {"gzip": gzip.compress, "deflate": zlib.compress, "raw-deflate": deflate_raw}


# -- protobuf encoding (Loki's push.proto has no Python package) ------------------------------

def loki_entry(seconds: int, nanos: int, line: str,
               metadata: Sequence[Tuple[str, str]] = ()) -> bytes:
    ts = (field(1, seconds, 0) if seconds else b"") + (field(2, nanos, 0) if nanos else b"")
    out = field(1, ts) + field(2, line)
    for name, value in metadata:
        out += field(3, field(1, name) + field(2, value))
    return out


def loki_push(streams: Sequence[Tuple[str, Sequence[bytes]]]) -> bytes:
    """A PushRequest: ``(labels text, [entry bytes])`` per stream."""
    return b"".join(field(1, field(1, labels) + b"".join(field(2, e) for e in entries))
                    for labels, entries in streams)


# -- OTLP through the protobuf package: requests and the reference conversion -------------------

def otlp_request(records: int = 3, *, resource: Optional[Dict[str, Any]] = None) -> Any:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import (AnyValue, ArrayValue,
                                                          InstrumentationScope, KeyValue,
                                                          KeyValueList)
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    def kv(key: str, value: AnyValue) -> KeyValue:
        return KeyValue(key=key, value=value)

    res = resource if resource is not None else {"service.name": "svc", "host.id": 7}
    res_attrs = [kv(k, AnyValue(string_value=v) if isinstance(v, str) else AnyValue(int_value=v))
                 for k, v in res.items()]
    logs = []
    for i in range(records):
        logs.append(LogRecord(
            time_unix_nano=1_796_544_182_426_450_500 + i if i % 3 != 2 else 0,
            observed_time_unix_nano=1_796_544_183_000_000_000 + i,
            severity_number=9 + i % 4, severity_text="INFO",
            body=AnyValue(kvlist_value=KeyValueList(values=[
                kv("msg", AnyValue(string_value=f"record {i} é")),
                kv("list", AnyValue(array_value=ArrayValue(values=[
                    AnyValue(int_value=-i), AnyValue(double_value=0.5), AnyValue(bool_value=True),
                    AnyValue(bytes_value=bytes([i % 256, 255])), AnyValue()]))),
            ])) if i % 2 == 0 else AnyValue(string_value=f"record {i}"),
            attributes=[kv("n", AnyValue(int_value=i)), kv("big", AnyValue(int_value=-(1 << 63)))],
            trace_id=bytes(range(16)) if i % 2 == 0 else b"\0" * 16,
            span_id=bytes(range(1, 9)), flags=1 if i % 2 == 0 else 0,
            event_name="ev" if i == 0 else ""))
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=Resource(attributes=res_attrs),
        scope_logs=[ScopeLogs(scope=InstrumentationScope(name="lib", version="1.0"),
                              log_records=logs)])])


def otlp_json(request: Any) -> bytes:
    """The request in OTLP JSON: the proto3 JSON mapping with hex trace/span ids."""
    from google.protobuf.json_format import MessageToDict
    import json

    doc = MessageToDict(request)
    for rl in doc.get("resourceLogs", []):
        for sl in rl.get("scopeLogs", []):
            for rec in sl.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in rec:
                        rec[key] = base64.b64decode(rec[key]).hex().upper()
    return json.dumps(doc).encode()


def reference_any(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which is None or which == "string_value_strindex":
        return None
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if which == "array_value":
        return [reference_any(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: reference_any(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def reference_events(request: Any, received_ns: int) -> Tuple[List[Dict[str, Any]], List[int]]:
    """What PROTOCOLS.md's mapping makes of a parsed ExportLogsServiceRequest."""
    events, times = [], []
    for rl in request.resource_logs:
        resource = {kv.key: reference_any(kv.value) for kv in rl.resource.attributes}
        for sl in rl.scope_logs:
            scope: Dict[str, Any] = {}
            if sl.scope.name:
                scope["name"] = sl.scope.name
            if sl.scope.version:
                scope["version"] = sl.scope.version
            attrs = {kv.key: reference_any(kv.value) for kv in sl.scope.attributes}
            if attrs:
                scope["attributes"] = attrs
            for rec in sl.log_records:
                ev: Dict[str, Any] = {}
                if rec.HasField("body"):
                    ev["body"] = reference_any(rec.body)
                if rec.severity_text:
                    ev["severity_text"] = rec.severity_text
                if rec.severity_number:
                    ev["severity_number"] = rec.severity_number
                a = {kv.key: reference_any(kv.value) for kv in rec.attributes}
                if a:
                    ev["attributes"] = a
                if resource:
                    ev["resource"] = resource
                if scope:
                    ev["scope"] = scope
                if len(rec.trace_id) == 16 and any(rec.trace_id):
                    ev["trace_id"] = rec.trace_id.hex()
                if len(rec.span_id) == 8 and any(rec.span_id):
                    ev["span_id"] = rec.span_id.hex()
                if rec.flags:
                    ev["flags"] = rec.flags
                if rec.event_name:
                    ev["event_name"] = rec.event_name
                if rec.time_unix_nano:
                    ev["time_unix_nano"] = rec.time_unix_nano
                if rec.observed_time_unix_nano:
                    ev["observed_time_unix_nano"] = rec.observed_time_unix_nano
                if rec.dropped_attributes_count:
                    ev["dropped_attributes_count"] = rec.dropped_attributes_count
                events.append(ev)
                t = rec.time_unix_nano if 0 < rec.time_unix_nano < 1 << 63 else \
                    rec.observed_time_unix_nano if 0 < rec.observed_time_unix_nano < 1 << 63 \
                    else received_ns
                times.append(t)
    return events, times
