# MsgpackScanner: one map or an array of maps (see framing/msgpack_scanner.py, the
# reference, for the lifecycle). It works on body offsets: a header may straddle the
# kept bytes and the chunk, and is then gathered from both.

cdef int M_START = MSGPACK_STATES.index("START")
cdef int M_ELEMS = MSGPACK_STATES.index("ELEMS")
cdef int M_EVENT = MSGPACK_STATES.index("EVENT")
cdef int M_END = MSGPACK_STATES.index("END")
cdef int M_FAILED = MSGPACK_STATES.index("FAILED")

load_msgpack_headers()


cdef class MsgpackScanner(ScannerBase):
    """Resumable framer for one MessagePack body (see :class:`fastingest.framing.MsgpackScanner`)."""

    STATES = MSGPACK_STATES

    def __cinit__(self, int64_t max_event, int max_depth, collect=False):
        self._init(max_event, max_depth)
        self._state = M_START
        self.s_event, self.s_end, self.s_failed = M_EVENT, M_END, M_FAILED
        self.mp_stack = <int64_t*>malloc((self.max_depth + 1) * sizeof(int64_t))
        if self.mp_stack == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.mp_stack)

    cdef object _validate(self, object src, int64_t start, int64_t stop, int64_t base):
        return _validator.scan_msgpack_map(src, start, stop, self.max_depth, base)

    cdef void _reset_event(self) noexcept:
        self.mp_depth = 0
        self.started = False
        self.skip = 0

    cdef int _scan(self) except -1:
        cdef Py_ssize_t i = 0
        while True:
            if self._state == M_EVENT:
                i = self._scan_event(i)
                if self._state == M_EVENT:
                    return 0   # needs more data
                continue
            if self.scan_pos >= self.cbase + self.cn:
                return 0
            if not self._top():
                return 0

    cdef int _gather(self, int64_t at, unsigned char* out, int want) except -1:
        """Copy up to ``want`` body bytes at offset ``at`` (kept buffer, then chunk);
        returns the count."""
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

    cdef inline int _header_at(self, int64_t at, int* head, int64_t* n) except -1:
        """The class of the item whose header starts at body offset ``at`` (FI_MP_CUT
        when its length field has not arrived yet)."""
        cdef unsigned char tmp[16]
        cdef int got
        if at >= self.cbase and at + 9 <= self.cbase + self.cn:
            return fi_mp_header(self.cp + (at - self.cbase), 9, head, n)
        got = self._gather(at, tmp, 9)
        if got == 0:
            return FI_MP_CUT
        return fi_mp_header(tmp, got, head, n)

    cdef bint _top(self) except -1:
        """One top-level step at ``scan_pos``; False when more bytes are needed."""
        cdef int head, cls
        cdef int64_t n
        cdef int64_t at = self.scan_pos
        cdef unsigned char b
        if self._state == M_START:
            cls = self._header_at(at, &head, &n)
            if cls == FI_MP_CUT:
                return False
            if cls == FI_MP_MAP:
                self.shape = False
                self._begin_event(at)
                return True
            if cls != FI_MP_ARRAY:
                raise ParseError(detail=EXPECTED_BODY_MSGPACK, offset=at)
            self.shape = True
            self.top_hdr = at
            self.remaining = n
            self._state = M_ELEMS if n else M_END
            self.scan_pos = at + head
            return True
        self._gather(at, &b, 1)
        if self._state == M_ELEMS:
            if fi_mp_headers[b].cls != FI_MP_MAP:
                raise ParseError(detail=EXPECTED_MAP, offset=at)
            self.remaining -= 1
            self._begin_event(at)
            return True
        raise ParseError(detail=DATA_AFTER_BODY, offset=at)   # END

    cdef Py_ssize_t _scan_event(self, Py_ssize_t i) except -1:
        cdef int64_t at = self.scan_pos
        cdef int64_t end = self.cbase + self.cn
        cdef int64_t ev = self.ev_start
        cdef int64_t limit = self.max_event
        cdef int64_t* stack = self.mp_stack
        cdef int head, cls
        cdef int64_t n, items, whole
        if not self.started and at == ev and at >= self.cbase:
            # The event's first byte: when all of it is in this chunk, one tight walk
            # finds its end (fi_mp_skip); otherwise, or when the walk below has a fault
            # to report, step by step.
            whole = fi_mp_skip(self.cp, at - self.cbase, min(end, ev + limit) - self.cbase,
                               self.max_depth)
            if whole >= 0:
                self.started = True
                at = self.cbase + whole
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
            if self.mp_depth == 0 and self.started:
                self._event_done(at)
                self._state = M_ELEMS if self.shape is True and self.remaining else M_END
                self.scan_pos = at
                return at - self.cbase
            if at >= end:
                self.scan_pos = at
                return self.cn
            cls = self._header_at(at, &head, &n)
            if cls == FI_MP_CUT:
                self.scan_pos = at   # resume at this header
                return self.cn
            if cls == FI_MP_RESERVED:
                self._event_fault(at, ParseError(detail=RESERVED_BYTE, offset=at))
            if self.mp_depth:
                stack[self.mp_depth - 1] -= 1
            self.started = True
            if cls == FI_MP_ARRAY or cls == FI_MP_MAP:
                items = n * 2 if cls == FI_MP_MAP else n
                if at + head + items - ev > limit:   # at least a byte per item
                    self._event_fault(at, None)
                if self.mp_depth >= self.max_depth:
                    self._event_fault(at, ParseError(detail=too_deep(self.max_depth), offset=at))
                stack[self.mp_depth] = items
                self.mp_depth += 1
                at += head
            else:
                if at + head + n - ev > limit:
                    self._event_fault(at, None)
                at += head
                self.skip = n

    cdef int _event_fault(self, int64_t at, object exc) except -1:
        """The event fails at body offset ``at`` (``exc``; None: over ``max_event``),
        unless the validator finds an earlier error."""
        cdef object earlier = self._locate(at, False)
        self._reset_event()
        if earlier is not None:
            raise earlier
        if exc is None:
            raise PayloadTooLarge(detail=event_too_large(self.max_event), offset=at)
        raise exc

    cdef int _finish(self) except -1:
        cdef int state = self._state
        if state == M_EVENT:
            return self._finish_event()
        if state == M_START:
            if self.pos == 0:
                raise ParseError(detail=EMPTY_BODY, offset=0)
            raise ParseError(detail=UNEXPECTED_END, offset=self.scan_pos)
        if state == M_ELEMS:
            raise ParseError(detail=LENGTH_PAST_END, offset=self.top_hdr)
        return 0
