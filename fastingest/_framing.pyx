# cython: language_level=3
"""Cython twin of :mod:`fastingest.framing`: same names, same answers, C loops.

Chunks are scanned in place; only the event that straddles a chunk boundary is copied
(into a buffer bounded by ``max_event``), so a whole-body ``feed`` copies nothing and a
streamed body copies one event per chunk.
"""
from libc.stdint cimport int16_t, int32_t, int64_t, uint32_t, uint64_t
from cpython.object cimport PyObject, PyTypeObject

cdef extern from *:
    """
    /* The JSON event scan only stops at a few bytes; find the next one 16 at a time.
       Inside a string: '"', '\\' (and '\n' for NDJSON). Outside: '"', the four
       brackets (and '\n'). [ and ] differ from { and } only in bit 0x20. */
    #if (defined(__SSE2__) || defined(_M_X64)) && !defined(FI_NO_SSE2)
    #include <emmintrin.h>
    #define FR_SSE2 1
    #if defined(__GNUC__) || defined(__clang__)
    #define fr_ctz(m) __builtin_ctz((unsigned)(m))
    #else
    static inline int fr_ctz(int m) { int i = 0; while (!(m & 1)) { m >>= 1; i++; } return i; }
    #endif
    #endif
    static inline Py_ssize_t fr_find_in_string(const unsigned char *p, Py_ssize_t pos,
                                               Py_ssize_t end, int nd) {
    #ifdef FR_SSE2
        const __m128i q = _mm_set1_epi8(0x22), b = _mm_set1_epi8(0x5C);
        const __m128i n = _mm_set1_epi8(nd ? 0x0A : 0x22);
        while (pos + 16 <= end) {
            __m128i v = _mm_loadu_si128((const __m128i *)(p + pos));
            int m = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q),
                                      _mm_cmpeq_epi8(v, b)), _mm_cmpeq_epi8(v, n)));
            if (m) return pos + fr_ctz(m);
            pos += 16;
        }
    #endif
        while (pos < end) {
            unsigned char c = p[pos];
            if (c == 0x22 || c == 0x5C || (nd && c == 0x0A)) return pos;
            pos++;
        }
        return pos;
    }
    static inline Py_ssize_t fr_find_outside(const unsigned char *p, Py_ssize_t pos,
                                             Py_ssize_t end, int nd) {
    #ifdef FR_SSE2
        const __m128i q = _mm_set1_epi8(0x22), lo = _mm_set1_epi8(0x7B), hi = _mm_set1_epi8(0x7D);
        const __m128i bit = _mm_set1_epi8(0x20), n = _mm_set1_epi8(nd ? 0x0A : 0x22);
        while (pos + 16 <= end) {
            __m128i v = _mm_loadu_si128((const __m128i *)(p + pos));
            __m128i f = _mm_or_si128(v, bit);
            int m = _mm_movemask_epi8(_mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(f, lo), _mm_cmpeq_epi8(f, hi)),
                _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, n))));
            if (m) return pos + fr_ctz(m);
            pos += 16;
        }
    #endif
        while (pos < end) {
            unsigned char c = p[pos], f = c | 0x20;
            if (f == 0x7B || f == 0x7D || c == 0x22 || (nd && c == 0x0A)) return pos;
            pos++;
        }
        return pos;
    }
    typedef struct { uint64_t quote, bslash, open, close, nl; } FrMasks;
    /* Bit k of each mask: byte k of the 64 is '"', '\\', '{' or '[', '}' or ']', '\n'. */
    static inline void fr_masks64(const unsigned char *p, FrMasks *m, int nd) {
    #ifdef FR_SSE2
        const __m128i q = _mm_set1_epi8(0x22), b = _mm_set1_epi8(0x5C), n = _mm_set1_epi8(0x0A);
        const __m128i lo = _mm_set1_epi8(0x7B), hi = _mm_set1_epi8(0x7D), bit = _mm_set1_epi8(0x20);
        int j;
        m->quote = m->bslash = m->open = m->close = m->nl = 0;
        for (j = 0; j < 4; j++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * j));
            __m128i f = _mm_or_si128(v, bit);
            int sh = 16 * j;
            m->quote |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, q)) << sh;
            m->bslash |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, b)) << sh;
            m->open |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(f, lo)) << sh;
            m->close |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(f, hi)) << sh;
            if (nd) m->nl |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, n)) << sh;
        }
    #else
        int k;
        m->quote = m->bslash = m->open = m->close = m->nl = 0;
        for (k = 0; k < 64; k++) {
            unsigned char c = p[k], f = c | 0x20;
            uint64_t bitk = (uint64_t)1 << k;
            if (c == 0x22) m->quote |= bitk;
            else if (c == 0x5C) m->bslash |= bitk;
            else if (f == 0x7B) m->open |= bitk;
            else if (f == 0x7D) m->close |= bitk;
            else if (nd && c == 0x0A) m->nl |= bitk;
        }
    #endif
    }
    /* Bytes escaped by a backslash (simdjson's json_escape_scanner); *carry: the first
       byte of this block is escaped, and on return whether the next block's is. */
    static inline uint64_t fr_escaped(uint64_t backslash, uint64_t *carry) {
        const uint64_t odd = 0xAAAAAAAAAAAAAAAAULL;
        uint64_t potential, code, escape, escaped;
        if (!backslash) { escaped = *carry; *carry = 0; return escaped; }
        potential = backslash & ~*carry;
        code = (((potential << 1) | odd) - potential) ^ odd;
        escaped = code ^ (backslash | *carry);
        escape = code & backslash;
        *carry = escape >> 63;
        return escaped;
    }
    static inline uint64_t fr_prefix_xor(uint64_t x) {
        x ^= x << 1; x ^= x << 2; x ^= x << 4; x ^= x << 8; x ^= x << 16; x ^= x << 32;
        return x;
    }
    /* '{' and '[' bytes in p[0:end] (inside strings too: an upper bound of the
       nesting); -1 when nd and a '\n' is among them. */
    static inline Py_ssize_t fr_count_open(const unsigned char *p, Py_ssize_t end, int nd) {
        Py_ssize_t pos = 0, count = 0;
    #ifdef FR_SSE2
        const __m128i lo = _mm_set1_epi8(0x7B), bit = _mm_set1_epi8(0x20);
        const __m128i n = _mm_set1_epi8(0x0A);
        while (pos + 16 <= end) {
            __m128i v = _mm_loadu_si128((const __m128i *)(p + pos));
            if (nd && _mm_movemask_epi8(_mm_cmpeq_epi8(v, n))) return -1;
            unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_or_si128(v, bit), lo));
            while (m) { count++; m &= m - 1; }
            pos += 16;
        }
    #endif
        for (; pos < end; pos++) {
            unsigned char c = p[pos];
            if (nd && c == 0x0A) return -1;
            count += (c | 0x20) == 0x7B;
        }
        return count;
    }
    static inline int fr_ctz64(uint64_t m) {
    #if defined(__GNUC__) || defined(__clang__)
        return __builtin_ctzll(m);
    #else
        int i = 0; while (!(m & 1)) { m >>= 1; i++; } return i;
    #endif
    }
    """
    ctypedef struct FrMasks:
        uint64_t quote, bslash, open, close, nl
    void fr_masks64(const unsigned char* p, FrMasks* m, int nd) nogil
    uint64_t fr_escaped(uint64_t backslash, uint64_t* carry) nogil
    uint64_t fr_prefix_xor(uint64_t x) nogil
    int fr_ctz64(uint64_t m) nogil
    Py_ssize_t fr_find_in_string(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end, int nd) nogil
    Py_ssize_t fr_find_outside(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end, int nd) nogil
    Py_ssize_t fr_count_open(const unsigned char* p, Py_ssize_t end, int nd) nogil

