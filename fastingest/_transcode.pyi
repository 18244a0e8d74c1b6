"""Type stub for the compiled twin of :mod:`fastingest.transcode` (same names, same answers)."""
from typing import List, Sequence, Union

__all__ = ["NATIVE_FLOATS", "events_to_json", "format_float", "msgpack_to_json"]

NATIVE_FLOATS: bool

def msgpack_to_json(data: Union[bytes, bytearray, memoryview]) -> bytes: ...
def events_to_json(raw: List[bytes]) -> List[bytes]: ...
def format_float(value: float) -> bytes: ...
