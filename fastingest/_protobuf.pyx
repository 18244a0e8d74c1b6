# cython: language_level=3
"""Compiled twin of :mod:`fastingest.protobuf` (same names, same answers).

The wire format is read straight from the body buffer with C pointer loops; Python
objects are made only for what goes into an event (str, int, float, dict, list).
Every fault raises the same ParseError (detail from :mod:`fastingest.shipping`, offset
at the faulty field's tag) as the reference.
"""
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

import base64
from array import array

from . import shipping as S
from .errors import ParseError, PayloadTooLarge, too_deep
from .shipping import BATCH_BYTES

cdef uint64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF

cdef struct Field:
    uint64_t number
    int wt
    uint64_t value
    Py_ssize_t start
    Py_ssize_t stop


cdef class _Wire:
    """The body buffer and the primitive reads; a fault raises ParseError."""

    cdef const unsigned char[::1] view
    cdef const unsigned char* p
    cdef Py_ssize_t n

    def __cinit__(self, body):
        cdef const unsigned char[::1] view
        mv = memoryview(body)
        if mv.format != "B" or mv.ndim != 1 or not mv.c_contiguous:
            mv = memoryview(mv.tobytes()) if not mv.c_contiguous else mv.cast("B")
        view = mv
        self.view = view
        self.n = view.shape[0]
        self.p = &view[0] if self.n else <const unsigned char*>b""

    cdef int varint(self, Py_ssize_t* pos, Py_ssize_t end, uint64_t* out,
                    Py_ssize_t at) except -1:
        cdef const unsigned char* p = self.p
        cdef Py_ssize_t i = pos[0]
        cdef uint64_t result = 0
        cdef int shift = 0
        cdef unsigned char b
        while True:
            if i >= end:
                raise ParseError(detail=S.PB_TRUNCATED, offset=at)
            b = p[i]
            i += 1
            if shift == 63 and b > 1:
                raise ParseError(detail=S.PB_VARINT, offset=at)
            result |= (<uint64_t>(b & 0x7F)) << shift
            if b < 0x80:
                break
            shift += 7
        pos[0] = i
        out[0] = result
        return 0

    cdef int field(self, Py_ssize_t* pos, Py_ssize_t end, Field* f) except -1:
        """Read the field at pos[0] (< end) into f; pos[0] moves past it."""
        cdef Py_ssize_t at = pos[0]
        cdef uint64_t tag, n
        self.varint(pos, end, &tag, at)
        f.number = tag >> 3
        f.wt = <int>(tag & 7)
        if f.number == 0:
            raise ParseError(detail=S.PB_FIELD_ZERO, offset=at)
        if f.wt == 0:
            self.varint(pos, end, &f.value, at)
            f.start = f.stop = pos[0]
        elif f.wt == 2:
            self.varint(pos, end, &n, at)
            if n > <uint64_t>(end - pos[0]):
                raise ParseError(detail=S.PB_TRUNCATED, offset=at)
            f.start = pos[0]
            f.stop = pos[0] + <Py_ssize_t>n
            pos[0] = f.stop
        elif f.wt == 1 or f.wt == 5:
            n = 8 if f.wt == 1 else 4
            if n > <uint64_t>(end - pos[0]):
                raise ParseError(detail=S.PB_TRUNCATED, offset=at)
            f.start = pos[0]
            f.stop = pos[0] + <Py_ssize_t>n
            pos[0] = f.stop
        elif f.wt == 3 or f.wt == 4:
            raise ParseError(detail=S.PB_GROUP, offset=at)
        else:
            raise ParseError(detail=S.PB_WIRE_TYPE, offset=at)
        return 0

    cdef str text(self, Py_ssize_t a, Py_ssize_t b, Py_ssize_t at):
        try:
            return PyUnicode_DecodeUTF8(<const char*>(self.p + a), b - a, NULL)
        except UnicodeDecodeError:
            raise ParseError(detail=S.PB_UTF8, offset=at) from None

    cdef str lenient_text(self, Py_ssize_t a, Py_ssize_t b):
        return PyUnicode_DecodeUTF8(<const char*>(self.p + a), b - a, "replace")

    cdef uint64_t fixed64(self, Py_ssize_t a):
        cdef uint64_t v = 0
        cdef int k
        for k in range(7, -1, -1):
            v = (v << 8) | self.p[a + k]
        return v

    cdef uint32_t fixed32(self, Py_ssize_t a):
        cdef uint32_t v = 0
        cdef int k
        for k in range(3, -1, -1):
            v = (v << 8) | self.p[a + k]
        return v

    cdef bytes slice(self, Py_ssize_t a, Py_ssize_t b):
        return bytes(self.view[a:b])


