# cython: language_level=3
"""fastingest's own JSON object builder (the C in ``jsonbuild.h``).

It builds what ``orjson.loads`` builds — dicts, lists, str, int, float, bool, None, in
the same order, duplicate keys last-wins, ``-0.0`` and int-vs-float exactly — straight
from each framed event's bytes, with no copy into a wrapping array, short keys from a
cache shared by all events. It only accepts what it is sure orjson accepts and builds
identically: everything else (grammar errors, integers beyond 64 bits, float overflow,
lone surrogates, invalid UTF-8, nesting beyond 1000) is *refused*, and the caller asks
orjson, so every error and its offset stay what they were. Its pure-Python twin is the
orjson path of :mod:`fastingest.build`.
"""
from cpython.list cimport PyList_Append, PyList_GET_SIZE, PyList_SetSlice
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF

from .framing._framing cimport Frames

cdef extern from "jsonbuild.h":
    int FJ_MAX_DEPTH
    PyObject* fj_build_object(const unsigned char* p, Py_ssize_t n, int max_depth, int nd)
    PyObject* fj_build_document(const unsigned char* p, Py_ssize_t n)

cdef extern from "Python.h":
    void PyErr_Clear()

__all__ = ["loads", "loads_object"]


cdef inline object _take(PyObject* built):
    """The object a builder returned (a new reference, or NULL: refused, as None)."""
    if built == NULL:
        PyErr_Clear()   # a refusal may leave the decoder's or the allocator's error
        return None
    obj = <object>built
    Py_DECREF(obj)      # <object> took its own reference
    return obj


cdef object build_object(const unsigned char* p, Py_ssize_t n, int max_depth, bint nd):
    """The object at ``p[0]`` with only whitespace after it up to ``p[n]``, nesting at
    most ``max_depth`` deep (NDJSON: no newline), or None when refused."""
    return _take(fj_build_object(p, n, max_depth, nd))


cdef bint build_run(Frames frames, Py_ssize_t lo, Py_ssize_t hi, list events) except -1:
    """Append the objects of events ``lo:hi``; False, ``events`` unchanged, when one of
    them is refused."""
    cdef Py_ssize_t i, size = PyList_GET_SIZE(events)
    cdef PyObject* built
    for i in range(lo, hi):
        built = fj_build_object(frames.ptr(i), frames.ln[i], FJ_MAX_DEPTH, False)
        if built == NULL:
            PyErr_Clear()
            PyList_SetSlice(events, size, PyList_GET_SIZE(events), None)
            return False
        obj = <object>built
        Py_DECREF(obj)
        PyList_Append(events, obj)
    return True


def loads(data):
    """The JSON value of ``data`` (bytes-like, whitespace around it allowed) as
    ``orjson.loads`` builds it; ValueError when the builder refuses it (orjson may still
    accept it: refusals are the builder's, not errors)."""
    cdef const unsigned char[::1] view = data
    cdef unsigned char empty = 0
    obj = _take(fj_build_document(&view[0] if view.shape[0] else &empty, view.shape[0]))
    if obj is None and not _is_null(view):
        raise ValueError("refused by the JSON builder")
    return obj


def loads_object(data):
    """The JSON object at the start of ``data`` (an event's span: whitespace only after
    it) as ``orjson.loads`` builds it; ValueError when refused."""
    cdef const unsigned char[::1] view = data
    obj = build_object(&view[0], view.shape[0], FJ_MAX_DEPTH, False) if view.shape[0] else None
    if obj is None:
        raise ValueError("refused by the JSON builder")
    return obj


cdef bint _is_null(const unsigned char[::1] view):
    """Whether the document is the literal null (the one value built as None)."""
    cdef Py_ssize_t i = 0, n = view.shape[0]
    while i < n and (view[i] == c' ' or view[i] == c'\t' or view[i] == c'\n' or view[i] == c'\r'):
        i += 1
    if n - i < 4 or view[i] != c'n' or view[i + 1] != c'u' or view[i + 2] != c'l' or view[i + 3] != c'l':
        return False
    i += 4
    while i < n and (view[i] == c' ' or view[i] == c'\t' or view[i] == c'\n' or view[i] == c'\r'):
        i += 1
    return i == n
