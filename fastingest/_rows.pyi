"""Type stub for the compiled twin of :mod:`fastingest.rows` (same names, same answers)."""
from typing import List, Sequence

__all__ = ["time_text_pairs"]

def time_text_pairs(raw: Sequence[bytes], times_ns: Sequence[int], /) -> List[object]:
    """``[times_ns[0], raw[0] as str, ...]``: each event's time and JSON text."""
