"""Bounded, streaming decompression of request bodies (``Content-Encoding``).

``open_decoder(content_encoding, limits)`` returns a :class:`BodyDecoder`: feed it the
body as it arrives and it hands out the decoded body in pieces of at most ``piece_size``
bytes. Nothing is ever decompressed in one shot: every codec call is capped (zlib's
``max_length``, brotli's ``output_buffer_limit``, zstd given input block by block), so
a decompression bomb costs at most ``max_body`` bytes of work and a piece of memory.

Behaviours worth knowing (all covered by tests/unit/test_compression.py; the per-coding
stages live in :mod:`fastingest.codings`):

* ``Content-Encoding`` is case-insensitive and whitespace tolerant; ``x-gzip`` is gzip.
  A list (``deflate, gzip``) names the codings in the order they were applied, so they
  are undone in reverse; ``identity`` entries are no-ops. At most :data:`MAX_CODINGS`
  real codings are accepted.
* gzip: concatenated members decode as one body. After a member, only another member
  or zero bytes may follow (zero padding, as written by some tape/block writers, is
  ignored like ``gzip -d`` does); anything else is "trailing data after gzip member".
* deflate: zlib-wrapped (RFC 1950) or raw (RFC 1951), told apart by the first two bytes
  (``CM == 8``, ``CINFO <= 7`` and ``(CMF*256 + FLG) % 31 == 0`` means zlib-wrapped).
  Nothing may follow the end of the stream.
* zstd: several frames decode as one body, skippable frames are skipped. A frame whose
  window is over :data:`ZSTD_MAX_WINDOW` (8 MiB, the limit RFC 9659 sets for the HTTP
  ``zstd`` coding) is refused before anything is allocated for it.
* br: bounded with ``brotli.Decompressor.process(..., output_buffer_limit=...)``; a
  brotli module without that API is treated as not installed rather than unsafe.
* A coding that received no bytes at all yields an empty body (the framing layer then
  reports "empty body"); a stream that stops inside a member/frame is
  ``DecompressionError("truncated ... stream")`` at :meth:`BodyDecoder.close`.
* Limits, for every encoding including identity, are checked in one place
  (:meth:`BodyDecoder._account`): decompressed output over ``max_body`` is a 413 with
  ``offset=max_body``; the bytes before the limit are still handed out first, so the
  first fault in body order wins whatever the chunking. Compressed input over
  ``max_compressed`` (only when a coding is used) is a 413 after the bytes within the
  limit were decoded; ``max_ratio`` is a 413 once the output passes 1 MiB.
  Intermediate stages of a chain are capped at ``2 * max_body + 64 KiB`` (a compressed
  form of a body within ``max_body`` is never larger).
* Corrupt data is a :class:`DecompressionError` (400) with ``offset=None``: where zlib
  or zstd notice corruption depends on how the input was chunked, so no decompressed
  offset would be reproducible. No other exception type escapes for any input bytes.
* gzip/deflate inflate through python-isal's zlib-compatible module (ISA-L, the
  ``[isal]`` extra, ≈ 2.5x zlib's speed) when it is installed, else through zlib;
  ``FASTINGEST_INFLATER=zlib`` forces zlib. Both are driven the same way (``max_length``,
  ``unconsumed_tail``, ``unused_data``, ``eof``); only corruption messages differ.
* Work per gzip member / zstd frame or block is bounded too: beyond
  :data:`UNIT_FLOOR` of them, each must bring :data:`UNIT_BYTES` of output on average
  (413 otherwise), so 10 MiB of empty members is not 10 seconds of CPU.
* After an error the decoder is dead: ``feed``/``close`` raise the same error again.
"""
from __future__ import annotations

import functools
import zlib
from typing import Iterable, Iterator, List, Optional, Tuple, Union

from . import codings as _codings
from .codings import STAGES, ZSTD_MAX_WINDOW, _deflate_wbits, _Meter, _Stage
from .constants import BytesLike, MiB
from .errors import DecompressionError, IngestError, PayloadTooLarge, UnsupportedMediaType
from .formats import MAX_CACHED_HEADER
from .limits import DEFAULT_LIMITS, Limits


