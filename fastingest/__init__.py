"""fastingest: decode log/event ingestion request bodies fast, bounded and exactly."""
from ._version import __version__
from .errors import IngestError
from .limits import Limits
from . import _kernels

IMPLEMENTATION: str = _kernels.active.name

__all__ = ["IMPLEMENTATION", "IngestError", "Limits", "__version__"]
