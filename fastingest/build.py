"""Decode framed events when the one-call build failed: event by event, errors located.

The kernels (``framing.take`` and its Cython twin) hand every batch of framed events to
orjson / msgpack in one call; only when that call raises do they come here, where each
event is built alone and the validator names the first bad byte.
"""
from __future__ import annotations

from array import array
from typing import Any, List, Tuple

import msgpack
import orjson

from .errors import LineError, ParseError
from .formats import KIND_MSGPACK


def unpack_msgpack(data: Any) -> Any:
    """msgpack with the options fastingest decodes with (str keys/values, Timestamp for ext -1)."""
    return msgpack.unpackb(data, raw=False, strict_map_key=True, timestamp=0, use_list=True)


def one_by_one(frames: Any, kind: int, validate: Any, max_depth: int,
               collect: bool) -> Tuple[List[Any], "array[int]", Any, List[LineError]]:
    """``(events, offsets, lines, line_errors)`` building each event alone.

    Raises the first bad event's ParseError unless ``collect`` (NDJSON), where each bad
    line becomes a LineError and the good events are kept.
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
            error = locate(data, offsets[i], kind, validate, max_depth, exc)
        if lines is not None:
            error.line = lines[i]
        if not collect:
            raise error
        line_errors.append(LineError(error.line or 0, error.offset or 0, error.detail or "", error.status))
    return (events, array("q", [offsets[i] for i in keep]),
            None if lines is None else array("q", [lines[i] for i in keep]), line_errors)


def locate(data: bytes, offset: int, kind: int, validate: Any, max_depth: int, exc: BaseException) -> ParseError:
    """The precise error in one event the builder rejected (``offset``: its body offset)."""
    try:
        if kind == KIND_MSGPACK:
            validate.scan_msgpack_map(data, 0, len(data), max_depth, offset)
        else:
            validate.scan_json_object(data, 0, len(data), max_depth, offset)
    except ParseError as located:
        return located
    # The validator accepts what the builder refused: name the builder's reason.
    lib = "msgpack" if kind == KIND_MSGPACK else "orjson"
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ParseError(detail=f"{lib}: {reason}", offset=offset)
