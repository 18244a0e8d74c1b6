# cython: language_level=3
"""Compiled twin of :mod:`fastingest.build`: same names, same answers.

JSON objects are built by fastingest's own builder (``_jsonbuild``) straight from each
event's bytes, a run it refuses by orjson as the reference builds it (the GC paused);
MessagePack events by fastingest's own builder
(``_unpack``), which also reads each event's ``dt`` as it builds it. The raw path validates each event with the
compiled validator and reads its top-level ``dt`` with a shallow scan of the validated
bytes where the reference decodes the event: the span of the ``dt`` value comes from the
validator (``json_object_end_dt``), MessagePack maps are walked with the shared header
table; text values go straight to the C dt parser, and only values a scan cannot read
exactly (escaped strings, floats, keys spelled with escapes) are decoded in Python.
"""
from cpython cimport array
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM
from cpython.object cimport PyObject
from libc.stdint cimport int16_t, int32_t, int64_t, uint32_t, uint64_t

from ._timestamps cimport (epoch_float_to_ns, epoch_int_to_ns, event_time, event_times_list,
                          object_to_ns, parse_dt_text, seconds_to_ns)
from ._jsonbuild cimport build_object, build_run
from ._unpack cimport build_frames
from ._validate cimport DtSpan, ValidateError, json_object_end_dt, msgpack_map_end, validate_error
from .framing._framing cimport Frames
from .mpheader cimport (FI_MP_ARRAY, FI_MP_BIN, FI_MP_EXT, FI_MP_MAP, FI_MP_STR, fi_be, fi_be32,
                        fi_be64, fi_be_double, fi_be_float, fi_mp_header,
                        load_msgpack_headers)

cdef extern from "simd.h":
    Py_ssize_t fr_find_in_string(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end, int nd) nogil

cdef extern from "<stdint.h>":
    const uint64_t UINT64_MAX
    const int64_t INT64_MAX

cdef extern from "Python.h":
    int PyGC_Disable()
    int PyGC_Enable()
    object PyMemoryView_FromMemory(char* mem, Py_ssize_t size, int flags)
    int PyBUF_READ

import orjson

from . import _validate as _validator
from .builders import one_by_one
from .constants import BUILD_RUN_BYTES, KIND_MSGPACK
from .errors import LineError
from .limits import MAX_DEPTH_CEILING

__all__ = ["build_events", "split_frames", "take"]

load_msgpack_headers()

cdef int K_MSGPACK = KIND_MSGPACK
cdef Py_ssize_t BUILD_BYTES = BUILD_RUN_BYTES
cdef int MAX_DEPTH = MAX_DEPTH_CEILING
cdef array.array _INT64_TEMPLATE = array.array("q", [])
_MISSING = object()


# -- reading dt on the raw path ------------------------------------------------------------

cdef inline Py_ssize_t _string_end(const unsigned char* p, Py_ssize_t q, Py_ssize_t n,
                                   bint* escaped) noexcept nogil:
    """Index just past the (valid) JSON string whose opening quote is at ``q``."""
    q += 1
    while True:
        q = fr_find_in_string(p, q, n, 0)
        if p[q] == c'"':
            return q + 1
        escaped[0] = True
        q += 2


cdef bint _json_int(const unsigned char* p, Py_ssize_t a, Py_ssize_t b, int64_t* out) noexcept nogil:
    """An integer token that fits int64 (larger ones are no time: orjson gives >int64)."""
    cdef bint neg = p[a] == c'-'
    cdef uint64_t v = 0, d
    cdef Py_ssize_t i
    if neg:
        a += 1
    for i in range(a, b):
        d = p[i] - c'0'
        if v > (UINT64_MAX - d) // 10:
            return False
        v = v * 10 + d
    if neg:
        if v > <uint64_t>INT64_MAX + 1:
            return False
        out[0] = <int64_t>(0 - v)
    else:
        if v > <uint64_t>INT64_MAX:
            return False
        out[0] = <int64_t>v
    return True


