# cython: language_level=3
"""Cython twin of :mod:`fastingest.rows`: same names, same answers."""
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_FromLongLong
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t

__all__ = ["time_text_pairs"]

cdef extern from "Python.h":
    char* PyBytes_AS_STRING(object o)
    Py_ssize_t PyBytes_GET_SIZE(object o)


def time_text_pairs(raw, times_ns, /):
    """``[times_ns[0], raw[0] as str, times_ns[1], raw[1] as str, ...]``: each event's
    time and its JSON text (UTF-8, decoded strictly). ValueError if the lengths differ."""
    cdef Py_ssize_t i, n = len(raw)
    if len(times_ns) != n:
        raise ValueError(f"{n} events but {len(times_ns)} times")
    cdef const int64_t[:] times
    try:
        times = times_ns   # array('q') and other int64 buffers: no int objects read
    except (TypeError, ValueError, BufferError):
        return _slow(raw, times_ns)
    cdef list pairs = PyList_New(2 * n)
    cdef object text, stamp
    for i in range(n):
        # Filled before anything can raise for this row: the list is never left with
        # a NULL item (every item set so far is valid; the rest are set below or the
        # list dropped whole).
        stamp = PyLong_FromLongLong(times[i])
        item = raw[i]
        if type(item) is bytes:
            text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(item), PyBytes_GET_SIZE(item),
                                        "strict")
        else:
            text = bytes.decode(item)   # a bytes subclass, or bytes.decode's TypeError
        Py_INCREF(stamp)
        PyList_SET_ITEM(pairs, 2 * i, stamp)
        Py_INCREF(text)
        PyList_SET_ITEM(pairs, 2 * i + 1, text)
    return pairs


cdef object _slow(raw, times_ns):
    """Times that are not an int64 buffer (a list...): as the pure twin does it."""
    n = len(raw)
    cdef object pairs = [None] * (2 * n)
    pairs[0::2] = times_ns
    pairs[1::2] = list(map(bytes.decode, raw))
    return pairs
