"""Decode the framed events: one orjson / msgpack call per batch, errors located exactly.

The framing layer has already checked shape, sizes and depth, so the whole batch is
handed to the object builder at once (one call, no per-event overhead). Only when that
call fails do we go event by event, and then the validator names the byte.
"""
from __future__ import annotations

import gc
from array import array
from typing import Any, Callable, List, Optional, Tuple

import msgpack
import orjson

from .errors import LineError, ParseError
from .framing import KIND_MSGPACK


def unpack_msgpack(data: Any) -> Any:
    """msgpack with the options fastingest decodes with (str keys/values, Timestamp for ext -1)."""
    return msgpack.unpackb(data, raw=False, strict_map_key=True, timestamp=0, use_list=True)


def _paused_gc(loads: Callable[[Any], Any], doc: Any) -> Any:
    # Tens of thousands of fresh containers trigger repeated cyclic collections that
    # cost 30-50% of a large decode; none of them can be garbage, so defer the GC to
    # after the batch (one young-generation pass instead of many full ones).
    if gc.isenabled():
        gc.disable()
        try:
            return loads(doc)
        finally:
            gc.enable()
    return loads(doc)


def build_events(frames, kind: int, kernels, max_depth: int,
                 collect: bool) -> Tuple[List[Any], array, Optional[array], List[LineError]]:
    """Objects for every event in ``frames``: ``(events, offsets, lines, line_errors)``.

    Raises the first event's :class:`ParseError` unless ``collect`` (NDJSON), where bad
    lines are returned as :class:`LineError` and the good events kept.
    """
    offsets = frames.offsets()
    lines = frames.line_numbers()
    if not len(frames):
        return [], offsets, lines, []
    loads = unpack_msgpack if kind == KIND_MSGPACK else orjson.loads
    doc = frames.msgpack_document() if kind == KIND_MSGPACK else frames.json_document()
    try:
        events = _paused_gc(loads, doc)
    except Exception:
        return _one_by_one(frames, kind, kernels, max_depth, collect, loads, offsets, lines)
    return events, offsets, lines, []


def _one_by_one(frames, kind, kernels, max_depth, collect, loads, offsets, lines):
    events: List[Any] = []
    keep = array("q")
    line_errors: List[LineError] = []
    for i in range(len(frames)):
        data = frames.event_bytes(i)
        try:
            events.append(loads(data))
            keep.append(i)
            continue
        except Exception as exc:
            error = locate(data, offsets[i], kind, kernels, max_depth, exc)
        if lines is not None:
            error.line = lines[i]
        if not collect:
            raise error
        line_errors.append(LineError(error.line or 0, error.offset or 0, error.detail or "", error.status))
    return (events, array("q", [offsets[i] for i in keep]),
            None if lines is None else array("q", [lines[i] for i in keep]), line_errors)


def locate(data: bytes, offset: int, kind: int, kernels, max_depth: int, exc: BaseException) -> ParseError:
    """The precise error in one event the builder rejected (``offset``: its body offset)."""
    validate = kernels.validate
    try:
        if kind == KIND_MSGPACK:
            validate.scan_msgpack_map(data, 0, len(data), max_depth, offset)
        else:
            validate.scan_json_object(data, 0, len(data), max_depth, offset)
    except ParseError as located:
        return located
    # The validator accepts what the builder refused: name the builder's reason.
    lib = "msgpack" if kind == KIND_MSGPACK else "orjson"
    return ParseError(detail=f"{lib}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                      offset=offset)