cdef bint _json_dt_value(const unsigned char* p, Py_ssize_t vs, Py_ssize_t ve,
                         int64_t* out) except -1:
    """The event time from a (valid) JSON ``dt`` value at ``p[vs:ve]``."""
    cdef unsigned char c = p[vs]
    cdef bint esc = False, is_float = False
    cdef Py_ssize_t k
    cdef int64_t v
    if c == c'"':
        _string_end(p, vs, ve, &esc)
        if not esc:
            return parse_dt_text(p + vs + 1, ve - vs - 2, out)
        text = orjson.loads(PyBytes_FromStringAndSize(<const char*>p + vs, ve - vs))
        return object_to_ns(<PyObject*>text, out)
    if c == c'-' or (c'0' <= c <= c'9'):
        for k in range(vs, ve):
            if p[k] == c'.' or p[k] == c'e' or p[k] == c'E':
                is_float = True
                break
        if not is_float:
            return _json_int(p, vs, ve, &v) and epoch_int_to_ns(v, out)
        return epoch_float_to_ns(float(PyBytes_FromStringAndSize(<const char*>p + vs, ve - vs)), out)
    return False


cdef bint _json_dt_slow(const unsigned char* p, Py_ssize_t n, int64_t* out) except -1:
    """A top-level key spelled with escapes might be "dt": decode the event to be sure."""
    event = orjson.loads(PyBytes_FromStringAndSize(<const char*>p, n))
    value = event.get("dt", _MISSING)
    return value is not _MISSING and object_to_ns(<PyObject*>value, out)


cdef Py_ssize_t _mp_skip(const unsigned char* p, Py_ssize_t q) noexcept nogil:
    """Index just past the (valid) MessagePack value at ``q``."""
    cdef int64_t remaining = 1, n
    cdef int head, cls
    while remaining:
        cls = fi_mp_header(p + q, 9, &head, &n)
        remaining -= 1
        q += head
        if cls == FI_MP_ARRAY:
            remaining += n
        elif cls == FI_MP_MAP:
            remaining += 2 * n
        else:
            q += n
    return q


cdef bint _mp_dt_value(const unsigned char* p, int64_t* out) noexcept nogil:
    cdef unsigned char b = p[0]
    cdef int hdr, cls
    cdef int64_t n
    cdef uint64_t u
    cdef const unsigned char* data
    if b <= 0x7F:
        return epoch_int_to_ns(b, out)
    if b >= 0xE0:
        return epoch_int_to_ns(<signed char>b, out)
    if 0xCC <= b <= 0xCF:
        u = p[1] if b == 0xCC else (fi_be(p + 1, 2) if b == 0xCD else (fi_be32(p + 1) if b == 0xCE else fi_be64(p + 1)))
        return u <= <uint64_t>INT64_MAX and epoch_int_to_ns(<int64_t>u, out)
    if 0xD0 <= b <= 0xD3:
        if b == 0xD0:
            return epoch_int_to_ns(<signed char>p[1], out)
        if b == 0xD1:
            return epoch_int_to_ns(<int16_t>fi_be(p + 1, 2), out)
        if b == 0xD2:
            return epoch_int_to_ns(<int32_t>fi_be32(p + 1), out)
        return epoch_int_to_ns(<int64_t>fi_be64(p + 1), out)
    if b == 0xCA:
        return epoch_float_to_ns(fi_be_float(p + 1), out)
    if b == 0xCB:
        return epoch_float_to_ns(fi_be_double(p + 1), out)
    cls = fi_mp_header(p, 9, &hdr, &n)
    if cls == FI_MP_STR or cls == FI_MP_BIN:   # bytes values are read as text too (parse_dt)
        return parse_dt_text(p + hdr, n, out)
    if cls == FI_MP_EXT and <signed char>p[hdr - 1] == -1:
        data = p + hdr
        if n == 4:
            return seconds_to_ns(fi_be32(data), 0, out)
        if n == 8:
            u = fi_be64(data)
            return seconds_to_ns(<int64_t>(u & ((<uint64_t>1 << 34) - 1)), <int64_t>(u >> 34), out)
        if n == 12:
            return seconds_to_ns(<int64_t>fi_be64(data + 4), fi_be32(data), out)
    return False


