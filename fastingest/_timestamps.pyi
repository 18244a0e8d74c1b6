"""Type stub for the compiled twin of :mod:`fastingest.timestamps` (same names, same answers)."""
from array import array
from typing import Any, Iterable, Optional, Sequence

__all__ = ["parse_dt", "event_times", "format_times"]

def parse_dt(value: Any, /) -> Optional[int]:
    """``value`` as int64 nanoseconds since the UNIX epoch (UTC), or None; never raises."""

def event_times(events: Iterable[Any], received_ns: int) -> array[int]:
    """Per event: ``parse_dt(event["dt"])`` when present and parseable, else ``received_ns``."""

def format_times(times_ns: Sequence[int], /) -> bytes:
    """Each of ``times_ns`` as decimal text, separated by one space (b"" for none)."""
