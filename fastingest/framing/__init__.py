"""Framing: find each event's byte span in a body, resumably, with the size checks.

One scanner per format, each holding only its own states (``constants.*_STATES``):

* :class:`JsonScanner` (``json_scanner``): one object or an array of objects;
* :class:`NdjsonScanner` (``ndjson_scanner``): one object per line;
* :class:`JsonConcatScanner` (``json_concat_scanner``): objects one after another;
* :class:`MsgpackScanner` (``msgpack_scanner``): one map or an array of maps.

:data:`SCANNERS` maps a body format (``constants.KIND_*``) to its scanner, and
:func:`Scanner` makes the one for a format. Feeding a scanner chunks answers
:class:`Frames`: the spans of the events each chunk completed (``base``).

This package is the pure-Python twin; ``fastingest.framing._framing`` is the compiled
one, exporting the same names with the same answers (``fastingest._kernels`` picks one).
"""
from __future__ import annotations

from typing import Dict, Type

from ..constants import KIND_JSON, KIND_JSON_CONCAT, KIND_MSGPACK, KIND_NDJSON
from .base import Frames, ScannerBase
from .json_concat_scanner import JsonConcatScanner
from .json_scanner import JsonScanner
from .msgpack_scanner import MsgpackScanner
from .ndjson_scanner import NdjsonScanner

#: The scanner of each body format.
SCANNERS: Dict[int, Type[ScannerBase]] = {
    KIND_JSON: JsonScanner,
    KIND_NDJSON: NdjsonScanner,
    KIND_MSGPACK: MsgpackScanner,
    KIND_JSON_CONCAT: JsonConcatScanner,
}


def Scanner(kind: int, max_event: int, max_depth: int, collect: bool = False) -> ScannerBase:
    """A new scanner for a body of format ``kind`` (``collect``: NDJSON's errors="collect")."""
    try:
        scanner = SCANNERS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}") from None
    return scanner(max_event, max_depth, collect)


__all__ = ["Frames", "JsonConcatScanner", "JsonScanner", "MsgpackScanner", "NdjsonScanner",
           "SCANNERS", "Scanner", "ScannerBase"]
