# C-level entry of the compiled one-object shortcut (``from fastingest._oneobject cimport
# one_object_event``): the event, or None; ``start`` is set to its offset.
from libc.stdint cimport int64_t

cdef object one_object_event(object body, int kind, int64_t max_event, int max_depth,
                             Py_ssize_t* start)
