"""The JSON event scan that the JSON and NDJSON scanners share.

Inside an event the scan only tracks what decides where the event ends: strings (where
brackets do not count), backslash escapes inside them, and a stack of open brackets
(bounded by ``max_depth``). Everything else is left to the builder and the validator.
"""
from __future__ import annotations

import re
from .. import validate
from ..constants import BAD_BOM, EXPECTED_OBJECT, LINE_ENDED, event_too_large, too_deep
from ..errors import ParseError, PayloadTooLarge
from ..constants import JSON_STATES
from .base import ScannerBase, Src, numbered

QUOTE, BACKSLASH, NEWLINE = b'"\\\n'
LBRACE, RBRACE, LBRACKET, RBRACKET, COMMA = b"{}[],"
BOM = b"\xef\xbb\xbf"

# The first states of both lifecycles (JSON_STATES and NDJSON_STATES agree on them).
START, BOM1, BOM2 = numbered(JSON_STATES, "START BOM1 BOM2")

# Kinds of fault the event scan finds (the validator then says what exactly is wrong).
LINE_FAULT, DEPTH_FAULT, SHAPE_FAULT, SIZE_FAULT = range(4)


class JsonEventScanner(ScannerBase):
    """Base of :class:`JsonScanner` and :class:`NdjsonScanner`: the scan inside an event,
    the byte order mark and whitespace. The states START, BOM1 and BOM2 come first in
    both lifecycles."""

    validate_event = staticmethod(validate.scan_json_object)
    #: The next byte that matters outside / inside a string, and the whitespace between
    #: events (NDJSON adds the newline to the first two and takes it from the third).
    OUTSIDE = re.compile(rb'["{}\[\]]')
    IN_STRING = re.compile(rb'["\\]')
    SPACE = re.compile(rb"[ \t\r\n]*")
    #: Whether a newline ends the event (NDJSON): one after a backslash is a fault too.
    newline_ends_event = False

    def __init__(self, max_event: int, max_depth: int, collect: bool = False) -> None:
        super().__init__(max_event, max_depth, collect)
        self._stack = bytearray()   # the event's open brackets
        self._in_str = False
        self._esc = False           # the next byte is escaped

    # -- for the two scanners ----------------------------------------------------------

    def _event_done(self, start: int, end: int) -> None:
        """The event at ``src[start:end]`` is complete: emit it, set the next state."""
        raise NotImplementedError

    def _at_bom(self, src: Src, i: int, base: int) -> bool:
        """Whether ``src[i]`` is a byte of the body's byte order mark (or must be)."""
        state = self._state
        return state == BOM1 or state == BOM2 or (state == START and base + i == 0 and src[i] == BOM[0])

    def _bom_byte(self, c: int) -> None:
        """One byte of the byte order mark: START (at offset 0) -> BOM1 -> BOM2 -> START."""
        state = self._state
        if c != BOM[state - START]:
            raise ParseError(detail=BAD_BOM, offset=0)
        self._state = START if state == BOM2 else state + 1

    def _finish_bom(self) -> None:
        """The body ended inside its byte order mark: a 406."""
        if self._state == BOM1 or self._state == BOM2:
            raise ParseError(detail=BAD_BOM, offset=0)

    def _outside(self, src: Src, i: int, end: int, base: int) -> int:
        """A byte of the byte order mark, or whitespace then one structural byte."""
        if self._at_bom(src, i, base):
            self._bom_byte(src[i])
            return i + 1
        i = self.SPACE.match(src, i, end).end()  # type: ignore[union-attr]  # always matches
        return self._token(src[i], i, base) if i < end else end

    def _token(self, c: int, i: int, base: int) -> int:
        """The structural byte ``c`` at ``src[i]``, outside every event: the next index."""
        raise NotImplementedError

    def _scan_event(self, src: Src, i: int, end: int, base: int) -> int:
        ev = self._ev_start - base
        limit = ev + self.max_event
        stop = end if end < limit else limit
        outside, in_string = self.OUTSIDE, self.IN_STRING
        stack = self._stack
        while i < stop:
            if self._in_str:
                if self._esc:
                    if src[i] == NEWLINE and self.newline_ends_event:
                        return self._event_fault(src, ev, i, base, LINE_FAULT)
                    self._esc = False
                    i += 1
                    continue
                m = in_string.search(src, i, stop)
                if m is None:
                    i = stop
                    break
                i = m.start()
                c = src[i]
                if c == QUOTE:
                    self._in_str = False
                elif c == BACKSLASH:
                    self._esc = True
                else:   # a newline
                    return self._event_fault(src, ev, i, base, LINE_FAULT)
                i += 1
                continue
            m = outside.search(src, i, stop)
            if m is None:
                i = stop
                break
            i = m.start()
            c = src[i]
            if c == QUOTE:
                self._in_str = True
            elif c == LBRACE or c == LBRACKET:
                if len(stack) >= self.max_depth:
                    return self._event_fault(src, ev, i, base, DEPTH_FAULT)
                stack.append(c)
            elif c == RBRACE or c == RBRACKET:
                if stack[-1] != c - 2:   # '{'/'}' and '['/']' are two apart
                    return self._event_fault(src, ev, i, base, SHAPE_FAULT)
                stack.pop()
                if not stack:
                    self._event_done(ev, i + 1)
                    return i + 1
            else:   # a newline
                return self._event_fault(src, ev, i, base, LINE_FAULT)
            i += 1
        if i == limit and i < end:
            return self._event_fault(src, ev, i, base, SIZE_FAULT)
        return i

    def _reset_event(self) -> None:
        del self._stack[:]
        self._in_str = self._esc = False

    def _event_fault(self, src: Src, ev: int, i: int, base: int, what: int) -> int:
        """Report the first error of an event the scan found broken at ``src[i]``;
        return where scanning resumes (NDJSON skipping the line)."""
        line = self._event_line()
        self._reset_event()
        if what == SIZE_FAULT or what == LINE_FAULT:
            exc = self._locate(src, ev, i, base)
        else:
            exc = self._locate(src, ev, i + 1, base)
        if exc is None:
            if what == SIZE_FAULT:
                raise PayloadTooLarge(detail=event_too_large(self.max_event), offset=base + i, line=line)
            if what == LINE_FAULT:
                exc = ParseError(detail=LINE_ENDED, offset=base + i)
            elif what == DEPTH_FAULT:
                exc = ParseError(detail=too_deep(self.max_depth), offset=base + i)
            else:
                exc = ParseError(detail=EXPECTED_OBJECT, offset=base + i)
        exc.line = line
        self._fault(exc)
        # A line fault resumes at the newline itself, which ends the skipped line.
        return i if what == LINE_FAULT else i + 1
