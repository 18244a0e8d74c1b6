"""Helpers shared by every kind of test: paths, the kernel sets, hypothesis strategies and
encoders for bodies of every format, framing-level runs, decompression bombs built
without allocating what they inflate to, and the shipper protocols' requests as the real
clients build them (with a reference conversion through the ``protobuf`` package and a
sans-I/O runner).

(End-to-end tests have their own process helpers in ``tests/e2e/servers.py``; the fuzz
harnesses are in ``tests/fuzz/harnesses.py``.)
"""
from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import json
import math
import random
import zlib
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import msgpack
from hypothesis import strategies as st

from fastingest import _kernels
from fastingest.constants import MiB  # the tests take it from here too
from fastingest.protocols import Events, Response, Service
from fastingest.protocols.elasticsearch import Elasticsearch
from fastingest.protocols.loki import Loki
from fastingest.protocols.otlp import Otlp
from fastingest.protocols.splunk import Splunk
from fastingest.shipping import encode_field as field, encode_varint as varint

#: The repository (source tree) root.
ROOT = Path(__file__).resolve().parent.parent
#: The fuzz harnesses' folder (``tests/fuzz``).
FUZZ = ROOT / "tests" / "fuzz"
#: A fixed reception time (int64 ns), so that event times are comparable.
RECEIVED = 1_700_000_000_123_456_789


# -- the kernel sets --------------------------------------------------------------------------

def kernel_sets() -> List[_kernels.Kernels]:
    """The kernel sets to compare: (cython, python), or python alone without the extension."""
    return [k for k in (_kernels.cython, _kernels.python) if k is not None]


@contextlib.contextmanager
def using(kernels: _kernels.Kernels) -> Iterator[_kernels.Kernels]:
    """Make ``kernels`` the active set for the public API inside the block."""
    saved = _kernels.active
    _kernels.active = kernels
    try:
        yield kernels
    finally:
        _kernels.active = saved


# -- framing, chunk by chunk ------------------------------------------------------------------

def scan(scanner, body: bytes, cuts=()) -> Tuple[list, list, Optional[tuple]]:
    """Feed ``body`` to ``scanner`` cut at ``cuts``, then finish it: ``(events, line_errors,
    error)`` with events as ``(offset, bytes, line)`` and the error as ``(type name,
    status, detail, offset, line)`` (or None)."""
    events: list = []
    line_errors: list = []
    points = sorted(set(c for c in cuts if 0 < c < len(body)))
    for a, b in zip([0] + points, points + [len(body)]):
        frames = scanner.feed(body[a:b])
        lines = frames.line_numbers()
        events += list(zip(frames.offsets(), frames.raw(), lines if lines is not None else [None] * len(frames)))
        line_errors += frames.line_errors
        if frames.error is not None:
            return events, line_errors, error_tuple(frames.error)
    frames = scanner.finish()
    line_errors += frames.line_errors
    return events, line_errors, error_tuple(frames.error)


def lifecycle(scanner, body: bytes) -> List[str]:
    """The states ``scanner`` passes through when ``body`` is fed one byte at a time and
    then finished (each state once per stay)."""
    seen = [scanner.state]
    for i in range(len(body)):
        scanner.feed(body[i:i + 1])
        if scanner.state != seen[-1]:
            seen.append(scanner.state)
    scanner.finish()
    if scanner.state != seen[-1]:
        seen.append(scanner.state)
    return seen


