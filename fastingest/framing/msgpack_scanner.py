"""MsgpackScanner: a MessagePack body that is one map or an array of maps.

Lifecycle (``constants.MSGPACK_STATES``)::

    START --map header--> EVENT --map complete--> END
    START --array header (n)--> ELEMS --map header--> EVENT --map complete--> ELEMS
                                ELEMS --n maps taken--> END      (n = 0: START -> END)

An event is walked item by item from the header table (``constants.MSGPACK_HEADERS``):
containers push their item count on a stack bounded by ``max_depth``, payloads are
skipped by their declared length. A declared length that cannot fit in ``max_event``
fails at its header, before any byte of it arrives; 0xc1 is refused where it stands;
anything else about the event's grammar is the builder's and the validator's to judge.
A header cut by a chunk boundary is resumed when the next chunk arrives.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

from .. import validate
from ..constants import (DATA_AFTER_BODY, EMPTY_BODY, EXPECTED_BODY_MSGPACK, EXPECTED_MAP,
                         LENGTH_PAST_END, MP_ARRAY, MP_MAP, MP_RESERVED, MSGPACK_HEADERS,
                         MSGPACK_STATES, RESERVED_BYTE, UNEXPECTED_END, event_too_large, too_deep)
from ..errors import IngestError, ParseError, PayloadTooLarge
from .base import ScannerBase, Src, numbered

START, ELEMS, EVENT, END = numbered(MSGPACK_STATES, "START ELEMS EVENT END")


def msgpack_header(src: Src, i: int, end: int) -> Optional[Tuple[int, int, int]]:
    """``(class, head, n)`` of the item at ``src[i]`` with its length or count field read
    (``constants.MSGPACK_HEADERS``), or None when ``end`` cuts that field off."""
    cls, head, n = MSGPACK_HEADERS[src[i]]
    if n < 0:
        if end - i < head:
            return None
        n = int.from_bytes(src[i + 1:i + 1 - n], "big")
    return cls, head, n


class MsgpackScanner(ScannerBase):
    """Resumable framer for one MessagePack body (see the module docstring)."""

    STATES = MSGPACK_STATES
    validate_event = staticmethod(validate.scan_msgpack_map)

    def __init__(self, max_event: int, max_depth: int, collect: bool = False) -> None:
        super().__init__(max_event, max_depth, collect)
        self._stack: List[int] = []   # items left in each open container of the event
        self._started = False         # the event's first header was read
        self._skip = 0                # payload bytes still to skip
        self._remaining = 0           # maps left in the top-level array
        self._top_hdr = 0             # body offset of the top-level array's header

    def _outside(self, src: Src, i: int, end: int, base: int) -> int:
        """The top-level item at ``src[i]``; the next index, or ``-i-1`` when its header
        is cut off and scanning must resume there."""
        state = self._state
        if state == START:
            header = msgpack_header(src, i, end)
            if header is None:
                return -i - 1
            cls, head, n = header
            if cls == MP_MAP:
                self._shape = False
                self._begin_event(base + i)
                return i
            if cls != MP_ARRAY:
                raise ParseError(detail=EXPECTED_BODY_MSGPACK, offset=base + i)
            self._shape = True
            self._top_hdr = base + i
            self._remaining = n
            self._state = ELEMS if n else END
            return i + head
        if state == ELEMS:
            if MSGPACK_HEADERS[src[i]][0] != MP_MAP:
                raise ParseError(detail=EXPECTED_MAP, offset=base + i)
            self._remaining -= 1
            self._begin_event(base + i)
            return i
        raise ParseError(detail=DATA_AFTER_BODY, offset=base + i)   # END

    def _scan_event(self, src: Src, i: int, end: int, base: int) -> int:
        ev = self._ev_start - base
        stack = self._stack
        while True:
            if self._skip:
                if end - i < self._skip:
                    self._skip -= end - i
                    return end
                i += self._skip
                self._skip = 0
            while stack and stack[-1] == 0:
                stack.pop()
            if not stack and self._started:
                self._emit(ev, i)
                self._reset_event()
                self._state = ELEMS if self._shape and self._remaining else END
                return i
            if i >= end:
                return i
            header = msgpack_header(src, i, end)
            if header is None:
                return i   # resume at this header when more bytes arrive
            cls, head, n = header
            if cls == MP_RESERVED:
                self._event_fault(src, ev, i, base, ParseError(detail=RESERVED_BYTE, offset=base + i))
            if stack:
                stack[-1] -= 1
            self._started = True
            if cls == MP_ARRAY or cls == MP_MAP:
                items = n * 2 if cls == MP_MAP else n
                if i + head + items - ev > self.max_event:   # at least a byte per item
                    self._event_fault(src, ev, i, base, None)
                if len(stack) >= self.max_depth:
                    self._event_fault(src, ev, i, base,
                                      ParseError(detail=too_deep(self.max_depth), offset=base + i))
                stack.append(items)
                i += head
            else:
                if i + head + n - ev > self.max_event:
                    self._event_fault(src, ev, i, base, None)
                i += head
                self._skip = n

    def _reset_event(self) -> None:
        self._stack = []
        self._started = False
        self._skip = 0

    def _event_fault(self, src: Src, ev: int, i: int, base: int,
                     exc: Optional[IngestError]) -> None:
        """The event fails at ``src[i]`` (``exc``; None: over ``max_event``), unless the
        validator finds an earlier error."""
        self._reset_event()
        earlier = self._locate(src, ev, i, base)
        if earlier is not None:
            raise earlier
        if exc is None:
            raise PayloadTooLarge(detail=event_too_large(self.max_event), offset=base + i)
        raise exc

    def _finish(self) -> None:
        state = self._state
        if state == EVENT:
            self._finish_event()
        elif state == START:
            if self._pos == 0:
                raise ParseError(detail=EMPTY_BODY, offset=0)
            raise ParseError(detail=UNEXPECTED_END, offset=self._scan_pos)
        elif state == ELEMS:
            raise ParseError(detail=LENGTH_PAST_END, offset=self._top_hdr)
