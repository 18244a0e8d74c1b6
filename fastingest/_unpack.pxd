# C-level entries of the compiled MessagePack builder, for the other compiled modules
# (``from fastingest._unpack cimport build_frames, decode_body, unpack_one``).
from libc.stdint cimport int64_t

from .framing._framing cimport Frames

# (events, times_ns) of framed events; raises when one is refused (build them one by one).
cdef tuple build_frames(Frames frames, int max_depth, int64_t received)
# The map that is exactly p[0:n] (time in t[0] when has_t[0]), or None when refused.
cdef object unpack_one(const unsigned char* p, Py_ssize_t n, int max_depth, int64_t* t,
                       bint* has_t)
# (events, times_ns, offsets) of a whole body (bytes), or None when decoding it fails.
cdef tuple decode_body(object body, int64_t max_event, int max_depth, int64_t received)