cdef inline bint _all_zero(const unsigned char* p, Py_ssize_t n):
    cdef Py_ssize_t i
    for i in range(n):
        if p[i]:
            return False
    return True


cdef str _hex(const unsigned char* p, Py_ssize_t n):
    cdef bytearray out = bytearray(2 * n)
    cdef unsigned char* o = out
    cdef const char* digits = b"0123456789abcdef"
    cdef Py_ssize_t i
    for i in range(n):
        o[2 * i] = digits[p[i] >> 4]
        o[2 * i + 1] = digits[p[i] & 15]
    return out.decode("ascii")


cdef inline int32_t _int32(uint64_t v):
    return <int32_t>(<uint32_t>(v & 0xFFFFFFFF))


# -- OTLP -------------------------------------------------------------------------------------

cdef class _Otlp:
    cdef _Wire w
    cdef int max_depth

    def __cinit__(self, _Wire w, int max_depth):
        self.w = w
        self.max_depth = max_depth

    cdef object any_value(self, Py_ssize_t a, Py_ssize_t b, int depth):
        cdef _Wire w = self.w
        cdef Field f
        cdef Py_ssize_t pos = a
        cdef double d
        value = None
        while pos < b:
            w.field(&pos, b, &f)
            if f.number == 1 and f.wt == 2:
                value = w.text(f.start, f.stop, f.start)
            elif f.number == 2 and f.wt == 0:
                value = f.value != 0
            elif f.number == 3 and f.wt == 0:
                value = <int64_t>f.value
            elif f.number == 4 and f.wt == 1:
                memcpy(&d, w.p + f.start, 8)
                value = d
            elif f.number == 5 and f.wt == 2:
                value = self.array(f.start, f.stop, depth + 1)
            elif f.number == 6 and f.wt == 2:
                value = self.kvlist(f.start, f.stop, depth + 1)
            elif f.number == 7 and f.wt == 2:
                value = base64.b64encode(w.slice(f.start, f.stop)).decode("ascii")
            elif f.number == 8 and f.wt == 0:
                value = None
        return value

    cdef int check_depth(self, int depth, Py_ssize_t at) except -1:
        if depth > self.max_depth:
            raise ParseError(detail=too_deep(self.max_depth), offset=at)
        return 0

    cdef list array(self, Py_ssize_t a, Py_ssize_t b, int depth):
        cdef Field f
        cdef Py_ssize_t pos = a
        cdef list out = []
        self.check_depth(depth, a)
        while pos < b:
            self.w.field(&pos, b, &f)
            if f.number == 1 and f.wt == 2:
                out.append(self.any_value(f.start, f.stop, depth))
        return out

    cdef dict kvlist(self, Py_ssize_t a, Py_ssize_t b, int depth):
        cdef dict out = {}
        self.check_depth(depth, a)
        self.attributes_into(a, b, 1, depth, out)
        return out

    cdef int key_value(self, Py_ssize_t a, Py_ssize_t b, int depth, dict out) except -1:
        cdef _Wire w = self.w
        cdef Field f
        cdef Py_ssize_t pos = a
        key = ""
        value = None
        while pos < b:
            w.field(&pos, b, &f)
            if f.number == 1 and f.wt == 2:
                key = w.text(f.start, f.stop, f.start)
            elif f.number == 2 and f.wt == 2:
                value = self.any_value(f.start, f.stop, depth)
        out[key] = value
        return 0

    cdef int attributes_into(self, Py_ssize_t a, Py_ssize_t b, uint64_t number, int depth,
                             dict out) except -1:
        cdef Field f
        cdef Py_ssize_t pos = a
        while pos < b:
            self.w.field(&pos, b, &f)
            if f.number == number and f.wt == 2:
                self.key_value(f.start, f.stop, depth, out)
        return 0

    cdef int scope_into(self, Py_ssize_t a, Py_ssize_t b, dict scope, dict attrs) except -1:
        cdef _Wire w = self.w
        cdef Field f
        cdef Py_ssize_t pos = a
        while pos < b:
            w.field(&pos, b, &f)
            if f.number == 1 and f.wt == 2:
                scope["name"] = w.text(f.start, f.stop, f.start)
            elif f.number == 2 and f.wt == 2:
                scope["version"] = w.text(f.start, f.stop, f.start)
            elif f.number == 3 and f.wt == 2:
                self.key_value(f.start, f.stop, 3, attrs)
        return 0

    cdef tuple record(self, Py_ssize_t a, Py_ssize_t b, object resource, object scope,
                      int64_t received_ns):
        cdef _Wire w = self.w
        cdef Field f
        cdef Py_ssize_t pos = a
        cdef bint has_body = False
        cdef int32_t severity_number = 0
        cdef uint32_t dropped = 0, flags = 0
        cdef uint64_t time_ns = 0, observed_ns = 0
        cdef Py_ssize_t trace_a = -1, trace_b = -1, span_a = -1, span_b = -1
        cdef int64_t when
        cdef dict attributes = {}
        cdef dict event = {}
        body = None
        severity_text = ""
        event_name = ""
        while pos < b:
            w.field(&pos, b, &f)
            if f.number == 1 and f.wt == 1:
                time_ns = w.fixed64(f.start)
            elif f.number == 2 and f.wt == 0:
                severity_number = _int32(f.value)
            elif f.number == 3 and f.wt == 2:
                severity_text = w.text(f.start, f.stop, f.start)
            elif f.number == 5 and f.wt == 2:
                body = self.any_value(f.start, f.stop, 1)
                has_body = True
            elif f.number == 6 and f.wt == 2:
                self.key_value(f.start, f.stop, 2, attributes)
            elif f.number == 7 and f.wt == 0:
                dropped = <uint32_t>(f.value & 0xFFFFFFFF)
            elif f.number == 8 and f.wt == 5:
                flags = w.fixed32(f.start)
            elif f.number == 9 and f.wt == 2:
                trace_a, trace_b = f.start, f.stop
            elif f.number == 10 and f.wt == 2:
                span_a, span_b = f.start, f.stop
            elif f.number == 11 and f.wt == 1:
                observed_ns = w.fixed64(f.start)
            elif f.number == 12 and f.wt == 2:
                event_name = w.text(f.start, f.stop, f.start)
        if has_body:
            event["body"] = body
        if severity_text:
            event["severity_text"] = severity_text
        if severity_number:
            event["severity_number"] = severity_number
        if attributes:
            event["attributes"] = attributes
        if resource:
            event["resource"] = resource
        if scope:
            event["scope"] = scope
        if trace_b - trace_a == 16 and not _all_zero(w.p + trace_a, 16):
            event["trace_id"] = _hex(w.p + trace_a, 16)
        if span_b - span_a == 8 and not _all_zero(w.p + span_a, 8):
            event["span_id"] = _hex(w.p + span_a, 8)
        if flags:
            event["flags"] = flags
        if event_name:
            event["event_name"] = event_name
        if time_ns:
            event["time_unix_nano"] = time_ns
        if observed_ns:
            event["observed_time_unix_nano"] = observed_ns
        if dropped:
            event["dropped_attributes_count"] = dropped
        if 0 < time_ns <= INT64_MAX:
            when = <int64_t>time_ns
        elif 0 < observed_ns <= INT64_MAX:
            when = <int64_t>observed_ns
        else:
            when = received_ns
        return event, when


