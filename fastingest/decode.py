"""Decode a whole body at once: the streaming machinery fed in one piece."""
from __future__ import annotations

from typing import Optional, Union

import time

from . import _kernels
from .batch import Batch, RawBatch
from .compression import inflate_whole, parse_content_encoding
from .formats import media_kind
from .limits import DEFAULT_LIMITS, Limits
from .stream import BytesLike, StreamDecoder, collect_mode

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
    if content_encoding is None:   # the common case, without a detour
        kind = media_kind(content_type)
        items, times, offsets, lines, line_errors = _kernels.active.framing.decode_body(
            body, kind, limits.max_body, limits.max_event, limits.max_depth,
            time.time_ns() if received_ns is None else received_ns,
            collect_mode(errors, kind), False)
        return Batch(items, times, offsets, lines, line_errors)
    return _whole(body, content_type, content_encoding, limits, received_ns, errors, False)


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
    return _whole(body, content_type, content_encoding, limits, received_ns, errors, True)


def _whole(body, content_type, content_encoding, limits, received_ns, errors, raw):
    if content_encoding is not None and parse_content_encoding(content_encoding):
        inflated = inflate_whole(body, content_encoding, limits)
        if inflated is not None:
            body, content_encoding = inflated, None
    if content_encoding is None or not parse_content_encoding(content_encoding):
        # Uncompressed and all in memory: the kernels frame and build it in one go.
        kind = media_kind(content_type)
        collect = collect_mode(errors, kind)
        received = time.time_ns() if received_ns is None else int(received_ns)
        items, times, offsets, lines, line_errors = _kernels.active.framing.decode_body(
            body, kind, limits.max_body, limits.max_event, limits.max_depth, received, collect, raw)
        return (RawBatch if raw else Batch)(items, times, offsets, lines, line_errors)
    decoder = StreamDecoder(
        content_type, content_encoding=content_encoding, limits=limits,
        received_ns=received_ns, errors=errors, raw=raw, _piece_size=WHOLE_PIECE,
    )
    batch = decoder.feed(body)
    rest = decoder.close()
    if rest:
        batch.extend(rest)
    return batch
