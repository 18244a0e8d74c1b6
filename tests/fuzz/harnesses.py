"""Fuzz harnesses: one per codec entry point, each a ``check(data: bytes) -> None``.

Every harness asserts the codec's contract on arbitrary bytes:

* only :class:`fastingest.IngestError` escapes (any other exception is a finding);
* the compiled kernels and the pure-Python twins agree (same events, times, offsets,
  lines, or the same error type/status/message/detail/offset/line);
* a whole-body ``decode``/``split`` equals the same body streamed through
  :class:`fastingest.StreamDecoder` in fuzzer-chosen chunks.

The harnesses are plain functions: ``tests/fuzz/fuzz.py`` drives them with atheris
(coverage-guided), ``tests/fuzz/test_fuzz.py`` replays the committed seed corpus
through them on every test run.

Input layout (so seeds are readable): for the body harnesses, byte 0 holds options
(limits, ``errors``, ``raw``), byte 1 a chunk count ``n`` (mod 16), then ``n``
two-byte little-endian cut points, then the body.
"""
from __future__ import annotations

import base64
import datetime
import gzip
import math
import struct
import sys
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import msgpack
import orjson

import fastingest
from fastingest import IngestError, Limits, StreamDecoder, _kernels
from fastingest.batch import Batch, RawBatch

# The shared test helpers (tests/helpers.py), also when fuzz.py runs this file alone.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import RECEIVED, kernel_sets, same_json, using  # noqa: E402

JSON, NDJSON, MSGPACK = "application/json", "application/x-ndjson", "application/msgpack"
CTYPES = (JSON, NDJSON, MSGPACK, "application/x-msgpack")
ENCODINGS = ("gzip", "deflate", "zstd", "br")

# Small limits make the limit paths reachable by short inputs.
LIMITS = (
    Limits(),
    Limits(max_event=16, max_depth=3),
    Limits(max_event=64, max_depth=2, max_body=256),
    Limits(max_event=1 << 20, max_depth=1, max_body=4096, max_compressed=512, max_ratio=2.0),
)


class Options:
    """Decoding options and chunking, read from the head of a fuzz input."""

    def __init__(self, data: bytes, ctype: str) -> None:
        opt = data[0] if data else 0
        self.limits = LIMITS[opt & 3]
        self.raw = bool(opt & 4)
        self.errors = "collect" if (opt & 8 and ctype == NDJSON) else "raise"
        ncuts = (data[1] & 15) if len(data) > 1 else 0
        self.buffer = ((data[1] >> 4) & 3) if len(data) > 1 else 0   # how the body is passed
        head = 2 + 2 * ncuts
        cut_bytes = data[2:head]
        self.body = data[head:]
        self.cuts = sorted({int.from_bytes(cut_bytes[i:i + 2], "little") % (len(self.body) + 1)
                            for i in range(0, len(cut_bytes) - 1, 2)})


def encode_input(body: bytes, options: int = 0, cuts: Tuple[int, ...] = (), buffer: int = 0) -> bytes:
    """The fuzz input for ``body`` (the inverse of :class:`Options`; for seeds and tests)."""
    return (bytes([options, len(cuts) | (buffer << 4)]) + b"".join(c.to_bytes(2, "little") for c in cuts)
            + body)


def _batch_view(batch: Any) -> tuple:
    items = batch.raw if isinstance(batch, RawBatch) else batch.events
    return (list(items), list(batch.times_ns), list(batch.offsets),
            None if batch.lines is None else list(batch.lines), list(batch.errors))


def _error_view(exc: IngestError) -> tuple:
    return ("error", type(exc).__name__, exc.status, exc.message, exc.detail, exc.offset, exc.line)


def as_buffer(body: bytes, kind: int) -> Any:
    """``body`` as bytes, bytearray, a memoryview, or a memoryview slice of a larger buffer."""
    if kind == 1:
        return bytearray(body)
    if kind == 2:
        return memoryview(body)
    if kind == 3:
        return memoryview(b"\xff[{" + body + b"}]\n")[3:3 + len(body)]
    return body


def whole(body: bytes, ctype: str, encoding: Optional[str], opts: Options) -> tuple:
    fn = fastingest.split if opts.raw else fastingest.decode
    try:
        batch = fn(as_buffer(body, opts.buffer), ctype, content_encoding=encoding,
                   limits=opts.limits, received_ns=RECEIVED, errors=opts.errors)
    except IngestError as exc:
        return _error_view(exc)
    return ("ok",) + _batch_view(batch)


