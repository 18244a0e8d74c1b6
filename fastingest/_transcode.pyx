# cython: language_level=3
"""Compiled twin of :mod:`fastingest.transcode`: same names, same answers.

One pass over the MessagePack bytes with the shared header table (``msgpack_header.h``),
JSON written into one growing C buffer by the writers of ``transcode.h``; a map's keys
are remembered as spans of that buffer and compared when the map closes (pairwise for a
few keys, sorted beyond), so a repeated key costs no Python object either. Floats go
through CPython's own shortest repr (``PyOS_double_to_string``), rewritten to orjson's
notation. Input is checked for bounds and structure (ValueError, never a read past the
end), but its UTF-8 is the validator's business: give it events the codec validated.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, qsort, realloc
from libc.string cimport memcmp

from .mpheader cimport (FI_MP_ARRAY, FI_MP_BIN, FI_MP_CUT, FI_MP_EXT, FI_MP_MAP, FI_MP_STR,
                        FI_MP_RESERVED, fi_be, fi_be32, fi_be64, fi_be_double, fi_be_float,
                        fi_mp_header,
                        load_msgpack_headers)

cdef extern from "transcode.h":
    ctypedef struct ft_out:
        char* buf
        Py_ssize_t len
        Py_ssize_t cap
    int ft_reserve(ft_out* o, Py_ssize_t more) noexcept nogil
    int ft_put(ft_out* o, const char* s, Py_ssize_t n) noexcept nogil
    int ft_putc(ft_out* o, char c) noexcept nogil
    int ft_put_string(ft_out* o, const unsigned char* p, Py_ssize_t n) noexcept nogil
    int ft_put_base64(ft_out* o, const unsigned char* p, Py_ssize_t n) noexcept nogil
    int ft_put_uint64(ft_out* o, uint64_t v) noexcept nogil
    int ft_put_int64(ft_out* o, int64_t v) noexcept nogil
    int ft_put_timestamp_text(ft_out* o, int64_t seconds, uint32_t nanoseconds) noexcept nogil
    int ft_put_float_repr(ft_out* o, const char* repr) noexcept nogil

cdef extern from "Python.h":
    char* PyOS_double_to_string(double val, char format_code, int precision, int flags,
                                int* ptype) except NULL
    int Py_DTSF_ADD_DOT_0

import orjson

from .builders import unpack_msgpack
from .jsonout import TIMESTAMP_TEXT_SECONDS, dumps
from .transcode import _FLOAT_PROBES

__all__ = ["NATIVE_FLOATS", "events_to_json", "format_float", "msgpack_to_json"]

load_msgpack_headers()

cdef int64_t TEXT_MIN = TIMESTAMP_TEXT_SECONDS[0]
cdef int64_t TEXT_MAX = TIMESTAMP_TEXT_SECONDS[1]
#: Maps with more keys than this are checked for repeats by sorting their keys.
cdef Py_ssize_t PAIRWISE_KEYS = 8
cdef bint _native_floats = True


cdef struct Frame:
    int64_t left            # elements (maps: entries) not yet started
    Py_ssize_t keys_base    # a map: where its keys start in Walk.keys
    bint is_map
    bint key_next           # a map: the next item is a key
    bint started            # an element was written: a comma before the next


cdef struct KeySpan:
    Py_ssize_t off          # a key's JSON text in the output buffer
    Py_ssize_t len


cdef struct Walk:
    ft_out out
    Frame* frames
    Py_ssize_t depth
    Py_ssize_t frames_cap
    KeySpan* keys
    Py_ssize_t nkeys
    Py_ssize_t keys_cap


cdef const char* _sort_base = NULL   # the output buffer, for _key_order (GIL held)


cdef int _key_order(const void* a, const void* b) noexcept nogil:
    cdef const KeySpan* x = <const KeySpan*>a
    cdef const KeySpan* y = <const KeySpan*>b
    if x.len != y.len:
        return -1 if x.len < y.len else 1
    return memcmp(_sort_base + x.off, _sort_base + y.off, <size_t>x.len)


cdef bint _repeats(Walk* w, Py_ssize_t base) noexcept:
    """Whether two keys of the map whose keys start at ``base`` write the same text."""
    global _sort_base
    cdef Py_ssize_t i, j, n = w.nkeys - base
    cdef KeySpan* k = w.keys + base
    if n <= PAIRWISE_KEYS:
        for i in range(1, n):
            for j in range(i):
                if k[i].len == k[j].len and \
                        memcmp(w.out.buf + k[i].off, w.out.buf + k[j].off, <size_t>k[i].len) == 0:
                    return True
        return False
    _sort_base = w.out.buf
    qsort(k, <size_t>n, sizeof(KeySpan), _key_order)
    for i in range(1, n):
        if _key_order(&k[i - 1], &k[i]) == 0:
            return True
    return False


cdef int _grow_frames(Walk* w) except -1:
    cdef Py_ssize_t cap = w.frames_cap * 2 if w.frames_cap else 16
    cdef Frame* grown = <Frame*>realloc(w.frames, cap * sizeof(Frame))
    if grown == NULL:
        raise MemoryError()
    w.frames, w.frames_cap = grown, cap
    return 0


cdef int _add_key(Walk* w, Py_ssize_t off, Py_ssize_t length) except -1:
    cdef Py_ssize_t cap
    cdef KeySpan* grown
    if w.nkeys == w.keys_cap:
        cap = w.keys_cap * 2 if w.keys_cap else 64
        grown = <KeySpan*>realloc(w.keys, cap * sizeof(KeySpan))
        if grown == NULL:
            raise MemoryError()
        w.keys, w.keys_cap = grown, cap
    w.keys[w.nkeys].off = off
    w.keys[w.nkeys].len = length
    w.nkeys += 1
    return 0


cdef int _ok(int status) except -1:
    if status < 0:
        raise MemoryError()
    return 0


cdef int _put_float(ft_out* o, double v) except -1:
    cdef char* text
    if v != v or v - v != 0.0:   # NaN, +-inf
        return _ok(ft_put(o, "null", 4))
    if not _native_floats:
        written = orjson.dumps(v)
        return _ok(ft_put(o, PyBytes_AS_STRING(written), PyBytes_GET_SIZE(written)))
    text = PyOS_double_to_string(v, b'r', 0, Py_DTSF_ADD_DOT_0, NULL)
    try:
        return _ok(ft_put_float_repr(o, text))
    finally:
        PyMem_Free(text)


cdef int _put_scalar(ft_out* o, const unsigned char* p) except -1:
    """A nil, bool, int or float item at ``p`` (its bytes checked by the caller)."""
    cdef unsigned char b = p[0]
    if b <= 0x7F:
        return _ok(ft_put_uint64(o, b))
    if b >= 0xE0:
        return _ok(ft_put_int64(o, <int8_t>b))
    if b == 0xC0:
        return _ok(ft_put(o, "null", 4))
    if b == 0xC2:
        return _ok(ft_put(o, "false", 5))
    if b == 0xC3:
        return _ok(ft_put(o, "true", 4))
    if b == 0xCA:
        return _put_float(o, fi_be_float(p + 1))
    if b == 0xCB:
        return _put_float(o, fi_be_double(p + 1))
    if b == 0xCC:
        return _ok(ft_put_uint64(o, p[1]))
    if b == 0xCD:
        return _ok(ft_put_uint64(o, fi_be(p + 1, 2)))
    if b == 0xCE:
        return _ok(ft_put_uint64(o, fi_be32(p + 1)))
    if b == 0xCF:
        return _ok(ft_put_uint64(o, fi_be64(p + 1)))
    if b == 0xD0:
        return _ok(ft_put_int64(o, <int8_t>p[1]))
    if b == 0xD1:
        return _ok(ft_put_int64(o, <int16_t>fi_be(p + 1, 2)))
    if b == 0xD2:
        return _ok(ft_put_int64(o, <int32_t>fi_be32(p + 1)))
    return _ok(ft_put_int64(o, <int64_t>fi_be64(p + 1)))   # 0xD3


cdef int _put_ext(ft_out* o, int code, const unsigned char* data, int64_t n) except -1:
    cdef int64_t seconds
    cdef uint32_t nanoseconds
    cdef uint64_t both
    if code != -1:
        _ok(ft_put(o, '{"ext":', 7))
        _ok(ft_put_int64(o, code))
        _ok(ft_put(o, ',"data":', 8))
        _ok(ft_put_base64(o, data, n))
        return _ok(ft_putc(o, b'}'))
    if n == 4:
        seconds, nanoseconds = fi_be32(data), 0
    elif n == 8:
        both = fi_be64(data)
        seconds, nanoseconds = <int64_t>(both & ((<uint64_t>1 << 34) - 1)), <uint32_t>(both >> 34)
    elif n == 12:
        nanoseconds, seconds = fi_be32(data), <int64_t>fi_be64(data + 4)
    else:
        raise ValueError("invalid timestamp length")
    if TEXT_MIN <= seconds <= TEXT_MAX:
        return _ok(ft_put_timestamp_text(o, seconds, nanoseconds))
    _ok(ft_put(o, '{"seconds":', 11))
    _ok(ft_put_int64(o, seconds))
    _ok(ft_put(o, ',"nanoseconds":', 15))
    _ok(ft_put_uint64(o, nanoseconds))
    return _ok(ft_putc(o, b'}'))


cdef int _walk(Walk* w, const unsigned char* p, Py_ssize_t size) except -1:
    """Write the JSON text of the MessagePack map p[0:size] into ``w.out``: 0, or 1 when
    a map writes a key twice (nothing useful is written then)."""
    cdef ft_out* o = &w.out
    cdef Py_ssize_t pos = 0, start
    cdef int head, cls
    cdef int64_t n
    cdef bint is_key
    cdef Frame* top
    if size < 1 or fi_mp_header(p, size, &head, &n) != FI_MP_MAP:
        raise ValueError("not a MessagePack map")
    while True:
        is_key = False
        if w.depth:   # the separator before this item
            top = &w.frames[w.depth - 1]
            if top.is_map and not top.key_next:
                _ok(ft_putc(o, b':'))
                top.key_next = True
            else:
                if top.started:
                    _ok(ft_putc(o, b','))
                top.started = True
                top.left -= 1
                if top.is_map:
                    is_key, top.key_next = True, False
        if pos >= size:
            raise ValueError("MessagePack data ends early")
        cls = fi_mp_header(p + pos, size - pos, &head, &n)
        if cls == FI_MP_CUT or pos + head > size or \
                cls != FI_MP_ARRAY and cls != FI_MP_MAP and n > size - pos - head:
            raise ValueError("MessagePack data ends early")
        if cls == FI_MP_RESERVED or is_key and cls != FI_MP_STR and cls != FI_MP_BIN:
            raise ValueError("not a valid MessagePack event")
        start = o.len
        if cls == FI_MP_ARRAY or cls == FI_MP_MAP:
            pos += head
            if n:
                _ok(ft_putc(o, b'{' if cls == FI_MP_MAP else b'['))
                if w.depth == w.frames_cap:
                    _grow_frames(w)
                top = &w.frames[w.depth]
                w.depth += 1
                top.left, top.keys_base = n, w.nkeys
                top.is_map, top.key_next, top.started = cls == FI_MP_MAP, True, False
                continue
            _ok(ft_put(o, "{}" if cls == FI_MP_MAP else "[]", 2))
        elif cls == FI_MP_STR:
            _ok(ft_put_string(o, p + pos + head, n))
            pos += head + n
        elif cls == FI_MP_BIN:
            _ok(ft_put_base64(o, p + pos + head, n))
            pos += head + n
        elif cls == FI_MP_EXT:
            _put_ext(o, <int8_t>p[pos + head - 1], p + pos + head, n)
            pos += head + n
        else:
            _put_scalar(o, p + pos)
            pos += head + n
        if is_key:
            _add_key(w, start, o.len - start)
        # close every container this item completed
        while w.depth:
            top = &w.frames[w.depth - 1]
            if top.left or not top.key_next:
                break
            if top.is_map:
                if _repeats(w, top.keys_base):
                    return 1
                w.nkeys = top.keys_base
            _ok(ft_putc(o, b'}' if top.is_map else b']'))
            w.depth -= 1
        if not w.depth:
            if pos != size:
                raise ValueError("data after the MessagePack event")
            return 0


cdef bytes _one(Walk* w, object data):
    """The JSON text of one event (see :func:`msgpack_to_json`), with ``w``'s buffers."""
    cdef const unsigned char[::1] view
    cdef const unsigned char* p
    cdef Py_ssize_t n
    if type(data) is bytes:
        p, n = <const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)
    else:
        view = data
        p, n = &view[0] if view.shape[0] else <const unsigned char*>b"", view.shape[0]
    w.out.len = w.depth = w.nkeys = 0
    if _walk(w, p, n) == 0:
        return PyBytes_FromStringAndSize(w.out.buf, w.out.len)
    # A repeated key: the decoded event decides which value stays, and where.
    return dumps(unpack_msgpack(data))