cdef class _Batches:
    """read(max_bytes) over a generator of batches: ``shipping.BatchReader``'s answers.

    The generator (``_otlp_walk``, ``_loki_walk``) builds each batch itself, reading
    ``_want`` (the max_bytes of the current read) so that no tuple is made per record.
    """

    cdef object _records
    cdef public bint done
    cdef public Py_ssize_t count
    cdef Py_ssize_t _want

    def read(self, Py_ssize_t max_bytes=BATCH_BYTES):
        if self.done:
            return [], array("q")
        self._want = max_bytes
        try:
            events, times = next(self._records)
        except StopIteration:
            self.done = True
            return [], array("q")
        except BaseException:
            self.done = True
            raise
        self.count += len(events)
        return events, times


cdef class OtlpLogs(_Batches):
    """The log records of one OTLP ``ExportLogsServiceRequest`` (protobuf), in order."""

    cdef _Wire _w
    cdef _Otlp _otlp
    cdef int64_t _received_ns
    cdef Py_ssize_t _max_event

    def __init__(self, body, int64_t received_ns, Py_ssize_t max_event, int max_depth):
        self._w = _Wire(body)
        self._otlp = _Otlp(self._w, max_depth)
        self._received_ns = received_ns
        self._max_event = max_event
        self.done = False
        self.count = 0
        self._records = _otlp_walk(self)


