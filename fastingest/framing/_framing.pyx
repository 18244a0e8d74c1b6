# cython: language_level=3
"""Compiled twin of :mod:`fastingest.framing`: same names, same answers, C loops.

One extension holds the four scanners so that the shared scan's ``cdef inline``
helpers inline into each of them: the ``.pxi`` files beside this one are the parts
(``frames``, the ``scanner`` base, the ``json_events`` scan, then one file per format),
``simd.h`` the byte searches, ``_framing.pxd`` every class's state.
"""
from cpython cimport array
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcpy

from ..mpheader cimport FI_MP_ARRAY, FI_MP_CUT, FI_MP_MAP, FI_MP_RESERVED, fi_mp_header, fi_mp_skip, \
    fi_mp_headers, load_msgpack_headers, msgpack_header_table

cdef extern from "simd.h":
    ctypedef struct FrMasks:
        uint64_t quote, bslash, open, close, nl
    void fr_masks64(const unsigned char* p, FrMasks* m, int nd) nogil
    uint64_t fr_escaped(uint64_t backslash, uint64_t* carry) nogil
    uint64_t fr_prefix_xor(uint64_t x) nogil
    int fr_ctz64(uint64_t m) nogil
    Py_ssize_t fr_find_in_string(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end, int nd) nogil
    Py_ssize_t fr_find_outside(const unsigned char* p, Py_ssize_t pos, Py_ssize_t end, int nd) nogil

from .. import _validate as _validator
from ..constants import (BAD_BOM, CUT_OFF, DATA_AFTER_BODY, DATA_AFTER_EVENT, EMPTY_BODY,
                         EXPECTED_BODY_JSON, EXPECTED_BODY_MSGPACK, EXPECTED_COMMA_OR_BRACKET,
                         EXPECTED_MAP, EXPECTED_OBJECT, JSON_CONCAT_STATES, JSON_STATES,
                         KIND_JSON, KIND_JSON_CONCAT, KIND_MSGPACK, KIND_NDJSON, LENGTH_PAST_END, LINE_ENDED, MSGPACK_STATES,
                         NDJSON_STATES, RESERVED_BYTE, UNEXPECTED_END, event_too_large,
                         too_deep)
from ..errors import IngestError, LineError, ParseError, PayloadTooLarge

include "frames.pxi"
include "scanner.pxi"
include "json_events.pxi"
include "json_scanner.pxi"
include "ndjson_scanner.pxi"
include "msgpack_scanner.pxi"
include "json_concat_scanner.pxi"

#: The scanner of each body format.
SCANNERS = {KIND_JSON: JsonScanner, KIND_NDJSON: NdjsonScanner, KIND_MSGPACK: MsgpackScanner,
            KIND_JSON_CONCAT: JsonConcatScanner}

# The MessagePack header table as loaded from constants.MSGPACK_HEADERS (for the tests).
_MSGPACK_HEADERS = msgpack_header_table()


def Scanner(int kind, int64_t max_event, int max_depth, collect=False):
    """A new scanner for a body of format ``kind`` (``collect``: NDJSON's errors="collect")."""
    scanner = SCANNERS.get(kind)
    if scanner is None:
        raise ValueError(f"unknown kind {kind!r}")
    return scanner(max_event, max_depth, collect)


__all__ = ["Frames", "JsonConcatScanner", "JsonScanner", "MsgpackScanner", "NdjsonScanner",
           "SCANNERS", "Scanner", "ScannerBase"]
