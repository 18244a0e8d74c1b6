# C-level entries of the compiled JSON object builder, for the other compiled modules
# (``from fastingest._jsonbuild cimport build_object, build_run``).
from .framing._framing cimport Frames

# The object at p[0] with only whitespace after it up to p[n], as orjson.loads builds it,
# nesting at most max_depth deep (nd: NDJSON, a newline is no whitespace); None when refused.
cdef object build_object(const unsigned char* p, Py_ssize_t n, int max_depth, bint nd)
# Appends the objects of framed events lo:hi to events; False (events as they were)
# when one of them is refused: the caller then asks orjson for the run.
cdef bint build_run(Frames frames, Py_ssize_t lo, Py_ssize_t hi, list events) except -1
