"""The Samsara ingestion API (SPEC.md section 2), sans-I/O.

Routes: ``POST /v1/events``, ``GET``/``PUT /v1/api-status``; any other path is 404
``{"status":"ERROR","message":"Not found"}``; a known path with another method is 405
(with ``Allow``) — the original answers 404 there, 405 is what HTTP clients expect.

``POST /v1/events``, order of checks (the first failing one answers):

1. with ``tokens`` configured only: ``Authorization: Bearer`` → 403
   ``{"status":"ERROR","message":"Unauthorized"}``. The original API has no
   authentication (it sits behind the operator's network controls), so by default
   there is none either and events are stored under ``source`` (``"samsara"``);
2. ``Content-Type`` must be ``application/json`` or ``application/<x>+json``
   (parameters ignored) → else 400 ``{"status":"ERROR","message":"Invalid format,
   content-type must be application/json"}``;
3. ``X-Samsara-publishedTimestamp`` present but not an integer (Java ``Long``) → 400
   ``{"status":"ERROR","message":"X-Samsara-publishedTimestamp must be a valid timestamp."}``;
4. ``Content-Encoding`` (gzip, and whatever else the codec decodes) → 415 JSON
   ``{"status":"ERROR","message":<codec text>}``; ``Content-Length`` over the limit →
   413 JSON ``{"status":"ERROR","message":"payload reached size limit"}``;
5. the body, as it streams: not JSON → 400 ``Malformed JSON in request body.``
   (``text/plain``, as the original); size limits → 413 JSON; corrupt compressed data
   → 400 JSON; valid JSON that is not an array → 400 ``{"status":"ERROR","message":
   "The body must be a JSON array of events."}``; an element that is not an object →
   400 ``{"status":"ERROR","message":"Each event must be a JSON object."}`` (the codec
   stops at the first one, so no per-event array can be built for it);
6. each event needs ``timestamp`` (a JSON integer, epoch ms), ``sourceId`` and
   ``eventName`` (strings): if any event is invalid → 400 with a JSON array, one entry
   per event in order: ``"OK"`` or ``{"<key>": "missing required key" | "must be an
   integer" | "must be a string", ...}``. The array holds at most
   :data:`MAX_VERDICTS` (1000) entries: a body with more events gets the first 1000
   verdicts followed by one summary object ``{"notShown": <events after the first
   1000>, "invalid": <how many of those are invalid>, "firstInvalid": <0-based index
   of the first of those, or null>}`` (no verdict has these keys). The original
   answers every event, which let a small body of ``{}`` elements ask for an answer
   35 times its size; the answer is now bounded, and so is what the exchange holds;
7. 202, once the store committed: empty body, or
   ``{"status":"OK","warning":"For completeness, please provide the
   'X-Samsara-publishedTimestamp' header."}`` when that header is absent.

Stored events get ``receivedAt`` (epoch ms of arrival) unless they carry a value other
than null/false, and ``publishedAt`` (the header) likewise when the header is present.
Their event time is ``timestamp`` (ms → ns); one outside the int64 ns range falls back
to the arrival time, like an unparseable ``dt`` in Better Stack.

When the server's :class:`~fastingest.protocols.Delivery` asks for JSON text, the body
is split (the same validation, limits and answers) and each event is checked and
enriched by a shallow read of its top-level members (:mod:`fastingest.members`), with
no object built: its text is kept as sent (line breaks as spaces), a null/false
``receivedAt``/``publishedAt`` value replaced where it stands, a missing one appended
before the closing brace — the same members and values the object path stores. An
event that a shallow read cannot be sure of (a key spelled with an escape, one of
these members given twice) is decoded, checked and written by ``jsonout.dumps``.

``GET /v1/api-status`` → 200 ``{"status":"online"}`` or 503 ``{"status":"offline"}``.
``PUT /v1/api-status`` with ``{"status":"online"|"offline"}`` → 200 with the new status,
anything else → 400; only clients in ``admin_networks`` (default loopback) may PUT,
others get 403 ``{"status":"ERROR","message":"Forbidden"}``. Going offline only drains
the load balancer: events are still accepted. The status lives in this object, i.e.
per server process, as in the original (it takes *one instance* off the balancer) —
unless a shared ``status`` cell is given: ``fastingest serve --workers N`` passes one
in shared memory, so all workers of one server answer alike.
"""
from __future__ import annotations

