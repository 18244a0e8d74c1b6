# cython: language_level=3
"""Compiled twin of :mod:`fastingest.oneobject`: same names, same answers.

The nesting bound for JSON is one pass over the bytes (``fr_count_open`` in
``simd.h``, which also spots an NDJSON body's second line); the object is built by
fastingest's JSON builder (``_jsonbuild``), orjson when it refuses; the map built from a
MessagePack body is built by fastingest's own builder (``_unpack``), which checks the
nesting as it builds.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Next
from cpython.object cimport PyObject
from libc.stdint cimport int64_t

from ._jsonbuild cimport build_object
from ._unpack cimport unpack_one
from .mpheader cimport FI_MP_MAP, fi_mp_headers, load_msgpack_headers

cdef extern from "simd.h":
    Py_ssize_t fr_count_open(const unsigned char* p, Py_ssize_t end, int nd) nogil

import orjson

from .constants import KIND_MSGPACK, KIND_NDJSON, ONE_OBJECT_MAX

__all__ = ["nesting_within", "one_object"]

load_msgpack_headers()

cdef int K_MSGPACK = KIND_MSGPACK
cdef int K_NDJSON = KIND_NDJSON
cdef Py_ssize_t MAX_BODY = ONE_OBJECT_MAX


cdef bint nesting_ok(object container, int levels) except -1:
    """Whether the dicts and lists of ``container`` (a dict or list, itself one level)
    nest at most ``levels`` deep; stops at the first level too many."""
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* value
    if levels < 1:
        return False
    if type(container) is dict:
        while PyDict_Next(container, &pos, &key, &value):
            if (type(<object>value) is dict or type(<object>value) is list) and \
                    not nesting_ok(<object>value, levels - 1):
                return False
    else:
        for item in <list>container:
            if (type(item) is dict or type(item) is list) and not nesting_ok(item, levels - 1):
                return False
    return True


cdef object one_object_event(object body, int kind, int64_t max_event, int max_depth,
                             Py_ssize_t* start):
    """The event when ``body`` (bytes) is plainly one small object, with ``start`` set to
    its offset; None otherwise (see :mod:`fastingest.oneobject`)."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(body)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(body), i = 0, end = n, nest
    cdef int64_t t
    cdef bint has_t
    if n > MAX_BODY or n > max_event or n == 0:
        return None
    start[0] = 0
    if kind == K_MSGPACK:
        if fi_mp_headers[p[0]].cls != FI_MP_MAP:
            return None
        # fastingest's builder checks the nesting as it builds
        return unpack_one(p, n, max_depth, &t, &has_t)
    if kind == K_NDJSON:
        if p[n - 1] == c'\n':
            end = n - 1   # the line's own end; any other newline means more lines
    else:
        while i < n and (p[i] == c' ' or p[i] == c'\n' or p[i] == c'\r' or p[i] == c'\t'):
            i += 1
    if i >= end or p[i] != c'{':
        return None
    start[0] = i
    nest = fr_count_open(p, end, kind == K_NDJSON)
    if nest < 0 or nest > max_depth:
        return None
    # fastingest's JSON builder; what it refuses goes to orjson, whose errors stand
    event = build_object(p + i, end - i, max_depth, kind == K_NDJSON)
    if event is not None:
        return event
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(event) is not dict:
        return None
    return event


def one_object(bytes body, int kind, int64_t max_event, int max_depth):
    """``(event, offset)`` when ``body`` is plainly one small object, else None."""
    cdef Py_ssize_t start = 0
    event = one_object_event(body, kind, max_event, max_depth, &start)
    return None if event is None else (event, start)


def nesting_within(container, int levels):
    """Whether the dicts and lists of ``container`` (a dict or list, itself one level)
    nest at most ``levels`` deep."""
    return nesting_ok(container, levels)
