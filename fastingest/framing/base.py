"""What every format scanner shares: chunks in, spans of complete events out.

A scanner is fed a body chunk by chunk (down to one byte) and answers, per chunk, a
:class:`Frames`: the spans of the events that chunk completed. Between feeds it keeps
only the unfinished event (msgpack-python's ``Unpacker`` pattern), so its memory is
bounded by ``max_event`` plus one chunk. It checks the body's shape, each event's size
and nesting, and bracket matching, but not the grammar *inside* an event: the builders
(orjson, msgpack) do that, and the validators locate their errors. A fault the scanner
finds is passed through the validator too, so the error reported is always the first
one in the body.

This module holds the bookkeeping (the kept bytes, the spans found, errors); each
format's scanner (``json_scanner``, ``ndjson_scanner``, ``msgpack_scanner``) holds only
its own states and implements the steps of its scan.
"""
from __future__ import annotations

from array import array
from typing import Callable, List, Optional, Tuple, Union

from ..constants import CUT_OFF, UNEXPECTED_END
from ..errors import IngestError, LineError, ParseError

Src = Union[bytes, bytearray]   # what a scanner reads (feed() copies other buffers)


class Frames:
    """The events one ``feed()`` completed: spans into ``src`` plus what went wrong.

    ``starts``/``ends`` index ``src``; ``base`` is the body offset of ``src[0]``.
    ``error`` is a fatal :class:`IngestError` to raise *after* these events are
    handled (they all precede it). Valid until the scanner's next feed.
    """

    __slots__ = ("src", "base", "starts", "ends", "lines", "line_errors", "error")

    def __init__(self, src: Src, base: int, starts: List[int], ends: List[int],
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
        """Event ``i``'s original bytes."""
        return bytes(self.src[self.starts[i]:self.ends[i]])

    def raw(self) -> List[bytes]:
        """Each event's original bytes."""
        src = self.src
        return [bytes(src[s:e]) for s, e in zip(self.starts, self.ends)]

    def _spans(self, lo: int = 0, hi: Optional[int] = None) -> List[Src]:
        """The bytes of events ``lo:hi`` (slices of ``src``)."""
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
            head = bytes([0x90 | n])                       # fixarray
        elif n < 0x10000:
            head = b"\xdc" + n.to_bytes(2, "big")          # array 16
        else:
            head = b"\xdd" + n.to_bytes(4, "big")          # array 32
        return head + b"".join(spans)


class ScannerBase:
    """Resumable framer for one body: the buffering every format's scanner shares.

    A subclass names its lifecycle (``STATES``, from :mod:`fastingest.constants`) and
    the validator that locates errors inside its events, and implements ``_scan_event``
    (inside an event), ``_outside`` (one step between events) and ``_finish`` (the end
    of the body); ``_scan`` runs them over a chunk, resumably.
    """

    #: The lifecycle: state names in order (``scanner.state`` answers the current one).
    STATES: Tuple[str, ...] = ()
    #: Whether events carry line numbers (NDJSON).
    has_lines = False
    #: The grammar validator for one event: ``(buf, start, end, max_depth, base) -> end``.
    validate_event: Callable[..., int]

    def __init__(self, max_event: int, max_depth: int, collect: bool = False) -> None:
        if max_event < 1 or max_depth < 1:
            raise ValueError("max_event and max_depth must be positive")
        self.max_event = max_event
        self.max_depth = max_depth
        self.collect = False      # errors="collect": NDJSON only
        self._EVENT = self.STATES.index("EVENT")
        self._END = self.STATES.index("END")
        self._FAILED = self.STATES.index("FAILED")
        self._buf = bytearray()   # kept bytes: body offsets [_keep, _pos)
        self._keep = 0
        self._pos = 0             # bytes fed so far
        self._scan_pos = 0        # where scanning resumes (< _pos only mid-header in msgpack)
        self._state = 0           # START
        self._shape: Optional[bool] = None   # the body is an array, once its first byte says
        self._ev_start = -1       # body offset of the current event's first byte
        self._error: Optional[IngestError] = None
        self._finished = False
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
        and always for NDJSON and concatenated JSON)."""
        return self._shape

    @property
    def state(self) -> str:
        """The current state's name (see ``STATES``)."""
        return self.STATES[self._state]

    # -- public -----------------------------------------------------------------------

    def feed(self, data: Union[bytes, bytearray, memoryview]) -> Frames:
        """Scan one more chunk of the body; return the events it completed."""
        self._check_open()
        if self._error is not None:
            return self._frames(b"", 0, self._error)
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        src: Src
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
            self._state = self._FAILED
        if src is self._buf and self._out:
            # Spans must outlive the compaction below: copy out the completed region.
            lo, hi = self._out[0], self._ends[-1]
            frames = self._frames(bytes(src[lo:hi]), base + lo, error, shift=lo)
        else:
            frames = self._frames(src, base, error)
        keep = self._ev_start if self._state == self._EVENT else self._scan_pos
        if src is self._buf:
            del self._buf[: keep - base]
        else:
            self._buf = bytearray(src[keep - base:])
        self._keep = keep
        return frames

    def finish(self) -> Frames:
        """The body is complete: report an unfinished event or body as an error."""
        self._check_open()
        if self._error is not None:
            return self._frames(b"", 0, self._error)
        error = None
        try:
            self._finish()
        except IngestError as exc:
            error = self._error = exc
        self._state = self._FAILED if error else self._END
        self._finished = error is None
        self._buf = bytearray()
        return self._frames(b"", 0, error)

    # -- for the format scanners --------------------------------------------------------

    def _scan(self, src: Src, i: int, end: int, base: int) -> int:
        """Scan ``src[i:end]`` (``src[0]`` is at body offset ``base``): events, and the
        bytes between them; return where scanning resumes when more bytes arrive."""
        while i < end:
            if self._state == self._EVENT:
                i = self._scan_event(src, i, end, base)
                if self._state == self._EVENT:
                    return i   # needs more data
                continue
            i = self._outside(src, i, end, base)
            if i < 0:
                return -i - 1   # a header cut off: resume there
        return end

    def _scan_event(self, src: Src, i: int, end: int, base: int) -> int:
        """Inside the current event: up to its end (emitted), a fault, or ``end``."""
        raise NotImplementedError

    def _outside(self, src: Src, i: int, end: int, base: int) -> int:
        """The next step between events at ``src[i]``: where scanning goes on, or
        ``-i-1`` when the step needs bytes that have not arrived."""
        raise NotImplementedError

    def _finish(self) -> None:
        """The body ended in the current state: raise what that means."""
        raise NotImplementedError

    def _check_open(self) -> None:
        if self._finished:
            raise ValueError("the scanner finished: its body is complete")

    def _frames(self, src: Src, base: int, error: Optional[IngestError], shift: int = 0) -> Frames:
        starts, ends = self._out, self._ends
        if shift:
            starts = [s - shift for s in starts]
            ends = [e - shift for e in ends]
        lines = self._lines if self.has_lines else None
        frames = Frames(src, base, starts, ends, lines, self._line_errors, error)
        self._out, self._ends, self._lines, self._line_errors = [], [], [], []
        return frames

    def _begin_event(self, at: int) -> None:
        self._state = self._EVENT
        self._ev_start = at

    def _emit(self, start: int, end: int) -> None:
        """``src[start:end]`` is one complete event (indices into this feed's ``src``)."""
        self._out.append(start)
        self._ends.append(end)

    def _reset_event(self) -> None:
        """Forget the current event's scan state (after it ended or failed)."""

    def _event_line(self) -> Optional[int]:
        """The line number that errors in the current event carry (NDJSON)."""
        return None

    def _finish_event(self) -> None:
        """The body ended inside an event: its first error, else 'unexpected end'."""
        src, base = self._buf, self._keep
        exc = self._locate(src, self._ev_start - base, len(src), base, at_end=True)
        self._reset_event()
        if exc is None:
            exc = ParseError(detail=UNEXPECTED_END, offset=self._pos)
        exc.line = self._event_line()
        self._fault(exc)

    def _fault(self, exc: IngestError) -> None:
        """A fault in the body (fatal; NDJSON may skip the bad line instead)."""
        raise exc

    def _locate(self, src: Src, start: int, stop: int, base: int,
                at_end: bool = False) -> Optional[ParseError]:
        """The grammar error the validator finds in ``src[start:stop]`` before ``stop``.

        Mid-body the data is cut at ``stop`` on purpose, so a reason that only says the
        data stops there is not an error of its own; at the end of the body
        (``at_end``) it is.
        """
        try:
            self.validate_event(src, start, stop, self.max_depth, base)
        except ParseError as exc:
            if at_end:
                return exc
            if exc.offset is not None and exc.offset < base + stop and exc.detail not in CUT_OFF:
                return exc
        return None


def numbered(states: Tuple[str, ...], names: str) -> Tuple[int, ...]:
    """The numbers of the named states: ``START, EVENT = numbered(STATES, "START EVENT")``."""
    return tuple(states.index(name) for name in names.split())
