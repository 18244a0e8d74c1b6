"""Bounded streaming decompression vs one-shot decompression of the same body.

    python benchmarks/bench_compression.py [--mib 10] [--rounds 15]

For each coding: fastingest's decoder fed the whole body (pieces of 4 MiB, as
``fastingest.decode`` does) and fed 64 KiB chunks (pieces of 256 KiB, as a streaming
server does), against the library's own one-shot call (``zlib.decompress``,
``gzip.decompress``, ``zstandard...decompress``, ``brotli.decompress``), which has no
output cap at all. Runs alternate in one process; ratios are of minimums (the noise on
this machine is 15-30% between runs, see DESIGN.md).
"""
from __future__ import annotations

import argparse
import gzip
import random
import time
import zlib

from fastingest.compression import open_decoder

try:
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None
try:
    import brotli
except ImportError:  # pragma: no cover
    brotli = None

MiB = 1024 * 1024


def ndjson_body(mib: int) -> bytes:
    """About `mib` MiB of log events, ~330 bytes each, like DESIGN.md's measurements."""
    rng = random.Random(1)
    levels = ["info", "warn", "error", "debug"]
    lines = []
    size = 0
    i = 0
    while size < mib * MiB:
        line = (
            '{"dt":"2024-05-%02dT%02d:%02d:%02d.%06dZ","level":"%s","message":"request %d '
            'handled in %d ms","service":"api-%d","host":"web-%02d.example.internal",'
            '"request_id":"%032x","user_id":%d,"path":"/v1/items/%d","status":%d,'
            '"bytes":%d,"tags":["edge","%s"]}\n'
            % (rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
               rng.randint(0, 999999), rng.choice(levels), i, rng.randint(1, 900),
               rng.randint(1, 9), rng.randint(1, 40), rng.getrandbits(128),
               rng.randint(1, 10**6), rng.randint(1, 10**5), rng.choice([200, 201, 404, 500]),
               rng.randint(100, 10**6), rng.choice(levels))
        ).encode()
        lines.append(line)
        size += len(line)
        i += 1
    return b"".join(lines)


def drain(coding: str, body: bytes, piece: int, chunk: int) -> int:
    dec = open_decoder(coding, piece_size=piece)
    n = 0
    for i in range(0, len(body), chunk):
        for p in dec.feed(body[i:i + chunk] if chunk < len(body) else body):
            n += len(p)
    for p in dec.close():
        n += len(p)
    return n


def best(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    plain = ndjson_body(args.mib)
    cases = [
        ("gzip", gzip.compress(plain, compresslevel=6, mtime=0), gzip.decompress),
        ("deflate", zlib.compress(plain, 6), zlib.decompress),
    ]
    if zstandard is not None:
        cctx = zstandard.ZstdCompressor(level=3)
        dctx = zstandard.ZstdDecompressor()
        cases.append(("zstd", cctx.compress(plain), dctx.decompress))
    if brotli is not None:
        cases.append(("br", brotli.compress(plain, quality=5), brotli.decompress))

    print(f"body: {len(plain) / MiB:.1f} MiB NDJSON; best of {args.rounds}, alternating")
    print(f"{'coding':8} {'compressed':>10} {'one-shot':>9} {'whole/4MiB':>11} {'ratio':>6} "
          f"{'64KiB chunks':>13} {'ratio':>6}")
    for coding, body, one_shot in cases:
        assert one_shot(body) == plain
        assert drain(coding, body, 4 * MiB, len(body)) == len(plain)
        t_one, t_whole, t_stream = [], [], []
        for _ in range(args.rounds):  # alternate so drift hits all three alike
            t_one.append(best(lambda: one_shot(body), 1))
            t_whole.append(best(lambda: drain(coding, body, 4 * MiB, len(body)), 1))
            t_stream.append(best(lambda: drain(coding, body, 256 * 1024, 64 * 1024), 1))
        one, whole, stream = min(t_one), min(t_whole), min(t_stream)
        print(f"{coding:8} {len(body) / MiB:9.2f}M {one * 1e3:8.1f}ms {whole * 1e3:10.1f}ms "
              f"{one / whole:5.2f}x {stream * 1e3:12.1f}ms {one / stream:5.2f}x")
    print("ratio = one-shot time / fastingest time (>= 1.0 means fastingest is as fast)")


if __name__ == "__main__":
    main()
