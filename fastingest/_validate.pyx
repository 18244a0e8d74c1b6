# cython: language_level=3
"""Compiled twin of :mod:`fastingest.validate`: same names, same answers, C loops.

The grammar checks run over ``const unsigned char*`` without touching a Python object
(``nogil``; the GIL is released for inputs over 64 KiB). Nesting is tracked on an
explicit stack bounded by ``min(max_depth, end - start)``; declared MessagePack lengths
are compared with the bytes left and never allocated. Plain ASCII in string bodies is
skipped 16 bytes a step (``validate.h``), non-ASCII runs are validated sequence by
sequence (strict UTF-8, as CPython's decoder), and a number's range is decided exactly by
comparing its digits with the rounding boundary of DBL_MAX, so no float conversion (and
no GIL) is needed. MessagePack headers are read from the shared table
(``msgpack_header.h``).

The reasons, and the codes this module reports them by, come from
:mod:`fastingest.constants` (``REASONS``); see :mod:`fastingest.validate` for the
error-offset rules.
"""
from libc.stdint cimport uint64_t, uint32_t, int64_t
from libc.string cimport memchr, memcmp
from libc.stdlib cimport malloc, free
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

from .mpheader cimport (FI_MP_ARRAY, FI_MP_BIN, FI_MP_EXT, FI_MP_MAP, FI_MP_RESERVED,
                       FI_MP_SCALAR, FI_MP_STR, fi_be, fi_be32, fi_mp_headers, fi_mp_entry,
                       load_msgpack_headers)

cdef extern from "validate.h":
    uint64_t fi_load_le64(const unsigned char *p) nogil
    int fi_first_byte(uint64_t m) nogil
    uint64_t fi_swar_string_special(uint64_t w) nogil
    bint fi_swar_ascii(uint64_t w) nogil
    Py_ssize_t fi_skip_plain(const unsigned char *p, Py_ssize_t pos, Py_ssize_t end) nogil

from .constants import (CONTROL_CHAR, EXPECTED_COLON, EXPECTED_COMMA_OR_BRACE,
                        EXPECTED_COMMA_OR_BRACKET, EXPECTED_KEY, EXPECTED_VALUE,
                        EXT_TYPE_RESERVED, INVALID_ESCAPE, INVALID_LITERAL, INVALID_NUMBER,
                        INVALID_U_ESCAPE, INVALID_UTF8, LENGTH_PAST_END, LONE_SURROGATE,
                        MAP_KEY_NOT_STRING, NOT_MAP, NOT_OBJECT, NUMBER_RANGE, REASONS,
                        RESERVED_BYTE, TIMESTAMP_LENGTH, TIMESTAMP_NANOSECONDS, UNEXPECTED_END,
                        too_deep)
from .errors import ParseError

__all__ = ["scan_json_object", "scan_msgpack_map", "REASONS"]

load_msgpack_headers()

# The codes reported in ValidateError.code: each reason's position in REASONS (code 0,
# None there, is the nesting error; -1 is out of memory).
cdef tuple _REASONS = REASONS
cdef int E_DEPTH = REASONS.index(None)
cdef int E_END = REASONS.index(UNEXPECTED_END)
cdef int E_NOT_OBJECT = REASONS.index(NOT_OBJECT)
cdef int E_EXPECTED_VALUE = REASONS.index(EXPECTED_VALUE)
cdef int E_EXPECTED_KEY = REASONS.index(EXPECTED_KEY)
cdef int E_EXPECTED_COLON = REASONS.index(EXPECTED_COLON)
cdef int E_COMMA_OR_BRACE = REASONS.index(EXPECTED_COMMA_OR_BRACE)
cdef int E_COMMA_OR_BRACKET = REASONS.index(EXPECTED_COMMA_OR_BRACKET)
cdef int E_INVALID_ESCAPE = REASONS.index(INVALID_ESCAPE)
cdef int E_INVALID_U_ESCAPE = REASONS.index(INVALID_U_ESCAPE)
cdef int E_LONE_SURROGATE = REASONS.index(LONE_SURROGATE)
cdef int E_CONTROL_CHAR = REASONS.index(CONTROL_CHAR)
cdef int E_INVALID_UTF8 = REASONS.index(INVALID_UTF8)
cdef int E_INVALID_NUMBER = REASONS.index(INVALID_NUMBER)
cdef int E_NUMBER_RANGE = REASONS.index(NUMBER_RANGE)
cdef int E_INVALID_LITERAL = REASONS.index(INVALID_LITERAL)
cdef int E_NOT_MAP = REASONS.index(NOT_MAP)
cdef int E_RESERVED = REASONS.index(RESERVED_BYTE)
cdef int E_LENGTH_PAST_END = REASONS.index(LENGTH_PAST_END)
cdef int E_MAP_KEY = REASONS.index(MAP_KEY_NOT_STRING)
cdef int E_TIMESTAMP_LENGTH = REASONS.index(TIMESTAMP_LENGTH)
cdef int E_TIMESTAMP_NANOSECONDS = REASONS.index(TIMESTAMP_NANOSECONDS)
cdef int E_EXT_TYPE_RESERVED = REASONS.index(EXT_TYPE_RESERVED)

