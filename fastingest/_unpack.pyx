# cython: language_level=3
"""Compiled twin of :mod:`fastingest.unpack`: fastingest's own MessagePack object builder.

It builds what ``msgpack.unpackb(raw=False, strict_map_key=True, timestamp=0)`` builds
(dicts, lists, str, bytes, int, float, bool, None, ``msgpack.Timestamp`` for ext -1,
``msgpack.ExtType`` for the others) and refuses what it refuses, in one pass over the
bytes that also frames the events and reads their time:

* map keys of up to 32 bytes come from a small cache of str objects (``unpack.h``), as
  msgspec does: events repeat the same keys;
* each event's top-level ``"dt"`` value is turned into its time as the map is built
  (the same answer as ``event_times``), so no second pass looks it up;
* an ext -1 timestamp becomes a ``msgpack.Timestamp`` by filling its two slots,
  without a Python-level constructor call;
* every length is checked against the bytes left before anything is allocated for it,
  and an event may not reach past ``max_event`` bytes nor nest deeper than
  ``max_depth``: the same bounds the framing scanner enforces.

The builder never decides an error. When anything is off (a byte msgpack refuses, an
event over a limit, data after the body) it gives up, and the caller takes the general
path (scanner, validator), which says what and where: answers cannot differ from it.
"""
from cpython cimport array
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_New, PyDict_SetItem
from cpython.float cimport PyFloat_FromDouble
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_FromLong, PyLong_FromLongLong, PyLong_FromUnsignedLongLong
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int16_t, int32_t, int64_t, int8_t, uint32_t, uint64_t

from ._timestamps cimport object_to_ns, seconds_to_ns
from .framing._framing cimport Frames
from .mpheader cimport fi_be32, fi_be64, fi_be_double, fi_be_float

cdef extern from "unpack.h":
    int FI_KEY_MAX
    object fi_key(const unsigned char* p, Py_ssize_t n)
    int FI_VALUE_MAX
    object fi_value(const unsigned char* p, Py_ssize_t n)
    Py_ssize_t fi_slot_offset(PyTypeObject* t, const char* name)
    object fi_new_pair(PyTypeObject* t, Py_ssize_t off_a, object a, Py_ssize_t off_b, object b)

cdef extern from "Python.h":
    PyTypeObject* type_of "Py_TYPE"(PyObject* o)
    int PyGC_Disable()
    int PyGC_Enable()

from msgpack import ExtType, Timestamp

__all__ = ["unpack_body", "unpack_map"]


class _Refused(Exception):
    """The builder gives up: the general path decides what the bytes are."""


cdef type _TIMESTAMP = Timestamp
cdef object _EXT_TYPE = ExtType
cdef Py_ssize_t _TS_SECONDS = fi_slot_offset(<PyTypeObject*>Timestamp, b"seconds")
cdef Py_ssize_t _TS_NANOS = fi_slot_offset(<PyTypeObject*>Timestamp, b"nanoseconds")
cdef bint _TS_SLOTS = _TS_SECONDS >= 0 and _TS_NANOS >= 0
cdef array.array _INT64_TEMPLATE = array.array("q", [])
cdef uint32_t NS_PER_S = 1000000000


cdef struct Cursor:
    const unsigned char* p      # the next byte
    const unsigned char* end    # the bytes end here (the event's limit, or the body's end)
    int max_depth
    PyObject* ts                # the Timestamp built last (borrowed; only compared) ...
    int64_t ts_ns               # ... and its time, or ts_ok false when out of int64 range
    bint ts_ok


cdef inline Py_ssize_t _need(Cursor* c, Py_ssize_t n) except -1:
    """``n`` more bytes must be there."""
    if n > c.end - c.p:
        raise _Refused()
    return n


cdef inline uint32_t _length(Cursor* c, int width) except? 0xFFFFFFFF:
    """The big-endian length field of ``width`` bytes after the first byte (consumed)."""
    cdef const unsigned char* q = c.p
    _need(c, 1 + width)
    c.p += 1 + width
    if width == 1:
        return q[1]
    if width == 2:
        return (<uint32_t>q[1] << 8) | q[2]
    return fi_be32(q + 1)