cdef extern from "Python.h":
    # What Batch.__new__(Batch) ends in, without the bound-method call around it.
    object PyType_GenericAlloc(PyTypeObject* type, Py_ssize_t nitems)

cdef extern from "<stdint.h>":
    const uint64_t UINT64_MAX
    const int64_t INT64_MAX
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy, memchr
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython cimport array
from cpython.dict cimport PyDict_GetItem, PyDict_Next

from ._timestamps cimport (epoch_float_to_ns, epoch_int_to_ns, event_times_list, object_to_ns,
                          parse_dt_text, seconds_to_ns)
from ._validate cimport (DtSpan, ValidateError, json_object_end_dt, msgpack_map_end,
                        validate_error)

import orjson

from . import errors as E
from .build import one_by_one, unpack_msgpack
from . import _validate
from .errors import IngestError, LineError, ParseError, PayloadTooLarge

from .formats import KIND_JSON, KIND_MSGPACK, KIND_NDJSON, MEDIA_TYPES, collect_mode, media_kind
from .batch import Batch, RawBatch

cdef enum:
    K_JSON = 1
    K_NDJSON = 2
    K_MSGPACK = 3

# States: the same numbering as framing.py.
cdef enum:
    S_START = 0
    S_BOM1 = 1
    S_BOM2 = 2
    S_FIRST = 3
    S_AFTER = 4
    S_NEXT = 5
    S_END = 6
    S_EVENT = 7
    S_SKIP = 8
    S_ELEMS = 9
    S_DEAD = 10

cdef enum:
    F_LINE = 0
    F_DEPTH = 1
    F_SHAPE = 2
    F_SIZE = 3

cdef enum:
    MP_SCALAR = 0
    MP_STR = 1
    MP_BIN = 2
    MP_EXT = 3
    MP_ARRAY = 4
    MP_MAP = 5
    MP_INVALID = 6
    MP_CUT = 7

# JSON whitespace (NDJSON: without the newline, which ends a line).
cdef unsigned char WS_JSON[256]
cdef unsigned char WS_ND[256]


cdef void _init_tables():
    cdef int c
    for c in range(256):
        WS_JSON[c] = WS_ND[c] = 0
    for c in b" \t\r":
        WS_JSON[c] = WS_ND[c] = 1
    WS_JSON[10] = 1


_init_tables()

cdef array.array _INT64_TEMPLATE = array.array("q", [])
_CUT_OFF = (E.UNEXPECTED_END, E.LENGTH_PAST_END)
_NO_LINE_ERRORS = []   # shared by Frames without line errors; never appended to
_MISSING = object()
# Events are built in runs of about this many bytes: orjson reserves a worst-case buffer
# for its input, so one call over 10 MiB costs page faults and ~8x the body in memory;
# at 64 KiB a 10 MiB NDJSON decode peaks no higher than msgspec's (measured: 1 MiB runs
# 58 MiB, 256 KiB 50, 64 KiB 48 = msgspec decode_lines), and is no slower.
cdef Py_ssize_t BUILD_BYTES = 64 * 1024
BUILD_RUN_BYTES = BUILD_BYTES


# Payload sizes of float32/64, uint8..64, int8..64 (0xca..0xd3).
cdef int FIXED_PAYLOAD[10]
FIXED_PAYLOAD[:] = [4, 8, 1, 2, 4, 8, 1, 2, 4, 8]


cdef inline uint32_t _be(const unsigned char* p, int width) noexcept nogil:
    if width == 1:
        return p[0]
    if width == 2:
        return (<uint32_t>p[0] << 8) | p[1]
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline int _mp_header(const unsigned char* p, Py_ssize_t avail, int* hdr, int64_t* n) noexcept nogil:
    """Class of the MessagePack item at ``p``; fills header length and payload/count."""
    cdef unsigned char b = p[0]
    cdef int cls, width, extra
    hdr[0] = 1
    n[0] = 0
    if b <= 0x7F or b >= 0xE0 or b == 0xC0 or b == 0xC2 or b == 0xC3:
        return MP_SCALAR
    if b <= 0x8F:
        n[0] = b & 0x0F
        return MP_MAP
    if b <= 0x9F:
        n[0] = b & 0x0F
        return MP_ARRAY
    if b <= 0xBF:
        n[0] = b & 0x1F
        return MP_STR
    if b == 0xC1:
        return MP_INVALID
    if 0xCA <= b <= 0xD3:
        n[0] = FIXED_PAYLOAD[b - 0xCA]
        return MP_SCALAR
    if 0xD4 <= b <= 0xD8:
        hdr[0] = 2
        n[0] = 1 << (b - 0xD4)
        return MP_EXT
    extra = 0
    if b <= 0xC6:
        cls = MP_BIN
        width = 1 << (b - 0xC4)
    elif b <= 0xC9:
        cls = MP_EXT
        width = 1 << (b - 0xC7)
        extra = 1
    elif b <= 0xDB:
        cls = MP_STR
        width = 1 << (b - 0xD9)
    elif b <= 0xDD:
        cls = MP_ARRAY
        width = 2 if b == 0xDC else 4
    else:
        cls = MP_MAP
        width = 2 if b == 0xDE else 4
    hdr[0] = 1 + width + extra
    if avail < hdr[0]:
        return MP_CUT
    n[0] = _be(p + 1, width)
    return cls


cdef inline bint _mp_is_map_header(unsigned char b) noexcept nogil:
    return (0x80 <= b <= 0x8F) or b == 0xDE or b == 0xDF



# -- the JSON event scan ------------------------------------------------------------------

cdef struct JState:
    int depth
    bint in_str
    bint esc            # the next byte is escaped (a string ended a range with a backslash)
    int max_depth
    unsigned char* stack

cdef enum:
    R_MORE = 0          # the range is scanned; the event goes on
    R_DONE = 1          # the event ends just before pos
    R_FAULT = 2         # fault (kind in *fault) at pos
    R_SCALAR = 3        # this block needs the byte-by-byte scan


cdef inline int _bracket(JState* st, unsigned char c, int* fault) noexcept nogil:
    if c == c'{' or c == c'[':
        if st.depth >= st.max_depth:
            fault[0] = F_DEPTH
            return R_FAULT
        st.stack[st.depth] = c
        st.depth += 1
        return R_MORE
    if st.stack[st.depth - 1] != c - 2:   # '{'/'}' and '['/']' are two apart
        fault[0] = F_SHAPE
        return R_FAULT
    st.depth -= 1
    return R_DONE if st.depth == 0 else R_MORE


