"""Grafana Loki push (PROTOCOLS.md §3), sans-I/O: what Promtail, Alloy, Fluent Bit's
``loki`` output, Vector and python-logging-loki send.

``POST /loki/api/v1/push`` and the legacy ``POST /api/prom/push``. Every error is Go's
``http.Error``: ``text/plain; charset=utf-8``, ``X-Content-Type-Options: nosniff``, the
message and a newline.

Order of checks:

1. method ``POST`` → else 405 ``method not allowed``;
2. credentials: ``Basic`` with the token as password (how gateways such as Grafana
   Cloud's take them) or ``Bearer <token>``: missing → 401 ``no credentials``, unknown →
   403 ``invalid credentials`` (Loki itself checks none). ``X-Scope-OrgID``, when sent,
   is kept in each event as ``tenant``;
3. ``Content-Type``: none or unparseable → 400 ``mime: no media type``;
   ``application/json`` → JSON (v1 or v0 streams), any other type → snappy block
   compressed protobuf; ``Content-Encoding`` empty, ``snappy`` (a no-op), ``gzip`` or
   ``deflate`` (raw or zlib-wrapped) → else 400 ``Content-Encoding "X" not supported``;
   ``Content-Length`` over ``max_compressed`` → 413;
4. the body, read whole (at most ``max_body`` decompressed, snappy's declared length
   checked before decoding) → 413 ``request body too large: message size too large than
   max (N vs M)``; any parse error → 400 with its reason; a line over ``max_event``
   bytes → 400 ``max entry size '262144' bytes exceeded for stream '{...}' while adding
   an entry with length 'N' bytes``, a stream's labels over it likewise; no stream at
   all → 422 ``error at least one valid stream is required for ingestion`` (Loki >= 3.4);
5. 204 with no body once the store committed (python-logging-loki accepts nothing
   else); a store failure is 503 ``circuit breaker open, request denied``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Union

from .. import _kernels
from ..compression import SUPPORTED_ENCODINGS
from ..errors import IngestError, PayloadTooLarge
from ..formats import media_type
from ..constants import MiB
from ..limits import Limits
from ..lokiformat import (LokiJson, NO_STREAMS, bad_request, labels_too_long, line_too_long,
                          parse_labels, render_labels)
from ..shipping import BATCH_BYTES, RecordBatches
from ..snappy import decompress_block
from ..wholebody import WholeBody
from . import Answer, Exchange, Protocol, Request, Response, declared_too_large
from .auth import read_credentials
from .batched import WholeBodyExchange

PATHS = ("/loki/api/v1/push", "/api/prom/push")
TENANT_HEADER = b"x-scope-orgid"

#: Loki's ``distributor.max-recv-msg-size`` (100 MiB) for the received body; the decoded
#: body is held whole while it is walked, so it is capped at 100 MiB too (Loki allows
#: 50x the received size); one line up to ``max_line_size``, 256 KiB.
DEFAULT_LIMITS = Limits(max_body=100 * MiB, max_compressed=100 * MiB, max_event=256 * 1024)

_ENCODINGS = ("gzip", "deflate")


def text_error(status: int, message: str, *extra: "tuple[bytes, bytes]") -> Response:
    """Go's ``http.Error``."""
    return Response(status, ((b"content-type", b"text/plain; charset=utf-8"),
                             (b"x-content-type-options", b"nosniff")) + extra,
                    (message + "\n").encode("utf-8"))


NO_CONTENT = Response(204, (), b"")
METHOD_NOT_ALLOWED = text_error(405, "method not allowed", (b"allow", b"POST"))
UNAVAILABLE = text_error(503, "circuit breaker open, request denied", (b"retry-after", b"1"))


def _codings(value: Optional[str]) -> Union[str, Response]:
    """The Content-Encoding for the body decoder, or the 400 answer."""
    if value is None or not value.strip() or value.strip().lower() == "snappy":
        return ""
    name = value.strip().lower()
    if name not in _ENCODINGS or name not in SUPPORTED_ENCODINGS:
        return text_error(400, f'Content-Encoding "{value.strip()}" not supported')
    return name


