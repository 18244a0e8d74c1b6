"""fastingest.compression: bounded streaming decoders for every Content-Encoding."""
from __future__ import annotations

import gzip
import os
import random
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastingest import codings
from fastingest.compression import (
    ENCODING_MESSAGE,
    MAX_CODINGS,
    SUPPORTED_ENCODINGS,
    ZSTD_MAX_WINDOW,
    open_decoder,
)
from fastingest.errors import (
    SIZE_MESSAGE,
    DecompressionError,
    IngestError,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from fastingest.limits import Limits

# Every test here runs on each gzip/deflate inflater (zlib, and isal: the [isal] extra).
pytestmark = pytest.mark.usefixtures("inflater")

zstandard = pytest.importorskip("zstandard")
brotli = pytest.importorskip("brotli")

from helpers import (CRC32_OF_1GIB_ZEROS, MiB, br_bomb, gzip_bomb, raw_block,  # noqa: E402
                     raw_deflate_zeros, rle_block, zlib_bomb, zstd_bomb, zstd_header)


def examples(n: int) -> int:
    """n examples under the dev profile, scaled with the active profile (ci, long)."""
    return max(10, int(n * settings.default.max_examples / 200))


# -- helpers ---------------------------------------------------------------------------


def raw_deflate(data: bytes, level: int = 6) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def zstd_frames(data: bytes) -> bytes:
    """Two frames and a skippable frame between them, checksummed."""
    cut = len(data) // 2
    cctx = zstandard.ZstdCompressor(write_checksum=True)
    skippable = (0x184D2A53).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"
    return cctx.compress(data[:cut]) + skippable + cctx.compress(data[cut:])


#: How each coding's bytes are made (several makers per coding where the format varies).
MAKERS = {
    "gzip": lambda d: gzip.compress(d, mtime=0),
    "gzip-members": lambda d: gzip.compress(d[: len(d) // 3], mtime=0)
    + gzip.compress(d[len(d) // 3:], mtime=0),
    "deflate-zlib": zlib.compress,
    "deflate-raw": raw_deflate,
    "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
    "zstd-frames": zstd_frames,
    # quality 11 on small inputs; large ones at 5 to keep the suite fast
    "br": lambda d: brotli.compress(d, quality=11 if len(d) < 100_000 else 5),
}


def coding_of(maker: str) -> str:
    return maker.split("-")[0]


def encode(content_encoding: str, data: bytes) -> bytes:
    """Apply a Content-Encoding list in header order (first listed, first applied)."""
    for name in content_encoding.split(","):
        name = name.strip().lower()
        if name in ("", "identity"):
            continue
        data = MAKERS[{"x-gzip": "gzip", "deflate": "deflate-zlib"}.get(name, name)](data)
    return data


def decode(content_encoding, body: bytes, cuts=(), limits: Limits = Limits(), piece_size=256 * 1024):
    """Feed body split at `cuts`, check every piece's size, return the decoded bytes."""
    dec = open_decoder(content_encoding, limits, piece_size=piece_size)
    out = bytearray()
    bounds = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    for lo, hi in zip(bounds, bounds[1:]):
        for piece in dec.feed(body[lo:hi]):
            if dec.encoding != "identity":
                assert 0 < len(piece) <= piece_size
            out += piece
    for piece in dec.close():
        assert 0 < len(piece) <= piece_size
        out += piece
    assert dec.produced == len(out)
    return bytes(out)


def feed_chunks(dec, body: bytes, chunk: int) -> int:
    """Feed body in chunks, drop the output, return the byte count (raises on error)."""
    n = 0
    for i in range(0, len(body), chunk):
        for piece in dec.feed(body[i:i + chunk]):
            n += len(piece)
    for piece in dec.close():
        n += len(piece)
    return n


compressible = st.lists(
    st.tuples(st.binary(min_size=1, max_size=24), st.integers(1, 60)), max_size=40
).map(lambda parts: b"".join(chunk * k for chunk, k in parts))
cut_points = st.lists(st.integers(0, 1 << 20), max_size=12)
piece_sizes = st.sampled_from([1, 3, 64, 4096, 256 * 1024])


# -- Content-Encoding parsing ----------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "identity", " Identity ", "identity, identity", ","])
def test_identity_spellings(value):
    dec = open_decoder(value)
    assert dec.encoding == "identity"
    body = b'{"a":1}'
    pieces = list(dec.feed(body))
    assert pieces == [body] and pieces[0] is body  # identity hands out the chunk itself
    assert list(dec.close()) == []


@pytest.mark.parametrize("value, normalized", [
    ("gzip", "gzip"), ("GZIP", "gzip"), (" gZip\t", "gzip"), ("x-gzip", "gzip"),
    ("X-Gzip", "gzip"), ("gzip, identity", "gzip"), ("identity,gzip", "gzip"),
    (b"gzip", "gzip"), ("deflate, gzip", "deflate, gzip"), ("DEFLATE", "deflate"),
    ("zstd", "zstd"), ("br", "br"), ("br, zstd ,gzip", "br, zstd, gzip"),
])
def test_content_encoding_normalized(value, normalized):
    assert open_decoder(value).encoding == normalized


@pytest.mark.parametrize("value", ["GZIP", "x-gzip", "X-GZIP", " gzip , identity ", "identity, Gzip"])
def test_gzip_spellings_decode(value):
    data = b'{"message":"hi"}\n' * 10
    assert decode(value, gzip.compress(data), cuts=[3, 20]) == data


@pytest.mark.parametrize("value", ["compress", "lzma", "gzip, foo", "gzip;q=1", "*", "x-deflate"])
def test_unknown_encoding_is_415(value):
    with pytest.raises(UnsupportedMediaType) as info:
        open_decoder(value)
    assert info.value.status == 415
    assert info.value.message == ENCODING_MESSAGE
    assert "\n" not in info.value.message and "unknown content coding" in info.value.detail


def test_encoding_message_names_the_supported_ones():
    assert SUPPORTED_ENCODINGS == ("gzip", "deflate", "zstd", "br", "identity")
    assert ENCODING_MESSAGE == "Unsupported Content-Encoding: use gzip, deflate, zstd, br or identity."


def test_chain_length_is_capped():
    open_decoder(", ".join(["gzip"] * MAX_CODINGS))
    with pytest.raises(UnsupportedMediaType) as info:
        open_decoder(", ".join(["gzip"] * (MAX_CODINGS + 1)))
    assert "more than" in info.value.detail
    # identity entries are free
    open_decoder(", ".join(["identity"] * 50 + ["gzip"] * MAX_CODINGS))


def test_unavailable_library_is_415(monkeypatch):
    from fastingest import compression

    monkeypatch.setitem(compression._AVAILABLE, "zstd", False)
    compression._parse_codings.cache_clear()   # parsed spellings are cached per process
    try:
        with pytest.raises(UnsupportedMediaType) as info:
            open_decoder("zstd")
        assert "not installed" in info.value.detail
    finally:
        monkeypatch.undo()
        compression._parse_codings.cache_clear()


def test_piece_size_must_be_positive():
    with pytest.raises(ValueError):
        open_decoder("gzip", piece_size=0)


# -- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("maker", sorted(MAKERS))
@given(data=compressible, cuts=cut_points, piece_size=piece_sizes)
@settings(max_examples=examples(40))
def test_round_trip(maker, data, cuts, piece_size):
    body = MAKERS[maker](data)
    assert decode(coding_of(maker), body, cuts, piece_size=piece_size) == data


@pytest.mark.parametrize("chain", [
    "gzip, identity", "identity, gzip", "deflate, gzip", "gzip, gzip", "br, zstd",
    "zstd, deflate, br, gzip",
])
@given(data=compressible, cuts=cut_points, piece_size=piece_sizes)
@settings(max_examples=examples(25))
def test_chain_round_trip(chain, data, cuts, piece_size):
    assert decode(chain, encode(chain, data), cuts, piece_size=piece_size) == data


@given(data=compressible, cuts=cut_points)
@settings(max_examples=examples(40))
def test_identity_round_trip(data, cuts):
    assert decode("identity", data, cuts) == data


@pytest.mark.parametrize("maker", sorted(MAKERS))
def test_one_byte_chunks_and_pieces(maker):
    data = b'{"dt":"2024-01-01T00:00:00Z","message":"hello"}\n' * 200
    body = MAKERS[maker](data)
    assert decode(coding_of(maker), body, cuts=range(len(body)), piece_size=1) == data


@pytest.mark.parametrize("maker", sorted(MAKERS))
def test_large_body_whole_and_streamed(maker):
    rng = random.Random(7)
    data = b"".join(
        b'{"i":%d,"v":"%s"}\n' % (i, rng.choice([b"x" * 40, os.urandom(20).hex().encode()]))
        for i in range(40000))
    body = MAKERS[maker](data)
    assert decode(coding_of(maker), body, piece_size=4 * MiB) == data
    assert decode(coding_of(maker), body, cuts=range(0, len(body), 65536)) == data


def test_input_types():
    data = b"hello world " * 100
    body = gzip.compress(data)
    for wrapped in (body, bytearray(body), memoryview(body)):
        assert b"".join(open_decoder("gzip").feed(wrapped)) == data
    import array

    words = array.array("I", body[: len(body) // 4 * 4])  # a buffer of 4-byte items
    dec = open_decoder(None)
    assert b"".join(bytes(p) for p in dec.feed(memoryview(words))) == words.tobytes()
    assert dec.compressed == len(words) * 4


def test_empty_body_decodes_to_nothing():
    for coding in ("gzip", "deflate", "zstd", "br", "deflate, gzip"):
        dec = open_decoder(coding)
        assert list(dec.feed(b"")) == [] and list(dec.close()) == []
        assert dec.produced == 0


# -- gzip ------------------------------------------------------------------------------


def test_multi_member_gzip():
    members = [gzip.compress(b"part %d\n" % i, mtime=0) for i in range(5)]
    body = b"".join(members)
    for cuts in ([], range(len(body)), [len(members[0]), len(members[0]) + 1]):
        assert decode("gzip", body, cuts) == b"".join(b"part %d\n" % i for i in range(5))


def test_empty_gzip_members():
    body = gzip.compress(b"") + gzip.compress(b"x") + gzip.compress(b"")
    assert decode("gzip", body) == b"x"


def test_gzip_zero_padding_is_ignored():
    body = gzip.compress(b"payload") + bytes(100)
    assert decode("gzip", body) == b"payload"
    assert decode("gzip", body, cuts=range(len(body))) == b"payload"


@pytest.mark.parametrize("garbage", [b"garbage", b"\n", bytes(10) + b"x", b"\x1f\x8bgarbage..."])
def test_gzip_trailing_garbage_is_400(garbage):
    body = gzip.compress(b"payload") + garbage
    for cuts in ([], range(len(body))):
        with pytest.raises(DecompressionError) as info:
            decode("gzip", body, cuts)
        assert info.value.status == 400
        assert "trailing data after gzip member" in info.value.detail or \
            "corrupt gzip data" in info.value.detail


def test_gzip_trailing_garbage_message():
    with pytest.raises(DecompressionError) as info:
        decode("gzip", gzip.compress(b"payload") + b"garbage")
    assert info.value.detail == "trailing data after gzip member"
    assert info.value.offset is None


def test_truncated_gzip_every_cut():
    body = gzip.compress(b'{"message":"hello world","n":12345}\n' * 3, mtime=0)
    for cut in range(1, len(body)):
        dec = open_decoder("gzip")
        got = b"".join(dec.feed(body[:cut]))
        with pytest.raises(DecompressionError) as info:
            got += b"".join(dec.close())
        assert info.value.detail == "truncated gzip stream", cut


def test_gzip_corrupt_crc_and_length():
    body = bytearray(gzip.compress(b"hello world" * 10))
    bad_crc = bytes(body[:-8]) + bytes([body[-8] ^ 1]) + bytes(body[-7:])
    with pytest.raises(DecompressionError) as info:
        decode("gzip", bad_crc)
    assert info.value.detail == "corrupt gzip data: incorrect data check"
    bad_len = bytes(body[:-4]) + bytes([body[-4] ^ 1]) + bytes(body[-3:])
    with pytest.raises(DecompressionError) as info:
        decode("gzip", bad_len)
    # ISA-L reports a wrong ISIZE as a failed check too (zlib names which one failed)
    assert info.value.detail in ("corrupt gzip data: incorrect length check",
                                 "corrupt gzip data: incorrect data check")
    if codings.INFLATER is zlib:
        assert info.value.detail == "corrupt gzip data: incorrect length check"


def test_gzip_corrupt_deflate_data():
    data = os.urandom(2000) * 3
    body = bytearray(gzip.compress(data))
    body[40] ^= 0xFF
    with pytest.raises(DecompressionError) as info:
        decode("gzip", bytes(body))
    assert info.value.detail.startswith("corrupt gzip data")


# -- deflate ---------------------------------------------------------------------------


@pytest.mark.parametrize("maker", [zlib.compress, raw_deflate])
def test_deflate_detection_with_one_byte_first_chunk(maker):
    data = b"deflate me " * 50
    body = maker(data)
    assert decode("deflate", body, cuts=[1]) == data
    assert decode("deflate", body, cuts=[1, 2, 3]) == data


def test_raw_deflate_of_every_first_byte():
    # Raw streams whose first bytes happen to look like zlib headers are the known
    # ambiguity of "deflate"; every stream zlib itself writes is told apart correctly.
    for level in range(10):
        data = bytes(range(256)) * level
        assert decode("deflate", raw_deflate(data, level)) == data
        assert decode("deflate", zlib.compress(data, level)) == data


def test_truncated_deflate():
    for body in (zlib.compress(b"x" * 1000), raw_deflate(os.urandom(300))):
        for cut in range(1, len(body), 7):
            with pytest.raises(DecompressionError) as info:
                decode("deflate", body[:cut])
            assert info.value.detail in ("truncated deflate stream",) or \
                info.value.detail.startswith("corrupt deflate data"), cut


def test_deflate_trailing_data():
    with pytest.raises(DecompressionError) as info:
        decode("deflate", zlib.compress(b"abc") + b"\x00")
    assert info.value.detail == "trailing data after deflate stream"


def test_zlib_bad_adler():
    body = bytearray(zlib.compress(b"abc" * 100))
    body[-1] ^= 1
    with pytest.raises(DecompressionError) as info:
        decode("deflate", bytes(body))
    assert info.value.detail == "corrupt deflate data: incorrect data check"


# -- zstd ------------------------------------------------------------------------------


def test_zstd_window_over_limit_is_refused():
    # Window_Descriptor exponent 21: a 2 GiB window. Refused before zstd allocates it.
    frame = zstd_header(21 << 3) + rle_block(10, last=True)
    with pytest.raises(DecompressionError) as info:
        decode("zstd", frame)
    assert "window of 2147483648 bytes" in info.value.detail
    # 8 MiB (exponent 13) is the largest accepted window.
    frame = zstd_header(13 << 3) + rle_block(10, last=True)
    assert decode("zstd", frame) == bytes(10)
    assert ZSTD_MAX_WINDOW == 8 * MiB
    frame = zstd_header((13 << 3) | 1) + rle_block(10, last=True)  # 9 MiB
    with pytest.raises(DecompressionError):
        decode("zstd", frame)


def test_zstd_single_segment_content_size_is_the_window():
    big = (0xFD2FB528).to_bytes(4, "little") + bytes([0xA0]) + (16 * MiB).to_bytes(4, "little")
    with pytest.raises(DecompressionError) as info:
        decode("zstd", big + rle_block(10, last=True))
    assert "window" in info.value.detail
    data = b"x" * 5000
    single = zstandard.ZstdCompressor(write_content_size=True).compress(data)
    assert single[4] & 0x20  # zstd writes small frames as single segment
    assert decode("zstd", single, cuts=range(len(single))) == data


def test_zstd_real_large_window_is_refused():
    # A streaming frame (no content size) from a compressor told to use a 16 MiB window.
    params = zstandard.ZstdCompressionParameters.from_level(
        3, window_log=24, write_content_size=False)
    cobj = zstandard.ZstdCompressor(compression_params=params).compressobj()
    body = cobj.compress(b"a" * 100) + cobj.flush()
    with pytest.raises(DecompressionError) as info:
        decode("zstd", body)
    assert "window" in info.value.detail


def test_zstd_block_rules():
    with pytest.raises(DecompressionError) as info:
        decode("zstd", zstd_header(7 << 3) + rle_block(200 * 1024, last=True))
    assert "block larger than 128 KiB" in info.value.detail
    reserved = (1 | (3 << 1) | (4 << 3)).to_bytes(3, "little") + b"abcd"
    with pytest.raises(DecompressionError) as info:
        decode("zstd", zstd_header(7 << 3) + reserved)
    assert "reserved block type" in info.value.detail


def test_zstd_truncated_and_corrupt():
    data = b'{"k":"v"}\n' * 500
    body = zstandard.ZstdCompressor(write_checksum=True).compress(data)
    for cut in range(1, len(body)):
        with pytest.raises(DecompressionError) as info:
            decode("zstd", body[:cut])
        assert info.value.detail == "truncated zstd stream", cut
    bad = bytearray(body)
    bad[-1] ^= 1
    with pytest.raises(DecompressionError) as info:
        decode("zstd", bytes(bad))
    assert info.value.detail.startswith("corrupt zstd data") and "checksum" in info.value.detail
    with pytest.raises(DecompressionError) as info:
        decode("zstd", body + b"junk")
    assert info.value.detail == "not zstd data: bad magic number"


def test_zstd_skippable_only_and_empty_frames():
    skippable = (0x184D2A50).to_bytes(4, "little") + (0).to_bytes(4, "little")
    assert decode("zstd", skippable) == b""
    empty = zstandard.ZstdCompressor().compress(b"")
    assert decode("zstd", empty + skippable + empty) == b""


@given(blocks=st.lists(st.one_of(
    st.tuples(st.just("rle"), st.integers(0, 128 * 1024), st.integers(0, 255)),
    st.tuples(st.just("raw"), st.binary(max_size=300), st.just(0)),
), min_size=1, max_size=40), cuts=cut_points, piece_size=piece_sizes)
@settings(max_examples=examples(40))
def test_zstd_handmade_blocks(blocks, cuts, piece_size):
    """Raw, RLE and empty blocks of any size, coalesced into calls by the stage."""
    plain = bytearray()
    frame = bytearray(zstd_header(7 << 3))  # 128 KiB window: enough for any block
    for i, (kind, arg, byte) in enumerate(blocks):
        last = i == len(blocks) - 1
        if kind == "rle":
            frame += rle_block(arg, last, byte)
            plain += bytes([byte]) * arg
        else:
            frame += raw_block(arg, last)
            plain += arg
    frame += zstandard.ZstdCompressor().compress(b"tail")  # a second frame
    plain += b"tail"
    assert decode("zstd", bytes(frame), cuts, piece_size=piece_size) == bytes(plain)


# -- br --------------------------------------------------------------------------------


def test_br_truncated_and_corrupt():
    data = b'{"k":"v","n":1}\n' * 300 + os.urandom(500)
    body = brotli.compress(data)
    for cut in range(1, len(body), 5):
        with pytest.raises(DecompressionError) as info:
            decode("br", body[:cut])
        assert info.value.detail == "truncated br stream" or \
            info.value.detail.startswith("corrupt br data"), cut
    with pytest.raises(DecompressionError) as info:
        decode("br", body + b"tail")
    assert info.value.detail.startswith("corrupt br data")


# -- wrong encoding for the bytes ------------------------------------------------------


@pytest.mark.parametrize("coding, body", [
    ("gzip", zlib.compress(b'{"a":1}')),               # zlib bytes sent as gzip
    ("gzip", b'{"a":1}'),                              # plain JSON sent as gzip
    ("gzip", b"\x1f"),                                 # half a magic number
    ("deflate", gzip.compress(b'{"a":1}')),            # gzip bytes sent as deflate
    ("zstd", gzip.compress(b'{"a":1}')),
    ("br", gzip.compress(b'{"a":1}')),
    ("gzip", zstandard.ZstdCompressor().compress(b'{"a":1}')),
    ("deflate, gzip", gzip.compress(b'{"a":1}')),      # inner stage is not deflate
])
def test_wrong_encoding_is_400(coding, body):
    with pytest.raises(DecompressionError) as info:
        decode(coding, body)
    assert info.value.status == 400
    assert info.value.detail and "\n" not in info.value.detail


def test_gzip_header_on_zlib_data_message():
    with pytest.raises(DecompressionError) as info:
        decode("gzip", zlib.compress(b"abc"))
    assert info.value.detail == "not gzip data: bad magic number"


# -- limits ----------------------------------------------------------------------------


def test_identity_over_max_body():
    limits = Limits(max_body=100)
    body = bytes(range(256))
    for cuts in ([], range(len(body)), [50, 101]):
        dec = open_decoder(None, limits)
        got = bytearray()
        with pytest.raises(PayloadTooLarge) as info:
            bounds = sorted({0, len(body), *cuts})
            for lo, hi in zip(bounds, bounds[1:]):
                for piece in dec.feed(body[lo:hi]):
                    got += piece
        assert info.value.offset == 100 and info.value.message == SIZE_MESSAGE
        assert info.value.status == 413
        assert bytes(got) == body[:100]  # the bytes before the limit are handed out
    assert decode(None, body[:100], limits=limits) == body[:100]  # exactly at the limit


@pytest.mark.parametrize("maker", sorted(MAKERS))
def test_decompressed_over_max_body(maker):
    limits = Limits(max_body=1000)
    data = bytes(range(256)) * 10
    body = MAKERS[maker](data)
    for cuts, piece in (([], 256 * 1024), (range(len(body)), 1), ([], 7)):
        dec = open_decoder(coding_of(maker), limits, piece_size=piece)
        got = bytearray()
        with pytest.raises(PayloadTooLarge) as info:
            bounds = sorted({0, len(body), *cuts})
            for lo, hi in zip(bounds, bounds[1:]):
                for p in dec.feed(body[lo:hi]):
                    got += p
            for p in dec.close():
                got += p
        assert info.value.offset == 1000
        assert bytes(got) == data[:1000]
        assert dec.produced == 1000
    assert decode(coding_of(maker), MAKERS[maker](data[:1000]), limits=limits) == data[:1000]


def test_compressed_over_max_compressed():
    limits = Limits(max_compressed=1000, max_body=10 * MiB)
    data = os.urandom(3000)  # incompressible: the gzip body is ~3000 bytes
    body = gzip.compress(data)
    for cuts in ([], range(0, len(body), 100)):
        dec = open_decoder("gzip", limits)
        got = bytearray()
        with pytest.raises(PayloadTooLarge) as info:
            bounds = sorted({0, len(body), *cuts})
            for lo, hi in zip(bounds, bounds[1:]):
                for p in dec.feed(body[lo:hi]):
                    got += p
        assert info.value.offset is None and "compressed body larger than 1000" in info.value.detail
        assert data.startswith(bytes(got))
    # identity is not subject to max_compressed, only to max_body
    assert decode(None, data, limits=limits) == data


def test_max_ratio():
    limits = Limits(max_ratio=50)
    zeros = gzip.compress(bytes(4 * MiB))  # ratio ~1000
    with pytest.raises(PayloadTooLarge) as info:
        decode("gzip", zeros, limits=limits)
    assert "ratio" in info.value.detail and info.value.offset is None
    text = b"".join(os.urandom(8).hex().encode() + b"\n" for _ in range(200000))
    body = gzip.compress(text)
    assert len(text) / len(body) < 50
    assert decode("gzip", body, limits=limits) == text
    # small bodies are never judged
    assert decode("gzip", gzip.compress(bytes(MiB)), limits=limits) == bytes(MiB)


def test_intermediate_stage_is_capped():
    # The inner deflate stream is 100 KB of empty stored blocks: no final output at
    # all, so only the cap on the intermediate stage stops the work.
    limits = Limits(max_body=1000)
    inner = b"\x00\x00\x00\xff\xff" * 20000
    with pytest.raises(PayloadTooLarge) as info:
        decode("deflate, gzip", gzip.compress(inner), limits=limits)
    assert "intermediate" in info.value.detail


def test_empty_units_are_a_cpu_bomb():
    """Members, frames and blocks that hold nothing still cost work each: past
    UNIT_FLOOR of them, each must bring UNIT_BYTES of output on average."""
    from fastingest.codings import UNIT_BYTES, UNIT_FLOOR

    empty_member = gzip.compress(b"", mtime=0)
    empty_frame = zstandard.ZstdCompressor().compress(b"")
    empty_block = (0).to_bytes(3, "little")
    bombs = [
        ("gzip", empty_member * 100000),
        ("zstd", empty_frame * 100000),
        ("zstd", zstd_header(7 << 3) + empty_block * 100000 + (1).to_bytes(3, "little")),
    ]
    for coding, body in bombs:
        dec = open_decoder(coding)
        with pytest.raises(PayloadTooLarge) as info:
            feed_chunks(dec, body, len(body))
        assert "too many" in info.value.detail
        assert dec.produced == 0
    # Up to the floor they are fine, and so are members that hold enough.
    assert decode("gzip", empty_member * UNIT_FLOOR) == b""
    event = b"e" * UNIT_BYTES
    body = gzip.compress(event, mtime=0) * (3 * UNIT_FLOOR)
    assert decode("gzip", body, cuts=range(0, len(body), 1000)) == event * (3 * UNIT_FLOOR)
    body = zstd_header(7 << 3) + rle_block(UNIT_BYTES, False) * (3 * UNIT_FLOOR) + \
        rle_block(0, True)
    assert decode("zstd", body) == bytes(UNIT_BYTES * 3 * UNIT_FLOOR)


# -- bombs -----------------------------------------------------------------------------


BOMBS = {
    "gzip": lambda: ("gzip", gzip_bomb(1024, CRC32_OF_1GIB_ZEROS)),
    "deflate-zlib": lambda: ("deflate", zlib_bomb(1024)),
    "deflate-raw": lambda: ("deflate", raw_deflate_zeros(1024)),
    "zstd": lambda: ("zstd", zstd_bomb(1024)),
    "br": lambda: ("br", br_bomb(1024)),
    "gzip-of-gzip": lambda: ("gzip, gzip", gzip.compress(gzip_bomb(1024, CRC32_OF_1GIB_ZEROS))),
}


def test_bomb_builders_are_valid_streams():
    crc = zlib.crc32(bytes(3 * MiB))
    assert gzip.decompress(gzip_bomb(3, crc)) == bytes(3 * MiB)
    assert zlib.decompress(zlib_bomb(3)) == bytes(3 * MiB)
    assert zstandard.ZstdDecompressor().decompressobj().decompress(zstd_bomb(3)) == bytes(3 * MiB)
    assert brotli.decompress(br_bomb(3)) == bytes(3 * MiB)
    assert decode("gzip", gzip_bomb(3, crc)) == bytes(3 * MiB)


@pytest.mark.parametrize("piece_size, chunk", [(256 * 1024, 64 * 1024), (4 * MiB, None)])
@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_bomb_stopped_at_max_body(bomb, piece_size, chunk):
    coding, body = BOMBS[bomb]()
    limits = Limits()  # 20 MiB decompressed, 10 MiB compressed
    tracemalloc.start()
    try:
        dec = open_decoder(coding, limits, piece_size=piece_size)
        with pytest.raises(PayloadTooLarge) as info:
            feed_chunks(dec, body, chunk or len(body))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.offset == limits.max_body and info.value.status == 413
    # No work past the limit: exactly max_body bytes were decoded and handed out.
    assert dec.produced == limits.max_body
    assert peak < 2 * limits.max_body
    # Memory follows the piece size, not the body (the 64 KiB chunks are copies).
    assert peak < 4 * piece_size + 2 * MiB, peak


# -- dead decoders and misuse ----------------------------------------------------------


def test_dead_after_error():
    dec = open_decoder("gzip")
    with pytest.raises(DecompressionError) as first:
        list(dec.feed(b"not gzip"))
    with pytest.raises(DecompressionError) as again:
        dec.feed(gzip.compress(b"fine"))
    assert again.value is first.value
    with pytest.raises(DecompressionError):
        dec.close()


def test_dead_after_limit():
    dec = open_decoder(None, Limits(max_body=10))
    with pytest.raises(PayloadTooLarge):
        list(dec.feed(b"x" * 11))
    with pytest.raises(PayloadTooLarge):
        dec.feed(b"x")


def test_dead_after_limit_in_a_chain():
    # The inner stage's cap and the body limit can both be crossed by one piece: later
    # calls raise the error the caller saw.
    dec = open_decoder("gzip, gzip", Limits(max_body=1000))
    body = gzip.compress(gzip.compress(bytes(10 * MiB)))
    with pytest.raises(PayloadTooLarge) as first:
        feed_chunks(dec, body, 1000)
    assert first.value.offset == 1000
    with pytest.raises(PayloadTooLarge) as again:
        dec.feed(b"x")
    assert again.value is first.value


def test_abandoned_iterator_kills_the_decoder():
    dec = open_decoder("gzip", piece_size=10)
    it = dec.feed(gzip.compress(b"x" * 1000))
    next(it)
    it.close()  # the consumer stopped (for instance its own parser failed)
    with pytest.raises(DecompressionError) as info:
        dec.feed(b"more")
    assert "abandoned" in info.value.detail


def test_unconsumed_iterator_is_a_usage_error():
    dec = open_decoder("gzip")
    pending = dec.feed(gzip.compress(b"x"))
    with pytest.raises(RuntimeError):
        dec.feed(b"more")
    assert b"".join(pending) == b"x"
    assert list(dec.close()) == []
    with pytest.raises(ValueError):
        dec.feed(b"after close")


def test_counters():
    data = b"hello " * 1000
    body = gzip.compress(data)
    dec = open_decoder("gzip")
    assert b"".join(dec.feed(body)) == data
    assert dec.compressed == len(body) and dec.produced == len(data)


# -- fuzz ------------------------------------------------------------------------------

FUZZ_CODINGS = ["gzip", "deflate", "zstd", "br", "identity", "deflate, gzip", "br, zstd"]


fuzz_bodies = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: b"\x1f\x8b\x08" + b),
    st.binary(max_size=300).map(lambda b: b"\x78\x9c" + b),
    st.binary(max_size=300).map(lambda b: (0xFD2FB528).to_bytes(4, "little") + b),
    st.binary(max_size=300).map(lambda b: (0x184D2A50).to_bytes(4, "little") + b),
)


@pytest.mark.parametrize("coding", FUZZ_CODINGS)
@given(body=fuzz_bodies, cuts=st.lists(st.integers(0, 400), max_size=5),
       piece_size=st.sampled_from([1, 5, 256 * 1024]))
@settings(max_examples=examples(100))
def test_fuzz_only_ingest_errors(coding, body, cuts, piece_size):
    limits = Limits(max_body=4096, max_compressed=200)
    try:
        decode(coding, body, cuts, limits=limits, piece_size=piece_size)
    except IngestError as exc:
        assert exc.status in (400, 413)
        assert exc.detail and "\n" not in exc.detail


@pytest.mark.parametrize("maker", sorted(MAKERS))
@given(data=st.data())
@settings(max_examples=examples(30))
def test_fuzz_mutated_streams(maker, data):
    """Real streams with a byte flipped, cut or inserted: a result or an IngestError."""
    plain = b'{"message":"hello","dt":1672490759}\n' * 30
    body = bytearray(MAKERS[maker](plain))
    i = data.draw(st.integers(0, len(body) - 1))
    op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
    if op == "flip":
        body[i] ^= data.draw(st.integers(1, 255))
    elif op == "cut":
        del body[i:i + data.draw(st.integers(1, 20))]
    else:
        body[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    try:
        decode(coding_of(maker), bytes(body), data.draw(cut_points))
    except IngestError as exc:
        assert exc.status in (400, 413)


# -- the two inflaters: same answers ----------------------------------------------------

INFLATE_MAKERS = ["gzip", "gzip-members", "deflate-zlib", "deflate-raw"]


def _answer(coding: str, body: bytes, cuts, limits: Limits, piece_size: int):
    try:
        return decode(coding, body, cuts, limits=limits, piece_size=piece_size)
    except IngestError as exc:
        # where zlib and ISA-L notice corruption, and their words for it, differ
        return (exc.status, exc.offset) if exc.status != 400 else ("corrupt", type(exc))


@pytest.mark.skipif("isal" not in codings.INFLATERS, reason="the [isal] extra")
@pytest.mark.parametrize("maker", INFLATE_MAKERS)
@given(plain=compressible, cuts=cut_points, piece_size=piece_sizes,
       seed=st.integers(0, 2**32), max_body=st.sampled_from([64, 4096, 1 << 20]))
@settings(max_examples=examples(60))
def test_inflaters_agree(monkeypatch, inflater, maker, plain, cuts, piece_size, seed, max_body):
    """zlib and isal give the same pieces, limits and errors, on valid and mutated
    streams, whatever the chunking."""
    if inflater != "zlib":
        pytest.skip("compares both inflaters itself: once is enough")
    rnd = random.Random(seed)
    body = MAKERS[maker](plain)
    mutated = bytearray(body)
    for _ in range(rnd.randrange(1, 3)):
        i = rnd.randrange(len(mutated))
        mutated[i] ^= 1 << rnd.randrange(8)
    limits = Limits(max_body=max_body)
    for data in (body, body[:rnd.randrange(len(body) + 1)], bytes(mutated)):
        answers = []
        for name in ("zlib", "isal"):
            monkeypatch.setattr(codings, "INFLATER", codings.INFLATERS[name])
            answers.append(_answer(coding_of(maker), data, cuts, limits, piece_size))
        if data is not body and all(type(a) is tuple for a in answers):
            # Corrupt and over the limit: ISA-L decodes ahead and may notice the fault
            # before zlib has produced max_body bytes (400 here, 413 there). Both refuse.
            continue
        assert answers[0] == answers[1], (maker, data)


@pytest.mark.parametrize("cut", [1, 3, 4, 10, None])
def test_gzip_reserved_flags_are_refused(cut):
    """Found by test_inflaters_agree: ISA-L ignores FLG's reserved bits, zlib refuses
    them (RFC 1952: "must give an error"); every inflater refuses, however it is fed,
    and the one-call path for small bodies does too."""
    import fastingest

    body = bytearray(gzip.compress(b'{"a":1}\n', mtime=0))
    body[3] |= 0x40
    with pytest.raises(DecompressionError) as info:
        decode("gzip", bytes(body), cuts=() if cut is None else (cut,))
    assert info.value.detail == "corrupt gzip data: unknown header flags set"
    second = gzip.compress(b'{"a":1}\n', mtime=0) + bytes(body)
    with pytest.raises(DecompressionError) as info:
        fastingest.decode(second, "application/x-ndjson", content_encoding="gzip")
    assert info.value.detail == "corrupt gzip data: unknown header flags set"
    with pytest.raises(DecompressionError):
        fastingest.decode(bytes(body), "application/x-ndjson", content_encoding="gzip")
