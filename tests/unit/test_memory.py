"""Repeated decoding does not grow memory, and reference counts balance.

Always on: 10^5 decodes (compiled kernels; 10^4 for the pure-Python twins) of valid and
invalid bodies of every format, cycling through them, with bounded RSS growth, plus a
tracemalloc run with bounded net growth. ``FASTINGEST_MEMORY_FULL=1`` runs 10^5
iterations *per body* on both kernel sets under tracemalloc too (a few minutes).

Reference counts: ``sys.getrefcount`` of inputs and outputs before/after, on both
kernel sets, and no reference cycle left by a rejected body; with a debug build of
CPython (``sys.gettotalrefcount``, see ``tests/check_debug_python.sh``) the compiled
kernels must move the interpreter's total reference count exactly as the pure-Python
twins do; on a release CPython (as in CI) that test is skipped.
"""
from __future__ import annotations

import gc
import gzip
import os
import sys
import tracemalloc

import msgpack
import pytest

from fastingest import IngestError, Limits, StreamDecoder, decode, split

from helpers import RECEIVED, using

JSON, NDJSON, MSGPACK = "application/json", "application/x-ndjson", "application/msgpack"
FULL = bool(os.environ.get("FASTINGEST_MEMORY_FULL"))
SMALL = Limits(max_event=256, max_depth=4)

EVENTS = [{"dt": "2022-12-31T13:45:59.123456789Z", "msg": "h\u00e9llo", "n": [1, 2.5, None],
           "o": {"k": True}}, {"dt": 1672490759123, "x": "y" * 40}]
BODIES = [
    # (content type, encoding, body, limits) — valid ones first, then every kind of failure
    (JSON, None, b'[{"dt":"2022-12-31T13:45:59Z","m":"a"},{"b":[1,2,{"c":null}]}]', None),
    (NDJSON, None, b'{"a":1,"dt":1672490759}\n{"b":"\\u00e9"}\n', None),
    (MSGPACK, None, msgpack.packb(EVENTS), None),
    (MSGPACK, None, msgpack.packb([{"dt": msgpack.Timestamp(5, 6), "b": b"x", "e": msgpack.ExtType(3, b"z")}]), None),
    (JSON, "gzip", gzip.compress(b'[{"a":1},{"b":2}]'), None),
    (JSON, None, b'[{"a":1},{"b":tru}]', None),                       # 406 in the builder path
    (JSON, None, b'[{"a":"\\ud800"}]', None),                          # lone surrogate
    (JSON, None, b'[{"a":1}' + b"x" * 10, None),                        # trailing garbage
    (NDJSON, None, b'{"a":1}\n{"b":\xff}\n{"c":3}\n', None),            # invalid UTF-8
    (JSON, None, b'{"a":' + b"[" * 50 + b"]" * 50 + b"}", SMALL),       # too deep
    (JSON, None, b'[{"a":"' + b"x" * 300 + b'"}]', SMALL),              # event too large
    (MSGPACK, None, b"\x81\xa1a\xdb\xff\xff\xff\xff", None),            # declared length 2^32-1
    (MSGPACK, None, b"\x92\x81\xa1a\x01\x81\xa1b\xc1", None),           # reserved byte
    (JSON, "gzip", gzip.compress(b'[{"a":1}]')[:-6], None),             # truncated gzip
    (JSON, "zstd", b"\x28\xb5\x2f\xfd" + b"\xff" * 20, None),           # corrupt zstd
]


def _decode_all(bodies, n: int, raw: bool = False) -> int:
    fn = split if raw else decode
    errors = 0
    for i in range(n):
        ctype, enc, body, limits = bodies[i % len(bodies)]
        try:
            fn(body, ctype, content_encoding=enc, limits=limits or Limits(), received_ns=RECEIVED)
        except IngestError:
            errors += 1
    return errors


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")


