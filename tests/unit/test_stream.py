"""StreamDecoder: chunked decoding equals whole-body decoding; bombs; bounded memory;
collect mode (both kernels)."""
from __future__ import annotations

import gzip
import random
import tracemalloc
import zlib

import msgpack
import pytest
from hypothesis import given, strategies as st

from fastingest import IngestError, Limits, StreamDecoder, decode
from fastingest.batch import Batch
from fastingest.errors import SIZE_MESSAGE

from helpers import (JSON, MSGPACK, NDJSON, RECEIVED, MiB, br_bomb, event_lists, gzip_bomb, mutate,
                     ndjson_body, using, valid_bodies, zlib_bomb, zstd_bomb)



def streamed(body: bytes, ctype: str, cuts, **kw):
    """Outcome of feeding ``body`` cut at ``cuts`` then closing: (batch, error)."""
    dec = StreamDecoder(ctype, received_ns=RECEIVED, **kw)
    total = Batch()
    points = sorted(set(c for c in cuts if 0 < c < len(body)))
    try:
        for a, b in zip([0] + points, points + [len(body)]):
            total.extend(dec.feed(body[a:b]))
        total.extend(dec.close())
    except IngestError as exc:
        return total, exc
    return total, None


def whole(body: bytes, ctype: str, **kw):
    try:
        return decode(body, ctype, received_ns=RECEIVED, **kw), None
    except IngestError as exc:
        return None, exc


def same(a, b) -> None:
    (batch_a, err_a), (batch_b, err_b) = a, b
    if err_b is not None:
        assert err_a is not None, (batch_a, err_b)
        assert (type(err_a), err_a.status, err_a.detail, err_a.offset, err_a.line) == \
            (type(err_b), err_b.status, err_b.detail, err_b.offset, err_b.line)
        return
    assert err_a is None, err_a
    assert batch_a.events == batch_b.events
    assert list(batch_a.times_ns) == list(batch_b.times_ns)
    assert list(batch_a.offsets) == list(batch_b.offsets)
    assert list(batch_a.lines or []) == list(batch_b.lines or [])
    assert batch_a.errors == batch_b.errors


cuts = st.lists(st.integers(0, 4000), max_size=12)


@given(evs=event_lists, seed=st.integers(0, 2**32), cuts=cuts)
def test_chunks_equal_whole_body(impl, evs, seed, cuts):
    rnd = random.Random(seed)
    for ctype, body in valid_bodies(evs, rnd):
        same(streamed(body, ctype, cuts), whole(body, ctype))
        bad = mutate(body, rnd)
        limits = Limits(max_event=rnd.choice([16, 100, 1 << 20]), max_depth=rnd.choice([2, 128]))
        same(streamed(bad, ctype, cuts, limits=limits), whole(bad, ctype, limits=limits))


@given(evs=event_lists, seed=st.integers(0, 2**32), cuts=cuts)
def test_chunks_equal_whole_body_collect(impl, evs, seed, cuts):
    rnd = random.Random(seed)
    body = mutate(ndjson_body(evs, rnd), rnd) if rnd.random() < 0.7 else ndjson_body(evs, rnd)
    same(streamed(body, NDJSON, cuts, errors="collect"), whole(body, NDJSON, errors="collect"))


@given(evs=event_lists, seed=st.integers(0, 2**32), cuts=cuts,
       coding=st.sampled_from(["gzip", "deflate", "zstd", "br"]))
def test_compressed_chunks_equal_whole_body(impl, evs, seed, cuts, coding):
    import brotli
    import zstandard

    rnd = random.Random(seed)
    compress = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress,
                "zstd": zstandard.ZstdCompressor().compress}[coding]
    for ctype, body in valid_bodies(evs, rnd):
        packed = compress(body)
        same(streamed(packed, ctype, cuts, content_encoding=coding),
             whole(packed, ctype, content_encoding=coding))
        assert whole(packed, ctype, content_encoding=coding)[0].events == \
            whole(body, ctype)[0].events


def test_one_byte_chunks(impl):
    body = b'[{"a":"\\"}]","b":[1,{"c":null}]},\n {"d":"\xc3\xa9"}]'
    same(streamed(body, JSON, range(len(body))), whole(body, JSON))
    body = msgpack.packb([{"s": "x" * 70000, "n": list(range(20))}, {"t": msgpack.Timestamp(1, 2)}])
    same(streamed(body, MSGPACK, range(0, len(body), 1 if len(body) < 1000 else 997)), whole(body, MSGPACK))
    dec = StreamDecoder(MSGPACK, received_ns=RECEIVED)
    got = []
    for i in range(len(body)):
        got += dec.feed(body[i:i + 1]).events
    got += dec.close().events
    assert got == msgpack.unpackb(body, timestamp=0)


