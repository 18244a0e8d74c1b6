"""Building: framed events to objects (or, on the raw path, to bytes with their time).

:func:`take` turns one :class:`~fastingest.framing.Frames` into a batch's columns:

* objects: every event built by orjson / msgpack in runs of about
  ``constants.BUILD_RUN_BYTES`` (one call per run, the events wrapped in one array),
  with the cyclic GC paused meanwhile; then each event's time from its ``dt``;
* raw (:func:`split_frames`): each event validated in full and its top-level ``dt``
  read, its original bytes kept, no objects kept.

Only when a one-call build fails are events built one by one
(:func:`~fastingest.builders.one_by_one`), where the validator names the first bad byte. Then the fault that ended
the frames, if any, is raised: it comes after all of their events.

``fastingest._build`` is the compiled twin (same names, same answers; it reads ``dt``
with a shallow scan where this reference decodes the event).
"""
from __future__ import annotations

import gc
from array import array
from typing import Any, List, Optional, Tuple

import msgpack
import orjson

from . import validate
from .builders import one_by_one, unpack_msgpack
from .constants import BUILD_RUN_BYTES, KIND_MSGPACK
from .errors import LineError, ParseError
from .framing import Frames
from .timestamps import event_times, parse_dt

#: ``(items, times_ns, offsets, lines, line_errors)`` of a batch of events.
Taken = Tuple[List[Any], "array[int]", "array[int]", Optional["array[int]"], List[LineError]]


def take(frames: Any, kind: int, max_depth: int, received_ns: int, collect: bool, raw: bool) -> Taken:
    """``(items, times_ns, offsets, lines, line_errors)`` for the events of ``frames``
    (objects, or their bytes when ``raw``); then raises the fault that ended them."""
    items: List[Any]
    line_errors: List[LineError]
    if not len(frames):
        items, times, offsets, lines, line_errors = [], array("q"), array("q"), frames.line_numbers(), []
    elif raw:
        items, times, offsets, lines, line_errors = split_frames(frames, kind, max_depth, received_ns, collect)
    else:
        try:
            items = build_events(frames, kind)
            offsets, lines, line_errors = frames.offsets(), frames.line_numbers(), []
        except Exception:
            items, offsets, lines, line_errors = one_by_one(frames, kind, validate, max_depth, collect)
        times = event_times(items, received_ns)
    if frames.line_errors:
        line_errors = sorted(line_errors + frames.line_errors, key=lambda e: e.offset)
    if frames.error is not None:
        raise frames.error
    return items, times, offsets, lines, line_errors


def build_events(frames: Frames, kind: int) -> List[Any]:
    """Every framed event, built in runs of about BUILD_RUN_BYTES (one orjson / msgpack
    call each) with the cyclic GC paused meanwhile: tens of thousands of fresh
    containers would otherwise trigger repeated collections, and none of them can be
    garbage yet."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        events: List[Any] = []
        lo, n = 0, len(frames)
        sizes = [e - s for s, e in zip(frames.starts, frames.ends)]
        while lo < n:
            hi, size = lo, 0
            while hi < n and (size < BUILD_RUN_BYTES or hi == lo):
                size += sizes[hi]
                hi += 1
            if kind == KIND_MSGPACK:
                events.extend(unpack_msgpack(frames.msgpack_document(lo, hi)))
            else:
                events.extend(orjson.loads(frames.json_document(lo, hi)))
            lo = hi
        return events
    finally:
        if enabled:
            gc.enable()


def split_frames(frames: Any, kind: int, max_depth: int, received_ns: int, collect: bool) -> Taken:
    """Validate each event fully and read its top-level ``dt``, building no objects to keep.

    Returns ``(raw, times_ns, offsets, lines, line_errors)``; raises the first event's
    ParseError unless ``collect``. This reference reads ``dt`` by decoding the event, so
    the compiled shallow scan is checked against the decoder's own answer.
    """
    offsets = frames.offsets()
    lines = frames.line_numbers()
    raw: List[bytes] = []
    times = array("q")
    keep = []
    line_errors: List[LineError] = []
    for i in range(len(frames)):
        data = frames.event_bytes(i)
        try:
            if kind == KIND_MSGPACK:
                validate.scan_msgpack_map(data, 0, len(data), max_depth, offsets[i])
                event = msgpack.unpackb(data, raw=False, strict_map_key=True, timestamp=0)
            else:
                validate.scan_json_object(data, 0, len(data), max_depth, offsets[i])
                event = orjson.loads(data)
        except ParseError as exc:
            if lines is not None:
                exc.line = lines[i]
            if not collect:
                raise
            line_errors.append(LineError(exc.line or 0, exc.offset or 0, exc.detail or "", exc.status))
            continue
        t = parse_dt(event["dt"]) if "dt" in event else None
        times.append(received_ns if t is None else t)
        raw.append(data)
        keep.append(i)
    if line_errors:
        offsets = array("q", [offsets[i] for i in keep])
        if lines is not None:
            lines = array("q", [lines[i] for i in keep])
    return raw, times, offsets, lines, line_errors


__all__ = ["Taken", "build_events", "split_frames", "take"]
