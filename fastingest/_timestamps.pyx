# cython: language_level=3
"""Cython twin of :mod:`fastingest.timestamps`: same names, same answers.

The text parser is one pass over the bytes with no Python objects, so the C functions are
``nogil`` and other Cython modules can call them through ``_timestamps.pxd``. The Python entry
points do not release the GIL themselves: one parse is shorter than releasing and
re-acquiring it (benchmarks/README.md, "Timestamps"), and ``event_times`` reads a Python
object on every step of its loop.
"""
cimport cython
from cpython.object cimport PyObject, PyTypeObject
from cpython.array cimport array, clone
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int64_t, uint64_t
from libc.math cimport floor, fma

from msgpack import Timestamp as _Timestamp

__all__ = ["parse_dt", "event_times", "format_times"]

cdef extern from "Python.h":
    # Declared on PyObject* so the hot loop works on borrowed references without refcounting.
    PyTypeObject PyUnicode_Type
    PyTypeObject PyLong_Type
    PyTypeObject PyFloat_Type
    PyTypeObject PyBytes_Type
    PyTypeObject* Py_TYPE(PyObject* o)
    bint PyDict_Check(PyObject* o)
    PyObject* PyDict_GetItemWithError(PyObject* d, PyObject* key)
    Py_ssize_t PyList_GET_SIZE(PyObject* o)
    PyObject* PyList_GET_ITEM(PyObject* o, Py_ssize_t i)
    long long PyLong_AsLongLongAndOverflow(PyObject* o, int* overflow)
    double PyFloat_AS_DOUBLE(PyObject* o)
    char* PyBytes_AS_STRING(PyObject* o)
    Py_ssize_t PyBytes_GET_SIZE(PyObject* o)
    char* PyByteArray_AS_STRING(PyObject* o)
    Py_ssize_t PyByteArray_GET_SIZE(PyObject* o)
    PyObject* PyErr_Occurred()
    void PyErr_Clear()

cdef extern from "timestamps.h":
    const unsigned char* fi_ascii_data(PyObject* o, Py_ssize_t* n)
    const int64_t fi_pow10[10]
    const unsigned char fi_month_days[16]
    const int64_t MAX_S "FI_MAX_S"
    const int64_t MAX_FRAC "FI_MAX_FRAC"
    const int64_t MIN_S "FI_MIN_S"
    const int64_t MIN_FRAC "FI_MIN_FRAC"
    const uint64_t NEG_LIMIT "FI_NEG_LIMIT"
    const uint64_t POS_LIMIT "FI_POS_LIMIT"

cdef enum:
    NS = 1000000000
    MIN_YEAR = 1677             # years outside these are out of range whatever the offset
    MAX_YEAR = 2262

_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1
cdef object _DT = "dt"          # an interned str constant: dict lookups hit on identity
cdef array _Q = array("q")


cdef inline bint _is_space(unsigned char c) noexcept nogil:
    # The set bytes.strip() removes: space, \t \n \v \f \r.
    return c == c' ' or (c'\t' <= c <= c'\r')


cdef inline int _d2(const unsigned char* p) noexcept nogil:
    """Two ASCII digits -> 0..99, or -1. The caller guarantees two readable bytes."""
    cdef unsigned int a = <unsigned int>p[0] - <unsigned int>c'0'
    cdef unsigned int b = <unsigned int>p[1] - <unsigned int>c'0'
    if a > 9 or b > 9:
        return -1
    return <int>(a * 10 + b)


cdef inline bint _is_digit(unsigned char c) noexcept nogil:
    return <unsigned int>c - <unsigned int>c'0' < 10u


cdef bint seconds_to_ns(int64_t seconds, int64_t nanos, int64_t* out) noexcept nogil:
    if nanos < 0 or nanos >= NS or seconds > MAX_S or seconds < MIN_S:
        return 0
    if seconds == MAX_S and nanos > MAX_FRAC:
        return 0
    if seconds == MIN_S:
        if nanos < MIN_FRAC:
            return 0
        # MIN_S * 1e9 itself is below INT64_MIN: step down from the next second.
        out[0] = (seconds + 1) * NS - (NS - nanos)
        return 1
    out[0] = seconds * NS + nanos
    return 1


