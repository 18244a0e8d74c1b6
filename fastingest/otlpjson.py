"""OTLP JSON (``application/json`` on ``/v1/logs``) to the same events as the protobuf walker.

The proto3 JSON mapping with OTLP's deviations (PROTOCOLS.md §1): lowerCamelCase keys,
snake_case also accepted, unknown keys ignored; ``traceId``/``spanId`` case-insensitive
hex (``""`` = absent); int64/fixed64 as decimal strings or numbers; ``bytesValue`` base64
(standard or URL-safe, padding optional); ``doubleValue`` a number or ``"NaN"``,
``"Infinity"``, ``"-Infinity"``; enums as integers or their names. A value of the wrong
type is a ParseError (400), as in the Collector.

The body is one document: :class:`fastingest.jsondoc.Document` validates it without
building it, and each record, resource and scope is built on its own, so the events go
out in bounded batches. Events and times are exactly what :class:`fastingest.protobuf.OtlpLogs`
gives for the same request in protobuf.
"""
from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from . import shipping as S
from .errors import ParseError, PayloadTooLarge, too_deep
from .jsondoc import Document, Member, last
from .shipping import BatchReader, Record

_Buffer = Union[bytes, bytearray]

#: Levels of an OTLP JSON document above a log record.
DOCUMENT_DEPTH = 6

_U64 = 1 << 64
_INT = re.compile(r"[+-]?[0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]*")
_SEVERITIES = (
    "UNSPECIFIED", "TRACE", "TRACE2", "TRACE3", "TRACE4", "DEBUG", "DEBUG2", "DEBUG3", "DEBUG4",
    "INFO", "INFO2", "INFO3", "INFO4", "WARN", "WARN2", "WARN3", "WARN4", "ERROR", "ERROR2",
    "ERROR3", "ERROR4", "FATAL", "FATAL2", "FATAL3", "FATAL4")
SEVERITY_NAMES = {"SEVERITY_NUMBER_" + name: n for n, name in enumerate(_SEVERITIES)}
_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _key(obj: Dict[str, Any], camel: str, snake: str) -> Any:
    """The value under either spelling (the last one written wins when both are)."""
    if snake in obj and camel in obj:
        keys = list(obj)
        return obj[camel] if keys.index(camel) > keys.index(snake) else obj[snake]
    return obj.get(camel, obj.get(snake))


def _fail(detail: str) -> ParseError:
    return ParseError(detail=detail)


def _integer(value: Any, bits: int, signed: bool) -> int:
    """An int64/uint64/fixed64/int32 JSON value: a number or a decimal string."""
    if type(value) is int:
        number = value
    elif type(value) is float and value.is_integer():
        number = int(value)
    elif type(value) is str and _INT.fullmatch(value):
        number = int(value)
    else:
        raise _fail(S.BAD_INTEGER)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not low <= number <= high:
        raise _fail(S.BAD_INTEGER)
    return number


def _optional_int(value: Any, bits: int) -> int:
    """An unsigned field that may be absent (0)."""
    return 0 if value is None else _integer(value, bits, False)


def _double(value: Any) -> float:
    if type(value) in (int, float):
        return float(value)
    if type(value) is str and value in _DOUBLES:
        return _DOUBLES[value]
    raise _fail(S.BAD_DOUBLE)


def _string(value: Any) -> str:
    if type(value) is not str:
        raise _fail(S.EXPECTED_STRING_AT)
    return value


def _bytes_b64(value: Any) -> str:
    text = _string(value)
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/")
                               + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _fail(S.BAD_BASE64) from None
    return base64.b64encode(raw).decode("ascii")


def _hex_id(value: Any, size: int) -> Optional[str]:
    """A trace (16 bytes) or span (8 bytes) id: lowercase hex, or None when absent,
    all zeros or of another length (the spec calls those invalid: no trace)."""
    if value is None:
        return None
    text = _string(value)
    if not _HEX.fullmatch(text) or len(text) % 2:
        raise _fail(S.BAD_HEX_ID)
    if len(text) != 2 * size or not text.strip("0"):
        return None
    return text.lower()


