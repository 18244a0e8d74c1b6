"""Pure-Python reference for event time: a ``dt`` value -> int64 nanoseconds since the epoch, UTC.

This module is the specification in executable form and the fallback when the compiled twin
``fastingest/_timestamps.pyx`` is unavailable (or ``FASTINGEST_PUREPYTHON=1``). It is written
differently on purpose -- a regular expression and :mod:`datetime` for the calendar, exact
rational arithmetic for floats -- so that the differential tests between the two catch mistakes
in either one. Both must give the same answer for every input.

Grammar (after stripping ASCII whitespace -- space, ``\\t \\n \\v \\f \\r`` -- at both ends; a str
with any non-ASCII character, or bytes with any byte >= 0x80, is unparseable):

* ``[+-]?DIGITS``: an integer epoch, unit by magnitude (see :func:`_int_to_ns`). Digits only
  are always an epoch value: ``20221231`` is 20221231 s, never a basic-format date.
* ``[+-]?DIGITS.DIGITS``: decimal epoch *seconds* whatever the size, exact, digits beyond the
  9th truncated (toward 0). No exponent, no ``,``.
* ``YYYY-MM-DD``: midnight UTC.
* ``YYYY-MM-DD<sep>hh[:mm[:ss[(.|,)f+]]][offset]`` (extended) or
  ``YYYYMMDD<sep>hh[mm[ss[(.|,)f+]]][offset]`` (basic); ``<sep>`` is ``T``, ``t`` or one space;
  date and time use the same format; a fraction only after seconds, first 9 digits kept, the
  rest truncated. ``offset`` is ``Z``, ``z``, ``±hh``, ``±hhmm`` or ``±hh:mm`` (either form after
  either format, as strftime's ``%z`` writes ``+0200`` after an extended time), hh <= 23 and
  mm <= 59; no offset means UTC.
* Fields are validated: real calendar days (Gregorian leap years), hour <= 23, minute <= 59,
  second <= 60 where ``:60`` (a leap second) rolls into the next second; hour 24 only as
  ``24[:00[:00[.000...]]]``, the end of the day.
* The result must lie in int64 nanoseconds, 1677-09-21T00:12:43.145224192Z to
  2262-04-11T23:47:16.854775807Z; anything else is None.
"""
from __future__ import annotations

import re
from array import array
from datetime import date
from typing import Any, Iterable, Optional, Sequence

from msgpack import Timestamp

__all__ = ["parse_dt", "event_times", "format_times"]

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MISSING = object()

_EPOCH = re.compile(rb"([+-]?)([0-9]+)(?:\.([0-9]+))?")
_OFFSET = rb"(?P<oz>[Zz])|(?P<osign>[+-])(?P<oh>[0-9]{2})(?::?(?P<om>[0-9]{2}))?"
_EXTENDED = re.compile(
    rb"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})"
    rb"(?:[Tt ](?P<h>[0-9]{2})(?::(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:[.,](?P<f>[0-9]+))?)?)?"
    rb"(?:" + _OFFSET + rb")?)?"
)
_BASIC = re.compile(
    rb"(?P<y>[0-9]{4})(?P<mo>[0-9]{2})(?P<d>[0-9]{2})"
    rb"[Tt ](?P<h>[0-9]{2})(?:(?P<mi>[0-9]{2})(?:(?P<s>[0-9]{2})(?:[.,](?P<f>[0-9]+))?)?)?"
    rb"(?:" + _OFFSET + rb")?"
)


def _in_range(ns: int) -> Optional[int]:
    return ns if INT64_MIN <= ns <= INT64_MAX else None


def _int_to_ns(v: int) -> Optional[int]:
    """Integer epoch -> ns; the unit is chosen by |v|: < 1e11 s, < 1e14 ms, < 1e17 µs, else ns."""
    if not INT64_MIN <= v <= INT64_MAX:
        return None
    a = -v if v < 0 else v
    if a < 10**11:
        return _in_range(v * 10**9)
    if a < 10**14:
        return _in_range(v * 10**6)
    if a < 10**17:
        return _in_range(v * 10**3)
    return v


def _float_to_ns(v: float) -> Optional[int]:
    """UNIX seconds -> ns, rounded to the nearest microsecond (ties to even), exactly.

    A double carries about 16 significant digits, so for present-day times the digits below
    the microsecond are noise of the binary representation (1672490759.123456 is really
    ...759.12345600128...); rounding to µs returns what the writer meant. The rounding is done
    on the exact rational value of the double, so it never depends on float arithmetic.
    """
    if v != v or v in (float("inf"), float("-inf")) or not -1e10 < v < 1e10:
        return None  # |v| >= 1e10 s is past year 2286, outside int64 ns anyway
    n, d = v.as_integer_ratio()
    q, r = divmod(abs(n) * 10**6, d)
    if 2 * r > d or (2 * r == d and q & 1):
        q += 1
    return _in_range((q if n >= 0 else -q) * 1000)


