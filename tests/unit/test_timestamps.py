"""Event time (SPEC "Event time: the dt field"): parse_dt and event_times, on both kernel sets.

Expected values never come from the parser: table rows are built with datetime arithmetic,
property tests format instants with their own formatter (integer arithmetic + datetime for the
calendar), floats are checked against exact rational arithmetic (fractions.Fraction).
"""
from __future__ import annotations

import enum
import math
import struct
from array import array
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
S = 10**9  # ns per second
MIN_TEXT = "1677-09-21T00:12:43.145224192Z"
MAX_TEXT = "2262-04-11T23:47:16.854775807Z"
EPOCH = datetime(1970, 1, 1)


def T(y, mo, d, h=0, mi=0, s=0, ns=0, off=0):
    """Expected int ns for a civil time with an offset in minutes, via datetime (not the parser)."""
    whole = (datetime(y, mo, d) - EPOCH) // timedelta(seconds=1) + h * 3600 + mi * 60 + s
    return (whole - off * 60) * S + ns


def in_range(ns):
    return ns if INT64_MIN <= ns <= INT64_MAX else None


# ---------------------------------------------------------------------------------------------
# Table tests: text
# ---------------------------------------------------------------------------------------------

VALID_TEXT = [
    # RFC 3339
    ("2022-12-31T13:45:59Z", T(2022, 12, 31, 13, 45, 59)),
    ("2022-12-31t13:45:59z", T(2022, 12, 31, 13, 45, 59)),
    ("2022-12-31 13:45:59Z", T(2022, 12, 31, 13, 45, 59)),
    ("2022-12-31T13:45:59.123456Z", T(2022, 12, 31, 13, 45, 59, 123456000)),
    ("2022-12-31 13:45:59.123456+02:00", T(2022, 12, 31, 13, 45, 59, 123456000, off=120)),
    ("2022-12-31T13:45:59.123456789Z", T(2022, 12, 31, 13, 45, 59, 123456789)),
    ("2022-12-31T13:45:59.1Z", T(2022, 12, 31, 13, 45, 59, 100000000)),
    ("2022-12-31T13:45:59.000000001Z", T(2022, 12, 31, 13, 45, 59, 1)),
    # 10+ fraction digits: kept to the ns, the rest truncated (never rounded)
    ("2022-12-31T13:45:59.1234567891Z", T(2022, 12, 31, 13, 45, 59, 123456789)),
    ("2022-12-31T13:45:59.9999999999999999999999Z", T(2022, 12, 31, 13, 45, 59, 999999999)),
    ("2022-12-31T13:45:59.0000000009Z", T(2022, 12, 31, 13, 45, 59)),
    ("2022-12-31T13:45:59-05:00", T(2022, 12, 31, 13, 45, 59, off=-300)),
    ("2022-12-31T13:45:59-00:00", T(2022, 12, 31, 13, 45, 59)),
    ("2022-12-31T13:45:59+23:59", T(2022, 12, 31, 13, 45, 59, off=23 * 60 + 59)),
    ("2022-12-31T13:45:59-23:59", T(2022, 12, 31, 13, 45, 59, off=-(23 * 60 + 59))),
    # ISO 8601: offsets ±hh, ±hhmm (also after the extended format, as strftime's %z writes)
    ("2022-12-31T13:45:59+02", T(2022, 12, 31, 13, 45, 59, off=120)),
    ("2022-12-31T13:45:59+0230", T(2022, 12, 31, 13, 45, 59, off=150)),
    ("2022-12-31T13:45:59-0230", T(2022, 12, 31, 13, 45, 59, off=-150)),
    ("2022-12-31T13:45:59+00", T(2022, 12, 31, 13, 45, 59)),
    # no offset = UTC; ',' as decimal mark
    ("2022-12-31T13:45:59", T(2022, 12, 31, 13, 45, 59)),
    ("2022-12-31T13:45:59,5Z", T(2022, 12, 31, 13, 45, 59, 500000000)),
    ("2022-12-31T13:45:59,123456789123", T(2022, 12, 31, 13, 45, 59, 123456789)),
    # reduced precision
    ("2022-12-31T13:45", T(2022, 12, 31, 13, 45)),
    ("2022-12-31T13:45Z", T(2022, 12, 31, 13, 45)),
    ("2022-12-31T13:45+01:00", T(2022, 12, 31, 13, 45, off=60)),
    ("2022-12-31T13", T(2022, 12, 31, 13)),
    ("2022-12-31T13-03", T(2022, 12, 31, 13, off=-180)),
    ("2022-12-31", T(2022, 12, 31)),
    # basic format
    ("20221231T134559Z", T(2022, 12, 31, 13, 45, 59)),
    ("20221231t134559z", T(2022, 12, 31, 13, 45, 59)),
    ("20221231 134559", T(2022, 12, 31, 13, 45, 59)),
    ("20221231T134559.123456789+0200", T(2022, 12, 31, 13, 45, 59, 123456789, off=120)),
    ("20221231T134559,5-02:00", T(2022, 12, 31, 13, 45, 59, 500000000, off=-120)),
    ("20221231T134559+05", T(2022, 12, 31, 13, 45, 59, off=300)),
    ("20221231T1345", T(2022, 12, 31, 13, 45)),
    ("20221231T13Z", T(2022, 12, 31, 13)),
    # leap years
    ("2000-02-29T00:00:00Z", T(2000, 2, 29)),
    ("2096-02-29T12:00:00Z", T(2096, 2, 29, 12)),
    ("2024-02-29", T(2024, 2, 29)),
    ("2022-02-28T23:59:59Z", T(2022, 2, 28, 23, 59, 59)),
    # 24:00 is the end of the day
    ("2022-12-31T24:00:00Z", T(2023, 1, 1)),
    ("2022-12-31T24:00:00.000000000000Z", T(2023, 1, 1)),
    ("2022-12-31T24:00", T(2023, 1, 1)),
    ("2022-12-31T24Z", T(2023, 1, 1)),
    ("2022-02-28T24:00:00+01:00", T(2022, 3, 1, off=60)),
    ("20221231T240000,0Z", T(2023, 1, 1)),
    # leap second :60 rolls over into the next second
    ("2016-12-31T23:59:60Z", T(2017, 1, 1)),
    ("2016-12-31T23:59:60.5Z", T(2017, 1, 1, ns=500000000)),
    ("2022-06-30T12:34:60+02:00", T(2022, 6, 30, 12, 35, off=120)),
    ("20161231T235960Z", T(2017, 1, 1)),
    # the int64 ns range, exactly
    (MIN_TEXT, INT64_MIN),
    (MAX_TEXT, INT64_MAX),
    ("1677-09-21T00:13:44.145224192+00:01", INT64_MIN + S),
    ("1677-09-20T23:59:59.145224192-00:13", INT64_MIN + 16 * S),
    ("2262-04-12T00:00:00+23:59", T(2262, 4, 11, 0, 1)),
    ("1970-01-01T00:00:00Z", 0),
    ("1969-12-31T23:59:59.999999999Z", -1),
    # surrounding ASCII whitespace is ignored
    ("  2022-12-31T13:45:59Z\n", T(2022, 12, 31, 13, 45, 59)),
    ("\t\r\n\x0b\x0c2022-12-31\x0c", T(2022, 12, 31)),
    ("2022-12-31 ", T(2022, 12, 31)),
]