def test_events_arrive_as_soon_as_complete(impl):
    dec = StreamDecoder(NDJSON)
    assert len(dec.feed(b'{"a":1}\n{"b"')) == 1
    assert len(dec.feed(b':2}')) == 1            # complete before its newline
    assert len(dec.feed(b"\n\n")) == 0
    assert len(dec.close()) == 0


def test_incomplete_body_raises_at_close(impl):
    dec = StreamDecoder(JSON)
    assert dec.feed(b'[{"a":1},{"b":').events == [{"a": 1}]
    with pytest.raises(IngestError) as info:
        dec.close()
    assert (info.value.status, info.value.offset) == (406, 14)
    with pytest.raises(IngestError):           # dead after an error
        dec.feed(b"}]")


def test_event_over_limit_fails_while_arriving(impl):
    dec = StreamDecoder(NDJSON, limits=Limits(max_event=1000))
    dec.feed(b'{"a":"')
    for _ in range(9):
        dec.feed(b"x" * 100)
    with pytest.raises(IngestError) as info:
        dec.feed(b"x" * 100)                   # the byte that crosses 1000 is in here
    assert (info.value.status, info.value.message, info.value.offset) == (413, SIZE_MESSAGE, 1000)


def test_body_over_limit_fails_at_the_crossing_chunk(impl):
    dec = StreamDecoder(NDJSON, limits=Limits(max_body=100))
    dec.feed(b"{}\n" * 33)
    with pytest.raises(IngestError) as info:
        dec.feed(b"{}\n")
    assert (info.value.status, info.value.offset) == (413, 100)


# -- bombs and bounded memory --------------------------------------------------------------

BOMB_KINDS = {
    # 1 GiB of spaces: an NDJSON body of one endless blank line, stopped at max_body.
    "gzip-blank": ("gzip", lambda: gzip_bomb(1024, 0, fill=0x20), 413, 20 * MiB),
    "deflate-blank": ("deflate", lambda: zlib_bomb(1024, fill=0x20), 413, 20 * MiB),
    "zstd-blank": ("zstd", lambda: zstd_bomb(1024, fill=0x20), 413, 20 * MiB),
    "br-blank": ("br", lambda: br_bomb(1024, fill=0x20), 413, 20 * MiB),
    # One event of 1 GiB: stopped at max_event.
    "gzip-event": ("gzip", lambda: gzip_bomb(1024, 0, fill=0x78, prefix=b'{"a":"'), 413, MiB),
    "deflate-event": ("deflate", lambda: zlib_bomb(1024, fill=0x78, prefix=b'{"a":"'), 413, MiB),
    "zstd-event": ("zstd", lambda: zstd_bomb(1024, fill=0x78, prefix=b'{"a":"'), 413, MiB),
}


@pytest.mark.parametrize("name", sorted(BOMB_KINDS))
@pytest.mark.parametrize("mode", ["whole", "chunks"])
def test_bombs_are_413_with_bounded_memory(impl, name, mode):
    coding, build, status, offset = BOMB_KINDS[name]
    body = build()
    limits = Limits()
    tracemalloc.start()
    try:
        if mode == "whole":
            batch, err = whole(body, NDJSON, content_encoding=coding)
        else:
            batch, err = streamed(body, NDJSON, range(0, len(body), 64 * 1024), content_encoding=coding)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err is not None and (err.status, err.offset) == (status, offset), err
    assert peak < 2 * limits.max_body, peak


LINE = (b'{"dt":"2022-12-31T13:45:59.123456Z","level":"info","msg":"hello world",'
        b'"ctx":{"user":1234,"tags":["a","b"]}}\n')