cdef int _json_scalar(const unsigned char* p, Py_ssize_t i, Py_ssize_t stop, int nd,
                      JState* st, Py_ssize_t* pos, int* fault) noexcept nogil:
    """Byte by byte over p[i:stop] (the reference semantics: a backslash escapes only
    inside a string)."""
    cdef unsigned char c
    cdef int r
    if i < stop and st.esc:
        st.esc = False
        if nd and p[i] == 10:
            pos[0] = i
            fault[0] = F_LINE
            return R_FAULT
        i += 1
    while i < stop:
        if st.in_str:
            i = fr_find_in_string(p, i, stop, nd)
            if i == stop:
                break
            c = p[i]
            if c == c'"':
                st.in_str = False
                i += 1
            elif c == c'\\':
                if i + 1 < stop:
                    if nd and p[i + 1] == 10:
                        pos[0] = i + 1
                        fault[0] = F_LINE
                        return R_FAULT
                    i += 2
                else:
                    st.esc = True
                    i += 1
            else:
                pos[0] = i
                fault[0] = F_LINE
                return R_FAULT
            continue
        i = fr_find_outside(p, i, stop, nd)
        if i == stop:
            break
        c = p[i]
        if c == c'"':
            st.in_str = True
        elif c == 10:
            pos[0] = i
            fault[0] = F_LINE
            return R_FAULT
        else:
            r = _bracket(st, c, fault)
            if r != R_MORE:
                pos[0] = i + 1 if r == R_DONE else i
                return r
        i += 1
    pos[0] = stop
    return R_MORE


cdef int _json_block(const unsigned char* p, Py_ssize_t i, int nd, JState* st,
                     Py_ssize_t* pos, int* fault) noexcept nogil:
    """The 64 bytes at p[i] at once (simdjson's stage 1): escapes, then string spans by a
    prefix XOR of the unescaped quotes, then only the brackets outside strings (and
    newlines) one by one. Where a backslash lies outside every string the two readings
    of it differ (it escapes nothing there): hand the block to the scalar scan."""
    cdef FrMasks m
    cdef uint64_t escaped, instr, todo, carry = st.esc
    cdef int k, r
    fr_masks64(p + i, &m, nd)
    escaped = fr_escaped(m.bslash, &carry)
    instr = fr_prefix_xor(m.quote & ~escaped)
    if st.in_str:
        instr = ~instr
    if m.bslash & ~instr:
        return R_SCALAR
    todo = ((m.open | m.close) & ~instr) | m.nl
    while todo:
        k = fr_ctz64(todo)
        todo &= todo - 1
        if (m.nl >> k) & 1:
            pos[0] = i + k
            fault[0] = F_LINE
            return R_FAULT
        r = _bracket(st, p[i + k], fault)
        if r != R_MORE:
            pos[0] = i + k + 1 if r == R_DONE else i + k
            return r
    st.in_str = <bint>(instr >> 63)
    st.esc = <bint>carry
    pos[0] = i + 64
    return R_MORE


