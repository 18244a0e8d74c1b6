# cython: language_level=3
"""Cython twin of :mod:`fastingest.rows`: same names, same answers."""
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_FromLongLong
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t

__all__ = ["row_values"]

cdef extern from "Python.h":
    char* PyBytes_AS_STRING(object o)
    Py_ssize_t PyBytes_GET_SIZE(object o)


def row_values(raw, times_ns, received_ns, /):
    """``[times_ns[0], received_ns, raw[0] as str, times_ns[1], received_ns, ...]``: each
    event's time, the reception time and its JSON text (UTF-8, decoded strictly), the
    values of its row but the source. ValueError if the lengths differ."""
    cdef Py_ssize_t i, n = len(raw)
    if len(times_ns) != n:
        raise ValueError(f"{n} events but {len(times_ns)} times")
    cdef const int64_t[:] times
    try:
        times = times_ns   # array('q') and other int64 buffers: no int objects read
    except (TypeError, ValueError, BufferError):
        return _slow(raw, times_ns, received_ns)
    cdef list values = PyList_New(3 * n)
    cdef object text, stamp
    for i in range(n):
        # NULL items left by an error are fine: the list is dropped whole (and its
        # dealloc skips NULLs); every item set is set once.
        stamp = PyLong_FromLongLong(times[i])
        item = raw[i]
        if type(item) is bytes:
            text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(item), PyBytes_GET_SIZE(item),
                                        "strict")
        else:
            text = bytes.decode(item)   # a bytes subclass, or bytes.decode's TypeError
        Py_INCREF(stamp)
        PyList_SET_ITEM(values, 3 * i, stamp)
        Py_INCREF(received_ns)
        PyList_SET_ITEM(values, 3 * i + 1, received_ns)
        Py_INCREF(text)
        PyList_SET_ITEM(values, 3 * i + 2, text)
    return values


cdef object _slow(raw, times_ns, received_ns):
    """Times that are not an int64 buffer (a list...): as the pure twin does it."""
    n = len(raw)
    cdef object values = [received_ns] * (3 * n)
    values[0::3] = times_ns
    values[2::3] = list(map(bytes.decode, raw))
    return values