cdef bint epoch_int_to_ns(int64_t v, int64_t* out) noexcept nogil:
    cdef int64_t mul, lim
    if -100000000000LL < v < 100000000000LL:
        mul = 1000000000LL
        lim = 9223372036LL                # INT64_MAX // mul, and |INT64_MIN| // mul
    elif -100000000000000LL < v < 100000000000000LL:
        mul = 1000000
        lim = 9223372036854LL
    elif -100000000000000000LL < v < 100000000000000000LL:
        mul = 1000
        lim = 9223372036854775LL
    else:
        out[0] = v
        return 1
    if v > lim or v < -lim:
        return 0
    out[0] = v * mul
    return 1


cdef bint epoch_float_to_ns(double v, int64_t* out) noexcept nogil:
    cdef double a, whole, f, p, r, d, err
    cdef int64_t secs, us
    cdef bint neg
    if not (-1e10 < v < 1e10):        # also NaN and +-inf; 1e10 s is past the int64 range
        return 0
    neg = v < 0
    a = -v if neg else v
    whole = floor(a)
    # Exact: a - floor(a) is a multiple of a's ulp and below 1, so it fits in 53 bits.
    f = a - whole
    p = f * 1e6
    r = floor(p)
    d = p - r                          # exact, p < 2**20
    # p is the correctly rounded f * 1e6, and r + 0.5 is representable, so p lands on the same
    # side of r + 0.5 as the exact product unless p == r + 0.5; only then does the rounding
    # error decide, and fma gives it exactly.
    if d > 0.5:
        r += 1.0
    elif d == 0.5:
        err = fma(f, 1e6, -p)
        if err > 0.0 or (err == 0.0 and floor(r * 0.5) != r * 0.5):
            r += 1.0                   # above the half, or an exact tie to the even neighbour
    secs = <int64_t>whole
    us = <int64_t>r
    if us >= 1000000:
        secs += 1
        us -= 1000000
    if neg:
        if us:
            secs = -secs - 1
            us = 1000000 - us
        else:
            secs = -secs
    return seconds_to_ns(secs, us * 1000, out)


cdef inline bint _days_in_month_ok(int y, int m, int d) noexcept nogil:
    if m < 1 or m > 12 or d < 1:
        return 0
    if d <= fi_month_days[m]:
        return 1
    return m == 2 and d == 29 and (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0))


cdef inline int64_t _days_from_civil(int64_t y, int64_t m, int64_t d) noexcept nogil:
    # Howard Hinnant's days_from_civil, for y >= 1 (so plain C division is floor division).
    cdef int64_t era, yoe, doy, doe
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + 9 if m <= 2 else m - 3) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef bint _epoch_text(const unsigned char* s, Py_ssize_t n, int64_t* out) noexcept nogil:
    """[+-]?DIGITS: integer epoch by magnitude; [+-]?DIGITS.DIGITS: seconds, exact to the ns."""
    cdef Py_ssize_t p = 0, start, nd
    cdef bint neg = 0, over = 0
    cdef uint64_t mag = 0
    cdef int64_t frac = 0
    cdef unsigned char c = s[0]
    if c == c'+' or c == c'-':
        neg = c == c'-'
        p = 1
    start = p
    while p < n and _is_digit(s[p]):
        if not over:
            if mag > 922337203685477580ULL:
                over = 1
            else:
                mag = mag * 10 + (s[p] - c'0')    # <= 9223372036854775809, no wrap
                if mag > NEG_LIMIT:
                    over = 1
        p += 1
    if p == start:
        return 0
    if p == n:
        if over or mag > (NEG_LIMIT if neg else POS_LIMIT):
            return 0
        if neg:
            # -(int64_t)2**63 would overflow; build it from mag - 1 instead.
            return epoch_int_to_ns(-<int64_t>(mag - 1) - 1 if mag else 0, out)
        return epoch_int_to_ns(<int64_t>mag, out)
    if s[p] != c'.':
        return 0
    p += 1
    start = p
    while p < n and _is_digit(s[p]):
        if p - start < 9:
            frac = frac * 10 + (s[p] - c'0')
        p += 1
    nd = p - start
    if nd == 0 or p != n or over or mag > <uint64_t>MAX_S + 1:
        return 0
    if nd < 9:
        frac *= fi_pow10[9 - nd]
    if not neg:
        return seconds_to_ns(<int64_t>mag, frac, out)
    if frac:
        return seconds_to_ns(-<int64_t>mag - 1, NS - frac, out)
    return seconds_to_ns(-<int64_t>mag, 0, out)