cdef class Frames:
    """The events one ``feed()`` completed (see framing.Frames)."""

    cdef object chunk               # keeps the chunk's buffer alive
    cdef const unsigned char[::1] view
    cdef bint has_view
    cdef const unsigned char* cptr
    cdef int64_t cbase
    cdef bytes straddler            # the first event when it began in an earlier chunk
    cdef int64_t* off
    cdef int64_t* ln
    cdef int64_t* lines
    cdef Py_ssize_t n
    cdef bint has_lines
    cdef public list line_errors
    cdef public object error

    def __dealloc__(self):
        free(self.off)
        free(self.ln)
        free(self.lines)

    def __len__(self):
        return self.n

    cdef inline const unsigned char* _ptr(self, Py_ssize_t i) noexcept:
        if i == 0 and self.straddler is not None:
            return <const unsigned char*>PyBytes_AS_STRING(self.straddler)
        return self.cptr + (self.off[i] - self.cbase)

    cdef array.array _int64s(self, const int64_t* src):
        cdef array.array a = array.clone(_INT64_TEMPLATE, self.n, zero=False)
        if self.n:
            memcpy(a.data.as_voidptr, src, self.n * sizeof(int64_t))
        return a

    cpdef array.array offsets(self):
        """Body offset of each event's first byte."""
        return self._int64s(self.off)

    cpdef object line_numbers(self):
        """1-based NDJSON line of each event (None for other formats)."""
        return self._int64s(self.lines) if self.has_lines else None

    def event_bytes(self, Py_ssize_t i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return PyBytes_FromStringAndSize(<const char*>self._ptr(i), self.ln[i])

    def raw(self):
        """Each event's original bytes."""
        cdef Py_ssize_t i
        cdef list out = [None] * self.n
        for i in range(self.n):
            out[i] = PyBytes_FromStringAndSize(<const char*>self._ptr(i), self.ln[i])
        return out

    cdef bytes _json_document(self, Py_ssize_t lo, Py_ssize_t hi):
        cdef Py_ssize_t i, total = 2 + (hi - lo - 1 if hi > lo else 0)
        for i in range(lo, hi):
            total += self.ln[i]
        cdef bytes doc = PyBytes_FromStringAndSize(NULL, total)
        cdef char* w = PyBytes_AS_STRING(doc)
        w[0] = b"["
        w += 1
        for i in range(lo, hi):
            if i > lo:
                w[0] = b","
                w += 1
            memcpy(w, self._ptr(i), self.ln[i])
            w += self.ln[i]
        w[0] = b"]"
        return doc

    cdef bytes _msgpack_document(self, Py_ssize_t lo, Py_ssize_t hi):
        cdef Py_ssize_t i, head, total = 0
        cdef uint32_t n = <uint32_t>(hi - lo)
        for i in range(lo, hi):
            total += self.ln[i]
        head = 1 if n < 16 else (3 if n < 0x10000 else 5)
        cdef bytes doc = PyBytes_FromStringAndSize(NULL, total + head)
        cdef unsigned char* w = <unsigned char*>PyBytes_AS_STRING(doc)
        if head == 1:
            w[0] = 0x90 | n
        elif head == 3:
            w[0] = 0xDC
            w[1] = (n >> 8) & 0xFF
            w[2] = n & 0xFF
        else:
            w[0] = 0xDD
            w[1] = (n >> 24) & 0xFF
            w[2] = (n >> 16) & 0xFF
            w[3] = (n >> 8) & 0xFF
            w[4] = n & 0xFF
        w += head
        for i in range(lo, hi):
            memcpy(w, self._ptr(i), self.ln[i])
            w += self.ln[i]
        return doc

    def json_document(self, Py_ssize_t lo=0, hi=None):
        """One JSON array holding events ``lo:hi``, for a single ``orjson.loads``."""
        return self._json_document(lo, self.n if hi is None else min(<Py_ssize_t>hi, self.n))

    def msgpack_document(self, Py_ssize_t lo=0, hi=None):
        """One MessagePack array holding events ``lo:hi``, for a single ``msgpack.unpackb``."""
        return self._msgpack_document(lo, self.n if hi is None else min(<Py_ssize_t>hi, self.n))


cdef class Scanner:
    """Resumable framer for one body (see framing.Scanner)."""

    cdef readonly int kind
    cdef readonly int64_t max_event
    cdef readonly int max_depth
    cdef readonly bint collect
    cdef int state
    cdef bint array_mode
    cdef object shape          # array_mode once the first value says (None until then)
    cdef int64_t pos, scan_pos
    cdef int64_t ev_start, ev_line, line
    # JSON event state
    cdef unsigned char* stack
    cdef int depth
    cdef bint in_str, esc
    # MessagePack event state
    cdef int64_t* mp_stack
    cdef int mp_depth
    cdef bint mp_started
    cdef int64_t skip, remaining, top_hdr
    # kept bytes: body offsets [keep_from, keep_from + buf_len)
    cdef unsigned char* buf
    cdef Py_ssize_t buf_len, buf_cap
    cdef int64_t keep_from
    # the chunk being scanned
    cdef object chunk
    cdef const unsigned char[::1] view
    cdef bint has_view
    cdef const unsigned char* cp
    cdef Py_ssize_t cn
    cdef int64_t cbase
    # output of the current feed
    cdef int64_t* o_off
    cdef int64_t* o_len
    cdef int64_t* o_line
    cdef Py_ssize_t o_n, o_cap
    cdef bytes straddler
    cdef list line_errors
    cdef object error

    def __cinit__(self, int kind, int64_t max_event, int max_depth, collect=False):
        if kind != K_JSON and kind != K_NDJSON and kind != K_MSGPACK:
            raise ValueError(f"unknown kind {kind!r}")
        if max_event < 1 or max_depth < 1:
            raise ValueError("max_event and max_depth must be positive")
        self.kind = kind
        self.max_event = max_event
        self.max_depth = max_depth
        self.collect = bool(collect) and kind == K_NDJSON
        self.state = S_START
        self.ev_start = -1
        self.line = 1
        # One nesting stack, for the kind's own scan.
        if kind == K_MSGPACK:
            self.mp_stack = <int64_t*>malloc((max_depth + 1) * sizeof(int64_t))
        else:
            self.stack = <unsigned char*>malloc(max_depth + 1)
        if self.stack == NULL and self.mp_stack == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.stack)
        free(self.mp_stack)
        free(self.buf)
        free(self.o_off)
        free(self.o_len)
        free(self.o_line)

    @property
    def position(self):
        """Bytes fed so far."""
        return self.pos

    @property
    def is_array(self):
        """JSON/MessagePack: whether the body is an array of events (None until known)."""
        return self.shape

    # -- public -----------------------------------------------------------------------

    cpdef Frames feed(self, data):
        """Scan one more chunk of the body; return the events it completed."""
        if self.error is not None:
            return self._frames(None, self.error)
        self.chunk = data
        if type(data) is bytes:   # no buffer to acquire: the bytes object keeps its data
            self.cn = PyBytes_GET_SIZE(data)
            self.cp = <const unsigned char*>PyBytes_AS_STRING(data)
        else:
            self.view = data
            self.has_view = True
            self.cn = self.view.shape[0]
            self.cp = &self.view[0] if self.cn else NULL
        self.cbase = self.pos
        self.pos += self.cn
        cdef object error = None
        try:
            self._scan()
        except IngestError as exc:
            error = self.error = exc
            self.state = S_DEAD
        frames = self._frames(data, error)
        if error is None:
            self._keep_tail()
        if self.has_view:
            self.view = None
            self.has_view = False
        self.chunk = None
        self.cp = NULL
        self.cn = 0
        self.cbase = self.pos
        return frames

    cpdef Frames finish(self):
        """The body is complete: report an unfinished event or body as an error."""
        if self.error is not None:
            return self._frames(None, self.error)
        cdef object error = None
        try:
            self._finish()
        except IngestError as exc:
            error = self.error = exc
        self.state = S_DEAD if error is not None else S_END
        self.buf_len = 0
        return self._frames(None, error)

    # -- bookkeeping ------------------------------------------------------------------

    cdef Frames _frames(self, object data, object error):
        cdef Frames f = Frames.__new__(Frames)
        f.n = self.o_n
        f.off, f.ln, f.lines = self.o_off, self.o_len, self.o_line
        self.o_off = self.o_len = self.o_line = NULL
        self.o_n = self.o_cap = 0
        f.has_lines = self.kind == K_NDJSON
        if f.n:
            f.chunk = data
            if self.has_view:
                f.view = self.view
            f.cptr = self.cp
            f.cbase = self.cbase
            f.straddler = self.straddler
        self.straddler = None
        f.line_errors = self.line_errors if self.line_errors is not None else _NO_LINE_ERRORS
        self.line_errors = None
        f.error = error
        return f

    cdef int _emit(self, int64_t start, int64_t end) except -1:
        cdef Py_ssize_t cap
        if self.o_n == self.o_cap:
            cap = self.o_cap * 2 if self.o_cap else 64
            self.o_off = <int64_t*>self._grow(self.o_off, cap)
            self.o_len = <int64_t*>self._grow(self.o_len, cap)
            if self.kind == K_NDJSON:
                self.o_line = <int64_t*>self._grow(self.o_line, cap)
            self.o_cap = cap
        self.o_off[self.o_n] = start
        self.o_len[self.o_n] = end - start
        if self.kind == K_NDJSON:
            self.o_line[self.o_n] = self.ev_line
        self.o_n += 1
        return 0

    cdef void* _grow(self, void* p, Py_ssize_t cap) except NULL:
        cdef void* q = realloc(p, cap * sizeof(int64_t))
        if q == NULL:
            raise MemoryError()
        return q

    cdef int _append(self, const unsigned char* p, Py_ssize_t n) except -1:
        cdef Py_ssize_t cap
        cdef unsigned char* q
        if n <= 0:
            return 0
        if self.buf_len + n > self.buf_cap:
            cap = max(self.buf_cap * 2, self.buf_len + n, 256)
            q = <unsigned char*>realloc(self.buf, cap)
            if q == NULL:
                raise MemoryError()
            self.buf, self.buf_cap = q, cap
        memcpy(self.buf + self.buf_len, p, n)
        self.buf_len += n
        return 0

    cdef int _buffer_upto(self, int64_t upto) except -1:
        """Make the kept buffer hold body bytes [keep_from, upto) (upto within this chunk)."""
        cdef int64_t have = self.keep_from + self.buf_len
        if upto > have:
            self._append(self.cp + (have - self.cbase), upto - have)
        return 0

    cdef int _keep_tail(self) except -1:
        cdef int64_t keep = self.ev_start if self.state == S_EVENT else self.scan_pos
        if keep >= self.pos:
            self.buf_len = 0
            self.keep_from = keep
        elif keep >= self.cbase:
            self.buf_len = 0
            self.keep_from = keep
            self._append(self.cp + (keep - self.cbase), self.pos - keep)
        else:
            self._buffer_upto(self.pos)
        return 0

    cdef void _begin_event(self, int64_t at):
        self.state = S_EVENT
        self.ev_start = at
        self.ev_line = self.line
        if at >= self.cbase:
            self.buf_len = 0
            self.keep_from = at

    cdef void _reset_event(self):
        self.depth = 0
        self.in_str = self.esc = False
        self.mp_depth = 0
        self.mp_started = False
        self.skip = 0

    cdef int _event_done(self, int64_t end) except -1:
        """The current event ends just before body offset ``end`` (inside this chunk)."""
        if self.ev_start < self.cbase:
            self._buffer_upto(end)
            self.straddler = PyBytes_FromStringAndSize(<const char*>self.buf, self.buf_len)
            self.buf_len = 0
            self.keep_from = end
        self._emit(self.ev_start, end)
        self._reset_event()
        return 0

    cdef int _fault(self, exc) except -1:
        """A fault in the body: fatal, or (NDJSON collect mode, 406) one bad line skipped."""
        if not self.collect or exc.status != 406:
            raise exc
        if self.line_errors is None:
            self.line_errors = []
        self.line_errors.append(LineError(exc.line or 0, exc.offset or 0, exc.detail or "", exc.status))
        self.state = S_SKIP
        return 0

    cdef object _locate(self, int64_t stop, bint at_end):
        """The validator's first error in the current event's bytes before ``stop``."""
        cdef object src
        cdef int64_t start, base
        if self.ev_start >= self.cbase and self.cn:
            src, base = self.chunk, self.cbase
            start = self.ev_start - base
        else:
            if stop > self.keep_from + self.buf_len:
                self._buffer_upto(stop)
            src = PyBytes_FromStringAndSize(<const char*>self.buf, self.buf_len)
            base = self.keep_from
            start = self.ev_start - base
        try:
            if self.kind == K_MSGPACK:
                _validate.scan_msgpack_map(src, start, stop - base, self.max_depth, base)
            else:
                _validate.scan_json_object(src, start, stop - base, self.max_depth, base)
        except ParseError as exc:
            if at_end:
                return exc
            if exc.offset is not None and exc.offset < stop and exc.detail not in _CUT_OFF:
                return exc
        return None

    # -- the scan ---------------------------------------------------------------------

    cdef int _scan(self) except -1:
        cdef const unsigned char* p = self.cp
        cdef Py_ssize_t end = self.cn
        cdef Py_ssize_t i = self.scan_pos - self.cbase
        cdef int state
        cdef unsigned char c
        cdef const unsigned char* ws = &WS_JSON[0]
        cdef const void* nl
        if self.kind == K_NDJSON:
            ws = &WS_ND[0]
        if i < 0:
            i = 0   # msgpack: resuming mid-header; the header gather reads the kept bytes
        while True:
            state = self.state
            if state == S_EVENT:
                if self.kind == K_MSGPACK:
                    i = self._scan_msgpack_event(i)
                else:
                    i = self._scan_json_event(i)
                if self.state == S_EVENT:
                    return 0
                continue
            if self.kind == K_MSGPACK:
                if self.scan_pos >= self.cbase + end:
                    return 0
                if not self._msgpack_top():
                    return 0
                i = self.scan_pos - self.cbase
                continue
            if i >= end:
                self.scan_pos = self.cbase + end
                return 0
            c = p[i]
            if state == S_SKIP:
                nl = memchr(p + i, 10, end - i)
                if nl == NULL:
                    self.scan_pos = self.cbase + end
                    return 0
                self.line += 1
                self.state = S_START
                i = <const unsigned char*>nl - p + 1
                continue
            if self.cbase + i == 0 and c == 0xEF and state == S_START:
                self.state = S_BOM1
                i += 1
                continue
            if state == S_BOM1 or state == S_BOM2:
                if c != (0xBB if state == S_BOM1 else 0xBF):
                    raise ParseError(detail=E.BAD_BOM, offset=0)
                self.state = S_BOM2 if state == S_BOM1 else S_START
                i += 1
                continue
            while i < end and ws[p[i]]:
                i += 1
            if i == end:
                continue
            c = p[i]
            if self.kind == K_NDJSON:
                i = self._ndjson_top(c, i)
            else:
                i = self._json_top(c, i)

    cdef Py_ssize_t _json_top(self, unsigned char c, Py_ssize_t i) except -1:
        cdef int state = self.state
        cdef int64_t at = self.cbase + i
        if state == S_START:
            if c == b"[":
                self.array_mode = True
                self.shape = True
                self.state = S_FIRST
                return i + 1
            if c == b"{":
                self.shape = False
                self._begin_event(at)
                return i
            raise ParseError(detail=E.EXPECTED_BODY_JSON, offset=at)
        if state == S_FIRST or state == S_NEXT:
            if c == b"{":
                self._begin_event(at)
                return i
            if c == b"]" and state == S_FIRST:
                self.state = S_END
                return i + 1
            raise ParseError(detail=E.EXPECTED_OBJECT, offset=at)
        if state == S_AFTER:
            if c == b",":
                self.state = S_NEXT
                return i + 1
            if c == b"]":
                self.state = S_END
                return i + 1
            raise ParseError(detail=E.EXPECTED_COMMA_OR_BRACKET, offset=at)
        raise ParseError(detail=E.DATA_AFTER_BODY, offset=at)

    cdef Py_ssize_t _ndjson_top(self, unsigned char c, Py_ssize_t i) except -1:
        cdef int64_t at = self.cbase + i
        if c == 10:
            self.line += 1
            self.state = S_START
            return i + 1
        if self.state == S_START:
            if c == b"{":
                self._begin_event(at)
                return i
            self._fault(ParseError(detail=E.EXPECTED_OBJECT, offset=at, line=self.line))
            return i
        self._fault(ParseError(detail=E.DATA_AFTER_EVENT, offset=at, line=self.line))
        return i

    cdef Py_ssize_t _scan_json_event(self, Py_ssize_t i) except -1:
        cdef const unsigned char* p = self.cp
        cdef Py_ssize_t end = self.cn
        cdef Py_ssize_t limit = <Py_ssize_t>(self.ev_start + self.max_event - self.cbase)
        cdef Py_ssize_t stop = end if end < limit else limit
        cdef int nd = self.kind == K_NDJSON
        cdef JState st
        cdef Py_ssize_t pos = i
        cdef int r = R_MORE, fault = 0
        st.depth = self.depth
        st.in_str = self.in_str
        st.esc = self.esc
        st.max_depth = self.max_depth
        st.stack = self.stack
        while i < stop:
            if stop - i >= 64:
                r = _json_block(p, i, nd, &st, &pos, &fault)
                if r == R_SCALAR:
                    r = _json_scalar(p, i, i + 64, nd, &st, &pos, &fault)
            else:
                r = _json_scalar(p, i, stop, nd, &st, &pos, &fault)
            if r != R_MORE:
                break
            i = pos
        self.depth = st.depth
        self.in_str = st.in_str
        self.esc = st.esc
        if r == R_DONE:
            self.in_str = self.esc = False
            self._event_done(self.cbase + pos)
            self.state = S_AFTER if (self.array_mode or nd) else S_END
            return pos
        if r == R_FAULT:
            return self._json_event_fault(pos, fault)
        if i == limit and i < end:
            return self._json_event_fault(i, F_SIZE)
        return i

    cdef Py_ssize_t _json_event_fault(self, Py_ssize_t i, int what) except -1:
        cdef int64_t at = self.cbase + i
        cdef object line = self.ev_line if self.kind == K_NDJSON else None
        cdef object exc
        if what == F_SIZE or what == F_LINE:
            exc = self._locate(at, False)
        else:
            exc = self._locate(at + 1, False)
        self._reset_event()
        if exc is None:
            if what == F_SIZE:
                raise PayloadTooLarge(detail=E.event_too_large(self.max_event), offset=at, line=line)
            if what == F_LINE:
                exc = ParseError(detail=E.LINE_ENDED, offset=at)
            elif what == F_DEPTH:
                exc = ParseError(detail=E.too_deep(self.max_depth), offset=at)
            else:
                exc = ParseError(detail=E.EXPECTED_OBJECT, offset=at)
        exc.line = line
        self._fault(exc)
        self.buf_len = 0
        self.keep_from = at
        return i if what == F_LINE else i + 1

    # -- MessagePack ------------------------------------------------------------------

    cdef int _gather(self, int64_t at, unsigned char* out, int want) except -1:
        """Copy up to ``want`` body bytes at offset ``at`` (kept buffer, then chunk); returns the count."""
        cdef int got = 0
        cdef int64_t kept_end = self.keep_from + self.buf_len
        while got < want:
            if at + got < kept_end and at + got >= self.keep_from:
                out[got] = self.buf[at + got - self.keep_from]
            elif self.cbase <= at + got < self.cbase + self.cn:
                out[got] = self.cp[at + got - self.cbase]
            else:
                break
            got += 1
        return got

    cdef int _header_at(self, int64_t at, int* hdr, int64_t* n) except -1:
        """Class of the item whose header starts at body offset ``at`` (MP_CUT if cut off)."""
        cdef unsigned char tmp[16]
        cdef int got
        if at >= self.cbase and at + 9 <= self.cbase + self.cn:
            return _mp_header(self.cp + (at - self.cbase), 9, hdr, n)
        got = self._gather(at, tmp, 9)
        if got == 0:
            return MP_CUT
        return _mp_header(tmp, got, hdr, n)

    cdef bint _msgpack_top(self) except -1:
        """One top-level step at ``scan_pos``; False when more bytes are needed."""
        cdef int hdr
        cdef int64_t n
        cdef int64_t at = self.scan_pos
        cdef int cls
        cdef unsigned char b
        if self.state == S_START:
            cls = self._header_at(at, &hdr, &n)
            if cls == MP_CUT:
                return False
            if cls == MP_MAP:
                self.array_mode = False
                self.shape = False
                self._begin_event(at)
                return True
            if cls != MP_ARRAY:
                raise ParseError(detail=E.EXPECTED_BODY_MSGPACK, offset=at)
            self.array_mode = True
            self.shape = True
            self.top_hdr = at
            self.remaining = n
            self.state = S_ELEMS if n else S_END
            self.scan_pos = at + hdr
            return True
        self._gather(at, &b, 1)
        if self.state == S_ELEMS:
            if not _mp_is_map_header(b):
                raise ParseError(detail=E.EXPECTED_MAP, offset=at)
            self.remaining -= 1
            self._begin_event(at)
            return True
        raise ParseError(detail=E.DATA_AFTER_BODY, offset=at)

    cdef Py_ssize_t _scan_msgpack_event(self, Py_ssize_t i) except -1:
        # Works on body offsets: a header may straddle the kept bytes and this chunk.
        cdef int64_t at = self.scan_pos
        cdef int64_t end = self.cbase + self.cn
        cdef int64_t ev = self.ev_start
        cdef int64_t limit = self.max_event
        cdef int64_t* stack = self.mp_stack
        cdef int hdr, cls
        cdef int64_t n, items
        while True:
            if self.skip:
                if end - at < self.skip:
                    self.skip -= end - at
                    self.scan_pos = end
                    return self.cn
                at += self.skip
                self.skip = 0
            while self.mp_depth and stack[self.mp_depth - 1] == 0:
                self.mp_depth -= 1
            if self.mp_depth == 0 and self.mp_started:
                self._event_done(at)
                self.state = (S_ELEMS if self.remaining else S_END) if self.array_mode else S_END
                self.scan_pos = at
                return at - self.cbase
            if at >= end:
                self.scan_pos = at
                return self.cn
            cls = self._header_at(at, &hdr, &n)
            if cls == MP_CUT:
                self.scan_pos = at   # resume at this header
                return self.cn
            if cls == MP_INVALID:
                self._msgpack_event_fault(at, ParseError(detail=E.RESERVED_BYTE, offset=at))
            if self.mp_depth:
                stack[self.mp_depth - 1] -= 1
            self.mp_started = True
            if cls == MP_ARRAY or cls == MP_MAP:
                items = n * 2 if cls == MP_MAP else n
                if at + hdr + items - ev > limit:
                    self._msgpack_event_fault(at, None)
                if self.mp_depth >= self.max_depth:
                    self._msgpack_event_fault(at, ParseError(detail=E.too_deep(self.max_depth), offset=at))
                stack[self.mp_depth] = items
                self.mp_depth += 1
                at += hdr
            else:
                if at + hdr + n - ev > limit:
                    self._msgpack_event_fault(at, None)
                at += hdr
                self.skip = n

    cdef int _msgpack_event_fault(self, int64_t at, object exc) except -1:
        cdef object earlier = self._locate(at, False)
        self._reset_event()
        if earlier is not None:
            raise earlier
        if exc is None:
            raise PayloadTooLarge(detail=E.event_too_large(self.max_event), offset=at)
        raise exc

    # -- end of body ------------------------------------------------------------------

    cdef int _finish(self) except -1:
        cdef int state = self.state
        cdef object exc
        if state == S_EVENT:
            exc = self._locate(self.pos, True)
            self._reset_event()
            if exc is None:
                exc = ParseError(detail=E.UNEXPECTED_END, offset=self.pos)
            if self.kind == K_NDJSON:
                exc.line = self.ev_line
            self._fault(exc)
            return 0
        if state == S_BOM1 or state == S_BOM2:
            raise ParseError(detail=E.BAD_BOM, offset=0)
        if self.kind == K_NDJSON or state == S_END:
            return 0
        if self.kind == K_MSGPACK:
            if state == S_START:
                if self.pos == 0:
                    raise ParseError(detail=E.EMPTY_BODY, offset=0)
                raise ParseError(detail=E.UNEXPECTED_END, offset=self.scan_pos)
            raise ParseError(detail=E.LENGTH_PAST_END, offset=self.top_hdr)
        if state == S_START:
            raise ParseError(detail=E.EMPTY_BODY, offset=self.pos)
        raise ParseError(detail=E.UNEXPECTED_END, offset=self.pos)


