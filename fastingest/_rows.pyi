"""Type stub for the compiled twin of :mod:`fastingest.rows` (same names, same answers)."""
from typing import List, Sequence

__all__ = ["row_values"]

def row_values(raw: Sequence[bytes], times_ns: Sequence[int], received_ns: int, /
               ) -> List[object]:
    """``[times_ns[0], received_ns, raw[0] as str, ...]``: each row's values but the source."""
