"""Pure-Python reference protobuf walkers: OTLP ``ExportLogsServiceRequest`` and Loki
``PushRequest`` bodies to events, in bounded batches.

This is the reference for ``_protobuf.pyx`` and the fallback without the extension;
both export the same names with the same answers. Only the messages PROTOCOLS.md lists
are read; no generated code, no descriptors.

Wire format (proto3): a message is a sequence of ``tag`` varints (field number << 3 |
wire type) each followed by its value: wire type 0 a varint (at most 10 bytes, the tenth
at most 1), 1 eight bytes, 2 a varint length and that many bytes, 5 four bytes. Unknown
fields, and known fields sent with another wire type, are skipped as protobuf parsers
do; groups (wire types 3, 4), wire types 6 and 7, field number 0, a varint over 64 bits
and a length past the end of its message are faults: ``ParseError`` (its ``status`` is
the caller's to map; OTLP and Loki answer 400) with ``offset`` at the faulty field's
tag and ``detail`` one of the ``PB_*`` texts of :mod:`fastingest.shipping`.

Walking order. A ``ResourceLogs`` (a Loki stream) is read in two passes: first its
``resource`` (``labels``), wherever it sits among the fields, then its ``scope_logs``
(``entries``); likewise ``ScopeLogs``' ``scope``. A singular message field sent several
times is merged as protobuf merges (the attributes of every occurrence, later keys
winning); a singular scalar or string sent several times: the last wins; an ``AnyValue``
sent several times, or with several oneof members: the last wins.

Batches. ``read(max_bytes)`` returns the events of the next records until it has covered
at least ``max_bytes`` of body (or the body ends): ``(events, times_ns)``. A record
larger than ``max_event`` bytes is a 413 (``PayloadTooLarge``), and so is a resource or
a scope (each is built whole). Nesting of AnyValue
arrays and key-value lists deeper than ``max_depth`` (the event is level 1, its
``attributes`` or ``body`` container level 2) is a ParseError.

OTLP event (PROTOCOLS.md §1; empty and default values omitted)::

    {"body": V, "severity_text": s, "severity_number": n, "attributes": {k: V},
     "resource": {k: V}, "scope": {"name": s, "version": s, "attributes": {k: V}},
     "trace_id": "32 lowercase hex", "span_id": "16 hex", "flags": n, "event_name": s,
     "time_unix_nano": n, "observed_time_unix_nano": n, "dropped_attributes_count": n}

The events of one resource (scope) share its ``resource`` (``scope``) dict. Event time:
``time_unix_nano`` when nonzero and at most 2^63-1, else ``observed_time_unix_nano``
likewise, else the reception time. Strings must be valid UTF-8 (proto3).

Loki event (PROTOCOLS.md §3)::

    {"line": s, "labels": {name: value}, "structured_metadata": {name: value}}

``labels`` is parsed from the stream's selector text by :func:`fastingest.lokiformat.parse_labels`
(once per stream; its events share the dict). Event time: ``seconds * 10^9 + nanos``
when nonzero and within int64, else the reception time. Loki's Go protobuf code does not
check UTF-8, so invalid sequences in Loki strings become U+FFFD rather than a 400.
"""
from __future__ import annotations

import base64
import struct
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from . import shipping as S
from .shipping import BatchReader, Record
from .errors import ParseError, PayloadTooLarge, too_deep

_Buffer = Union[bytes, bytearray, memoryview]

_U64 = 1 << 64
_DOUBLE = struct.Struct("<d")


