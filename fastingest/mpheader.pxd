# The MessagePack header table and decoder of the compiled kernels (msgpack_header.h).
# A module that cimports these calls load_msgpack_headers() once when it is imported:
# the table is filled from fastingest.constants.MSGPACK_HEADERS, its one definition.
from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef extern from "msgpack_header.h":
    enum:
        FI_MP_SCALAR
        FI_MP_STR
        FI_MP_BIN
        FI_MP_EXT
        FI_MP_ARRAY
        FI_MP_MAP
        FI_MP_RESERVED
        FI_MP_CUT
    ctypedef struct fi_mp_entry:
        unsigned char cls
        unsigned char head
        signed char n
    fi_mp_entry fi_mp_headers[256]
    uint32_t fi_be32(const unsigned char* p) noexcept nogil
    uint64_t fi_be64(const unsigned char* p) noexcept nogil
    float fi_be_float(const unsigned char* p) noexcept nogil
    double fi_be_double(const unsigned char* p) noexcept nogil
    uint32_t fi_be(const unsigned char* p, int width) noexcept nogil
    int fi_mp_header(const unsigned char* p, Py_ssize_t avail, int* head, int64_t* n) noexcept nogil
    Py_ssize_t fi_mp_skip(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end, int max_depth) noexcept nogil


cdef inline int load_msgpack_headers() except -1:
    """Fill fi_mp_headers from constants.MSGPACK_HEADERS, mapping the classes by name."""
    from fastingest import constants as C
    classes = {C.MP_SCALAR: FI_MP_SCALAR, C.MP_STR: FI_MP_STR, C.MP_BIN: FI_MP_BIN,
               C.MP_EXT: FI_MP_EXT, C.MP_ARRAY: FI_MP_ARRAY, C.MP_MAP: FI_MP_MAP,
               C.MP_RESERVED: FI_MP_RESERVED}
    cdef int b
    for b in range(256):
        cls, head, n = C.MSGPACK_HEADERS[b]
        fi_mp_headers[b].cls = classes[cls]
        fi_mp_headers[b].head = head
        fi_mp_headers[b].n = n
    return 0


cdef inline tuple msgpack_header_table():
    """The table as loaded, ((class, head, n), ...) in constants' numbering (for tests)."""
    from fastingest import constants as C
    names = {FI_MP_SCALAR: C.MP_SCALAR, FI_MP_STR: C.MP_STR, FI_MP_BIN: C.MP_BIN,
             FI_MP_EXT: C.MP_EXT, FI_MP_ARRAY: C.MP_ARRAY, FI_MP_MAP: C.MP_MAP,
             FI_MP_RESERVED: C.MP_RESERVED}
    cdef int b
    cdef list table = []
    for b in range(256):
        table.append((names[fi_mp_headers[b].cls], fi_mp_headers[b].head, fi_mp_headers[b].n))
    return tuple(table)
