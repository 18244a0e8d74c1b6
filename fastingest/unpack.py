"""The MessagePack object builder: what ``fastingest._unpack`` (the compiled twin) builds,
written with msgpack-python.

Both twins build what ``msgpack.unpackb(raw=False, strict_map_key=True, timestamp=0)``
builds, and refuse what it refuses. The compiled one is fastingest's own builder (one
pass that frames, checks and builds, keys from a cache, each event's ``dt`` read as it is
built); this one is its reference, and the one ``FASTINGEST_PUREPYTHON=1`` runs.

Neither decides an error: a refused body or event is decoded on the general path
(scanner, validator), which says what and where.
"""
from __future__ import annotations

from array import array
from typing import Any, List, Optional, Tuple

from .builders import unpack_msgpack
from .constants import KIND_MSGPACK
from .errors import IngestError
from .framing import Scanner
from .oneobject import nesting_within
from .timestamps import event_times, parse_dt

__all__ = ["unpack_body", "unpack_map"]


def unpack_map(data: bytes, max_depth: int = 1000) -> Tuple[Any, Optional[int]]:
    """``(event, time_ns or None)`` for the map that is exactly ``data``: the event as
    ``msgpack.unpackb`` builds it, its time from its ``dt``. ValueError when msgpack
    refuses it, when it is not one map, or when it nests deeper than ``max_depth``."""
    try:
        event = unpack_msgpack(data)
    except Exception as exc:
        raise ValueError(f"msgpack refuses it: {exc}") from None
    if type(event) is not dict or not nesting_within(event, max_depth):
        raise ValueError("not one map within the nesting limit")
    return event, parse_dt(event["dt"]) if "dt" in event else None


def unpack_body(body: bytes, max_event: int, max_depth: int,
                received_ns: int) -> Optional[Tuple[List[Any], "array[int]", "array[int]"]]:
    """``(events, times_ns, offsets)`` of a whole MessagePack body (one map or an array of
    maps), or None when decoding it fails (then the general path says why)."""
    scanner = Scanner(KIND_MSGPACK, max_event, max_depth)
    events: List[Any] = []
    offsets = array("q")
    try:
        for frames in (scanner.feed(body), scanner.finish()):
            if frames.error is not None:
                return None
            for i in range(len(frames)):
                events.append(unpack_map(frames.event_bytes(i), max_depth)[0])
            offsets.extend(frames.offsets())
    except (IngestError, ValueError):
        return None
    return events, event_times(events, received_ns), offsets
