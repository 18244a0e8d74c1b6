"""Bounded batches: StreamDecoder.feed_batches/close_batches, and decode()/split() of bodies
over max_body (compressed or not) that must fail without building their events."""
from __future__ import annotations

import gc
import gzip
import tracemalloc
import zlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastingest
from fastingest import IngestError, Limits, StreamDecoder

from helpers import TINY_EVENTS, MiB, tiny_event_bomb

ENCODINGS = ["gzip", "deflate", "zstd", "br"]
NDJSON = "application/x-ndjson"
PIECE = 256 * 1024


def _limits(impl, default: bool = False) -> Limits:
    """The body limit the bombs run into: a few MiB keeps the suite fast (what is
    bounded does not grow with max_body; the default limits are checked once), and
    the pure twin decodes a smaller body still."""
    if impl.name == "python":
        return Limits(max_body=512 * 1024)
    return Limits() if default else Limits(max_body=4 * MiB)


def _one_encoding_for_the_twin(impl, encoding: str, default: bool = False) -> None:
    """The decompression layer is the same code under both kernel sets: the pure twin
    (slow on millions of events) runs the gzip case, which covers its own framing."""
    if impl.name == "python" and (encoding != "gzip" or default):
        pytest.skip("decompression is shared by both twins; gzip covers the pure framing")


def _other_inflater_on_its_codings(impl, encoding: str, default: bool, inflater: str) -> None:
    """The default inflater runs every case; the other one (zlib when isal is installed)
    the compiled kernels' gzip and deflate cases, the ones it inflates."""
    from fastingest import codings

    if codings.INFLATERS[inflater] is not codings.INFLATER_DEFAULT and (
            impl.name == "python" or encoding not in ("gzip", "deflate") or default):
        pytest.skip("the other inflater runs the compiled gzip/deflate cases")


#: Over the limits' max_body of decoded pieces: what one validated piece of tiny
#: events costs (the pure twin's frames are Python lists, so it pays more).
PIECE_COST = {"cython": 6 * MiB, "python": 14 * MiB}


def _chunks(body: bytes, size: int):
    return [body[i:i + size] for i in range(0, len(body), size)]


def _drain(decoder: StreamDecoder, chunks, keep=False):
    """Feed every chunk, taking each batch and dropping it before the next (as a
    server does); return (events, batches), or the IngestError raised."""
    events, count = [], 0
    try:
        for chunk in chunks:
            for batch in decoder.feed_batches(chunk):
                count += 1
                if keep:
                    events += batch.events if not decoder.raw else batch.raw
                del batch
        for batch in decoder.close_batches():
            count += 1
            if keep:
                events += batch.events if not decoder.raw else batch.raw
            del batch
    except IngestError as exc:
        return exc
    return events, count


def _peak(fn):
    """tracemalloc peak (bytes) of ``fn()`` and its result."""
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


# -- the same events as decode(), in any chunking --------------------------------------------

BODIES = [
    (NDJSON, b'{"a":1,"dt":"2023-01-01T00:00:00Z"}\n\n{"b":[1,2,{"c":null}]}\r\n{"x":"y"}\n'),
    ("application/json", b'[{"a":1},{"b":"' + b"x" * 3000 + b'"},{"dt":1672490759123}]'),
    ("application/json", b'{"single":true}'),
    ("application/msgpack", msgpack.packb([{"a": i, "s": "x" * (i * 37)} for i in range(60)])),
    ("application/msgpack", msgpack.packb({"one": {"nested": [1, 2, 3]}})),
]


@pytest.mark.parametrize("raw", [False, True])
@pytest.mark.parametrize("encoding", [None, "gzip"])
@pytest.mark.parametrize("content_type,body", BODIES)
@pytest.mark.parametrize("chunk", [1, 7, 64, 100_000])
def test_feed_batches_in_any_chunking_equal_decode(impl, content_type, body, encoding, chunk, raw):
    sent = gzip.compress(body) if encoding else body
    whole = (fastingest.split if raw else fastingest.decode)(
        sent, content_type, content_encoding=encoding, received_ns=5)
    decoder = StreamDecoder(content_type, content_encoding=encoding, received_ns=5, raw=raw,
                            piece_size=97)
    batches = []
    for part in _chunks(sent, chunk):
        batches += list(decoder.feed_batches(part))
    batches += list(decoder.close_batches())
    items = [x for b in batches for x in (b.raw if raw else b.events)]
    assert items == (whole.raw if raw else whole.events)
    assert [t for b in batches for t in b.times_ns] == list(whole.times_ns)
    assert [o for b in batches for o in b.offsets] == list(whole.offsets)
    assert all(len(b) for b in batches)   # no empty batch is handed out


@given(lines=st.lists(st.dictionaries(st.text(max_size=5), st.integers(-2**63, 2**63 - 1) | st.text(max_size=30),
                                      max_size=4), max_size=40),
       piece=st.integers(1, 300), chunk=st.integers(1, 500))