VALID_EPOCH_TEXT = [
    ("1672490759", 1672490759 * S),
    ("1672490759123", 1672490759123 * 10**6),
    ("1672490759123456", 1672490759123456 * 1000),
    ("1672490759123456789", 1672490759123456789),
    ("0", 0),
    ("-0", 0),
    ("+0", 0),
    ("-1", -S),
    ("+1", S),
    ("007", 7 * S),
    ("00000000000000000000000000001", S),
    # digits only are always an epoch value, never a basic-format date
    ("20221231", 20221231 * S),
    ("9223372036854775807", INT64_MAX),
    ("-9223372036854775808", INT64_MIN),
    (" 1672490759\n", 1672490759 * S),
    # decimal seconds: exact, digits beyond 9 truncated toward zero
    ("1672490759.123", 1672490759123000000),
    ("1672490759.123456789999", 1672490759123456789),
    ("1672490759.000000001", 1672490759000000001),
    ("-1.5", -1500000000),
    ("+1.5", 1500000000),
    ("-0.0000000001", 0),
    ("-0.000000001", -1),
    ("0.0", 0),
    ("9223372036.854775807", INT64_MAX),
    ("-9223372036.854775808", INT64_MIN),
    ("1672490759123.5", None),  # decimal strings are seconds whatever their size
]