# -- raw pass-through -----------------------------------------------------------------------

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
        d = p[i] - 48
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
    cdef int hdr, cls
    while remaining:
        cls = _mp_header(p + q, 9, &hdr, &n)
        remaining -= 1
        q += hdr
        if cls == MP_ARRAY:
            remaining += n
        elif cls == MP_MAP:
            remaining += 2 * n
        else:
            q += n
    return q


cdef inline uint64_t _be64(const unsigned char* p) noexcept nogil:
    return (<uint64_t>_be(p, 4) << 32) | _be(p + 4, 4)


cdef bint _mp_dt_value(const unsigned char* p, int64_t* out) noexcept nogil:
    cdef unsigned char b = p[0]
    cdef int hdr, cls
    cdef int64_t n
    cdef uint64_t u
    cdef uint32_t f32
    cdef float fv
    cdef double dv
    cdef const unsigned char* data
    if b <= 0x7F:
        return epoch_int_to_ns(b, out)
    if b >= 0xE0:
        return epoch_int_to_ns(<signed char>b, out)
    if 0xCC <= b <= 0xCF:
        u = p[1] if b == 0xCC else (_be(p + 1, 2) if b == 0xCD else (_be(p + 1, 4) if b == 0xCE else _be64(p + 1)))
        return u <= <uint64_t>INT64_MAX and epoch_int_to_ns(<int64_t>u, out)
    if 0xD0 <= b <= 0xD3:
        if b == 0xD0:
            return epoch_int_to_ns(<signed char>p[1], out)
        if b == 0xD1:
            return epoch_int_to_ns(<int16_t>_be(p + 1, 2), out)
        if b == 0xD2:
            return epoch_int_to_ns(<int32_t>_be(p + 1, 4), out)
        return epoch_int_to_ns(<int64_t>_be64(p + 1), out)
    if b == 0xCA:
        f32 = _be(p + 1, 4)
        memcpy(&fv, &f32, 4)
        return epoch_float_to_ns(fv, out)
    if b == 0xCB:
        u = _be64(p + 1)
        memcpy(&dv, &u, 8)
        return epoch_float_to_ns(dv, out)
    cls = _mp_header(p, 9, &hdr, &n)
    if cls == MP_STR or cls == MP_BIN:   # bytes values are read as text too (parse_dt)
        return parse_dt_text(p + hdr, n, out)
    if cls == MP_EXT and <signed char>p[hdr - 1] == -1:
        data = p + hdr
        if n == 4:
            return seconds_to_ns(_be(data, 4), 0, out)
        if n == 8:
            u = _be64(data)
            return seconds_to_ns(<int64_t>(u & ((<uint64_t>1 << 34) - 1)), <int64_t>(u >> 34), out)
        if n == 12:
            return seconds_to_ns(<int64_t>_be64(data + 4), _be(data, 4), out)
    return False