cdef void _release(Walk* w) noexcept:
    free(w.out.buf)
    free(w.frames)
    free(w.keys)


def msgpack_to_json(data):
    """The JSON text of one validated MessagePack event (a map): what ``jsonout.dumps``
    writes for the event decoded from it (see :func:`fastingest.transcode.msgpack_to_json`)."""
    cdef Walk w
    memset_walk(&w)
    try:
        return _one(&w, data)
    finally:
        _release(&w)


def events_to_json(list raw):
    """:func:`msgpack_to_json` of every event of a raw batch (one buffer for them all)."""
    cdef Walk w
    cdef list out = []
    memset_walk(&w)
    try:
        for event in raw:
            out.append(_one(&w, event))
        return out
    finally:
        _release(&w)


cdef inline void memset_walk(Walk* w) noexcept:
    w.out.buf, w.out.len, w.out.cap = NULL, 0, 0
    w.frames, w.depth, w.frames_cap = NULL, 0, 0
    w.keys, w.nkeys, w.keys_cap = NULL, 0, 0


def format_float(double value):
    """``value`` as orjson writes a float (see :func:`fastingest.transcode.format_float`)."""
    cdef ft_out o
    cdef char* text
    o.buf, o.len, o.cap = NULL, 0, 0
    try:
        if value != value or value - value != 0.0:
            return b"null"
        text = PyOS_double_to_string(value, b'r', 0, Py_DTSF_ADD_DOT_0, NULL)
        try:
            _ok(ft_put_float_repr(&o, text))
        finally:
            PyMem_Free(text)
        return PyBytes_FromStringAndSize(o.buf, o.len)
    finally:
        free(o.buf)


#: Whether :func:`format_float` writes what orjson writes; if not, orjson writes floats.
NATIVE_FLOATS = all(format_float(v) == orjson.dumps(v) for v in _FLOAT_PROBES)
_native_floats = NATIVE_FLOATS
