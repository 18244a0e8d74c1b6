"""Type stub for the compiled twin of :mod:`fastingest.members` (same names, same answers)."""
from typing import List, Optional, Sequence, Tuple

__all__ = ["Member", "top_members"]

Member = Tuple[int, int, int]

def top_members(data: bytes, names: Sequence[bytes]) -> Optional[Tuple[int, List[Member]]]: ...
