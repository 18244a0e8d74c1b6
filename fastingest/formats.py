"""Content-Type → body format (the three the Better Stack API accepts)."""
from __future__ import annotations

from functools import lru_cache
from typing import Union

from .errors import UnsupportedMediaType
#: Body formats (the framing kernels' ``kind``).
KIND_JSON = 1
KIND_NDJSON = 2
KIND_MSGPACK = 3

MEDIA_TYPES = {
    "application/json": KIND_JSON,
    "application/x-ndjson": KIND_NDJSON,
    "application/msgpack": KIND_MSGPACK,
    "application/x-msgpack": KIND_MSGPACK,
}

KIND_NAMES = {KIND_JSON: "json", KIND_NDJSON: "ndjson", KIND_MSGPACK: "msgpack"}

#: Header values (Content-Type, Content-Encoding) longer than this are parsed every time
#: instead of being cached: the caches are keyed by the raw value, and a client could
#: otherwise pin megabytes of header text in them, unauthenticated.
MAX_CACHED_HEADER = 128


def media_type(content_type: Union[str, bytes, None]) -> str:
    """The bare media type, lower-cased, parameters (``; charset=...``) dropped."""
    if content_type is None:
        return ""
    if isinstance(content_type, (bytes, bytearray)):
        content_type = bytes(content_type).decode("latin-1")
    return content_type.split(";", 1)[0].strip().lower()


@lru_cache(maxsize=64)
def _kind(content_type: str) -> int:
    kind = MEDIA_TYPES.get(media_type(content_type))
    if kind is None:
        shown = media_type(content_type)[:100] or "none"
        raise UnsupportedMediaType(detail=f"Content-Type {shown!r}")
    return kind


def media_kind(content_type: Union[str, bytes, None]) -> int:
    """``KIND_JSON``/``KIND_NDJSON``/``KIND_MSGPACK`` for a Content-Type header value, else 415."""
    kind = MEDIA_TYPES.get(content_type)  # type: ignore[arg-type]  # the usual spelling, exactly
    if kind is not None:
        return kind
    if isinstance(content_type, (bytes, bytearray)):
        content_type = bytes(content_type).decode("latin-1")
    if not isinstance(content_type, str):
        raise UnsupportedMediaType(detail="no Content-Type")
    if len(content_type) > MAX_CACHED_HEADER:
        return _kind.__wrapped__(content_type)
    return _kind(content_type)


def collect_mode(errors: str, kind: int) -> bool:
    """Whether ``errors`` asks to collect bad NDJSON lines (ValueError when it is neither
    "raise" nor "collect", or "collect" for another format)."""
    if errors not in ("raise", "collect"):
        raise ValueError(f"errors must be 'raise' or 'collect', not {errors!r}")
    if errors == "collect" and kind != KIND_NDJSON:
        raise ValueError("errors='collect' applies to NDJSON bodies only")
    return errors == "collect"