cdef int _check_size(OtlpLogs reader, Py_ssize_t a, Py_ssize_t b) except -1:
    """A record, resource or scope is built whole: at most ``max_event`` bytes."""
    if b - a > reader._max_event:
        raise PayloadTooLarge(detail=S.record_too_large(reader._max_event), offset=a)
    return 0


def _otlp_walk(OtlpLogs reader):
    cdef _Wire w = reader._w
    cdef _Otlp otlp = reader._otlp
    cdef Field f, g, h
    cdef Py_ssize_t pos = 0, pos2, pos3, covered = 0
    cdef dict resource, scope, attrs
    cdef list events = []
    times = array("q")
    while pos < w.n:
        w.field(&pos, w.n, &f)
        if not (f.number == 1 and f.wt == 2):
            continue
        resource = {}
        pos2 = f.start
        while pos2 < f.stop:
            w.field(&pos2, f.stop, &g)
            if g.number == 1 and g.wt == 2:
                _check_size(reader, g.start, g.stop)
                otlp.attributes_into(g.start, g.stop, 1, 2, resource)
        pos2 = f.start
        while pos2 < f.stop:
            w.field(&pos2, f.stop, &g)
            if not (g.number == 2 and g.wt == 2):
                continue
            scope = {}
            attrs = {}
            pos3 = g.start
            while pos3 < g.stop:
                w.field(&pos3, g.stop, &h)
                if h.number == 1 and h.wt == 2:
                    _check_size(reader, h.start, h.stop)
                    otlp.scope_into(h.start, h.stop, scope, attrs)
            if attrs:
                scope["attributes"] = attrs
            scope = {k: v for k, v in scope.items() if v}
            pos3 = g.start
            while pos3 < g.stop:
                w.field(&pos3, g.stop, &h)
                if h.number == 2 and h.wt == 2:
                    _check_size(reader, h.start, h.stop)
                    event, when = otlp.record(h.start, h.stop, resource or None, scope or None,
                                              reader._received_ns)
                    events.append(event)
                    times.append(when)
                    covered += h.stop - h.start
                    if covered >= reader._want:
                        yield events, times
                        events, times, covered = [], array("q"), 0
    if events:
        yield events, times


