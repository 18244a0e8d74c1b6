"""Pure-Python reference framing: find each event's byte span, resumably, with size checks.

This is the reference for ``_framing.pyx`` and the fallback when the extension is not
built (``FASTINGEST_PUREPYTHON=1``); both export the same names with the same answers.

A :class:`Scanner` is fed a body chunk by chunk (down to one byte) and returns, per
chunk, a :class:`Frames`: the spans of the events completed by that chunk. It keeps
only the unfinished event between feeds (msgpack-python's ``Unpacker`` pattern), so
memory is bounded by ``max_event`` plus one chunk. It checks the body's shape (an
object or an array of objects; NDJSON lines; a map or an array of maps), nesting
depth, bracket matching and each event's size, but it does not validate the grammar
*inside* an event: orjson / msgpack do that while building, and :mod:`.validate`
locates their errors precisely. Faults the scanner finds are also passed through the
validator, so the error reported is always the first one in the body.
"""
from __future__ import annotations

import gc
import re
import struct
import time
from array import array
from typing import TYPE_CHECKING, Any, List, Optional, Tuple, Union

import msgpack
import orjson

from . import errors as E
from . import validate
from .batch import Batch, RawBatch
from .build import one_by_one, unpack_msgpack
from .formats import KIND_JSON, KIND_MSGPACK, KIND_NDJSON, collect_mode, media_kind
from .timestamps import event_times, parse_dt
from .errors import IngestError, LineError, ParseError, PayloadTooLarge

if TYPE_CHECKING:
    from .limits import Limits

_Src = Union[bytes, bytearray, memoryview]
_Bytes = Union[bytes, bytearray]   # what the scanner reads (feed() copies other buffers)
#: ``(items, times_ns, offsets, lines, line_errors)`` of a batch of events.
_Taken = Tuple[List[Any], "array[int]", "array[int]", Optional["array[int]"], List[LineError]]


# Scanner states (shared numbering with the Cython twin).
_START = 0    # nothing but whitespace (and maybe a BOM) seen yet
_BOM1 = 1     # saw EF at offset 0
_BOM2 = 2     # saw EF BB
_FIRST = 3    # JSON: after '[', expecting an element or ']'
_AFTER = 4    # JSON: after an element; NDJSON: after the event, until '\n'
_NEXT = 5     # JSON: after ',', expecting an element
_END = 6      # the body's top-level value is complete; only whitespace may follow
_EVENT = 7    # inside an event
_SKIP = 8     # NDJSON collect mode: skipping the rest of a bad line
_ELEMS = 9    # MessagePack: inside the top-level array
_DEAD = 10    # a fatal error was reported

_OUT = {KIND_JSON: re.compile(rb'["{}\[\]]'), KIND_NDJSON: re.compile(rb'["{}\[\]\n]')}
_IN_STR = {KIND_JSON: re.compile(rb'["\\]'), KIND_NDJSON: re.compile(rb'["\\\n]')}
_WS = {KIND_JSON: re.compile(rb"[ \t\r\n]*"), KIND_NDJSON: re.compile(rb"[ \t\r]*")}

_LBRACE, _RBRACE, _LBRACKET, _RBRACKET = 0x7B, 0x7D, 0x5B, 0x5D
_QUOTE, _BACKSLASH, _NEWLINE = 0x22, 0x5C, 0x0A

# MessagePack item classes.
_MP_SCALAR, _MP_STR, _MP_BIN, _MP_EXT, _MP_ARRAY, _MP_MAP, _MP_INVALID = range(7)
_BE = {1: ">B", 2: ">H", 4: ">I"}


