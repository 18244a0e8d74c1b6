"""Type stub for fastingest's compiled JSON object builder (its pure twin is the orjson
path of :mod:`fastingest.build`)."""
from typing import Any

__all__ = ["loads", "loads_object"]

def loads(data: bytes) -> Any: ...
def loads_object(data: bytes) -> Any: ...
