"""Splunk HEC event bodies: fastingest's reader against the stdlib's, run by run.

The job: a body of concatenated objects as splunk-handler writes them (each record
``json.dumps(params, sort_keys=True)``, no separator; ``event`` the formatted message,
``host``, ``index`` null, ``source`` a path, ``sourcetype`` "text", ``time`` a float
with 7 decimals) to the events fastingest stores: one dict per object, checked as a
HEC envelope, with its int64-ns time. Fed in 64 KiB chunks, as a server receives it,
each batch dropped once taken. The paths:

* ``fastingest (compiled)``: ``hec.HecEventReader`` on the compiled kernels (the
  server's path: decoder, concatenated-JSON scanner, orjson runs, envelope checks,
  exact decimal time);
* ``fastingest (pure twin)``: the same reader on the pure-Python kernels;
* ``stdlib raw_decode``: what one writes without fastingest: the whole body decoded to
  text, ``json.JSONDecoder.raw_decode`` object after object, time as ``float * 1e9``
  (inexact, and no limit, envelope or UTF-8 position checks: less work than the job).

Each ``--tree`` (a built source tree; default this one) is imported by its own worker
process, and the runs alternate one by one between every path of every tree, so that
the shared machine's drift hits all of them alike; the table shows the min of
``--repeat`` runs of each and its ratio to the stdlib path. Two trees (e.g. a checkout
of an older commit, then this one) give a before/after comparison from one run.

    python benchmarks/bench_hec.py                    # 10 MiB body, this tree
    python benchmarks/bench_hec.py --tree ../old-checkout --tree .   # before / after
    python benchmarks/bench_hec.py --mib 50 --repeat 5
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHUNK = 64 * 1024
PATHS = ("fastingest (compiled)", "fastingest (pure twin)", "stdlib raw_decode")


def splunk_handler_body(mib: float) -> bytes:
    """``mib`` MiB of records as splunk-handler 3.0.0 formats them."""
    records: List[bytes] = []
    size, i = 0, 0
    while size < mib * 1024 * 1024:
        params = {"event": f"2026-12-06 10:21:{i % 60:02d},{i % 1000:03d} INFO checkout.views "
                           f"GET /api/items/{i} 200 in {i % 97}ms user=alice",
                  "host": "web-7", "index": None, "source": "/app/checkout/views.py",
                  "sourcetype": "text", "time": round(1796544182.4264505 + i * 0.0013, 7)}
        record = json.dumps(params, sort_keys=True).encode()
        records.append(record)
        size += len(record)
        i += 1
    return b"".join(records)


def fastingest_reader(kernels: Any) -> Callable[[bytes], int]:
    """The server's path on one kernel set: events counted, batches dropped."""
    from fastingest import _kernels
    from fastingest.hec import HecEventReader
    from fastingest.limits import Limits
    limits = Limits(max_body=1 << 30, max_compressed=1 << 30, max_event=10 << 20)

    def run(body: bytes) -> int:
        saved, _kernels.active = _kernels.active, kernels
        try:
            reader = HecEventReader(None, limits, 1)
            n = 0
            for at in range(0, len(body), CHUNK):
                for events, _times in reader.feed(body[at:at + CHUNK]):
                    n += len(events)
            for events, _times in reader.close():
                n += len(events)
            return n
        finally:
            _kernels.active = saved
    return run


_SPACE = re.compile(r"[ \t\r\n]*")


def stdlib(body: bytes) -> int:
    """The whole body as text, object after object with ``raw_decode``."""
    text = body.decode()
    decode = json.JSONDecoder().raw_decode
    space = _SPACE.match
    at, end, n = space(text, 0).end(), len(text), 0
    batch: List[Any] = []
    while at < end:
        obj, at = decode(text, at)
        at = space(text, at).end()
        t = obj.get("time")
        batch.append((obj, int(t * 1e9) if isinstance(t, float) else 1))
        n += 1
        if len(batch) == 1000:
            batch = []
    return n


def worker(tree: str, mib: float) -> int:
    """One tree's paths, run on request: reads a path name per line, answers seconds."""
    sys.path.insert(0, tree)
    import fastingest
    from fastingest import _kernels
    if not os.path.abspath(fastingest.__file__).startswith(tree + os.sep):
        raise SystemExit(f"fastingest imported from {fastingest.__file__}, not from {tree}")
    body = splunk_handler_body(mib)
    expected = stdlib(body)
    paths: Dict[str, Callable[[bytes], int]] = {"stdlib raw_decode": stdlib,
                                                "fastingest (pure twin)": fastingest_reader(_kernels.python)}
    if _kernels.cython is not None:
        paths["fastingest (compiled)"] = fastingest_reader(_kernels.cython)
    for fn in paths.values():
        assert fn(body) == expected
    print(json.dumps({"bytes": len(body), "objects": expected, "paths": sorted(paths)}), flush=True)
    for line in sys.stdin:
        fn = paths[line.strip()]
        t = time.perf_counter()
        fn(body)
        print(time.perf_counter() - t, flush=True)
    return 0


class Worker:
    """A worker process for one tree."""

    def __init__(self, tree: str, mib: float) -> None:
        self.tree = tree
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", "--tree", tree,
             "--mib", str(mib)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        if not ready:
            raise SystemExit(f"the worker for {tree} did not start")
        self.info = json.loads(ready)

    def run(self, path: str) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(path + "\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(60)


def main(argv: Any = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mib", type=float, default=10.0, help="body size in MiB (10)")
    p.add_argument("--repeat", type=int, default=10, help="runs of each path, min taken (10)")
    p.add_argument("--tree", action="append", help="a built source tree to import fastingest "
                   "from (repeatable; default: this one)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not (0.01 <= args.mib <= 200 and 1 <= args.repeat <= 100 and len(args.tree or []) <= 4):
        p.error("keep it bounded: mib 0.01-200, repeat 1-100, at most 4 trees")
    trees = [os.path.abspath(t) for t in (args.tree or [ROOT])]
    if args.worker:
        return worker(trees[0], args.mib)
    workers = [Worker(tree, args.mib) for tree in trees]
    best: Dict[Tuple[int, str], float] = {}
    try:
        for _ in range(args.repeat):   # one run of each path of each tree in turn
            for k, w in enumerate(workers):
                for path in PATHS:
                    if path in w.info["paths"]:
                        t = w.run(path)
                        best[k, path] = min(best.get((k, path), t), t)
    finally:
        for w in workers:
            w.stop()
    size, objects = workers[0].info["bytes"], workers[0].info["objects"]
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"{size:,} bytes, {objects:,} objects ({size / objects:.0f} B each) in "
          f"{CHUNK // 1024} KiB chunks; min of {args.repeat} runs, alternating")
    peer = min(t for (k, path), t in best.items() if path == "stdlib raw_decode")
    print("\n| tree | path | ms per body | events/s | µs per event | MB/s | vs stdlib |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for k, tree in enumerate(trees):
        for path in PATHS:
            t: Optional[float] = best.get((k, path))
            if t is None or (path == "stdlib raw_decode" and k):
                continue
            print(f"| {os.path.basename(tree) or tree} | {path} | {t * 1e3:.1f} | "
                  f"{objects / t:,.0f} | {t / objects * 1e6:.2f} | {size / t / 1e6:.0f} | "
                  f"{peer / t:.2f}x |")
    if len(trees) > 1:
        for path in PATHS[:2]:
            if (0, path) in best and (len(trees) - 1, path) in best:
                print(f"\n{path}: the last tree reads {best[0, path] / best[len(trees) - 1, path]:.2f}x "
                      f"as fast as the first")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