INVALID_TEXT = [
    "", " ", "\n\t", "Z", "T", "-", "+", ".", "now", "null", "None", "2022-12", "2022-",
    # calendar
    "1900-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2022-02-29", "2024-02-30", "2022-02-30T00:00Z",
    "2022-04-31", "2022-13-01", "2022-00-10", "2022-01-00", "2022-01-32", "0000-01-01T00:00:00Z",
    # clock
    "2022-12-31T25:00:00Z", "2022-12-31T24:00:01Z", "2022-12-31T24:01Z", "2022-12-31T24:00:60Z",
    "2022-12-31T24:00:00.0000000001Z", "2022-12-31T24:00:00.5", "2022-12-31T23:60:00Z",
    "2022-12-31T23:59:61Z", "2022-12-31T23:59:99Z", "2022-12-31T1:45:59Z", "2022-12-31T13:4:59Z",
    "2022-12-31T13:45:5Z",
    # offsets
    "2022-12-31T13:45:59+24:00", "2022-12-31T13:45:59-24:00", "2022-12-31T13:45:59+2400",
    "2022-12-31T13:45:59+24", "2022-12-31T13:45:59+23:60", "2022-12-31T13:45:59+1",
    "2022-12-31T13:45:59+123", "2022-12-31T13:45:59+12:3", "2022-12-31T13:45:59+12:",
    "2022-12-31T13:45:59+12:30:00", "2022-12-31T13:45:59Z+01:00", "2022-12-31T13:45:59ZZ",
    "2022-12-31T13:45:59+02:00Z", "2022-12-31T13:45:59 +02:00", "2022-12-31T13:45:59UTC",
    "2022-12-31T13:45:59 Z", "2022-12-31T13:45:59+", "2022-12-31T13:45:59-", "2022-12-31Z",
    "2022-12-31+02:00",
    # fractions
    "2022-12-31T13:45:59.Z", "2022-12-31T13:45:59.", "2022-12-31T13:45:59,", "2022-12-31T13:45.5Z",
    "2022-12-31T13.5Z", "2022-12-31T13:45:59..5Z", "2022-12-31T13:45:59.5.5Z",
    # basic/extended mixing and other shapes
    "2022-12-31T134559Z", "20221231T13:45:59Z", "2022-1231T13:45:59Z", "202212-31T13:45:59Z",
    "2022-12-31T13:4559", "20221231T1345:59", "20221231T", "20221231T1", "2022-12-31T",
    "2022-12-31T1", "+02022-12-31", "22-12-31", "2022-W52-6", "2022-365", "2022/12/31",
    "2022-12-31  13:45:59Z", "2022-12-31_13:45:59Z", "2022-12-31T13:45:59Z garbage",
    "Sat, 31 Dec 2022 13:45:59 GMT", "2022-12-31T13:45:59Z\x00", "\x002022-12-31",
    # out of the int64 ns range
    "1677-09-21T00:12:43.145224191Z", "2262-04-11T23:47:16.854775808Z", "1000-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z", "1677-09-21T00:12:44+00:02",
    # epoch strings
    "1.", ".5", "1e9", "1E9", "1_000", "0x10", "--1", "+-1", "1.5.5", "1,5", "1 000", "1.5Z",
    "9223372036854775808", "-9223372036854775809", "99999999999999999999999",
    "9223372036.854775808", "-9223372036.854775809", "99999999999",
    # non-ASCII (and whitespace that is not ASCII)
    "\u00a02022-12-31", "2022-12-31\u2003", "\uff12\uff10\uff12\uff12-12-31",
    "2022-12-31T13:45:59\u221202:00", "١٦٧٢٤٩٠٧٥٩", "2022-12-31T13:45:59\u00e9",
]


@pytest.mark.parametrize("text,expected", VALID_TEXT + VALID_EPOCH_TEXT)
def test_text_table(impl, text, expected):
    assert impl.parse_dt(text) == expected
    assert impl.parse_dt(text.encode("ascii")) == expected
    assert impl.parse_dt(bytearray(text, "ascii")) == expected
    assert impl.parse_dt(memoryview(text.encode("ascii"))) == expected


@pytest.mark.parametrize("text", INVALID_TEXT)
def test_text_rejected(impl, text):
    assert impl.parse_dt(text) is None
    assert impl.parse_dt(text.encode("utf-8")) is None


def test_spec_examples(impl):
    # The examples SPEC.md gives, verbatim.
    assert impl.parse_dt(1672490759) == 1672490759000000000
    assert impl.parse_dt(1672490759123) == 1672490759123000000
    assert impl.parse_dt(1672490759123456000) == 1672490759123456000
    assert impl.parse_dt(1672490759.123456) == 1672490759123456000
    assert impl.parse_dt("2022-12-31T13:45:59.123456Z") == T(2022, 12, 31, 13, 45, 59, 123456000)
    assert impl.parse_dt("2022-12-31 13:45:59.123456+02:00") == T(2022, 12, 31, 11, 45, 59, 123456000)
    assert impl.parse_dt("20221231T134559Z") == T(2022, 12, 31, 13, 45, 59)
    assert impl.parse_dt("20221231") == 20221231 * S


def test_bytes_non_ascii_rejected(impl):
    assert impl.parse_dt(b"\xff") is None
    assert impl.parse_dt(b"2022-12-31\xa0") is None
    assert impl.parse_dt(b"\xa02022-12-31") is None
    assert impl.parse_dt("2022-12-31T13:45:59Z".encode("utf-16")) is None


# ---------------------------------------------------------------------------------------------
# Table tests: int, float, msgpack.Timestamp, other types
# ---------------------------------------------------------------------------------------------