cdef object _timestamp(Cursor* c, const unsigned char* d, uint32_t n):
    """``msgpack.Timestamp`` from ext -1 data (msgpack's three layouts and checks); its
    time is kept in the cursor, so an event's ``dt`` needs no read of the object."""
    cdef int64_t seconds
    cdef uint32_t nanos
    cdef uint64_t u
    if n == 4:
        seconds, nanos = fi_be32(d), 0
    elif n == 8:
        u = fi_be64(d)
        seconds, nanos = <int64_t>(u & ((<uint64_t>1 << 34) - 1)), <uint32_t>(u >> 34)
    elif n == 12:
        nanos, seconds = fi_be32(d), <int64_t>fi_be64(d + 4)
    else:
        raise _Refused()
    if nanos >= NS_PER_S:
        raise _Refused()
    if _TS_SLOTS:
        ts = fi_new_pair(<PyTypeObject*>_TIMESTAMP, _TS_SECONDS, PyLong_FromLongLong(seconds),
                         _TS_NANOS, PyLong_FromLong(nanos))
    else:
        ts = _TIMESTAMP(seconds, nanos)
    c.ts, c.ts_ok = <PyObject*>ts, seconds_to_ns(seconds, nanos, &c.ts_ns)
    return ts


cdef object _ext(Cursor* c, uint32_t n):
    """An ext item whose type byte is at ``c.p`` and data follows (``n`` bytes)."""
    _need(c, 1 + <Py_ssize_t>n)
    cdef int8_t code = <int8_t>c.p[0]
    cdef const unsigned char* d = c.p + 1
    c.p += 1 + n
    if code == -1:
        return _timestamp(c, d, n)
    if code < 0:   # -128..-2: msgpack.ExtType refuses them
        raise _Refused()
    return _EXT_TYPE(code, PyBytes_FromStringAndSize(<const char*>d, n))


cdef inline object _str(Cursor* c, Py_ssize_t n):
    _need(c, n)
    cdef const unsigned char* s = c.p
    c.p += n
    if n <= FI_VALUE_MAX:   # short values from the value cache (unpack.h)
        return fi_value(s, n)
    return PyUnicode_DecodeUTF8(<const char*>s, n, NULL)


cdef inline object _bin(Cursor* c, Py_ssize_t n):
    _need(c, n)
    cdef const unsigned char* s = c.p
    c.p += n
    return PyBytes_FromStringAndSize(<const char*>s, n)


cdef object _key(Cursor* c, bint* is_dt):
    """A map key: str (short ones from the cache) or bytes, as strict_map_key allows."""
    cdef unsigned char b = c.p[0]
    cdef Py_ssize_t n
    cdef const unsigned char* s
    if 0xA0 <= b <= 0xBF:
        n = b & 0x1F
        c.p += 1
    elif b == 0xD9:
        n = _length(c, 1)
    elif b == 0xDA:
        n = _length(c, 2)
    elif b == 0xDB:
        n = _length(c, 4)
    elif b == 0xC4:
        return _bin(c, _length(c, 1))
    elif b == 0xC5:
        return _bin(c, _length(c, 2))
    elif b == 0xC6:
        return _bin(c, _length(c, 4))
    else:
        raise _Refused()   # map key must be a string
    _need(c, n)
    s = c.p
    c.p += n
    if n == 2 and s[0] == c'd' and s[1] == c't':
        is_dt[0] = True
    if n <= FI_KEY_MAX:
        return fi_key(s, n)
    return PyUnicode_DecodeUTF8(<const char*>s, n, NULL)


cdef object _map(Cursor* c, uint32_t n, int depth, PyObject** dt):
    """A map of ``n`` entries (its header consumed) at nesting level ``depth``; with
    ``dt`` not NULL, ``dt[0]`` is set to the value of its last ``"dt"`` key (borrowed:
    the map holds it)."""
    cdef bint is_dt
    cdef uint32_t i
    if depth > c.max_depth:
        raise _Refused()
    _need(c, 2 * <Py_ssize_t>n)   # at least two bytes an entry
    cdef dict d = PyDict_New()
    for i in range(n):
        _need(c, 1)
        is_dt = False
        key = _key(c, &is_dt)
        _need(c, 1)
        value = _value(c, depth)
        PyDict_SetItem(d, key, value)
        if is_dt and dt != NULL:
            dt[0] = <PyObject*>value
    return d


cdef object _array(Cursor* c, uint32_t n, int depth):
    if depth > c.max_depth:
        raise _Refused()
    _need(c, n)   # at least a byte an element
    cdef list items = PyList_New(n)
    cdef uint32_t i
    for i in range(n):
        _need(c, 1)
        item = _value(c, depth)
        Py_INCREF(item)
        PyList_SET_ITEM(items, i, item)
    return items


