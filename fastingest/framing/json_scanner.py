"""JsonScanner: a JSON body that is one object or an array of objects.

Lifecycle (``constants.JSON_STATES``)::

    START --'{'--> EVENT --'}'--> END
    START --'['--> FIRST --']'--> END
                   FIRST --'{'--> EVENT --'}'--> AFTER --','--> NEXT --'{'--> EVENT
                                                 AFTER --']'--> END
    START --EF BB BF (at offset 0)--> BOM1 --> BOM2 --> START

Whitespace may surround every token; anything else outside an event is a 406 naming
what was expected, and so is the body's end anywhere but in END.
"""
from __future__ import annotations

from ..constants import (DATA_AFTER_BODY, EMPTY_BODY, EXPECTED_BODY_JSON,
                         EXPECTED_COMMA_OR_BRACKET, EXPECTED_OBJECT, JSON_STATES, UNEXPECTED_END)
from ..errors import ParseError
from .base import numbered
from .json_events import COMMA, LBRACE, LBRACKET, RBRACKET, JsonEventScanner

START, FIRST, NEXT, AFTER, EVENT, END = numbered(JSON_STATES, "START FIRST NEXT AFTER EVENT END")


class JsonScanner(JsonEventScanner):
    """Resumable framer for one JSON body (see the module docstring)."""

    STATES = JSON_STATES

    def _token(self, c: int, i: int, base: int) -> int:
        """The structural byte ``c`` at ``src[i]``, outside every event."""
        state = self._state
        if state == START:
            if c == LBRACKET:
                self._shape = True
                self._state = FIRST
                return i + 1
            if c == LBRACE:
                self._shape = False
                self._begin_event(base + i)
                return i
            raise ParseError(detail=EXPECTED_BODY_JSON, offset=base + i)
        if state == FIRST or state == NEXT:
            if c == LBRACE:
                self._begin_event(base + i)
                return i
            if c == RBRACKET and state == FIRST:
                self._state = END
                return i + 1
            raise ParseError(detail=EXPECTED_OBJECT, offset=base + i)
        if state == AFTER:
            if c == COMMA:
                self._state = NEXT
                return i + 1
            if c == RBRACKET:
                self._state = END
                return i + 1
            raise ParseError(detail=EXPECTED_COMMA_OR_BRACKET, offset=base + i)
        raise ParseError(detail=DATA_AFTER_BODY, offset=base + i)   # END

    def _event_done(self, start: int, end: int) -> None:
        self._emit(start, end)
        self._state = AFTER if self._shape else END

    def _finish(self) -> None:
        state = self._state
        if state == EVENT:
            self._finish_event()
            return
        self._finish_bom()
        if state == START:
            raise ParseError(detail=EMPTY_BODY, offset=self._pos)
        if state != END:
            raise ParseError(detail=UNEXPECTED_END, offset=self._pos)
