# NdjsonScanner: one object per line (see framing/ndjson_scanner.py, the reference, for
# the lifecycle and the errors="collect" mode).

cdef int N_START = NDJSON_STATES.index("START")
cdef int N_EVENT = NDJSON_STATES.index("EVENT")
cdef int N_AFTER = NDJSON_STATES.index("AFTER")
cdef int N_SKIP = NDJSON_STATES.index("SKIP")
cdef int N_END = NDJSON_STATES.index("END")
cdef int N_FAILED = NDJSON_STATES.index("FAILED")


cdef class NdjsonScanner(JsonEventScanner):
    """Resumable framer for one NDJSON body (see :class:`fastingest.framing.NdjsonScanner`)."""

    STATES = NDJSON_STATES

    def __cinit__(self, int64_t max_event, int max_depth, collect=False):
        self._init(max_event, max_depth)
        self._state = N_START
        self.s_event, self.s_end, self.s_failed = N_EVENT, N_END, N_FAILED
        self.collect = bool(collect)
        self.has_lines = True
        self.nd = True
        self._setup(&WS_NDJSON[0])
        self.line = 1

    cdef int _scan(self) except -1:
        cdef const unsigned char* p = self.cp
        cdef const unsigned char* space = self.space
        cdef Py_ssize_t end = self.cn
        cdef Py_ssize_t i = self.scan_pos - self.cbase
        cdef const void* nl
        if i < 0:
            i = 0   # an event went on past the previous chunk: resume at this one's start
        while True:
            if self._state == N_EVENT:
                i = self._scan_event(i)
                if self._state == N_EVENT:
                    return 0   # needs more data
                continue
            if i >= end:
                self.scan_pos = self.cbase + end
                return 0
            if self._state == N_SKIP:
                nl = memchr(p + i, c'\n', end - i)
                if nl == NULL:
                    self.scan_pos = self.cbase + end
                    return 0
                self.line += 1
                self._state = N_START
                i = <const unsigned char*>nl - p + 1
                continue
            if self._at_bom(p[i], i):
                self._bom_byte(p[i])
                i += 1
                continue
            while i < end and space[p[i]]:
                i += 1
            if i < end:
                i = self._token(p[i], i)

    cdef Py_ssize_t _token(self, unsigned char c, Py_ssize_t i) except -1:
        """The byte ``c`` at chunk index ``i``, outside every event."""
        cdef int64_t at = self.cbase + i
        if c == c'\n':
            self.line += 1
            self._state = N_START
            return i + 1
        if self._state == N_START:
            if c == c'{':
                self._begin_event(at)
                self.ev_line = self.line
                return i
            self._fault(ParseError(detail=EXPECTED_OBJECT, offset=at, line=self.line))
            return i
        # AFTER: only whitespace may follow the event on its line
        self._fault(ParseError(detail=DATA_AFTER_EVENT, offset=at, line=self.line))
        return i

    cdef int _event_ended(self) except -1:
        self._state = N_AFTER
        return 0

    cdef int64_t _event_line(self) noexcept:
        return self.ev_line

    cdef int _fault(self, object exc) except -1:
        """Fatal, unless collecting and the fault is the line's (406): then the line is
        recorded and skipped."""
        if not self.collect or exc.status != 406:
            raise exc
        if self.line_errors is None:
            self.line_errors = []
        self.line_errors.append(LineError(exc.line or 0, exc.offset or 0, exc.detail or "", exc.status))
        self._state = N_SKIP
        return 0

    cdef int _finish(self) except -1:
        if self._state == N_EVENT:
            return self._finish_event()
        return self._finish_bom()
