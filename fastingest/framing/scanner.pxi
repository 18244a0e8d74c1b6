# ScannerBase: the buffering every compiled scanner shares (see framing/base.py, the
# reference). A chunk is scanned in place; only the event that straddles a chunk
# boundary is copied, into a buffer bounded by max_event, so a whole body fed at once
# copies nothing and a streamed body copies at most one event per chunk.


cdef class ScannerBase:
    """Resumable framer for one body: the buffering every format's scanner shares."""

    STATES = ()

    cdef int _init(self, int64_t max_event, int max_depth) except -1:
        """For each scanner's __cinit__ (the only one that parses the arguments)."""
        if max_event < 1 or max_depth < 1:
            raise ValueError("max_event and max_depth must be positive")
        self.max_event = max_event
        self.max_depth = max_depth
        self.ev_start = -1
        return 0

    def __dealloc__(self):
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
        """JSON/MessagePack: whether the body is an array of events (None until known,
        and always for NDJSON and concatenated JSON)."""
        return self.shape

    @property
    def state(self):
        """The current state's name (see ``STATES``)."""
        return type(self).STATES[self._state]

    # -- public -----------------------------------------------------------------------

    cpdef Frames feed(self, data):
        """Scan one more chunk of the body; return the events it completed."""
        if self.finished:
            raise ValueError("the scanner finished: its body is complete")
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
            self._state = self.s_failed
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
        if self.finished:
            raise ValueError("the scanner finished: its body is complete")
        if self.error is not None:
            return self._frames(None, self.error)
        cdef object error = None
        try:
            self._finish()
        except IngestError as exc:
            error = self.error = exc
        self._state = self.s_failed if error is not None else self.s_end
        self.finished = error is None
        self.buf_len = 0
        return self._frames(None, error)

    # -- for the format scanners --------------------------------------------------------

    cdef int _scan(self) except -1:
        """Scan the chunk ``cp[0:cn]`` (body offset ``cbase``) from ``scan_pos`` on."""
        raise NotImplementedError

    cdef int _finish(self) except -1:
        """The body ended in the current state: raise what that means."""
        raise NotImplementedError

    cdef object _validate(self, object src, int64_t start, int64_t stop, int64_t base):
        """The format's grammar validator over ``src[start:stop]``."""
        raise NotImplementedError

    cdef Frames _frames(self, object data, object error):
        cdef Frames f = Frames.__new__(Frames)
        f.n = self.o_n
        f.off, f.ln, f.lines = self.o_off, self.o_len, self.o_line
        self.o_off = self.o_len = self.o_line = NULL
        self.o_n = self.o_cap = 0
        f.has_lines = self.has_lines
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

    cdef int _emit(self, int64_t start, int64_t end, int64_t line) except -1:
        """Body offsets [start, end) are one complete event (on ``line``, NDJSON)."""
        cdef Py_ssize_t cap
        if self.o_n == self.o_cap:
            cap = self.o_cap * 2 if self.o_cap else 64
            self.o_off = <int64_t*>self._grow(self.o_off, cap)
            self.o_len = <int64_t*>self._grow(self.o_len, cap)
            if self.has_lines:
                self.o_line = <int64_t*>self._grow(self.o_line, cap)
            self.o_cap = cap
        self.o_off[self.o_n] = start
        self.o_len[self.o_n] = end - start
        if self.has_lines:
            self.o_line[self.o_n] = line
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
        """After a chunk: keep the unfinished event (or header) for the next one."""
        cdef int64_t keep = self.ev_start if self._state == self.s_event else self.scan_pos
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

    cdef void _begin_event(self, int64_t at) noexcept:
        self._state = self.s_event
        self.ev_start = at
        if at >= self.cbase:
            self.buf_len = 0
            self.keep_from = at

    cdef void _reset_event(self) noexcept:
        """Forget the current event's scan state (after it ended or failed)."""

    cdef int64_t _event_line(self) noexcept:
        """The line of the current event (NDJSON; 0 otherwise)."""
        return 0

    cdef int _event_done(self, int64_t end) except -1:
        """The current event ends just before body offset ``end`` (inside this chunk)."""
        if self.ev_start < self.cbase:
            self._buffer_upto(end)
            self.straddler = PyBytes_FromStringAndSize(<const char*>self.buf, self.buf_len)
            self.buf_len = 0
            self.keep_from = end
        self._emit(self.ev_start, end, self._event_line())
        self._reset_event()
        return 0

    cdef int _fault(self, object exc) except -1:
        """A fault in the body (fatal; NDJSON may skip the bad line instead)."""
        raise exc

    cdef object _locate(self, int64_t stop, bint at_end):
        """The validator's first error in the current event's bytes before ``stop``
        (mid-body, a reason that only says the data stops there does not count)."""
        cdef object src
        cdef int64_t start, base
        if self.ev_start >= self.cbase and self.cn:
            src, base = self.chunk, self.cbase
        else:
            if stop > self.keep_from + self.buf_len:
                self._buffer_upto(stop)
            src = PyBytes_FromStringAndSize(<const char*>self.buf, self.buf_len)
            base = self.keep_from
        start = self.ev_start - base
        try:
            self._validate(src, start, stop - base, base)
        except ParseError as exc:
            if at_end:
                return exc
            if exc.offset is not None and exc.offset < stop and exc.detail not in CUT_OFF:
                return exc
        return None

    cdef int _finish_event(self) except -1:
        """The body ended inside an event: its first error, else 'unexpected end'."""
        cdef object exc = self._locate(self.pos, True)
        self._reset_event()
        if exc is None:
            exc = ParseError(detail=UNEXPECTED_END, offset=self.pos)
        if self.has_lines:
            exc.line = self._event_line()
        self._fault(exc)
        return 0
