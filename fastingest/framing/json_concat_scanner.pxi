# JsonConcatScanner: JSON objects one after another (see framing/json_concat_scanner.py,
# the reference, for the lifecycle).

cdef int C_START = JSON_CONCAT_STATES.index("START")
cdef int C_EVENT = JSON_CONCAT_STATES.index("EVENT")
cdef int C_AFTER = JSON_CONCAT_STATES.index("AFTER")
cdef int C_END = JSON_CONCAT_STATES.index("END")
cdef int C_FAILED = JSON_CONCAT_STATES.index("FAILED")


cdef class JsonConcatScanner(JsonEventScanner):
    """Resumable framer for a body of concatenated JSON objects (see
    :class:`fastingest.framing.JsonConcatScanner`)."""

    STATES = JSON_CONCAT_STATES

    def __cinit__(self, int64_t max_event, int max_depth, collect=False):
        self._init(max_event, max_depth)
        self._setup(&WS_JSON[0])
        self._state = C_START
        self.s_event, self.s_end, self.s_failed = C_EVENT, C_END, C_FAILED

    cdef int _scan(self) except -1:
        cdef const unsigned char* p = self.cp
        cdef const unsigned char* space = self.space
        cdef Py_ssize_t end = self.cn
        cdef Py_ssize_t i = self.scan_pos - self.cbase
        if i < 0:
            i = 0   # an object went on past the previous chunk: resume at this one's start
        while True:
            if self._state == C_EVENT:
                i = self._scan_event(i)
                if self._state == C_EVENT:
                    return 0   # needs more data
                continue
            if i >= end:
                self.scan_pos = self.cbase + end
                return 0
            if self._at_bom(p[i], i):
                self._bom_byte(p[i])
                i += 1
                continue
            while i < end and space[p[i]]:
                i += 1
            if i < end:
                i = self._token(p[i], i)

    cdef Py_ssize_t _token(self, unsigned char c, Py_ssize_t i) except -1:
        """The byte ``c`` at chunk index ``i``, outside every object: the next object's '{'."""
        if c == c'{':
            self._begin_event(self.cbase + i)
            return i
        raise ParseError(detail=EXPECTED_OBJECT, offset=self.cbase + i)

    cdef int _event_ended(self) except -1:
        self._state = C_AFTER
        return 0

    cdef int _finish(self) except -1:
        if self._state == C_EVENT:
            return self._finish_event()
        return self._finish_bom()