cdef bint _msgpack_dt(const unsigned char* p, int64_t* out) noexcept nogil:
    """The event time of a valid MessagePack map from its last top-level ``"dt"`` entry."""
    cdef int hdr
    cdef int64_t n, i
    cdef Py_ssize_t q, k, vs = -1
    fi_mp_header(p, 9, &hdr, &n)
    q = hdr
    for i in range(n):
        k = _mp_skip(p, q)
        # A str key "dt": fixstr a2, or str8 d9 02 (packers may use the longer form).
        if (p[q] == 0xA2 and p[q + 1] == c'd' and p[q + 2] == c't') or \
                (p[q] == 0xD9 and p[q + 1] == 2 and p[q + 2] == c'd' and p[q + 3] == c't') or \
                (p[q] == 0xDA and p[q + 1] == 0 and p[q + 2] == 2 and p[q + 3] == c'd' and p[q + 4] == c't') or \
                (p[q] == 0xDB and fi_be32(p + q + 1) == 2 and p[q + 5] == c'd' and p[q + 6] == c't'):
            vs = k
        q = _mp_skip(p, k)
    return vs >= 0 and _mp_dt_value(p + vs, out)


# -- the raw path ---------------------------------------------------------------------------

cpdef tuple split_frames(Frames frames, int kind, int max_depth, int64_t received_ns, bint collect):
    """Validate each event fully and read its top-level ``dt`` (see
    :func:`fastingest.build.split_frames`)."""
    cdef Py_ssize_t i, n = frames.n, kept = 0, r
    cdef const unsigned char* p
    cdef ValidateError err
    cdef DtSpan dt
    cdef int64_t t
    cdef bint ok
    cdef list raw = []
    cdef list line_errors = []
    cdef array.array times = array.clone(_INT64_TEMPLATE, n, zero=False)
    cdef array.array offsets = frames.int64s(frames.off)
    cdef object lines = frames.int64s(frames.lines) if frames.has_lines else None
    cdef int64_t* lp = <int64_t*>(<array.array>lines).data.as_longlongs if lines is not None else NULL
    cdef int64_t* op = <int64_t*>offsets.data.as_longlongs
    for i in range(n):
        p = frames.ptr(i)
        if kind == K_MSGPACK:
            r = msgpack_map_end(p, 0, frames.ln[i], max_depth, &err)
        else:
            dt.vs = dt.ve = -1
            dt.pending = dt.uncertain = False
            r = json_object_end_dt(p, 0, frames.ln[i], max_depth, &err, &dt)
        if r < 0:
            exc = validate_error(&err, max_depth, frames.off[i])
            if lp != NULL:
                exc.line = lp[i]
            if not collect:
                raise exc
            line_errors.append(LineError(exc.line or 0, exc.offset or 0, exc.detail or "", exc.status))
            continue
        if kind == K_MSGPACK:
            ok = _msgpack_dt(p, &t)
        elif dt.uncertain:
            ok = _json_dt_slow(p, frames.ln[i], &t)
        else:
            ok = dt.vs >= 0 and _json_dt_value(p, dt.vs, dt.ve, &t)
        times.data.as_longlongs[kept] = t if ok else received_ns
        raw.append(PyBytes_FromStringAndSize(<const char*>p, frames.ln[i]))
        op[kept] = op[i]
        if lp != NULL:
            lp[kept] = lp[i]
        kept += 1
    if kept < n:
        array.resize(times, kept)
        array.resize(offsets, kept)
        if lines is not None:
            array.resize(lines, kept)
    return raw, times, offsets, lines, line_errors


# -- objects ------------------------------------------------------------------------------

