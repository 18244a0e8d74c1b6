"""JsonConcatScanner: JSON objects one after another, as Splunk HEC's event endpoint
takes them (``{...}{...}``; splunk-handler writes no separator).

Lifecycle (``constants.JSON_CONCAT_STATES``)::

    START --'{'--> EVENT --'}'--> AFTER --'{'--> EVENT
    START --EF BB BF (at offset 0)--> BOM1 --> BOM2 --> START

Whitespace (space, tab, CR, LF) may come before, between and after the objects. Any
other byte outside an object is a 406 "expected an object" at that byte; the body's
end inside an object is the first grammar error in it, else "unexpected end of data".
A body without objects is zero events: what that means is the protocol's to say
(HEC's "No data"). Objects are not wrapped in anything, so ``is_array`` stays None.
"""
from __future__ import annotations

from ..constants import EXPECTED_OBJECT, JSON_CONCAT_STATES
from ..errors import ParseError
from .base import numbered
from .json_events import LBRACE, JsonEventScanner

EVENT, AFTER = numbered(JSON_CONCAT_STATES, "EVENT AFTER")


class JsonConcatScanner(JsonEventScanner):
    """Resumable framer for a body of concatenated JSON objects (see the module docstring)."""

    STATES = JSON_CONCAT_STATES

    def _token(self, c: int, i: int, base: int) -> int:
        """The byte ``c`` at ``src[i]``, outside every object: the next object's '{'."""
        if c == LBRACE:
            self._begin_event(base + i)
            return i
        raise ParseError(detail=EXPECTED_OBJECT, offset=base + i)

    def _event_done(self, start: int, end: int) -> None:
        self._emit(start, end)
        self._state = AFTER

    def _finish(self) -> None:
        if self._state == EVENT:
            self._finish_event()
            return
        self._finish_bom()
