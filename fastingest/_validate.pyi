"""Cython twin of :mod:`fastingest.validate` (same names, same answers)."""
from typing import Optional, Tuple, Union

__all__ = ["scan_json_object", "scan_msgpack_map", "REASONS"]

_Buffer = Union[bytes, bytearray, memoryview]

REASONS: Tuple[Optional[str], ...]

def scan_json_object(buf: _Buffer, start: int, end: int, max_depth: int, base: int = ...) -> int: ...
def scan_msgpack_map(buf: _Buffer, start: int, end: int, max_depth: int, base: int = ...) -> int: ...