cdef object _value(Cursor* c, int depth):
    """The item at ``c.p`` (at least one byte is there) inside a container at ``depth``."""
    cdef const unsigned char* q = c.p
    cdef unsigned char b = q[0]
    cdef uint64_t u
    if b <= 0x7F:                                  # positive fixint
        c.p += 1
        return PyLong_FromLong(b)
    if b >= 0xE0:                                  # negative fixint
        c.p += 1
        return PyLong_FromLong(<int8_t>b)
    if b >= 0xA0 and b <= 0xBF:                    # fixstr
        c.p += 1
        return _str(c, b & 0x1F)
    if b <= 0x8F:                                  # fixmap
        c.p += 1
        return _map(c, b & 0x0F, depth + 1, NULL)
    if b <= 0x9F:                                  # fixarray
        c.p += 1
        return _array(c, b & 0x0F, depth + 1)
    if b == 0xC0:
        c.p += 1
        return None
    if b == 0xC2:
        c.p += 1
        return False
    if b == 0xC3:
        c.p += 1
        return True
    if b == 0xCB:
        _need(c, 9)
        c.p += 9
        return PyFloat_FromDouble(fi_be_double(q + 1))
    if b == 0xCA:
        _need(c, 5)
        c.p += 5
        return PyFloat_FromDouble(fi_be_float(q + 1))
    if b == 0xCC:
        _need(c, 2)
        c.p += 2
        return PyLong_FromLong(q[1])
    if b == 0xCD:
        _need(c, 3)
        c.p += 3
        return PyLong_FromLong((<long>q[1] << 8) | q[2])
    if b == 0xCE:
        _need(c, 5)
        c.p += 5
        return PyLong_FromLongLong(fi_be32(q + 1))
    if b == 0xCF:
        _need(c, 9)
        c.p += 9
        return PyLong_FromUnsignedLongLong(fi_be64(q + 1))
    if b == 0xD0:
        _need(c, 2)
        c.p += 2
        return PyLong_FromLong(<int8_t>q[1])
    if b == 0xD1:
        _need(c, 3)
        c.p += 3
        return PyLong_FromLong(<int16_t>((<uint32_t>q[1] << 8) | q[2]))
    if b == 0xD2:
        _need(c, 5)
        c.p += 5
        return PyLong_FromLong(<int32_t>fi_be32(q + 1))
    if b == 0xD3:
        _need(c, 9)
        c.p += 9
        return PyLong_FromLongLong(<int64_t>fi_be64(q + 1))
    if b == 0xD9:
        return _str(c, _length(c, 1))
    if b == 0xDA:
        return _str(c, _length(c, 2))
    if b == 0xDB:
        return _str(c, _length(c, 4))
    if b == 0xC4:
        return _bin(c, _length(c, 1))
    if b == 0xC5:
        return _bin(c, _length(c, 2))
    if b == 0xC6:
        return _bin(c, _length(c, 4))
    if 0xD4 <= b <= 0xD8:                          # fixext 1, 2, 4, 8, 16
        c.p += 1
        return _ext(c, 1 << (b - 0xD4))
    if b == 0xC7:
        return _ext(c, _length(c, 1))
    if b == 0xC8:
        return _ext(c, _length(c, 2))
    if b == 0xC9:
        return _ext(c, _length(c, 4))
    if b == 0xDC:
        return _array(c, _length(c, 2), depth + 1)
    if b == 0xDD:
        return _array(c, _length(c, 4), depth + 1)
    if b == 0xDE:
        return _map(c, _length(c, 2), depth + 1, NULL)
    if b == 0xDF:
        return _map(c, _length(c, 4), depth + 1, NULL)
    raise _Refused()                               # 0xC1, never used


cdef object _event(Cursor* c, PyObject** dt):
    """The map at ``c.p`` (an event: level 1), ``dt[0]`` its last ``"dt"`` value."""
    _need(c, 1)
    cdef unsigned char b = c.p[0]
    if 0x80 <= b <= 0x8F:
        c.p += 1
        return _map(c, b & 0x0F, 1, dt)
    if b == 0xDE:
        return _map(c, _length(c, 2), 1, dt)
    if b == 0xDF:
        return _map(c, _length(c, 4), 1, dt)
    raise _Refused()   # not a map


cdef inline bint _own_timestamp(Cursor* c, PyObject* dt) noexcept:
    """Whether ``dt`` is the Timestamp built last, whose time the cursor holds. A live
    Timestamp at that address is that one: any built after it would be the last."""
    return dt != NULL and dt == c.ts and type_of(dt) == <PyTypeObject*>_TIMESTAMP


cdef inline int _dt_ns(Cursor* c, PyObject* dt, int64_t* t) except -1:
    """The event time of an event's ``dt`` value (NULL: none) in ``t``: 1, or 0 when it
    gives none (object_to_ns's rule; the event's own Timestamp from the cursor)."""
    if _own_timestamp(c, dt):
        if c.ts_ok:
            t[0] = c.ts_ns
        return c.ts_ok
    return dt != NULL and object_to_ns(dt, t)


cdef inline int64_t _time(Cursor* c, PyObject* dt, int64_t received) except? -1:
    cdef int64_t t
    return t if _dt_ns(c, dt, &t) else received


# -- the callers' entries ----------------------------------------------------------------