# -- Loki -------------------------------------------------------------------------------------

cdef class LokiPush(_Batches):
    """The entries of one Loki ``PushRequest`` (decompressed protobuf), in order."""

    cdef public Py_ssize_t streams
    cdef _Wire _w
    cdef int64_t _received_ns
    cdef Py_ssize_t _max_line
    cdef object _labels
    cdef object _line_too_long
    cdef object _labels_too_long

    def __init__(self, body, int64_t received_ns, Py_ssize_t max_line, labels, line_too_long,
                 labels_too_long):
        self._w = _Wire(body)
        self._received_ns = received_ns
        self._max_line = max_line
        self._labels = labels
        self._line_too_long = line_too_long
        self._labels_too_long = labels_too_long
        self.streams = 0
        self.done = False
        self.count = 0
        self._records = _loki_walk(self)


cdef tuple _loki_entry(LokiPush reader, Py_ssize_t a, Py_ssize_t b, labels, str text):
    cdef _Wire w = reader._w
    cdef Field f, g
    cdef Py_ssize_t pos = a, pos2
    cdef int64_t seconds = 0
    cdef int32_t nanos = 0
    cdef dict metadata = {}
    cdef dict event
    line = ""
    while pos < b:
        w.field(&pos, b, &f)
        if f.number == 1 and f.wt == 2:
            pos2 = f.start
            while pos2 < f.stop:
                w.field(&pos2, f.stop, &g)
                if g.number == 1 and g.wt == 0:
                    seconds = <int64_t>g.value
                elif g.number == 2 and g.wt == 0:
                    nanos = _int32(g.value)
        elif f.number == 2 and f.wt == 2:
            if f.stop - f.start > reader._max_line:
                raise reader._line_too_long(text, f.stop - f.start)
            line = w.lenient_text(f.start, f.stop)
        elif f.number == 3 and f.wt == 2:
            name = ""
            value = ""
            pos2 = f.start
            while pos2 < f.stop:
                w.field(&pos2, f.stop, &g)
                if g.number == 1 and g.wt == 2:
                    name = w.lenient_text(g.start, g.stop)
                elif g.number == 2 and g.wt == 2:
                    value = w.lenient_text(g.start, g.stop)
            metadata[name] = value
    event = {"line": line}
    if labels:
        event["labels"] = labels
    if metadata:
        event["structured_metadata"] = metadata
    # seconds * 10^9 + nanos in Python integers: no overflow to guard.
    ns = (<object>seconds) * 1_000_000_000 + nanos
    return event, (ns if 0 < ns <= INT64_MAX else reader._received_ns)


def _loki_walk(LokiPush reader):
    cdef _Wire w = reader._w
    cdef Field f, g
    cdef Py_ssize_t pos = 0, pos2, covered = 0
    cdef str text
    cdef list events = []
    times = array("q")
    while pos < w.n:
        w.field(&pos, w.n, &f)
        if not (f.number == 1 and f.wt == 2):
            continue
        reader.streams += 1
        text = ""
        pos2 = f.start
        while pos2 < f.stop:
            w.field(&pos2, f.stop, &g)
            if g.number == 1 and g.wt == 2:
                if g.stop - g.start > reader._max_line:
                    raise reader._labels_too_long(g.stop - g.start)
                text = w.lenient_text(g.start, g.stop)
        labels = reader._labels(text)
        pos2 = f.start
        while pos2 < f.stop:
            w.field(&pos2, f.stop, &g)
            if g.number == 2 and g.wt == 2:
                event, when = _loki_entry(reader, g.start, g.stop, labels, text)
                events.append(event)
                times.append(when)
                covered += g.stop - g.start
                if covered >= reader._want:
                    yield events, times
                    events, times, covered = [], array("q"), 0
    if events:
        yield events, times


__all__ = ["LokiPush", "OtlpLogs"]
