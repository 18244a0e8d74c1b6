# cython: language_level=3
"""Cython twin of :mod:`fastingest.framing`: same names, same answers, C loops.

Chunks are scanned in place; only the event that straddles a chunk boundary is copied
(into a buffer bounded by ``max_event``), so a whole-body ``feed`` copies nothing and a
streamed body copies one event per chunk.
"""
from libc.stdint cimport int64_t, uint32_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy, memchr
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython cimport array

from . import errors as E
from . import _validate
from .errors import IngestError, LineError, ParseError, PayloadTooLarge

KIND_JSON = 1
KIND_NDJSON = 2
KIND_MSGPACK = 3

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

# Byte classes: nonzero where the JSON scan must stop and look.
cdef unsigned char OUT_JSON[256]
cdef unsigned char OUT_ND[256]
cdef unsigned char STR_JSON[256]
cdef unsigned char STR_ND[256]
cdef unsigned char WS_JSON[256]
cdef unsigned char WS_ND[256]


cdef void _init_tables():
    cdef int c
    for c in range(256):
        OUT_JSON[c] = OUT_ND[c] = STR_JSON[c] = STR_ND[c] = WS_JSON[c] = WS_ND[c] = 0
    for c in b'"{}[]':
        OUT_JSON[c] = OUT_ND[c] = 1
    OUT_ND[10] = 1
    STR_JSON[34] = STR_JSON[92] = 1
    STR_ND[34] = STR_ND[92] = STR_ND[10] = 1
    for c in b" \t\r":
        WS_JSON[c] = WS_ND[c] = 1
    WS_JSON[10] = 1


_init_tables()

cdef array.array _INT64_TEMPLATE = array.array("q", [])
_CUT_OFF = (E.UNEXPECTED_END, E.LENGTH_PAST_END)


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


cdef class Frames:
    """The events one ``feed()`` completed (see framing.Frames)."""

    cdef object chunk               # keeps the chunk's buffer alive
    cdef const unsigned char[::1] view
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

    def offsets(self):
        """Body offset of each event's first byte."""
        return self._int64s(self.off)

    def line_numbers(self):
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

    def json_document(self):
        """One JSON array holding every event, for a single ``orjson.loads``."""
        cdef Py_ssize_t i, total = 2 + (self.n - 1 if self.n else 0)
        for i in range(self.n):
            total += self.ln[i]
        cdef bytes doc = PyBytes_FromStringAndSize(NULL, total)
        cdef char* w = PyBytes_AS_STRING(doc)
        w[0] = b"["
        w += 1
        for i in range(self.n):
            if i:
                w[0] = b","
                w += 1
            memcpy(w, self._ptr(i), self.ln[i])
            w += self.ln[i]
        w[0] = b"]"
        return doc

    def msgpack_document(self):
        """One MessagePack array holding every event, for a single ``msgpack.unpackb``."""
        cdef Py_ssize_t i, head, total = 0
        for i in range(self.n):
            total += self.ln[i]
        head = 1 if self.n < 16 else (3 if self.n < 0x10000 else 5)
        cdef bytes doc = PyBytes_FromStringAndSize(NULL, total + head)
        cdef unsigned char* w = <unsigned char*>PyBytes_AS_STRING(doc)
        cdef uint32_t n = <uint32_t>self.n
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
        for i in range(self.n):
            memcpy(w, self._ptr(i), self.ln[i])
            w += self.ln[i]
        return doc


cdef class Scanner:
    """Resumable framer for one body (see framing.Scanner)."""

    cdef readonly int kind
    cdef readonly int64_t max_event
    cdef readonly int max_depth
    cdef readonly bint collect
    cdef int state
    cdef bint array_mode
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
        self.stack = <unsigned char*>malloc(max_depth + 1)
        self.mp_stack = <int64_t*>malloc((max_depth + 1) * sizeof(int64_t))
        if self.stack == NULL or self.mp_stack == NULL:
            raise MemoryError()
        self.line_errors = []

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

    # -- public -----------------------------------------------------------------------

    def feed(self, data):
        """Scan one more chunk of the body; return the events it completed."""
        if self.error is not None:
            return self._frames(None, self.error)
        self.view = data
        self.chunk = data
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
        self.view = None
        self.chunk = None
        self.cp = NULL
        self.cn = 0
        self.cbase = self.pos
        return frames

    def finish(self):
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
            f.view = self.view
            f.cptr = self.cp
            f.cbase = self.cbase
            f.straddler = self.straddler
        self.straddler = None
        f.line_errors = self.line_errors
        self.line_errors = []
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
                self.state = S_FIRST
                return i + 1
            if c == b"{":
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
        cdef int64_t limit_abs = self.ev_start + self.max_event
        cdef Py_ssize_t limit = <Py_ssize_t>(limit_abs - self.cbase)
        cdef Py_ssize_t stop = end if end < limit else limit
        cdef bint nd = self.kind == K_NDJSON
        cdef const unsigned char* out_cls = &OUT_JSON[0]
        cdef const unsigned char* str_cls = &STR_JSON[0]
        cdef unsigned char* stack = self.stack
        cdef int depth = self.depth
        cdef int max_depth = self.max_depth
        cdef bint in_str = self.in_str
        cdef unsigned char c
        if nd:
            out_cls = &OUT_ND[0]
            str_cls = &STR_ND[0]
        if i >= stop:
            pass
        elif self.esc:
            self.esc = False
            if nd and p[i] == 10:
                return self._json_event_fault(i, F_LINE)
            i += 1
        while i < stop:
            if in_str:
                while i < stop and not str_cls[p[i]]:
                    i += 1
                if i == stop:
                    break
                c = p[i]
                if c == b'"':
                    in_str = False
                    i += 1
                elif c == b"\\":
                    if i + 1 < stop:
                        if nd and p[i + 1] == 10:
                            self.depth = depth
                            return self._json_event_fault(i + 1, F_LINE)
                        i += 2
                    else:
                        self.esc = True
                        i += 1
                else:
                    self.depth = depth
                    return self._json_event_fault(i, F_LINE)
                continue
            while i < stop and not out_cls[p[i]]:
                i += 1
            if i == stop:
                break
            c = p[i]
            if c == b'"':
                in_str = True
            elif c == b"{" or c == b"[":
                if depth >= max_depth:
                    self.depth = depth
                    return self._json_event_fault(i, F_DEPTH)
                stack[depth] = c
                depth += 1
            elif c == b"}" or c == b"]":
                if stack[depth - 1] != c - 2:
                    self.depth = depth
                    return self._json_event_fault(i, F_SHAPE)
                depth -= 1
                if depth == 0:
                    self.in_str = False
                    self._event_done(self.cbase + i + 1)
                    self.state = S_AFTER if (self.array_mode or nd) else S_END
                    return i + 1
            else:
                self.depth = depth
                return self._json_event_fault(i, F_LINE)
            i += 1
        self.depth = depth
        self.in_str = in_str
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
                self._begin_event(at)
                return True
            if cls != MP_ARRAY:
                raise ParseError(detail=E.EXPECTED_BODY_MSGPACK, offset=at)
            self.array_mode = True
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
