"""Walk one whole JSON document in memory without building it: OTLP JSON and Loki JSON.

Those bodies are one object whose events sit a few levels down
(``resourceLogs[].scopeLogs[].logRecords[]``, ``streams[].values[]``). Building the whole
document would cost memory in proportion to its events; instead :class:`Document`
validates it once with the grammar validator (the compiled one when built: exactly what
orjson accepts, with the offset of the first fault, no objects), then hands out the byte
spans of members and elements, and builds only what the reader asks for: one record,
one resource, one stream's labels at a time.
"""
from __future__ import annotations

import re
from typing import Any, Iterator, List, Tuple, Union

import orjson

from . import _kernels
from . import shipping as S
from .errors import ParseError

_Buffer = Union[bytes, bytearray]

_WS = re.compile(rb"[ \t\r\n]*")
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.S)   # after the opening quote (unrolled)
_TOKEN = re.compile(rb'["\[\]{}]')
_SCALAR = re.compile(rb"[^,\]}\s]*")
_LBRACE, _RBRACE, _LBRACKET, _RBRACKET, _QUOTE, _COMMA = b"{}[]\","

Member = Tuple[str, int, int]
"""``(key, start, end)``: a member's decoded key and its value's span."""


class Document:
    """One JSON object held whole, validated at construction (ParseError otherwise).

    ``extra_depth`` is added to ``max_depth`` for the levels above the events (the
    document's own structure), so every event may nest ``max_depth`` deep.
    """

    __slots__ = ("buf", "root", "_scan", "_depth")

    def __init__(self, buf: _Buffer, max_depth: int, extra_depth: int) -> None:
        self.buf = buf
        end = len(buf)
        start = _WS.match(buf, 0).end()   # type: ignore[union-attr]
        if start == end or buf[start] != _LBRACE:
            raise ParseError(detail=S.EXPECTED_OBJECT_AT, offset=start)
        self._scan = _kernels.active.validate.scan_json_object
        self._depth = max_depth + extra_depth
        stop = self._scan(buf, start, end, self._depth)
        rest = _WS.match(buf, stop).end()   # type: ignore[union-attr]
        if rest != end:
            raise ParseError(detail="unexpected data after the document", offset=rest)
        self.root = start

    # -- spans ------------------------------------------------------------------------------

    def skip(self, i: int) -> int:
        """The end of the (valid) value starting at ``i``. An object is jumped over by the
        grammar validator (compiled when built) in one call; an array's brackets are
        matched here, each object in it jumped over likewise."""
        buf = self.buf
        c = buf[i]
        if c == _QUOTE:
            return _STRING_REST.match(buf, i + 1).end()   # type: ignore[union-attr]
        if c == _LBRACE:
            end: int = self._scan(buf, i, len(buf), self._depth)
            return end
        if c != _LBRACKET:
            return _SCALAR.match(buf, i).end()   # type: ignore[union-attr]
        depth = 0
        j = i
        while True:
            m = _TOKEN.search(buf, j)
            assert m is not None   # the document is valid
            at = m.start()
            c = buf[at]
            if c == _QUOTE:
                j = _STRING_REST.match(buf, at + 1).end()   # type: ignore[union-attr]
                continue
            if c == _LBRACE:
                j = self._scan(buf, at, len(buf), self._depth)
                continue
            depth += 1 if c == _LBRACKET else -1
            j = at + 1
            if depth == 0:
                return j

    def members(self, i: int) -> List[Member]:
        """The members of the object at ``i`` (ParseError if it is not an object)."""
        buf = self.buf
        if buf[i] != _LBRACE:
            raise ParseError(detail=S.EXPECTED_OBJECT_AT, offset=i)
        out: List[Member] = []
        j = _WS.match(buf, i + 1).end()   # type: ignore[union-attr]
        if buf[j] == _RBRACE:
            return out
        while True:
            kend = _STRING_REST.match(buf, j + 1).end()   # type: ignore[union-attr]
            raw = buf[j + 1:kend - 1]
            key = orjson.loads(buf[j:kend]) if b"\\" in raw else raw.decode("utf-8")
            j = _WS.match(buf, kend).end()   # type: ignore[union-attr]   # at ':'
            j = _WS.match(buf, j + 1).end()   # type: ignore[union-attr]
            vend = self.skip(j)
            out.append((key, j, vend))
            j = _WS.match(buf, vend).end()   # type: ignore[union-attr]
            if buf[j] != _COMMA:
                return out
            j = _WS.match(buf, j + 1).end()   # type: ignore[union-attr]

    def elements(self, i: int) -> Iterator[Tuple[int, int]]:
        """The spans of the elements of the array at ``i`` (ParseError if not an array)."""
        buf = self.buf
        if buf[i] != _LBRACKET:
            raise ParseError(detail=S.EXPECTED_ARRAY_AT, offset=i)
        j = _WS.match(buf, i + 1).end()   # type: ignore[union-attr]
        if buf[j] == _RBRACKET:
            return
        while True:
            end = self.skip(j)
            yield j, end
            j = _WS.match(buf, end).end()   # type: ignore[union-attr]
            if buf[j] != _COMMA:
                return
            j = _WS.match(buf, j + 1).end()   # type: ignore[union-attr]

    # -- values -----------------------------------------------------------------------------

    def load(self, a: int, b: int) -> Any:
        """Build the value ``buf[a:b]``."""
        return orjson.loads(memoryview(self.buf)[a:b])

    def is_null(self, i: int) -> bool:
        return self.buf[i] == 0x6E   # 'n'

    def text(self, a: int, b: int) -> str:
        """The value's original text (e.g. a number as written)."""
        return bytes(self.buf[a:b]).decode("utf-8")


def last(members: List[Member], *names: str) -> Tuple[int, int]:
    """The span of the last member called one of ``names`` (duplicate keys: the last
    wins), or ``(-1, -1)``."""
    found = (-1, -1)
    for key, a, b in members:
        if key in names:
            found = (a, b)
    return found


__all__ = ["Document", "Member", "last"]
