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

import re
from array import array
from typing import Any, Dict, Iterator, List, Optional, Tuple

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


def record_too_large(max_event: int) -> str:
    return f"record larger than {max_event} bytes"


def ns_in_range(ns: int) -> Optional[int]:
    """``ns`` when it fits int64, else None."""
    return ns if INT64_MIN <= ns <= INT64_MAX else None


_DECIMAL = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]{1,4}))?")


def decimal_to_ns(text: str, digits: int) -> Optional[int]:
    """A decimal number of some unit to int64 ns, exactly; ``digits`` is log10(ns per unit)
    (9 for seconds, 6 for milliseconds). Digits past the nanosecond are truncated toward
    zero; an exponent is allowed (JSON numbers). None if it is not a number or out of range.
    """
    match = _DECIMAL.fullmatch(text.strip())
    if match is None:
        return None
    sign, whole, frac, exp = match.groups()
    frac = frac or ""
    if not whole and not frac:
        return None
    shift = digits + (int(exp) if exp else 0)
    mantissa = int((whole or "0") + frac)
    shift -= len(frac)
    if shift >= 0:
        if mantissa and shift > 40:
            return None
        ns = mantissa * 10 ** shift
    else:
        ns = mantissa // 10 ** -shift if -shift < 60 else 0
    return ns_in_range(-ns if sign == "-" else ns)


def number_to_ns(value: Any, digits: int) -> Optional[int]:
    """A JSON number or numeric string of some unit (see :func:`decimal_to_ns`) to ns.

    An ``int`` is exact. A ``float`` is read from its shortest round-trip text
    (``repr``): what ``json.dumps`` and every mainstream JSON writer print, so
    ``1796544182.4264505`` s is ``1796544182426450500`` ns, not the binary float's
    ``...426450432``. ``bool``, ``None`` and anything else: None.
    """
    kind = type(value)
    if kind is int:
        return ns_in_range(value * 10 ** digits)
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return decimal_to_ns(repr(value), digits)
    if kind is str:
        return decimal_to_ns(value, digits)
    return None


def positive_ns(value: int) -> Optional[int]:
    """An OTLP/Loki nanosecond count that names a time: nonzero and within int64."""
    return value if 0 < value <= INT64_MAX else None


Record = Tuple[Dict[str, Any], int, int]
"""One event as a reader yields it: ``(event, time_ns, body bytes it covered)``."""
BatchOut = Tuple[List[Dict[str, Any]], "array[int]"]


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