cdef bint parse_dt_text(const unsigned char* s, Py_ssize_t n, int64_t* out) noexcept nogil:
    cdef Py_ssize_t p, q, start
    cdef int year, month, day, hour = 0, minute = 0, second = 0, oh, om, y1, y2
    cdef int64_t frac = 0, offset = 0, secs
    cdef unsigned int nonzero = 0
    cdef bint ext
    cdef unsigned char c
    while n > 0 and _is_space(s[0]):
        s += 1
        n -= 1
    while n > 0 and _is_space(s[n - 1]):
        n -= 1
    if n == 0:
        return 0

    # Shape first: '-' at 4 is an extended date, a separator at 8 a basic one (neither byte can
    # be part of an epoch value); everything else is an epoch value or nothing.
    if n >= 10 and s[4] == c'-':
        ext = 1
        if s[7] != c'-':
            return 0
        month = _d2(s + 5)
        day = _d2(s + 8)
        p = 10
    elif n >= 11 and (s[8] == c'T' or s[8] == c't' or s[8] == c' '):
        ext = 0
        month = _d2(s + 4)
        day = _d2(s + 6)
        p = 8
    else:
        return _epoch_text(s, n, out)
    y1 = _d2(s)
    y2 = _d2(s + 2)
    if y1 < 0 or y2 < 0 or month < 0 or day < 0:
        return 0
    year = y1 * 100 + y2
    if not _days_in_month_ok(year, month, day):
        return 0

    if p < n:
        c = s[p]
        if c != c'T' and c != c't' and c != c' ':
            return 0
        p += 1
        if n - p < 2:
            return 0
        hour = _d2(s + p)
        if hour < 0:
            return 0
        p += 2
        if p < n and (s[p] == c':' if ext else _is_digit(s[p])):
            p += ext
            if n - p < 2:
                return 0
            minute = _d2(s + p)
            if minute < 0:
                return 0
            p += 2
            if p < n and (s[p] == c':' if ext else _is_digit(s[p])):
                p += ext
                if n - p < 2:
                    return 0
                second = _d2(s + p)
                if second < 0:
                    return 0
                p += 2
                if p < n and (s[p] == c'.' or s[p] == c','):
                    p += 1
                    start = p
                    while p < n and _is_digit(s[p]):
                        if p - start < 9:
                            frac = frac * 10 + (s[p] - c'0')
                        nonzero |= s[p] - c'0'
                        p += 1
                    if p == start:
                        return 0
                    if p - start < 9:
                        frac *= fi_pow10[9 - (p - start)]

        if p < n:
            c = s[p]
            if c == c'Z' or c == c'z':
                p += 1
            elif c == c'+' or c == c'-':
                if n - p < 3:
                    return 0
                oh = _d2(s + p + 1)
                if oh < 0 or oh > 23:
                    return 0
                om = 0
                q = p + 3
                if q < n:
                    if s[q] == c':':
                        q += 1
                    if n - q < 2:
                        return 0
                    om = _d2(s + q)
                    if om < 0 or om > 59:
                        return 0
                    q += 2
                offset = (oh * 60 + om) * 60
                if c == c'-':
                    offset = -offset
                p = q
            if p != n:
                return 0

        if hour > 23:
            # 24:00[:00[.000]] closes the day: 00:00 of the next one, nothing later.
            if hour != 24 or minute or second or nonzero:
                return 0
        if minute > 59 or second > 60:  # :60 is a leap second, rolling into the next second
            return 0

    if year < MIN_YEAR or year > MAX_YEAR:
        return 0
    secs = (_days_from_civil(year, month, day) * 86400
            + hour * 3600 + minute * 60 + second - offset)
    return seconds_to_ns(secs, frac, out)