class _Wire:
    """Primitive reads over one buffer; every fault raises ParseError at ``tag_at``."""

    __slots__ = ("buf",)

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf

    def varint(self, i: int, end: int, at: int) -> Tuple[int, int]:
        buf = self.buf
        result = 0
        shift = 0
        while True:
            if i >= end:
                raise ParseError(detail=S.PB_TRUNCATED, offset=at)
            byte = buf[i]
            i += 1
            if shift == 63 and byte > 1:
                raise ParseError(detail=S.PB_VARINT, offset=at)
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result, i
            shift += 7

    def fields(self, i: int, end: int) -> Iterator[Tuple[int, int, int, int, int]]:
        """``(field, wire_type, value, start, stop)`` per field of the message
        ``buf[i:end]``: ``value`` for varints; ``start:stop`` the bytes of the others."""
        while i < end:
            at = i
            tag, i = self.varint(i, end, at)
            field, wt = tag >> 3, tag & 7
            if field == 0:
                raise ParseError(detail=S.PB_FIELD_ZERO, offset=at)
            if wt == 0:
                value, i = self.varint(i, end, at)
                yield field, 0, value, i, i
            elif wt == 2:
                n, i = self.varint(i, end, at)
                if n > end - i:
                    raise ParseError(detail=S.PB_TRUNCATED, offset=at)
                yield field, 2, 0, i, i + n
                i += n
            elif wt == 1 or wt == 5:
                n = 8 if wt == 1 else 4
                if n > end - i:
                    raise ParseError(detail=S.PB_TRUNCATED, offset=at)
                yield field, wt, 0, i, i + n
                i += n
            elif wt == 3 or wt == 4:
                raise ParseError(detail=S.PB_GROUP, offset=at)
            else:
                raise ParseError(detail=S.PB_WIRE_TYPE, offset=at)

    def text(self, a: int, b: int, at: int) -> str:
        try:
            return str(self.buf[a:b], "utf-8")
        except UnicodeDecodeError:
            raise ParseError(detail=S.PB_UTF8, offset=at) from None

    def lenient_text(self, a: int, b: int) -> str:
        return str(self.buf[a:b], "utf-8", "replace")

    def fixed64(self, a: int) -> int:
        return int.from_bytes(self.buf[a:a + 8], "little")

    def fixed32(self, a: int) -> int:
        return int.from_bytes(self.buf[a:a + 4], "little")


def _int64(value: int) -> int:
    return value - _U64 if value >= 1 << 63 else value


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _view(body: _Buffer) -> memoryview:
    view = memoryview(body)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
    return view


# -- OTLP -----------------------------------------------------------------------------------