@needs_proc
@pytest.mark.parametrize("raw", [False, True], ids=["decode", "split"])
def test_rss_flat_over_100000_decodes(impl, raw):
    n = 100_000 if impl.name == "cython" or FULL else 10_000
    _decode_all(BODIES, 2_000, raw)           # warm up caches, free lists, arenas
    gc.collect()
    before = _rss()
    errors = _decode_all(BODIES, n, raw)
    gc.collect()
    grown = _rss() - before
    assert errors > n // 2
    assert grown < 4 * 1024 * 1024, f"RSS grew by {grown} bytes over {n} decodes"


def _traced_growth(bodies, n: int, raw: bool = False) -> int:
    _decode_all(bodies, 500, raw)
    gc.collect()
    tracemalloc.start()
    try:
        _decode_all(bodies, 500, raw)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        _decode_all(bodies, n, raw)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("raw", [False, True], ids=["decode", "split"])
def test_tracemalloc_flat(impl, raw):
    n = 100_000 if FULL else 10_000
    grown = _traced_growth(BODIES, n, raw)
    assert grown < 64 * 1024, f"{grown} bytes still allocated after {n} decodes"


@pytest.mark.skipif(not FULL, reason="FASTINGEST_MEMORY_FULL=1: 10^5 decodes of every body")
@pytest.mark.parametrize("index", range(len(BODIES)))
def test_tracemalloc_flat_per_body_full(impl, index):
    grown = _traced_growth([BODIES[index]], 100_000)
    assert grown < 64 * 1024, (BODIES[index], grown)


def test_stream_decoder_rss_flat(impl):
    body = b"".join(b'{"i":%d,"s":"%s"}\n' % (i, b"x" * (i % 50)) for i in range(200))
    bad = body + b'{"x":\xff}\n'

    def run(n):
        for i in range(n):
            dec = StreamDecoder(NDJSON, received_ns=RECEIVED)
            try:
                for j in range(0, len(body), 97):
                    dec.feed((bad if i % 2 else body)[j:j + 97])
                dec.feed((bad if i % 2 else body)[len(body):])
                dec.close()
            except IngestError:
                pass
    run(50)
    gc.collect()
    tracemalloc.start()
    try:
        run(20)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        run(300 if impl.name == "cython" else 60)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown


# -- reference counts ----------------------------------------------------------------------

def test_input_refcounts_unchanged(impl):
    for ctype, enc, body, limits in BODIES:
        body = bytes(bytearray(body))        # a private object: its count is ours alone
        before = sys.getrefcount(body)
        for fn in (decode, split):
            for _ in range(50):
                try:
                    fn(body, ctype, content_encoding=enc, limits=limits or Limits(), received_ns=RECEIVED)
                except IngestError:
                    pass
        assert sys.getrefcount(body) == before, (ctype, body[:30])
        view = memoryview(body)
        try:
            decode(view, ctype, content_encoding=enc, limits=limits or Limits())
        except IngestError:
            pass
        view.release()                       # raises BufferError if an export leaked


def test_output_refcounts(impl):
    body = b'[{"a":"x","dt":"2022-12-31T13:45:59Z"},{"b":[1,2]}]'
    batch = decode(body, JSON, received_ns=RECEIVED)
    events = batch.events
    assert sys.getrefcount(batch) == 2
    assert sys.getrefcount(events) == 3          # batch.events, `events`, the argument
    for ev in events:
        assert sys.getrefcount(ev) == 3          # the list, `ev`, the argument
    raw = split(body, JSON, received_ns=RECEIVED)
    for r in raw.raw:
        assert sys.getrefcount(r) == 3
    dec = StreamDecoder(NDJSON, received_ns=RECEIVED)
    got = dec.feed(b'{"a":1}\n{"b":2}\n').events
    for ev in got:
        assert sys.getrefcount(ev) == 3


def test_parse_dt_refcounts(impl):
    for value in ("2022-12-31T13:45:59.123456789Z", b"1672490759", "x" * 50, 1672490759,
                  1672490759.5, msgpack.Timestamp(1, 2), "2022-13-45T00:00:00Z"):
        value = value.__class__(value) if not isinstance(value, msgpack.Timestamp) else value
        before = sys.getrefcount(value)
        for _ in range(100):
            impl.parse_dt(value)
        assert sys.getrefcount(value) == before, value