cdef int _timestamp_to_ns(object ts, int64_t* out) except -1:
    cdef int overflow = 0
    cdef long long sec, nanos
    s = ts.seconds
    n = ts.nanoseconds
    if not isinstance(s, int) or not isinstance(n, int):
        return 0
    sec = PyLong_AsLongLongAndOverflow(<PyObject*>s, &overflow)
    if overflow:
        return 0
    nanos = PyLong_AsLongLongAndOverflow(<PyObject*>n, &overflow)
    if overflow:
        return 0
    if 0 <= nanos < NS:
        return seconds_to_ns(sec, nanos, out)
    # Not produced by msgpack (its constructor checks), but the attributes are writable.
    total = int.__int__(s) * 1000000000 + int.__int__(n)
    if _I64_MIN <= total <= _I64_MAX:
        out[0] = total
        return 1
    return 0


cdef int _object_to_ns_slow(object v, int64_t* out) except -1:
    """Subclasses, bytearray, memoryview, msgpack.Timestamp: rare, so Python-level code is fine."""
    cdef int overflow = 0
    cdef long long x
    cdef const unsigned char* data
    cdef Py_ssize_t n
    t = type(v)
    if t is _Timestamp:
        try:
            return _timestamp_to_ns(v, out)
        except Exception:
            return 0
    if t is bool or v is None:
        return 0
    try:
        # Read subclasses through their base type's storage, never through overridable methods.
        if isinstance(v, str):
            data = fi_ascii_data(<PyObject*>v, &n)
            return data != NULL and parse_dt_text(data, n, out)
        if isinstance(v, int):
            x = PyLong_AsLongLongAndOverflow(<PyObject*>v, &overflow)
            if overflow or (x == -1 and PyErr_Occurred() != NULL):
                PyErr_Clear()
                return 0
            return epoch_int_to_ns(x, out)
        if isinstance(v, float):
            return epoch_float_to_ns(PyFloat_AS_DOUBLE(<PyObject*>v), out)
        if isinstance(v, bytes):
            return parse_dt_text(<const unsigned char*>PyBytes_AS_STRING(<PyObject*>v),
                                 PyBytes_GET_SIZE(<PyObject*>v), out)
        if isinstance(v, bytearray):
            return parse_dt_text(<const unsigned char*>PyByteArray_AS_STRING(<PyObject*>v),
                                 PyByteArray_GET_SIZE(<PyObject*>v), out)
        if isinstance(v, memoryview):
            b = v.tobytes()
            return parse_dt_text(<const unsigned char*>PyBytes_AS_STRING(<PyObject*>b),
                                 PyBytes_GET_SIZE(<PyObject*>b), out)
        if isinstance(v, _Timestamp):
            return _timestamp_to_ns(v, out)
    except Exception:                   # e.g. a released memoryview
        return 0
    return 0


cdef int object_to_ns(PyObject* v, int64_t* out) except -1:
    cdef PyTypeObject* t = Py_TYPE(v)
    cdef const unsigned char* data
    cdef Py_ssize_t n
    cdef int overflow = 0
    cdef long long x
    # Exact types first, straight to C; no reference counting on this path.
    if t == &PyUnicode_Type:
        data = fi_ascii_data(v, &n)
        return data != NULL and parse_dt_text(data, n, out)
    if t == &PyLong_Type:
        x = PyLong_AsLongLongAndOverflow(v, &overflow)   # cannot fail on an exact int
        return not overflow and epoch_int_to_ns(x, out)
    if t == &PyFloat_Type:
        return epoch_float_to_ns(PyFloat_AS_DOUBLE(v), out)
    if t == &PyBytes_Type:
        return parse_dt_text(<const unsigned char*>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), out)
    # Take an owned reference (a cast alone passes the borrowed one on): a subclass' Python code
    # can drop the container that held the last reference.
    cdef object owned = <object>v
    return _object_to_ns_slow(owned, out)


