"""The one-object shortcut: a small body that is plainly one JSON object or MessagePack
map (most tiny requests are) is built by one ``orjson.loads`` (``msgpack.unpackb``)
without a scanner, its frames and their arrays.

Every condition tested here is a sufficient one; when any fails the answer is None and
the general path decides, errors included, so the shortcut never changes an answer:

* the whole body is within ``max_event`` (so is the event) and ``ONE_OBJECT_MAX``;
* JSON: after whitespace it starts with ``{``, and it holds no more ``{``/``[`` bytes
  than ``max_depth`` (an upper bound of the nesting); NDJSON: it starts with ``{`` and is
  one line (a final newline allowed);
* the builder's own check that the body is one value (the general path builds its events
  with the same builder), and the value is an object / map;
* MessagePack: the map built nests no deeper than ``max_depth`` (msgpack's own
  nesting limit is not ours; walking the map built is cheaper than validating).

``fastingest._oneobject`` is the compiled twin (same names, same answers).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import orjson

from .builders import unpack_msgpack
from .constants import KIND_MSGPACK, KIND_NDJSON, MP_MAP, MSGPACK_HEADERS, ONE_OBJECT_MAX

LBRACE, NEWLINE = b"{\n"
JSON_SPACE = b" \t\r\n"


def one_object(body: bytes, kind: int, max_event: int, max_depth: int) -> Optional[Tuple[Any, int]]:
    """``(event, offset)`` when ``body`` is plainly one small object (see the module
    docstring), else None."""
    n = len(body)
    if n > ONE_OBJECT_MAX or n > max_event or n == 0:
        return None
    if kind == KIND_MSGPACK:
        if MSGPACK_HEADERS[body[0]][0] != MP_MAP:
            return None
        try:
            event = unpack_msgpack(body)
        except Exception:
            return None
        if type(event) is not dict or not nesting_within(event, max_depth):
            return None
        return event, 0
    end = n
    if kind == KIND_NDJSON:
        start = 0
        if body[n - 1] == NEWLINE:
            end = n - 1   # the line's own end; any other newline means more lines
        if body.find(b"\n", 0, end) >= 0:
            return None
    else:
        start = n - len(body.lstrip(JSON_SPACE))
    if start >= end or body[start] != LBRACE:
        return None
    if body.count(b"{", 0, end) + body.count(b"[", 0, end) > max_depth:
        return None
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(event) is not dict:
        return None
    return event, start


def nesting_within(container: Any, levels: int) -> bool:
    """Whether the dicts and lists of ``container`` (a dict or list, itself one level)
    nest at most ``levels`` deep."""
    todo = [(container, levels)]
    while todo:
        item, left = todo.pop()
        if left < 1:
            return False
        for value in (item.values() if type(item) is dict else item):
            if type(value) is dict or type(value) is list:
                todo.append((value, left - 1))
    return True


__all__ = ["nesting_within", "one_object"]
