# Frames: the events one feed() completed (see framing/base.py, the reference).
# Spans point into the chunk fed (kept alive here) except a first event that began in an
# earlier chunk, which was copied out (``straddler``).

cdef array.array _INT64_TEMPLATE = array.array("q", [])
_NO_LINE_ERRORS = []   # shared by Frames without line errors; never appended to


cdef class Frames:
    """The events one ``feed()`` completed (see :class:`fastingest.framing.Frames`)."""

    def __dealloc__(self):
        free(self.off)
        free(self.ln)
        free(self.lines)

    def __len__(self):
        return self.n

    cdef array.array int64s(self, const int64_t* src):
        cdef array.array a = array.clone(_INT64_TEMPLATE, self.n, zero=False)
        if self.n:
            memcpy(a.data.as_voidptr, src, self.n * sizeof(int64_t))
        return a

    cpdef array.array offsets(self):
        """Body offset of each event's first byte."""
        return self.int64s(self.off)

    cpdef object line_numbers(self):
        """1-based NDJSON line of each event (None for other formats)."""
        return self.int64s(self.lines) if self.has_lines else None

    def event_bytes(self, Py_ssize_t i):
        """Event ``i``'s original bytes."""
        if not 0 <= i < self.n:
            raise IndexError(i)
        return PyBytes_FromStringAndSize(<const char*>self.ptr(i), self.ln[i])

    def raw(self):
        """Each event's original bytes."""
        cdef Py_ssize_t i
        cdef list out = [None] * self.n
        for i in range(self.n):
            out[i] = PyBytes_FromStringAndSize(<const char*>self.ptr(i), self.ln[i])
        return out

    cdef bytes json_doc(self, Py_ssize_t lo, Py_ssize_t hi):
        cdef Py_ssize_t i, total = 2 + (hi - lo - 1 if hi > lo else 0)
        for i in range(lo, hi):
            total += self.ln[i]
        cdef bytes doc = PyBytes_FromStringAndSize(NULL, total)
        cdef char* w = PyBytes_AS_STRING(doc)
        w[0] = c'['
        w += 1
        for i in range(lo, hi):
            if i > lo:
                w[0] = c','
                w += 1
            memcpy(w, self.ptr(i), self.ln[i])
            w += self.ln[i]
        w[0] = c']'
        return doc

    cdef bytes msgpack_doc(self, Py_ssize_t lo, Py_ssize_t hi):
        cdef Py_ssize_t i, head, total = 0
        cdef uint32_t n = <uint32_t>(hi - lo)
        for i in range(lo, hi):
            total += self.ln[i]
        head = 1 if n < 16 else (3 if n < 0x10000 else 5)
        cdef bytes doc = PyBytes_FromStringAndSize(NULL, total + head)
        cdef unsigned char* w = <unsigned char*>PyBytes_AS_STRING(doc)
        if head == 1:
            w[0] = 0x90 | n                      # fixarray
        elif head == 3:
            w[0] = 0xDC                          # array 16
            w[1] = (n >> 8) & 0xFF
            w[2] = n & 0xFF
        else:
            w[0] = 0xDD                          # array 32
            w[1] = (n >> 24) & 0xFF
            w[2] = (n >> 16) & 0xFF
            w[3] = (n >> 8) & 0xFF
            w[4] = n & 0xFF
        w += head
        for i in range(lo, hi):
            memcpy(w, self.ptr(i), self.ln[i])
            w += self.ln[i]
        return doc

    def json_document(self, Py_ssize_t lo=0, hi=None):
        """One JSON array holding events ``lo:hi``, for a single ``orjson.loads``."""
        return self.json_doc(lo, self.n if hi is None else min(<Py_ssize_t>hi, self.n))

    def msgpack_document(self, Py_ssize_t lo=0, hi=None):
        """One MessagePack array holding events ``lo:hi``, for a single ``msgpack.unpackb``."""
        return self.msgpack_doc(lo, self.n if hi is None else min(<Py_ssize_t>hi, self.n))
