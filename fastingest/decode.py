"""Decode a whole body at once: inflated into bounded pieces, then framed and built.

A body over ``max_body`` (sent as it is, or inflating past it) builds nothing: its part
within the limit is only validated, batch by batch without keeping anything, so that a
fault earlier in the body still wins over the 413 (exactly what streaming the body
answers), and then the 413 is raised. A decompression bomb therefore costs at most
``max_body`` bytes of buffer, never its events' objects.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Union

from . import _kernels
from .batch import Batch, RawBatch
from .compression import inflate_whole, open_decoder, parse_content_encoding
from .constants import BytesLike
from .errors import IngestError, detached
from .formats import collect_mode, media_kind
from .limits import DEFAULT_LIMITS, Limits
from .stream import StreamDecoder, byte_buffer

#: A whole compressed body is decompressed in pieces this large (max_body of them at
#: most) before anything is built, then framed and built piece by piece.
WHOLE_PIECE = 1024 * 1024


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
        if content_encoding is None and len(body) <= limits.max_body:   # the common case
            batch = _kernels.active.whole.decode_whole(body, content_type, limits, received_ns, errors, False)
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
        small = inflate_whole(body, codings, limits)   # small bodies: one capped call
        if small is None:
            pieces = _inflate(body, content_type, content_encoding, limits, received_ns, errors)
            return _decode_pieces(pieces, content_type, limits, received_ns, errors, raw)
        body = small
    if len(body) > limits.max_body:
        _reject(body, content_type, limits, received_ns, errors)
    return _kernels.active.whole.decode_whole(body, content_type, limits, received_ns, errors, raw)


def _inflate(body: BytesLike, content_type: Union[str, bytes, None],
             content_encoding: Union[str, bytes, None], limits: Limits,
             received_ns: Optional[int], errors: str) -> List[BytesLike]:
    """The decoded body as pieces of WHOLE_PIECE bytes, never more than ``max_body``
    in all; on a decompression error, the first fault of the part decoded before it
    wins."""
    collect_mode(errors, media_kind(content_type))   # 415 for the Content-Type comes first
    decoder = open_decoder(content_encoding, limits, piece_size=WHOLE_PIECE)
    pieces: List[BytesLike] = []
    try:
        pieces.extend(decoder.feed(body))
        pieces.extend(decoder.close())
    except IngestError:
        _validate(pieces, content_type, limits, received_ns, errors)
        raise
    return pieces


def _decode_pieces(pieces: List[BytesLike], content_type: Union[str, bytes, None],
                   limits: Limits, received_ns: Optional[int], errors: str, raw: bool) -> Any:
    """A decoded body within the limits, framed and built piece by piece (each piece
    dropped once its events are built)."""
    decoder = StreamDecoder(content_type, limits=limits, received_ns=received_ns,
                            errors=errors, raw=raw, piece_size=WHOLE_PIECE)
    pieces.reverse()
    batch = decoder.feed(pieces.pop()) if pieces else None
    while pieces:
        batch.extend(decoder.feed(pieces.pop()))   # type: ignore[union-attr]
    rest = decoder.close()
    if batch is None:
        return rest
    batch.extend(rest)
    return batch


def _reject(body: BytesLike, content_type: Union[str, bytes, None], limits: Limits,
            received_ns: Optional[int], errors: str) -> None:
    """A body over ``max_body``: its first fault (an earlier one, else the 413)."""
    decoder = _validator(content_type, limits, received_ns, errors)
    for _ in decoder.feed_batches(body):   # raises the 413 at max_body at the latest
        pass
    raise AssertionError("a body over max_body was not refused")   # pragma: no cover


def _validate(pieces: List[BytesLike], content_type: Union[str, bytes, None], limits: Limits,
              received_ns: Optional[int], errors: str) -> None:
    """Raise the first fault in the body's first ``pieces`` (a body cut short, so its
    unfinished last event is not one), keeping nothing of its events."""
    decoder = _validator(content_type, limits, received_ns, errors)
    for piece in pieces:
        for _ in decoder.feed_batches(piece):
            pass


def _validator(content_type: Union[str, bytes, None], limits: Limits,
               received_ns: Optional[int], errors: str) -> StreamDecoder:
    # Raw batches: every event validated as decode() would, no objects built.
    return StreamDecoder(content_type, limits=limits, received_ns=received_ns,
                         errors=errors, raw=True)


if _kernels.cython is not None and not TYPE_CHECKING:
    # The compiled entry: the same function for an uncompressed bytes body within
    # max_body while the compiled kernels are active, without this module's Python frame
    # (≈ 0.2 µs of a 1-event body's 1.9); every other call comes back to the one above.
    _kernels.cython.whole.bind_decode(decode, _kernels, _kernels.cython)
    decode = _kernels.cython.whole.decode
    decode.__module__ = __name__

__all__: List[str] = ["decode", "split"]
