"""Size and shape limits, checked while framing (before anything is allocated for an event)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .constants import MiB

#: orjson refuses documents nested deeper than 1024 levels; an event sits inside one
#: synthetic array when several are built at once, so the scanner may allow at most this.
MAX_DEPTH_CEILING = 1000


@dataclass(frozen=True)
class Limits:
    """Limits for one request body. The defaults are the Better Stack API's.

    * ``max_body``: decompressed body size in bytes (413 when exceeded).
    * ``max_compressed``: compressed body size in bytes, when a Content-Encoding is used (413).
    * ``max_event``: encoded size of one event, i.e. the bytes of its object/map (413).
    * ``max_depth``: nesting of objects/arrays (maps/arrays) in one event; the event
      itself is level 1 (406 when exceeded).
    * ``max_ratio``: optional cap on decompressed/compressed size, checked once the
      output passes 1 MiB (413); ``None`` disables it.
    """

    max_body: int = 20 * MiB
    max_compressed: int = 10 * MiB
    max_event: int = 1 * MiB
    max_depth: int = 128
    max_ratio: Optional[float] = None

    def __post_init__(self) -> None:
        for name in ("max_body", "max_compressed", "max_event", "max_depth"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"Limits.{name} must be a positive int, got {value!r}")
        if self.max_depth > MAX_DEPTH_CEILING:
            raise ValueError(f"Limits.max_depth must be <= {MAX_DEPTH_CEILING}")
        if self.max_ratio is not None and not self.max_ratio > 1:
            raise ValueError("Limits.max_ratio must be > 1 or None")


DEFAULT_LIMITS = Limits()
