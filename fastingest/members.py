"""A shallow read of an event's top-level members, for the raw path (the pure twin).

:func:`top_members` walks a JSON object the validator accepted, without building it:
for each of the wanted member names, where its value lies and what kind of value it is
(``constants.JSON_*``), and how many members the object has. A protocol that must look
at a few members of each event (Samsara: ``timestamp``, ``sourceId``, ``eventName``,
``receivedAt``, ``publishedAt``) can then check and enrich the event's text without
decoding it.

Where a shallow read could be wrong it says so (None): a key written with an escape
(``"time\\u0073tamp"`` is ``timestamp`` once decoded) or a wanted name given twice (the
decoded object keeps the last value, at the first one's place). The caller then decodes
that event.

``fastingest._members`` is the compiled twin (same names, same answers).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from .constants import (JSON_ARRAY, JSON_FALSE, JSON_INT, JSON_MISSING, JSON_NULL, JSON_NUMBER,
                        JSON_OBJECT, JSON_STRING, JSON_TRUE)

__all__ = ["Member", "top_members"]

#: ``(kind, start, end)`` of a member's value in the event's bytes; (JSON_MISSING, 0, 0)
#: when the event has no such member.
Member = Tuple[int, int, int]

_WHITESPACE = b" \t\r\n"
_INT_MIN, _UINT_MAX = -(1 << 63), (1 << 64) - 1


def _string_end(data: bytes, pos: int) -> Tuple[int, bool]:
    """Index past the string whose opening quote is at ``pos``, and whether it has an
    escape."""
    escaped = False
    pos += 1
    while True:
        c = data[pos]
        if c == 0x22:
            return pos + 1, escaped
        if c == 0x5C:
            escaped = True
            pos += 2
        else:
            pos += 1


def _value_end(data: bytes, pos: int) -> int:
    """Index past the (valid) value starting at ``pos``."""
    c = data[pos]
    if c == 0x22:
        return _string_end(data, pos)[0]
    if c == 0x7B or c == 0x5B:
        depth = 0
        while True:
            c = data[pos]
            if c == 0x22:
                pos = _string_end(data, pos)[0]
                continue
            if c == 0x7B or c == 0x5B:
                depth += 1
            elif c == 0x7D or c == 0x5D:
                depth -= 1
                if depth == 0:
                    return pos + 1
            pos += 1
    while pos < len(data) and data[pos] not in b",}] \t\r\n":
        pos += 1
    return pos


def _kind(data: bytes, start: int, end: int) -> int:
    c = data[start]
    if c == 0x22:
        return JSON_STRING
    if c == 0x7B:
        return JSON_OBJECT
    if c == 0x5B:
        return JSON_ARRAY
    if c == 0x6E:
        return JSON_NULL
    if c == 0x74:
        return JSON_TRUE
    if c == 0x66:
        return JSON_FALSE
    token = data[start:end]
    if b"." in token or b"e" in token or b"E" in token:
        return JSON_NUMBER
    return JSON_INT if _INT_MIN <= int(token) <= _UINT_MAX else JSON_NUMBER


def _skip(data: bytes, pos: int) -> int:
    while data[pos] in _WHITESPACE:
        pos += 1
    return pos


def top_members(data: bytes, names: Sequence[bytes]) -> Optional[Tuple[int, List[Member]]]:
    """``(member count, [(kind, start, end) for each of names])`` of the valid JSON
    object ``data``; None where a shallow read could be wrong (module docstring)."""
    found: List[Member] = [(JSON_MISSING, 0, 0)] * len(names)
    pos = _skip(data, 0) + 1   # past '{'
    count = 0
    pos = _skip(data, pos)
    if data[pos] == 0x7D:
        return 0, found
    while True:
        key_end, escaped = _string_end(data, pos)
        if escaped:
            return None
        key = data[pos + 1:key_end - 1]
        start = _skip(data, _skip(data, key_end) + 1)   # past ':'
        end = _value_end(data, start)
        count += 1
        if key in names:
            i = names.index(key)
            if found[i][0] != JSON_MISSING:
                return None
            found[i] = (_kind(data, start, end), start, end)
        pos = _skip(data, end)
        if data[pos] == 0x7D:
            return count, found
        pos = _skip(data, pos + 1)   # past ','