INT_CASES = [
    (0, 0), (1, S), (-1, -S),
    # seconds up to 1e11 - 1, but only ±9223372036 s fit in int64 ns
    (9223372036, 9223372036 * S), (9223372037, None),
    (-9223372036, -9223372036 * S), (-9223372037, None),
    (10**11 - 1, None), (-(10**11 - 1), None),
    # milliseconds from 1e11
    (10**11, 10**17), (-(10**11), -(10**17)),
    (9223372036854, 9223372036854 * 10**6), (9223372036855, None), (10**14 - 1, None),
    (-(10**14 - 1), None),
    # microseconds from 1e14
    (10**14, 10**17), (-(10**14), -(10**17)),
    (9223372036854775, 9223372036854775000), (9223372036854776, None), (10**17 - 1, None),
    (-9223372036854775, -9223372036854775000), (-(10**17 - 1), None),
    # nanoseconds from 1e17
    (10**17, 10**17), (-(10**17), -(10**17)), (10**17 + 1, 10**17 + 1),
    (INT64_MAX, INT64_MAX), (INT64_MIN, INT64_MIN), (INT64_MAX + 1, None), (INT64_MIN - 1, None),
    (10**30, None), (-(10**30), None), (2**64, None),
]


@pytest.mark.parametrize("value,expected", INT_CASES)
def test_int_magnitude_rule(impl, value, expected):
    assert impl.parse_dt(value) == expected
    # the same value as a digit string follows the same rule
    assert impl.parse_dt(str(value)) == expected


def ref_float(v: float):
    """Exact: the double's rational value in µs, rounded half to even, times 1000."""
    if math.isnan(v) or math.isinf(v):
        return None
    us = round(Fraction(v) * 10**6)
    return in_range(us * 1000)


FLOAT_CASES = [
    (1672490759.123456, 1672490759123456000),
    (1672490759.0, 1672490759000000000),
    (1672490759.5, 1672490759500000000),
    (0.0, 0), (-0.0, 0), (1.5, 1500000000), (-1.5, -1500000000),
    (1e-7, 0), (-1e-7, 0), (5e-324, 0), (-5e-324, 0),
    (4e-7, 0), (6e-7, 1000), (-6e-7, -1000),
    # 5e-7 and 1.5e-6 are not exact: their doubles lie just below/above the half
    (5e-7, 0), (1.5e-6, 2000),
    # exact ties (dyadic fractions with a half µs) go to the even µs
    (0.0078125, 7812000), (-0.0078125, -7812000), (0.0234375, 23438000),
    (1672490759.0078125, 1672490759007812000), (1672490759.0234375, 1672490759023438000),
    # a double just below a whole second rounds up into it
    (0.9999999, 1000000000), (-0.9999999, -1000000000),
    (1e10, None), (-1e10, None), (9.3e9, None), (1e300, None), (-1e300, None),
    (float("nan"), None), (float("inf"), None), (float("-inf"), None),
    (-float("nan"), None),
]


@pytest.mark.parametrize("value,expected", FLOAT_CASES)
def test_float_table(impl, value, expected):
    assert ref_float(value) == expected  # the table agrees with the exact reference
    assert impl.parse_dt(value) == expected


def test_float_range_edges(impl):
    for v in [9223372036.854775, 9223372036.854776, -9223372036.854775, -9223372036.854776,
              9223372036.0, -9223372037.0, -9223372036.854775807, 9223372036.8547754,
              math.nextafter(9223372036.854775, 0), math.nextafter(-9223372036.854775, 0)]:
        assert impl.parse_dt(v) == ref_float(v), v


def test_float_microsecond_ties_near_epoch(impl):
    # Near 0 a double has many more bits than µs need: the naive f * 1e6 can round onto a
    # half µs that the exact value is not on. Values k/2**m just beside a half-µs tie:
    for k in range(1, 200):
        tie = Fraction(2 * k + 1, 2 * 10**6)
        for v in (float(tie), math.nextafter(float(tie), 0), math.nextafter(float(tie), 1)):
            assert impl.parse_dt(v) == ref_float(v), v
            assert impl.parse_dt(-v) == ref_float(-v), -v


def ts(seconds, nanoseconds=0):
    return msgpack.Timestamp(seconds, nanoseconds)


TIMESTAMP_CASES = [
    (ts(0), 0),
    (ts(1672490759, 123456789), 1672490759123456789),
    (ts(-1, 999999999), -1),
    (ts(-1), -S),
    (ts(9223372036, 854775807), INT64_MAX),
    (ts(9223372036, 854775808), None),
    (ts(-9223372037, 145224192), INT64_MIN),
    (ts(-9223372037, 145224191), None),
    (ts(2**63 - 1), None),
    (ts(-(2**63)), None),
    (ts(2**40), None),
]


@pytest.mark.parametrize("value,expected", TIMESTAMP_CASES)
def test_msgpack_timestamp(impl, value, expected):
    assert impl.parse_dt(value) == expected