cdef tuple build_frames(Frames frames, int max_depth, int64_t received):
    """``(events, times_ns)`` of framed MessagePack events; raises (any exception) when
    one of them is not what msgpack accepts: the caller then builds them one by one."""
    cdef Py_ssize_t i, n = frames.n
    cdef Cursor c
    cdef list events = PyList_New(n)
    cdef array.array times = array.clone(_INT64_TEMPLATE, n, zero=False)
    cdef int64_t* tp = <int64_t*>times.data.as_longlongs
    cdef PyObject* dt
    c.max_depth, c.ts = max_depth, NULL
    cdef int was = PyGC_Disable()
    try:
        for i in range(n):
            c.p = frames.ptr(i)
            c.end = c.p + frames.ln[i]
            dt = NULL
            event = _event(&c, &dt)
            if c.p != c.end:
                raise _Refused()
            tp[i] = _time(&c, dt, received)
            Py_INCREF(event)
            PyList_SET_ITEM(events, i, event)
    finally:
        if was:
            PyGC_Enable()
    return events, times


cdef object unpack_one(const unsigned char* p, Py_ssize_t n, int max_depth, int64_t* t,
                       bint* has_t):
    """The map that is exactly ``p[0:n]`` with its time, or None (refused)."""
    cdef Cursor c
    cdef PyObject* dt = NULL
    c.p, c.end, c.max_depth, c.ts = p, p + n, max_depth, NULL
    try:
        event = _event(&c, &dt)
        if c.p != c.end:
            return None
        has_t[0] = _dt_ns(&c, dt, t)
    except Exception:
        return None
    return event


cdef tuple decode_body(object body, int64_t max_event, int max_depth, int64_t received):
    """``(events, times_ns, offsets)`` of a whole MessagePack body (bytes) — one map or
    an array of maps, nothing after it — framed, checked and built in one pass; None
    when anything is refused (then decoding the body fails, on the general path)."""
    cdef const unsigned char* base = <const unsigned char*>PyBytes_AS_STRING(body)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(body), count, i
    cdef const unsigned char* end = base + size
    cdef Cursor c
    cdef unsigned char b
    cdef PyObject* dt
    cdef list events
    cdef array.array times, offsets
    cdef int64_t* tp
    cdef int64_t* op
    if size == 0:
        return None
    c.p, c.end, c.max_depth, c.ts = base, end, max_depth, NULL
    b = base[0]
    try:
        if 0x80 <= b <= 0x8F or b == 0xDE or b == 0xDF:
            count = 1
        elif 0x90 <= b <= 0x9F:
            count = b & 0x0F
            c.p += 1
        elif b == 0xDC:
            count = _length(&c, 2)
        elif b == 0xDD:
            count = _length(&c, 4)
        else:
            return None
        if count > end - c.p:   # at least a byte an event
            return None
    except _Refused:
        return None
    events = PyList_New(count)
    times = array.clone(_INT64_TEMPLATE, count, zero=False)
    offsets = array.clone(_INT64_TEMPLATE, count, zero=False)
    tp, op = <int64_t*>times.data.as_longlongs, <int64_t*>offsets.data.as_longlongs
    for i in range(count):   # a list never holds NULL, even if given up half-way
        Py_INCREF(None)
        PyList_SET_ITEM(events, i, None)
    cdef int was = PyGC_Disable()
    try:
        for i in range(count):
            op[i] = c.p - base
            c.end = end if end - c.p <= max_event else c.p + max_event
            dt = NULL
            event = _event(&c, &dt)
            tp[i] = _time(&c, dt, received)
            events[i] = event
        if c.p != end:
            return None
    except Exception:
        return None
    finally:
        if was:
            PyGC_Enable()
    return events, times, offsets


# -- for Python (the tests, the twin comparisons) -------------------------------------------

def unpack_map(data, int max_depth=1000):
    """The map that is exactly ``data`` (bytes), as ``msgpack.unpackb`` builds it, with its
    time: ``(event, time_ns or None)``. ValueError when msgpack would refuse it, when it
    is not one map, or when it nests deeper than ``max_depth``."""
    cdef const unsigned char[::1] view = data
    cdef int64_t t = 0
    cdef bint has_t = False
    event = unpack_one(&view[0] if view.shape[0] else NULL, view.shape[0], max_depth, &t, &has_t)
    if event is None:
        raise ValueError("not one MessagePack map msgpack accepts within the limits")
    return event, (t if has_t else None)


def unpack_body(bytes body, int64_t max_event, int max_depth, int64_t received_ns):
    """``(events, times_ns, offsets)`` of a whole MessagePack body, or None when decoding
    it fails (see :func:`fastingest.unpack.unpack_body`)."""
    return decode_body(body, max_event, max_depth, received_ns)
