"""Memory under attack: what unauthenticated hostile requests cost the server.

Each case runs against a real ``python -m fastingest serve`` (one worker, SQLite in a
temp dir, 127.0.0.1 only) of the tree given by ``--tree`` (default: this one), so a
branch and main can be compared in the same run:

* **samsara-empty-objects**: ``POST /v1/events`` with an 8 MiB body ``[{},{},...]``
  (2.8 million invalid events): the 400 answer's size, the server's resident
  high-water mark (``VmHWM``) before and after;
* **huge-content-encoding**: 64 requests, each with a distinct 4 MB
  ``Content-Encoding: identity,identity,...`` header (parse caches keyed by the raw
  value, heads of any size): the answers and the high-water mark.

With ``--exchange`` the Samsara case also runs in this process through the sans-I/O
exchange (64 KiB chunks) under tracemalloc, for the peak Python allocation.

    python benchmarks/hostile.py                     # this tree
    python benchmarks/hostile.py --tree /work/main   # another checkout (built in place)

Bounded: two server starts, 8 MiB + 64 x 4 MB sent over loopback.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import tracemalloc
from typing import Any, Dict

HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1 << 20


def empty_objects(size: int) -> bytes:
    n = (size - 2) // 3
    return b"[" + b"{}," * (n - 1) + b"{}]"


def high_water(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) * 1024


def post(path: str, headers: Dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: bench"]
    lines += [f"{k}: {v}" for k, v in {**headers, "Content-Length": str(len(body))}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def servers(tree: str) -> Any:
    """The tree's own ``tests/servers.py``: its ``Serve`` runs that tree's package."""
    sys.path.insert(0, os.path.join(tree, "tests"))
    try:
        import servers as module
    finally:
        sys.path.pop(0)
    return module


def serve(tree: str, tmp: str) -> Any:
    return servers(tree).Serve(["--token", "app=bench", "--store", f"sqlite:{tmp}/events.db",
                                "--log-level", "warning"], cwd=tmp)


def exchange(tree: str, port: int, data: bytes) -> bytes:
    """``data`` sent on a fresh connection; the whole response (or what came)."""
    return bytes(servers(tree).raw_exchange(port, data, timeout=300))


def samsara_case(tree: str) -> None:
    body = empty_objects(8 * MiB)
    with tempfile.TemporaryDirectory() as tmp, serve(tree, tmp) as srv:
        before = high_water(srv.proc.pid)
        start = time.perf_counter()
        got = exchange(tree, srv.port,
                       post("/v1/events", {"Content-Type": "application/json"}, body))
        took = time.perf_counter() - start
        status = got.split(b" ", 2)[1].decode()
        answer = len(got.partition(b"\r\n\r\n")[2])
        print(f"samsara-empty-objects | 8 MiB, {(len(body) - 2) // 3:,} events | {status}, "
              f"answer {answer:,} bytes, {took:.1f} s | VmHWM {before / MiB:.0f} -> "
              f"{high_water(srv.proc.pid) / MiB:.0f} MiB")


def samsara_exchange() -> None:
    from fastingest.protocols import Service
    from fastingest.protocols.samsara import Samsara
    body = empty_objects(8 * MiB)
    tracemalloc.start()
    ex = Service([Samsara()]).start("POST", "/v1/events", [(b"content-type", b"application/json")])
    for i in range(0, len(body), 65536):
        if ex.response is None:
            ex.feed(body[i:i + 65536])
    if ex.response is None:
        ex.end()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert ex.response is not None
    print(f"samsara-empty-objects, sans-I/O exchange in this process | "
          f"{ex.response.status}, answer {len(ex.response.body):,} bytes | "
          f"tracemalloc peak {peak / MiB:.1f} MiB")


def header_case(tree: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, serve(tree, tmp) as srv:
        before = high_water(srv.proc.pid)
        statuses: Dict[str, int] = {}
        for i in range(64):
            value = f"identity{i}," + "identity," * (4 * MiB // 9)
            got = exchange(tree, srv.port, post("/", {"Authorization": "Bearer bench",
                                                "Content-Type": "application/json",
                                                "Content-Encoding": value}, b"{}"))
            status = got.split(b" ", 2)[1].decode() if got else "closed"
            statuses[status] = statuses.get(status, 0) + 1
        print(f"huge-content-encoding | 64 x 4 MB headers | {statuses} | VmHWM "
              f"{before / MiB:.0f} -> {high_water(srv.proc.pid) / MiB:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", default=os.path.dirname(HERE),
                        help="checkout whose fastingest runs the server (default: this one)")
    parser.add_argument("--exchange", action="store_true",
                        help="also the sans-I/O Samsara exchange under tracemalloc (slow)")
    args = parser.parse_args()
    print(f"tree {args.tree}")
    samsara_case(args.tree)
    header_case(args.tree)
    if args.exchange:
        samsara_exchange()


if __name__ == "__main__":
    main()