cdef list _build_json(Frames frames, int64_t* times, int64_t received):
    """Every framed JSON event, built by fastingest's JSON builder (``_jsonbuild``) in
    runs of about BUILD_RUN_BYTES with the cyclic GC paused meanwhile; a run the builder
    refuses is built by one orjson call, as the reference builds every run (see
    fastingest.build.build_events), so its errors are orjson's. With ``times`` not NULL,
    each event's time is read as its run is done (its objects still in the cache)."""
    cdef Py_ssize_t lo = 0, hi, size, i
    cdef list events
    if frames.n == 1:
        # One event: no array to wrap it in, build it from its bytes where they lie.
        event = build_object(frames.ptr(0), frames.ln[0], MAX_DEPTH, False)
        if event is None:
            if frames.straddler is None and type(frames.chunk) is bytes and \
                    frames.ln[0] == PyBytes_GET_SIZE(frames.chunk):
                doc = frames.chunk
            else:
                doc = PyMemoryView_FromMemory(<char*>frames.ptr(0), frames.ln[0], PyBUF_READ)
            event = orjson.loads(doc)
        if times != NULL:
            times[0] = event_time(<PyObject*>event, received)
        return [event]
    cdef int was = PyGC_Disable()
    try:
        events = []
        while lo < frames.n:
            hi, size = lo, 0
            while hi < frames.n and (size < BUILD_BYTES or hi == lo):
                size += frames.ln[hi]
                hi += 1
            if not build_run(frames, lo, hi, events):
                events.extend(orjson.loads(frames.json_doc(lo, hi)))
                if len(events) != hi:   # one value per framed event, or not events at all
                    raise ValueError("a run did not build one object per event")
            if times != NULL:
                for i in range(lo, hi):
                    times[i] = event_time(PyList_GET_ITEM(events, i), received)
            lo = hi
        return events
    finally:
        if was:
            PyGC_Enable()


cdef tuple take_frames(Frames frames, int kind, int max_depth, int64_t received_ns, bint collect,
                       bint raw):
    """``take`` for the other compiled modules."""
    cdef object items, times, offsets, lines
    cdef list line_errors
    if frames.n == 0:
        items, times, offsets = [], array.clone(_INT64_TEMPLATE, 0, False), array.clone(_INT64_TEMPLATE, 0, False)
        lines, line_errors = frames.line_numbers(), []
    elif raw:
        items, times, offsets, lines, line_errors = split_frames(frames, kind, max_depth, received_ns, collect)
    else:
        times = None
        try:
            if kind == K_MSGPACK:
                items, times = build_frames(frames, max_depth, received_ns)
            else:
                times = array.clone(_INT64_TEMPLATE, frames.n, zero=False)
                items = _build_json(frames, <int64_t*>(<array.array>times).data.as_longlongs, received_ns)
            offsets, lines, line_errors = frames.offsets(), frames.line_numbers(), []
        except Exception:
            items, offsets, lines, line_errors = one_by_one(frames, kind, _validator, max_depth, collect)
            times = None
        if times is None:
            times = event_times_list(items, received_ns)
    if frames.line_errors:
        line_errors = sorted(line_errors + frames.line_errors, key=_by_offset)
    if frames.error is not None:
        raise frames.error
    return items, times, offsets, lines, line_errors


def take(Frames frames, int kind, int max_depth, int64_t received_ns, bint collect, bint raw):
    """``(items, times_ns, offsets, lines, line_errors)`` for the events of ``frames``
    (objects, or their bytes when ``raw``); then raises the fault that ended them."""
    return take_frames(frames, kind, max_depth, received_ns, collect, raw)


def build_events(Frames frames, int kind):
    """Every framed event (see :func:`fastingest.build.build_events`)."""
    if frames.n == 0:
        return []
    if kind == K_MSGPACK:
        return build_frames(frames, MAX_DEPTH_CEILING, 0)[0]
    return _build_json(frames, NULL, 0)


def _by_offset(e):
    return e.offset
