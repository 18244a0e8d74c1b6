"""Splunk HTTP Event Collector (PROTOCOLS.md §4), sans-I/O: what splunk-handler, Fluent
Bit's ``splunk`` output, Vector's ``splunk_hec_logs`` and the OTel Collector's
``splunk_hec`` exporter send.

Routes: ``POST /services/collector/event`` (also ``/event/1.0`` and
``/services/collector``), ``POST /services/collector/raw`` (``/raw/1.0``),
``GET /services/collector/health`` (``/1.0``), and ``/services/collector/ack`` (14:
indexer acknowledgment is not offered). Every answer is
``{"text": ..., "code": n}`` with ``Content-Type: application/json; charset=UTF-8``.

Order of checks on event and raw posts:

1. method ``POST`` → else 405;
2. credentials: ``Authorization: Splunk <token>`` or ``Basic`` (token as password), or
   ``?token=`` when ``query_token`` is allowed (else 400 code 16). No credentials → 401
   code 2; another scheme or a malformed header → 401 code 3; unknown token → 403
   code 4;
3. ``Content-Type`` is ignored (splunk-handler sends none); ``Content-Encoding`` gzip
   (and the codec's others) → else 400 code 6; ``Content-Length`` over the limit → 413;
4. the body, as it streams (:mod:`fastingest.hec`): not JSON or not an object → 400
   code 6 with ``invalid-event-number``; no ``event`` → 12; blank ``event`` → 13;
   nested ``fields`` → 15; an ``index`` outside ``indexes`` (when set) → 400 code 7;
   no event at all → 400 code 5; over a size limit → 413 ``{"text":"Content too
   large"}``;
5. 200 ``{"text":"Success","code":0}`` once the store committed; a store failure is 503
   code 9 (splunk-handler retries it).

Splunk indexes the events before a bad one; fastingest stores none of the request and
gives the same answer, so the client resends or drops the whole batch.
"""
from __future__ import annotations

from typing import Any, Dict, FrozenSet, Iterator, Mapping, Optional, Tuple
from urllib.parse import parse_qs

import orjson

from ..errors import IngestError, PayloadTooLarge
from ..hec import CODES, HecError, HecEventReader, HecRawReader, event_time
from ..constants import MiB
from ..limits import Limits
from . import Answer, Events, Exchange, Protocol, Request, Response, declared_too_large
from .auth import read_credentials
from .batched import BatchedExchange, answer_with

EVENT_PATHS = ("/services/collector/event", "/services/collector/event/1.0",
               "/services/collector")
RAW_PATHS = ("/services/collector/raw", "/services/collector/raw/1.0")
HEALTH_PATHS = ("/services/collector/health", "/services/collector/health/1.0")
ACK_PATHS = ("/services/collector/ack", "/services/collector/ack/1.0")

#: Splunk's ``max_content_length`` (800 MB) for the body; events stream, so only one
#: event (at most 10 MiB) is held at a time.
DEFAULT_LIMITS = Limits(max_body=800 * MiB, max_compressed=800 * MiB, max_event=10 * MiB)

_TYPE = (b"content-type", b"application/json; charset=UTF-8")


def hec_response(code: int, *extra: Tuple[bytes, bytes], **more: Any) -> Response:
    status, text = CODES[code]
    return Response(status, (_TYPE,) + extra, orjson.dumps({"text": text, "code": code, **more}))


def error_response(exc: IngestError) -> Response:
    """The HEC answer for a body fault."""
    if isinstance(exc, HecError):
        if exc.event_number is not None:
            return hec_response(exc.code, **{"invalid-event-number": exc.event_number})
        return hec_response(exc.code)
    if exc.status == 413:
        return Response(413, (_TYPE,), b'{"text":"Content too large"}')
    return hec_response(6)   # corrupt compression, unknown encoding


METHOD_NOT_ALLOWED = Response(405, (_TYPE, (b"allow", b"POST")),
                              b'{"text":"Method not allowed"}')
HEALTH_METHOD_NOT_ALLOWED = Response(405, (_TYPE, (b"allow", b"GET")),
                                     b'{"text":"Method not allowed"}')
SUCCESS = hec_response(0)
UNAVAILABLE = hec_response(9, (b"retry-after", b"1"))