@cython.binding(False)                  # a plain builtin taking METH_O: the cheapest call there is
@cython.always_allow_keywords(False)
def parse_dt(value, /):
    """Return ``value`` as int64 nanoseconds since the UNIX epoch (UTC), or None.

    Accepts str, bytes, bytearray, memoryview, int (not bool), float and msgpack.Timestamp.
    None for anything unparseable or outside the int64 nanosecond range; never raises.
    """
    cdef int64_t ns
    if object_to_ns(<PyObject*>value, &ns):
        return ns
    return None


def event_times(events, received_ns):
    """Event time per event: ``parse_dt(event["dt"])`` when present and parseable, else ``received_ns``.

    Events that are not dicts get ``received_ns``. Returns an ``array('q')`` as long as ``events``.
    """
    # operator.index semantics, as array('q') has: a float is a TypeError, not truncated.
    cdef int64_t received = PyNumber_Index(received_ns)
    if type(events) is not list:
        events = list(events)
    return event_times_list(events, received)


cdef int64_t event_time(PyObject* ev, int64_t received) except? -1:
    """The time of one event (borrowed): its ``dt`` when a dict has a parseable one."""
    cdef PyObject* v
    cdef int64_t t
    if PyDict_Check(ev):
        # WithError, then cleared: a key whose __eq__ raises falls back to the
        # reception time silently (PyDict_GetItem reports it as "Exception ignored"
        # on stderr since Python 3.13).
        v = PyDict_GetItemWithError(ev, <PyObject*>_DT)
        if v == NULL:
            if PyErr_Occurred() != NULL:
                PyErr_Clear()
        elif object_to_ns(v, &t):
            return t
    return received


cdef array event_times_list(list events, int64_t received):
    cdef object evs = events
    cdef Py_ssize_t i, n = PyList_GET_SIZE(<PyObject*>evs)
    cdef array result = clone(_Q, n, False)
    cdef int64_t* buf = <int64_t*>result.data.as_longlongs
    for i in range(n):
        buf[i] = received
        # Python code run for a subclass value could shrink the list under us.
        if i < PyList_GET_SIZE(<PyObject*>evs):
            buf[i] = event_time(PyList_GET_ITEM(<PyObject*>evs, i), received)
    return result


def format_times(times_ns, /):
    """Each of ``times_ns`` (int64) as decimal text, separated by one space (b"" for none):
    the ``Fastingest-Time`` header of a NATS message. CPython's int formatting costs
    ~0.14 µs per 19-digit time; this writes the digits straight into one buffer."""
    cdef const int64_t[:] view
    if isinstance(times_ns, array) and (<array>times_ns).ob_descr.typecode == b"q":
        view = times_ns
    else:
        view = array("q", times_ns)   # OverflowError/TypeError as array('q') gives them
    cdef Py_ssize_t i, n = view.shape[0]
    if n == 0:
        return b""
    # At most 20 characters a time ("-9223372036854775808") plus its separator.
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n * 21)
    cdef char* buf = PyBytes_AS_STRING(<PyObject*>out)
    cdef char digits[20]
    cdef Py_ssize_t pos = 0, k
    cdef int64_t t
    cdef uint64_t u
    for i in range(n):
        if i:
            buf[pos] = 32   # b" "
            pos += 1
        t = view[i]
        if t < 0:
            buf[pos] = 45   # b"-"
            pos += 1
            u = <uint64_t>0 - <uint64_t>t
        else:
            u = <uint64_t>t
        k = 0
        while True:
            digits[k] = <char>(48 + u % 10)
            u //= 10
            k += 1
            if u == 0:
                break
        while k:
            k -= 1
            buf[pos] = digits[k]
            pos += 1
    return out[:pos]