cdef bint _msgpack_dt(const unsigned char* p, int64_t* out) noexcept nogil:
    """The event time of a valid MessagePack map from its last top-level ``"dt"`` entry."""
    cdef int hdr
    cdef int64_t n, i
    cdef Py_ssize_t q, k, vs = -1
    _mp_header(p, 9, &hdr, &n)
    q = hdr
    for i in range(n):
        k = _mp_skip(p, q)
        # A str key "dt": fixstr a2, or str8 d9 02 (packers may use the longer form).
        if (p[q] == 0xA2 and p[q + 1] == c'd' and p[q + 2] == c't') or \
                (p[q] == 0xD9 and p[q + 1] == 2 and p[q + 2] == c'd' and p[q + 3] == c't') or \
                (p[q] == 0xDA and p[q + 1] == 0 and p[q + 2] == 2 and p[q + 3] == c'd' and p[q + 4] == c't') or \
                (p[q] == 0xDB and _be(p + q + 1, 4) == 2 and p[q + 5] == c'd' and p[q + 6] == c't'):
            vs = k
        q = _mp_skip(p, k)
    return vs >= 0 and _mp_dt_value(p + vs, out)


cpdef tuple split_frames(Frames frames, int kind, int max_depth, int64_t received_ns, bint collect):
    """Validate each event fully and read its top-level ``dt`` (see framing.split_frames)."""
    cdef Py_ssize_t i, n = frames.n, kept = 0, r
    cdef const unsigned char* p
    cdef ValidateError err
    cdef DtSpan dt
    cdef int64_t t
    cdef bint ok
    cdef list raw = []
    cdef list line_errors = []
    cdef array.array times = array.clone(_INT64_TEMPLATE, n, zero=False)
    cdef array.array offsets = frames._int64s(frames.off)
    cdef object lines = frames._int64s(frames.lines) if frames.has_lines else None
    cdef int64_t* lp = <int64_t*>(<array.array>lines).data.as_longlongs if lines is not None else NULL
    cdef int64_t* op = <int64_t*>offsets.data.as_longlongs
    for i in range(n):
        p = frames._ptr(i)
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