def streamed(body: bytes, ctype: str, encoding: Optional[str], opts: Options) -> tuple:
    dec = StreamDecoder(ctype, content_encoding=encoding, limits=opts.limits,
                        received_ns=RECEIVED, errors=opts.errors, raw=opts.raw)
    total = RawBatch() if opts.raw else Batch()
    try:
        for a, b in zip([0] + opts.cuts, opts.cuts + [len(body)]):
            total.extend(dec.feed(body[a:b]))
        total.extend(dec.close())
    except IngestError as exc:
        # after an error every call repeats it
        try:
            dec.close()
        except IngestError as again:
            assert again == exc, (again, exc)
        else:
            raise AssertionError("StreamDecoder.close() after an error did not raise")
        return _error_view(exc)
    return ("ok",) + _batch_view(total)


def same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to itself (MessagePack floats may be NaN)."""
    return a == b or repr(a) == repr(b)


def check_body(body: bytes, ctype: str, encoding: Optional[str], opts: Options,
               stream: bool = True) -> tuple:
    """decode/split == stream, on every kernel set, and all kernel sets agree."""
    first = None
    for kernels in kernel_sets():
        with using(kernels):
            got = whole(body, ctype, encoding, opts)
            if stream:
                chunked = streamed(body, ctype, encoding, opts)
                assert same(got, chunked) or corrupt_compressed(got, chunked), \
                    (kernels.name, "whole != streamed", got, chunked)
        if first is None:
            first = got
        else:
            assert same(first, got), ("kernels disagree", first, got)
        if got[0] == "ok" and not opts.raw and opts.errors == "raise":
            _check_times(got[1], got[2], ctype)
    assert first is not None
    return first


def corrupt_compressed(a: tuple, b: tuple) -> bool:
    """The one documented chunking dependence: with corrupt compressed data, where the
    decompressor notices the corruption depends on how the input was chunked, so the
    answer is the 400 or a fault in the bytes inflated before it (README, "Hostile
    input"). Both must still be errors, one of them the DecompressionError."""
    return a[0] == b[0] == "error" and "DecompressionError" in (a[1], b[1])


def _check_times(events: list, times: list, ctype: str) -> None:
    """Every event's time is its parseable top-level dt, else the reception time."""
    parse = _kernels.python.parse_dt
    for ev, t in zip(events, times):
        assert type(t) is int and -(2**63) <= t < 2**63
        if isinstance(ev, dict) and "dt" in ev:
            expected = parse(ev["dt"])
            assert t == (RECEIVED if expected is None else expected), (ev, t)
        else:
            assert t == RECEIVED, (ev, t)


# -- harnesses ---------------------------------------------------------------------------

def _decode_harness(ctype: str) -> Callable[[bytes], None]:
    def check(data: bytes) -> None:
        opts = Options(data, ctype)
        check_body(opts.body, ctype, None, opts)
    check.__name__ = "decode_" + ctype.rsplit("/", 1)[-1].replace("x-", "")
    return check


def _compress(encoding: str, body: bytes, level: int) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body, mtime=0)
    if encoding == "deflate":
        if level & 1:    # raw deflate
            co = zlib.compressobj(wbits=-15)
            return co.compress(body) + co.flush()
        return zlib.compress(body)
    if encoding == "zstd":
        import zstandard
        return zstandard.ZstdCompressor().compress(body)
    import brotli
    return brotli.compress(body)


def _encoded_harness(encoding: str) -> Callable[[bytes], None]:
    """Compressed bodies. Options bit 4: compress the body here (valid compressed data of
    a fuzzed body), else the body is taken as compressed bytes (corrupt streams); bits
    5-6 choose the content type."""
    def check(data: bytes) -> None:
        opt = data[0] if data else 0
        ctype = CTYPES[(opt >> 5) & 3]
        opts = Options(data, ctype)
        body = opts.body
        if opt & 16:
            body = _compress(encoding, body, opt >> 7)
            opts.cuts = sorted({c % (len(body) + 1) for c in opts.cuts})
        check_body(body, ctype, encoding, opts)
    check.__name__ = "decode_" + encoding
    return check


