"""pytest-benchmark suite for the codec: decode, split and StreamDecoder against the peers.

    python -m pytest benchmarks --benchmark-only                        # everything
    python -m pytest benchmarks/bench_codec.py --benchmark-only -k 10MiB
    python -m pytest benchmarks/bench_codec.py --benchmark-only -k "ndjson and not gz"

One benchmark group per body (``--benchmark-group-by=group``, the default here), so
pytest-benchmark's table puts fastingest and the peers for the same body side by side. The
bodies and peer compositions are the ones of ``compare.py`` (see payloads.py); compare.py is
the tool for the ratios and goals, this suite for pytest-benchmark's statistics, history
(``--benchmark-autosave``) and ``--benchmark-compare``.

The GC stays on (pytest-benchmark's default). Each call is followed, with its result still
alive, by ``gc.collect(0)``: fastingest pauses the cyclic GC while it builds a batch, so its
young-generation pass would otherwise run at the next allocation — after the clock stopped
and, since pytest-benchmark drops each result at once, over objects already freed, which
would hide it. ``gc.collect(0)`` does that same pass inside the timing and costs ~35 ns when
nothing is pending (compare.py forces it with an allocation burst amortised over a loop of
calls instead; per call here, a burst would dwarf a 1-event decode).
"""
from __future__ import annotations

import gc
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare as C  # noqa: E402
import fastingest  # noqa: E402
import payloads as P  # noqa: E402

def _timed(fn, arg, collect=gc.collect):
    def call():
        r = fn(arg)
        collect(0)
        return r
    return call


def _codec_cases():
    for name in C.codec_paths():
        for c in C.contenders_for(P.stub(name)):  # no body is built at collection
            yield pytest.param(name, c, id=f"{name}-{c.label}")


@pytest.mark.parametrize("name, contender", list(_codec_cases()))
def test_decode(benchmark, name, contender):
    p = P.parse_name(name)
    fn = contender.make(p)
    benchmark.group = f"decode {name}"
    benchmark.extra_info.update(bytes=p.raw_size, events=p.n_events, role=contender.role)
    result = benchmark(_timed(fn, p.body))
    events = result.events if contender.role == "fastingest" else result[0]
    assert len(events) == p.n_events


@pytest.mark.parametrize("name", C.split_paths())
@pytest.mark.parametrize("what", ["split", "decode", "bytes.count"])
def test_split(benchmark, name, what):
    p = P.parse_name(name)
    ct = p.content_type
    if what == "split":
        if not C.HAS_SPLIT:
            pytest.skip("fastingest.split is not in this build")
        fn = lambda b: fastingest.split(b, ct)  # noqa: E731
    elif what == "decode":
        fn = lambda b: fastingest.decode(b, ct)  # noqa: E731
    else:
        if p.fmt != "ndjson":
            pytest.skip("bytes.count(b'\\n') is the memchr limit of NDJSON framing only")
        fn = lambda b: b.count(b"\n")  # noqa: E731
    benchmark.group = f"split {name}"
    benchmark.extra_info.update(bytes=p.raw_size, events=p.n_events)
    benchmark(_timed(fn, p.body))


@pytest.mark.parametrize("name", C.stream_paths())
@pytest.mark.parametrize("how", ["whole", "stream-64KiB"])
def test_stream(benchmark, name, how):
    p = P.parse_name(name)
    benchmark.group = f"stream {name}"
    benchmark.extra_info.update(bytes=p.raw_size, events=p.n_events)
    if how == "whole":
        benchmark(_timed(C._fastingest(p), p.body))
    else:
        chunks = [p.body[i:i + C.CHUNK] for i in range(0, len(p.body), C.CHUNK)]
        batches = benchmark(_timed(C._stream(p.content_type, p.encoding), chunks))
        assert sum(len(b) for b in batches) == p.n_events
