# JsonScanner: one object or an array of objects (see framing/json_scanner.py, the
# reference, for the lifecycle).

cdef int J_START = JSON_STATES.index("START")
cdef int J_BOM1 = JSON_STATES.index("BOM1")
cdef int J_BOM2 = JSON_STATES.index("BOM2")
cdef int J_FIRST = JSON_STATES.index("FIRST")
cdef int J_NEXT = JSON_STATES.index("NEXT")
cdef int J_AFTER = JSON_STATES.index("AFTER")
cdef int J_EVENT = JSON_STATES.index("EVENT")
cdef int J_END = JSON_STATES.index("END")
cdef int J_FAILED = JSON_STATES.index("FAILED")


cdef class JsonScanner(JsonEventScanner):
    """Resumable framer for one JSON body (see :class:`fastingest.framing.JsonScanner`)."""

    STATES = JSON_STATES

    def __cinit__(self, int64_t max_event, int max_depth, collect=False):
        self._init(max_event, max_depth)
        self._setup(&WS_JSON[0])
        self._state = J_START
        self.s_event, self.s_end, self.s_failed = J_EVENT, J_END, J_FAILED

    cdef int _scan(self) except -1:
        cdef const unsigned char* p = self.cp
        cdef const unsigned char* space = self.space
        cdef Py_ssize_t end = self.cn
        cdef Py_ssize_t i = self.scan_pos - self.cbase
        if i < 0:
            i = 0   # an event went on past the previous chunk: resume at this one's start
        while True:
            if self._state == J_EVENT:
                i = self._scan_event(i)
                if self._state == J_EVENT:
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
        """The structural byte ``c`` at chunk index ``i``, outside every event."""
        cdef int state = self._state
        cdef int64_t at = self.cbase + i
        if state == J_START:
            if c == c'[':
                self.shape = True
                self._state = J_FIRST
                return i + 1
            if c == c'{':
                self.shape = False
                self._begin_event(at)
                return i
            raise ParseError(detail=EXPECTED_BODY_JSON, offset=at)
        if state == J_FIRST or state == J_NEXT:
            if c == c'{':
                self._begin_event(at)
                return i
            if c == c']' and state == J_FIRST:
                self._state = J_END
                return i + 1
            raise ParseError(detail=EXPECTED_OBJECT, offset=at)
        if state == J_AFTER:
            if c == c',':
                self._state = J_NEXT
                return i + 1
            if c == c']':
                self._state = J_END
                return i + 1
            raise ParseError(detail=EXPECTED_COMMA_OR_BRACKET, offset=at)
        raise ParseError(detail=DATA_AFTER_BODY, offset=at)   # END

    cdef int _event_ended(self) except -1:
        self._state = J_AFTER if self.shape is True else J_END
        return 0

    cdef int _finish(self) except -1:
        cdef int state = self._state
        if state == J_EVENT:
            return self._finish_event()
        self._finish_bom()
        if state == J_START:
            raise ParseError(detail=EMPTY_BODY, offset=self.pos)
        if state != J_END:
            raise ParseError(detail=UNEXPECTED_END, offset=self.pos)
        return 0