ctypedef ValidateError Err

cdef struct MFrame:
    uint64_t rem        # items left (a map of n entries holds 2n)
    int is_map

cdef enum:
    LOCAL_STACK = 256            # stack entries kept on the C stack (malloc beyond)
    GIL_THRESHOLD = 65536        # release the GIL for inputs longer than this
    DBL_OVERFLOW_DIGITS = 309

# --------------------------------------------------------------------------- tables
cdef unsigned char WS[256]          # JSON whitespace
cdef signed char HEX[256]           # hex digit value or -1
cdef unsigned char SIMPLE_ESC[256]  # the byte after '\\' in a one-letter escape
cdef unsigned char DIGIT[256]

cdef void _init_tables():
    cdef int i
    for i in range(256):
        WS[i] = 0
        HEX[i] = -1
        SIMPLE_ESC[i] = 0
        DIGIT[i] = 1 if c'0' <= i <= c'9' else 0
    WS[c' '] = WS[c'\t'] = WS[c'\n'] = WS[c'\r'] = 1
    for i in range(10):
        HEX[c'0' + i] = i
    for i in range(6):
        HEX[c'A' + i] = 10 + i
        HEX[c'a' + i] = 10 + i
    for i in b'"\\/bfnrt':
        SIMPLE_ESC[i] = 1

_init_tables()

# The midpoint between DBL_MAX and 2**1024 (2**1024 - 2**970): a decimal number rounds to
# infinity exactly when its magnitude is >= this (ties round to even, i.e. up, here).
cdef const char* DBL_OVERFLOW = (
    b"179769313486231580793728971405303415079934132710037826936173778980444968292764750946"
    b"649017977587207096330286416692887910946555547851940402630657488671505820681908902000"
    b"708383676273854845817711531764475730270069855571366959622842914819860834936475292719"
    b"074168444365510704342711559699508093042880177904174497792")


cdef inline Py_ssize_t fail(Err* err, int code, Py_ssize_t pos) noexcept nogil:
    err.code = code
    err.pos = pos
    return -1


cdef inline Py_ssize_t skip_ws(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end) noexcept nogil:
    while pos < end and WS[p[pos]]:
        pos += 1
    return pos


cdef inline int utf8_seq(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end) noexcept nogil:
    """Length (2-4) of the valid UTF-8 sequence at ``p[pos] >= 0x80``; 0 when invalid,
    -1 when its bytes so far are valid but ``end`` cuts it off."""
    cdef unsigned char c = p[pos], lo = 0x80, hi = 0xBF
    if c < 0xC2:
        return 0
    if c < 0xE0:
        if pos + 1 >= end:
            return -1
        return 2 if (p[pos + 1] & 0xC0) == 0x80 else 0
    if c < 0xF0:
        if c == 0xE0:
            lo = 0xA0
        elif c == 0xED:
            hi = 0x9F
        if pos + 1 >= end:
            return -1
        if p[pos + 1] < lo or p[pos + 1] > hi:
            return 0
        if pos + 2 >= end:
            return -1
        return 3 if (p[pos + 2] & 0xC0) == 0x80 else 0
    if c < 0xF5:
        if c == 0xF0:
            lo = 0x90
        elif c == 0xF4:
            hi = 0x8F
        if pos + 1 >= end:
            return -1
        if p[pos + 1] < lo or p[pos + 1] > hi:
            return 0
        if pos + 2 >= end:
            return -1
        if (p[pos + 2] & 0xC0) != 0x80:
            return 0
        if pos + 3 >= end:
            return -1
        return 4 if (p[pos + 3] & 0xC0) == 0x80 else 0
    return 0


