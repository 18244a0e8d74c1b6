"""What decoding returns: events (or their raw bytes) with their times and positions."""
from __future__ import annotations

from array import array
from typing import Any, Dict, List, Optional

from .errors import LineError


class _Batch:
    """Shared shape of :class:`Batch` and :class:`RawBatch`; ``_items`` names the list."""

    __slots__ = ("times_ns", "offsets", "lines", "errors")
    _items = ""
    times_ns: "array[int]"
    offsets: "array[int]"
    lines: Optional["array[int]"]
    errors: List[LineError]

    def _columns(self, times_ns: Optional["array[int]"], offsets: Optional["array[int]"],
                 lines: Optional["array[int]"], errors: Optional[List[LineError]]) -> None:
        self.times_ns = array("q") if times_ns is None else times_ns
        self.offsets = array("q") if offsets is None else offsets
        self.lines = lines
        self.errors = [] if errors is None else errors

    def __len__(self) -> int:
        return len(getattr(self, self._items))

    def __bool__(self) -> bool:
        return len(self) > 0 or bool(self.errors)

    def extend(self, other: "_Batch") -> None:
        """Append a later batch of the same body (used to gather streamed batches)."""
        getattr(self, self._items).extend(getattr(other, self._items))
        self.times_ns.extend(other.times_ns)
        self.offsets.extend(other.offsets)
        if other.lines is not None:
            if self.lines is None:
                self.lines = array("q")
            self.lines.extend(other.lines)
        self.errors.extend(other.errors)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} events={len(self)} errors={len(self.errors)}>"


class Batch(_Batch):
    """Decoded events in body order.

    * ``events``: list of dicts (MessagePack maps may hold ``msgpack.Timestamp``,
      ``msgpack.ExtType`` and ``bytes`` values).
    * ``times_ns``: ``array('q')``, the event time of each event in int64 ns since the
      epoch (UTC): its ``dt`` when parseable, else the reception time.
    * ``offsets``: ``array('q')``, the body offset (decompressed) of each event.
    * ``lines``: ``array('q')`` of 1-based NDJSON line numbers, or None for other formats.
    * ``errors``: with ``errors="collect"``, one :class:`~fastingest.errors.LineError`
      per rejected NDJSON line.
    """

    __slots__ = ("events",)
    _items = "events"
    events: List[Dict[str, Any]]

    def __init__(
        self,
        items: Optional[List[Dict[str, Any]]] = None,
        times_ns: Optional["array[int]"] = None,
        offsets: Optional["array[int]"] = None,
        lines: Optional["array[int]"] = None,
        errors: Optional[List[LineError]] = None,
    ) -> None:
        self.events = [] if items is None else items
        self._columns(times_ns, offsets, lines, errors)

    def __len__(self) -> int:
        return len(self.events)


class RawBatch(_Batch):
    """Events as their original bytes (no objects built); otherwise like :class:`Batch`."""

    __slots__ = ("raw",)
    _items = "raw"
    raw: List[bytes]

    def __init__(
        self,
        items: Optional[List[bytes]] = None,
        times_ns: Optional["array[int]"] = None,
        offsets: Optional["array[int]"] = None,
        lines: Optional["array[int]"] = None,
        errors: Optional[List[LineError]] = None,
    ) -> None:
        self.raw = [] if items is None else items
        self._columns(times_ns, offsets, lines, errors)

    def __len__(self) -> int:
        return len(self.raw)
