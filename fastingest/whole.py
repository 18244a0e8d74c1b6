"""A whole uncompressed body held in memory: what feeding it to a scanner in one piece
gives, without the streaming plumbing; ``decode()``/``split()`` come here once the body
is inflated and within ``max_body``.

:func:`decode_whole` tries the one-object shortcut first (``oneobject``), then frames
the body with its format's scanner and builds it (``build.take``). A body over
``max_body`` is framed and built only up to the limit, so that an earlier fault wins over
the 413 exactly as when it is streamed.

``fastingest._whole`` is the compiled twin (same names, same answers).
"""
from __future__ import annotations

import time
from array import array
from typing import Optional, Union

from .batch import Batch, RawBatch
from .build import Taken, take
from .constants import KIND_NDJSON, body_too_large
from .errors import PayloadTooLarge
from .formats import collect_mode, media_kind
from .framing import Scanner
from .limits import Limits
from .oneobject import one_object
from .timestamps import event_times

_Src = Union[bytes, bytearray, memoryview]


def decode_body(body: _Src, kind: int, max_body: int, max_event: int, max_depth: int,
                received_ns: int, collect: bool, raw: bool) -> Taken:
    """``build.take``'s columns for a whole body of format ``kind``."""
    over = len(body) > max_body
    if over:   # the bytes within the limit come first: an earlier fault wins
        body = memoryview(body)[:max_body]
    scanner = Scanner(kind, max_event, max_depth, collect)
    items, times, offsets, lines, line_errors = take(
        scanner.feed(body), kind, max_depth, received_ns, collect, raw)
    if over:
        raise PayloadTooLarge(detail=body_too_large(max_body), offset=max_body)
    rest = take(scanner.finish(), kind, max_depth, received_ns, collect, raw)
    return items, times, offsets, lines, line_errors + rest[4]


def decode_whole(body: _Src, content_type: Union[str, bytes, None], limits: Limits,
                 received_ns: Optional[int], errors: str, raw: bool) -> Union[Batch, RawBatch]:
    """decode()/split() of an uncompressed body held in memory: a Batch (RawBatch)."""
    kind = media_kind(content_type)
    collect = collect_mode(errors, kind)
    received = time.time_ns() if received_ns is None else int(received_ns)
    if not raw and not collect and type(body) is bytes and len(body) <= limits.max_body:
        one = one_object(body, kind, limits.max_event, limits.max_depth)
        if one is not None:
            event, start = one
            events = [event]
            return Batch(events, event_times(events, received), array("q", [start]),
                         array("q", [1]) if kind == KIND_NDJSON else None, [])
    items, times, offsets, lines, line_errors = decode_body(
        body, kind, limits.max_body, limits.max_event, limits.max_depth, received, collect, raw)
    return (RawBatch if raw else Batch)(items, times, offsets, lines, line_errors)


__all__ = ["decode_body", "decode_whole"]