class _Otlp:
    """AnyValue, KeyValue and the small OTLP messages."""

    def __init__(self, wire: _Wire, max_depth: int) -> None:
        self.w = wire
        self.max_depth = max_depth

    def any_value(self, a: int, b: int, depth: int) -> Any:
        w = self.w
        value: Any = None
        for field, wt, v, s, e in w.fields(a, b):
            if field == 1 and wt == 2:
                value = w.text(s, e, s)
            elif field == 2 and wt == 0:
                value = v != 0
            elif field == 3 and wt == 0:
                value = _int64(v)
            elif field == 4 and wt == 1:
                value = _DOUBLE.unpack_from(w.buf, s)[0]
            elif field == 5 and wt == 2:
                value = self.array(s, e, depth + 1)
            elif field == 6 and wt == 2:
                value = self.kvlist(s, e, depth + 1)
            elif field == 7 and wt == 2:
                value = base64.b64encode(w.buf[s:e]).decode("ascii")
            elif field == 8 and wt == 0:
                value = None
        return value

    def _check_depth(self, depth: int, at: int) -> None:
        if depth > self.max_depth:
            raise ParseError(detail=too_deep(self.max_depth), offset=at)

    def array(self, a: int, b: int, depth: int) -> List[Any]:
        self._check_depth(depth, a)
        return [self.any_value(s, e, depth)
                for field, wt, _, s, e in self.w.fields(a, b) if field == 1 and wt == 2]

    def kvlist(self, a: int, b: int, depth: int) -> Dict[str, Any]:
        self._check_depth(depth, a)
        out: Dict[str, Any] = {}
        for field, wt, _, s, e in self.w.fields(a, b):
            if field == 1 and wt == 2:
                self.key_value(s, e, depth, out)
        return out

    def key_value(self, a: int, b: int, depth: int, out: Dict[str, Any]) -> None:
        """One KeyValue into ``out`` (the container it belongs to is at ``depth``)."""
        w = self.w
        key = ""
        value: Any = None
        for field, wt, _, s, e in w.fields(a, b):
            if field == 1 and wt == 2:
                key = w.text(s, e, s)
            elif field == 2 and wt == 2:
                value = self.any_value(s, e, depth)
        out[key] = value

    def attributes_into(self, a: int, b: int, number: int, depth: int,
                        out: Dict[str, Any]) -> None:
        """The repeated KeyValue field ``number`` of message ``a:b`` into ``out``."""
        for field, wt, _, s, e in self.w.fields(a, b):
            if field == number and wt == 2:
                self.key_value(s, e, depth, out)

    def scope_into(self, a: int, b: int, scope: Dict[str, Any], attrs: Dict[str, Any]) -> None:
        w = self.w
        for field, wt, _, s, e in w.fields(a, b):
            if field == 1 and wt == 2:
                scope["name"] = w.text(s, e, s)
            elif field == 2 and wt == 2:
                scope["version"] = w.text(s, e, s)
            elif field == 3 and wt == 2:
                self.key_value(s, e, 3, attrs)

    def record(self, a: int, b: int, resource: Optional[Dict[str, Any]],
               scope: Optional[Dict[str, Any]], received_ns: int) -> Tuple[Dict[str, Any], int]:
        w = self.w
        body: Any = None
        has_body = False
        severity_text = ""
        severity_number = 0
        attributes: Dict[str, Any] = {}
        dropped = 0
        flags = 0
        trace_id: Optional[bytes] = None
        span_id: Optional[bytes] = None
        time_ns = 0
        observed_ns = 0
        event_name = ""
        for field, wt, v, s, e in w.fields(a, b):
            if field == 1 and wt == 1:
                time_ns = w.fixed64(s)
            elif field == 2 and wt == 0:
                severity_number = _int32(v)
            elif field == 3 and wt == 2:
                severity_text = w.text(s, e, s)
            elif field == 5 and wt == 2:
                body = self.any_value(s, e, 1)
                has_body = True
            elif field == 6 and wt == 2:
                self.key_value(s, e, 2, attributes)
            elif field == 7 and wt == 0:
                dropped = v & 0xFFFFFFFF
            elif field == 8 and wt == 5:
                flags = w.fixed32(s)
            elif field == 9 and wt == 2:
                trace_id = bytes(w.buf[s:e])
            elif field == 10 and wt == 2:
                span_id = bytes(w.buf[s:e])
            elif field == 11 and wt == 1:
                observed_ns = w.fixed64(s)
            elif field == 12 and wt == 2:
                event_name = w.text(s, e, s)
        trace = trace_id.hex() if trace_id is not None and len(trace_id) == 16 \
            and any(trace_id) else None
        span = span_id.hex() if span_id is not None and len(span_id) == 8 and any(span_id) \
            else None
        return S.otlp_event(body, has_body, severity_text, severity_number, attributes,
                            resource, scope, trace, span, flags, event_name, time_ns,
                            observed_ns, dropped, received_ns)


class OtlpLogs(BatchReader):
    """The log records of one OTLP ``ExportLogsServiceRequest`` (protobuf), in order."""

    def __init__(self, body: _Buffer, received_ns: int, max_event: int, max_depth: int) -> None:
        self._wire = _Wire(_view(body))
        self._otlp = _Otlp(self._wire, max_depth)
        self._received_ns = received_ns
        self._max_event = max_event
        super().__init__(self._walk())

    def _walk(self) -> Iterator[Record]:
        w = self._wire
        for field, wt, _, s, e in w.fields(0, len(w.buf)):
            if field == 1 and wt == 2:
                yield from self._resource_logs(s, e)

    def _resource_logs(self, a: int, b: int) -> Iterator[Record]:
        w, otlp = self._wire, self._otlp
        resource: Dict[str, Any] = {}
        for field, wt, _, s, e in w.fields(a, b):
            if field == 1 and wt == 2:
                self._check_size(s, e)
                otlp.attributes_into(s, e, 1, 2, resource)
        for field, wt, _, s, e in w.fields(a, b):
            if field == 2 and wt == 2:
                yield from self._scope_logs(s, e, resource or None)

    def _scope_logs(self, a: int, b: int, resource: Optional[Dict[str, Any]]
                    ) -> Iterator[Record]:
        w, otlp = self._wire, self._otlp
        scope: Dict[str, Any] = {}
        attrs: Dict[str, Any] = {}
        for field, wt, _, s, e in w.fields(a, b):
            if field == 1 and wt == 2:
                self._check_size(s, e)
                otlp.scope_into(s, e, scope, attrs)
        if attrs:
            scope["attributes"] = attrs
        scope = {k: v for k, v in scope.items() if v}
        for field, wt, _, s, e in w.fields(a, b):
            if field == 2 and wt == 2:
                self._check_size(s, e)
                event, when = otlp.record(s, e, resource, scope or None, self._received_ns)
                yield event, when, e - s

    def _check_size(self, a: int, b: int) -> None:
        """A record, resource or scope is built whole: at most ``max_event`` bytes."""
        if b - a > self._max_event:
            raise PayloadTooLarge(detail=S.record_too_large(self._max_event), offset=a)


