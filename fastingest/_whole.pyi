"""Type stub for the compiled twin of :mod:`fastingest.whole` (same names, same answers)."""
from array import array
from types import ModuleType
from typing import Any, Callable, List, Optional, Tuple, Union

from .batch import Batch, RawBatch
from .errors import LineError
from .limits import Limits

__all__ = ["bind_decode", "decode", "decode_body", "decode_whole"]

_Buffer = Union[bytes, bytearray, memoryview]
_Taken = Tuple[List[Any], array[int], array[int], Optional[array[int]], List[LineError]]

def decode_body(body: _Buffer, kind: int, max_body: int, max_event: int, max_depth: int,
                received_ns: int, collect: bool, raw: bool) -> _Taken: ...
def decode_whole(body: _Buffer, content_type: Union[str, bytes, None], limits: Limits,
                 received_ns: Optional[int], errors: str, raw: bool) -> Union[Batch, RawBatch]: ...

def bind_decode(py_decode: Callable[..., Batch], kernels_module: ModuleType,
                own_kernels: Any) -> None: ...
def decode(body: _Buffer, content_type: Union[str, bytes, None], *,
           content_encoding: Union[str, bytes, None] = ..., limits: Limits = ...,
           received_ns: Optional[int] = ..., errors: str = ...) -> Batch: ...