def _ndjson_chunks(total: int, chunk: int = 64 * 1024):
    line = LINE
    block = line * (chunk // len(line)) + b" " * (chunk % len(line))
    for _ in range(total // chunk):
        yield block


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_200_mib_stream_keeps_memory_bounded(impl):
    """200 MiB of NDJSON in 64 KiB chunks, events dropped: memory stays flat.

    tracemalloc makes every allocation ~10x dearer, so it watches only the last
    8 MiB (the pure-Python twin, ~20x slower, streams 12 MiB and is watched for 4) (by then anything the decoder kept would be there); the process RSS must
    not grow with the body over the whole run either.
    """
    size, traced = (200 * MiB, 8 * MiB) if impl.name == "cython" else (12 * MiB, 4 * MiB)
    traced_from = size - traced
    dec = StreamDecoder(NDJSON, limits=Limits(max_body=1 << 40))
    n = fed = 0
    rss_before = _rss()
    try:
        for block in _ndjson_chunks(size):
            if fed == traced_from:
                tracemalloc.start()
            n += len(dec.feed(block))       # the consumer drops the events
            fed += len(block)
        n += len(dec.close())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == size // (64 * 1024) * (64 * 1024 // len(LINE))
    assert peak < 4 * MiB, peak
    assert _rss() - rss_before < 32 * MiB


# -- encodings through decode() ------------------------------------------------------------

BODY = b'{"a":1}\n{"b":2}\n'


def test_encoding_spellings(impl):
    packed = gzip.compress(BODY)
    for coding in ["gzip", "GZIP", "x-gzip", "gzip, identity", " identity , gzip "]:
        assert decode(packed, NDJSON, content_encoding=coding).events == [{"a": 1}, {"b": 2}]
    assert decode(BODY, NDJSON, content_encoding="identity").events == [{"a": 1}, {"b": 2}]


def test_truncated_gzip_is_400(impl):
    packed = gzip.compress(BODY)
    for cut in (5, len(packed) // 2, len(packed) - 1):
        batch, err = whole(packed[:cut], NDJSON, content_encoding="gzip")
        assert err is not None and err.status == 400, (cut, err)


def test_gzip_trailing_garbage_is_400(impl):
    batch, err = whole(gzip.compress(BODY) + b"garbage", NDJSON, content_encoding="gzip")
    assert err.status == 400 and "trailing" in err.detail


def test_wrong_encoding_for_the_bytes_is_400(impl):
    for coding, body in [("gzip", zlib.compress(BODY)), ("deflate", BODY), ("gzip", BODY)]:
        assert whole(body, NDJSON, content_encoding=coding)[1].status == 400


def test_unknown_encoding_is_415(impl):
    err = whole(BODY, NDJSON, content_encoding="compress")[1]
    assert err.status == 415 and "gzip" in err.message and "\n" not in err.message


def test_compressed_size_over_limit_is_413(impl):
    rnd = random.Random(1)
    body = b"".join(b'{"r":"%s"}\n' % rnd.randbytes(40).hex().encode() for _ in range(60))
    packed = gzip.compress(body)
    assert len(packed) > 2000
    err = whole(packed, NDJSON, content_encoding="gzip", limits=Limits(max_compressed=1000))[1]
    assert (err.status, err.message) == (413, SIZE_MESSAGE)


# -- partial acceptance --------------------------------------------------------------------

def test_collect_reports_exactly_the_bad_lines(impl):
    lines = [b'{"n":%d}' % i for i in range(1, 11)]
    lines[2] = b'{"n":3,}'            # line 3: a grammar error orjson finds
    lines[6] = b'{"n":7'              # line 7: the line ends inside the event
    body = b"\n".join(lines) + b"\n"
    batch = decode(body, NDJSON, errors="collect")
    assert [e["n"] for e in batch.events] == [1, 2, 4, 5, 6, 8, 9, 10]
    assert list(batch.lines) == [1, 2, 4, 5, 6, 8, 9, 10]
    assert [(e.line, e.offset, e.status) for e in batch.errors] == [
        (3, body.index(b'}', body.index(b'{"n":3,')), 406),
        (7, body.index(b'{"n":7') + 6, 406),
    ]
    assert all(e.detail for e in batch.errors)


def test_collect_still_aborts_on_size_limits(impl):
    body = b'{"a":1}\nnot json\n{"b":"' + b"x" * 200 + b'"}\n'
    with pytest.raises(IngestError) as info:
        decode(body, NDJSON, errors="collect", limits=Limits(max_event=100))
    assert info.value.status == 413


def test_collect_only_for_ndjson():
    with pytest.raises(ValueError):
        StreamDecoder(JSON, errors="collect")
    with pytest.raises(ValueError):
        StreamDecoder(JSON, errors="ignore")


def test_kernels_agree_streaming(both_impls):
    rnd = random.Random(7)
    body = b"".join(b'{"i":%d,"s":"%s"}\n' % (i, b"\\u00e9" * rnd.randrange(30)) for i in range(300))
    body = mutate(body, rnd)
    cut_points = sorted(rnd.sample(range(len(body)), 40))
    results = []
    for kernels in both_impls:
        with using(kernels):
            batch, err = streamed(body, NDJSON, cut_points, errors="collect")
            results.append((batch.events, list(batch.offsets), batch.errors, err and err.offset))
    assert results[0] == results[1]