def test_feed_batches_agree_with_decode_on_random_ndjson(impl, lines, piece, chunk):
    import orjson

    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    sent = zlib.compress(body)
    decoder = StreamDecoder(NDJSON, content_encoding="deflate", received_ns=1, piece_size=piece)
    result = _drain(decoder, _chunks(sent, chunk), keep=True)
    assert not isinstance(result, IngestError)
    assert result[0] == fastingest.decode(sent, NDJSON, content_encoding="deflate").events == lines


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_a_batch_holds_the_events_of_one_piece(impl, encoding):
    lines = [b'{"i":%d,"pad":"%s"}\n' % (i, b"p" * (i % 50)) for i in range(400)]
    body = b"".join(lines)
    sent = gzip.compress(body) if encoding else body
    piece = 1000
    decoder = StreamDecoder(NDJSON, content_encoding=encoding, piece_size=piece)
    batches = list(decoder.feed_batches(sent)) + list(decoder.close_batches())
    assert len(batches) > len(body) // piece // 2
    for batch in batches:
        # every event of a batch ends within one piece of body: piece k holds
        # bytes [k*piece, (k+1)*piece), so ends fall in one such window
        ends = [off + len(lines[ev["i"]]) - 1 for off, ev in zip(batch.offsets, batch.events)]
        assert {end // piece for end in ends} == {ends[-1] // piece}


def test_identity_chunk_larger_than_a_piece_is_cut(impl):
    body = b'{"a":1}\n' * 10_000   # 80,000 bytes in one chunk
    decoder = StreamDecoder(NDJSON, piece_size=8192)
    batches = list(decoder.feed_batches(body))
    assert len(batches) == 10 and sum(map(len, batches)) == 10_000
    assert max(len(b) for b in batches) <= 8192 // 8 + 1


def test_inflating_is_lazy(impl):
    """Taking one batch of a bomb inflates about one piece, not the chunk."""
    bomb = tiny_event_bomb("gzip")
    decoder = StreamDecoder(NDJSON, content_encoding="gzip", piece_size=64 * 1024)
    batches = decoder.feed_batches(bomb[:256 * 1024])
    first = next(batches)
    assert len(first) == 64 * 1024 // 8
    assert decoder.bytes_out <= 2 * 64 * 1024
    batches.close()


def test_a_decoder_left_half_way_refuses_more(impl):
    decoder = StreamDecoder(NDJSON, piece_size=64)
    batches = decoder.feed_batches(b'{"a":1}\n' * 100)
    next(batches)
    batches.close()
    with pytest.raises(IngestError, match="abandoned"):
        list(decoder.feed_batches(b'{"a":1}\n'))


def test_an_iterator_must_be_consumed_before_the_next_call(impl):
    decoder = StreamDecoder(NDJSON, piece_size=64)
    batches = decoder.feed_batches(b'{"a":1}\n' * 100)
    next(batches)
    with pytest.raises(RuntimeError, match="not consumed"):
        decoder.feed_batches(b"{}\n")


def test_close_batches_raises_for_an_incomplete_body(impl):
    decoder = StreamDecoder("application/json")
    assert list(decoder.feed_batches(b'[{"a":1},{"b":')) == [] or True
    with pytest.raises(IngestError) as info:
        list(decoder.close_batches())
    assert info.value.status == 406
    with pytest.raises(IngestError):   # dead after the error: an equal error again
        list(decoder.close_batches())


def test_errors_surface_after_the_batches_before_them(impl):
    body = b'{"a":1}\n' * 300 + b'{"a":tru}\n' + b'{"a":2}\n' * 10
    decoder = StreamDecoder(NDJSON, piece_size=256)
    taken = 0
    with pytest.raises(IngestError) as info:
        for batch in decoder.feed_batches(body):
            taken += len(batch)
    # the 9 pieces before the one holding the fault (32 events each); the events of
    # that piece before the fault are not handed out: the body is refused anyway
    assert taken == 9 * 32 and info.value.line == 301 and info.value.status == 406


def test_feed_still_collects_the_whole_chunk(impl):
    body = b'{"a":1}\n' * 5000
    decoder = StreamDecoder(NDJSON, content_encoding="gzip", piece_size=1024)
    batch = decoder.feed(gzip.compress(body))
    batch.extend(decoder.close())
    assert len(batch) == 5000 and len(batch.lines) == 5000


# -- bombs: bounded whatever the compression ratio --------------------------------------------

@pytest.mark.parametrize("encoding,default", [(e, False) for e in ENCODINGS] + [("gzip", True)])
def test_feed_batches_of_a_1gib_tiny_event_bomb_stay_bounded(impl, encoding, default, inflater):
    _one_encoding_for_the_twin(impl, encoding, default)
    _other_inflater_on_its_codings(impl, encoding, default, inflater)
    bomb = tiny_event_bomb(encoding)
    limits = _limits(impl, default)
    decoder = StreamDecoder(NDJSON, content_encoding=encoding, limits=limits)
    peak, result = _peak(lambda: _drain(decoder, _chunks(bomb, 64 * 1024)))
    assert isinstance(result, IngestError) and result.status == 413
    assert result.offset == limits.max_body
    # one piece of body (256 KiB = 32,768 events) built at a time: ~7 MiB measured;
    # collected into one batch it was 540 MiB
    assert peak < 16 * MiB, peak


@pytest.mark.parametrize("content_type", sorted(TINY_EVENTS))
def test_feed_batches_bounded_for_every_format(impl, content_type):
    bomb = tiny_event_bomb("gzip", content_type)
    decoder = StreamDecoder(content_type, content_encoding="gzip", limits=_limits(impl))
    peak, result = _peak(lambda: _drain(decoder, _chunks(bomb, 64 * 1024)))
    assert isinstance(result, IngestError) and result.status == 413
    # MessagePack's tiny events are 4 bytes: 65,536 maps per piece
    assert peak < 24 * MiB, peak


@pytest.mark.parametrize("raw", [False, True])
@pytest.mark.parametrize("encoding,default", [(e, False) for e in ENCODINGS] + [("br", True)])
def test_decode_of_a_bomb_builds_nothing(impl, encoding, default, raw, inflater):
    _one_encoding_for_the_twin(impl, encoding, default)
    _other_inflater_on_its_codings(impl, encoding, default, inflater)
    bomb = tiny_event_bomb(encoding)
    limits = _limits(impl, default)
    fn = fastingest.split if raw else fastingest.decode

    def run():
        try:
            fn(bomb, NDJSON, content_encoding=encoding, limits=limits)
        except IngestError as exc:
            return exc

    peak, result = _peak(run)
    assert isinstance(result, IngestError) and result.status == 413
    assert result.offset == limits.max_body
    # the decoded pieces (max_body) and one validated piece: ~25 MiB at the default
    # 20 MiB; building its events cost 560 MiB
    assert peak < limits.max_body * 1.25 + PIECE_COST[impl.name], peak


@pytest.mark.parametrize("raw", [False, True])
def test_uncompressed_body_over_max_body_builds_nothing(impl, raw):
    limits = _limits(impl)
    body = b'{"a":1}\n' * ((limits.max_body + 4 * MiB) // 8)
    fn = fastingest.split if raw else fastingest.decode

    def run():
        try:
            fn(body, NDJSON, limits=limits)
        except IngestError as exc:
            return exc

    peak, result = _peak(run)
    assert isinstance(result, IngestError) and result.status == 413
    assert result.offset == limits.max_body
    assert peak < 16 * MiB, peak


@pytest.mark.parametrize("raw", [False, True])
@pytest.mark.parametrize("encoding", [None, "gzip", "zstd"])
def test_an_earlier_fault_still_wins_over_the_413(impl, encoding, raw):
    """The bounded whole-body path answers what streaming answers: the first fault."""
    limits = Limits(max_body=64 * 1024)
    body = b'{"a":1}\n' * 100 + b'{"a":1,}\n' + b'{"a":1}\n' * 20_000
    if encoding == "gzip":
        sent = gzip.compress(body)
    elif encoding == "zstd":
        import zstandard
        sent = zstandard.ZstdCompressor().compress(body)
    else:
        sent = body
    fn = fastingest.split if raw else fastingest.decode
    with pytest.raises(IngestError) as whole:
        fn(sent, NDJSON, content_encoding=encoding, limits=limits)
    decoder = StreamDecoder(NDJSON, content_encoding=encoding, limits=limits, raw=raw)
    streamed = _drain(decoder, _chunks(sent, 1000))
    assert isinstance(streamed, IngestError)
    assert (whole.value.status, whole.value.offset, whole.value.line, whole.value.detail) == \
        (streamed.status, streamed.offset, streamed.line, streamed.detail) == \
        (406, 800 + 7, 101, streamed.detail)


def test_an_earlier_event_too_large_wins_over_the_413(impl):
    limits = Limits(max_body=64 * 1024, max_event=1000)
    body = b'{"a":"' + b"x" * 2000 + b'"}\n' + b'{"a":1}\n' * 20_000
    with pytest.raises(IngestError) as info:
        fastingest.decode(gzip.compress(body), NDJSON, content_encoding="gzip", limits=limits)
    assert info.value.status == 413 and info.value.offset < 2000


def test_collect_mode_body_over_the_limit_is_still_a_413(impl):
    limits = Limits(max_body=64 * 1024)
    body = b'{"a":1,}\n' + b'{"a":1}\n' * 20_000
    with pytest.raises(IngestError) as info:
        fastingest.decode(body, NDJSON, limits=limits, errors="collect")
    assert info.value.status == 413


def test_corrupt_data_after_a_fault_answers_the_fault(impl):
    body = gzip.compress(b'{"a":1}\n' * 3000 + b'{"a":x}\n' + b'{"a":1}\n' * 3000)
    corrupt = body[:-40] + bytes(b ^ 0x55 for b in body[-40:-8]) + body[-8:]
    with pytest.raises(IngestError) as info:
        fastingest.decode(corrupt, NDJSON, content_encoding="gzip")
    assert info.value.status in (406, 400)
    if info.value.status == 406:
        assert info.value.line == 3001
