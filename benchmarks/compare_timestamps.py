"""dt parsing: fastingest.parse_dt against the parsers a user would reach for, in one process.

Each peer is timed with the conversion to int64 ns a user has to write after it, the exact one
(``(d - EPOCH) // timedelta(microseconds=1) * 1000``; float ``timestamp()`` would lose
precision). Every peer stops at microseconds, so on strings with 7-9 fraction digits they
return a different (truncated) answer: the table says how many values that is. Contenders run
alternately, ``--repeat`` times each, with the GC off during a timing (as ``timeit`` does); the
minimum is reported, and ratios are of minimums from the same run.

    python benchmarks/compare_timestamps.py [--n 10000] [--repeat 7] [--seed 1] [--utc-only]
"""
from __future__ import annotations

import argparse
import gc
import platform
import random
import sys
import time
from datetime import datetime, timedelta, timezone

import ciso8601
from dateutil.parser import isoparse

from fastingest import timestamps as py_timestamps

try:
    from fastingest import _timestamps as cy_timestamps
except ImportError:
    cy_timestamps = None

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
US = timedelta(microseconds=1)


def corpus(n: int, seed: int, utc_only: bool = False) -> list[str]:
    """Varied RFC 3339 strings that every peer accepts: 1970-2100, 'T' or ' ', 0/3/6/9 fraction
    digits, 'Z' or a ±hh:mm offset (only 'Z' with ``utc_only``)."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        ns = rnd.randrange(0, 4102444800 * 10**9)
        secs, frac = divmod(ns, 10**9)
        offset = 0 if utc_only else rnd.choice([0, 0, 0, 60, 120, -300, 330, -480, 765, -(23 * 60 + 59)])
        d = datetime.fromtimestamp(secs, timezone(timedelta(minutes=offset)))
        digits = rnd.choice([0, 3, 6, 9])
        text = d.strftime("%Y-%m-%d") + rnd.choice("TT ") + d.strftime("%H:%M:%S")
        if digits:
            text += "." + f"{frac:09d}"[:digits]
        if offset == 0 and (utc_only or rnd.random() < 0.7):
            text += "Z"
        else:
            sign = "-" if offset < 0 else "+"
            text += f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
        out.append(text)
    return out


# Each contender is the list comprehension a user would write, with no extra call per value.
def run_fastingest(data, parse_dt=None):
    return [parse_dt(s) for s in data]


def run_ciso8601(data, parse=ciso8601.parse_rfc3339, epoch=EPOCH, us=US):
    return [(parse(s) - epoch) // us * 1000 for s in data]


def run_fromisoformat(data, parse=datetime.fromisoformat, epoch=EPOCH, us=US):
    return [(parse(s) - epoch) // us * 1000 for s in data]


def run_isoparse(data, parse=isoparse, epoch=EPOCH, us=US):
    return [(parse(s) - epoch) // us * 1000 for s in data]


def time_once(fn, data) -> float:
    gc_was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        fn(data)
        return time.perf_counter_ns() - t0
    finally:
        if gc_was:
            gc.enable()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--utc-only", action="store_true",
                    help="every string ends in 'Z' (the peers' cheapest case: no offset arithmetic)")
    args = ap.parse_args()
    if cy_timestamps is None:
        sys.exit("the compiled kernels did not import: build them first (python setup.py build_ext --inplace)")

    data = corpus(args.n, args.seed, args.utc_only)
    cy = cy_timestamps.parse_dt
    py = py_timestamps.parse_dt
    contenders = {
        "fastingest.parse_dt (Cython)": lambda d: run_fastingest(d, cy),
        "ciso8601.parse_rfc3339 + to ns": run_ciso8601,
        "datetime.fromisoformat + to ns": run_fromisoformat,
        "dateutil isoparse + to ns": run_isoparse,
        "fastingest.parse_dt (pure Python)": lambda d: run_fastingest(d, py),
    }

    # Correctness first: the reference answer is fastingest's; peers may only differ below 1 µs.
    truth = run_fastingest(data, cy)
    assert truth == run_fastingest(data, py), "the two fastingest implementations disagree"
    lost = {}
    for name, fn in contenders.items():
        got = fn(data)
        if "fastingest" in name:
            assert got == truth, name
        else:
            assert all(g == t - t % 1000 for g, t in zip(got, truth)), name
        lost[name] = sum(g != t for g, t in zip(got, truth))

    best = {name: float("inf") for name in contenders}
    for _ in range(args.repeat):
        for name, fn in contenders.items():
            best[name] = min(best[name], time_once(fn, data))

    fast = best["fastingest.parse_dt (Cython)"]
    peers = [n for n in contenders if "fastingest" not in n]
    best_peer = min(best[n] for n in peers)
    kind = "'Z'-only" if args.utc_only else "varied"
    print(f"{args.n} {kind} RFC 3339 strings, min of {args.repeat} runs, Python {platform.python_version()}\n")
    print("| parser (+ conversion to int ns) | ns/value | vs fastingest | values off by < 1 µs |")
    print("|---|---:|---:|---:|")
    for name in contenders:
        ns = best[name] / args.n
        print(f"| {name} | {ns:.1f} | {best[name] / fast:.2f}x | {lost[name]} |")
    print(f"\nfastingest is {best_peer / fast:.2f}x faster than the best peer "
          f"({min(peers, key=best.get)}).")


if __name__ == "__main__":
    main()
