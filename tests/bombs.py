"""Decompression bombs built without allocating what they inflate to (shared by tests)."""
from __future__ import annotations

import functools
import zlib

MiB = 1024 * 1024
GiB = 1024 * MiB
CRC32_OF_1GIB_ZEROS = 0x5B64C2B0  # zlib.crc32 over 2**30 zero bytes


@functools.lru_cache(maxsize=None)
def raw_deflate_fill(mib: int, fill: int = 0, prefix: bytes = b"") -> bytes:
    """A raw deflate stream of ``prefix`` then ``mib`` MiB of ``fill`` bytes: after a full
    flush the compressor starts afresh, so every 1 MiB block compresses identically."""
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes([fill]) * MiB) + c.flush(zlib.Z_FULL_FLUSH)
    return head + block * mib + c.flush()


def raw_deflate_zeros(mib: int) -> bytes:
    return raw_deflate_fill(mib)


def gzip_bomb(mib: int, crc: int, fill: int = 0, prefix: bytes = b"") -> bytes:
    """gzip of ``prefix`` + ``mib`` MiB of ``fill`` (``crc`` is the trailer's CRC-32;
    a decoder that stops at its limit never reads it)."""
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    size = (len(prefix) + mib * MiB) % (1 << 32)
    return header + raw_deflate_fill(mib, fill, prefix) + crc.to_bytes(4, "little") + \
        size.to_bytes(4, "little")


def zlib_bomb(mib: int, fill: int = 0, prefix: bytes = b"") -> bytes:
    data_len = len(prefix) + mib * MiB
    adler = 1 if fill or prefix else (((data_len % 65521) << 16) | 1)  # exact for zeros only
    return b"\x78\xda" + raw_deflate_fill(mib, fill, prefix) + adler.to_bytes(4, "big")


def zstd_header(window_descriptor: int) -> bytes:
    return (0xFD2FB528).to_bytes(4, "little") + bytes([0x00, window_descriptor])


def rle_block(size: int, last: bool, byte: int = 0) -> bytes:
    return (int(last) | (1 << 1) | (size << 3)).to_bytes(3, "little") + bytes([byte])


def raw_block(content: bytes, last: bool) -> bytes:
    return (int(last) | (0 << 1) | (len(content) << 3)).to_bytes(3, "little") + content


def zstd_bomb(mib: int, fill: int = 0, prefix: bytes = b"") -> bytes:
    """A frame of RLE blocks: 4 bytes for every 128 KiB of ``fill``."""
    blocks = mib * 8
    head = raw_block(prefix, False) if prefix else b""
    return zstd_header(7 << 3) + head + rle_block(128 * 1024, False, fill) * (blocks - 1) + \
        rle_block(128 * 1024, True, fill)


@functools.lru_cache(maxsize=None)
def br_bomb(mib: int, fill: int = 0, prefix: bytes = b"") -> bytes:
    import brotli

    c = brotli.Compressor(quality=1)
    block = bytes([fill]) * MiB
    return b"".join([c.process(prefix)] + [c.process(block) for _ in range(mib)] + [c.finish()])


# -- bombs of tiny events: 1 GiB of a short pattern, in each encoding ------------------

#: One tiny event per pattern, per content type (each length divides 1 MiB).
TINY_EVENTS = {
    "application/x-ndjson": (b"", b'{"a":1}\n'),
    "application/json": (b"[", b'{"a":1},'),
    "application/msgpack": (b"\xdd\xff\xff\xff\xff", b"\x81\xa1a\x01"),   # array32
}


@functools.lru_cache(maxsize=None)
def _pattern_block(pattern: bytes) -> bytes:
    assert MiB % len(pattern) == 0
    return pattern * (MiB // len(pattern))


@functools.lru_cache(maxsize=None)
def tiny_event_bomb(encoding: str, content_type: str = "application/x-ndjson",
                    mib: int = 1024) -> bytes:
    """``mib`` MiB of one tiny event repeated, compressed with ``encoding`` (gzip,
    deflate, zstd or br) without allocating what it inflates to."""
    head, pattern = TINY_EVENTS[content_type]
    block = _pattern_block(pattern)
    if encoding in ("gzip", "deflate"):
        c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
        body = first + (c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)) * mib + c.flush()
        crc, adler = zlib.crc32(head), zlib.adler32(head)
        for _ in range(mib):   # valid trailers: a body within the limits decodes
            crc, adler = zlib.crc32(block, crc), zlib.adler32(block, adler)
        if encoding == "deflate":   # zlib-wrapped
            return b"\x78\xda" + body + adler.to_bytes(4, "big")
        size = (len(head) + mib * MiB) % (1 << 32)
        return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body + crc.to_bytes(4, "little")
                + size.to_bytes(4, "little"))
    if encoding == "zstd":
        import zstandard

        z = zstandard.ZstdCompressor(level=1)
        return (z.compress(head) if head else b"") + z.compress(block) * mib
    if encoding == "br":
        import brotli

        c = brotli.Compressor(quality=1)
        return b"".join([c.process(head)] + [c.process(block) for _ in range(mib)] + [c.finish()])
    raise ValueError(encoding)
