"""Type stub for the compiled twin of :mod:`fastingest.oneobject` (same names, same answers)."""
from typing import Any, Optional, Tuple

__all__ = ["nesting_within", "one_object"]

def one_object(body: bytes, kind: int, max_event: int, max_depth: int) -> Optional[Tuple[Any, int]]: ...
def nesting_within(container: Any, levels: int) -> bool: ...
