"""Decode a whole body at once: the streaming machinery fed in one piece."""
from __future__ import annotations

from typing import Any, Optional, Union

from . import _kernels
from .batch import Batch, RawBatch
from .compression import inflate_whole, parse_content_encoding
from .errors import IngestError, detached
from .limits import DEFAULT_LIMITS, Limits
from .stream import BytesLike, StreamDecoder, byte_buffer

#: A whole body is already in memory: decompress it in pieces this large (bounded by
#: max_body anyway), so it is framed and built in as few calls as possible.
WHOLE_PIECE = 4 * 1024 * 1024


def decode(
    body: BytesLike,
    content_type: Union[str, bytes, None],
    *,
    content_encoding: Union[str, bytes, None] = None,
    limits: Limits = DEFAULT_LIMITS,
    received_ns: Optional[int] = None,
    errors: str = "raise",
) -> Batch:
    """Decode one request body into events with their event times.

    ``content_type`` picks the format (application/json, application/x-ndjson,
    application/msgpack; parameters ignored); ``content_encoding`` the decompression
    (gzip, deflate, zstd, br, identity). Raises :class:`~fastingest.IngestError` with
    the HTTP status and exact protocol text for any body that cannot be accepted.
    """
    batch: Batch
    if type(body) is not bytes:   # any buffer layout: the bytes both kernel sets read
        body = byte_buffer(body)
    try:
        if content_encoding is None:   # the common case, without a detour
            batch = _kernels.active.framing.decode_whole(body, content_type, limits, received_ns, errors, False)
        else:
            batch = _whole(body, content_type, content_encoding, limits, received_ns, errors, False)
        return batch
    except IngestError as exc:   # no traceback cycle keeps the body alive (errors.detached)
        raise detached(exc) from None


def split(
    body: BytesLike,
    content_type: Union[str, bytes, None],
    *,
    content_encoding: Union[str, bytes, None] = None,
    limits: Limits = DEFAULT_LIMITS,
    received_ns: Optional[int] = None,
    errors: str = "raise",
) -> RawBatch:
    """Like :func:`decode`, but return each event's original bytes instead of objects.

    Same validation, limits and errors as :func:`decode`; each event's time comes from
    its top-level ``dt`` (read by a shallow scan). For servers that forward events
    (to Kafka, ClickHouse, files) without re-encoding them.
    """
    raw: RawBatch
    if type(body) is not bytes:   # any buffer layout: the bytes both kernel sets read
        body = byte_buffer(body)
    try:
        raw = _whole(body, content_type, content_encoding, limits, received_ns, errors, True)
        return raw
    except IngestError as exc:
        raise detached(exc) from None


def _whole(body: BytesLike, content_type: Union[str, bytes, None],
           content_encoding: Union[str, bytes, None], limits: Limits, received_ns: Optional[int],
           errors: str, raw: bool) -> Any:
    codings = parse_content_encoding(content_encoding)   # 415 for an unknown coding
    if codings:
        inflated = inflate_whole(body, codings, limits)
        if inflated is not None:
            body, content_encoding = inflated, None
    else:
        content_encoding = None   # identity, however spelled
    if content_encoding is None:
        # Uncompressed and all in memory: the kernels frame and build it in one go.
        return _kernels.active.framing.decode_whole(body, content_type, limits, received_ns, errors, raw)
    decoder = StreamDecoder(
        content_type, content_encoding=content_encoding, limits=limits,
        received_ns=received_ns, errors=errors, raw=raw, _piece_size=WHOLE_PIECE,
    )
    batch = decoder.feed(body)
    rest = decoder.close()
    if rest:
        batch.extend(rest)
    return batch