class _Values:
    """AnyValue / KeyValue conversion with the depth limit."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth

    def any_value(self, obj: Any, depth: int) -> Any:
        if obj is None:
            return None
        if type(obj) is not dict:
            raise _fail(S.EXPECTED_OBJECT_AT)
        value: Any = None
        for key, v in obj.items():   # several oneof members: the last one wins
            if key in ("stringValue", "string_value"):
                value = _string(v)
            elif key in ("boolValue", "bool_value"):
                if type(v) is not bool:
                    raise _fail("boolValue: expected true or false")
                value = v
            elif key in ("intValue", "int_value"):
                value = _integer(v, 64, True)
            elif key in ("doubleValue", "double_value"):
                value = _double(v)
            elif key in ("arrayValue", "array_value"):
                value = self.array(v, depth + 1)
            elif key in ("kvlistValue", "kvlist_value"):
                value = self.kvlist(v, depth + 1)
            elif key in ("bytesValue", "bytes_value"):
                value = _bytes_b64(v)
            elif key in ("stringValueStrindex", "string_value_strindex"):
                value = None
        return value

    def _values(self, obj: Any, depth: int) -> List[Any]:
        if depth > self.max_depth:
            raise _fail(too_deep(self.max_depth))
        if obj is None:
            return []
        if type(obj) is not dict:
            raise _fail(S.EXPECTED_OBJECT_AT)
        values = obj.get("values")
        if values is None:
            return []
        if type(values) is not list:
            raise _fail(S.EXPECTED_ARRAY_AT)
        return values

    def array(self, obj: Any, depth: int) -> List[Any]:
        return [self.any_value(v, depth) for v in self._values(obj, depth)]

    def kvlist(self, obj: Any, depth: int) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        self.attributes_into(self._values(obj, depth), depth, out)
        return out

    def attributes_into(self, items: Any, depth: int, out: Dict[str, Any]) -> None:
        """A JSON list of KeyValue into ``out`` (a container at ``depth``)."""
        if items is None:
            return
        if type(items) is not list:
            raise _fail(S.EXPECTED_ARRAY_AT)
        for kv in items:
            if type(kv) is not dict:
                raise _fail(S.EXPECTED_OBJECT_AT)
            key = kv.get("key", "")
            out[_string(key)] = self.any_value(kv.get("value"), depth)


class OtlpJson(BatchReader):
    """The log records of one OTLP JSON ``ExportLogsServiceRequest``, in order."""

    def __init__(self, body: _Buffer, received_ns: int, max_event: int, max_depth: int) -> None:
        self._doc = Document(body, max_depth, DOCUMENT_DEPTH)
        self._values = _Values(max_depth)
        self._received_ns = received_ns
        self._max_event = max_event
        super().__init__(self._walk())

    def _array(self, members: List[Member], camel: str, snake: str) -> Iterator[Tuple[int, int]]:
        doc = self._doc
        a, _ = last(members, camel, snake)
        if a >= 0 and not doc.is_null(a):
            yield from doc.elements(a)

    def _object(self, members: List[Member], camel: str, snake: str = "") -> Dict[str, Any]:
        """A resource or scope: built whole, so at most ``max_event`` bytes."""
        doc = self._doc
        a, b = last(members, camel, snake or camel)
        if a < 0 or doc.is_null(a):
            return {}
        if b - a > self._max_event:
            raise PayloadTooLarge(detail=S.record_too_large(self._max_event), offset=a)
        value = doc.load(a, b)
        if type(value) is not dict:
            raise ParseError(detail=S.EXPECTED_OBJECT_AT, offset=a)
        return value

    def _walk(self) -> Iterator[Record]:
        doc = self._doc
        for s, _e in self._array(doc.members(doc.root), "resourceLogs", "resource_logs"):
            if doc.is_null(s):
                continue
            members = doc.members(s)
            resource: Dict[str, Any] = {}
            found = self._object(members, "resource")
            self._values.attributes_into(found.get("attributes"), 2, resource)
            for s2, _e2 in self._array(members, "scopeLogs", "scope_logs"):
                if not doc.is_null(s2):
                    yield from self._scope_logs(doc.members(s2), resource or None)

    def _scope_logs(self, members: List[Member], resource: Optional[Dict[str, Any]]
                    ) -> Iterator[Record]:
        doc = self._doc
        found = self._object(members, "scope")
        scope: Dict[str, Any] = {}
        for key in ("name", "version"):
            if found.get(key) is not None and _string(found[key]):
                scope[key] = found[key]
        attrs: Dict[str, Any] = {}
        self._values.attributes_into(found.get("attributes"), 3, attrs)
        if attrs:
            scope["attributes"] = attrs
        for s, e in self._array(members, "logRecords", "log_records"):
            if doc.is_null(s):
                continue
            if e - s > self._max_event:
                raise PayloadTooLarge(detail=S.record_too_large(self._max_event), offset=s)
            record = doc.load(s, e)
            if type(record) is not dict:
                raise ParseError(detail=S.EXPECTED_OBJECT_AT, offset=s)
            try:
                event, when = self._record(record, resource, scope or None)
            except ParseError as exc:
                exc.offset = s
                raise
            yield event, when, e - s

    def _record(self, rec: Dict[str, Any], resource: Optional[Dict[str, Any]],
                scope: Optional[Dict[str, Any]]) -> Tuple[Dict[str, Any], int]:
        values = self._values
        get = rec.get
        has_body = get("body") is not None
        body = values.any_value(get("body"), 1) if has_body else None
        severity_text = _key(rec, "severityText", "severity_text")
        severity_text = "" if severity_text is None else _string(severity_text)
        severity = _key(rec, "severityNumber", "severity_number")
        if type(severity) is str:
            if severity not in SEVERITY_NAMES:
                raise _fail(S.BAD_ENUM)
            severity = SEVERITY_NAMES[severity]
        severity = 0 if severity is None else _integer(severity, 32, True)
        attributes: Dict[str, Any] = {}
        values.attributes_into(get("attributes"), 2, attributes)
        event_name = _key(rec, "eventName", "event_name")
        return S.otlp_event(
            body, has_body, severity_text, severity, attributes, resource, scope,
            _hex_id(_key(rec, "traceId", "trace_id"), 16),
            _hex_id(_key(rec, "spanId", "span_id"), 8),
            _optional_int(get("flags"), 32), "" if event_name is None else _string(event_name),
            _optional_int(_key(rec, "timeUnixNano", "time_unix_nano"), 64),
            _optional_int(_key(rec, "observedTimeUnixNano", "observed_time_unix_nano"), 64),
            _optional_int(_key(rec, "droppedAttributesCount", "dropped_attributes_count"), 32),
            self._received_ns)


__all__ = ["OtlpJson", "SEVERITY_NAMES"]