#: Decompressed pieces handed out, unless the caller asks for another size.
DEFAULT_PIECE = 256 * 1024
#: Most real (non-identity) codings one Content-Encoding header may stack.
MAX_CODINGS = 4
#: max_ratio is only judged once the output is past this size (small bodies compress well).
RATIO_FLOOR = 1 * MiB

_ORDER = ("gzip", "deflate", "zstd", "br", "identity")
_AVAILABLE = {
    "gzip": True,
    "deflate": True,
    "zstd": "zstd" in STAGES,
    "br": "br" in STAGES,
    "identity": True,
}
_ALIASES = {"x-gzip": "gzip"}
_EXTRA = {"zstd": "zstd", "br": "brotli"}  # pip extras that bring them

#: The Content-Encodings this install decodes (zstd and br only with their libraries).
SUPPORTED_ENCODINGS: Tuple[str, ...] = tuple(name for name in _ORDER if _AVAILABLE[name])


def _encoding_message() -> str:
    names = list(SUPPORTED_ENCODINGS)
    listed = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    return f"Unsupported Content-Encoding: use {listed}."


#: 415 body for a Content-Encoding that is unknown or not installed.
ENCODING_MESSAGE = _encoding_message()


def parse_content_encoding(content_encoding: Union[str, bytes, None]) -> List[str]:
    """The real codings of a Content-Encoding header, in the order they were applied.

    Raises :class:`UnsupportedMediaType` for an unknown or unavailable coding, or for
    more than :data:`MAX_CODINGS` of them. ``identity`` and empty list elements vanish.
    """
    if content_encoding is None:
        return []
    if isinstance(content_encoding, (bytes, bytearray)):
        content_encoding = bytes(content_encoding).decode("latin-1")
    if len(content_encoding) > MAX_CACHED_HEADER:
        return list(_parse_codings.__wrapped__(content_encoding))
    return list(_parse_codings(content_encoding))


@functools.lru_cache(maxsize=64)
def _parse_codings(content_encoding: str) -> Tuple[str, ...]:
    # Cached: every request names one of a handful of spellings (short ones only, see
    # MAX_CACHED_HEADER).
    codings = []
    for token in content_encoding.split(","):
        name = token.strip().lower()
        name = _ALIASES.get(name, name)
        if not name or name == "identity":
            continue
        if name not in _AVAILABLE:
            raise UnsupportedMediaType(
                ENCODING_MESSAGE, detail=f"unknown content coding {_clip(token.strip())!r}")
        if not _AVAILABLE[name]:
            raise UnsupportedMediaType(
                ENCODING_MESSAGE,
                detail=f"{name} support is not installed (pip install fastingest[{_EXTRA[name]}])")
        codings.append(name)
    if len(codings) > MAX_CODINGS:
        raise UnsupportedMediaType(
            ENCODING_MESSAGE, detail=f"more than {MAX_CODINGS} content codings")
    return tuple(codings)


#: The first bytes of a gzip member (RFC 1952) and of a zstd frame (RFC 8878).
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def sniff_encoding(head: BytesLike) -> Optional[str]:
    """The coding that the first bytes of a body plainly carry: ``gzip``, ``zstd`` or
    ``deflate`` (a zlib header), else None. No JSON, NDJSON or MessagePack body starts
    like these (a zlib header is ``x`` and a check byte). Brotli has no signature.
    """
    head = bytes(head[:4])
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if len(head) >= 2 and _deflate_wbits(head[0], head[1]) > 0:
        return "deflate"
    return None


#: Largest output :func:`inflate_whole` produces in its one call.
INFLATE_WHOLE_CAP = 4 * MiB


