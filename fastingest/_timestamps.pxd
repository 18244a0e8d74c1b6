# C-level API of the dt parser, for other Cython modules: ``from fastingest._timestamps cimport ...``.
# All return 1 and store int64 nanoseconds since the UNIX epoch (UTC) in ``out[0]``, or return 0
# (``out`` untouched) when the value is unparseable or outside the int64 nanosecond range.
from cpython.object cimport PyObject
from cpython.array cimport array
from libc.stdint cimport int64_t

# Every text form: RFC 3339, the ISO 8601 forms, integer and decimal epoch strings.
# ASCII whitespace around the value is ignored; any other byte >= 0x80 makes it unparseable.
cdef bint parse_dt_text(const unsigned char* s, Py_ssize_t n, int64_t* out) noexcept nogil

# Integer epoch, unit by magnitude: |v| < 1e11 s, < 1e14 ms, < 1e17 us, else ns.
cdef bint epoch_int_to_ns(int64_t v, int64_t* out) noexcept nogil

# Float UNIX seconds, rounded to the nearest microsecond (ties to even) from the exact double.
cdef bint epoch_float_to_ns(double v, int64_t* out) noexcept nogil

# Seconds + nanoseconds in [0, 1e9) -> ns, with the int64 range check.
cdef bint seconds_to_ns(int64_t seconds, int64_t nanos, int64_t* out) noexcept nogil

# Any Python value, as parse_dt(); ``v`` may be a borrowed reference. Needs the GIL.
# Returns 1/0 like the others; -1 only for a BaseException that is not an Exception
# (KeyboardInterrupt raised by a subclass' code), which is propagated.
cdef int object_to_ns(PyObject* v, int64_t* out) except -1

# One event's time (borrowed): parse_dt(ev["dt"]) for a dict with a parseable dt, else received.
cdef int64_t event_time(PyObject* ev, int64_t received) except? -1

# event_times() for a list, without the argument checks: an array('q') as long as it.
cdef array event_times_list(list events, int64_t received)
