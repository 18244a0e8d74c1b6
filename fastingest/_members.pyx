# cython: language_level=3
"""Compiled twin of :mod:`fastingest.members`: same names, same answers.

One pass over the object's bytes: strings skipped with the framing layer's string
search (``fr_find_in_string``, 16 bytes at a time), nested values by counting brackets
outside strings, integers classified without building them.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint64_t
from libc.string cimport memcmp

cdef extern from "simd.h":
    Py_ssize_t fr_find_in_string(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end, int nd) nogil

cdef extern from "<stdint.h>":
    const uint64_t UINT64_MAX

from .constants import (JSON_ARRAY, JSON_FALSE, JSON_INT, JSON_MISSING, JSON_NULL, JSON_NUMBER,
                        JSON_OBJECT, JSON_STRING, JSON_TRUE)

__all__ = ["Member", "top_members"]

Member = tuple

cdef int K_STRING = JSON_STRING, K_INT = JSON_INT, K_NUMBER = JSON_NUMBER, K_NULL = JSON_NULL
cdef int K_FALSE = JSON_FALSE, K_TRUE = JSON_TRUE, K_OBJECT = JSON_OBJECT, K_ARRAY = JSON_ARRAY
cdef tuple MISSING = (JSON_MISSING, 0, 0)


cdef inline bint _space(unsigned char c) noexcept nogil:
    return c == c' ' or c == c'\t' or c == c'\n' or c == c'\r'


cdef inline Py_ssize_t _skip(const unsigned char* p, Py_ssize_t pos, Py_ssize_t n) noexcept nogil:
    while pos < n and _space(p[pos]):
        pos += 1
    return pos


cdef inline Py_ssize_t _string_end(const unsigned char* p, Py_ssize_t pos, Py_ssize_t n,
                                   bint* escaped) noexcept nogil:
    """Index past the (valid) string whose opening quote is at ``pos``."""
    pos += 1
    while True:
        pos = fr_find_in_string(p, pos, n, 0)
        if pos >= n or p[pos] == c'"':
            return pos + 1
        escaped[0] = True
        pos += 2


cdef Py_ssize_t _value_end(const unsigned char* p, Py_ssize_t pos, Py_ssize_t n) noexcept nogil:
    """Index past the (valid) value starting at ``pos``."""
    cdef unsigned char c = p[pos]
    cdef Py_ssize_t depth = 0
    cdef bint escaped = False
    if c == c'"':
        return _string_end(p, pos, n, &escaped)
    if c == c'{' or c == c'[':
        while pos < n:
            c = p[pos]
            if c == c'"':
                pos = _string_end(p, pos, n, &escaped)
                continue
            if c == c'{' or c == c'[':
                depth += 1
            elif c == c'}' or c == c']':
                depth -= 1
                if depth == 0:
                    return pos + 1
            pos += 1
        return pos
    while pos < n and not (c == c',' or c == c'}' or c == c']' or _space(c)):
        pos += 1
        if pos < n:
            c = p[pos]
    return pos


cdef int _kind(const unsigned char* p, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef unsigned char c = p[start]
    cdef bint negative
    cdef uint64_t v = 0, d
    cdef Py_ssize_t i
    if c == c'"':
        return K_STRING
    if c == c'{':
        return K_OBJECT
    if c == c'[':
        return K_ARRAY
    if c == c'n':
        return K_NULL
    if c == c't':
        return K_TRUE
    if c == c'f':
        return K_FALSE
    negative = c == c'-'
    for i in range(start + negative, end):
        c = p[i]
        if c == c'.' or c == c'e' or c == c'E':
            return K_NUMBER
        d = c - c'0'
        if v > (UINT64_MAX - d) // 10:
            return K_NUMBER   # beyond 2**64-1: a float to orjson
        v = v * 10 + d
    if negative and v > (<uint64_t>1 << 63):
        return K_NUMBER
    return K_INT


def top_members(bytes data, names):
    """``(member count, [(kind, start, end) for each of names])`` of the valid JSON
    object ``data``; None where a shallow read could be wrong (see
    :func:`fastingest.members.top_members`)."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data), pos, key_end, start, end, count = 0, i
    cdef Py_ssize_t wanted = len(names)
    cdef bint escaped
    cdef bytes name
    cdef list found = [MISSING] * wanted
    pos = _skip(p, _skip(p, 0, n) + 1, n)   # past '{'
    if pos >= n or p[pos] == c'}':
        return 0, found
    while pos < n:
        escaped = False
        key_end = _string_end(p, pos, n, &escaped)
        if escaped:
            return None
        start = _skip(p, _skip(p, key_end, n) + 1, n)   # past ':'
        if start >= n:
            raise ValueError("not a valid JSON object")
        end = _value_end(p, start, n)
        count += 1
        for i in range(wanted):
            name = names[i]
            if PyBytes_GET_SIZE(name) == key_end - pos - 2 and \
                    memcmp(PyBytes_AS_STRING(name), p + pos + 1, key_end - pos - 2) == 0:
                if found[i] is not MISSING:
                    return None
                found[i] = (_kind(p, start, end), start, end)
                break
        pos = _skip(p, end, n)
        if pos >= n or p[pos] == c'}':
            return count, found
        pos = _skip(p, pos + 1, n)   # past ','
    raise ValueError("not a valid JSON object")