import re
from array import array
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, cast
from typing import Protocol as Protocol_

import orjson

from .. import _kernels
from .. import errors as E
from ..batch import Batch
from ..constants import JSON_FALSE, JSON_INT, JSON_MISSING, JSON_NULL, JSON_STRING
from ..errors import IngestError, PayloadTooLarge
from ..formats import media_type
from ..jsonout import dumps
from ..limits import DEFAULT_LIMITS, Limits
from ..members import Member
from ..storedjson import one_line
from ..stream import StreamDecoder
from . import (LOOPBACK_NETWORKS, Answer, DecodingExchange, EventBatch, Events, Exchange,
               Protocol, RawEvents, Request, Response, bearer_token, client_in,
               declared_too_large, json_response, parse_networks, text_response)

EVENTS_PATH = "/v1/events"
STATUS_PATH = "/v1/api-status"
PUBLISHED_HEADER = b"x-samsara-publishedtimestamp"

MALFORMED_JSON = "Malformed JSON in request body."
MISSING_KEY = "missing required key"
NOT_INTEGER = "must be an integer"
NOT_STRING = "must be a string"


def _error(status: int, message: str, *extra: Tuple[bytes, bytes]) -> Response:
    return json_response(status, {"status": "ERROR", "message": message}, *extra)


NOT_FOUND = _error(404, "Not found")
BAD_CONTENT_TYPE = _error(400, "Invalid format, content-type must be application/json")
BAD_PUBLISHED = _error(400, "X-Samsara-publishedTimestamp must be a valid timestamp.")
NOT_AN_ARRAY = _error(400, "The body must be a JSON array of events.")
NOT_AN_OBJECT = _error(400, "Each event must be a JSON object.")
MALFORMED = text_response(400, MALFORMED_JSON)
UNAUTHORIZED = _error(403, "Unauthorized")
FORBIDDEN = _error(403, "Forbidden")
BAD_STATUS = _error(400, 'The body must be {"status": "online"} or {"status": "offline"}.')
UNAVAILABLE = _error(503, "Service unavailable.", (b"retry-after", b"1"))
REQUEST_TIMEOUT = _error(408, "Request timeout", (b"connection", b"close"))
ACCEPTED = Response(202, (), b"")
ACCEPTED_WITH_WARNING = json_response(202, {
    "status": "OK",
    "warning": "For completeness, please provide the 'X-Samsara-publishedTimestamp' header.",
})
EVENTS_METHODS = _error(405, "Method not allowed", (b"allow", b"POST"))
STATUS_METHODS = _error(405, "Method not allowed", (b"allow", b"GET, PUT"))
STATUSES = {
    True: json_response(200, {"status": "online"}),
    False: json_response(503, {"status": "offline"}),
}
STATUS_SET = {
    True: json_response(200, {"status": "online"}),
    False: json_response(200, {"status": "offline"}),
}

#: A PUT /v1/api-status body is one tiny object.
STATUS_LIMITS = Limits(max_body=64 * 1024, max_compressed=64 * 1024, max_event=64 * 1024,
                       max_depth=8)

#: Most per-event verdicts in a 400 answer (then one summary object; module doc, step 6).
MAX_VERDICTS = 1000

#: The members the raw path reads: the three checked, the two it may add.
MEMBERS = (b"timestamp", b"sourceId", b"eventName", b"receivedAt", b"publishedAt")
#: A receivedAt/publishedAt the server fills in: absent, null or false.
_FILLED = (JSON_MISSING, JSON_NULL, JSON_FALSE)

_LONG = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_MS = 1_000_000
_MISSING = object()


def is_json_media_type(content_type: Optional[str]) -> bool:
    """``application/json`` or ``application/<x>+json``, parameters ignored."""
    bare = media_type(content_type)
    if bare == "application/json":
        return True
    kind, _, subtype = bare.partition("/")
    return (kind == "application" and subtype.endswith("+json") and len(subtype) > 5
            and "/" not in subtype)


