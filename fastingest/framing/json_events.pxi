# The JSON event scan that JsonScanner and NdjsonScanner share (see
# framing/json_events.py, the reference). Inside an event only strings, escapes and a
# bracket stack bounded by max_depth are tracked; blocks of 64 bytes are classified at
# once (simdjson's stage 1), and a block whose backslashes lie outside strings, where
# the two readings of a backslash differ, goes byte by byte.

cdef enum:
    F_LINE = 0          # a newline inside the event (NDJSON)
    F_DEPTH = 1         # nesting deeper than max_depth
    F_SHAPE = 2         # a closing bracket that does not match
    F_SIZE = 3          # the event is over max_event

cdef enum:
    R_MORE = 0          # the range is scanned; the event goes on
    R_DONE = 1          # the event ends just before pos
    R_FAULT = 2         # fault (kind in *fault) at pos
    R_SCALAR = 3        # this block needs the byte-by-byte scan

# Whitespace between events (NDJSON: without the newline, which ends a line).
cdef unsigned char WS_JSON[256]
cdef unsigned char WS_NDJSON[256]


cdef void _init_whitespace() noexcept:
    cdef int c
    for c in range(256):
        WS_JSON[c] = WS_NDJSON[c] = 0
    for c in b" \t\r":
        WS_JSON[c] = WS_NDJSON[c] = 1
    WS_JSON[c'\n'] = 1


_init_whitespace()

cdef const unsigned char* BOM = b"\xef\xbb\xbf"


cdef struct JState:
    int depth
    bint in_str
    bint esc            # the next byte is escaped (a string ended a range with a backslash)
    int max_depth
    unsigned char* stack


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
        if nd and p[i] == c'\n':
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
                    if nd and p[i + 1] == c'\n':
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
        elif c == c'\n':
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
    """The 64 bytes at p[i] at once: escapes, then string spans by a prefix XOR of the
    unescaped quotes, then only the brackets outside strings (and newlines) one by one.
    Where a backslash lies outside every string the two readings of it differ (it
    escapes nothing there): hand the block to the scalar scan."""
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


cdef class JsonEventScanner(ScannerBase):
    """Base of JsonScanner and NdjsonScanner: the event scan, the byte order mark and
    whitespace (see fastingest.framing.json_events)."""

    def __dealloc__(self):
        free(self.stack)

    cdef int _setup(self, const unsigned char* space) except -1:
        """For the subclasses' __cinit__, after ScannerBase._init."""
        self.stack = <unsigned char*>malloc(self.max_depth + 1)
        if self.stack == NULL:
            raise MemoryError()
        self.space = space
        return 0

    cdef object _validate(self, object src, int64_t start, int64_t stop, int64_t base):
        return _validator.scan_json_object(src, start, stop, self.max_depth, base)

    cdef void _reset_event(self) noexcept:
        self.depth = 0
        self.in_str = self.esc = False

    cdef bint _at_bom(self, unsigned char c, Py_ssize_t i) noexcept:
        """Whether ``c`` at chunk index ``i`` is a byte of the byte order mark (or must be)."""
        return self._state == J_BOM1 or self._state == J_BOM2 or \
            (self._state == J_START and self.cbase + i == 0 and c == BOM[0])

    cdef int _bom_byte(self, unsigned char c) except -1:
        """One byte of the byte order mark: START (at offset 0) -> BOM1 -> BOM2 -> START."""
        cdef int state = self._state
        if c != BOM[state - J_START]:
            raise ParseError(detail=BAD_BOM, offset=0)
        self._state = J_START if state == J_BOM2 else state + 1
        return 0

    cdef int _finish_bom(self) except -1:
        """The body ended inside its byte order mark: a 406."""
        if self._state == J_BOM1 or self._state == J_BOM2:
            raise ParseError(detail=BAD_BOM, offset=0)
        return 0

    cdef Py_ssize_t _scan_event(self, Py_ssize_t i) except -1:
        """Inside the current event from chunk index ``i``: up to its end (emitted), a
        fault, or the end of the chunk."""
        cdef const unsigned char* p = self.cp
        cdef Py_ssize_t end = self.cn
        cdef Py_ssize_t limit = <Py_ssize_t>(self.ev_start + self.max_event - self.cbase)
        cdef Py_ssize_t stop = end if end < limit else limit
        cdef int nd = self.nd
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
            self._event_done(self.cbase + pos)
            self._event_ended()
            return pos
        if r == R_FAULT:
            return self._event_fault(pos, fault)
        if i == limit and i < end:
            return self._event_fault(i, F_SIZE)
        return i

    cdef int _event_ended(self) except -1:
        """Set the state that follows a complete event."""
        raise NotImplementedError

    cdef Py_ssize_t _event_fault(self, Py_ssize_t i, int what) except -1:
        """Report the first error of an event the scan found broken at chunk index
        ``i``; return where scanning resumes (NDJSON skipping the line)."""
        cdef int64_t at = self.cbase + i
        cdef object line = self._event_line() if self.has_lines else None
        cdef object exc
        if what == F_SIZE or what == F_LINE:
            exc = self._locate(at, False)
        else:
            exc = self._locate(at + 1, False)
        self._reset_event()
        if exc is None:
            if what == F_SIZE:
                raise PayloadTooLarge(detail=event_too_large(self.max_event), offset=at, line=line)
            if what == F_LINE:
                exc = ParseError(detail=LINE_ENDED, offset=at)
            elif what == F_DEPTH:
                exc = ParseError(detail=too_deep(self.max_depth), offset=at)
            else:
                exc = ParseError(detail=EXPECTED_OBJECT, offset=at)
        exc.line = line
        self._fault(exc)
        self.buf_len = 0
        self.keep_from = at
        # A line fault resumes at the newline itself, which ends the skipped line.
        return i if what == F_LINE else i + 1
