"""Splunk HEC bodies: concatenated JSON event objects, or raw text lines.

Event body (``/services/collector/event``; PROTOCOLS.md §4): one or more JSON objects,
concatenated with optional whitespace between them (splunk-handler writes
``{...}{...}`` with no separator), each an envelope::

    {"event": <any JSON value>, "time": <epoch seconds>, "host": s, "source": s,
     "sourcetype": s, "index": s, "fields": {name: s | [s, ...]}}

Framing: the body streams through the bounded decoder and the concatenated-JSON
scanner (:class:`fastingest.framing.JsonConcatScanner`, ``KIND_JSON_CONCAT``): memory is
one piece of decompressed body plus the unfinished object, at most ``max_event`` bytes
(413 beyond; only an object's first ``max_event`` bytes are judged). The objects of a
piece are built in runs of one orjson call each; when orjson refuses one, they are
built one by one and the validator names the bad byte. The objects before a fault are
checked before it is raised, so the first fault in body order answers whatever the
chunking.

Faults are :class:`HecError` with the HEC code and the 0-based number of the event:
6 (not JSON, or a value that is not an object), 12 (no ``event``), 13 (``event`` is
``""`` or null), 15 (``fields`` not a flat object of strings / string arrays); 5 (no
data) at the end. A ``null`` metadata value is absent (dropped from the stored event).

Event time: ``time`` as decimal epoch seconds (a number or a numeric string), exactly:
``1796544182.4264505`` is ``1796544182426450500`` ns (a JSON number is read from its
shortest round-trip text; see :func:`fastingest.shipping.number_to_ns`); missing or
unparseable: the reception time.

Raw body (``/services/collector/raw``): one event per non-empty line (``\\r\\n``
allowed), ``{"event": "<line>"}`` plus the request's metadata; invalid UTF-8 becomes
U+FFFD; lines over ``max_event`` are a 413.
"""
from __future__ import annotations

from array import array
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import orjson

from . import _kernels
from .builders import locate
from .compression import DEFAULT_PIECE, open_decoder
from .constants import KIND_JSON_CONCAT, BytesLike
from .errors import IngestError, PayloadTooLarge, event_too_large
from .limits import Limits
from .shipping import number_to_ns

Events = Tuple[List[Dict[str, Any]], "array[int]"]

#: HEC status codes: (HTTP status, text).
CODES = {
    0: (200, "Success"),
    1: (403, "Token disabled"),
    2: (401, "Token is required"),
    3: (401, "Invalid authorization"),
    4: (403, "Invalid token"),
    5: (400, "No data"),
    6: (400, "Invalid data format"),
    7: (400, "Incorrect index"),
    8: (500, "Internal server error"),
    9: (503, "Server is busy"),
    10: (400, "Data channel is missing"),
    11: (400, "Invalid data channel"),
    12: (400, "Event field is required"),
    13: (400, "Event field cannot be blank"),
    14: (400, "ACK is disabled"),
    15: (400, "Error in handling indexed fields"),
    16: (400, "Query string authorization is not enabled"),
    17: (200, "HEC is healthy"),
    18: (503, "HEC is unhealthy, queues are full"),
    19: (503, "HEC is unhealthy, ack service unavailable"),
    20: (503, "HEC is unhealthy, queues are full, ack service unavailable"),
    21: (400, "Invalid token"),
    22: (400, "Token disabled"),
}
#: Envelope keys whose null value means "absent".
METADATA = ("time", "host", "source", "sourcetype", "index", "fields")


class HecError(IngestError):
    """A HEC fault: ``code`` (see :data:`CODES`) and, for per-event faults, the 0-based
    ``event_number``."""

    def __init__(self, code: int, event_number: Optional[int] = None, *,
                 detail: Optional[str] = None, offset: Optional[int] = None) -> None:
        status, text = CODES[code]
        super().__init__(text, status=status, detail=detail or text, offset=offset)
        self.code = code
        self.event_number = event_number


def event_time(value: Any, received_ns: int) -> int:
    """``time`` (decimal epoch seconds) to int64 ns; the reception time when unusable."""
    ns = number_to_ns(value, 9)
    return received_ns if ns is None else ns


def check_envelope(obj: Dict[str, Any], number: int) -> None:
    """HEC's per-event checks (codes 12, 13, 15); drops null metadata in place."""
    if "event" not in obj:
        raise HecError(12, number)
    body = obj["event"]
    if body is None or body == "":
        raise HecError(13, number)
    for key in METADATA:
        if key in obj and obj[key] is None:
            del obj[key]
    fields = obj.get("fields")
    if fields is not None:
        if not isinstance(fields, dict):
            raise HecError(15, number)
        for value in fields.values():
            if isinstance(value, list):
                if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                           for v in value):
                    raise HecError(15, number)
            elif isinstance(value, (dict, bool)) or value is None:
                raise HecError(15, number)


