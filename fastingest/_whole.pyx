# cython: language_level=3
"""Compiled twin of :mod:`fastingest.whole`: same names, same answers.

The per-call costs a small body would notice are kept out of Python: the Content-Type's
format is one dict lookup for the usual spellings, a ``Limits`` object's three limits are
read once per object (not per call), the reception time comes from ``clock_gettime``, and
the batch is made without a Python-level constructor call. A MessagePack body is framed,
checked and built in one pass by fastingest's own builder (``_unpack.decode_body``); the
scanner runs only when that pass refuses the body, to say why.

Beyond its twin's names it holds the compiled entry of :func:`fastingest.decode`
(``decode``, bound by ``bind_decode``): the pure twin needs none, the Python ``decode``
is its own entry.
"""
from cpython cimport array
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject, PyTypeObject
from libc.stdint cimport int64_t

from ._build cimport take_frames
from ._oneobject cimport one_object_event
from ._unpack cimport decode_body as msgpack_body
from ._timestamps cimport event_times_list
from .framing._framing cimport Frames, ScannerBase

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk_id, timespec* tp)
    int CLOCK_REALTIME

cdef extern from "unpack.h":
    Py_ssize_t fi_slot_offset(PyTypeObject* t, const char* name)
    void fi_set_slot(object obj, Py_ssize_t off, object value)

from .batch import Batch, RawBatch, _Batch
from .constants import KIND_MSGPACK, KIND_NDJSON, body_too_large
from .errors import IngestError, PayloadTooLarge, detached
from .formats import MEDIA_TYPES, collect_mode, media_kind
from .limits import DEFAULT_LIMITS
from .framing._framing import SCANNERS

__all__ = ["bind_decode", "decode", "decode_body", "decode_whole"]

cdef int K_NDJSON = KIND_NDJSON
cdef int K_MSGPACK = KIND_MSGPACK
cdef dict _SCANNERS = SCANNERS
cdef dict _MEDIA_TYPES = MEDIA_TYPES
cdef array.array _INT64_TEMPLATE = array.array("q", [])
cdef tuple _NO_ARGS = ()

# Byte offsets of the batches' slots: a batch's columns are stored straight into them
# (a pointer store each instead of an attribute lookup and a descriptor call). -1 when
# the classes are not laid out as expected: then they are set as attributes.
cdef Py_ssize_t _OFF_EVENTS = fi_slot_offset(<PyTypeObject*>Batch, b"events")
cdef Py_ssize_t _OFF_RAW = fi_slot_offset(<PyTypeObject*>RawBatch, b"raw")
cdef Py_ssize_t _OFF_TIMES = fi_slot_offset(<PyTypeObject*>_Batch, b"times_ns")
cdef Py_ssize_t _OFF_OFFSETS = fi_slot_offset(<PyTypeObject*>_Batch, b"offsets")
cdef Py_ssize_t _OFF_LINES = fi_slot_offset(<PyTypeObject*>_Batch, b"lines")
cdef Py_ssize_t _OFF_ERRORS = fi_slot_offset(<PyTypeObject*>_Batch, b"errors")
cdef bint _SLOTS = min(_OFF_EVENTS, _OFF_RAW, _OFF_TIMES, _OFF_OFFSETS, _OFF_LINES,
                       _OFF_ERRORS) >= 0


cdef tuple _decode_body(object body, int kind, Py_ssize_t max_body, int64_t max_event,
                        int max_depth, int64_t received_ns, bint collect, bint raw):
    cdef bint over = len(body) > max_body
    if over:   # the bytes within the limit come first: an earlier fault wins
        body = memoryview(body)[:max_body]
    cdef type cls = _SCANNERS[kind]
    cdef tuple args = (max_event, max_depth, collect)
    # cls.__new__(cls, *args): the scanner's own constructor, without type.__call__ around it
    cdef ScannerBase scanner = (<PyTypeObject*>cls).tp_new(cls, <PyObject*>args, NULL)
    cdef tuple result = take_frames(scanner.feed(body), kind, max_depth, received_ns, collect, raw)
    if over:
        raise PayloadTooLarge(detail=body_too_large(max_body), offset=max_body)
    cdef Frames rest = scanner.finish()
    if rest.error is not None:
        raise rest.error
    if rest.line_errors:
        result = result[:4] + (result[4] + rest.line_errors,)
    return result


def decode_body(body, int kind, Py_ssize_t max_body, int64_t max_event, int max_depth,
                int64_t received_ns, bint collect, bint raw):
    """``build.take``'s columns for a whole body of format ``kind``."""
    return _decode_body(body, kind, max_body, max_event, max_depth, received_ns, collect, raw)


cdef object _new_batch(type cls, list items, object times, object offsets, object lines,
                       list errors):
    """A ``cls`` (Batch or RawBatch) holding these: made by the class's own ``__new__``
    (its tp_new slot, what ``cls.__new__(cls)`` calls), then its public attributes set,
    without the Python frame of ``__init__``."""
    batch = (<PyTypeObject*>cls).tp_new(cls, <PyObject*>_NO_ARGS, NULL)
    if _SLOTS:
        fi_set_slot(batch, _OFF_RAW if cls is RawBatch else _OFF_EVENTS, items)
        fi_set_slot(batch, _OFF_TIMES, times)
        fi_set_slot(batch, _OFF_OFFSETS, offsets)
        fi_set_slot(batch, _OFF_LINES, lines)
        fi_set_slot(batch, _OFF_ERRORS, errors)
        return batch
    if cls is RawBatch:
        batch.raw = items
    else:
        batch.events = items
    batch.times_ns = times
    batch.offsets = offsets
    batch.lines = lines
    batch.errors = errors
    return batch


