"""Differential properties the per-module tests leave out: the twins agree on *streamed*
and *split* mutated bodies, on splices of two valid bodies (also across formats), and on
corrupted compressed bodies; and decode()/split() equal StreamDecoder in any chunking.

The checks are the fuzz harnesses' (tests/fuzz/harnesses.py), driven here by hypothesis
(``HYPOTHESIS_PROFILE=long`` for a nightly-sized run).
"""
from __future__ import annotations

import gzip
import random
import sys
import zlib

from hypothesis import given, strategies as st

from helpers import FUZZ, JSON, MSGPACK, NDJSON, event_lists, mutate, valid_bodies

sys.path.insert(0, str(FUZZ))
from harnesses import HARNESSES, Options, check_body, encode_input  # noqa: E402

cut_lists = st.lists(st.integers(0, 5000), max_size=15)
options = st.integers(0, 63)


def _check(body: bytes, ctype: str, opt: int, cuts, encoding=None):
    buffer = (opt >> 4) & 3          # bytes, bytearray, memoryview, memoryview slice
    opts = Options(encode_input(body, opt & 15, tuple(cuts), buffer), ctype)
    return check_body(opts.body, ctype, encoding, opts)


@given(evs=event_lists, seed=st.integers(0, 2**32), cuts=cut_lists, opt=options)
def test_twins_agree_streaming_mutated_bodies(both_impls, evs, seed, cuts, opt):
    """decode == split-free stream, raw or not, collect or not, on both kernels."""
    rnd = random.Random(seed)
    for ctype, body in valid_bodies(evs, rnd):
        _check(body, ctype, opt, cuts)
        _check(mutate(body, rnd), ctype, opt, cuts)


@given(evs=event_lists, seed=st.integers(0, 2**32), cuts=cut_lists, opt=options)
def test_twins_agree_on_split_of_mutated_bodies(both_impls, evs, seed, cuts, opt):
    rnd = random.Random(seed)
    for ctype, body in valid_bodies(evs, rnd):
        bits = {JSON: 0, NDJSON: 1, MSGPACK: 2}[ctype]
        data = encode_input(mutate(body, rnd), (opt & 15) | 16 | (bits << 5), tuple(cuts), opt >> 4)
        HARNESSES["split"](data)


@given(a=event_lists, b=event_lists, seed=st.integers(0, 2**32), cuts=cut_lists, opt=options)
def test_twins_agree_on_splices_ofvalid_bodies(both_impls, a, b, seed, cuts, opt):
    """The head of one valid body glued to the tail of another (any two formats)."""
    rnd = random.Random(seed)
    heads, tails = valid_bodies(a, rnd), valid_bodies(b, rnd)
    for _ in range(4):
        ctype, head = rnd.choice(heads)
        _, tail = rnd.choice(tails)
        spliced = head[:rnd.randrange(len(head) + 1)] + tail[rnd.randrange(len(tail) + 1):]
        _check(spliced, ctype, opt, cuts)


@given(evs=event_lists, seed=st.integers(0, 2**32), cuts=cut_lists, opt=options,
       coding=st.sampled_from(["gzip", "deflate", "zstd", "br"]))
def test_twins_agree_on_corrupted_compressed_bodies(both_impls, evs, seed, cuts, opt, coding):
    """Bit flips, cuts and splices in the compressed bytes: both kernels give the same
    answer, and the whole body's answer equals the streamed one (or both are errors, one
    the 400, for corrupt data)."""
    import brotli
    import zstandard

    rnd = random.Random(seed)
    compress = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress,
                "zstd": zstandard.ZstdCompressor().compress}[coding]
    for ctype, body in valid_bodies(evs, rnd)[:3]:
        packed = compress(body)
        got = _check(packed, ctype, opt & ~4, cuts, coding)
        assert got == _check(body, ctype, opt & ~4, cuts) or got[0] == "error"
        _check(mutate(packed, rnd), ctype, opt, cuts, coding)