def check_stream(data: bytes) -> None:
    """StreamDecoder in fuzzer-chosen chunks (any format, raw or not, collect or not)."""
    opt = data[0] if data else 0
    ctype = CTYPES[(opt >> 5) & 3]
    opts = Options(data, ctype)
    check_body(opts.body, ctype, None, opts)


def check_split(data: bytes) -> None:
    """split() agrees with decode(): same errors, or the raw bytes of the same events."""
    opt = data[0] if data else 0
    ctype = CTYPES[(opt >> 5) & 3]
    opts = Options(data, ctype)
    opts.raw = True
    raw = check_body(opts.body, ctype, None, opts, stream=bool(opt & 16))
    opts.raw = False
    dec = check_body(opts.body, ctype, None, opts, stream=False)
    if raw[0] == "error" or dec[0] == "error":
        assert same(raw, dec), ("split != decode", raw, dec)
        return
    unpack = (lambda b: msgpack.unpackb(b, raw=False, strict_map_key=False, timestamp=0)) \
        if "msgpack" in ctype else _orjson_loads
    assert same([unpack(r) for r in raw[1]], dec[1]), ("split bytes != decoded events", raw, dec)
    assert raw[2:] == dec[2:], ("split times/offsets/lines != decode", raw, dec)
    for r, off in zip(raw[1], raw[3]):
        assert opts.body[off:off + len(r)] == r, "raw bytes are not the body's bytes"


def _orjson_loads(b: bytes) -> Any:
    import orjson
    return orjson.loads(b)


INT64 = (-(2**63), 2**63 - 1)


def check_parse_dt(data: bytes) -> None:
    """parse_dt never raises, returns None or an int64, and the twins agree."""
    if not data:
        values: List[Any] = [b""]
    else:
        kind, rest = data[0] % 6, data[1:]
        if kind == 0:
            values = [rest, rest.decode("latin-1")]
        elif kind == 1:
            values = [rest.decode("utf-8", "surrogatepass") if _utf8_ok(rest)
                      else rest.decode("utf-8", "replace"), bytearray(rest)]
        elif kind == 2:
            v = int.from_bytes(rest[:16], "little", signed=True)
            values = [v, v >> 1, -v, True, False]
        elif kind == 3:
            values = [struct.unpack("<d", rest[:8].ljust(8, b"\0"))[0]]
        elif kind == 4:
            sec = int.from_bytes(rest[:8], "little", signed=True)
            ns = int.from_bytes(rest[8:12], "little") % 1_000_000_000
            values = [msgpack.Timestamp(sec, ns)]
        else:
            values = [memoryview(rest), None, [rest], {"dt": rest}]
    sets = kernel_sets()
    for v in values:
        answers = []
        for k in sets:
            got = k.parse_dt(v)
            assert got is None or (type(got) is int and INT64[0] <= got <= INT64[1]), (v, got)
            answers.append(got)
        assert all(a == answers[0] for a in answers), ("parse_dt disagrees", v, answers)


def _utf8_ok(b: bytes) -> bool:
    try:
        b.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True


def check_validators(data: bytes) -> None:
    """scan_json_object / scan_msgpack_map: same end index or the same ParseError."""
    if len(data) < 2:
        return
    opt, depth_byte, buf = data[0], data[1], data[2:]
    max_depth = depth_byte % 8 + 1 if depth_byte < 200 else 128
    start = opt % 4 if opt % 4 < len(buf) else 0
    end = max(start, len(buf) - ((opt >> 2) & 3))
    name = "scan_msgpack_map" if opt & 16 else "scan_json_object"
    answers = []
    for k in kernel_sets():
        fn = getattr(k.validate, name)
        try:
            got: tuple = ("ok", fn(buf, start, end, max_depth, 7))
        except IngestError as exc:
            got = _error_view(exc)
        if got[0] == "ok":
            assert start < got[1] <= end, (name, start, end, got)
        else:
            assert got[5] is not None and 7 + start <= got[5] <= 7 + end, (name, start, end, got)
        answers.append(got)
    assert all(a == answers[0] for a in answers), (name, "validators disagree", answers)