# -- Loki -----------------------------------------------------------------------------------


class LokiPush(BatchReader):
    """The entries of one Loki ``PushRequest`` (decompressed protobuf), in order;
    ``streams`` counts the streams walked so far.

    ``labels(text)`` turns a stream's selector into its label dict (raising IngestError
    when it is malformed); ``line_too_long(labels_text, size)`` builds the error for a
    line over ``max_line`` bytes, ``labels_too_long(size)`` for a selector over it.
    """

    def __init__(self, body: _Buffer, received_ns: int, max_line: int,
                 labels: Callable[[str], Dict[str, str]],
                 line_too_long: Callable[[str, int], Exception],
                 labels_too_long: Callable[[int], Exception]) -> None:
        self._wire = _Wire(_view(body))
        self._received_ns = received_ns
        self._max_line = max_line
        self._labels = labels
        self._line_too_long = line_too_long
        self._labels_too_long = labels_too_long
        self.streams = 0
        super().__init__(self._walk())

    def _walk(self) -> Iterator[Record]:
        w = self._wire
        for field, wt, _, s, e in w.fields(0, len(w.buf)):
            if field == 1 and wt == 2:
                self.streams += 1
                yield from self._stream(s, e)

    def _stream(self, a: int, b: int) -> Iterator[Record]:
        w = self._wire
        text = ""
        for field, wt, _, s, e in w.fields(a, b):
            if field == 1 and wt == 2:
                if e - s > self._max_line:
                    raise self._labels_too_long(e - s)
                text = w.lenient_text(s, e)
        labels = self._labels(text)
        for field, wt, _, s, e in w.fields(a, b):
            if field == 2 and wt == 2:
                event, when = self._entry(s, e, labels, text)
                yield event, when, e - s

    def _entry(self, a: int, b: int, labels: Dict[str, str], text: str
               ) -> Tuple[Dict[str, Any], int]:
        w = self._wire
        seconds = 0
        nanos = 0
        line = ""
        metadata: Dict[str, str] = {}
        for field, wt, _, s, e in w.fields(a, b):
            if field == 1 and wt == 2:
                for f2, wt2, v2, _s, _e in w.fields(s, e):
                    if f2 == 1 and wt2 == 0:
                        seconds = _int64(v2)
                    elif f2 == 2 and wt2 == 0:
                        nanos = _int32(v2)
            elif field == 2 and wt == 2:
                if e - s > self._max_line:
                    raise self._line_too_long(text, e - s)
                line = w.lenient_text(s, e)
            elif field == 3 and wt == 2:
                name = ""
                value = ""
                for f2, wt2, _, s2, e2 in w.fields(s, e):
                    if f2 == 1 and wt2 == 2:
                        name = w.lenient_text(s2, e2)
                    elif f2 == 2 and wt2 == 2:
                        value = w.lenient_text(s2, e2)
                metadata[name] = value
        event: Dict[str, Any] = {"line": line}
        if labels:
            event["labels"] = labels
        if metadata:
            event["structured_metadata"] = metadata
        ns = seconds * 1_000_000_000 + nanos
        when = ns if 0 < ns <= S.INT64_MAX else self._received_ns
        return event, when


__all__ = ["LokiPush", "OtlpLogs"]