@pytest.mark.parametrize(
    "seconds,nanoseconds,header",
    [
        (1672490759, 0, b"\xd6\xff"),            # timestamp 32: fixext 4
        (0, 0, b"\xd6\xff"),
        (2**32 - 1, 0, b"\xd6\xff"),
        (1672490759, 123456789, b"\xd7\xff"),    # timestamp 64: fixext 8
        (2**34 - 1, 999999999, b"\xd7\xff"),
        (-1, 999999999, b"\xc7\x0c\xff"),        # timestamp 96: ext 8, length 12
        (-9223372037, 145224192, b"\xc7\x0c\xff"),
        (9223372036, 854775807, b"\xd7\xff"),
        (2**63 - 1, 999999999, b"\xc7\x0c\xff"),
        (-(2**63), 0, b"\xc7\x0c\xff"),
    ],
)
def test_msgpack_ext_minus_one_all_sizes(impl, seconds, nanoseconds, header):
    packed = msgpack.packb({"dt": msgpack.Timestamp(seconds, nanoseconds)})
    assert header in packed
    event = msgpack.unpackb(packed, timestamp=0)
    assert type(event["dt"]) is msgpack.Timestamp  # the event keeps the Timestamp object
    expected = in_range(seconds * S + nanoseconds)
    assert impl.parse_dt(event["dt"]) == expected
    assert list(impl.event_times([event], 7)) == [7 if expected is None else expected]


def test_msgpack_timestamp_mutated_attributes(impl):
    # msgpack's constructor checks its arguments, but the attributes stay writable.
    t = ts(1)
    t.nanoseconds = 2 * S + 5
    assert impl.parse_dt(t) == 3 * S + 5
    t.nanoseconds = -1
    assert impl.parse_dt(t) == S - 1
    t.nanoseconds = 1.5
    assert impl.parse_dt(t) is None
    t.seconds, t.nanoseconds = "1", 0
    assert impl.parse_dt(t) is None
    t.seconds = 2**100
    assert impl.parse_dt(t) is None


class IntSub(int):
    def __int__(self):
        return 0

    def __index__(self):
        return 0


class FloatSub(float):
    def __float__(self):
        return 0.0


class StrSub(str):
    def isascii(self):
        return False

    def encode(self, *args, **kwargs):
        raise RuntimeError("must not be called")

    def strip(self, *args):
        return ""


class BytesSub(bytes):
    def strip(self, *args):
        return b""


class Color(enum.IntEnum):
    RED = 1672490759


class TimestampSub(msgpack.Timestamp):
    __slots__ = ()


class BrokenTimestamp(msgpack.Timestamp):
    __slots__ = ()

    @property
    def seconds(self):
        raise ValueError("broken")

    @seconds.setter
    def seconds(self, value):
        pass


def test_subclasses_read_through_base_type(impl):
    assert impl.parse_dt(IntSub(1672490759)) == 1672490759 * S
    assert impl.parse_dt(Color.RED) == 1672490759 * S
    assert impl.parse_dt(FloatSub(1.5)) == 1500000000
    assert impl.parse_dt(StrSub("2022-12-31")) == T(2022, 12, 31)
    assert impl.parse_dt(StrSub("2022-12-31\u00e9")) is None
    assert impl.parse_dt(BytesSub(b" 1 ")) == S
    assert impl.parse_dt(TimestampSub(5, 6)) == 5 * S + 6
    assert impl.parse_dt(BrokenTimestamp(5, 6)) is None


@pytest.mark.parametrize(
    "value",
    [
        None, True, False, [], ["2022-12-31"], [1672490759], {}, {"dt": 1}, (1672490759,),
        {1672490759}, object(), Decimal("1672490759"), Fraction(1, 2), complex(1, 0),
        datetime(2022, 12, 31, tzinfo=timezone.utc), date(2022, 12, 31), timedelta(seconds=1),
        array("q", [1]), 1j, type, Ellipsis, NotImplemented,
    ],
    ids=repr,
)
def test_other_types_are_none(impl, value):
    assert impl.parse_dt(value) is None


def test_memoryview_variants(impl):
    mv = memoryview(b"xx1672490759xx")[2:-2]
    assert impl.parse_dt(mv) == 1672490759 * S
    released = memoryview(b"1")
    released.release()
    assert impl.parse_dt(released) is None
    # any buffer format is read as its bytes
    assert impl.parse_dt(memoryview(array("q", [0x3131]))) is None


# ---------------------------------------------------------------------------------------------
# event_times
# ---------------------------------------------------------------------------------------------

R = 1_700_000_000_123_456_789


class DictSub(dict):
    def get(self, key, default=None):
        raise AssertionError("event_times must read the dict storage")

    def __getitem__(self, key):
        raise AssertionError("event_times must read the dict storage")


class RaisingEq(str):
    # Hashes like "dt" and raises on comparison: the lookup fails, the event falls back.
    def __hash__(self):
        return hash("dt")

    def __eq__(self, other):
        raise RuntimeError("no")


def test_event_times_basic(impl):
    events = [
        {"dt": "2022-12-31T13:45:59Z"},
        {"dt": 1672490759},
        {"dt": 1672490759.5},
        {"dt": b"1672490759"},
        {"dt": msgpack.Timestamp(1, 2)},
        {},
        {"DT": 1},
        {"dt": None},
        {"dt": "garbage"},
        {"dt": True},
        {"dt": ["2022-12-31"]},
        "not a dict",
        None,
        [("dt", 1)],
        DictSub(dt="2022-12-31"),
        {1: 2, None: 3, "dt": "1"},
    ]
    out = impl.event_times(events, R)
    assert isinstance(out, array) and out.typecode == "q"
    assert list(out) == [
        T(2022, 12, 31, 13, 45, 59), 1672490759 * S, 1672490759500000000, 1672490759 * S,
        S + 2, R, R, R, R, R, R, R, R, R, T(2022, 12, 31), S,
    ]
    # the events are untouched
    assert events[0] == {"dt": "2022-12-31T13:45:59Z"} and events[8] == {"dt": "garbage"}