class Splunk(Protocol):
    """HEC. ``tokens`` maps each accepted token to its source; ``query_token`` allows
    ``?token=``; ``indexes``, when given, is the set of indexes events may name."""

    name = "splunk"

    def __init__(self, tokens: Mapping[str, str], limits: Limits = DEFAULT_LIMITS, *,
                 query_token: bool = False, indexes: Optional[FrozenSet[str]] = None) -> None:
        self.tokens = dict(tokens)
        self.limits = limits
        self.query_token = query_token
        self.indexes = indexes

    def start(self, request: Request) -> Optional[Exchange]:
        path = request.path
        raw = path in RAW_PATHS
        if not raw and path not in EVENT_PATHS:
            if path in HEALTH_PATHS:
                return self._health(request)
            if path in ACK_PATHS:
                return Answer(hec_response(14))
            return None
        if request.method != "POST":
            return Answer(METHOD_NOT_ALLOWED)
        query = _query(request)
        source = self._source(request, query)
        if isinstance(source, Answer):
            return source
        try:
            encoding = request.header(b"content-encoding")
            if raw:
                metadata: Dict[str, str] = {
                    k: query[k] for k in ("host", "source", "sourcetype", "index") if k in query}
                if self.indexes is not None and "index" in metadata and \
                        metadata["index"] not in self.indexes:
                    return Answer(hec_response(7))
                time_ns = event_time(query["time"], -1) if "time" in query else -1
                reader: Any = HecRawReader(encoding, self.limits, request.received_ns,
                                           metadata, None if time_ns == -1 else time_ns,
                                           request.delivery.piece_size)
            else:
                reader = HecEventReader(encoding, self.limits, request.received_ns,
                                        request.delivery.piece_size)
        except IngestError as exc:
            return _failed(exc)
        if declared_too_large(request, self.limits):
            return _failed(PayloadTooLarge(detail="declared Content-Length over the limit"))
        return HecExchange(source, request.received_ns, reader, self.indexes)

    def _source(self, request: Request, query: Dict[str, str]) -> Any:
        if "token" in query:
            if not self.query_token:
                return Answer(hec_response(16))
            found = self.tokens.get(query["token"])
            return Answer(hec_response(4)) if found is None else found
        credentials = read_credentials(request)
        if not credentials.present:
            return Answer(hec_response(2))
        if credentials.scheme not in ("splunk", "basic") or not credentials.tokens:
            return Answer(hec_response(3))
        found = credentials.source(self.tokens, ("splunk", "basic"))
        return Answer(hec_response(4)) if found is None else found

    def _health(self, request: Request) -> Answer:
        if request.method not in ("GET", "HEAD"):
            return Answer(HEALTH_METHOD_NOT_ALLOWED)
        query = _query(request)
        if "token" in query and query["token"] not in self.tokens:
            return Answer(hec_response(21))
        return Answer(hec_response(17))


def _query(request: Request) -> Dict[str, str]:
    """The query string's parameters (the first value of each name)."""
    if not request.query:
        return {}
    return {k: v[0] for k, v in parse_qs(request.query, keep_blank_values=True).items()}


def _failed(exc: IngestError) -> Answer:
    return answer_with(error_response(exc), exc)


class HecExchange(BatchedExchange):
    """One event or raw post."""

    UNAVAILABLE = UNAVAILABLE

    def __init__(self, source: str, received_ns: int, reader: Any,
                 indexes: Optional[FrozenSet[str]]) -> None:
        super().__init__(source, received_ns)
        self._reader = reader
        self._indexes = indexes
        self._count = 0

    def _read(self, data: bytes) -> Iterator[Events]:
        for events, times in self._reader.feed(data):
            yield self._events(events, times)

    def _finish(self) -> Iterator[Events]:
        for events, times in self._reader.close():
            yield self._events(events, times)

    def _events(self, events: Any, times: Any) -> Events:
        indexes = self._indexes
        if indexes is not None:
            for i, event in enumerate(events):
                index = event.get("index")
                if index is not None and index not in indexes:
                    raise HecError(7, self._count + i)
        self._count += len(events)
        return Events(self.source, events, times, self.received_ns)

    def _success(self) -> Response:
        return SUCCESS

    def _error_response(self, exc: IngestError) -> Response:
        return error_response(exc)


__all__ = ["ACK_PATHS", "DEFAULT_LIMITS", "EVENT_PATHS", "HEALTH_PATHS", "HecExchange",
           "RAW_PATHS", "Splunk", "error_response", "hec_response"]