def _mp_header(src: _Bytes, i: int, end: int) -> Optional[Tuple[int, int, int]]:
    """Decode the MessagePack item header at ``src[i]``.

    Returns ``(class, header_length, n)`` where ``n`` is the payload length in bytes
    (scalars, str, bin, ext) or the element count (array, map); ``None`` when the
    header is cut off at ``end``.
    """
    b = src[i]
    if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
        return _MP_SCALAR, 1, 0
    if b <= 0x8F:
        return _MP_MAP, 1, b & 0x0F
    if b <= 0x9F:
        return _MP_ARRAY, 1, b & 0x0F
    if b <= 0xBF:
        return _MP_STR, 1, b & 0x1F
    if b == 0xC1:
        return _MP_INVALID, 1, 0
    if 0xCA <= b <= 0xD3:   # float32/64, uint8..64, int8..64: fixed payloads
        return _MP_SCALAR, 1, (4, 8, 1, 2, 4, 8, 1, 2, 4, 8)[b - 0xCA]
    if 0xD4 <= b <= 0xD8:   # fixext 1..16: type byte + data
        return _MP_EXT, 2, (1, 2, 4, 8, 16)[b - 0xD4]
    # The rest carry a big-endian length or count after the first byte.
    cls, width, extra = {
        0xC4: (_MP_BIN, 1, 0), 0xC5: (_MP_BIN, 2, 0), 0xC6: (_MP_BIN, 4, 0),
        0xC7: (_MP_EXT, 1, 1), 0xC8: (_MP_EXT, 2, 1), 0xC9: (_MP_EXT, 4, 1),
        0xD9: (_MP_STR, 1, 0), 0xDA: (_MP_STR, 2, 0), 0xDB: (_MP_STR, 4, 0),
        0xDC: (_MP_ARRAY, 2, 0), 0xDD: (_MP_ARRAY, 4, 0),
        0xDE: (_MP_MAP, 2, 0), 0xDF: (_MP_MAP, 4, 0),
    }[b]
    hdr = 1 + width + extra
    if end - i < hdr:
        return None
    (n,) = struct.unpack_from(_BE[width], src, i + 1)
    return cls, hdr, n


def _mp_is_map_header(b: int) -> bool:
    return 0x80 <= b <= 0x8F or b == 0xDE or b == 0xDF


class Frames:
    """The events one ``feed()`` completed: spans into ``src`` plus what went wrong.

    ``starts``/``ends`` index ``src``; ``base`` is the body offset of ``src[0]``.
    ``error`` is a fatal :class:`IngestError` to raise *after* these events are
    handled (they all precede it). Valid until the scanner's next feed.
    """

    __slots__ = ("src", "base", "starts", "ends", "lines", "line_errors", "error")

    def __init__(self, src: _Bytes, base: int, starts: List[int], ends: List[int],
                 lines: Optional[List[int]], line_errors: List[LineError],
                 error: Optional[IngestError]) -> None:
        self.src = src
        self.base = base
        self.starts = starts
        self.ends = ends
        self.lines = lines
        self.line_errors = line_errors
        self.error = error

    def __len__(self) -> int:
        return len(self.starts)

    def offsets(self) -> "array[int]":
        """Body offset of each event's first byte."""
        base = self.base
        return array("q", [base + s for s in self.starts])

    def line_numbers(self) -> Optional["array[int]"]:
        """1-based NDJSON line of each event (None for other formats)."""
        return None if self.lines is None else array("q", self.lines)

    def event_bytes(self, i: int) -> bytes:
        return bytes(self.src[self.starts[i]:self.ends[i]])

    def raw(self) -> List[bytes]:
        """Each event's original bytes."""
        src = self.src
        return [bytes(src[s:e]) for s, e in zip(self.starts, self.ends)]

    def _spans(self, lo: int, hi: Optional[int]) -> List[_Bytes]:
        src = self.src
        return [src[s:e] for s, e in zip(self.starts[lo:hi], self.ends[lo:hi])]

    def json_document(self, lo: int = 0, hi: Optional[int] = None) -> bytes:
        """One JSON array holding events ``lo:hi``, for a single ``orjson.loads``."""
        return b"[" + b",".join(self._spans(lo, hi)) + b"]"

    def msgpack_document(self, lo: int = 0, hi: Optional[int] = None) -> bytes:
        """One MessagePack array holding events ``lo:hi``, for a single ``msgpack.unpackb``."""
        spans = self._spans(lo, hi)
        n = len(spans)
        if n < 16:
            head = bytes([0x90 | n])
        elif n < 0x10000:
            head = b"\xdc" + n.to_bytes(2, "big")
        else:
            head = b"\xdd" + n.to_bytes(4, "big")
        return head + b"".join(spans)


