"""The builders, with the options fastingest decodes with, and the slow path both
kernel sets share: building a batch's events one by one after a one-call build failed,
so that the validator can name the first bad byte.
"""
from __future__ import annotations

from array import array
from typing import Any, List, Tuple

import msgpack
import orjson

from .constants import KIND_MSGPACK
from .errors import LineError, ParseError


def unpack_msgpack(data: Any) -> Any:
    """msgpack with the options fastingest decodes with (str keys/values, Timestamp for ext -1)."""
    return msgpack.unpackb(data, raw=False, strict_map_key=True, timestamp=0, use_list=True)


def one_by_one(frames: Any, kind: int, validator: Any, max_depth: int,
               collect: bool) -> Tuple[List[Any], "array[int]", Any, List[LineError]]:
    """``(events, offsets, lines, line_errors)`` building each event alone.

    Raises the first bad event's ParseError (located by ``validator``, the kernel set's
    validate module) unless ``collect`` (NDJSON), where each bad line becomes a
    LineError and the good events are kept.
    """
    loads = unpack_msgpack if kind == KIND_MSGPACK else orjson.loads
    offsets = frames.offsets()
    lines = frames.line_numbers()
    events: List[Any] = []
    keep = []
    line_errors: List[LineError] = []
    for i in range(len(frames)):
        data = frames.event_bytes(i)
        try:
            events.append(loads(data))
            keep.append(i)
            continue
        except Exception as exc:
            error = locate(data, offsets[i], kind, validator, max_depth, exc)
        if lines is not None:
            error.line = lines[i]
        if not collect:
            raise error
        line_errors.append(LineError(error.line or 0, error.offset or 0, error.detail or "", error.status))
    return (events, array("q", [offsets[i] for i in keep]),
            None if lines is None else array("q", [lines[i] for i in keep]), line_errors)


def locate(data: bytes, offset: int, kind: int, validator: Any, max_depth: int,
           exc: BaseException) -> ParseError:
    """The precise error in one event the builder rejected (``offset``: its body offset)."""
    try:
        if kind == KIND_MSGPACK:
            validator.scan_msgpack_map(data, 0, len(data), max_depth, offset)
        else:
            validator.scan_json_object(data, 0, len(data), max_depth, offset)
    except ParseError as located:
        return located
    # The validator accepts what the builder refused: name the builder's reason.
    lib = "msgpack" if kind == KIND_MSGPACK else "orjson"
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ParseError(detail=f"{lib}: {reason}", offset=offset)


__all__ = ["locate", "one_by_one", "unpack_msgpack"]
