"""The Better Stack ingestion API (SPEC.md section 1), sans-I/O.

``POST /`` with ``Authorization: Bearer <source token>``; JSON, NDJSON or MessagePack,
optionally compressed. Every answer is ``text/plain; charset=utf-8``.

Order of checks (the first failing one answers; nothing later is looked at):

1. path ``/`` (else 404 ``Not found.``; another protocol of the service may own it),
   method ``POST`` (else 405 ``Method not allowed.`` with ``Allow: POST``);
2. the token: missing, malformed or unknown → 403 ``Unauthorized``. Authentication
   comes first so that a caller without a valid token learns nothing about what the
   endpoint accepts, and no body is read for it;
3. ``Content-Type`` → 415 (the codec's message naming the accepted types), then
   ``Content-Encoding`` → 415 (the codec's message naming the accepted codings);
4. ``Content-Length`` over ``max_compressed`` (a coding declared) or ``max_body``
   (none) → 413 ``payload reached size limit`` before any byte is read;
5. the body, as it streams: the first fault in body order wins — 406 ``Couldn't
   parse JSON content.``, 413 ``payload reached size limit`` (body, compressed body
   or one event over its limit, including a chunked body cut off at the limit),
   400 for corrupt or truncated compressed data;
6. 202 with an empty body, only once the store committed every event of the request
   (503 ``Service unavailable.`` with ``Retry-After`` if it could not).

When the server's :class:`~fastingest.protocols.Delivery` asks for JSON text, the body
is split instead of decoded (the same validation, limits and answers): each event is
handed over as its JSON text (:mod:`fastingest.storedjson`: JSON and NDJSON as sent,
MessagePack transcoded), with its time from a shallow read of its ``dt``.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from ..errors import IngestError, PayloadTooLarge
from ..limits import DEFAULT_LIMITS, Limits
from ..storedjson import json_text
from ..stream import StreamDecoder
from . import (Answer, DecodingExchange, EventBatch, Events, Exchange, Protocol, RawEvents,
               Request, Response, bearer_token, declared_too_large, text_response)

UNAUTHORIZED = "Unauthorized"
ACCEPTED = text_response(202, "")
FORBIDDEN = text_response(403, UNAUTHORIZED)
METHOD_NOT_ALLOWED = text_response(405, "Method not allowed.", (b"allow", b"POST"))
UNAVAILABLE = text_response(503, "Service unavailable.", (b"retry-after", b"1"))


def error_response(exc: IngestError) -> Response:
    """The exact Better Stack answer for a codec error: its status and message."""
    return text_response(exc.status, exc.message)


class BetterStack(Protocol):
    """``POST /`` of the Better Stack API.

    ``tokens`` maps each accepted source token to the source name its events are
    stored under (several tokens may share a source, e.g. while rotating one).
    """

    name = "betterstack"

    def __init__(self, tokens: Mapping[str, str], limits: Limits = DEFAULT_LIMITS) -> None:
        self.tokens = dict(tokens)
        self.limits = limits

    def start(self, request: Request) -> Optional[Exchange]:
        if request.path != "/":
            return None
        if request.method != "POST":
            return Answer(METHOD_NOT_ALLOWED)
        token = bearer_token(request)
        source = self.tokens.get(token) if token is not None else None
        if source is None:
            return Answer(FORBIDDEN)
        delivery = request.delivery
        try:
            decoder = StreamDecoder(
                request.header(b"content-type"),
                content_encoding=request.header(b"content-encoding"),
                limits=self.limits, received_ns=request.received_ns,
                raw=delivery.raw_json, piece_size=delivery.piece_size)
        except IngestError as exc:   # 415: Content-Type, then Content-Encoding
            return _failed(exc)
        if declared_too_large(request, self.limits):
            return _failed(PayloadTooLarge(detail="declared Content-Length over the limit"))
        return BetterStackExchange(source, decoder, request.received_ns)


def _failed(exc: IngestError) -> Answer:
    answer = Answer(error_response(exc))
    answer.error = exc
    return answer


class BetterStackExchange(DecodingExchange):
    """One accepted-so-far ``POST /``: streams the body through the codec (split, when
    the decoder is raw: the events go to the store as JSON text)."""

    UNAVAILABLE = UNAVAILABLE

    def __init__(self, source: str, decoder: StreamDecoder, received_ns: int) -> None:
        super().__init__(source, decoder, received_ns)
        self._text = json_text(decoder.kind) if decoder.raw else None

    def committed(self) -> Response:
        self._check_done()
        return ACCEPTED

    def _batch(self, batch: Any) -> Optional[EventBatch]:
        if not batch:
            return None
        if self._text is not None:
            return RawEvents(self.source, self._text(batch.raw), batch.times_ns, self.received_ns)
        return Events(self.source, batch.events, batch.times_ns, self.received_ns)

    def _error_response(self, exc: IngestError) -> Response:
        return error_response(exc)


__all__ = ["ACCEPTED", "BetterStack", "BetterStackExchange", "UNAUTHORIZED", "error_response"]
