# C-level entries of the compiled JSON object builder, for the other compiled modules
# (``from fastingest._jsonbuild cimport build_object, build_run``).
from .framing._framing cimport Frames

# The object that is exactly p[0:n], as orjson.loads builds it, or None when refused.
cdef object build_object(const unsigned char* p, Py_ssize_t n)
# Appends the objects of framed events lo:hi to events; False (events as they were)
# when one of them is refused: the caller then asks orjson for the run.
cdef bint build_run(Frames frames, Py_ssize_t lo, Py_ssize_t hi, list events) except -1
