"""What the readers of the shipper formats share: reason texts, limits, exact time arithmetic.

The four shipper protocols (OTLP/HTTP logs, Elasticsearch ``_bulk``, Loki push, Splunk
HEC; PROTOCOLS.md) carry their event times as integers of nanoseconds, decimal strings,
epoch milliseconds or decimal seconds. Every one becomes int64 nanoseconds here without
passing through a binary float: a fraction is read digit by digit.

Both twins of the protobuf walker (``protobuf.py`` / ``_protobuf.pyx``) and the JSON
readers import their reason texts from this module, so the two implementations cannot
drift apart in what they say.
"""
from __future__ import annotations

import math
import re
from array import array
from typing import Any, Dict, Iterator, List, Optional, Tuple
from typing import Protocol as _Protocol

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

#: Body bytes a reader covers per batch of events it hands out: the same piece size the
#: streaming decoder uses, so a batch holds the events of at most this much body.
BATCH_BYTES = 256 * 1024

# -- protobuf wire-format faults (IngestError.detail) -----------------------------------
PB_TRUNCATED = "truncated protobuf message"
PB_VARINT = "varint longer than 64 bits"
PB_FIELD_ZERO = "protobuf field number 0"
PB_GROUP = "protobuf groups (wire types 3 and 4) are not supported"
PB_WIRE_TYPE = "invalid protobuf wire type"
PB_UTF8 = "invalid UTF-8 in a protobuf string field"

# -- JSON document faults ------------------------------------------------------------------
EXPECTED_OBJECT_AT = "expected a JSON object"
EXPECTED_ARRAY_AT = "expected a JSON array"
EXPECTED_STRING_AT = "expected a JSON string"
BAD_HEX_ID = "trace or span id is not hexadecimal"
BAD_INTEGER = "expected an integer or a decimal string"
BAD_DOUBLE = "expected a number, \"NaN\", \"Infinity\" or \"-Infinity\""
BAD_BASE64 = "bytesValue is not base64"
BAD_ENUM = "unknown severityNumber"


