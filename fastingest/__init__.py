"""fastingest: decode log/event ingestion request bodies fast, bounded and exactly.

The public API: :func:`decode`, :func:`split`, :class:`StreamDecoder`, :func:`parse_dt`,
:class:`Limits`, :class:`IngestError` (and its subclasses), :class:`Batch`,
and :data:`IMPLEMENTATION` ("cython", or "python" when ``FASTINGEST_PUREPYTHON=1``
or the extension is not built).
"""
from ._version import __version__
from . import _kernels
from .batch import Batch, RawBatch
from .decode import decode, split
from .errors import (DecompressionError, IngestError, LineError, ParseError, PayloadTooLarge,
                     UnsupportedMediaType)
from .limits import Limits
from .stream import StreamDecoder

#: Which kernels run: "cython" (compiled) or "python" (the pure-Python twins).
IMPLEMENTATION: str = _kernels.active.name
#: ``parse_dt(value) -> int | None``: a ``dt`` value to int64 ns since the epoch (UTC).
parse_dt = _kernels.active.parse_dt

__all__ = [
    "IMPLEMENTATION", "Batch", "DecompressionError", "IngestError", "LineError", "Limits",
    "ParseError", "PayloadTooLarge", "RawBatch", "StreamDecoder", "UnsupportedMediaType",
    "__version__", "decode", "parse_dt", "split",
]
