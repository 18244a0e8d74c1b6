"""NdjsonScanner: one JSON object per line.

Lifecycle (``constants.NDJSON_STATES``)::

    START --'{'--> EVENT --'}'--> AFTER --'\\n'--> START
    START --'\\n'--> START                  (blank and whitespace-only lines are skipped)
    START --EF BB BF (at offset 0)--> BOM1 --> BOM2 --> START

Whitespace is space, tab and ``\\r`` (so ``\\r\\n`` ends a line too). A newline inside an
event, anything but an object at a line's start, or anything after the event on its line
is a 406 carrying the line number. With ``collect`` such a line is recorded as a
:class:`~fastingest.errors.LineError` and skipped (SKIP, up to its newline) instead;
size limits stay fatal. An empty body is zero events.
"""
from __future__ import annotations

import re
from typing import Optional

from ..constants import DATA_AFTER_EVENT, EXPECTED_OBJECT, NDJSON_STATES
from ..errors import IngestError, LineError, ParseError
from .base import Src, numbered
from .json_events import LBRACE, NEWLINE, JsonEventScanner

START, EVENT, AFTER, SKIP = numbered(NDJSON_STATES, "START EVENT AFTER SKIP")


class NdjsonScanner(JsonEventScanner):
    """Resumable framer for one NDJSON body (see the module docstring)."""

    STATES = NDJSON_STATES
    has_lines = True
    OUTSIDE = re.compile(rb'["{}\[\]\n]')
    IN_STRING = re.compile(rb'["\\\n]')
    SPACE = re.compile(rb"[ \t\r]*")
    newline_ends_event = True

    def __init__(self, max_event: int, max_depth: int, collect: bool = False) -> None:
        super().__init__(max_event, max_depth, collect)
        self.collect = bool(collect)
        self._line = 1       # the line being scanned
        self._ev_line = 0    # the current event's line

    def _outside(self, src: Src, i: int, end: int, base: int) -> int:
        if self._state == SKIP:
            nl = src.find(b"\n", i, end)
            if nl < 0:
                return end
            self._line += 1
            self._state = START
            return nl + 1
        return super()._outside(src, i, end, base)

    def _token(self, c: int, i: int, base: int) -> int:
        """The byte ``c`` at ``src[i]``, outside every event."""
        if c == NEWLINE:
            self._line += 1
            self._state = START
            return i + 1
        if self._state == START:
            if c == LBRACE:
                self._begin_event(base + i)
                self._ev_line = self._line
                return i
            self._fault(ParseError(detail=EXPECTED_OBJECT, offset=base + i, line=self._line))
            return i
        # AFTER: only whitespace may follow the event on its line
        self._fault(ParseError(detail=DATA_AFTER_EVENT, offset=base + i, line=self._line))
        return i

    def _event_done(self, start: int, end: int) -> None:
        self._emit(start, end)
        self._lines.append(self._ev_line)
        self._state = AFTER

    def _event_line(self) -> Optional[int]:
        return self._ev_line

    def _fault(self, exc: IngestError) -> None:
        """Fatal, unless collecting and the fault is the line's (406): then the line is
        recorded and skipped."""
        if not self.collect or exc.status != 406:
            raise exc
        self._line_errors.append(LineError(exc.line or 0, exc.offset or 0, exc.detail or "", exc.status))
        self._state = SKIP

    def _finish(self) -> None:
        if self._state == EVENT:
            self._finish_event()
            return
        self._finish_bom()
