"""Type stub for the compiled twin of :mod:`fastingest.build` (same names, same answers)."""
from array import array
from typing import Any, List, Optional, Tuple

from .errors import LineError
from .framing._framing import Frames

__all__ = ["build_events", "split_frames", "take"]

_Taken = Tuple[List[Any], array[int], array[int], Optional[array[int]], List[LineError]]

def take(frames: Frames, kind: int, max_depth: int, received_ns: int, collect: bool,
         raw: bool) -> _Taken: ...
def split_frames(frames: Frames, kind: int, max_depth: int, received_ns: int,
                 collect: bool) -> _Taken: ...
def build_events(frames: Frames, kind: int) -> List[Any]: ...