# =============================================================================== JSON

cdef inline Py_ssize_t read_u_escape(const unsigned char* p, Py_ssize_t q, Py_ssize_t end,
                                     int* cu, Err* err) noexcept nogil:
    """``p[q:q+2] == b'\\\\u'``: the code unit of the escape, index after it, or -1."""
    cdef int v = 0, h, i
    for i in range(2, 6):
        if q + i >= end:
            return fail(err, E_END, end)
        h = HEX[p[q + i]]
        if h < 0:
            return fail(err, E_INVALID_U_ESCAPE, q)
        v = (v << 4) | h
    cu[0] = v
    return q + 6


cdef Py_ssize_t scan_escape(const unsigned char* p, Py_ssize_t q, Py_ssize_t end, Err* err) noexcept nogil:
    """``p[q] == '\\\\'``: the index after the escape (or surrogate pair), or -1."""
    cdef int cu = 0
    cdef Py_ssize_t r
    cdef unsigned char e
    if q + 1 >= end:
        return fail(err, E_END, end)
    e = p[q + 1]
    if SIMPLE_ESC[e]:
        return q + 2
    if e != c'u':
        return fail(err, E_INVALID_ESCAPE, q)
    r = read_u_escape(p, q, end, &cu, err)
    if r < 0:
        return -1
    if cu < 0xD800 or cu > 0xDFFF:
        return r
    if cu >= 0xDC00:
        return fail(err, E_LONE_SURROGATE, q)
    # a high surrogate: the next escape must be a low one
    if r >= end:
        return fail(err, E_END, end)
    if p[r] != c'\\':
        return fail(err, E_LONE_SURROGATE, q)
    if r + 1 >= end:
        return fail(err, E_END, end)
    e = p[r + 1]
    if e == c'u':
        r = read_u_escape(p, r, end, &cu, err)
        if r < 0:
            return -1
        if 0xDC00 <= cu <= 0xDFFF:
            return r
        return fail(err, E_LONE_SURROGATE, q)
    if SIMPLE_ESC[e]:
        return fail(err, E_LONE_SURROGATE, q)
    return fail(err, E_INVALID_ESCAPE, r)


cdef Py_ssize_t scan_string(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end, Err* err) noexcept nogil:
    """``pos`` just after the opening quote: the index after the closing one, or -1."""
    cdef unsigned char c
    cdef int n
    while True:
        pos = fi_skip_plain(p, pos, end)   # plain ASCII: 16 (SSE2) or 8 (SWAR) bytes a step
        if pos >= end:
            return fail(err, E_END, end)
        c = p[pos]
        if c == c'"':
            return pos + 1
        if c == c'\\':
            pos = scan_escape(p, pos, end, err)
            if pos < 0:
                return -1
            continue
        if c < 0x20:
            return fail(err, E_CONTROL_CHAR, pos)
        # a run of non-ASCII: validate sequence by sequence
        while True:
            n = utf8_seq(p, pos, end)
            if n <= 0:
                if n == 0:
                    return fail(err, E_INVALID_UTF8, pos)
                return fail(err, E_END, end)
            pos += n
            if pos >= end or p[pos] < 0x80:
                break


cdef inline int cmp_digits(const unsigned char* p, Py_ssize_t k, Py_ssize_t stop,
                           Py_ssize_t* idx) noexcept nogil:
    """Compare the digits ``p[k:stop]`` with the boundary's digits from ``idx`` on."""
    cdef unsigned char h
    while k < stop:
        h = <unsigned char>DBL_OVERFLOW[idx[0]] if idx[0] < DBL_OVERFLOW_DIGITS else c'0'
        if p[k] != h:
            return 1 if p[k] > h else -1
        idx[0] += 1
        k += 1
    return 0


