"""A body that must be read whole (one protobuf message, one JSON document), bounded.

OTLP and Loki bodies are single documents: nothing in them can be built before the end
is known (a protobuf message's fields may come in any order). The body is decompressed
through the same bounded streaming decoder as every other body, and collected into one
buffer of at most ``limits.max_body`` bytes (413 past it, as the bytes arrive). The
readers then walk that buffer and hand out events in bounded batches.
"""
from __future__ import annotations

from typing import Union

from .compression import open_decoder
from .constants import BytesLike
from .limits import Limits



class WholeBody:
    """Collect one (possibly compressed) body: ``feed`` chunks, then ``close()``."""

    __slots__ = ("_decoder", "_buf", "size")

    def __init__(self, content_encoding: Union[str, bytes, None], limits: Limits) -> None:
        self._decoder = open_decoder(content_encoding, limits)   # 415 for an unknown coding
        self._buf = bytearray()
        self.size = 0
        """Decoded bytes so far."""

    def feed(self, chunk: BytesLike) -> None:
        """One more chunk of the body (IngestError: over a limit, corrupt compression)."""
        for piece in self._decoder.feed(chunk):
            self._buf += piece
            self.size += len(piece)

    def close(self) -> bytearray:
        """The whole decoded body, handed over: this object keeps no reference to it
        (IngestError if the compressed stream is truncated)."""
        for piece in self._decoder.close():
            self._buf += piece
            self.size += len(piece)
        body, self._buf = self._buf, bytearray()
        return body


__all__ = ["WholeBody"]
