"""Snappy *block* format (not the framed format), as Loki's push protobuf uses it.

A block starts with its uncompressed length as a varint (at most 2^32 - 1). That length
is checked against ``max_body`` before anything is decompressed, and the output buffer
is exactly that long, so a snappy body costs at most ``max_body`` bytes of output
whatever it claims. The codec itself is ``cramjam`` (the ``[snappy]`` extra).
"""
from __future__ import annotations

from .constants import BytesLike
from .errors import DecompressionError, PayloadTooLarge, UnsupportedMediaType

try:  # the [snappy] extra
    import cramjam as _cramjam
except ImportError:  # pragma: no cover - exercised only without the extra
    # (an ignore only some installs need: cramjam 2.14 ships types, 2.11, the newest
    # on Python 3.10 here, does not)
    _cramjam = None  # type: ignore[assignment, unused-ignore]


#: Whether this install decodes snappy (cramjam is installed).
AVAILABLE = _cramjam is not None

SNAPPY_MISSING = "snappy support is not installed (pip install fastingest[snappy])"
BAD_PREAMBLE = "corrupt snappy block: bad length preamble"


def declared_length(block: BytesLike) -> int:
    """The uncompressed length a snappy block declares (DecompressionError if malformed)."""
    view = memoryview(block)
    value = 0
    for i in range(min(len(view), 5)):
        byte = view[i]
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            if value > 0xFFFFFFFF:
                break
            return value
    raise DecompressionError(detail=BAD_PREAMBLE)


def decompress_block(block: BytesLike, max_body: int) -> bytes:
    """Decode one snappy block of at most ``max_body`` bytes of output.

    413 when the declared length is over ``max_body`` (before decoding), 400 for corrupt
    data, 415 when snappy support is not installed.
    """
    if _cramjam is None:
        raise UnsupportedMediaType("snappy is not supported by this server.", detail=SNAPPY_MISSING)
    size = declared_length(block)
    if size > max_body:
        raise PayloadTooLarge(detail=f"snappy block declares {size} bytes, over {max_body}")
    out = bytearray(size)
    try:
        written = _cramjam.snappy.decompress_raw_into(bytes(block), out)
    except Exception as exc:   # cramjam.DecompressionError and friends
        reason = str(exc).split(": ", 1)[-1]
        raise DecompressionError(detail=f"corrupt snappy block: {reason}") from None
    if written != size:
        raise DecompressionError(detail="corrupt snappy block: shorter than declared")
    return bytes(out)


def compress_block(data: BytesLike) -> bytes:
    """Snappy block of ``data`` (for clients and tests)."""
    if _cramjam is None:
        raise UnsupportedMediaType("snappy is not supported by this server.", detail=SNAPPY_MISSING)
    return bytes(_cramjam.snappy.compress_raw(bytes(data)))


__all__ = ["AVAILABLE", "compress_block", "declared_length", "decompress_block"]