def inflate_whole(body: BytesLike, codings: List[str],
                  limits: Limits = DEFAULT_LIMITS) -> Optional[bytes]:
    """A whole gzip/deflate body in one capped call, when nothing about it is unusual.

    ``codings``: what :func:`parse_content_encoding` made of the header. Returns the
    decoded body only when the general decoder would hand out exactly these bytes and no
    error: one coding, one complete member/stream with nothing after it, no limit
    reached. Otherwise None, and the caller uses :func:`open_decoder` (which then finds
    the precise answer). The point is per-request cost on small bodies.
    """
    if len(codings) != 1 or codings[0] not in ("gzip", "deflate"):
        return None
    n = len(body)
    if n < 2 or n > limits.max_compressed:
        return None
    if codings[0] == "gzip":
        # reserved FLG bits: an error that ISA-L does not notice (the stream path says it)
        if n < 4 or memoryview(body)[3] & 0xE0:
            return None
        wbits = 16 + zlib.MAX_WBITS
    else:
        head = bytes(memoryview(body)[:2])
        wbits = _deflate_wbits(head[0], head[1])
    obj = _codings.INFLATER.decompressobj(wbits)
    try:
        # Capped well below max_body: bombs and big bodies take the streaming path,
        # whose memory stays at a few pieces.
        out: bytes = obj.decompress(body, min(limits.max_body + 1, INFLATE_WHOLE_CAP))
    except _codings.INFLATE_ERRORS:
        return None
    if not obj.eof or obj.unused_data or obj.unconsumed_tail or len(out) > limits.max_body:
        return None
    if (limits.max_ratio is not None and len(out) > RATIO_FLOOR
            and len(out) > limits.max_ratio * n):
        return None
    return out


def _clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[:n] + "..."


def open_decoder(
    content_encoding: Union[str, bytes, None],
    limits: Limits = DEFAULT_LIMITS,
    *,
    piece_size: int = DEFAULT_PIECE,
) -> "BodyDecoder":
    """A decoder for one body sent with this Content-Encoding.

    Raises :class:`UnsupportedMediaType` (415) for an unknown or unavailable coding.
    """
    if type(piece_size) is not int or piece_size < 1:
        raise ValueError(f"piece_size must be a positive int, got {piece_size!r}")
    return BodyDecoder(parse_content_encoding(content_encoding), limits, piece_size)


