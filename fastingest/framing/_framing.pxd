# The compiled scanners and their Frames, for the other compiled modules
# (``from fastingest.framing._framing cimport Frames, ScannerBase``). Each class lists
# its own state here: the base the buffering every scanner shares, each format only
# what its own scan needs.
cimport cython
from cpython cimport array
from cpython.bytes cimport PyBytes_AS_STRING
from libc.stdint cimport int64_t


cdef class Frames:
    cdef object chunk               # keeps the chunk's buffer alive
    cdef const unsigned char[::1] view
    cdef const unsigned char* cptr  # the chunk's bytes; event i at off[i] - cbase
    cdef int64_t cbase
    cdef bytes straddler            # event 0 when it began in an earlier chunk
    cdef int64_t* off               # body offset of each event
    cdef int64_t* ln                # length of each event
    cdef int64_t* lines             # NDJSON line of each event
    cdef Py_ssize_t n
    cdef bint has_lines
    cdef public list line_errors
    cdef public object error

    cdef inline const unsigned char* ptr(self, Py_ssize_t i) noexcept:
        """The first byte of event ``i``."""
        if i == 0 and self.straddler is not None:
            return <const unsigned char*>PyBytes_AS_STRING(self.straddler)
        return self.cptr + (self.off[i] - self.cbase)

    cdef array.array int64s(self, const int64_t* src)
    cpdef array.array offsets(self)
    cpdef object line_numbers(self)
    cdef bytes json_doc(self, Py_ssize_t lo, Py_ssize_t hi)
    cdef bytes msgpack_doc(self, Py_ssize_t lo, Py_ssize_t hi)


cdef class ScannerBase:
    cdef readonly int64_t max_event
    cdef readonly int max_depth
    cdef readonly bint collect
    cdef bint has_lines
    cdef int _state
    cdef int s_event, s_end, s_failed   # this scanner's numbers of those states
    cdef object shape                   # the body is an array, once its first byte says
    cdef int64_t pos                    # bytes fed so far
    cdef int64_t scan_pos               # where scanning resumes
    cdef int64_t ev_start               # body offset of the current event
    cdef bint finished
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

    cdef int _init(self, int64_t max_event, int max_depth) except -1
    cpdef Frames feed(self, data)
    cpdef Frames finish(self)
    cdef int _scan(self) except -1
    cdef int _finish(self) except -1
    cdef object _validate(self, object src, int64_t start, int64_t stop, int64_t base)
    cdef Frames _frames(self, object data, object error)
    cdef int _emit(self, int64_t start, int64_t end, int64_t line) except -1
    cdef void* _grow(self, void* p, Py_ssize_t cap) except NULL
    cdef int _append(self, const unsigned char* p, Py_ssize_t n) except -1
    cdef int _buffer_upto(self, int64_t upto) except -1
    cdef int _keep_tail(self) except -1
    cdef void _begin_event(self, int64_t at) noexcept
    cdef void _reset_event(self) noexcept
    cdef int64_t _event_line(self) noexcept
    cdef int _event_done(self, int64_t end) except -1
    cdef int _fault(self, object exc) except -1
    cdef object _locate(self, int64_t stop, bint at_end)
    cdef int _finish_event(self) except -1


cdef class JsonEventScanner(ScannerBase):
    cdef unsigned char* stack           # the event's open brackets
    cdef int depth
    cdef bint in_str, esc
    cdef bint nd                        # NDJSON: a newline ends the event
    cdef const unsigned char* space     # whitespace between events

    cdef int _setup(self, const unsigned char* space) except -1
    cdef bint _at_bom(self, unsigned char c, Py_ssize_t i) noexcept
    cdef int _bom_byte(self, unsigned char c) except -1
    cdef int _finish_bom(self) except -1
    cdef Py_ssize_t _scan_event(self, Py_ssize_t i) except -1
    cdef int _event_ended(self) except -1
    cdef Py_ssize_t _event_fault(self, Py_ssize_t i, int what) except -1


@cython.final
cdef class JsonScanner(JsonEventScanner):
    cdef Py_ssize_t _token(self, unsigned char c, Py_ssize_t i) except -1


@cython.final
cdef class NdjsonScanner(JsonEventScanner):
    cdef int64_t line                   # the line being scanned
    cdef int64_t ev_line                # the current event's line

    cdef Py_ssize_t _token(self, unsigned char c, Py_ssize_t i) except -1


@cython.final
cdef class JsonConcatScanner(JsonEventScanner):
    cdef Py_ssize_t _token(self, unsigned char c, Py_ssize_t i) except -1


@cython.final
cdef class MsgpackScanner(ScannerBase):
    cdef int64_t* mp_stack              # items left in each open container of the event
    cdef int mp_depth
    cdef bint started                   # the event's first header was read
    cdef int64_t skip                   # payload bytes still to skip
    cdef int64_t remaining              # maps left in the top-level array
    cdef int64_t top_hdr                # body offset of the top-level array's header

    cdef int _gather(self, int64_t at, unsigned char* out, int want) except -1
    cdef inline int _header_at(self, int64_t at, int* head, int64_t* n) except -1
    cdef bint _top(self) except -1
    cdef Py_ssize_t _scan_event(self, Py_ssize_t i) except -1
    cdef int _event_fault(self, int64_t at, object exc) except -1