# -- per batch: frames -> events (or raw bytes), times ------------------------------------

cdef extern from "Python.h":
    int PyGC_Disable()
    int PyGC_Enable()
    object PyMemoryView_FromMemory(char* mem, Py_ssize_t size, int flags)
    int PyBUF_READ


cdef object _loads_batch(Frames frames, int kind):
    """Every framed event, built in runs of about BUILD_BYTES (one orjson / msgpack call
    each) with the cyclic GC paused meanwhile (see framing._loads_batch for why)."""
    cdef Py_ssize_t lo = 0, hi, size
    cdef list events
    if frames.n == 1:
        # One event: no array to wrap it in, build it from its bytes where they lie.
        if frames.straddler is None and type(frames.chunk) is bytes and \
                frames.ln[0] == PyBytes_GET_SIZE(frames.chunk):
            doc = frames.chunk
        else:
            doc = PyMemoryView_FromMemory(<char*>frames._ptr(0), frames.ln[0], PyBUF_READ)
        return [unpack_msgpack(doc) if kind == K_MSGPACK else orjson.loads(doc)]
    cdef int was = PyGC_Disable()
    try:
        events = None
        while lo < frames.n:
            hi, size = lo, 0
            while hi < frames.n and (size < BUILD_BYTES or hi == lo):
                size += frames.ln[hi]
                hi += 1
            if kind == K_MSGPACK:
                part = unpack_msgpack(frames._msgpack_document(lo, hi))
            else:
                part = orjson.loads(frames._json_document(lo, hi))
            if events is None:
                events = part
            else:
                events.extend(part)
            lo = hi
        return events
    finally:
        if was:
            PyGC_Enable()


cdef tuple _take(Frames frames, int kind, int max_depth, int64_t received_ns, bint collect, bint raw):
    cdef object items, times, offsets, lines
    cdef list line_errors
    if frames.n == 0:
        items, times, offsets = [], array.clone(_INT64_TEMPLATE, 0, False), array.clone(_INT64_TEMPLATE, 0, False)
        lines, line_errors = frames.line_numbers(), []
    elif raw:
        items, times, offsets, lines, line_errors = split_frames(frames, kind, max_depth, received_ns, collect)
    else:
        try:
            items = _loads_batch(frames, kind)
            offsets, lines, line_errors = frames.offsets(), frames.line_numbers(), []
        except Exception:
            items, offsets, lines, line_errors = one_by_one(frames, kind, _validate, max_depth, collect)
        times = event_times_list(items, received_ns)
    if frames.line_errors:
        line_errors = sorted(line_errors + frames.line_errors, key=_by_offset)
    if frames.error is not None:
        raise frames.error
    return items, times, offsets, lines, line_errors


def take(Frames frames, int kind, int max_depth, int64_t received_ns, bint collect, bint raw):
    """``(items, times_ns, offsets, lines, line_errors)`` for the events of ``frames``
    (objects, or their bytes when ``raw``); then raises the fault that ended them."""
    return _take(frames, kind, max_depth, received_ns, collect, raw)