def test_event_times_empty_and_bounds(impl):
    assert list(impl.event_times([], R)) == []
    assert list(impl.event_times([{}], INT64_MIN)) == [INT64_MIN]
    assert list(impl.event_times([{}], INT64_MAX)) == [INT64_MAX]
    with pytest.raises(OverflowError):
        impl.event_times([], 2**63)
    with pytest.raises(OverflowError):
        impl.event_times([{}], INT64_MIN - 1)


def test_event_times_any_iterable(impl):
    events = ({"dt": 1}, {"dt": 2})
    assert list(impl.event_times(events, R)) == [S, 2 * S]
    assert list(impl.event_times(iter(events), R)) == [S, 2 * S]


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_event_times_raising_key_eq(impl):
    """Found on Python 3.13 (CI on every supported Python): the lookup that fails also
    printed "Exception ignored in PyDict_GetItem()"; the fallback must be silent."""
    assert list(impl.event_times([{RaisingEq("x"): 1}, {"dt": 2}], R)) == [R, 2 * S]


def test_event_times_large_batch(impl):
    values = ["2022-12-31T13:45:59.123456789Z", 1672490759123, 1672490759.25, None, "x", b"1"]
    events = [{"dt": values[i % len(values)], "i": i} for i in range(30000)]
    out = impl.event_times(events, R)
    assert len(out) == 30000
    expected = [impl.parse_dt(v) for v in values]
    assert all(out[i] == (expected[i % 6] if expected[i % 6] is not None else R) for i in range(30000))