_HEADER_CHOICES = (
    (b"content-type", b"application/json"), (b"content-type", b"application/x-ndjson"),
    (b"content-type", b"application/msgpack"), (b"content-type", b"application/vnd.x+json"),
    (b"content-type", b"text/plain"), (b"content-encoding", b"gzip"),
    (b"content-encoding", b"deflate"), (b"content-encoding", b"br, identity"),
    (b"authorization", b"Bearer tok"), (b"authorization", b"bearer  tok "),
    (b"x-samsara-publishedtimestamp", b"1672490759123"),
    (b"content-length", b"12"),
)
_ROUTES = (("POST", "/"), ("POST", "/v1/events"), ("GET", "/v1/api-status"),
           ("PUT", "/v1/api-status"), ("GET", "/"), ("POST", "/nope"), ("DELETE", "/v1/events"),
           ("POST", "/v1/events"))
_STATUSES = {200, 202, 400, 403, 404, 405, 406, 411, 413, 415, 503}


def check_exchange(data: bytes) -> None:
    """The protocols' sans-I/O exchange: any head and body give one of the documented
    responses and never an exception; both kernel sets answer the same, and so do both
    deliveries (objects; JSON text, read back: the same events as stored)."""
    from fastingest.protocols import Delivery, RawEvents, Service
    from fastingest.protocols.betterstack import BetterStack
    from fastingest.protocols.samsara import Samsara

    if len(data) < 3:
        return
    route = _ROUTES[data[0] & 7]
    nheaders = data[1] & 7
    headers = [_HEADER_CHOICES[b % len(_HEADER_CHOICES)] for b in data[2:2 + nheaders]]
    rest = data[2 + nheaders:]
    if data[1] & 8:   # one header value straight from the input
        value, _, rest = rest.partition(b"\n")
        name = _HEADER_CHOICES[(data[1] >> 4) % len(_HEADER_CHOICES)][0]
        headers.append((name, value[:64]))
    cut = (data[2] * 7) % (len(rest) + 1) if rest else 0
    chunks = [rest[:cut], rest[cut:]]
    limits = LIMITS[(data[1] >> 6) & 3]
    answers = []

    def as_stored(got: Any) -> List[Any]:
        if type(got) is RawEvents:
            assert all(b"\n" not in t and b"\r" not in t for t in got.raw), got.raw
            return [orjson.loads(t) for t in got.raw]
        return [stored_json(e) for e in got.events]

    for k, delivery in [(k, d) for k in kernel_sets()
                        for d in (Delivery(), Delivery(raw_json=True))]:
        with using(k):
            service = Service([BetterStack({"tok": "app"}, limits=limits),
                               Samsara(limits=limits)], delivery)
            ex = service.start(route[0], route[1], headers, client="127.0.0.1",
                               received_ns=RECEIVED)
            stored: List[Any] = []
            for chunk in chunks:
                if ex.response is not None:
                    break
                got = ex.feed(chunk)
                if got is not None:
                    stored.extend(as_stored(got))
            if ex.response is None:
                got = ex.end()
                if got is not None:
                    stored.extend(as_stored(got))
            if ex.response is None:
                response = ex.committed()
            else:
                response = ex.response
                stored = []
            assert response.status in _STATUSES, response
            answers.append((response.status, response.headers, response.body, repr(stored)))
    assert all(a == answers[0] for a in answers), ("protocols disagree", answers)


# -- body to stored row ------------------------------------------------------------------

_DEEP = Limits(max_depth=1000)   # beyond orjson's 254 levels: the iterative writer's path
_EPOCH_DT = datetime.datetime(1970, 1, 1)


