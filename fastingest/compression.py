"""Bounded, streaming decompression of request bodies (``Content-Encoding``).

``open_decoder(content_encoding, limits)`` returns a :class:`BodyDecoder`: feed it the
body as it arrives and it hands out the decoded body in pieces of at most ``piece_size``
bytes. Nothing is ever decompressed in one shot: every codec call is capped (zlib's
``max_length``, brotli's ``output_buffer_limit``, zstd given input block by block), so
a decompression bomb costs at most ``max_body`` bytes of work and a piece of memory.

Behaviours worth knowing (all covered by tests/test_compression.py):

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
import os
import zlib
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Type, Union, cast

from .errors import DecompressionError, IngestError, PayloadTooLarge, UnsupportedMediaType
from .formats import MAX_CACHED_HEADER
from .limits import DEFAULT_LIMITS, Limits

try:  # the [zstd] extra
    import zstandard as _zstd
except ImportError:  # pragma: no cover - exercised only without the extra
    _zstd = None  # type: ignore[assignment]

try:  # the [isal] extra: ISA-L's inflate behind zlib's decompressobj API
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - exercised only without the extra
    _isal_zlib = None  # type: ignore[assignment]

#: The inflaters gzip/deflate can run on, by name, and what a corrupt stream raises in each.
INFLATERS: Dict[str, Any] = {"zlib": zlib}
_INFLATE_ERRORS: Tuple[Type[BaseException], ...] = (zlib.error,)
if _isal_zlib is not None:
    INFLATERS["isal"] = _isal_zlib
    _INFLATE_ERRORS += (cast(Type[BaseException], _isal_zlib.error),)
#: What every gzip/deflate decompressobj is made by (read at each use, so a test or a
#: caller may swap it): isal when installed, unless ``FASTINGEST_INFLATER=zlib``.
INFLATER: Any = INFLATERS.get(os.environ.get("FASTINGEST_INFLATER", "isal"), zlib)
INFLATER_DEFAULT: Any = INFLATER    # what the process started with (tests swap INFLATER)

try:  # the [brotli] extra
    import brotli as _brotli

    # Bounded output needs Decompressor.process(data, output_buffer_limit=...) and
    # can_accept_more_data() (Brotli >= 1.2). Without them br would be a bomb vector.
    _probe = _brotli.Decompressor()
    _probe.process(b"", output_buffer_limit=1)
    _probe.can_accept_more_data()
    _probe.is_finished()
    del _probe
except Exception:  # ImportError, or an old/foreign brotli module (TypeError, AttributeError)
    _brotli = None

BytesLike = Union[bytes, bytearray, memoryview]

MiB = 1024 * 1024
#: Decompressed pieces handed out, unless the caller asks for another size.
DEFAULT_PIECE = 256 * 1024
#: Most real (non-identity) codings one Content-Encoding header may stack.
MAX_CODINGS = 4
#: Largest zstd window accepted: RFC 9659 caps the HTTP "zstd" coding at 8 MB windows.
ZSTD_MAX_WINDOW = 8 * MiB
#: zstd's Block_Maximum_Size: no block may regenerate more than this.
ZSTD_MAX_BLOCK = 128 * 1024
#: Most output one zstd call is given input for (see _ZstdStage._room).
ZSTD_CALL_OUTPUT = 2 * ZSTD_MAX_BLOCK
#: max_ratio is only judged once the output is past this size (small bodies compress well).
RATIO_FLOOR = 1 * MiB
#: gzip members and zstd frames/blocks allowed whatever they hold...
UNIT_FLOOR = 1024
#: ...and beyond that, one more for every this many decoded bytes (see _Meter.count_unit).
UNIT_BYTES = 128

_ORDER = ("gzip", "deflate", "zstd", "br", "identity")
_AVAILABLE = {
    "gzip": True,
    "deflate": True,
    "zstd": _zstd is not None,
    "br": _brotli is not None,
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


def _deflate_wbits(cmf: int, flg: int) -> int:
    """zlib-wrapped deflate when its two header bytes say so, else raw deflate."""
    zlib_wrapped = (cmf & 0x0F) == 8 and (cmf >> 4) <= 7 and (cmf * 256 + flg) % 31 == 0
    return zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS


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
    obj = INFLATER.decompressobj(wbits)
    try:
        # Capped well below max_body: bombs and big bodies take the streaming path,
        # whose memory stays at a few pieces.
        out: bytes = obj.decompress(body, min(limits.max_body + 1, INFLATE_WHOLE_CAP))
    except _INFLATE_ERRORS:
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


class _Meter:
    """Output accounting of one stage: how much it produced and may produce."""

    __slots__ = ("limit", "produced", "final", "piece_size", "units")

    def __init__(self, limit: int, final: bool, piece_size: int) -> None:
        self.limit = limit
        self.produced = 0
        self.units = 0
        self.final = final
        self.piece_size = piece_size

    def room(self) -> int:
        """Most bytes the next codec call may produce: one past the limit is enough to
        know it was crossed, and a piece is never larger than piece_size."""
        return min(self.piece_size, self.limit - self.produced + 1)

    def count_unit(self, what: str, pending: int = 0) -> None:
        """Count one gzip member / zstd frame or block before decoding it.

        Each costs Python-level work whatever it holds, so a body of empty members or
        blocks (10 MiB of them took 11-16 s) is a CPU bomb: beyond UNIT_FLOOR, every
        unit must be paid for by UNIT_BYTES of output on average. ``pending`` is output
        already known to be on its way (zstd raw/RLE blocks read but not yet decoded).
        """
        self.units += 1
        if self.units > UNIT_FLOOR and \
                self.units > UNIT_FLOOR + (self.produced + pending) // UNIT_BYTES:
            raise PayloadTooLarge(
                detail=f"too many {what} for the data they hold "
                       f"(more than {UNIT_FLOOR} + 1 per {UNIT_BYTES} decoded bytes)")


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
            self._stages.append(_STAGES[name](name, meter))
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


class _Stage:
    """One coding's streaming decoder.

    ``feed(data)`` yields decoded output, each codec call capped at ``meter.room()``;
    ``finish()`` yields what is left and raises if the stream is incomplete.
    """

    def __init__(self, name: str, meter: _Meter) -> None:
        self.name = name
        self.meter = meter
        self.seen = 0  # input bytes received
        # Input is handed to the codec in slices: zlib copies the unconsumed rest of
        # its input on every capped call, so the slice bounds that copying.
        self.in_slice = min(max(meter.piece_size, 4096), 1 * MiB)

    def feed(self, data: BytesLike) -> Iterator[BytesLike]:
        raise NotImplementedError

    def finish(self) -> Iterator[BytesLike]:
        raise NotImplementedError

    def _emit(self, out: bytes) -> Iterator[BytesLike]:
        """Hand out a codec's output in pieces of at most meter.room() bytes."""
        n = len(out)
        room = self.meter.room()
        if n <= room:
            if n:
                yield out
            return
        view = memoryview(out)
        pos = 0
        while pos < n:
            room = self.meter.room()  # the consumer has accounted the previous piece
            yield view[pos:pos + room]
            pos += room

    def _corrupt(self, exc: BaseException) -> DecompressionError:
        reason = str(exc).split(": ", 1)[-1].strip() or type(exc).__name__
        if isinstance(exc, _INFLATE_ERRORS[1:]):     # isal's
            reason = _isal_reason(reason)
        return DecompressionError(detail=f"corrupt {self.name} data: {reason}")

    def _truncated(self) -> DecompressionError:
        return DecompressionError(detail=f"truncated {self.name} stream")