# The kernel set is a fixture; the tests never mutate it, so reusing it across examples is safe.
fixture_ok = settings(suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------------------------------------
# Property tests: our own formatter -> parse_dt gives the exact integer back
# ---------------------------------------------------------------------------------------------

HOUR_NS = 3600 * S
DAY_NS = 86400 * S
QUANTUM = {"hour": HOUR_NS, "minute": 60 * S, "second": S}


def civil(seconds: int):
    """UNIX seconds -> (year, month, day, hour, minute, second), calendar by datetime."""
    days, sod = divmod(seconds, 86400)
    d = date(1970, 1, 1) + timedelta(days=days)
    hour, rest = divmod(sod, 3600)
    minute, second = divmod(rest, 60)
    return d.year, d.month, d.day, hour, minute, second


@st.composite
def instants(draw):
    """Instants across the whole int64 ns range, often snapped to a day/minute/second boundary,
    and the extremes themselves; a snap may step just outside the range, which must give None."""
    ns = draw(st.one_of(
        st.integers(INT64_MIN, INT64_MAX),
        st.sampled_from([INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1, INT64_MAX - 1]),
        st.integers(-(2**40), 2**40),
    ))
    snap = draw(st.sampled_from([None, None, S, 60 * S, DAY_NS]))
    if snap:
        ns -= ns % snap
    return ns


offsets = st.one_of(st.just(0), st.integers(-(23 * 60 + 59), 23 * 60 + 59),
                    st.sampled_from([-(23 * 60 + 59), 23 * 60 + 59, 60, -60, 330, -570]))


@st.composite
def formatted(draw):
    """(text, expected ns or None) for one instant in one supported text form."""
    ns = draw(instants())
    basic = draw(st.booleans())
    sep = draw(st.sampled_from("Tt "))
    precision = draw(st.sampled_from(["date", "hour", "minute", "second", "frac", "frac"]))
    nfrac = draw(st.integers(1, 15))
    extra = draw(st.text("0123456789", min_size=6, max_size=6))
    mark = draw(st.sampled_from(".,"))
    offset = 0 if precision == "date" else draw(offsets)
    oform = draw(st.sampled_from(["Z", "z", "", "+hh:mm", "+hhmm", "+hh"]))
    leap = draw(st.booleans())
    end_of_day = draw(st.booleans())
    pad = draw(st.sampled_from(["", " ", "\t", "\n", " \r\n"])) if draw(st.booleans()) else ""

    off_ns = offset * 60 * S
    local = ns + off_ns
    if precision == "date":
        q = DAY_NS
    elif precision == "frac":
        q = 10 ** (9 - min(nfrac, 9))
    else:
        q = QUANTUM[precision]
    local -= local % q  # reduced precision names the start of the period
    expected = in_range(local - off_ns)

    secs, frac = divmod(local, S)
    y, mo, d, h, mi, s = civil(secs)
    if end_of_day and precision != "date" and local % DAY_NS == 0:
        y, mo, d, h, mi, s = civil(secs - 86400)
        h = 24
    elif leap and precision in ("second", "frac") and s == 0:
        y, mo, d, h, mi, s = civil(secs - 1)
        s = 60

    if precision == "date":
        return f"{pad}{y:04d}-{mo:02d}-{d:02d}{pad}", expected
    colon = "" if basic else ":"
    text = f"{y:04d}{mo:02d}{d:02d}" if basic else f"{y:04d}-{mo:02d}-{d:02d}"
    text += f"{sep}{h:02d}"
    if precision != "hour":
        text += f"{colon}{mi:02d}"
    if precision in ("second", "frac"):
        text += f"{colon}{s:02d}"
    if precision == "frac":
        digits = f"{frac:09d}"
        if h == 24:  # 24:00 allows only an all-zero fraction, however long
            extra = "0" * len(extra)
        text += mark + (digits[:nfrac] if nfrac <= 9 else digits + extra[: nfrac - 9])
    if oform in ("Z", "z", "") and offset != 0:
        oform = "+hh:mm"
    if oform == "+hh" and offset % 60:
        oform = "+hhmm"
    if oform in ("Z", "z", ""):
        text += oform
    else:
        sign = "-" if offset < 0 or (offset == 0 and draw(st.booleans())) else "+"
        oh, om = divmod(abs(offset), 60)
        text += {"+hh:mm": f"{sign}{oh:02d}:{om:02d}", "+hhmm": f"{sign}{oh:02d}{om:02d}",
                 "+hh": f"{sign}{oh:02d}"}[oform]
    return pad + text + pad, expected


@st.composite
def epoch_texts(draw):
    """Integer and decimal epoch strings with the value they must give."""
    if draw(st.booleans()):
        unit = draw(st.sampled_from([S, 10**6, 10**3, 1]))
        v = draw(st.integers(INT64_MIN, INT64_MAX)) // unit
        v = draw(st.one_of(st.just(v), st.integers(-(10**20), 10**20)))
        text = str(v)
        if v >= 0 and draw(st.booleans()):
            text = "+" + text
        zeros = draw(st.integers(0, 3))
        text = text[0] + "0" * zeros + text[1:] if text[0] in "+-" else "0" * zeros + text
        return text, ref_int(v)
    ns = draw(st.integers(INT64_MIN - S, INT64_MAX + S))
    nfrac = draw(st.integers(1, 14))
    whole, frac = divmod(abs(ns), S)
    digits = f"{frac:09d}"
    digits = digits[:nfrac] if nfrac <= 9 else digits + "7" * (nfrac - 9)
    kept = int(digits[:9].ljust(9, "0"))
    sign = "-" if ns < 0 else draw(st.sampled_from(["", "+"]))
    value = whole * S + kept
    return f"{sign}{whole}.{digits}", in_range(-value if sign == "-" else value)


def ref_int(v: int):
    """The magnitude rule, written out as in SPEC."""
    if not INT64_MIN <= v <= INT64_MAX:
        return None
    for limit, mul in ((10**11, 10**9), (10**14, 10**6), (10**17, 10**3)):
        if abs(v) < limit:
            return in_range(v * mul)
    return v


@fixture_ok
@given(formatted())
@example(("2016-12-31T23:59:60.5Z", T(2017, 1, 1, ns=500000000)))
def test_property_formatted_text(impl, case):
    text, expected = case
    assert impl.parse_dt(text) == expected, text
    assert impl.parse_dt(text.encode()) == expected, text


@fixture_ok
@given(epoch_texts())
def test_property_epoch_text(impl, case):
    text, expected = case
    assert impl.parse_dt(text) == expected, text


@fixture_ok
@given(st.integers())
@example(INT64_MIN)
@example(INT64_MAX)
@example(10**11)
@example(-(10**17))
def test_property_int(impl, v):
    assert impl.parse_dt(v) == ref_int(v)


@fixture_ok
@given(st.floats())
def test_property_float(impl, v):
    assert impl.parse_dt(v) == ref_float(v)


@fixture_ok
@given(st.integers(-(2**33) * 10**6, 2**33 * 10**6))
def test_property_float_round_trips_microseconds(impl, us):
    # Below 2**33 s (year 2242) a double is finer than half a µs: µs written as a float
    # (time.time() style) come back exactly.
    assert impl.parse_dt(us / 10**6) == us * 1000


@fixture_ok
@given(st.integers(INT64_MIN, INT64_MAX))
def test_property_timestamp(impl, ns):
    seconds, nanoseconds = divmod(ns, S)
    assert impl.parse_dt(msgpack.Timestamp(seconds, nanoseconds)) == ns
    assert impl.parse_dt(msgpack.Timestamp.from_unix_nano(ns)) == ns


@fixture_ok
@given(instants())
def test_property_rfc3339_matches_datetime(impl, ns):
    # Cross-check with the standard library for the µs-precision RFC 3339 subset.
    us = ns // 1000
    d = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)
    assert impl.parse_dt(d.isoformat()) == in_range(us * 1000)
    assert impl.parse_dt(d.strftime("%Y%m%dT%H%M%S.%f%z")) == in_range(us * 1000)