def _timestamp_to_ns(t: Timestamp) -> Optional[int]:
    s, n = t.seconds, t.nanoseconds
    if not isinstance(s, int) or not isinstance(n, int):
        return None
    return _in_range(int.__int__(s) * 10**9 + int.__int__(n))


def _epoch_text(m: "re.Match[bytes]") -> Optional[int]:
    sign, whole, frac = m.groups()
    if frac is None:
        v = int(whole)
        return _int_to_ns(-v if sign == b"-" else v)
    ns = int(whole) * 10**9 + int(frac[:9].ljust(9, b"0"))
    return _in_range(-ns if sign == b"-" else ns)


def _datetime_text(m: "re.Match[bytes]") -> Optional[int]:
    g = m.groupdict()
    year, month, day = int(g["y"]), int(g["mo"]), int(g["d"])
    try:
        days = date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError:  # month 0/13, Feb 30, 29 Feb of a common year, year 0000...
        return None
    hour = int(g["h"] or 0)
    minute = int(g["mi"] or 0)
    second = int(g["s"] or 0)
    frac = g["f"] or b""
    if hour == 24:
        # 24:00[:00[.000]] is the end of the day, i.e. 00:00 of the next one; nothing later.
        if minute or second or frac.strip(b"0"):
            return None
    elif hour > 23:
        return None
    if minute > 59 or second > 60:  # :60 is a leap second: it rolls over into the next second
        return None
    offset = 0
    if g["osign"] is not None:
        oh, om = int(g["oh"]), int(g["om"] or 0)
        if oh > 23 or om > 59:
            return None
        offset = (oh * 60 + om) * 60
        if g["osign"] == b"-":
            offset = -offset
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    return _in_range(seconds * 10**9 + int(frac[:9].ljust(9, b"0")))


def _text_to_ns(b: bytes) -> Optional[int]:
    b = b.strip()  # bytes.strip(): exactly the six ASCII whitespace characters
    m = _EPOCH.fullmatch(b)
    if m is not None:
        return _epoch_text(m)
    m = _EXTENDED.fullmatch(b) or _BASIC.fullmatch(b)
    if m is not None:
        return _datetime_text(m)
    return None


def parse_dt(value: Any, /) -> Optional[int]:
    """Return ``value`` as int64 nanoseconds since the UNIX epoch (UTC), or None.

    Accepts str, bytes, bytearray, memoryview, int (not bool), float and msgpack.Timestamp.
    None for anything unparseable or outside the int64 nanosecond range; never raises.
    """
    t = type(value)
    if t is str:
        return _text_to_ns(value.encode("ascii")) if value.isascii() else None
    if t is int:
        return _int_to_ns(value)
    if t is float:
        return _float_to_ns(value)
    if t is bytes:
        return _text_to_ns(value)
    if t is Timestamp:
        return _timestamp_to_ns(value)
    if t is bool or value is None:
        return None
    try:
        # Subclasses: read them through the base type, so overridden methods cannot interfere.
        if isinstance(value, str):
            return _text_to_ns(str.encode(value, "ascii")) if str.isascii(value) else None
        if isinstance(value, int):
            return _int_to_ns(int.__int__(value))
        if isinstance(value, float):
            return _float_to_ns(float.__float__(value))
        if isinstance(value, (bytes, bytearray)):
            return _text_to_ns(bytes(value))
        if isinstance(value, memoryview):
            return _text_to_ns(value.tobytes())
        if isinstance(value, Timestamp):
            return _timestamp_to_ns(value)
    except Exception:  # e.g. a released memoryview
        return None
    return None


def event_times(events: Iterable[Any], received_ns: int) -> "array[int]":
    """Event time per event: ``parse_dt(event["dt"])`` when present and parseable, else ``received_ns``.

    Events that are not dicts get ``received_ns``. Returns an ``array('q')`` as long as ``events``.
    """
    if type(events) is not list:
        events = list(events)
    n = len(events)
    out = array("q", [received_ns]) * n  # raises for a bad received_ns even with no events
    for i in range(n):
        if i >= len(events):  # a subclass' code run by parse_dt shrank the list
            break
        ev = events[i]
        if isinstance(ev, dict):
            try:
                v = dict.get(ev, "dt", _MISSING)
            except Exception:  # a key with a raising __eq__ colliding with "dt"
                continue
            if v is not _MISSING:
                ns = parse_dt(v)
                if ns is not None:
                    out[i] = ns
    return out


def format_times(times_ns: Sequence[int], /) -> bytes:
    """Each of ``times_ns`` (int64) as decimal text, separated by one space (b"" for none):
    the ``Fastingest-Time`` header of a NATS message."""
    if not (isinstance(times_ns, array) and times_ns.typecode == "q"):
        times_ns = array("q", times_ns)   # the compiled twin's errors for non-int64 values
    return b" ".join([b"%d" % t for t in times_ns])