#: isal's wording of the faults zlib names too, in zlib's words: a corrupt body gets the
#: same detail whichever inflater found the fault.
_ISAL_REASONS = {
    "Incorrect checksum found": "incorrect data check",
    "Incorrect length of data produced": "incorrect length check",
    "Invalid lookback distance found": "invalid distance too far back",
    "Dictionary needed to continue": "need dictionary",
}


def _isal_reason(message: str) -> str:
    """isal's ``Error -6 Incorrect checksum found`` as zlib says it (``incorrect data
    check``); a fault zlib words differently keeps isal's text, lower-cased."""
    parts = message.split(" ", 2)
    if len(parts) == 3 and parts[0] == "Error" and parts[1].lstrip("-").isdigit():
        message = parts[2]
    return _ISAL_REASONS.get(message, message[:1].lower() + message[1:])


_MEMBER, _BETWEEN, _PADDING, _DONE = range(4)
#: First input slice of a gzip member. CPython copies the input zlib did not use into
#: unused_data/unconsumed_tail on every call; small slices at a member's start keep a
#: body of many tiny members from copying the rest of a large slice once per member.
_FIRST_SLICE = 1024


class _ZlibStage(_Stage):
    """gzip (multi-member) and deflate (zlib-wrapped or raw) through the INFLATER's
    decompressobj (isal's or zlib's)."""

    def __init__(self, name: str, meter: _Meter) -> None:
        super().__init__(name, meter)
        self._gzip = name == "gzip"
        self._obj: Any = None
        self._state = _BETWEEN  # no member/stream started yet
        self._members = 0
        self._head = b""        # deflate: the first byte while waiting for the second
        self._step = self.in_slice
        self._more = False      # the last call filled its cap: output may be pending
        self._flg_at = -1       # gzip: where the member's FLG byte is in the input to come

    def feed(self, data: BytesLike) -> Iterator[BytesLike]:
        view = memoryview(data)
        self.seen += len(view)
        if not self._gzip and self._obj is None and self._state == _BETWEEN:
            if len(self._head) + len(view) < 2:
                self._head += bytes(view)
                return
            first = self._head + bytes(view[:2 - len(self._head)])
            cmf, flg = first[0], first[1]
            self._obj = INFLATER.decompressobj(_deflate_wbits(cmf, flg))
            self._state = _MEMBER
            if self._head:
                head, self._head = self._head, b""
                yield from self._pump(memoryview(head))
        yield from self._pump(view)

    def finish(self) -> Iterator[BytesLike]:
        yield from self._pump(memoryview(b""))
        if self._state == _MEMBER or self._head:
            raise self._truncated()

    def _pump(self, view: memoryview) -> Iterator[BytesLike]:
        """Decode all of view (and any output zlib still holds)."""
        pos, n = 0, len(view)
        while pos < n or self._more:
            if self._state != _MEMBER:
                pos = self._between(view, pos)
                continue
            # Whatever zlib leaves unused stays in view: only its length is needed.
            chunk = view[pos:pos + self._step]
            if 0 <= self._flg_at < len(chunk):
                self._check_flags(chunk[self._flg_at])
            room = self.meter.room()
            try:
                out = self._obj.decompress(chunk, room)
            except _INFLATE_ERRORS as exc:
                raise self._corrupt(exc) from None
            if self._obj.eof:  # member/stream complete: _between judges what follows
                pos += len(chunk) - len(self._obj.unused_data)
                self._state = _BETWEEN if self._gzip else _DONE
                self._more = False
            else:
                used = len(chunk) - len(self._obj.unconsumed_tail)
                if not used and not out and len(chunk):  # never spin: a hang is worse
                    raise DecompressionError(detail=f"corrupt {self.name} data: no progress")
                pos += used
                if self._flg_at >= 0:
                    self._flg_at -= used
                self._more = len(out) == room
                self._step = min(self._step * 2, self.in_slice)
            if out:
                yield out

    def _check_flags(self, flg: int) -> None:
        """A gzip member's FLG byte: RFC 1952 makes its reserved bits an error. zlib says
        so itself; ISA-L ignores them, so the stage checks for both inflaters."""
        self._flg_at = -1
        if flg & 0xE0:
            raise DecompressionError(detail=f"corrupt {self.name} data: unknown header flags set")

    def _between(self, view: memoryview, pos: int) -> int:
        """Judge the bytes at view[pos:] after a member/stream (or before the first
        gzip member); return the position to continue from."""
        if self._state == _DONE:
            raise DecompressionError(detail="trailing data after deflate stream")
        if self._state == _PADDING:
            chunk = bytes(view[pos:pos + self.in_slice])
            if chunk.count(0) != len(chunk):
                raise DecompressionError(detail="trailing data after gzip member")
            return pos + len(chunk)
        first = view[pos]
        if first == 0x1F:  # a (next) gzip member; zlib checks the rest of the header
            self.meter.count_unit("gzip members")
            self._obj = INFLATER.decompressobj(16 + zlib.MAX_WBITS)
            self._state = _MEMBER
            self._members += 1
            self._step = _FIRST_SLICE
            self._flg_at = 3
            return pos
        if self._members == 0:
            raise DecompressionError(detail="not gzip data: bad magic number")
        if first == 0:
            self._state = _PADDING
            return pos
        raise DecompressionError(detail="trailing data after gzip member")