class Scanner:
    """Resumable framer for one body of one ``kind`` (KIND_JSON/KIND_NDJSON/KIND_MSGPACK)."""

    def __init__(self, kind: int, max_event: int, max_depth: int, collect: bool = False) -> None:
        if kind not in (KIND_JSON, KIND_NDJSON, KIND_MSGPACK):
            raise ValueError(f"unknown kind {kind!r}")
        self.kind = kind
        self.max_event = max_event
        self.max_depth = max_depth
        self.collect = bool(collect) and kind == KIND_NDJSON
        self._buf = bytearray()   # kept bytes: body offsets [_keep, _pos)
        self._keep = 0
        self._pos = 0             # bytes fed so far
        self._scan_pos = 0        # where scanning resumes (< _pos only mid-header in msgpack)
        self._state = _START
        self._array = False       # JSON/msgpack: the body is an array of events
        self._shape: Optional[bool] = None   # _array, once the first value says
        self._ev_start = -1       # body offset of the current event's first byte
        self._line = 1            # NDJSON: current line
        self._ev_line = 0
        self._stack = bytearray()  # JSON: open brackets of the current event
        self._in_str = False
        self._esc = False
        self._mp_stack: List[int] = []  # msgpack: items left in each open container
        self._mp_started = False
        self._skip = 0            # msgpack: payload bytes still to skip
        self._remaining = 0       # msgpack: elements left in the top-level array
        self._top_hdr = 0         # msgpack: offset of the top-level array header
        self._error: Optional[IngestError] = None
        self._out: List[int] = []
        self._ends: List[int] = []
        self._lines: List[int] = []
        self._line_errors: List[LineError] = []

    @property
    def position(self) -> int:
        """Bytes fed so far."""
        return self._pos

    @property
    def is_array(self) -> Optional[bool]:
        """JSON/MessagePack: whether the body is an array of events (None until known,
        and always for NDJSON)."""
        return self._shape

    # -- public -----------------------------------------------------------------------

    def feed(self, data: Union[bytes, bytearray, memoryview]) -> Frames:
        """Scan one more chunk of the body; return the events it completed."""
        if self._error is not None:
            return self._frames(b"", 0, self._error)
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        src: Union[bytes, bytearray]
        if self._buf:
            self._buf += data
            src, base = self._buf, self._keep
        else:
            src, base = data, self._pos
        self._pos += len(data)
        error = None
        try:
            self._scan_pos = base + self._scan(src, self._scan_pos - base, len(src), base)
        except IngestError as exc:
            error = self._error = exc
            self._state = _DEAD
        if src is self._buf and self._out:
            # Spans must outlive the compaction below: copy out the completed region.
            lo, hi = self._out[0], self._ends[-1]
            frames = self._frames(bytes(src[lo:hi]), base + lo, error, shift=lo)
        else:
            frames = self._frames(src, base, error)
        keep = self._keep_from()
        if src is self._buf:
            del self._buf[: keep - base]
        else:
            self._buf = bytearray(src[keep - base:])
        self._keep = keep
        return frames

    def finish(self) -> Frames:
        """The body is complete: report an unfinished event or body as an error."""
        if self._error is not None:
            return self._frames(b"", 0, self._error)
        error = None
        try:
            self._finish()
        except IngestError as exc:
            error = self._error = exc
        self._state = _DEAD if error else _END
        self._buf = bytearray()
        return self._frames(b"", 0, error)

    # -- bookkeeping ------------------------------------------------------------------

    def _frames(self, src: _Bytes, base: int, error: Optional[IngestError], shift: int = 0) -> Frames:
        starts, ends = self._out, self._ends
        if shift:
            starts = [s - shift for s in starts]
            ends = [e - shift for e in ends]
        lines = self._lines if self.kind == KIND_NDJSON else None
        frames = Frames(src, base, starts, ends, lines, self._line_errors, error)
        self._out, self._ends, self._lines, self._line_errors = [], [], [], []
        return frames

    def _keep_from(self) -> int:
        if self._state == _EVENT:
            return self._ev_start
        return self._scan_pos   # mid-header in msgpack, else everything was consumed

    def _emit(self, start: int, end: int) -> None:
        self._out.append(start)
        self._ends.append(end)
        if self.kind == KIND_NDJSON:
            self._lines.append(self._ev_line)

    def _begin_event(self, at: int) -> None:
        self._state = _EVENT
        self._ev_start = at
        self._ev_line = self._line

    def _fault(self, exc: IngestError) -> None:
        """A fault in the body: fatal, or (NDJSON collect mode, 406) one bad line skipped."""
        if not self.collect or exc.status != 406:
            raise exc
        self._line_errors.append(LineError(exc.line or 0, exc.offset or 0, exc.detail or "", exc.status))
        self._state = _SKIP

    def _locate(self, src: _Bytes, start: int, stop: int, base: int, at_end: bool = False) -> Optional[ParseError]:
        """The grammar error the validator finds in ``src[start:stop]`` before ``stop``.

        Mid-body the data is cut at ``stop`` on purpose, so a MessagePack header whose
        declared length runs past ``stop`` is not an error of its own; at the end of the
        body (``at_end``) it is.
        """
        try:
            if self.kind == KIND_MSGPACK:
                validate.scan_msgpack_map(src, start, stop, self.max_depth, base)
            else:
                validate.scan_json_object(src, start, stop, self.max_depth, base)
        except ParseError as exc:
            if at_end:
                return exc
            if exc.offset is not None and exc.offset < base + stop and exc.detail not in _CUT_OFF:
                return exc
        return None

    # -- the scan ---------------------------------------------------------------------

    def _scan(self, src: _Bytes, i: int, end: int, base: int) -> int:
        kind = self.kind
        while i < end:
            state = self._state
            if state == _EVENT:
                if kind == KIND_MSGPACK:
                    i = self._scan_msgpack_event(src, i, end, base)
                else:
                    i = self._scan_json_event(src, i, end, base)
                if self._state == _EVENT:
                    return i   # needs more data
                continue
            if kind == KIND_MSGPACK:
                i = self._msgpack_top(src, i, end, base)
                if i < 0:
                    return -i - 1   # header cut off: resume there
                continue
            c = src[i]
            if state == _SKIP:
                nl = src.find(b"\n", i, end)
                if nl < 0:
                    return end
                self._line += 1
                self._state = _START
                i = nl + 1
                continue
            if base + i == 0 and c == 0xEF and state == _START:
                self._state = _BOM1
                i += 1
                continue
            if state == _BOM1 or state == _BOM2:
                if c != (0xBB if state == _BOM1 else 0xBF):
                    raise ParseError(detail=E.BAD_BOM, offset=0)
                self._state = _BOM2 if state == _BOM1 else _START
                i += 1
                continue
            i = _WS[kind].match(src, i, end).end()  # type: ignore[union-attr]  # always matches
            if i == end:
                break
            c = src[i]
            if kind == KIND_NDJSON:
                i = self._ndjson_top(c, i, base)
            else:
                i = self._json_top(c, i, base)
        return end

    def _json_top(self, c: int, i: int, base: int) -> int:
        state = self._state
        if state == _START:
            if c == _LBRACKET:
                self._array = self._shape = True
                self._state = _FIRST
                return i + 1
            if c == _LBRACE:
                self._shape = False
                self._begin_event(base + i)
                return i
            raise ParseError(detail=E.EXPECTED_BODY_JSON, offset=base + i)
        if state == _FIRST or state == _NEXT:
            if c == _LBRACE:
                self._begin_event(base + i)
                return i
            if c == _RBRACKET and state == _FIRST:
                self._state = _END
                return i + 1
            raise ParseError(detail=E.EXPECTED_OBJECT, offset=base + i)
        if state == _AFTER:
            if c == 0x2C:
                self._state = _NEXT
                return i + 1
            if c == _RBRACKET:
                self._state = _END
                return i + 1
            raise ParseError(detail=E.EXPECTED_COMMA_OR_BRACKET, offset=base + i)
        raise ParseError(detail=E.DATA_AFTER_BODY, offset=base + i)   # _END

    def _ndjson_top(self, c: int, i: int, base: int) -> int:
        if c == _NEWLINE:
            self._line += 1
            self._state = _START
            return i + 1
        if self._state == _START:
            if c == _LBRACE:
                self._begin_event(base + i)
                return i
            self._fault(ParseError(detail=E.EXPECTED_OBJECT, offset=base + i, line=self._line))
            return i
        # _AFTER: only whitespace may follow the event on its line
        self._fault(ParseError(detail=E.DATA_AFTER_EVENT, offset=base + i, line=self._line))
        return i

    def _scan_json_event(self, src: _Bytes, i: int, end: int, base: int) -> int:
        ev = self._ev_start - base
        limit = ev + self.max_event
        stop = end if end < limit else limit
        kind = self.kind
        out_re, str_re = _OUT[kind], _IN_STR[kind]
        stack = self._stack
        while i < stop:
            if self._in_str:
                if self._esc:
                    if src[i] == _NEWLINE and kind == KIND_NDJSON:
                        return self._json_event_fault(src, ev, i, base, _LINE_FAULT)
                    self._esc = False
                    i += 1
                    continue
                m = str_re.search(src, i, stop)
                if m is None:
                    i = stop
                    break
                i = m.start()
                c = src[i]
                if c == _QUOTE:
                    self._in_str = False
                elif c == _BACKSLASH:
                    self._esc = True
                else:
                    return self._json_event_fault(src, ev, i, base, _LINE_FAULT)
                i += 1
                continue
            m = out_re.search(src, i, stop)
            if m is None:
                i = stop
                break
            i = m.start()
            c = src[i]
            if c == _QUOTE:
                self._in_str = True
            elif c == _LBRACE or c == _LBRACKET:
                if len(stack) >= self.max_depth:
                    return self._json_event_fault(src, ev, i, base, _DEPTH_FAULT)
                stack.append(c)
            elif c == _RBRACE or c == _RBRACKET:
                if stack[-1] != c - 2:   # '{'/'}' and '['/']' are two apart
                    return self._json_event_fault(src, ev, i, base, _SHAPE_FAULT)
                stack.pop()
                if not stack:
                    self._emit(ev, i + 1)
                    self._state = _AFTER if (self._array or kind == KIND_NDJSON) else _END
                    return i + 1
            else:
                return self._json_event_fault(src, ev, i, base, _LINE_FAULT)
            i += 1
        if i == limit and i < end:
            return self._json_event_fault(src, ev, i, base, _SIZE_FAULT)
        return i

    def _reset_event(self) -> None:
        del self._stack[:]
        self._in_str = self._esc = False
        self._mp_stack = []
        self._mp_started = False
        self._skip = 0

    def _json_event_fault(self, src: _Bytes, ev: int, i: int, base: int, what: int) -> int:
        """Report the first error of an event the scanner found broken at ``src[i]``."""
        line = self._ev_line if self.kind == KIND_NDJSON else None
        self._reset_event()
        if what == _SIZE_FAULT or what == _LINE_FAULT:
            exc = self._locate(src, ev, i, base)
        else:
            exc = self._locate(src, ev, i + 1, base)
        if exc is None:
            if what == _SIZE_FAULT:
                raise PayloadTooLarge(detail=E.event_too_large(self.max_event), offset=base + i, line=line)
            detail = {_LINE_FAULT: E.LINE_ENDED, _DEPTH_FAULT: E.too_deep(self.max_depth)}.get(
                what, E.EXPECTED_OBJECT)
            exc = ParseError(detail=detail, offset=base + i)
        exc.line = line
        self._fault(exc)
        # A line fault resumes at the newline itself, which _SKIP consumes.
        return i if what == _LINE_FAULT else i + 1

    # -- MessagePack ------------------------------------------------------------------

    def _msgpack_top(self, src: _Bytes, i: int, end: int, base: int) -> int:
        """Top-level MessagePack states; returns the next index, or ``-i-1`` when the
        header at ``i`` is cut off and scanning must resume there."""
        state = self._state
        if state == _START:
            h = _mp_header(src, i, end)
            if h is None:
                return -i - 1
            cls, hdr, n = h
            if cls == _MP_MAP:
                self._array = self._shape = False
                self._begin_event(base + i)
                return i
            if cls != _MP_ARRAY:
                raise ParseError(detail=E.EXPECTED_BODY_MSGPACK, offset=base + i)
            self._array = self._shape = True
            self._top_hdr = base + i
            self._remaining = n
            self._state = _ELEMS if n else _END
            return i + hdr
        if state == _ELEMS:
            if not _mp_is_map_header(src[i]):
                raise ParseError(detail=E.EXPECTED_MAP, offset=base + i)
            self._remaining -= 1
            self._begin_event(base + i)
            return i
        raise ParseError(detail=E.DATA_AFTER_BODY, offset=base + i)   # _END

    def _scan_msgpack_event(self, src: _Bytes, i: int, end: int, base: int) -> int:
        ev = self._ev_start - base
        stack = self._mp_stack
        while True:
            if self._skip:
                if end - i < self._skip:
                    self._skip -= end - i
                    return end
                i += self._skip
                self._skip = 0
            while stack and stack[-1] == 0:
                stack.pop()
            if not stack and self._mp_started:
                self._emit(ev, i)
                self._reset_event()
                self._state = (_ELEMS if self._remaining else _END) if self._array else _END
                return i
            if i >= end:
                return i
            h = _mp_header(src, i, end)
            if h is None:
                return i   # resume at this header when more bytes arrive
            cls, hdr, n = h
            if cls == _MP_INVALID:
                self._msgpack_event_fault(src, ev, i, base, ParseError(detail=E.RESERVED_BYTE, offset=base + i))
            if stack:
                stack[-1] -= 1
            self._mp_started = True
            if cls == _MP_ARRAY or cls == _MP_MAP:
                items = n * 2 if cls == _MP_MAP else n
                if i + hdr + items - ev > self.max_event:
                    self._msgpack_event_fault(src, ev, i, base, None)
                if len(stack) >= self.max_depth:
                    self._msgpack_event_fault(
                        src, ev, i, base, ParseError(detail=E.too_deep(self.max_depth), offset=base + i))
                stack.append(items)
                i += hdr
            else:
                if i + hdr + n - ev > self.max_event:
                    self._msgpack_event_fault(src, ev, i, base, None)
                i += hdr
                self._skip = n

    def _msgpack_event_fault(self, src: _Bytes, ev: int, i: int, base: int,
                             exc: Optional[IngestError]) -> None:
        self._reset_event()
        earlier = self._locate(src, ev, i, base)
        if earlier is not None:
            raise earlier
        if exc is None:
            raise PayloadTooLarge(detail=E.event_too_large(self.max_event), offset=base + i)
        raise exc

    # -- end of body ------------------------------------------------------------------

    def _finish(self) -> None:
        state, kind, pos = self._state, self.kind, self._pos
        if state == _EVENT:
            src, base = self._buf, self._keep
            exc = self._locate(src, self._ev_start - base, len(src), base, at_end=True)
            self._reset_event()
            if exc is None:
                exc = ParseError(detail=E.UNEXPECTED_END, offset=pos)
            if kind == KIND_NDJSON:
                exc.line = self._ev_line
            self._fault(exc)
            return
        if state == _BOM1 or state == _BOM2:
            raise ParseError(detail=E.BAD_BOM, offset=0)
        if kind == KIND_NDJSON or state == _END:
            return
        if kind == KIND_MSGPACK:
            if state == _START:
                if pos == 0:
                    raise ParseError(detail=E.EMPTY_BODY, offset=0)
                raise ParseError(detail=E.UNEXPECTED_END, offset=self._scan_pos)
            raise ParseError(detail=E.LENGTH_PAST_END, offset=self._top_hdr)   # _ELEMS
        if state == _START:
            raise ParseError(detail=E.EMPTY_BODY, offset=pos)
        raise ParseError(detail=E.UNEXPECTED_END, offset=pos)