def stored_json(value: Any) -> Any:
    """What a stored event must read back as (jsonout's rules, written independently):
    the reference for :func:`check_stored_row`."""
    if isinstance(value, dict):
        return {(base64.b64encode(k).decode() if isinstance(k, bytes) else k): stored_json(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [stored_json(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, msgpack.ExtType):
        return {"ext": value.code, "data": base64.b64encode(value.data).decode()}
    if isinstance(value, msgpack.Timestamp):
        try:
            d = _EPOCH_DT + datetime.timedelta(seconds=value.seconds)
        except OverflowError:
            return {"seconds": value.seconds, "nanoseconds": value.nanoseconds}
        return (f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:"
                f"{d.second:02d}.{value.nanoseconds:09d}Z")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def check_stored_row(data: bytes) -> None:
    """Body to stored row: every event the Better Stack exchange hands to a store is
    written by ``jsonout.dumps`` (what both stores keep) as JSON that reads back as
    :func:`stored_json` says, and ``fastingest tail``'s line around it is JSON too. The
    same body delivered as JSON text (the raw pipeline: split, MessagePack transcoded)
    gives the same answer and the same events, one line each (MessagePack: the same
    bytes). Options bits 5-6 choose the content type, bit 4 allows 1000 levels of
    nesting."""
    from fastingest.jsonout import dumps
    from fastingest.protocols import Delivery, RawEvents
    from fastingest.server.tail import line

    opt = data[0] if data else 0
    ctype = CTYPES[(opt >> 5) & 3]
    opts = Options(data, ctype)
    limits = _DEEP if opt & 16 else opts.limits
    for k in kernel_sets():
        with using(k):
            status, batches = _handed(ctype, opts, limits, Delivery())
            text_status, text_batches = _handed(ctype, opts, limits, Delivery(raw_json=True))
            assert status == text_status, (status, text_status)
            if status is not None:
                assert status in _STATUSES, status
                continue
            texts = [t for got in text_batches for t in got.raw]
            assert all(type(got) is RawEvents for got in text_batches)
            events = [(got, e, t) for got in batches for e, t in zip(got.events, got.times_ns)]
            assert len(texts) == len(events)
            assert [t for got in text_batches for t in got.times_ns] == [t for _, _, t in events]
            saved = sys.getrecursionlimit()
            sys.setrecursionlimit(max(saved, 10_000))
            try:
                for (got, event, time_ns), raw in zip(events, texts):
                    text = dumps(event)
                    expected = stored_json(event)
                    assert orjson.loads(text) == expected, (event, text)
                    assert b"\n" not in raw and b"\r" not in raw, raw
                    if ctype in (MSGPACK, CTYPES[3]):
                        assert raw == text, (raw, text)
                    else:
                        assert orjson.loads(raw) == expected, (raw, text)
                    orjson.loads(line(got.source, time_ns, got.received_ns, text))
            finally:
                sys.setrecursionlimit(saved)


def check_json_builder(data: bytes) -> None:
    """fastingest's own JSON builder (compiled only) never builds what orjson refuses
    and builds what orjson builds, or refuses (then decode asks orjson)."""
    if _kernels.cython is None:
        return
    from fastingest import _jsonbuild
    try:
        want: Any = ("ok", orjson.loads(data))
    except orjson.JSONDecodeError:
        want = None
    for entry in (_jsonbuild.loads, _jsonbuild.loads_object):
        if entry is _jsonbuild.loads_object and not (data[:1] == b"{" and data[-1:] == b"}"):
            continue
        try:
            got = entry(data)
        except ValueError:
            continue   # refused: the callers ask orjson
        assert want is not None, ("built what orjson refuses", data, got)
        assert same_json(got, want[1]), ("built differently from orjson", data, got, want[1])


def _handed(ctype: str, opts: Options, limits: Limits, delivery: Any) -> Tuple[Any, list]:
    """The Better Stack exchange fed ``opts``' body in its chunks: its early answer's
    status (None when it took the body), and the batches it handed out."""
    from fastingest.protocols import Service
    from fastingest.protocols.betterstack import BetterStack

    service = Service([BetterStack({"tok": "app"}, limits=limits)], delivery)
    ex = service.start("POST", "/", [(b"authorization", b"Bearer tok"),
                                     (b"content-type", ctype.encode())], received_ns=RECEIVED)
    batches = []
    for a, b in zip([0] + opts.cuts, opts.cuts + [len(opts.body)]):
        if ex.response is None:
            batches.append(ex.feed(opts.body[a:b]))
    if ex.response is None:
        batches.append(ex.end())
    if ex.response is not None:
        return ex.response.status, []
    return None, [got for got in batches if got is not None]


HARNESSES: Dict[str, Callable[[bytes], None]] = {
    "decode_json": _decode_harness(JSON),
    "decode_ndjson": _decode_harness(NDJSON),
    "decode_msgpack": _decode_harness(MSGPACK),
    **{f"decode_{e}": _encoded_harness(e) for e in ENCODINGS},
    "stream": check_stream,
    "split": check_split,
    "parse_dt": check_parse_dt,
    "validators": check_validators,
    "json_builder": check_json_builder,
    "exchange": check_exchange,
    "stored_row": check_stored_row,
}

# The shipper-protocol readers (OTLP, Loki, Elasticsearch _bulk, Splunk HEC).
from shipper_harnesses import SHIPPER_HARNESSES  # noqa: E402

HARNESSES.update(SHIPPER_HARNESSES)
