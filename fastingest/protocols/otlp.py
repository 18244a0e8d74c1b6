"""OpenTelemetry OTLP/HTTP logs (PROTOCOLS.md §1), sans-I/O.

``POST /v1/logs`` (also ``/otlp/v1/logs``, the path Loki 3 serves OTLP on), protobuf
(``application/x-protobuf``) or OTLP JSON (``application/json``), as the OpenTelemetry
SDK exporters and the Collector's ``otlphttp`` exporter send it.

Order of checks (the first failing one answers):

1. path, then method ``POST`` → else 405 ``text/plain``
   ``405 method not allowed, supported: [POST]`` (the Collector's text);
2. ``Authorization`` (``Bearer <token>``; ``Basic`` with the token as password also
   works): missing → 401, unknown → 403, each a ``google.rpc.Status`` in the request's
   encoding (protobuf when the Content-Type is unusable);
3. ``Content-Type`` → 415 ``text/plain`` ``415 unsupported media type, supported:
   [application/json, application/x-protobuf]``;
4. ``Content-Encoding`` (gzip, deflate zlib-wrapped or raw, zstd, br) → else 400;
   ``Content-Length`` over the limit → 413;
5. the body, read whole (at most ``max_body`` decompressed: 413 past it, as it
   arrives), then walked in bounded batches: undecodable protobuf or JSON, a bad hex id,
   corrupt compression → 400 (Status code 3); a record over ``max_event`` → 413;
6. 200 once the store committed, with the request's Content-Type and an empty
   ``ExportLogsServiceResponse``: 0 bytes in protobuf, ``{}`` in JSON (a request with
   no records is a success too). A store failure is 503 + ``Retry-After`` (retried by
   the exporters, unlike a 500).

Error bodies are ``google.rpc.Status{code, message}`` with the Collector's codes: 400→3,
401→16, 403→7, 413→2 (its "else"), 503→14.
"""
from __future__ import annotations

from typing import Mapping, Optional, Tuple

import orjson

from ..errors import IngestError, PayloadTooLarge
from ..formats import media_type
from ..constants import MiB
from ..limits import Limits
from ..otlpjson import OtlpJson
from ..shipping import BATCH_BYTES, RecordBatches, encode_field
from ..wholebody import WholeBody
from .. import _kernels
from . import Answer, Exchange, Protocol, Request, Response, declared_too_large
from .auth import read_credentials
from .batched import WholeBodyExchange, answer_with

PATHS = ("/v1/logs", "/otlp/v1/logs")
PROTOBUF = "application/x-protobuf"
JSON = "application/json"

#: OTLP's recommended limit (64 MiB, also the Python exporter's largest request),
#: compressed or not; one log record up to 10 MiB (the Collector has no per-record
#: limit: raise it with ``--max-event otlp=SIZE``).
DEFAULT_LIMITS = Limits(max_body=64 * MiB, max_compressed=64 * MiB, max_event=10 * MiB)

_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 12, 429: 8, 502: 14, 503: 14, 504: 14}
_TEXT = (b"content-type", b"text/plain; charset=utf-8")

METHOD_NOT_ALLOWED = Response(405, (_TEXT, (b"allow", b"POST")),
                              b"405 method not allowed, supported: [POST]")
UNSUPPORTED_TYPE = Response(
    415, (_TEXT,), b"415 unsupported media type, supported: [application/json, "
                   b"application/x-protobuf]")


def status_body(code: int, message: str, encoding: str) -> bytes:
    """A ``google.rpc.Status`` in protobuf or JSON."""
    if encoding == JSON:
        return orjson.dumps({"code": code, "message": message})
    return (encode_field(1, code, 0) if code else b"") + \
        (encode_field(2, message) if message else b"")


def status_response(status: int, message: str, encoding: str,
                    *extra: Tuple[bytes, bytes]) -> Response:
    """An OTLP error answer: a Status with the Collector's code for ``status``."""
    code = _GRPC_CODES.get(status, 2)
    return Response(status, ((b"content-type", encoding.encode("latin-1")),) + extra,
                    status_body(code, message, encoding))