cdef bint number_overflows(const unsigned char* p, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Whether the valid JSON number ``p[a:b]`` rounds to +-inf as a double."""
    cdef Py_ssize_t i = a, ie, fs, fe, j, first, k
    cdef int64_t exp = 0, e10
    cdef bint neg = False
    cdef Py_ssize_t idx
    cdef int c
    if p[i] == c'-':
        i += 1
    ie = i
    while ie < b and DIGIT[p[ie]]:
        ie += 1
    fs = fe = ie
    if ie < b and p[ie] == c'.':
        fs = ie + 1
        fe = fs
        while fe < b and DIGIT[p[fe]]:
            fe += 1
    if fe < b:  # exponent
        j = fe + 1
        if p[j] == c'+' or p[j] == c'-':
            neg = p[j] == c'-'
            j += 1
        while j < b:
            if exp < <int64_t>1000000000000:
                exp = exp * 10 + (p[j] - c'0')
            j += 1
        if neg:
            exp = -exp
    if p[i] != c'0':
        first = i
        e10 = <int64_t>(ie - i - 1)
    else:
        k = fs
        while k < fe and p[k] == c'0':
            k += 1
        if k >= fe:
            return False        # zero, whatever the exponent
        first = k
        e10 = -<int64_t>(k - fs) - 1
    e10 += exp
    if e10 < 308:
        return False
    if e10 > 308:
        return True
    # Same decade as the boundary: compare the significant digits with it.
    idx = 0
    if first < ie:
        c = cmp_digits(p, first, ie, &idx)
        if c == 0:
            c = cmp_digits(p, fs, fe, &idx)
    else:
        c = cmp_digits(p, first, fe, &idx)
    if c != 0:
        return c > 0
    while idx < DBL_OVERFLOW_DIGITS:   # equal so far: the boundary's remaining digits
        if DBL_OVERFLOW[idx] != c'0':
            return False
        idx += 1
    return True


cdef Py_ssize_t scan_number(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end, Err* err) noexcept nogil:
    """``p[pos]`` is '-' or a digit: the index after the number, or -1."""
    cdef Py_ssize_t a = pos, digits
    cdef bint has_exp = False
    cdef unsigned char c
    if p[pos] == c'-':
        pos += 1
        if pos >= end:
            return fail(err, E_END, end)
        if not DIGIT[p[pos]]:
            return fail(err, E_INVALID_NUMBER, pos)
    digits = pos
    if p[pos] == c'0':
        pos += 1
        if pos >= end:
            return fail(err, E_END, end)
        if DIGIT[p[pos]]:
            return fail(err, E_INVALID_NUMBER, pos)
    else:
        pos += 1
        while pos < end and DIGIT[p[pos]]:
            pos += 1
        if pos >= end:
            return fail(err, E_END, end)
    digits = pos - digits
    c = p[pos]
    if c == c'.':
        pos += 1
        if pos >= end:
            return fail(err, E_END, end)
        if not DIGIT[p[pos]]:
            return fail(err, E_INVALID_NUMBER, pos)
        pos += 1
        while pos < end and DIGIT[p[pos]]:
            pos += 1
        if pos >= end:
            return fail(err, E_END, end)
        c = p[pos]
    if c == c'e' or c == c'E':
        pos += 1
        if pos >= end:
            return fail(err, E_END, end)
        if p[pos] == c'+' or p[pos] == c'-':
            pos += 1
            if pos >= end:
                return fail(err, E_END, end)
        if not DIGIT[p[pos]]:
            return fail(err, E_INVALID_NUMBER, pos)
        pos += 1
        while pos < end and DIGIT[p[pos]]:
            pos += 1
        if pos >= end:
            return fail(err, E_END, end)
        has_exp = True
    if (has_exp or digits > 308) and number_overflows(p, a, pos):
        return fail(err, E_NUMBER_RANGE, a)
    return pos


cdef Py_ssize_t scan_literal(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end, Err* err) noexcept nogil:
    cdef const char* word
    cdef Py_ssize_t n, i
    cdef unsigned char c = p[pos]
    if c == c't':
        word = b"true"
        n = 4
    elif c == c'f':
        word = b"false"
        n = 5
    else:
        word = b"null"
        n = 4
    if pos + n <= end and memcmp(p + pos, word, n) == 0:
        return pos + n
    for i in range(1, n):
        if pos + i >= end:
            return fail(err, E_END, end)
        if p[pos + i] != <unsigned char>word[i]:
            return fail(err, E_INVALID_LITERAL, pos + i)
    return fail(err, E_INVALID_LITERAL, pos)  # unreachable


cdef inline Py_ssize_t scan_key_colon(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end, Err* err) noexcept nogil:
    """``p[pos] == '"'``: the key string, whitespace and ':'; the index after the ':'."""
    pos = scan_string(p, pos + 1, end, err)
    if pos < 0:
        return -1
    if pos < end and p[pos] == c':':
        return pos + 1
    pos = skip_ws(p, pos, end)
    if pos >= end:
        return fail(err, E_END, end)
    if p[pos] != c':':
        return fail(err, E_EXPECTED_COLON, pos)
    return pos + 1


cdef inline void note_key(const unsigned char* p, Py_ssize_t key, Py_ssize_t after,
                          DtSpan* dt) noexcept nogil:
    """A top-level key at ``p[key]`` whose ':' ends before ``after``: is it "dt"?"""
    if p[key + 1] == c'd' and p[key + 2] == c't' and p[key + 3] == c'"':
        dt.pending = True
    elif memchr(p + key + 1, c'\\', min(after - key - 1, 14)) != NULL:
        # Escapes could spell "dt" ("\u0064\u0074" is the longest way, 14 bytes with
        # its quotes): the caller decodes this event to be sure.
        dt.uncertain = True


cdef Py_ssize_t json_scan(const unsigned char* p, Py_ssize_t start, Py_ssize_t end,
                          Py_ssize_t max_depth, unsigned char* stack, Err* err,
                          DtSpan* dt) noexcept nogil:
    """The JSON object at ``p[start]``: the index after it, or -1 with ``err`` set.
    ``stack`` holds min(max_depth, end - start) entries: 0 object, 1 array. With ``dt``,
    also the span of the last top-level "dt" member's value."""
    cdef Py_ssize_t pos = start, depth = 0, key
    cdef unsigned char c
    if start >= end:
        return fail(err, E_END, end)
    if p[start] != c'{':
        return fail(err, E_NOT_OBJECT, start)
    while True:
        # ---- a value at pos
        if pos < end and WS[p[pos]]:
            pos = skip_ws(p, pos, end)
        if pos >= end:
            return fail(err, E_END, end)
        c = p[pos]
        if c == c'"':
            pos = scan_string(p, pos + 1, end, err)
            if pos < 0:
                return -1
        elif c == c'{':
            if depth >= max_depth:
                return fail(err, E_DEPTH, pos)
            stack[depth] = 0
            depth += 1
            pos = skip_ws(p, pos + 1, end)
            if pos >= end:
                return fail(err, E_END, end)
            c = p[pos]
            if c == c'"':
                key = pos
                pos = scan_key_colon(p, pos, end, err)
                if pos < 0:
                    return -1
                if dt != NULL and depth == 1:
                    note_key(p, key, pos, dt)
                    dt.start = skip_ws(p, pos, end)
                continue
            if c != c'}':
                return fail(err, E_EXPECTED_KEY, pos)
            pos += 1
            depth -= 1
        elif c == c'[':
            if depth >= max_depth:
                return fail(err, E_DEPTH, pos)
            stack[depth] = 1
            depth += 1
            pos = skip_ws(p, pos + 1, end)
            if pos >= end:
                return fail(err, E_END, end)
            if p[pos] != c']':
                continue
            pos += 1
            depth -= 1
        elif c == c'-' or DIGIT[c]:
            pos = scan_number(p, pos, end, err)
            if pos < 0:
                return -1
        elif c == c't' or c == c'f' or c == c'n':
            pos = scan_literal(p, pos, end, err)
            if pos < 0:
                return -1
        else:
            return fail(err, E_EXPECTED_VALUE, pos)
        # ---- after a value: separators and closing brackets
        while True:
            if dt != NULL and depth == 1 and dt.pending:
                dt.pending = False
                dt.vs, dt.ve = dt.start, pos
            if depth == 0:
                return pos
            if pos < end and WS[p[pos]]:
                pos = skip_ws(p, pos, end)
            if pos >= end:
                return fail(err, E_END, end)
            c = p[pos]
            if stack[depth - 1] == 0:
                if c == c',':
                    pos = skip_ws(p, pos + 1, end)
                    if pos >= end:
                        return fail(err, E_END, end)
                    if p[pos] != c'"':
                        return fail(err, E_EXPECTED_KEY, pos)
                    key = pos
                    pos = scan_key_colon(p, pos, end, err)
                    if pos < 0:
                        return -1
                    if dt != NULL and depth == 1:
                        note_key(p, key, pos, dt)
                        dt.start = skip_ws(p, pos, end)
                    break
                if c == c'}':
                    pos += 1
                    depth -= 1
                    continue
                return fail(err, E_COMMA_OR_BRACE, pos)
            if c == c',':
                pos += 1
                break
            if c == c']':
                pos += 1
                depth -= 1
                continue
            return fail(err, E_COMMA_OR_BRACKET, pos)


# ========================================================================= MessagePack

cdef Py_ssize_t check_utf8_payload(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end) noexcept nogil:
    """Index of the first invalid sequence in ``p[pos:end]`` (a cut-off one included), or -1."""
    cdef int n
    while True:
        while pos + 8 <= end and fi_swar_ascii(fi_load_le64(p + pos)):
            pos += 8
        while pos < end and p[pos] < 0x80:
            pos += 1
        if pos >= end:
            return -1
        n = utf8_seq(p, pos, end)
        if n <= 0:
            return pos
        pos += n


cdef Py_ssize_t mp_scan(const unsigned char* p, Py_ssize_t start, Py_ssize_t end,
                        Py_ssize_t max_depth, MFrame* stack, Err* err) noexcept nogil:
    """The MessagePack map at ``p[start]``: the index after it, or -1 with ``err`` set."""
    cdef Py_ssize_t pos = start, depth = 0, body, head, bad
    cdef uint64_t n, items
    cdef fi_mp_entry e
    cdef uint32_t ns
    if start >= end:
        return fail(err, E_END, end)
    if fi_mp_headers[p[start]].cls != FI_MP_MAP:
        return fail(err, E_NOT_MAP, start)
    while True:
        if pos >= end:
            return fail(err, E_END, end)
        e = fi_mp_headers[p[pos]]
        if e.cls == FI_MP_RESERVED:
            return fail(err, E_RESERVED, pos)
        if depth and stack[depth - 1].is_map and (stack[depth - 1].rem & 1) == 0 \
                and e.cls != FI_MP_STR and e.cls != FI_MP_BIN:
            return fail(err, E_MAP_KEY, pos)
        head = e.head
        if e.cls == FI_MP_SCALAR:
            head += e.n   # the whole item counts as its header
            if pos + head > end:
                return fail(err, E_END, pos)
            pos += head
        else:
            if pos + head > end:
                return fail(err, E_END, pos)
            n = <uint64_t>e.n if e.n >= 0 else fi_be(p + pos + 1, -e.n)
            body = pos + head
            if e.cls == FI_MP_ARRAY or e.cls == FI_MP_MAP:
                if depth >= max_depth:
                    return fail(err, E_DEPTH, pos)
                items = 2 * n if e.cls == FI_MP_MAP else n
                if items > <uint64_t>(end - body):
                    return fail(err, E_LENGTH_PAST_END, pos)
                pos = body
                if items:
                    stack[depth].rem = items
                    stack[depth].is_map = e.cls == FI_MP_MAP
                    depth += 1
                    continue
                if depth == 0:
                    return pos
            else:
                if n > <uint64_t>(end - body):
                    return fail(err, E_LENGTH_PAST_END, pos)
                if e.cls == FI_MP_STR:
                    bad = check_utf8_payload(p, body, body + <Py_ssize_t>n)
                    if bad >= 0:
                        return fail(err, E_INVALID_UTF8, bad)
                elif e.cls == FI_MP_EXT and p[body - 1] >= 0x80:
                    if p[body - 1] != 0xFF:  # types -128..-2: msgpack.ExtType refuses them
                        return fail(err, E_EXT_TYPE_RESERVED, pos)
                    # type -1: timestamp
                    if n == 8:
                        ns = fi_be32(p + body) >> 2
                        if ns > 999999999:
                            return fail(err, E_TIMESTAMP_NANOSECONDS, pos)
                    elif n == 12:
                        ns = fi_be32(p + body)
                        if ns > 999999999:
                            return fail(err, E_TIMESTAMP_NANOSECONDS, pos)
                    elif n != 4:
                        return fail(err, E_TIMESTAMP_LENGTH, pos)
                pos = body + <Py_ssize_t>n
        # one item done: count it off, closing every container it completes
        while True:
            stack[depth - 1].rem -= 1
            if stack[depth - 1].rem:
                break
            depth -= 1
            if depth == 0:
                return pos


# ========================================================================== C API

cdef inline Py_ssize_t stack_entries(Py_ssize_t max_depth, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    """Nesting can exceed neither max_depth nor the number of bytes."""
    cdef Py_ssize_t cap = end - start
    if max_depth < cap:
        cap = max_depth
    if cap < 0:
        cap = 0
    return cap + 1


cdef Py_ssize_t json_object_end(const unsigned char* p, Py_ssize_t start, Py_ssize_t end,
                                Py_ssize_t max_depth, ValidateError* err) noexcept nogil:
    return json_object_end_dt(p, start, end, max_depth, err, NULL)


cdef Py_ssize_t json_object_end_dt(const unsigned char* p, Py_ssize_t start, Py_ssize_t end,
                                   Py_ssize_t max_depth, ValidateError* err,
                                   DtSpan* dt) noexcept nogil:
    cdef unsigned char local[LOCAL_STACK]
    cdef unsigned char* stack = local
    cdef Py_ssize_t cap = stack_entries(max_depth, start, end), r
    if cap > LOCAL_STACK:
        stack = <unsigned char*>malloc(cap)
        if stack == NULL:
            return fail(err, -1, start)
    r = json_scan(p, start, end, max_depth, stack, err, dt)
    if stack != local:
        free(stack)
    return r


cdef Py_ssize_t msgpack_map_end(const unsigned char* p, Py_ssize_t start, Py_ssize_t end,
                                Py_ssize_t max_depth, ValidateError* err) noexcept nogil:
    cdef MFrame local[LOCAL_STACK]
    cdef MFrame* stack = local
    cdef Py_ssize_t cap = stack_entries(max_depth, start, end), r
    if cap > LOCAL_STACK:
        stack = <MFrame*>malloc(cap * sizeof(MFrame))
        if stack == NULL:
            return fail(err, -1, start)
    r = mp_scan(p, start, end, max_depth, stack, err)
    if stack != local:
        free(stack)
    return r


cdef object validate_error(const ValidateError* err, Py_ssize_t max_depth, Py_ssize_t base):
    if err.code < 0:
        return MemoryError()
    detail = too_deep(max_depth) if err.code == E_DEPTH else _REASONS[err.code]
    return ParseError(detail=detail, offset=<object>base + err.pos)  # Python ints: no overflow


# ========================================================================== wrappers

cdef inline int _range_error(Py_ssize_t start, Py_ssize_t end, Py_ssize_t n) except -1:
    raise ValueError(f"need 0 <= start <= end <= len(buf), got {start}, {end}, {n}")


ctypedef Py_ssize_t (*EndFn)(const unsigned char*, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                             Err*) noexcept nogil


cdef Py_ssize_t _scan_buffer(EndFn find_end, buf, Py_ssize_t start, Py_ssize_t end,
                             Py_ssize_t max_depth, Py_ssize_t base) except -1:
    """``find_end`` over any buffer, without the GIL past GIL_THRESHOLD bytes."""
    cdef Py_buffer view
    cdef const unsigned char* p
    cdef Py_ssize_t n, r
    cdef Err err
    cdef bint is_bytes = type(buf) is bytes
    if is_bytes:
        p = <const unsigned char*>PyBytes_AS_STRING(buf)
        n = PyBytes_GET_SIZE(buf)
    else:
        PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
        p = <const unsigned char*>view.buf
        n = view.len
    try:
        if not (0 <= start <= end <= n):
            _range_error(start, end, n)
        if end - start > GIL_THRESHOLD:
            with nogil:
                r = find_end(p, start, end, max_depth, &err)
        else:
            r = find_end(p, start, end, max_depth, &err)
    finally:
        if not is_bytes:
            PyBuffer_Release(&view)
    if r < 0:
        raise validate_error(&err, max_depth, base)
    return r


def scan_json_object(buf, Py_ssize_t start, Py_ssize_t end, Py_ssize_t max_depth, Py_ssize_t base=0):
    """Validate the JSON object starting exactly at ``buf[start]`` (read up to ``end``).

    Returns the index just past the object's closing ``}``; raises ``ParseError`` with
    ``offset = base + index`` of the first offending byte (see :mod:`fastingest.validate`).
    """
    return _scan_buffer(json_object_end, buf, start, end, max_depth, base)


def scan_msgpack_map(buf, Py_ssize_t start, Py_ssize_t end, Py_ssize_t max_depth, Py_ssize_t base=0):
    """Validate the MessagePack map starting exactly at ``buf[start]`` (read up to ``end``).

    Returns the index just past the map; raises ``ParseError`` with ``offset = base +
    index`` (see :mod:`fastingest.validate`).
    """
    return _scan_buffer(msgpack_map_end, buf, start, end, max_depth, base)