def test_error_does_not_keep_the_body_alive(impl):
    body = bytes(bytearray(b'[{"a":1},{"b":tru}]'))
    before = sys.getrefcount(body)
    for _ in range(20):
        try:
            decode(body, JSON)
        except IngestError:
            pass
    gc.collect()
    assert sys.getrefcount(body) == before


def _total_refcount_drift(kernels, bodies, n: int, raw: bool = False) -> int:
    with using(kernels):
        _decode_all(bodies, 100, raw)
        gc.collect()
        before = sys.gettotalrefcount()          # type: ignore[attr-defined]
        _decode_all(bodies, n, raw)
        gc.collect()
        return sys.gettotalrefcount() - before   # type: ignore[attr-defined]


@pytest.mark.skipif(not hasattr(sys, "gettotalrefcount"), reason="needs a debug build of CPython")
@pytest.mark.parametrize("raw", [False, True], ids=["decode", "split"])
@pytest.mark.parametrize("index", range(len(BODIES)))
def test_total_refcount_same_as_pure_python(both_impls, index, raw):
    """With a debug CPython (tests/check_debug_python.sh): decode() with the compiled
    kernels leaves the interpreter's total reference count exactly where the pure-Python
    twins leave it, and split() with the compiled kernels does not move it at all.

    The total itself drifts by a fixed amount per call to orjson/msgpack, whose wheels
    are release builds (their reference operations bypass the debug counter), so the
    twins' drift is the baseline: any reference the Cython code leaks or over-releases
    shows up as a difference."""
    cy, py = both_impls
    n = 300
    if raw and BODIES[index][1] in ("zstd", "br"):
        pytest.skip("zstandard/brotli are release builds too: no clean split() baseline")
    drift = _total_refcount_drift(cy, [BODIES[index]], n, raw)
    # A leak of one reference per call would move the total by >= n; the measurement
    # itself moves it by a reference or two.
    if raw:
        # split() builds no objects in the compiled kernels (the twin decodes each event
        # with orjson/msgpack to read its dt): nothing but the measurement moves
        assert abs(drift) <= 2, (drift, BODIES[index])
    else:
        baseline = _total_refcount_drift(py, [BODIES[index]], n, raw)
        assert abs(drift - baseline) <= 2, (drift, baseline, BODIES[index])


def test_rejected_body_is_freed_without_the_cyclic_gc(impl):
    """Regression: every rejected body used to stay alive in a reference cycle (the
    error's traceback held the frames of the decoder objects that stored the error, and
    the body) until the cyclic GC ran: 2-14 extra references per failed decode. Errors
    now leave decode/split/StreamDecoder without their traceback chain."""
    for ctype, enc, body, limits in BODIES:
        for how in ("decode", "split", "stream"):
            body = bytes(bytearray(body))
            gc.collect()
            gc.disable()
            try:
                before = sys.getrefcount(body)
                try:
                    if how == "stream":
                        dec = StreamDecoder(ctype, content_encoding=enc, limits=limits or Limits())
                        dec.feed(body)
                        dec.close()
                    else:
                        (decode if how == "decode" else split)(
                            body, ctype, content_encoding=enc, limits=limits or Limits())
                except IngestError:
                    pass
                dec = None
                assert sys.getrefcount(body) == before, (how, ctype, body[:30])
                assert gc.collect() == 0, (how, ctype, body[:30])
            finally:
                gc.enable()


def test_stream_decoder_repeats_an_equal_error(impl):
    dec = StreamDecoder(JSON)
    with pytest.raises(IngestError) as first:
        dec.feed(b'[{"a":tru}]')
    with pytest.raises(IngestError) as again:
        dec.close()
    assert again.value == first.value and again.value.offset == 9