def parse_published(value: str) -> Optional[int]:
    """The header as Java's ``Long.parseLong`` reads it, or None when it is not one."""
    if not _LONG.fullmatch(value):
        return None
    number = int(value)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def check_event(event: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """None for a valid event, else ``{key: what is wrong}`` for each bad required key."""
    problems = None
    timestamp = event.get("timestamp", _MISSING)
    if type(timestamp) is not int:   # bool is not a JSON integer; neither is 1.0
        problems = {"timestamp": MISSING_KEY if timestamp is _MISSING else NOT_INTEGER}
    for key in ("sourceId", "eventName"):
        value = event.get(key, _MISSING)
        if type(value) is not str:
            if problems is None:
                problems = {}
            problems[key] = MISSING_KEY if value is _MISSING else NOT_STRING
    return problems


def check_members(timestamp: int, source_id: int, event_name: int) -> Optional[Dict[str, Any]]:
    """:func:`check_event` from the kinds (``constants.JSON_*``) of the three members a
    shallow read found."""
    problems = None
    if timestamp != JSON_INT:
        problems = {"timestamp": MISSING_KEY if timestamp == JSON_MISSING else NOT_INTEGER}
    for key, kind in (("sourceId", source_id), ("eventName", event_name)):
        if kind != JSON_STRING:
            if problems is None:
                problems = {}
            problems[key] = MISSING_KEY if kind == JSON_MISSING else NOT_STRING
    return problems


class StatusCell(Protocol_):
    """Where the api-status lives: anything with a ``value`` (a ``multiprocessing``
    ``Value``/``RawValue`` of ``ctypes.c_bool`` to share it between processes)."""

    value: bool


class _Cell:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = True


class Samsara(Protocol):
    """The Samsara ingestion API, with its online/offline status.

    ``tokens`` (token → source), when given, makes ``POST /v1/events`` require a Bearer
    token and stores under the token's source; otherwise events go to ``source``.
    """

    name = "samsara"
    specifies_not_found = True

    def __init__(self, *, source: str = "samsara", tokens: Optional[Mapping[str, str]] = None,
                 limits: Limits = DEFAULT_LIMITS,
                 admin_networks: Iterable[str] = LOOPBACK_NETWORKS,
                 online: bool = True, status: Optional[StatusCell] = None) -> None:
        self.source = source
        self.tokens = None if tokens is None else dict(tokens)
        self.limits = limits
        self.admin_networks = parse_networks(admin_networks)
        self._status: StatusCell = _Cell() if status is None else status
        if status is None:
            self.online = online

    @property
    def online(self) -> bool:
        """The api-status: True online, False offline (draining)."""
        return bool(self._status.value)

    @online.setter
    def online(self, value: bool) -> None:
        self._status.value = bool(value)

    def start(self, request: Request) -> Optional[Exchange]:
        if request.path == EVENTS_PATH:
            if request.method != "POST":
                return Answer(EVENTS_METHODS)
            return self._events(request)
        if request.path == STATUS_PATH:
            if request.method == "GET":
                return Answer(STATUSES[self.online])
            if request.method == "PUT":
                if not client_in(request.client, self.admin_networks):
                    return Answer(FORBIDDEN)
                return StatusExchange(self, request)
            return Answer(STATUS_METHODS)
        return None

    def not_found(self, request: Request) -> Response:
        return NOT_FOUND

    def _events(self, request: Request) -> Exchange:
        source = self.source
        if self.tokens is not None:
            token = bearer_token(request)
            found = self.tokens.get(token) if token is not None else None
            if found is None:
                return Answer(UNAUTHORIZED)
            source = found
        if not is_json_media_type(request.header(b"content-type")):
            return Answer(BAD_CONTENT_TYPE)
        published = request.header(PUBLISHED_HEADER)
        published_ms = None
        if published is not None:
            published_ms = parse_published(published)
            if published_ms is None:
                return Answer(BAD_PUBLISHED)
        delivery = request.delivery
        try:
            decoder = StreamDecoder("application/json",
                                    content_encoding=request.header(b"content-encoding"),
                                    limits=self.limits, received_ns=request.received_ns,
                                    raw=delivery.raw_json, piece_size=delivery.piece_size)
        except IngestError as exc:
            return _failed(exc)
        if declared_too_large(request, self.limits):
            return _failed(PayloadTooLarge(detail="declared Content-Length over the limit"))
        return SamsaraExchange(source, decoder, request.received_ns, published_ms)


def _codec_error(exc: IngestError, in_array: bool) -> Response:
    if isinstance(exc, E.ParseError):
        return NOT_AN_OBJECT if in_array and exc.detail == E.EXPECTED_OBJECT else MALFORMED
    return _error(exc.status, exc.message)


def _failed(exc: IngestError) -> Answer:
    answer = Answer(_codec_error(exc, False))
    answer.error = exc
    return answer


class SamsaraExchange(DecodingExchange):
    """One ``POST /v1/events``: decode, validate each event, enrich the valid ones.

    Events are handed out for storing while every event so far is valid; after the
    first invalid one nothing more is (the request will be answered 400 and aborted),
    but every later event is still checked: the answer has one entry per event for the
    first :data:`MAX_VERDICTS`, then counts the rest.
    """

    UNAVAILABLE = UNAVAILABLE

    def __init__(self, source: str, decoder: StreamDecoder, received_ns: int,
                 published_ms: Optional[int]) -> None:
        super().__init__(source, decoder, received_ns)
        self.published_ms = published_ms
        self._received_ms = received_ns // _MS
        self._count = 0
        # Once an event is invalid: the first MAX_VERDICTS verdicts, and about the events
        # after them, how many are invalid and the index of the first invalid one.
        self._verdicts: Optional[List[object]] = None
        self._invalid_not_shown = 0
        self._first_invalid_not_shown: Optional[int] = None

    def _at_end(self) -> None:
        if not self._decoder.is_array:
            self.response = NOT_AN_ARRAY
        elif self._verdicts is not None:
            answer = self._verdicts
            if self._count > MAX_VERDICTS:
                answer = answer + [{"notShown": self._count - MAX_VERDICTS,
                                    "invalid": self._invalid_not_shown,
                                    "firstInvalid": self._first_invalid_not_shown}]
            self.response = json_response(400, answer)

    def committed(self) -> Response:
        self._check_done()
        return ACCEPTED if self.published_ms is not None else ACCEPTED_WITH_WARNING

    def timed_out(self) -> Response:
        self.response = REQUEST_TIMEOUT
        return REQUEST_TIMEOUT

    def _batch(self, batch: Any) -> Optional[EventBatch]:
        times = array("q")
        if self._decoder.raw:
            texts: List[bytes] = []
            self._take_raw(batch.raw, texts, times)
            if not texts or self._verdicts is not None or not self._decoder.is_array:
                return None
            return RawEvents(self.source, one_line(texts), times, self.received_ns)
        events: List[Dict[str, Any]] = []
        self._take(batch.events, events, times)
        if not events or self._verdicts is not None or not self._decoder.is_array:
            return None
        return Events(self.source, events, times, self.received_ns)

    def _verdict(self, problems: Optional[Dict[str, Any]]) -> bool:
        """Count one event's verdict; whether to store it (it is valid, and so is every
        event before it)."""
        self._count += 1
        if problems is not None:
            if self._verdicts is None:
                self._verdicts = ["OK"] * min(self._count - 1, MAX_VERDICTS)
            if self._count <= MAX_VERDICTS:
                self._verdicts.append(problems)
            else:
                self._invalid_not_shown += 1
                if self._first_invalid_not_shown is None:
                    self._first_invalid_not_shown = self._count - 1
            return False
        if self._verdicts is not None:
            if self._count <= MAX_VERDICTS:
                self._verdicts.append("OK")
            return False
        return True

    def _time(self, timestamp_ms: int) -> int:
        ns = timestamp_ms * _MS
        return ns if _INT64_MIN <= ns <= _INT64_MAX else self.received_ns

    def _take(self, decoded: Sequence[Dict[str, Any]], events: List[Dict[str, Any]],
              times: "array[int]") -> None:
        received_ms, published_ms = self._received_ms, self.published_ms
        for event in decoded:
            if not self._verdict(check_event(event)):
                continue
            # The original's (or ov value): only null and false count as absent.
            value = event.get("receivedAt")
            if value is None or value is False:
                event["receivedAt"] = received_ms
            if published_ms is not None:
                value = event.get("publishedAt")
                if value is None or value is False:
                    event["publishedAt"] = published_ms
            times.append(self._time(event["timestamp"]))
            events.append(event)

    def _take_raw(self, raw: Sequence[bytes], texts: List[bytes], times: "array[int]") -> None:
        """:meth:`_take` on the events' bytes: the members read shallowly, the text edited."""
        read = _kernels.active.members.top_members
        for text in raw:
            found = read(text, MEMBERS)
            if found is None:   # the shallow read is not sure: decode this one
                events: List[Dict[str, Any]] = []
                self._take([orjson.loads(text)], events, times)
                texts.extend(dumps(event) for event in events)
                continue
            timestamp, source_id, event_name, received, published = found[1]
            if self._verdict(check_members(timestamp[0], source_id[0], event_name[0])):
                times.append(self._time(int(text[timestamp[1]:timestamp[2]])))
                texts.append(self._enriched(text, received, published))

    def _enriched(self, text: bytes, received: Member, published: Member) -> bytes:
        """A valid event's text with receivedAt/publishedAt filled in (as :meth:`_take`
        does): a null/false value replaced where it stands, a missing member appended."""
        edits: List[Tuple[int, int, bytes]] = []
        appended = b""
        for member, name, value in ((received, b"receivedAt", self._received_ms),
                                    (published, b"publishedAt", self.published_ms)):
            if value is None or member[0] not in _FILLED:
                continue
            if member[0] == JSON_MISSING:
                appended += b',"%b":%d' % (name, value)
            else:
                edits.append((member[1], member[2], b"%d" % value))
        if not edits and not appended:
            return text
        parts: List[bytes] = []
        last = 0
        for start, end, value_text in sorted(edits):
            parts += (text[last:start], value_text)
            last = end
        rest = text[last:]
        if appended:   # before the closing brace (a valid event has members already)
            rest = rest[:-1] + appended + b"}"
        parts.append(rest)
        return b"".join(parts)

    def _error_response(self, exc: IngestError) -> Response:
        return _codec_error(exc, bool(self._decoder.is_array))


class StatusExchange(Exchange):
    """``PUT /v1/api-status`` from an allowed client: read the tiny body, switch.

    The body must be one JSON object (uncompressed, like the original admin endpoint;
    its Content-Type is not checked)."""

    def __init__(self, protocol: Samsara, request: Request) -> None:
        self._protocol = protocol
        self._events: List[Dict[str, Any]] = []
        self._decoder = StreamDecoder("application/json", limits=STATUS_LIMITS,
                                      received_ns=request.received_ns)

    def feed(self, data: bytes) -> Optional[Events]:
        self._check_receiving()
        try:
            self._events.extend(cast(Batch, self._decoder.feed(data)).events)
        except IngestError as exc:
            self._bad(exc)
        return None

    def end(self) -> Optional[Events]:
        self._check_receiving()
        try:
            self._events.extend(cast(Batch, self._decoder.close()).events)
        except IngestError as exc:
            self._bad(exc)
            return None
        single = len(self._events) == 1 and self._decoder.is_array is False
        status = self._events[0].get("status") if single else None
        if status in ("online", "offline"):
            self._protocol.online = status == "online"
            self.response = STATUS_SET[self._protocol.online]
        else:
            self.response = BAD_STATUS
        return None

    def _bad(self, exc: IngestError) -> None:
        self.error = exc
        self.response = BAD_STATUS

    def timed_out(self) -> Response:
        self.response = REQUEST_TIMEOUT
        return REQUEST_TIMEOUT


__all__ = [
    "EVENTS_PATH", "MAX_VERDICTS", "MEMBERS", "STATUS_PATH", "Samsara", "SamsaraExchange",
    "StatusCell", "StatusExchange", "check_event", "check_members", "is_json_media_type",
    "parse_published",
]