# ---------------------------------------------------------------------------------------------
# Differential tests: both implementations give the same answer on anything
# ---------------------------------------------------------------------------------------------

ALPHABET = "0123456789-+:.,TtZz \t\n\x0b\x00é"


@st.composite
def mutated(draw):
    """A valid string with a few random edits: near-misses are where parsers disagree."""
    text = draw(st.one_of(formatted(), epoch_texts()))[0]
    chars = list(text)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["delete", "insert", "replace", "swap", "duplicate"]))
        i = draw(st.integers(0, len(chars)))
        c = draw(st.sampled_from(ALPHABET))
        if op == "insert" or not chars:
            chars.insert(i, c)
        elif op == "delete":
            del chars[min(i, len(chars) - 1)]
        elif op == "replace":
            chars[min(i, len(chars) - 1)] = c
        elif op == "swap" and len(chars) > 1:
            j = min(i, len(chars) - 2)
            chars[j], chars[j + 1] = chars[j + 1], chars[j]
        else:
            j = min(i, len(chars) - 1)
            chars[j:j] = chars[j: j + draw(st.integers(1, 4))]
    return "".join(chars)


def same(both, value):
    c, p = both
    a, b = c.parse_dt(value), p.parse_dt(value)
    assert a == b, (value, a, b)
    return a


@fixture_ok
@given(st.text())
def test_differential_text(both_impls, s):
    same(both_impls, s)


@fixture_ok
@given(st.binary())
def test_differential_binary(both_impls, b):
    same(both_impls, b)


@fixture_ok
@given(st.text(ALPHABET, max_size=40))
def test_differential_alphabet(both_impls, s):
    same(both_impls, s)
    same(both_impls, s.encode("utf-8"))


@fixture_ok
@given(mutated())
def test_differential_mutations(both_impls, s):
    same(both_impls, s)


# Loose shapes with random digits: out-of-range fields and basic/extended mixes, all near-valid.
near_valid = st.from_regex(
    r"\A\s?[+-]?[0-9]{2,4}-?[0-9]{2}-?[0-9]{2}([Tt ][0-9]{2}(:?[0-9]{2}(:?[0-9]{2}([.,][0-9]{1,12})?)?)?"
    r"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?)?\s?\Z"
)


@fixture_ok
@given(near_valid)
def test_differential_near_valid(both_impls, s):
    same(both_impls, s)


@fixture_ok
@given(st.floats() | st.integers() | st.integers(INT64_MIN, INT64_MAX).map(lambda v: v / 1e9))
def test_differential_numbers(both_impls, v):
    same(both_impls, v)


def _containers(inner):
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    _containers,
    max_leaves=6,
)


@fixture_ok
@given(st.lists(json_like | st.dictionaries(st.sampled_from(["dt", "x"]), json_like | mutated()), max_size=20))
def test_differential_event_times(both_impls, events):
    c, p = both_impls
    assert list(c.event_times(events, R)) == list(p.event_times(events, R))


# ---------------------------------------------------------------------------------------------
# Regressions (each pins a failure found while building this; keep them named after the bug)
# ---------------------------------------------------------------------------------------------


def test_cython_exports_c_api(both_impls):
    # The .pxd functions other Cython modules cimport are exported through __pyx_capi__.
    capi = both_impls[0].timestamps.__pyx_capi__
    for name in ("parse_dt_text", "epoch_int_to_ns", "epoch_float_to_ns", "seconds_to_ns", "object_to_ns"):
        assert name in capi, name


def test_float_bits_agree_on_extremes(both_impls):
    for bits in [0x0000000000000001, 0x000FFFFFFFFFFFFF, 0x3EB0C6F7A0B5ED8D, 0x41FF5E2F5D8C0000,
                 0x4201800000000000, 0x7FEFFFFFFFFFFFFF, 0x8000000000000001]:
        v = struct.unpack("<d", struct.pack("<Q", bits))[0]
        assert same(both_impls, v) == ref_float(v), hex(bits)


def test_regression_slow_path_owns_its_reference(impl):
    # The Cython slow path was handed a borrowed reference: a Timestamp subclass whose property
    # cleared the event list freed the very object being read (use after free).
    events = []

    class Shrinking(msgpack.Timestamp):
        __slots__ = ()

        @property
        def seconds(self):
            events.clear()
            return 1

        @seconds.setter
        def seconds(self, value):
            pass

    events.extend([{"dt": 1}, {"dt": Shrinking(0, 0)}, {"dt": 3}, {"dt": 4}])
    out = impl.event_times(events, R)
    assert list(out) == [S, S, R, R]


def test_regression_received_ns_float_is_type_error(impl):
    # Cython's int64_t argument conversion truncated 1.5 to 1 where array('q') raises.
    with pytest.raises(TypeError):
        impl.event_times([{}], 1.5)
    assert list(impl.event_times([{}], Color.RED)) == [int(Color.RED)]