# Validator reasons that only mean "the data stops here".
_CUT_OFF = (E.UNEXPECTED_END, E.LENGTH_PAST_END)

# Kinds of fault the JSON event scan finds.
_LINE_FAULT, _DEPTH_FAULT, _SHAPE_FAULT, _SIZE_FAULT = range(4)


# -- raw pass-through -----------------------------------------------------------------------

def split_frames(frames: Frames, kind: int, max_depth: int, received_ns: int, collect: bool) -> _Taken:
    """Validate each event fully and read its top-level ``dt``, building no objects to keep.

    Returns ``(raw, times_ns, offsets, lines, line_errors)``; raises the first event's
    ParseError unless ``collect``. The reference reads ``dt`` by decoding the event, so
    the compiled shallow scan is checked against the decoder's own answer.
    """
    offsets = frames.offsets()
    lines = frames.line_numbers()
    raw: List[bytes] = []
    times = array("q")
    keep = []
    line_errors: List[LineError] = []
    for i in range(len(frames)):
        data = frames.event_bytes(i)
        try:
            if kind == KIND_MSGPACK:
                validate.scan_msgpack_map(data, 0, len(data), max_depth, offsets[i])
                event = msgpack.unpackb(data, raw=False, strict_map_key=True, timestamp=0)
            else:
                validate.scan_json_object(data, 0, len(data), max_depth, offsets[i])
                event = orjson.loads(data)
        except ParseError as exc:
            if lines is not None:
                exc.line = lines[i]
            if not collect:
                raise
            line_errors.append(LineError(exc.line or 0, exc.offset or 0, exc.detail or "", exc.status))
            continue
        t = parse_dt(event["dt"]) if "dt" in event else None
        times.append(received_ns if t is None else t)
        raw.append(data)
        keep.append(i)
    if line_errors:
        offsets = array("q", [offsets[i] for i in keep])
        if lines is not None:
            lines = array("q", [lines[i] for i in keep])
    return raw, times, offsets, lines, line_errors


