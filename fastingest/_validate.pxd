# C-level API of the grammar validators, for other Cython modules:
# ``from fastingest._validate cimport ValidateError, json_object_end, msgpack_map_end, validate_error``.
# Same answers as scan_json_object / scan_msgpack_map (see fastingest/validate.py for the rules).

cdef struct ValidateError:
    int code            # index into fastingest.constants.REASONS (0: nesting too deep, -1: out of memory)
    Py_ssize_t pos      # index into the buffer (add the caller's base for a body offset)

# The index just past the JSON object / MessagePack map starting exactly at p[start]
# (reading only p[start:end]), or -1 with ``err`` set.  No Python objects; safe without the
# GIL.  The nesting stack is on the C stack up to 256 levels, malloc'ed beyond.
cdef Py_ssize_t json_object_end(const unsigned char* p, Py_ssize_t start, Py_ssize_t end,
                                Py_ssize_t max_depth, ValidateError* err) noexcept nogil
# As json_object_end, also finding the value of the object's last top-level "dt" member:
# ``dt.vs``/``dt.ve`` (-1 when none; set dt.vs = -1 and the flags to 0 before the call).
# ``dt.uncertain`` when a top-level key spelled with escapes might decode to "dt".
cdef struct DtSpan:
    Py_ssize_t vs, ve, start
    bint pending, uncertain

cdef Py_ssize_t json_object_end_dt(const unsigned char* p, Py_ssize_t start, Py_ssize_t end,
                                   Py_ssize_t max_depth, ValidateError* err,
                                   DtSpan* dt) noexcept nogil
cdef Py_ssize_t msgpack_map_end(const unsigned char* p, Py_ssize_t start, Py_ssize_t end,
                                Py_ssize_t max_depth, ValidateError* err) noexcept nogil

# The ParseError (detail, offset = base + err.pos) for a failed call above; needs the GIL.
# MemoryError for err.code == -1.
cdef object validate_error(const ValidateError* err, Py_ssize_t max_depth, Py_ssize_t base)