class HecEventReader:
    """Stream one event body: ``feed(chunk)`` / ``close()`` yield ``(events, times)`` per
    piece of decompressed body (consume each iterator before the next call)."""

    def __init__(self, content_encoding: Union[str, bytes, None], limits: Limits,
                 received_ns: int, piece_size: int = DEFAULT_PIECE) -> None:
        self.limits = limits
        self.received_ns = received_ns
        self._body = open_decoder(content_encoding, limits, piece_size=piece_size)
        kernels = _kernels.active
        self._build = kernels.build.build_events
        self._validator = kernels.validate
        self._scanner = kernels.framing.SCANNERS[KIND_JSON_CONCAT](limits.max_event,
                                                                   limits.max_depth)
        self.count = 0          # events checked so far

    def feed(self, chunk: BytesLike) -> Iterator[Events]:
        """The events of each piece of decompressed body the chunk holds."""
        for piece in self._body.feed(chunk):
            yield self._objects(self._scanner.feed(piece))

    def close(self) -> Iterator[Events]:
        """The rest; HecError 6 for an object cut off, 5 for a body without events."""
        for piece in self._body.close():
            yield self._objects(self._scanner.feed(piece))
        self._objects(self._scanner.finish())   # no objects, maybe a fault
        if not self.count:
            raise HecError(5)

    def _objects(self, frames: Any) -> Events:
        """The framed objects, each checked as a HEC envelope, in body order; then the
        fault that ended them, if any."""
        fault: Optional[IngestError] = frames.error
        objects: List[Dict[str, Any]] = []
        if len(frames):
            try:
                objects = self._build(frames, KIND_JSON_CONCAT)
            except Exception:   # orjson refused one: the objects before it, then its error
                objects, fault = self._up_to_refused(frames)
        times = array("q")
        received = self.received_ns
        for obj in objects:
            check_envelope(obj, self.count)
            times.append(event_time(obj["time"], received) if "time" in obj else received)
            self.count += 1
        if fault is not None:
            if fault.status == 413:
                raise fault
            raise HecError(6, self.count, detail=fault.detail, offset=fault.offset)
        return objects, times

    def _up_to_refused(self, frames: Any) -> Tuple[List[Dict[str, Any]], Optional[IngestError]]:
        """The objects before the first one orjson refuses, and that one's located error."""
        objects: List[Dict[str, Any]] = []
        for i in range(len(frames)):
            data = frames.event_bytes(i)
            try:
                objects.append(orjson.loads(data))
            except Exception as exc:
                return objects, locate(data, frames.offsets()[i], KIND_JSON_CONCAT,
                                       self._validator, self.limits.max_depth, exc)
        return objects, frames.error


class HecRawReader:
    """Stream one raw body: a line per event, ``metadata`` added to each."""

    def __init__(self, content_encoding: Union[str, bytes, None], limits: Limits,
                 received_ns: int, metadata: Dict[str, str], time_ns: Optional[int],
                 piece_size: int = DEFAULT_PIECE) -> None:
        self.limits = limits
        self._body = open_decoder(content_encoding, limits, piece_size=piece_size)
        self._metadata = metadata
        self._time = received_ns if time_ns is None else time_ns
        self._rest = bytearray()
        self.count = 0

    def feed(self, chunk: BytesLike) -> Iterator[Events]:
        """The events of each piece of decompressed body the chunk holds."""
        for piece in self._body.feed(chunk):
            yield self._piece(piece, False)

    def close(self) -> Iterator[Events]:
        """The rest; HecError 5 for a body without a non-empty line."""
        for piece in self._body.close():
            yield self._piece(piece, False)
        yield self._piece(b"", True)
        if not self.count:
            raise HecError(5)

    def _piece(self, piece: BytesLike, last: bool) -> Events:
        events: List[Dict[str, Any]] = []
        rest = self._rest
        rest += piece
        lines = rest.split(b"\n")
        tail = b"" if last else lines.pop()
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.limits.max_event:
                raise PayloadTooLarge(detail=event_too_large(self.limits.max_event))
            if line.strip():
                event: Dict[str, Any] = {"event": line.decode("utf-8", "replace")}
                event.update(self._metadata)
                events.append(event)
                self.count += 1
        # (one byte more while it may be the "\r" of a "\r\n" still to come)
        if len(tail) > self.limits.max_event + (tail[-1:] == b"\r"):
            raise PayloadTooLarge(detail=event_too_large(self.limits.max_event))
        self._rest = bytearray(tail)
        return events, array("q", [self._time]) * len(events)


__all__ = ["CODES", "HecError", "HecEventReader", "HecRawReader", "check_envelope",
           "event_time"]