class Loki(Protocol):
    """Loki's push API. ``tokens`` maps each accepted token to its source."""

    name = "loki"

    def __init__(self, tokens: Mapping[str, str], limits: Limits = DEFAULT_LIMITS) -> None:
        self.tokens = dict(tokens)
        self.limits = limits

    def start(self, request: Request) -> Optional[Exchange]:
        if request.path not in PATHS:
            return None
        if request.method != "POST":
            return Answer(METHOD_NOT_ALLOWED)
        credentials = read_credentials(request)
        if not credentials.present:
            return Answer(text_error(401, "no credentials"))
        source = credentials.source(self.tokens, ("basic", "bearer"))
        if source is None:
            return Answer(text_error(403, "invalid credentials"))
        kind = media_type(request.header(b"content-type"))
        if not kind or "/" not in kind:
            return Answer(text_error(400, "mime: no media type"))
        coding = _codings(request.header(b"content-encoding"))
        if isinstance(coding, Response):
            return Answer(coding)
        if declared_too_large(request, self.limits):
            declared = request.header(b"content-length") or "0"
            return Answer(text_error(413, too_large_text(
                int(declared), self.limits.max_compressed, False)))
        body = WholeBody(coding or None, self.limits)
        return LokiExchange(source, request.received_ns, body, kind == "application/json",
                            self.limits, request.header(TENANT_HEADER), bool(coding),
                            request.delivery.piece_size)


def too_large_text(size: int, limit: int, decompressed: bool) -> str:
    what = "decompressed message" if decompressed else "message"
    return f"request body too large: {what} size too large than max ({size} vs {limit})"


class LokiExchange(WholeBodyExchange):
    """One push: collect the body, then hand out its entries in batches."""

    UNAVAILABLE = UNAVAILABLE

    def __init__(self, source: str, received_ns: int, body: WholeBody, json: bool,
                 limits: Limits, tenant: Optional[str], encoded: bool,
                 piece_size: int = BATCH_BYTES) -> None:
        super().__init__(source, received_ns, body, piece_size)
        self._json = json
        self.limits = limits
        self.tenant = tenant or None
        self._encoded = encoded

    def _reader(self, body: bytearray) -> RecordBatches:
        limits = self.limits
        if self._json:
            return LokiJson(body, self.received_ns, limits.max_event, limits.max_depth)
        proto = decompress_block(body, limits.max_body)
        del body   # the compressed body: not kept while the entries are walked
        reader: RecordBatches = _kernels.active.protobuf.LokiPush(
            proto, self.received_ns, limits.max_event, parse_labels, self._line_too_long,
            lambda size: labels_too_long(size, limits.max_event))
        return reader

    def _events(self, events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        if self.tenant is not None:
            for event in events:
                event["tenant"] = self.tenant
        return events

    def _walked(self, reader: Any) -> None:
        if not reader.streams:
            raise bad_request(NO_STREAMS, 422)

    def _line_too_long(self, stream: str, size: int) -> IngestError:
        try:
            shown = render_labels(parse_labels(stream))
        except IngestError:
            shown = stream
        return line_too_long(shown, size, self.limits.max_event)

    def _success(self) -> Response:
        return NO_CONTENT

    def _error_response(self, exc: IngestError) -> Response:
        if isinstance(exc, PayloadTooLarge):
            return text_error(413, too_large_text(
                self._body.size if exc.offset is None else exc.offset + 1,
                self.limits.max_body if (self._encoded or not self._json)
                else self.limits.max_compressed,
                self._encoded or not self._json))
        if exc.status in (400, 422) and exc.detail == exc.message:
            return text_error(exc.status, exc.message)
        where = f" at byte {exc.offset}" if exc.offset is not None else ""
        return text_error(400, f"{exc.detail or exc.message}{where}")

    def timed_out(self) -> Response:
        self.response = text_error(408, "request timeout", (b"connection", b"close"))
        return self.response


__all__ = ["DEFAULT_LIMITS", "Loki", "LokiExchange", "PATHS", "text_error"]