class BodyDecoder:
    """Decode one body chunk by chunk with bounded memory; see the module docstring.

    ``feed(data)`` and ``close()`` return iterators of decoded pieces (bytes-like, each
    at most ``piece_size`` bytes; identity hands out slices of the chunks). Errors
    surface while iterating. Consume each iterator fully before the next call.
    """

    compressed: int
    """Body bytes seen so far (compressed, when a coding is used)."""
    encoding: str
    """Normalized Content-Encoding: ``"identity"``, ``"gzip"``, ``"deflate, gzip"``..."""

    def __init__(self, codings: List[str], limits: Limits, piece_size: int) -> None:
        self.encoding = ", ".join(codings) if codings else "identity"
        self.compressed = 0
        self.limits = limits
        self.piece_size = piece_size
        # Stages in decoding order: the last coding applied is undone first.
        stage_cap = 2 * limits.max_body + 64 * 1024
        self._meters: List[_Meter] = []
        self._stages: List[_Stage] = []
        for i, name in enumerate(reversed(codings)):
            final = i == len(codings) - 1
            meter = _Meter(limits.max_body if final else stage_cap, final, piece_size)
            self._meters.append(meter)
            self._stages.append(STAGES[name](name, meter))
        if not codings:
            self._meters.append(_Meter(limits.max_body, True, piece_size))
        self._body_meter = self._meters[-1]
        self._error: Optional[IngestError] = None
        self._busy = False
        self._closed = False

    @property
    def produced(self) -> int:
        """Decoded body bytes handed out so far."""
        return self._body_meter.produced

    # -- public API ------------------------------------------------------------------

    def feed(self, data: BytesLike) -> Iterator[BytesLike]:
        """Decode one more chunk of the body; iterate the result for the decoded pieces."""
        self._check_usable()
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            # A multi-byte or multi-dimensional buffer: look at its raw bytes.
            view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
            data = view
        n = len(view)
        if not n:
            return iter(())
        self.compressed += n
        self._busy = True
        return self._guard(self._feed(data, view, n))

    def close(self) -> Iterator[BytesLike]:
        """The body is complete: the rest of it, or DecompressionError if truncated."""
        self._check_usable()
        self._busy = True
        return self._guard(self._close())

    # -- machinery -------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._error is not None:
            raise self._error
        if self._busy:
            raise RuntimeError("the iterator of the previous feed()/close() was not consumed")
        if self._closed:
            raise ValueError("the body decoder is closed")

    def _guard(self, pieces: Iterator[BytesLike]) -> Iterator[BytesLike]:
        """Turn every failure into an IngestError and leave the decoder dead after one."""
        done = False
        try:
            yield from pieces
            done = True
        except IngestError as exc:
            self._error = exc  # what the caller saw is what later calls raise
            raise
        except Exception as exc:  # a codec failing in a way we did not foresee
            err = DecompressionError(
                detail=f"could not decode the {self.encoding} body ({type(exc).__name__})")
            self._error = err
            raise err from exc
        finally:
            self._busy = False
            if not done and self._error is None:
                # Abandoned half-way (the consumer failed or stopped): input was lost.
                self._error = DecompressionError(
                    detail="the decoder was abandoned in the middle of a chunk")

    def _feed(self, data: BytesLike, view: memoryview, n: int) -> Iterator[BytesLike]:
        if not self._stages:   # identity: the chunk itself, in pieces
            piece = self.piece_size
            if n <= piece:
                yield from self._account(self._body_meter, (data,))
            else:
                yield from self._account(
                    self._body_meter, (view[i:i + piece] for i in range(0, n, piece)))
            return
        view, over = self._account_input(view, n)
        if len(view):
            yield from self._run(0, self._stages[0].feed(view))
        if over is not None:
            self._error = over
            raise over

    def _close(self) -> Iterator[BytesLike]:
        for i, stage in enumerate(self._stages):
            yield from self._run(i, stage.finish())
        self._closed = True

    def _run(self, i: int, outputs: Iterable[BytesLike]) -> Iterator[BytesLike]:
        """Account stage i's outputs and push them through the stages after it."""
        metered = self._account(self._meters[i], outputs)
        if i + 1 == len(self._stages):
            yield from metered
            return
        following = self._stages[i + 1]
        for piece in metered:
            yield from self._run(i + 1, following.feed(piece))

    # -- accounting: the one place limits are enforced, for every encoding ------------

    def _account_input(
        self, view: memoryview, n: int
    ) -> Tuple[memoryview, Optional[PayloadTooLarge]]:
        """max_compressed, for a body sent with a coding (n bytes already counted).

        Over the limit, the part within it is still decoded (then the 413 is raised),
        so the outcome does not depend on how the body was chunked.
        """
        allowed = self.limits.max_compressed - (self.compressed - n)
        if n <= allowed:
            return view, None
        over = PayloadTooLarge(
            detail=f"compressed body larger than {self.limits.max_compressed} bytes")
        return view[:max(allowed, 0)], over

    def _account(self, meter: _Meter, outputs: Iterable[BytesLike]) -> Iterator[BytesLike]:
        """Count one stage's output against its limit (max_body with offset for the
        body, the intermediate cap otherwise) and the body against max_ratio."""
        limits = self.limits
        for out in outputs:
            n = len(out)
            if not n:
                continue
            room = meter.limit - meter.produced
            if n > room:
                if meter.final:
                    err = PayloadTooLarge(
                        detail=f"body larger than {meter.limit} bytes", offset=meter.limit)
                else:
                    err = PayloadTooLarge(
                        detail=f"intermediate decoded stage larger than {meter.limit} bytes")
                self._error = err  # dead even if the consumer stops after the head
                if room > 0:
                    meter.produced = meter.limit
                    yield memoryview(out)[:room]
                raise err
            meter.produced += n
            if (meter.final and limits.max_ratio is not None
                    and meter.produced > RATIO_FLOOR
                    and meter.produced > limits.max_ratio * self.compressed):
                err = PayloadTooLarge(
                    detail=f"compression ratio above {limits.max_ratio:g}")
                self._error = err
                raise err
            yield out


# -- codec stages ----------------------------------------------------------------------


__all__ = [
    "BodyDecoder", "ENCODING_MESSAGE", "MAX_CODINGS", "SUPPORTED_ENCODINGS",
    "ZSTD_MAX_WINDOW", "open_decoder", "parse_content_encoding",
]