cdef object _one_object_batch(object event, Py_ssize_t start, int kind, int64_t received):
    cdef list items = [event]
    cdef array.array offsets = array.clone(_INT64_TEMPLATE, 1, False)
    offsets.data.as_longlongs[0] = start
    cdef array.array lines = None
    if kind == K_NDJSON:
        lines = array.clone(_INT64_TEMPLATE, 1, False)
        lines.data.as_longlongs[0] = 1
    return _new_batch(Batch, items, event_times_list(items, received), offsets, lines, [])


# (limits, max_body, max_event, max_depth) of the Limits last seen: most callers pass the
# same object every time. The tuple holds a reference, so the identity test cannot match
# a new object at an old address, and it is replaced whole (a thread reads the old tuple
# or the new one).
cdef tuple _limits_seen = (None, 0, 0, 0)


def decode_whole(body, content_type, limits, received_ns, errors, bint raw):
    """decode()/split() of an uncompressed body held in memory: a Batch (RawBatch)."""
    return _decode_whole(body, content_type, limits, received_ns, errors, raw, False)


cdef object _decode_whole(object body, object content_type, object limits, object received_ns,
                          object errors, bint raw, bint within):
    """``decode_whole``; when ``within``, None for a bytes body over ``max_body`` (the
    caller's general path answers it) before anything else is read."""
    global _limits_seen
    cdef timespec now
    cdef int64_t received
    cdef Py_ssize_t start = 0
    cdef PyObject* found = PyDict_GetItem(_MEDIA_TYPES, content_type) \
        if type(content_type) is str else NULL
    kind = <object>found if found is not NULL else media_kind(content_type)
    cdef bint collect = False if errors == "raise" else collect_mode(errors, kind)
    if received_ns is None:
        clock_gettime(CLOCK_REALTIME, &now)   # time.time_ns()'s clock
        received = <int64_t>now.tv_sec * 1000000000 + now.tv_nsec
    else:
        received = received_ns
    cdef tuple seen = _limits_seen
    if seen[0] is not limits:
        seen = (limits, limits.max_body, limits.max_event, limits.max_depth)
        _limits_seen = seen
    cdef Py_ssize_t max_body = seen[1]
    cdef int64_t max_event = seen[2]
    cdef int max_depth = seen[3]
    if within and PyBytes_GET_SIZE(body) > max_body:
        return None
    if not raw and not collect and type(body) is bytes and PyBytes_GET_SIZE(body) <= max_body:
        if kind == K_MSGPACK:   # refused: the general path says why
            cols = msgpack_body(body, max_event, max_depth, received)
            if cols is not None:
                return _new_batch(Batch, cols[0], cols[1], cols[2], None, [])
        else:
            event = one_object_event(body, kind, max_event, max_depth, &start)
            if event is not None:
                return _one_object_batch(event, start, kind, received)
    items, times, offsets, lines, line_errors = _decode_body(
        body, kind, max_body, max_event, max_depth, received, collect, raw)
    return _new_batch(RawBatch if raw else Batch, items, times, offsets, lines, line_errors)


# -- the compiled entry of fastingest.decode ------------------------------------------------

cdef object _py_decode = None     # fastingest.decode's Python body: every other case
cdef dict _kernels_vars = {}      # fastingest._kernels's namespace: "active" is the set in use
cdef object _own_kernels = None   # the compiled set (this module's)


def bind_decode(py_decode, kernels_module, own_kernels):
    """Bind :func:`decode`'s fallbacks: the Python ``decode`` (compressed bodies, bodies
    over ``max_body``, other buffer types) and the kernel switch it obeys."""
    global _py_decode, _kernels_vars, _own_kernels
    _py_decode, _kernels_vars, _own_kernels = py_decode, vars(kernels_module), own_kernels


def decode(body, content_type, *, content_encoding=None, limits=DEFAULT_LIMITS,
           received_ns=None, errors="raise"):
    """Decode one request body into events with their event times.

    ``content_type`` picks the format (application/json, application/x-ndjson,
    application/msgpack; parameters ignored); ``content_encoding`` the decompression
    (gzip, deflate, zstd, br, identity). Raises :class:`~fastingest.IngestError` with
    the HTTP status and exact protocol text for any body that cannot be accepted.
    """
    # The common case — an uncompressed bytes body within max_body, the compiled kernels
    # active — without a Python frame; the rest goes to the Python decode, which answers
    # exactly alike.
    if content_encoding is None and type(body) is bytes and \
            PyDict_GetItem(_kernels_vars, "active") is <PyObject*>_own_kernels:
        try:
            batch = _decode_whole(body, content_type, limits, received_ns, errors, False, True)
        except IngestError as exc:   # no traceback cycle keeps the body alive
            raise detached(exc) from None
        if batch is not None:
            return batch
    return _py_decode(body, content_type, content_encoding=content_encoding, limits=limits,
                      received_ns=received_ns, errors=errors)
