"""Decode a body while it arrives: decompress (bounded) → frame → build → event time."""
from __future__ import annotations

import time
from array import array
from typing import Any, Optional, Union

from . import _kernels
from .batch import Batch, RawBatch
from .compression import open_decoder
from .errors import IngestError, copied, detached
from .formats import KIND_NDJSON, collect_mode, media_kind
from .limits import DEFAULT_LIMITS, Limits

BytesLike = Union[bytes, bytearray, memoryview]

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


#: Decompressed bytes handed to the framer at a time while streaming.
STREAM_PIECE = 256 * 1024


class StreamDecoder:
    """Decode one request body chunk by chunk with memory bounded by one event.

    ``feed(chunk)`` returns the events the chunk completed (possibly none);
    ``close()`` returns the rest and raises :class:`IngestError` when the body is
    incomplete. Limits are enforced as soon as they are crossed. After an error every
    further call raises an equal error.

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
        _piece_size: int = STREAM_PIECE,
    ) -> None:
        kind = media_kind(content_type)
        collect = collect_mode(errors, kind)
        if isinstance(content_encoding, (bytes, bytearray)):
            content_encoding = bytes(content_encoding).decode("latin-1")
        self.kind = kind
        self.limits = limits
        self.collect = collect
        self.raw = raw
        self.received_ns = time.time_ns() if received_ns is None else int(received_ns)
        self._body = open_decoder(content_encoding, limits, piece_size=_piece_size)
        self._kernels = _kernels.active
        self._scanner = self._kernels.framing.Scanner(kind, limits.max_event, limits.max_depth, collect)
        self._error: Optional[IngestError] = None
        self._closed = False

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

    def feed(self, chunk: BytesLike) -> Union[Batch, RawBatch]:
        """Decode one more chunk; return the events it completed."""
        self._check_open()
        batch = self._new_batch()
        try:
            for piece in self._body.feed(byte_buffer(chunk)):
                self._take(self._scanner.feed(piece), batch)
        except IngestError as exc:
            # Keep the error without its traceback (whose frames hold this decoder) and
            # raise an equal copy: no reference cycle keeps the decoder alive.
            self._error = detached(exc)
            raise copied(exc) from None
        return batch

    def close(self) -> Union[Batch, RawBatch]:
        """The body is complete: return the remaining events or raise if it is incomplete."""
        self._check_open()
        batch = self._new_batch()
        try:
            for piece in self._body.close():
                self._take(self._scanner.feed(piece), batch)
            self._take(self._scanner.finish(), batch)
        except IngestError as exc:
            # Keep the error without its traceback (whose frames hold this decoder) and
            # raise an equal copy: no reference cycle keeps the decoder alive.
            self._error = detached(exc)
            raise copied(exc) from None
        self._closed = True
        return batch

    def _check_open(self) -> None:
        if self._error is not None:
            raise copied(self._error)
        if self._closed:
            raise ValueError("StreamDecoder is closed")

    def _new_batch(self) -> Union[Batch, RawBatch]:
        return (RawBatch if self.raw else Batch)(lines=array("q") if self.kind == KIND_NDJSON else None)

    def _take(self, frames: Any, batch: Union[Batch, RawBatch]) -> None:
        items, times, offsets, lines, line_errors = self._kernels.framing.take(
            frames, self.kind, self.limits.max_depth, self.received_ns, self.collect, self.raw)
        if not len(batch):
            batch.__init__(items, times, offsets, lines, batch.errors)  # type: ignore[misc]
        elif items:
            batch.extend(type(batch)(items, times, offsets, lines))
        if line_errors:
            batch.errors.extend(line_errors)