def encode_varint(value: int) -> bytes:
    """A protobuf varint (of the value's low 64 bits: negative int64 take ten bytes)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_field(number: int, value: Any, wire: int = 2) -> bytes:
    """One protobuf field: a varint (``wire`` 0), fixed64 (1), length-delimited str or
    bytes (2) or fixed32 (5). For the responses the protocols write, and their clients."""
    tag = encode_varint(number << 3 | wire)
    if wire == 0:
        return tag + encode_varint(value)
    if wire == 1:
        return tag + (bytes(value) if isinstance(value, (bytes, bytearray))
                      else int(value).to_bytes(8, "little"))
    if wire == 5:
        return tag + int(value).to_bytes(4, "little")
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return tag + encode_varint(len(data)) + data


def otlp_event(body: Any, has_body: bool, severity_text: str, severity_number: int,
               attributes: Dict[str, Any], resource: Optional[Dict[str, Any]],
               scope: Optional[Dict[str, Any]], trace_id: Optional[str], span_id: Optional[str],
               flags: int, event_name: str, time_ns: int, observed_ns: int, dropped: int,
               received_ns: int) -> Tuple[Dict[str, Any], int]:
    """The event of one OTLP log record (empty and default fields left out) and its time:
    ``time_ns`` when it names a time, else ``observed_ns``, else ``received_ns``. Shared by
    the pure protobuf walker and the OTLP JSON reader (the compiled walker inlines it)."""
    event: Dict[str, Any] = {}
    if has_body:
        event["body"] = body
    if severity_text:
        event["severity_text"] = severity_text
    if severity_number:
        event["severity_number"] = severity_number
    if attributes:
        event["attributes"] = attributes
    if resource:
        event["resource"] = resource
    if scope:
        event["scope"] = scope
    if trace_id is not None:
        event["trace_id"] = trace_id
    if span_id is not None:
        event["span_id"] = span_id
    if flags:
        event["flags"] = flags
    if event_name:
        event["event_name"] = event_name
    if time_ns:
        event["time_unix_nano"] = time_ns
    if observed_ns:
        event["observed_time_unix_nano"] = observed_ns
    if dropped:
        event["dropped_attributes_count"] = dropped
    return event, positive_ns(time_ns) or positive_ns(observed_ns) or received_ns


def record_too_large(max_event: int) -> str:
    return f"record larger than {max_event} bytes"


def ns_in_range(ns: int) -> Optional[int]:
    """``ns`` when it fits int64, else None."""
    return ns if INT64_MIN <= ns <= INT64_MAX else None


_DECIMAL = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]{1,4}))?")
#: Digits of INT64_MAX: an integer part with more (past its leading zeros) cannot fit.
_INT64_DIGITS = len(str(INT64_MAX))
_POW10 = tuple(10 ** k for k in range(_INT64_DIGITS))


def decimal_to_ns(text: str, digits: int) -> Optional[int]:
    """A decimal number of some unit to int64 ns, exactly; ``digits`` is log10(ns per unit)
    (9 for seconds, 6 for milliseconds). Digits past the nanosecond are truncated toward
    zero; an exponent is allowed (JSON numbers). None if it is not a number or out of range.

    Only the integer part of the result is ever converted (at most 19 digits), so a
    number of any length costs one pass over its text, never a huge ``int``.
    """
    whole, dot, frac = text.partition(".")
    if whole.isascii() and whole.isdigit() and (not dot or (frac.isascii() and frac.isdigit())):
        # the common form, digits[.digits]: no sign, exponent or whitespace to read
        short = digits - len(frac)
        if short >= 0 and len(whole) + digits <= _INT64_DIGITS:   # no digit to drop
            ns = int(whole + frac) * _POW10[short]
            return ns if ns <= INT64_MAX else None
        sign, shift = "", digits
    else:
        match = _DECIMAL.fullmatch(text.strip())
        if match is None:
            return None
        sign, whole, frac, exp = match.groups()
        frac = frac or ""
        if not whole and not frac:
            return None
        shift = digits + (int(exp) if exp else 0)
    # The digits with the decimal point moved ``shift`` places right: the integer part.
    mantissa = whole + frac
    point = len(whole) + shift
    head = mantissa[:point].lstrip("0") if point > 0 else ""
    pad = point - len(mantissa)   # zeros past the last digit
    if pad > 0 and head:
        if len(head) + pad > _INT64_DIGITS:
            return None
        ns = int(head) * 10 ** pad
    elif len(head) > _INT64_DIGITS:
        return None
    else:
        ns = int(head) if head else 0
    return ns_in_range(-ns if sign == "-" else ns)


_isfinite = math.isfinite


def number_to_ns(value: Any, digits: int) -> Optional[int]:
    """A JSON number or numeric string of some unit (see :func:`decimal_to_ns`) to ns.

    An ``int`` is exact. A ``float`` is read from its shortest round-trip text
    (``repr``): what ``json.dumps`` and every mainstream JSON writer print, so
    ``1796544182.4264505`` s is ``1796544182426450500`` ns, not the binary float's
    ``...426450432``. ``bool``, ``None`` and anything else: None.
    """
    kind = type(value)
    if kind is float:
        return decimal_to_ns(repr(value), digits) if _isfinite(value) else None
    if kind is int:
        return ns_in_range(value * 10 ** digits)
    if kind is str:
        return decimal_to_ns(value, digits)
    return None


def positive_ns(value: int) -> Optional[int]:
    """An OTLP/Loki nanosecond count that names a time: nonzero and within int64."""
    return value if 0 < value <= INT64_MAX else None


Record = Tuple[Dict[str, Any], int, int]
"""One event as a reader yields it: ``(event, time_ns, body bytes it covered)``."""
BatchOut = Tuple[List[Dict[str, Any]], "array[int]"]


class RecordBatches(_Protocol):
    """What every reader of a whole document is: its records in bounded batches."""

    done: bool

    def read(self, max_bytes: int = ...) -> BatchOut: ...


class BatchReader:
    """Hands the events of a generator out in batches covering ``max_bytes`` of body."""

    def __init__(self, records: Iterator[Record]) -> None:
        self._records = records
        self.done = False
        self.count = 0

    def read(self, max_bytes: int = BATCH_BYTES) -> BatchOut:
        """The next records' events and times, covering at least ``max_bytes`` of body
        unless the body ends first (then ``done`` is True)."""
        events: List[Dict[str, Any]] = []
        times = array("q")
        covered = 0
        while covered < max_bytes and not self.done:
            try:
                event, when, size = next(self._records)
            except StopIteration:
                self.done = True
                break
            except BaseException:
                self.done = True
                raise
            events.append(event)
            times.append(when)
            covered += size
        self.count += len(events)
        return events, times
