"""The streaming decoder of each Content-Encoding: one stage per coding.

A stage turns one coding's bytes into its decoded bytes with every codec call capped:
zlib's (or isal's) ``max_length``, brotli's ``output_buffer_limit``, zstd given input
block by block. Each stage reports to a :class:`_Meter` that says how much it may still
produce (one piece, or one byte past its limit, whichever is smaller) and counts the
gzip members / zstd frames and blocks it meets. :class:`fastingest.compression.BodyDecoder`
chains the stages of a body's codings and checks the limits; its module docstring lists
the behaviours both share.
"""
from __future__ import annotations

import os
import zlib
from typing import Any, Dict, Iterator, Tuple, Type, cast

from .constants import BytesLike, MiB
from .errors import DecompressionError, PayloadTooLarge

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
INFLATE_ERRORS: Tuple[Type[BaseException], ...] = (zlib.error,)
if _isal_zlib is not None:
    INFLATERS["isal"] = _isal_zlib
    INFLATE_ERRORS += (cast(Type[BaseException], _isal_zlib.error),)
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


#: Largest zstd window accepted: RFC 9659 caps the HTTP "zstd" coding at 8 MB windows.
ZSTD_MAX_WINDOW = 8 * MiB
#: zstd's Block_Maximum_Size: no block may regenerate more than this.
ZSTD_MAX_BLOCK = 128 * 1024
#: Most output one zstd call is given input for (see _ZstdStage._room).
ZSTD_CALL_OUTPUT = 2 * ZSTD_MAX_BLOCK
#: gzip members and zstd frames/blocks allowed whatever they hold...
UNIT_FLOOR = 1024
#: ...and beyond that, one more for every this many decoded bytes (see _Meter.count_unit).
UNIT_BYTES = 128


def _deflate_wbits(cmf: int, flg: int) -> int:
    """zlib-wrapped deflate when its two header bytes say so, else raw deflate."""
    zlib_wrapped = (cmf & 0x0F) == 8 and (cmf >> 4) <= 7 and (cmf * 256 + flg) % 31 == 0
    return zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS


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
        if isinstance(exc, INFLATE_ERRORS[1:]):     # isal's
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
            except INFLATE_ERRORS as exc:
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


STAGES: Dict[str, "type[_Stage]"] = {"gzip": _ZlibStage, "deflate": _ZlibStage}
if _zstd is not None:
    STAGES["zstd"] = _ZstdStage
if _brotli is not None:
    STAGES["br"] = _BrotliStage

__all__ = [
    "INFLATER", "INFLATERS", "INFLATER_DEFAULT", "INFLATE_ERRORS", "MiB", "STAGES", "UNIT_BYTES", "UNIT_FLOOR",
    "ZSTD_CALL_OUTPUT", "ZSTD_MAX_BLOCK", "ZSTD_MAX_WINDOW",
]