_ZSTD_MAGIC = 0xFD2FB528
_Z_MAGIC, _Z_SKIP_SIZE, _Z_FHD, _Z_HEADER, _Z_BLOCK, _Z_BODY, _Z_CHECKSUM = range(7)


class _ZstdStage(_Stage):
    """zstd through zstandard's decompressobj, with the output of every call bounded.

    zstandard's decompressobj has no output cap, but no zstd block may regenerate more
    than 128 KiB (raw and RLE blocks say exactly how much). Reading the frame and block
    headers here (a few bytes each) lets the input be cut so that one call can produce
    at most about ``meter.room()`` bytes (one block, when the room is smaller). Headers
    are checked here too: a window over ZSTD_MAX_WINDOW is refused before zstd could
    allocate it.
    """

    def __init__(self, name: str, meter: _Meter) -> None:
        super().__init__(name, meter)
        # Defence in depth: zstd itself refuses larger windows too.
        self._dctx = _zstd.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._obj: Any = None
        self._state = _Z_MAGIC
        self._need = 4
        self._hdr = bytearray()
        self._left = 0          # bytes left in the current block body / skippable frame
        self._skipping = False  # in a skippable frame: its bytes never reach zstd
        self._fhd = 0
        self._last = False
        self._bound = 0         # most output the current block can regenerate
        self._exact_block = False  # ...and exactly that much (a raw or RLE block)
        self._exact = 0         # output of raw/RLE blocks read but not yet given to zstd

    def feed(self, data: BytesLike) -> Iterator[BytesLike]:
        view = memoryview(data)
        n = len(view)
        self.seen += n
        pos = start = 0         # view[start:pos] is read here but not yet given to zstd
        bound = 0               # most output the blocks completed in that span can make
        room = self._room()
        while pos < n:
            if self._state == _Z_BODY:
                take = min(self._left, n - pos)
                pos += take
                self._left -= take
                if self._skipping:
                    start = pos
                    if not self._left:
                        self._skipping = False
                        self._expect(_Z_MAGIC, 4)
                    continue
                if self._left:
                    continue
                frame_ended = self._block_done()
                bound += self._bound
                if self._exact_block:
                    self._exact += self._bound
                if frame_ended or bound + ZSTD_MAX_BLOCK > room:
                    yield from self._give(view[start:pos])
                    start, bound, room = pos, 0, self._room()
                    if frame_ended:
                        self._end_frame()
                continue
            take = min(self._need - len(self._hdr), n - pos)
            self._hdr += view[pos:pos + take]
            pos += take
            if len(self._hdr) < self._need:
                break
            hdr = bytes(self._hdr)
            self._hdr.clear()
            state = self._state
            if state == _Z_MAGIC:
                start = pos  # a magic number is given on its own, or skipped
                self.meter.count_unit("zstd frames and blocks", self._exact)
                magic = int.from_bytes(hdr, "little")
                if magic == _ZSTD_MAGIC:
                    self._obj = self._dctx.decompressobj()
                    self._expect(_Z_FHD, 1)
                    yield from self._give(hdr)
                elif magic & 0xFFFFFFF0 == 0x184D2A50:
                    self._expect(_Z_SKIP_SIZE, 4)
                else:
                    raise DecompressionError(detail="not zstd data: bad magic number")
            elif state == _Z_SKIP_SIZE:
                start = pos
                size = int.from_bytes(hdr, "little")
                if size:
                    self._state, self._left, self._skipping = _Z_BODY, size, True
                else:
                    self._expect(_Z_MAGIC, 4)
            elif state == _Z_FHD:
                fhd = self._fhd = hdr[0]
                single = fhd & 0x20
                fcs_size = (1 if single else 0, 2, 4, 8)[fhd >> 6]
                self._expect(_Z_HEADER, (0 if single else 1) + (0, 1, 2, 4)[fhd & 3] + fcs_size)
            elif state == _Z_HEADER:
                self._check_window(hdr)
                self._expect(_Z_BLOCK, 3)
            elif state == _Z_BLOCK:
                self.meter.count_unit("zstd frames and blocks", self._exact)
                value = int.from_bytes(hdr, "little")
                self._last = bool(value & 1)
                block_type = (value >> 1) & 3
                size = value >> 3
                if block_type == 3:
                    raise DecompressionError(detail="corrupt zstd data: reserved block type")
                if size > ZSTD_MAX_BLOCK:
                    raise DecompressionError(
                        detail="corrupt zstd data: block larger than 128 KiB")
                # raw and RLE blocks regenerate exactly `size` bytes, compressed ones
                # up to the block maximum
                self._exact_block = block_type != 2
                self._bound = size if self._exact_block else ZSTD_MAX_BLOCK
                self._state, self._left = _Z_BODY, (1 if block_type == 1 else size)
                if not self._left:  # an empty block: done already
                    self._state = _Z_BLOCK
                    frame_ended = self._block_done()
                    if frame_ended:
                        yield from self._give(view[start:pos])
                        start, bound, room = pos, 0, self._room()
                        self._end_frame()
            elif state == _Z_CHECKSUM:
                yield from self._give(view[start:pos])
                start, bound, room = pos, 0, self._room()
                self._end_frame()
        if start < pos and self._state not in (_Z_MAGIC, _Z_SKIP_SIZE) and not self._skipping:
            yield from self._give(view[start:pos])

    def finish(self) -> Iterator[BytesLike]:
        if self._state != _Z_MAGIC or self._hdr:
            raise self._truncated()
        return
        yield  # pragma: no cover - makes this a generator

    def _room(self) -> int:
        # Output of one call: what the consumer may take, and no more than a few
        # blocks (zstandard grows its result buffer block by block, copying it).
        return min(self.meter.room(), ZSTD_CALL_OUTPUT)

    def _give(self, seg: BytesLike) -> Iterator[BytesLike]:
        self._exact = 0  # output the given blocks regenerate is counted once handed out
        try:
            out = self._obj.decompress(seg)
        except _zstd.ZstdError as exc:
            raise self._corrupt(exc) from None
        if out:
            yield from self._emit(out)

    def _expect(self, state: int, need: int) -> None:
        self._state = state
        self._need = need

    def _block_done(self) -> bool:
        """A block's bytes are all read: what comes next? True when the frame ended."""
        if not self._last:
            self._expect(_Z_BLOCK, 3)
        elif self._fhd & 0x04:
            self._expect(_Z_CHECKSUM, 4)
        else:
            return True
        return False

    def _end_frame(self) -> None:
        if not self._obj.eof:  # our reading of the frame and zstd's disagree
            raise DecompressionError(detail="corrupt zstd data: frame does not end")
        self._obj = None
        self._expect(_Z_MAGIC, 4)

    def _check_window(self, rest: bytes) -> None:
        fhd = self._fhd
        if fhd & 0x20:  # single segment: the window is the content size
            size = (1, 2, 4, 8)[fhd >> 6]
            window = int.from_bytes(rest[len(rest) - size:], "little")
            if size == 2:
                window += 256
        else:
            exponent, mantissa = rest[0] >> 3, rest[0] & 7
            base = 1 << (10 + exponent)
            window = base + (base >> 3) * mantissa
        if window > ZSTD_MAX_WINDOW:
            raise DecompressionError(
                detail=f"zstd window of {window} bytes is larger than the "
                       f"{ZSTD_MAX_WINDOW} allowed")


