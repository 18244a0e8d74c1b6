"""Type stub for the compiled twin of :mod:`fastingest.unpack` (same names, same answers)."""
from array import array
from typing import Any, List, Optional, Tuple

__all__ = ["unpack_body", "unpack_map"]

def unpack_map(data: bytes, max_depth: int = 1000) -> Tuple[Any, Optional[int]]: ...
def unpack_body(body: bytes, max_event: int, max_depth: int,
                received_ns: int) -> Optional[Tuple[List[Any], array[int], array[int]]]: ...
