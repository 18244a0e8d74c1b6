"""Decode a body while it arrives: decompress (bounded, lazy) → frame → build → event time."""
from __future__ import annotations

import time
from array import array
from typing import Any, Iterator, Optional, Union

from . import _kernels
from .batch import Batch, RawBatch
from .compression import open_decoder
from .constants import BytesLike
from .errors import DecompressionError, IngestError, copied, detached
from .formats import KIND_NDJSON, collect_mode, media_kind
from .limits import DEFAULT_LIMITS, Limits

AnyBatch = Union[Batch, RawBatch]


def byte_buffer(data: BytesLike) -> BytesLike:
    """``data`` as a buffer of bytes the kernels read directly: bytes and bytearray as
    they are; any other buffer (a memoryview of another format, several dimensions or
    strides, an ``array``) as its bytes, so both kernel sets see the same bytes."""
    if type(data) is bytes or type(data) is bytearray:
        return data
    view = memoryview(data)
    if view.format == "B" and view.ndim == 1 and view.c_contiguous:
        return view
    return view.cast("B") if view.c_contiguous else view.tobytes()


#: Decompressed bytes framed and built at a time while streaming: one batch of
#: ``feed_batches()`` holds the events of at most this much body.
STREAM_PIECE = 256 * 1024


class StreamDecoder:
    """Decode one request body chunk by chunk with bounded memory.

    Two ways to take the events:

    * ``feed_batches(chunk)`` / ``close_batches()``: iterators of batches, each holding
      the events of at most one ``piece_size`` piece of decompressed body. The body is
      inflated lazily, one piece ahead of what the caller has taken, so a caller that
      handles each batch before taking the next holds O(piece_size + max_event)
      whatever the compression ratio and the event sizes. Consume each iterator fully
      before the next call (or stop using the decoder).
    * ``feed(chunk)`` / ``close()``: the same events, collected into one batch per
      call — simple, but a small compressed chunk can inflate to ``max_body`` of tiny
      events, all of them built at once.

    Limits are enforced as soon as they are crossed; ``close*`` raises
    :class:`IngestError` when the body is incomplete. After an error every further call
    raises an equal error.

    With ``raw=True`` the batches are :class:`RawBatch`: each event's original bytes,
    fully validated, with its time read from its top-level ``dt``, and no objects built.
    """

    def __init__(
        self,
        content_type: Union[str, bytes, None],
        *,
        content_encoding: Union[str, bytes, None] = None,
        limits: Limits = DEFAULT_LIMITS,
        received_ns: Optional[int] = None,
        errors: str = "raise",
        raw: bool = False,
        piece_size: int = STREAM_PIECE,
    ) -> None:
        kind = media_kind(content_type)
        collect = collect_mode(errors, kind)
        if isinstance(content_encoding, (bytes, bytearray)):
            content_encoding = bytes(content_encoding).decode("latin-1")
        self.kind = kind
        self.limits = limits
        self.collect = collect
        self.raw = raw
        self.piece_size = piece_size
        self.received_ns = time.time_ns() if received_ns is None else int(received_ns)
        self._body = open_decoder(content_encoding, limits, piece_size=piece_size)
        self._kernels = _kernels.active
        self._scanner = self._kernels.framing.SCANNERS[kind](limits.max_event, limits.max_depth, collect)
        self._error: Optional[IngestError] = None
        self._closed = False
        self._busy = False

    @property
    def bytes_in(self) -> int:
        """Body bytes received so far (compressed, when a Content-Encoding is used)."""
        return self._body.compressed

    @property
    def is_array(self) -> Optional[bool]:
        """JSON/MessagePack: whether the body is an array of events or a single one
        (None until its first significant byte has been decoded, and for NDJSON)."""
        is_array: Optional[bool] = self._scanner.is_array
        return is_array

    @property
    def bytes_out(self) -> int:
        """Decompressed body bytes so far."""
        return self._body.produced

    # -- bounded: one batch per piece ------------------------------------------------------

    def feed_batches(self, chunk: BytesLike) -> Iterator[AnyBatch]:
        """Decode one more chunk; iterate for its events, one piece of body per batch
        (batches without events or line errors are skipped)."""
        self._check_usable()
        return self._guarded(self._pieces(self._body.feed(byte_buffer(chunk)), False))

    def close_batches(self) -> Iterator[AnyBatch]:
        """The body is complete: iterate for the remaining events; the iterator raises
        :class:`IngestError` if the body is incomplete."""
        self._check_usable()
        return self._guarded(self._pieces(self._body.close(), True))

    # -- collected: one batch per call ------------------------------------------------------

    def feed(self, chunk: BytesLike) -> AnyBatch:
        """Decode one more chunk; return every event it completed (maybe none)."""
        return self._collect(self.feed_batches(chunk))

    def close(self) -> AnyBatch:
        """The body is complete: return the remaining events or raise if it is incomplete."""
        return self._collect(self.close_batches())

    # -- machinery ---------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._error is not None:
            raise copied(self._error)
        if self._busy:
            raise RuntimeError("the iterator of the previous feed_batches()/close_batches() "
                               "was not consumed")
        if self._closed:
            raise ValueError("StreamDecoder is closed")

    def _pieces(self, pieces: Iterator[Any], closing: bool) -> Iterator[AnyBatch]:
        scanner = self._scanner
        for piece in pieces:
            batch: Optional[AnyBatch] = self._take(scanner.feed(piece))
            piece = None
            if batch:
                yield batch
            batch = None   # not alive while the next one is built
        if closing:
            batch = self._take(scanner.finish())
            self._closed = True
            if batch:
                yield batch

    def _guarded(self, batches: Iterator[AnyBatch]) -> Iterator[AnyBatch]:
        self._busy = True
        done = False
        try:
            yield from batches
            done = True
        except IngestError as exc:
            # Keep the error without its traceback (whose frames hold this decoder) and
            # raise an equal copy: no reference cycle keeps the decoder alive.
            self._error = detached(exc)
            raise copied(exc) from None
        finally:
            self._busy = False
            if not done and self._error is None:
                # Left half-way (the caller stopped taking batches): the rest of the
                # chunk is lost, so the body can no longer be decoded.
                self._error = DecompressionError(
                    detail="the decoder was abandoned in the middle of a chunk")

    def _collect(self, batches: Iterator[AnyBatch]) -> AnyBatch:
        first: Optional[AnyBatch] = None
        for batch in batches:
            if first is None:
                first = batch
            else:
                first.extend(batch)
        return first if first is not None else self._empty()

    def _empty(self) -> AnyBatch:
        return (RawBatch if self.raw else Batch)(lines=array("q") if self.kind == KIND_NDJSON else None)

    def _take(self, frames: Any) -> AnyBatch:
        items, times, offsets, lines, line_errors = self._kernels.build.take(
            frames, self.kind, self.limits.max_depth, self.received_ns, self.collect, self.raw)
        if lines is None and self.kind == KIND_NDJSON:
            lines = array("q")
        return (RawBatch if self.raw else Batch)(items, times, offsets, lines, line_errors)
