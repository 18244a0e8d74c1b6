"""Type stub for the compiled twin of :mod:`fastingest.protobuf` (same names, same answers)."""
from array import array
from typing import Any, Callable, Dict, List, Tuple, Union

__all__ = ["LokiPush", "OtlpLogs"]

_Buffer = Union[bytes, bytearray, memoryview]

class _Batches:
    done: bool
    count: int
    def read(self, max_bytes: int = ...) -> Tuple[List[Dict[str, Any]], array[int]]: ...

class OtlpLogs(_Batches):
    def __init__(self, body: _Buffer, received_ns: int, max_event: int, max_depth: int) -> None: ...

class LokiPush(_Batches):
    streams: int
    def __init__(self, body: _Buffer, received_ns: int, max_line: int,
                 labels: Callable[[str], Dict[str, str]],
                 line_too_long: Callable[[str, int], Exception],
                 labels_too_long: Callable[[int], Exception]) -> None: ...