def every_cut(body: bytes) -> Iterator[Tuple[int, ...]]:
    """Every way to cut ``body`` in two, then in three at a few spots (chunk boundaries)."""
    n = len(body)
    for a in range(1, n):
        yield (a,)
    for a in range(1, n, max(1, n // 7)):
        for b in range(a + 1, n, max(1, n // 5)):
            yield (a, b)


def error_tuple(error) -> Optional[tuple]:
    """An IngestError as a comparable tuple (None stays None)."""
    if error is None:
        return None
    return type(error).__name__, error.status, error.detail, error.offset, error.line


# -- bodies -----------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
events = st.dictionaries(st.text(max_size=10), json_values, max_size=6)
event_lists = st.lists(events, max_size=8)

WS = [b"", b" ", b"\t", b"\r\n", b"\n", b"  \n\t"]
LINE_WS = [b"", b" ", b"\t", b"\r"]


def dump_json(value, rnd: random.Random, ws=WS) -> bytes:
    """JSON text with random insignificant whitespace and random escaping."""
    w = lambda: rnd.choice(ws)  # noqa: E731
    if isinstance(value, dict):
        items = [w() + _scalar(k, rnd) + w() + b":" + w() + dump_json(v, rnd, ws) + w() for k, v in value.items()]
        return b"{" + (b",".join(items) if items else w()) + b"}"
    if isinstance(value, list):
        items = [w() + dump_json(v, rnd, ws) + w() for v in value]
        return b"[" + (b",".join(items) if items else w()) + b"]"
    return _scalar(value, rnd)


def _scalar(value, rnd: random.Random) -> bytes:
    return json.dumps(value, ensure_ascii=rnd.random() < 0.5).encode()


def json_array_body(evs, rnd: random.Random) -> bytes:
    return rnd.choice(WS) + dump_json(evs, rnd) + rnd.choice(WS)


def json_object_body(ev, rnd: random.Random) -> bytes:
    return rnd.choice(WS) + dump_json(ev, rnd) + rnd.choice(WS)


def ndjson_body(evs, rnd: random.Random) -> bytes:
    out = []
    for ev in evs:
        for _ in range(rnd.randrange(3) if rnd.random() < 0.3 else 0):
            out.append(rnd.choice(LINE_WS) + b"\n")      # blank / whitespace-only lines
        out.append(rnd.choice(LINE_WS) + dump_json(ev, rnd, LINE_WS) + rnd.choice(LINE_WS)
                   + rnd.choice([b"\n", b"\r\n"]))
    body = b"".join(out)
    if body and rnd.random() < 0.3:
        body = body.rstrip(b"\r\n")                       # no newline after the last line
    return body


def msgpack_body(evs, single: bool = False) -> bytes:
    return msgpack.packb(evs[0] if single else evs, use_bin_type=True)


JSON, NDJSON, MSGPACK = "application/json", "application/x-ndjson", "application/msgpack"


def valid_bodies(evs, rnd: random.Random) -> List[Tuple[str, bytes]]:
    """The events as every valid body shape: JSON array, NDJSON, MessagePack array, and
    (with at least one event) a JSON object and a MessagePack map of the first."""
    out = [(JSON, json_array_body(evs, rnd)), (NDJSON, ndjson_body(evs, rnd)),
           (MSGPACK, msgpack_body(evs))]
    if evs:
        out += [(JSON, json_object_body(evs[0], rnd)), (MSGPACK, msgpack_body(evs, single=True))]
    return out


def same_json(a: Any, b: Any) -> bool:
    """Equal JSON values of the same types all the way down (int vs float, -0.0, key
    order), walked without recursion: a fuzzed value may nest 1000 deep."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if type(x) is not type(y):
            return False
        if type(x) is dict:
            if list(x) != list(y):
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif type(x) is list:
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y))
        elif type(x) is float:
            if x != y or math.copysign(1.0, x) != math.copysign(1.0, y):
                return False
        elif x != y:
            return False
    return True


def mutate(body: bytes, rnd: random.Random) -> bytes:
    """A random corruption of a valid body: flips, insertions, deletions, cuts, splices."""
    b = bytearray(body)
    for _ in range(rnd.randrange(1, 4)):
        op = rnd.randrange(5)
        pos = rnd.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] ^= 1 << rnd.randrange(8)
        elif op == 1:
            b[pos:pos] = bytes([rnd.choice(b'{}[]",:\\\n\r 0a\x00\xff\xc3\xc1\x80\x90\xdd')])
        elif op == 2 and b:
            del b[pos:pos + rnd.randrange(1, 4)]
        elif op == 3:
            del b[pos:]
        else:
            b[pos:pos] = body[rnd.randrange(len(body) + 1):][: rnd.randrange(8)]
    return bytes(b)


# -- decompression bombs ----------------------------------------------------------------------

GiB = 1024 * MiB
CRC32_OF_1GIB_ZEROS = 0x5B64C2B0  # zlib.crc32 over 2**30 zero bytes


@functools.lru_cache(maxsize=None)
def raw_deflate_fill(mib: int, fill: int = 0, prefix: bytes = b"") -> bytes:
    """A raw deflate stream of ``prefix`` then ``mib`` MiB of ``fill`` bytes: after a full
    flush the compressor starts afresh, so every 1 MiB block compresses identically."""
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes([fill]) * MiB) + c.flush(zlib.Z_FULL_FLUSH)
    return head + block * mib + c.flush()


def raw_deflate_zeros(mib: int) -> bytes:
    return raw_deflate_fill(mib)


def gzip_bomb(mib: int, crc: int, fill: int = 0, prefix: bytes = b"") -> bytes:
    """gzip of ``prefix`` + ``mib`` MiB of ``fill`` (``crc`` is the trailer's CRC-32;
    a decoder that stops at its limit never reads it)."""
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    size = (len(prefix) + mib * MiB) % (1 << 32)
    return header + raw_deflate_fill(mib, fill, prefix) + crc.to_bytes(4, "little") + \
        size.to_bytes(4, "little")


def zlib_bomb(mib: int, fill: int = 0, prefix: bytes = b"") -> bytes:
    data_len = len(prefix) + mib * MiB
    adler = 1 if fill or prefix else (((data_len % 65521) << 16) | 1)  # exact for zeros only
    return b"\x78\xda" + raw_deflate_fill(mib, fill, prefix) + adler.to_bytes(4, "big")


def zstd_header(window_descriptor: int) -> bytes:
    return (0xFD2FB528).to_bytes(4, "little") + bytes([0x00, window_descriptor])


def rle_block(size: int, last: bool, byte: int = 0) -> bytes:
    return (int(last) | (1 << 1) | (size << 3)).to_bytes(3, "little") + bytes([byte])


def raw_block(content: bytes, last: bool) -> bytes:
    return (int(last) | (0 << 1) | (len(content) << 3)).to_bytes(3, "little") + content


def zstd_bomb(mib: int, fill: int = 0, prefix: bytes = b"") -> bytes:
    """A frame of RLE blocks: 4 bytes for every 128 KiB of ``fill``."""
    blocks = mib * 8
    head = raw_block(prefix, False) if prefix else b""
    return zstd_header(7 << 3) + head + rle_block(128 * 1024, False, fill) * (blocks - 1) + \
        rle_block(128 * 1024, True, fill)


@functools.lru_cache(maxsize=None)
def br_bomb(mib: int, fill: int = 0, prefix: bytes = b"") -> bytes:
    import brotli

    c = brotli.Compressor(quality=1)
    block = bytes([fill]) * MiB
    return b"".join([c.process(prefix)] + [c.process(block) for _ in range(mib)] + [c.finish()])


# -- bombs of tiny events: 1 GiB of a short pattern, in each encoding ------------------

#: One tiny event per pattern, per content type (each length divides 1 MiB).
TINY_EVENTS = {
    "application/x-ndjson": (b"", b'{"a":1}\n'),
    "application/json": (b"[", b'{"a":1},'),
    "application/msgpack": (b"\xdd\xff\xff\xff\xff", b"\x81\xa1a\x01"),   # array32
}


@functools.lru_cache(maxsize=None)
def _pattern_block(pattern: bytes) -> bytes:
    assert MiB % len(pattern) == 0
    return pattern * (MiB // len(pattern))


@functools.lru_cache(maxsize=None)
def tiny_event_bomb(encoding: str, content_type: str = "application/x-ndjson",
                    mib: int = 1024) -> bytes:
    """``mib`` MiB of one tiny event repeated, compressed with ``encoding`` (gzip,
    deflate, zstd or br) without allocating what it inflates to."""
    head, pattern = TINY_EVENTS[content_type]
    block = _pattern_block(pattern)
    if encoding in ("gzip", "deflate"):
        c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
        body = first + (c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)) * mib + c.flush()
        crc, adler = zlib.crc32(head), zlib.adler32(head)
        for _ in range(mib):   # valid trailers: a body within the limits decodes
            crc, adler = zlib.crc32(block, crc), zlib.adler32(block, adler)
        if encoding == "deflate":   # zlib-wrapped
            return b"\x78\xda" + body + adler.to_bytes(4, "big")
        size = (len(head) + mib * MiB) % (1 << 32)
        return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body + crc.to_bytes(4, "little")
                + size.to_bytes(4, "little"))
    if encoding == "zstd":
        import zstandard

        z = zstandard.ZstdCompressor(level=1)
        return (z.compress(head) if head else b"") + z.compress(block) * mib
    if encoding == "br":
        import brotli

        c = brotli.Compressor(quality=1)
        return b"".join([c.process(head)] + [c.process(block) for _ in range(mib)] + [c.finish()])
    raise ValueError(encoding)


# -- shipper-protocol requests ------------------------------------------------------------------

TOKEN = "tok-1"
TOKENS = {TOKEN: "app", "tok-2": "web"}


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