# -- per batch: frames -> events (or raw bytes), times ------------------------------------

BUILD_RUN_BYTES = 64 * 1024

def _loads_batch(frames: Frames, kind: int) -> List[Any]:
    """Every framed event, built in runs of about BUILD_RUN_BYTES (one orjson / msgpack
    call each) with the cyclic GC paused meanwhile: tens of thousands of fresh
    containers otherwise trigger repeated collections that cost 30-50% of a large decode,
    and none of them can be garbage. (orjson reserves a worst-case buffer for its input,
    so one call over a whole 10 MiB body costs page faults and ~8x its size in memory.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        events: List[Any] = []
        lo, n = 0, len(frames)
        sizes = [e - s for s, e in zip(frames.starts, frames.ends)]
        while lo < n:
            hi, size = lo, 0
            while hi < n and (size < BUILD_RUN_BYTES or hi == lo):
                size += sizes[hi]
                hi += 1
            if kind == KIND_MSGPACK:
                events.extend(unpack_msgpack(frames.msgpack_document(lo, hi)))
            else:
                events.extend(orjson.loads(frames.json_document(lo, hi)))
            lo = hi
        return events
    finally:
        if enabled:
            gc.enable()


def take(frames: Frames, kind: int, max_depth: int, received_ns: int, collect: bool, raw: bool) -> _Taken:
    """``(items, times_ns, offsets, lines, line_errors)`` for the events of ``frames``
    (objects, or their bytes when ``raw``); then raises the fault that ended them."""
    if not len(frames):
        items: List[Any]
        line_errors: List[LineError]
        items, times, offsets, lines, line_errors = [], array("q"), array("q"), frames.line_numbers(), []
    elif raw:
        items, times, offsets, lines, line_errors = split_frames(frames, kind, max_depth, received_ns, collect)
    else:
        try:
            items = _loads_batch(frames, kind)
            offsets, lines, line_errors = frames.offsets(), frames.line_numbers(), []
        except Exception:
            items, offsets, lines, line_errors = one_by_one(frames, kind, validate, max_depth, collect)
        times = event_times(items, received_ns)
    if frames.line_errors:
        line_errors = sorted(line_errors + frames.line_errors, key=lambda e: e.offset)
    if frames.error is not None:
        raise frames.error
    return items, times, offsets, lines, line_errors


def decode_body(body: _Src, kind: int, max_body: int, max_event: int, max_depth: int,
                received_ns: int, collect: bool, raw: bool) -> _Taken:
    """A whole, uncompressed body: what feeding it to a Scanner in one piece gives,
    without the streaming plumbing. Returns what :func:`take` does."""
    over = len(body) > max_body
    if over:   # the bytes within the limit come first: an earlier fault wins
        body = memoryview(body)[:max_body]
    scanner = Scanner(kind, max_event, max_depth, collect)
    items, times, offsets, lines, line_errors = take(
        scanner.feed(body), kind, max_depth, received_ns, collect, raw)
    if over:
        raise PayloadTooLarge(detail=E.body_too_large(max_body), offset=max_body)
    rest = take(scanner.finish(), kind, max_depth, received_ns, collect, raw)
    return items, times, offsets, lines, line_errors + rest[4]


def decode_whole(body: _Src, content_type: Union[str, bytes, None], limits: Limits,
                 received_ns: Optional[int], errors: str, raw: bool) -> Union[Batch, RawBatch]:
    """decode()/split() of an uncompressed body held in memory: a Batch (RawBatch).

    (The compiled twin answers a body that is plainly one small object without its
    scanner — ``_framing._one_object`` — with the same answer; tests/test_one_object.py.)"""
    kind = media_kind(content_type)
    collect = collect_mode(errors, kind)
    received = time.time_ns() if received_ns is None else int(received_ns)
    items, times, offsets, lines, line_errors = decode_body(
        body, kind, limits.max_body, limits.max_event, limits.max_depth, received, collect, raw)
    return (RawBatch if raw else Batch)(items, times, offsets, lines, line_errors)