class _BrotliStage(_Stage):
    """br through brotli.Decompressor.process(data, output_buffer_limit=...)."""

    def __init__(self, name: str, meter: _Meter) -> None:
        super().__init__(name, meter)
        self._obj = _brotli.Decompressor()
        self._more = False  # output pending: process() may only be called with b""

    def feed(self, data: BytesLike) -> Iterator[BytesLike]:
        view = memoryview(data)
        n = len(view)
        self.seen += n
        pos = 0
        step = self.in_slice
        obj = self._obj
        chunk: BytesLike
        while True:
            if self._more:
                chunk = b""
            elif pos < n:
                chunk = view[pos:pos + step]
                pos += len(chunk)
            else:
                return
            room = self.meter.room()
            try:
                out = obj.process(chunk, output_buffer_limit=room)
                # The buffer grows in steps, so output may pass the limit (by up to
                # about as much again); _emit splits it. Output may be pending when the
                # limit was reached, and must be while input is still held back.
                self._more = len(out) >= room or not obj.can_accept_more_data()
            except _brotli.error as exc:
                raise self._corrupt(exc) from None
            if self._more and not out and not len(chunk):
                raise DecompressionError(detail="corrupt br data: the decoder made no progress")
            yield from self._emit(out)

    def finish(self) -> Iterator[BytesLike]:
        yield from self.feed(b"")
        if self.seen and not self._obj.is_finished():
            raise self._truncated()


_STAGES: Dict[str, "type[_Stage]"] = {"gzip": _ZlibStage, "deflate": _ZlibStage}
if _zstd is not None:
    _STAGES["zstd"] = _ZstdStage
if _brotli is not None:
    _STAGES["br"] = _BrotliStage

__all__ = [
    "BodyDecoder", "ENCODING_MESSAGE", "MAX_CODINGS", "SUPPORTED_ENCODINGS",
    "ZSTD_MAX_WINDOW", "open_decoder", "parse_content_encoding",
]