def _by_offset(e):
    return e.offset


cdef tuple _decode_body(object body, int kind, Py_ssize_t max_body, int64_t max_event, int max_depth,
                        int64_t received_ns, bint collect, bint raw):
    cdef bint over = len(body) > max_body
    if over:
        body = memoryview(body)[:max_body]
    cdef Scanner scanner = Scanner.__new__(Scanner, kind, max_event, max_depth, collect)
    cdef tuple result = _take(scanner.feed(body), kind, max_depth, received_ns, collect, raw)
    if over:
        raise PayloadTooLarge(detail=E.body_too_large(max_body), offset=max_body)
    cdef Frames rest = scanner.finish()
    if rest.error is not None:
        raise rest.error
    if rest.line_errors:
        result = result[:4] + (result[4] + rest.line_errors,)
    return result


def decode_body(body, int kind, Py_ssize_t max_body, int64_t max_event, int max_depth,
                int64_t received_ns, bint collect, bint raw):
    """A whole, uncompressed body (see framing.decode_body)."""
    return _decode_body(body, kind, max_body, max_event, max_depth, received_ns, collect, raw)


cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk_id, timespec* tp)
    int CLOCK_REALTIME


#: Bodies up to this size may take the one-object shortcut (_one_object).
cdef Py_ssize_t ONE_OBJECT_MAX = 65536


cdef bint _nesting_within(object container, int levels):
    """Whether the dicts and lists of ``container`` (a dict or list, itself one level)
    nest at most ``levels`` deep; stops at the first level too many."""
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* value
    if levels < 1:
        return False
    if type(container) is dict:
        while PyDict_Next(container, &pos, &key, &value):
            if (type(<object>value) is dict or type(<object>value) is list) and \
                    not _nesting_within(<object>value, levels - 1):
                return False
    else:
        for item in <list>container:
            if (type(item) is dict or type(item) is list) and \
                    not _nesting_within(item, levels - 1):
                return False
    return True


cdef list _one_object(object body, int kind, int64_t max_event, int max_depth,
                      Py_ssize_t* start):
    """``[event]`` when ``body`` is plainly one small JSON object or MessagePack map —
    most tiny requests are — built by one ``orjson.loads`` (``msgpack.unpackb``) without
    a scanner, with ``start`` set to the event's offset; None otherwise, and then the
    general path decides, errors included. Every condition here is a sufficient one:
    the whole body within ``max_event`` (so is the event), fewer ``{``/``[`` bytes than
    ``max_depth`` (so is the nesting), one NDJSON line, and orjson's own check that the
    body is one value — which it shares with the general path, where orjson builds the
    events too; for MessagePack the nesting is checked on the map built. Skipping
    the scanner, its frames and their arrays, decode() of one 330-byte event went from
    2.9 to 2.1 µs (JSON), 3.3 to 2.2 µs (NDJSON), 4.5 to 3.6 µs (MessagePack)."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(body)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(body), i = 0, end = n
    if n > ONE_OBJECT_MAX or n > max_event or n == 0:
        return None
    start[0] = 0
    if kind == K_MSGPACK:
        # msgpack.unpackb checks what the scanner would (declared lengths, reserved
        # bytes, nothing after the map) but its nesting limit is not max_depth: that
        # is checked on the map built, a walk far cheaper than the validator's.
        if not ((p[0] & 0xF0) == 0x80 or p[0] == 0xDE or p[0] == 0xDF):
            return None
        try:
            event = unpack_msgpack(body)
        except Exception:
            return None
        if type(event) is not dict or not _nesting_within(event, max_depth):
            return None
        return [event]
    if kind == K_NDJSON:
        if p[n - 1] == 10:
            end = n - 1   # the line's own end; any other newline means more lines
    else:
        while i < n and (p[i] == 32 or p[i] == 10 or p[i] == 13 or p[i] == 9):
            i += 1
    if i >= end or p[i] != 123:   # "{"
        return None
    start[0] = i
    cdef Py_ssize_t nest = fr_count_open(p, end, kind == K_NDJSON)
    if nest < 0 or nest > max_depth:
        return None
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(event) is not dict:
        return None
    return [event]


cdef object _one_object_batch(list items, Py_ssize_t start, int kind, int64_t received):
    cdef array.array offsets = array.clone(_INT64_TEMPLATE, 1, False)
    offsets.data.as_longlongs[0] = start
    cdef array.array lines = None
    if kind == K_NDJSON:
        lines = array.clone(_INT64_TEMPLATE, 1, False)
        lines.data.as_longlongs[0] = 1
    return _new_batch(False, items, event_times_list(items, received), offsets, lines, [])


cdef object _new_batch(bint raw, list items, object times, object offsets, object lines,
                       list errors):
    """A Batch (RawBatch when ``raw``) holding these, without a call to its class."""
    batch = PyType_GenericAlloc(<PyTypeObject*>(RawBatch if raw else Batch), 0)
    if raw:
        batch.raw = items
    else:
        batch.events = items
    batch.times_ns = times
    batch.offsets = offsets
    batch.lines = lines
    batch.errors = errors
    return batch


#: (limits, max_body, max_event, max_depth) of the Limits last seen: most callers pass
#: the same object every time, and its three attribute reads cost ~0.1 µs a call. The
#: tuple holds a reference, so the identity test cannot match a new object at an old
#: address, and is replaced whole (a thread reads the old tuple or the new one).
cdef tuple _limits_seen = (None, 0, 0, 0)
cdef dict _MEDIA_TYPES = MEDIA_TYPES


def decode_whole(body, content_type, limits, received_ns, errors, bint raw):
    """decode()/split() of an uncompressed body held in memory (see framing.decode_whole)."""
    global _limits_seen
    cdef timespec now
    cdef int64_t received
    cdef Py_ssize_t start
    cdef PyObject* found = PyDict_GetItem(_MEDIA_TYPES, content_type) \
        if type(content_type) is str else NULL
    kind = <object>found if found is not NULL else media_kind(content_type)
    cdef bint collect = False if errors == "raise" else collect_mode(errors, kind)
    if received_ns is None:
        clock_gettime(CLOCK_REALTIME, &now)   # time.time_ns()'s clock
        received = <int64_t>now.tv_sec * 1000000000 + now.tv_nsec
    else:
        received = received_ns
    cdef tuple seen = _limits_seen
    if seen[0] is not limits:
        seen = (limits, limits.max_body, limits.max_event, limits.max_depth)
        _limits_seen = seen
    cdef Py_ssize_t max_body = seen[1]
    cdef int64_t max_event = seen[2]
    cdef int max_depth = seen[3]
    if not raw and not collect and type(body) is bytes \
            and PyBytes_GET_SIZE(body) <= max_body:
        one = _one_object(body, kind, max_event, max_depth, &start)
        if one is not None:
            return _one_object_batch(one, start, kind, received)
    items, times, offsets, lines, line_errors = _decode_body(
        body, kind, max_body, max_event, max_depth, received, collect, raw)
    return _new_batch(raw, items, times, offsets, lines, line_errors)