def partial_success_body(rejected: int, message: str, encoding: str) -> bytes:
    """An ``ExportLogsServiceResponse`` reporting rejected records (0: empty)."""
    if not rejected and not message:
        return b"{}" if encoding == JSON else b""
    if encoding == JSON:
        inner = {"rejectedLogRecords": str(rejected)} if rejected else {}
        if message:
            inner["errorMessage"] = message
        return orjson.dumps({"partialSuccess": inner})
    inner_b = (encode_field(1, rejected, 0) if rejected else b"") + \
        (encode_field(2, message) if message else b"")
    return encode_field(1, inner_b)


def _message(exc: IngestError) -> str:
    detail = exc.detail or exc.message
    return f"{detail} (at byte {exc.offset})" if exc.offset is not None else detail


class Otlp(Protocol):
    """OTLP/HTTP logs. ``tokens`` maps each accepted token to its source."""

    name = "otlp"

    def __init__(self, tokens: Mapping[str, str], limits: Limits = DEFAULT_LIMITS) -> None:
        self.tokens = dict(tokens)
        self.limits = limits

    def start(self, request: Request) -> Optional[Exchange]:
        if request.path not in PATHS:
            return None
        if request.method != "POST":
            return Answer(METHOD_NOT_ALLOWED)
        kind = media_type(request.header(b"content-type"))
        encoding = kind if kind in (PROTOBUF, JSON) else PROTOBUF
        credentials = read_credentials(request)
        if not credentials.present:
            return Answer(status_response(401, "missing authorization token", encoding))
        source = credentials.source(self.tokens, ("bearer", "basic"))
        if source is None:
            return Answer(status_response(403, "invalid authorization token", encoding))
        if kind not in (PROTOBUF, JSON):
            return Answer(UNSUPPORTED_TYPE)
        try:
            body = WholeBody(request.header(b"content-encoding"), self.limits)
        except IngestError as exc:
            return _failed(exc, encoding, 400)
        if declared_too_large(request, self.limits):
            return _failed(PayloadTooLarge(detail="declared Content-Length over the limit"),
                           encoding)
        return OtlpExchange(source, request.received_ns, body, kind, self.limits,
                            request.delivery.piece_size)


def _failed(exc: IngestError, encoding: str, status: Optional[int] = None) -> Answer:
    return answer_with(status_response(status or exc.status, _message(exc), encoding), exc)


class OtlpExchange(WholeBodyExchange):
    """One ``POST /v1/logs``: collect the body, then hand out its records in batches."""

    def __init__(self, source: str, received_ns: int, body: WholeBody, encoding: str,
                 limits: Limits, piece_size: int = BATCH_BYTES) -> None:
        super().__init__(source, received_ns, body, piece_size)
        self.encoding = encoding
        self.limits = limits
        self.UNAVAILABLE = status_response(503, "service unavailable", encoding,
                                           (b"retry-after", b"1"))

    def _reader(self, body: bytearray) -> RecordBatches:
        limits = self.limits
        if self.encoding == JSON:
            return OtlpJson(body, self.received_ns, limits.max_event, limits.max_depth)
        reader: RecordBatches = _kernels.active.protobuf.OtlpLogs(
            body, self.received_ns, limits.max_event, limits.max_depth)
        return reader

    def _success(self) -> Response:
        return Response(200, ((b"content-type", self.encoding.encode("latin-1")),),
                        partial_success_body(0, "", self.encoding))

    def _error_response(self, exc: IngestError) -> Response:
        status = exc.status if exc.status in (400, 413) else 400
        return status_response(status, _message(exc), self.encoding)

    def timed_out(self) -> Response:
        self.response = status_response(408, "request timeout", self.encoding,
                                         (b"connection", b"close"))
        return self.response


__all__ = ["DEFAULT_LIMITS", "Otlp", "OtlpExchange", "PATHS", "partial_success_body",
           "status_body", "status_response"]
